// Properties-panel entries for what this engine reads from a diagram, written as SpiffWorkflow
// extension elements (spiffworkflow:properties/property, instructionsForEndUser, preScript/postScript)
// so a diagram saved here runs in SpiffArena and a SpiffArena diagram runs here.
//
// Entries: the form of a user task (formJsonSchemaFilename / formUiSchemaFilename), instructions,
// clause, dueAt, escalateTo, the role of a lane, gateway conditions, script text and pre/post scripts.
// Timer expressions use bpmn-js-properties-panel's own Timer group (bpmn:timerEventDefinition).

import { Group, SelectEntry, TextAreaEntry, TextFieldEntry, isSelectEntryEdited, isTextAreaEntryEdited,
  isTextFieldEntryEdited } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { getBusinessObject, is, isAny } from 'bpmn-js/lib/util/ModelUtil';

const HUMAN_TASKS = ['bpmn:UserTask', 'bpmn:ManualTask'];
const CONDITIONAL_SOURCES = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway', 'bpmn:ComplexGateway'];
const SCRIPTED = ['bpmn:Task', 'bpmn:SubProcess', 'bpmn:CallActivity'];  // pre/post scripts

// ---------------------------------------------------------------- moddle helpers

function extensionValues(bo) {
  const ext = bo.get('extensionElements');
  return ext ? ext.get('values') : [];
}

function findExtension(bo, type) {
  return extensionValues(bo).find((v) => is(v, type));
}

export function getSpiffProperty(element, name) {
  const props = findExtension(getBusinessObject(element), 'spiffworkflow:Properties');
  const prop = props && props.get('properties').find((p) => p.get('name') === name);
  return prop ? prop.get('value') : undefined;
}

// Commands that make sure bo.extensionElements and one extension of `type` exist; returns [commands, ext].
function ensureExtension(element, bo, type, attrs, bpmnFactory) {
  const commands = [];
  let ext = bo.get('extensionElements');
  if (!ext) {
    ext = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    ext.$parent = bo;
    commands.push({ cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: bo, properties: { extensionElements: ext } } });
  }
  let found = ext.get('values').find((v) => is(v, type));
  if (!found) {
    found = bpmnFactory.create(type, attrs);
    found.$parent = ext;
    commands.push({ cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: ext, properties: { values: [...ext.get('values'), found] } } });
  }
  return [commands, found];
}

function removeExtension(element, bo, found) {
  const ext = bo.get('extensionElements');
  return [{ cmd: 'element.updateModdleProperties',
    context: { element, moddleElement: ext, properties: { values: ext.get('values').filter((v) => v !== found) } } }];
}

export function setSpiffProperty(element, name, value, bpmnFactory, commandStack) {
  const bo = getBusinessObject(element);
  const existing = findExtension(bo, 'spiffworkflow:Properties');
  const current = existing && existing.get('properties').find((p) => p.get('name') === name);
  let commands = [];
  if (!value) {
    if (!current) return;
    const rest = existing.get('properties').filter((p) => p !== current);
    commands = rest.length ? [{ cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: existing, properties: { properties: rest } } }]
      : removeExtension(element, bo, existing);
  } else if (current) {
    commands = [{ cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: current, properties: { value } } }];
  } else {
    const [ensure, props] = ensureExtension(element, bo, 'spiffworkflow:Properties', { properties: [] }, bpmnFactory);
    const prop = bpmnFactory.create('spiffworkflow:Property', { name, value });
    prop.$parent = props;
    commands = [...ensure, { cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: props, properties: { properties: [...props.get('properties'), prop] } } }];
  }
  commandStack.execute('properties-panel.multi-command-executor', commands);
}

// Body-only extension elements: InstructionsForEndUser (text), PreScript / PostScript (script).
function getBody(element, type, field) {
  const found = findExtension(getBusinessObject(element), type);
  return found ? found.get(field) : undefined;
}

function setBody(element, type, field, value, bpmnFactory, commandStack) {
  const bo = getBusinessObject(element);
  const current = findExtension(bo, type);
  let commands;
  if (!value) {
    if (!current) return;
    commands = removeExtension(element, bo, current);
  } else if (current) {
    commands = [{ cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: current, properties: { [field]: value } } }];
  } else {
    const [ensure] = ensureExtension(element, bo, type, { [field]: value }, bpmnFactory);
    commands = ensure;
  }
  commandStack.execute('properties-panel.multi-command-executor', commands);
}

// ---------------------------------------------------------------- entries

function propertyEntry(name, label, description, area = false) {
  function Entry(props) {
    const { element, id } = props;
    const bpmnFactory = useService('bpmnFactory');
    const commandStack = useService('commandStack');
    const debounce = useService('debounceInput');
    const Component = area ? TextAreaEntry : TextFieldEntry;
    return Component({
      element, id, label, description, debounce,
      getValue: () => getSpiffProperty(element, name) || '',
      setValue: (value) => setSpiffProperty(element, name, (value || '').trim(), bpmnFactory, commandStack),
    });
  }
  return { id: `spiff-${name}`, component: Entry, isEdited: area ? isTextAreaEntryEdited : isTextFieldEntryEdited };
}

function formEntry(name, label, description) {
  function Entry(props) {
    const { element, id } = props;
    const bpmnFactory = useService('bpmnFactory');
    const commandStack = useService('commandStack');
    return SelectEntry({
      element, id, label, description,
      getValue: () => getSpiffProperty(element, name) || '',
      setValue: (value) => setSpiffProperty(element, name, value, bpmnFactory, commandStack),
      getOptions: () => {
        const names = new Set(window.ntpsStudio ? window.ntpsStudio.formNames() : []);
        const current = getSpiffProperty(element, name);
        if (current) names.add(current);
        return [{ value: '', label: '(no form)' }, ...[...names].sort().map((n) => ({ value: n, label: n }))];
      },
    });
  }
  return { id: `spiff-${name}`, component: Entry, isEdited: isSelectEntryEdited };
}

