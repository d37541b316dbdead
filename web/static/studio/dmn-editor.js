// The decision table editor: dmn-js opens one DMN file of a process, the owner edits it, and it is checked and
// saved as a draft by the server (web/studio_dmn.py). Everything the page needs comes from
// <script type="application/json" id="dmn-data">; no inline JS (the Content-Security-Policy forbids it).

import DmnModeler from 'dmn-js/lib/Modeler';
import { $, announcer, postJSON } from './page.js';

const announce = announcer('#dmn-status');

// The cell (rule id, column id) a problem's element names: an inputEntry or outputEntry of the XML as saved.
function cellOf(xml, elementId) {
  if (!elementId) return null;
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const entry = [...doc.getElementsByTagNameNS('*', '*')].find((n) => n.getAttribute('id') === elementId);
  if (!entry || !/^(inputEntry|outputEntry)$/.test(entry.localName)) return null;
  const rule = entry.parentElement;
  const table = rule && rule.parentElement;
  if (!rule || !table) return null;
  const kind = entry.localName === 'inputEntry' ? 'input' : 'output';
  const position = [...rule.children].filter((c) => c.localName === entry.localName).indexOf(entry);
  const column = [...table.children].filter((c) => c.localName === kind)[position];
  return column ? { row: rule.getAttribute('id'), col: column.getAttribute('id') } : null;
}

function showProblems(problems, xml) {
  const list = $('#dmn-problems');
  list.replaceChildren();
  document.querySelectorAll('.dmn-problem').forEach((n) => n.classList.remove('dmn-problem'));
  for (const problem of problems) {
    const item = document.createElement('li');
    item.textContent = problem.message;  // text, never HTML
    list.append(item);
    const cell = cellOf(xml, problem.element);
    if (cell) {
      const td = document.querySelector(`td[data-row-id="${CSS.escape(cell.row)}"][data-col-id="${CSS.escape(cell.col)}"]`);
      if (td) td.classList.add('dmn-problem');
    }
  }
}

async function main() {
  const data = JSON.parse($('#dmn-data').textContent);
  const modeler = new DmnModeler({ container: '#dmn-canvas', common: { keyboard: { bindTo: window } } });
  let dirty = false;
  try {
    await modeler.importXML(data.xml);
  } catch (error) {
    announce(`The table could not be opened: ${error.message}`, 'error');
    return;
  }
  const table = modeler.getViews().find((view) => view.type === 'decisionTable');
  if (table) await modeler.open(table);
  const markDirty = () => { dirty = true; $('#dmn-dirty').textContent = 'Unsaved changes.'; };
  modeler.on('views.changed', () => {
    const viewer = modeler.getActiveViewer();
    if (viewer) viewer.on('elements.changed', markDirty);
  });
  const active = modeler.getActiveViewer();
  if (active) active.on('elements.changed', markDirty);
  showProblems(data.problems || [], data.xml);
  document.body.dataset.dmnReady = 'true';

  async function send(url, what) {
    const { xml } = await modeler.saveXML({ format: true });
    announce(`${what}…`);
    const { ok, payload } = await postJSON(url, { xml }, data.csrf);
    const problems = payload.problems || [];
    showProblems(problems, xml);
    return { ok, problems, payload };
  }

  $('#dmn-validate').addEventListener('click', async () => {
    const { ok, problems } = await send(data.urls.validate, 'Checking');
    if (ok && !problems.length) announce('No problems: the table can be deployed.', 'ok');
    else announce(`${problems.length} problem(s), listed below.`, 'error');
  });
  $('#dmn-save').addEventListener('click', async () => {
    const { ok, problems, payload } = await send(data.urls.save, 'Saving');
    if (!ok) { announce(`Not saved: ${problems.map((p) => p.message).join('; ')}`, 'error'); return; }
    dirty = false;
    $('#dmn-dirty').textContent = '';
    announce(problems.length
      ? `Draft saved by ${payload.saved_by}. It cannot be deployed yet: ${problems.length} problem(s), listed below.`
      : `Draft saved by ${payload.saved_by}. No problems: it can be deployed.`, problems.length ? 'error' : 'ok');
  });
  window.addEventListener('beforeunload', (event) => { if (dirty) event.preventDefault(); });
}

main();
