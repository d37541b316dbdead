// Diagrams without layout (no bpmndi:BPMNDiagram, as some SpiffArena test models and hand-written files
// are) cannot be drawn by bpmn-js; bpmn-auto-layout computes one so they still open and can be viewed.

import { layoutProcess } from 'bpmn-auto-layout';

export const LAID_OUT_NOTE = 'The file had no diagram layout; it was laid out automatically (saving keeps the new layout).';

// Whether the file has a diagram to draw. Checked before importing: bpmn-js fails on a file without one
// only after its listeners (the properties panel) have met an empty canvas.
async function needsLayout(xml, moddle) {
  let parsed;
  try {
    parsed = await moddle.fromXML(xml);
  } catch (error) {
    return false;  // let importXML report what is wrong with the file
  }
  const diagrams = parsed.rootElement.get ? parsed.rootElement.get('diagrams') : [];
  return !diagrams.some((d) => d.plane && (d.plane.get('planeElement') || []).length > 0);
}

export async function importWithLayout(viewer, xml) {
  const moddle = viewer.get('moddle');
  if (!(await needsLayout(xml, moddle))) return viewer.importXML(xml);
  // bpmn-auto-layout walks flowNode.outgoing, which hand-written files often leave out (the flows alone
  // are enough for an engine); writing the file with bpmn-moddle first fills them in from the flows.
  const { rootElement } = await moddle.fromXML(xml);
  const complete = (await moddle.toXML(rootElement)).xml;
  const result = await viewer.importXML(await layoutProcess(complete));
  return { ...result, warnings: [...(result.warnings || []), { message: LAID_OUT_NOTE }], laidOut: true };
}
