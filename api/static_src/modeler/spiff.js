// mealroll's properties of a BPMN element, kept in SpiffWorkflow's extension elements:
//   <spiffworkflow:properties><spiffworkflow:property name="due" value="P5D"/>…</spiffworkflow:properties>
//   <spiffworkflow:instructionsForEndUser>…</spiffworkflow:instructionsForEndUser>
// bpmn-js reads the spiffworkflow namespace as generic elements (no moddle descriptor: one would make
// bpmn-js drop the serviceTaskOperator and every other spiff element it does not describe on import).
// Every change builds new extension objects and leaves the old ones untouched, so that undo restores them.

export const SPIFF = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
const PROPERTIES = 'spiffworkflow:properties';
const INSTRUCTIONS = 'spiffworkflow:instructionsForEndUser';

function values(bo) {
  return (bo.extensionElements && bo.extensionElements.values) || [];
}

function find(bo, type) {
  return values(bo).filter((v) => v.$type === type)[0];
}

export function getProperty(bo, name) {
  const props = find(bo, PROPERTIES);
  const found = props && (props.$children || []).filter((c) => c.name === name)[0];
  return found ? found.value || '' : '';
}

export function getInstructions(bo) {
  const found = find(bo, INSTRUCTIONS);
  return found ? found.$body || '' : '';
}

// The element's extension values with the one of `type` replaced by `replacement` (null: removed), in place.
function replaced(injector, element, type, replacement) {
  const moddle = injector.get('moddle');
  const bo = element.businessObject;
  const old = values(bo);
  const kept = old.map((v) => (v.$type === type ? replacement : v)).filter(Boolean);
  if (replacement && !old.some((v) => v.$type === type)) kept.push(replacement);
  if (!kept.length) return undefined;
  const ext = moddle.create('bpmn:ExtensionElements', { values: kept });
  ext.$parent = bo;
  if (replacement) replacement.$parent = ext;
  return ext;
}

export function setProperty(injector, element, name, value) {
  const moddle = injector.get('moddle');
  const bo = element.businessObject;
  value = (value || '').trim();
  if (value === getProperty(bo, name)) return;
  const old = find(bo, PROPERTIES);
  const children = ((old && old.$children) || []).slice();
  const at = children.findIndex((c) => c.name === name);
  const property = value ? moddle.createAny('spiffworkflow:property', SPIFF, { name, value }) : null;
  if (at >= 0) children.splice(at, 1, ...(property ? [property] : []));
  else if (property) children.push(property);
  let props = null;
  if (children.length) {
    props = moddle.createAny(PROPERTIES, SPIFF, { $children: children });
    children.forEach((c) => { c.$parent = props; });
  }
  injector.get('modeling').updateProperties(element, { extensionElements: replaced(injector, element, PROPERTIES, props) });
}

export function setInstructions(injector, element, value) {
  const moddle = injector.get('moddle');
  value = (value || '').trim();
  if (value === getInstructions(element.businessObject)) return;
  const node = value ? moddle.createAny(INSTRUCTIONS, SPIFF, { $body: value }) : null;
  injector.get('modeling').updateProperties(element, { extensionElements: replaced(injector, element, INSTRUCTIONS, node) });
}
