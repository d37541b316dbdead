// Diagrams to read, not edit: a read-only bpmn-js viewer that fits the diagram to its box on load, zooms
// (buttons, Ctrl+wheel, + / - / 0 keys) and pans (drag, arrow keys when the diagram has focus).
//
// Two kinds of container carry data-instance-diagram:
//  - a case's diagram (data-src: its JSON URL) coloured by what the case has done (completed), what waits for
//    a person (open) and what waits for a time or an event (waiting); the same states are written out as text
//    beside it for screen readers;
//  - a process overview (data-json: the id of a <script type="application/json"> holding {xml, counts, names})
//    coloured by how many cases are open, waiting or completed at each element, with the counts as badges; the
//    page's table holds the same counts.

import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { importWithLayout } from './layout.js';

const MARKERS = { completed: 'ntps-completed', open: 'ntps-open', waiting: 'ntps-waiting', cancelled: 'ntps-cancelled' };
const LABELS = { open: 'Open (waiting for a person)', waiting: 'Waiting (timer or event)', completed: 'Completed' };
const BADGES = { open: 'open', waiting: 'waiting', completed: 'done' };
const STEP = 1.25;        // one zoom step
const PAN = 80;           // pixels an arrow key moves the diagram
const MIN_ZOOM = 0.05;
const MAX_ZOOM = 4;

function describe(container, data, registry) {
  const target = container.parentElement.querySelector('[data-diagram-text]');
  if (!target) return;
  const name = (id) => {
    const element = registry.get(id);
    return (element && element.businessObject && element.businessObject.name) || (data.names || {})[id] || id;
  };
  const parts = [];
  for (const state of ['open', 'waiting', 'completed']) {
    if (!(data[state] || []).length) continue;
    const heading = document.createElement('h3');
    heading.textContent = LABELS[state];
    const list = document.createElement('ul');
    data[state].forEach((id) => { const li = document.createElement('li'); li.textContent = name(id); list.append(li); });
    parts.push(heading, list);
  }
  target.replaceChildren(...parts);
}

function button(label, text, action) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary diagram-zoom';
  b.setAttribute('aria-label', label);
  b.title = label;
  b.textContent = text;
  b.addEventListener('click', action);
  return b;
}

// Zoom and pan controls: a toolbar above the diagram and keys on the diagram itself.
function controls(container, canvas, eventBus) {
  const level = document.createElement('output');
  level.className = 'diagram-zoom-level';
  level.setAttribute('aria-label', 'Zoom level');
  const show = () => { level.textContent = `${Math.round(canvas.zoom() * 100)}%`; };
  const zoom = (factor) => {
    canvas.zoom(Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, canvas.zoom() * factor)), 'auto');
    show();
  };
  const fit = () => { canvas.zoom('fit-viewport', 'auto'); show(); };
  const bar = document.createElement('div');
  bar.className = 'diagram-toolbar';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Diagram zoom');
  bar.append(button('Zoom in', '+', () => zoom(STEP)), button('Zoom out', '−', () => zoom(1 / STEP)),
    button('Fit the diagram to the box', 'Fit', fit), level);
  container.before(bar);
  container.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const moves = { ArrowLeft: [PAN, 0], ArrowRight: [-PAN, 0], ArrowUp: [0, PAN], ArrowDown: [0, -PAN] };
    if (moves[event.key]) {
      const [dx, dy] = moves[event.key];
      canvas.scroll({ dx, dy });
    } else if (event.key === '+' || event.key === '=') zoom(STEP);
    else if (event.key === '-') zoom(1 / STEP);
    else if (event.key === '0') fit();
    else return;
    event.preventDefault();
    event.stopPropagation();
  });
  eventBus.on('canvas.viewbox.changed', show);
  show();
  return fit;
}

function colourCase(data, canvas, registry) {
  for (const [state, marker] of Object.entries(MARKERS)) {
    (data[state] || []).forEach((id) => { if (registry.get(id)) canvas.addMarker(id, marker); });
  }
}

function badge(counts) {
  const box = document.createElement('div');
  box.className = 'diagram-badges';
  for (const state of ['open', 'waiting', 'completed']) {
    if (!counts[state]) continue;
    const span = document.createElement('span');
    span.className = `diagram-badge badge-${state}`;
    span.textContent = `${counts[state]} ${BADGES[state]}`;
    box.append(span);
  }
  return box;
}

function colourCounts(data, viewer, canvas, registry) {
  const overlays = viewer.get('overlays');
  for (const [id, counts] of Object.entries(data.counts || {})) {
    if (!registry.get(id)) continue;
    const state = counts.open ? 'open' : counts.waiting ? 'waiting' : counts.completed ? 'completed' : null;
    if (!state) continue;
    canvas.addMarker(id, MARKERS[state]);
    overlays.add(id, 'ntps-counts', { position: { bottom: 4, left: -4 }, html: badge(counts) });
  }
}

// The box takes the diagram's shape: as tall as the diagram is at the box's full width, within limits, so a
// wide process is not drawn as a thin strip in a tall empty box (nor a tall one squeezed into a short box).
function shape(container, canvas) {
  const inner = canvas.viewbox().inner;
  if (!inner || !inner.width) return;
  const width = container.clientWidth;
  const tall = Math.round(width * (inner.height / inner.width)) + 40;
  container.style.height = `${Math.max(256, Math.min(tall, Math.round(window.innerHeight * 0.75)))}px`;
}

async function load(container) {
  if (container.dataset.json) {
    const script = document.getElementById(container.dataset.json);
    return JSON.parse(script.textContent);
  }
  const response = await fetch(container.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function show(container) {
  const data = await load(container);
  const viewer = new NavigatedViewer({ container });
  await importWithLayout(viewer, data.xml);
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  if (data.counts) colourCounts(data, viewer, canvas, registry);
  else colourCase(data, canvas, registry);
  const svg = container.querySelector('svg');
  if (svg) svg.setAttribute('aria-label', 'The diagram: arrow keys move it, + and - zoom, 0 fits it to the box');
  const fit = controls(container, canvas, viewer.get('eventBus'));
  const refit = () => { shape(container, canvas); canvas.resized(); fit(); };
  refit();
  let pending = null;
  window.addEventListener('resize', () => { clearTimeout(pending); pending = setTimeout(refit, 150); });
  if (!data.counts) describe(container, data, registry);
  container.dataset.ready = 'true';
}

document.querySelectorAll('[data-instance-diagram]').forEach((container) => {
  show(container).catch((error) => {
    container.textContent = `The diagram could not be shown (${error.message}).`;
    container.dataset.ready = 'error';
  });
});
