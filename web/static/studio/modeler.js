// The process owners' modeler page: bpmn-js with the properties panel, validation with highlighted
// elements, drafts, deployment, and a JSON Schema form editor with a server-rendered live preview.
// Everything the page needs comes from <script type="application/json" id="studio-data">; no inline JS
// (the Content-Security-Policy forbids it).

import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import spiffworkflowDescriptor from './spiffworkflow-moddle.json';
import { SpiffPropertiesModule } from './spiff-provider.js';
import { importWithLayout } from './layout.js';
import { $, announcer, postJSON } from './page.js';

const announce = announcer('#studio-status');

function start() {
  const dataNode = $('#studio-data');
  if (!dataNode) return;
  const data = JSON.parse(dataNode.textContent);
  const forms = { ...data.forms };
  let dirty = false;

  window.ntpsStudio = { formNames: () => Object.keys(forms), lanes: () => data.lanes };

  const modeler = new BpmnModeler({
    container: '#canvas',
    // The groups owners use most start open; the others are a click away.
    propertiesPanel: { parent: '#properties', layout: { groups: { general: { open: true }, 'ntps-engine': { open: true } } } },
    additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, SpiffPropertiesModule],
    moddleExtensions: { spiffworkflow: spiffworkflowDescriptor },
  });
  window.ntpsStudio.modeler = modeler;
  window.ntpsStudio.importXML = (xml) => importWithLayout(modeler, xml);

  const canvas = modeler.get('canvas');
  const registry = modeler.get('elementRegistry');
  let marked = [];

  modeler.on('commandStack.changed', () => {
    dirty = true;
    $('#studio-dirty').textContent = 'Unsaved changes';
  });
  window.addEventListener('beforeunload', (event) => {
    if (dirty) { event.preventDefault(); event.returnValue = ''; }
  });

  async function currentXML() {
    const { xml } = await modeler.saveXML({ format: true });
    return xml;
  }

  function payload(xml) {
    return { key: data.key, filename: data.filename, xml, forms, base_version: data.base_version };
  }

  function clearMarks() {
    marked.forEach((id) => { if (registry.get(id)) canvas.removeMarker(id, 'studio-problem'); });
    marked = [];
  }

  function showProblems(problems) {
    clearMarks();
    const list = $('#problems');
    list.replaceChildren();
    $('#problems-heading').textContent = problems.length
      ? `${problems.length} problem${problems.length === 1 ? '' : 's'} found` : 'No problems found';
    problems.forEach((problem) => {
      const item = document.createElement('li');
      const element = problem.element && registry.get(problem.element);
      if (element) {
        canvas.addMarker(problem.element, 'studio-problem');
        marked.push(problem.element);
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'link';
        button.textContent = problem.element;
        button.addEventListener('click', () => {
          modeler.get('selection').select(element);
          canvas.scrollToElement(element);
          $('#properties').scrollIntoView({ block: 'nearest' });
        });
        item.append(button, document.createTextNode(`: ${problem.message}`));
      } else {
        item.textContent = (problem.element || problem.field ? `${problem.element || problem.field}: ` : '') + problem.message;
      }
      list.append(item);
    });
  }

  async function withXML(action) {
    const formError = commitFormText();
    if (formError) { announce(formError, 'error'); return; }
    let xml;
    try { xml = await currentXML(); } catch (e) { announce(`The diagram cannot be saved: ${e.message}`, 'error'); return; }
    await action(xml);
  }

  $('#validate').addEventListener('click', () => withXML(async (xml) => {
    announce('Validating…');
    const { ok, payload: answer } = await postJSON(data.urls.validate, payload(xml), data.csrf);
    const problems = answer.problems || [];
    showProblems(problems);
    announce(ok && !problems.length ? 'Valid: this diagram can be deployed.' : `Not valid: ${problems.length} problem(s).`,
      ok && !problems.length ? 'ok' : 'error');
  }));

  $('#save-draft').addEventListener('click', () => withXML(async (xml) => {
    const { ok, payload: answer } = await postJSON(data.urls.draft, payload(xml), data.csrf);
    if (ok) {
      dirty = false;
      $('#studio-dirty').textContent = `Draft saved ${answer.saved_at ? answer.saved_at.slice(0, 16).replace('T', ' ') : ''}`;
      announce('Draft saved.', 'ok');
    } else {
      showProblems(answer.problems || []);
      announce('The draft was not saved.', 'error');
    }
  }));

  $('#deploy').addEventListener('click', () => withXML(async (xml) => {
    announce('Deploying…');
    const { ok, payload: answer } = await postJSON(data.urls.deploy, payload(xml), data.csrf);
    if (ok) {
      dirty = false;
      showProblems([]);
      const versions = (answer.processes || []).map((p) => `${p.key} version ${p.version}${p.created ? '' : ' (unchanged)'}`);
      announce(`Deployed: ${versions.join(', ')}.`, 'ok');
      $('#studio-dirty').textContent = '';
      const mine = (answer.processes || []).find((p) => p.key === data.key);
      if (mine) {
        data.base_version = mine.version;
        $('#base-version').textContent = `version ${mine.version}`;
      }
    } else {
      showProblems(answer.problems || []);
      announce('Not deployed: fix the problems listed below.', 'error');
    }
  }));

  $('#download').addEventListener('click', () => withXML(async (xml) => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([xml], { type: 'application/xml' }));
    link.download = data.filename;
    document.body.append(link);
    link.click();
    link.remove();
  }));

  // ------------------------------------------------------------ forms editor

  const formSelect = $('#form-file');
  const uiSelect = $('#form-ui-file');
  const schemaText = $('#form-schema');
  const uiText = $('#form-ui-schema');
  const preview = $('#form-preview');
  const formProblems = $('#form-problems');
  let editing = null;
  let editingUi = null;
  let timer = null;

  function isUiName(name) { return /(_ui|-uischema|_uischema)\.json$/i.test(name); }

  function fillSelects() {
    const names = Object.keys(forms).sort();
    const option = (value, label) => { const o = document.createElement('option'); o.value = value; o.textContent = label; return o; };
    formSelect.replaceChildren(option('', '(choose a form)'), ...names.filter((n) => !isUiName(n)).map((n) => option(n, n)));
    uiSelect.replaceChildren(option('', '(no UI schema)'), ...names.filter(isUiName).map((n) => option(n, n)));
    formSelect.value = editing || '';
    uiSelect.value = editingUi || '';
  }

  function pairedUi(name) {
    const pairs = registry.filter((e) => e.businessObject && e.businessObject.extensionElements);
    for (const element of pairs) {
      const values = element.businessObject.extensionElements.get('values');
      const props = values.find((v) => v.$type === 'spiffworkflow:Properties');
      if (!props) continue;
      const get = (n) => (props.get('properties').find((p) => p.get('name') === n) || { get: () => undefined }).get('value');
      if (get('formJsonSchemaFilename') === name && get('formUiSchemaFilename')) return get('formUiSchemaFilename');
    }
    const guess = name.replace(/\.json$/i, '_ui.json');
    return forms[guess] ? guess : '';
  }

  // Parse the text boxes into `forms`; returns an error message or null.
  function commitFormText() {
    for (const [name, box] of [[editing, schemaText], [editingUi, uiText]]) {
      if (!name) continue;
      try {
        forms[name] = JSON.parse(box.value);
        box.removeAttribute('aria-invalid');
      } catch (e) {
        box.setAttribute('aria-invalid', 'true');
        return `${name} is not valid JSON: ${e.message}`;
      }
    }
    return null;
  }

  function load(name, uiName) {
    editing = name || null;
    editingUi = uiName || null;
    schemaText.value = editing ? JSON.stringify(forms[editing], null, 2) : '';
    uiText.value = editingUi ? JSON.stringify(forms[editingUi], null, 2) : '';
    schemaText.disabled = !editing;
    uiText.disabled = !editingUi;
    fillSelects();
    refreshPreview();
  }

  async function refreshPreview() {
    if (!editing) { preview.replaceChildren(); formProblems.replaceChildren(); return; }
    const error = commitFormText();
    if (error) { formProblems.textContent = error; return; }
    const { payload: answer } = await postJSON(data.urls.preview,
      { schema: forms[editing], ui_schema: editingUi ? forms[editingUi] : null }, data.csrf);
    formProblems.textContent = (answer.problems || []).map((p) => p.message).join(' ');
    preview.innerHTML = answer.html || '';  // server-rendered by web.formrender, every value escaped
  }

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(() => { dirty = true; refreshPreview(); }, 350);
  }

  formSelect.addEventListener('change', () => {
    if (commitFormText()) { formSelect.value = editing || ''; return; }
    load(formSelect.value, formSelect.value ? pairedUi(formSelect.value) : '');
  });
  uiSelect.addEventListener('change', () => {
    if (commitFormText()) { uiSelect.value = editingUi || ''; return; }
    load(editing, uiSelect.value);
  });
  schemaText.addEventListener('input', schedulePreview);
  uiText.addEventListener('input', schedulePreview);
  $('#new-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#new-form-name');
    let name = input.value.trim();
    if (name && !name.endsWith('.json')) name += '.json';
    if (!/^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}\.json$/.test(name)) {
      input.setAttribute('aria-invalid', 'true');
      $('#new-form-error').textContent = 'Use letters, digits, dots, dashes or underscores, ending in .json.';
      return;
    }
    input.removeAttribute('aria-invalid');
    $('#new-form-error').textContent = '';
    if (!forms[name]) {
      forms[name] = isUiName(name) ? {} : { title: 'New form', type: 'object', required: [],
        properties: { answer: { type: 'string', title: 'Your answer' } } };
    }
    input.value = '';
    if (isUiName(name)) load(editing, name); else load(name, pairedUi(name));
    dirty = true;
  });
  fillSelects();

  importWithLayout(modeler, data.xml).then(({ warnings, laidOut }) => {
    if (laidOut) dirty = true;
    canvas.zoom('fit-viewport');
    const notes = $('#import-notes');
    notes.replaceChildren(...warnings.map((w) => { const li = document.createElement('li'); li.textContent = w.message; return li; }));
    $('#import-notes-section').hidden = warnings.length === 0;
    if (data.problems && data.problems.length) showProblems(data.problems);
    document.body.dataset.modelerReady = 'true';
  }).catch((error) => {
    announce(`The diagram could not be opened: ${error.message}`, 'error');
    document.body.dataset.modelerReady = 'error';
  });
}

start();