function bodyEntry(type, field, id, label, description) {
  function Entry(props) {
    const { element } = props;
    const bpmnFactory = useService('bpmnFactory');
    const commandStack = useService('commandStack');
    const debounce = useService('debounceInput');
    return TextAreaEntry({
      element, id: props.id, label, description, debounce, monospace: type !== 'spiffworkflow:InstructionsForEndUser',
      getValue: () => getBody(element, type, field) || '',
      setValue: (value) => setBody(element, type, field, value, bpmnFactory, commandStack),
    });
  }
  return { id, component: Entry, isEdited: isTextAreaEntryEdited };
}

function ScriptEntry(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const debounce = useService('debounceInput');
  return TextAreaEntry({
    element, id, label: 'Script (Python, restricted)', debounce, monospace: true, rows: 6,
    description: 'Runs in the restricted environment: no imports, no modules, no dunder names; bounded time.',
    getValue: () => getBusinessObject(element).get('script') || '',
    setValue: (value) => modeling.updateProperties(element, { script: value || undefined, scriptFormat: 'python' }),
  });
}

function ConditionEntry(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  const bpmnFactory = useService('bpmnFactory');
  const debounce = useService('debounceInput');
  return TextAreaEntry({
    element, id, label: 'Condition (Python expression)', debounce, monospace: true,
    description: 'True when this path is taken, e.g. decision["approve"] == "approve". Leave empty on the default flow.',
    getValue: () => {
      const expression = getBusinessObject(element).get('conditionExpression');
      return expression ? expression.get('body') || '' : '';
    },
    setValue: (value) => {
      const expression = value ? bpmnFactory.create('bpmn:FormalExpression', { body: value }) : undefined;
      modeling.updateProperties(element, { conditionExpression: expression });
    },
  });
}

function LaneRoleEntry(props) {
  const { element, id } = props;
  const modeling = useService('modeling');
  return SelectEntry({
    element, id, label: 'Role (who works the tasks in this lane)',
    description: 'Lanes are roles: the lane name decides who gets each task.',
    getValue: () => getBusinessObject(element).get('name') || '',
    setValue: (value) => modeling.updateProperties(element, { name: value }),
    getOptions: () => {
      const lanes = window.ntpsStudio ? window.ntpsStudio.lanes() : [];
      const current = getBusinessObject(element).get('name');
      const options = lanes.map((l) => ({ value: l, label: l }));
      if (current && !lanes.includes(current)) options.unshift({ value: current, label: `${current} (not a known role)` });
      return [{ value: '', label: '(choose a role)' }, ...options];
    },
  });
}

function engineGroup(element) {
  const entries = [];
  if (isAny(element, HUMAN_TASKS)) {
    entries.push(
      formEntry('formJsonSchemaFilename', 'Form (JSON Schema file)', 'The form people fill in; edit it under Forms below.'),
      formEntry('formUiSchemaFilename', 'Form layout (UI schema file)', 'Optional: field order, widgets and help texts.'),
      bodyEntry('spiffworkflow:InstructionsForEndUser', 'text', 'spiff-instructions', 'Instructions',
        'Shown above the form; {{ name }} inserts case data.'),
      propertyEntry('dueAt', 'Due (expression)', 'A date or ISO date-time over the case data, e.g. invite_due.'),
      propertyEntry('escalateTo', 'Escalate to (lanes)', 'Comma-separated roles told when the task is late, e.g. Manager,HR.'),
    );
  }
  if (is(element, 'bpmn:FlowNode')) {
    entries.push(propertyEntry('clause', 'Clause', 'The policy clause this step applies, e.g. D19-7 or MP-H.'));
  }
  if (is(element, 'bpmn:ScriptTask')) {
    entries.push({ id: 'spiff-script', component: ScriptEntry, isEdited: isTextAreaEntryEdited });
  }
  if (is(element, 'bpmn:SequenceFlow') && isAny(getBusinessObject(element).sourceRef, CONDITIONAL_SOURCES)) {
    entries.push({ id: 'spiff-condition', component: ConditionEntry, isEdited: isTextAreaEntryEdited });
  }
  if (is(element, 'bpmn:Lane')) {
    entries.push({ id: 'spiff-lane-role', component: LaneRoleEntry, isEdited: isSelectEntryEdited });
  }
  if (isAny(element, SCRIPTED)) {
    entries.push(
      bodyEntry('spiffworkflow:PreScript', 'script', 'spiff-prescript', 'Pre-script (runs before the task)'),
      bodyEntry('spiffworkflow:PostScript', 'script', 'spiff-postscript', 'Post-script (runs after the task)'),
    );
  }
  return entries.length ? { id: 'ntps-engine', label: 'Engine (NTPS workflows)', entries, component: Group } : null;
}

export default class SpiffPropertiesProvider {
  constructor(propertiesPanel) {
    propertiesPanel.registerProvider(500, this);
  }

  getGroups(element) {
    return (groups) => {
      const group = engineGroup(element);
      if (group) groups.splice(Math.min(1, groups.length), 0, group);  // right after "General"
      return groups;
    };
  }
}

SpiffPropertiesProvider.$inject = ['propertiesPanel'];

export const SpiffPropertiesModule = {
  __init__: ['spiffPropertiesProvider'],
  spiffPropertiesProvider: ['type', SpiffPropertiesProvider],
};
