// Instance diagrams: a read-only bpmn-js viewer colouring what a case has done (completed), what waits
// for a person (open) and what waits for a time or an event (waiting). Each container names its data
// URL in data-src; the same states are written out as text beside it for screen readers.

import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { importWithLayout } from './layout.js';

const MARKERS = { completed: 'ntps-completed', open: 'ntps-open', waiting: 'ntps-waiting', cancelled: 'ntps-cancelled' };
const LABELS = { open: 'Open (waiting for a person)', waiting: 'Waiting (timer or event)', completed: 'Completed' };

function describe(container, data, registry) {
  const target = container.parentElement.querySelector('[data-diagram-text]');
  if (!target) return;
  const name = (id) => {
    const element = registry.get(id);
    return (element && element.businessObject && element.businessObject.name) || data.names[id] || id;
  };
  const parts = [];
  for (const state of ['open', 'waiting', 'completed']) {
    if (!data[state].length) continue;
    const heading = document.createElement('h3');
    heading.textContent = LABELS[state];
    const list = document.createElement('ul');
    data[state].forEach((id) => { const li = document.createElement('li'); li.textContent = name(id); list.append(li); });
    parts.push(heading, list);
  }
  target.replaceChildren(...parts);
}

async function show(container) {
  const response = await fetch(container.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const data = await response.json();
  const viewer = new NavigatedViewer({ container });
  await importWithLayout(viewer, data.xml);
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  for (const [state, marker] of Object.entries(MARKERS)) {
    (data[state] || []).forEach((id) => { if (registry.get(id)) canvas.addMarker(id, marker); });
  }
  canvas.zoom('fit-viewport');
  describe(container, data, registry);
  container.dataset.ready = 'true';
}

document.querySelectorAll('[data-instance-diagram]').forEach((container) => {
  show(container).catch((error) => {
    container.textContent = `The diagram could not be shown (${error.message}).`;
    container.dataset.ready = 'error';
  });
});
