// The only properties provider of mealroll's modeler: what mealroll reads from each element (lane role,
// the user task's form, due rule, reminders and instructions, script, timer, gateway conditions), in
// groups a county's process administrator can read. No Camunda or Zeebe provider is loaded: their
// fields mean nothing to SpiffWorkflow. Every visible text comes from config.mealroll.strings, which
// the page renders from the Babel catalog.

import {
  CheckboxEntry, SelectEntry, TextAreaEntry, TextFieldEntry,
  isCheckboxEntryEdited, isSelectEntryEdited, isTextAreaEntryEdited, isTextFieldEntryEdited
} from '@bpmn-io/properties-panel';
import { h } from '@bpmn-io/properties-panel/preact';

import { getInstructions, getProperty, setInstructions, setProperty } from './spiff.js';

const ID = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const TIMER_KINDS = ['timeDuration', 'timeDate', 'timeCycle'];
// Timer expressions are Python: an ISO duration or date is written as a quoted string, a variable name is not.
const LITERAL_TIME = /^(R\d*\/)?P[\dYMWDTHS.]+$|^\d{4}-\d{2}-\d{2}/;

export function format(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
}

function is(bo, type) {
  return bo && bo.$instanceOf && bo.$instanceOf(type);
}

function unquote(value) {
  return /^".*"$/.test(value) ? value.slice(1, -1) : value;
}

function timerOf(bo) {
  return (bo.eventDefinitions || []).filter((d) => is(d, 'bpmn:TimerEventDefinition'))[0];
}

function fromGateway(bo) {
  return is(bo, 'bpmn:SequenceFlow') && bo.sourceRef && is(bo.sourceRef, 'bpmn:Gateway');
}

// Entry components: thin wrappers, so that a group definition stays a plain list of fields.
function TextEntry(props) {
  return h(TextFieldEntry, {
    element: props.element, id: props.id, label: props.label, description: props.description,
    debounce: props.debounce, getValue: props.get, setValue: props.set, validate: props.validate
  });
}

function AreaEntry(props) {
  return h(TextAreaEntry, {
    element: props.element, id: props.id, label: props.label, description: props.description,
    debounce: props.debounce, getValue: props.get, setValue: props.set, rows: props.rows || 4,
    monospace: props.monospace, autoResize: true
  });
}

function ChoiceEntry(props) {
  return h(SelectEntry, {
    element: props.element, id: props.id, label: props.label, description: props.description,
    getValue: props.get, setValue: props.set, getOptions: props.options
  });
}

function FlagEntry(props) {
  return h(CheckboxEntry, {
    element: props.element, id: props.id, label: props.label, description: props.description,
    getValue: props.get, setValue: props.set
  });
}

function ButtonEntry(props) {
  return h('div', { class: 'bio-properties-panel-entry mealroll-button-entry', 'data-entry-id': props.id },
    h('button', { type: 'button', class: 'secondary', onClick: props.onClick }, props.text));
}

function HintEntry(props) {
  return h('div', { class: 'bio-properties-panel-entry mealroll-hint' + (props.kind ? ' mealroll-' + props.kind : ''),
    'data-entry-id': props.id }, h('p', null, props.text));
}

export default function MealrollPropertiesProvider(propertiesPanel, injector) {
  this._injector = injector;
  this._config = injector.get('config.mealroll', false) || {};
  propertiesPanel.registerProvider(500, this);
}

MealrollPropertiesProvider.$inject = ['propertiesPanel', 'injector'];

MealrollPropertiesProvider.prototype.getGroups = function (element) {
  // Ours are the only groups: whatever another provider might have added is dropped.
  return () => this._groups(element);
};

MealrollPropertiesProvider.prototype._groups = function (element) {
  const injector = this._injector;
  const S = this._config.strings || {};
  const roles = this._config.roles || {};
  const forms = this._config.forms || {};
  const newForms = this._config.newForms || {};
  const modeling = injector.get('modeling');
  const moddle = injector.get('moddle');
  const debounce = injector.get('debounceInput');
  const bo = element.businessObject;
  const groups = [];
  const group = (id, label, entries) => {
    const kept = entries.filter(Boolean);
    if (kept.length) groups.push({ id, label, entries: kept, shouldOpen: true });
  };

  if (!bo || is(bo, 'bpmn:Process') || is(bo, 'bpmn:Collaboration')) {
    group('mealroll-hint', S.hintGroup, [{ id: 'mealroll-hint', component: HintEntry, text: S.hint }]);
    return groups;
  }

  // What the last 校验 found wrong with this element, first: the page fills config.mealroll.findings.
  const findings = (this._config.findings || {})[bo.id] || [];
  group('mealroll-findings', S.findingsGroup, findings.map((finding, index) => ({
    id: 'mealroll-finding-' + index, component: HintEntry, text: finding.message, kind: finding.kind
  })));

  const isLane = is(bo, 'bpmn:Lane');
  const nameEntry = isLane ? null : {
    id: 'mealroll-name', component: TextEntry, isEdited: isTextFieldEntryEdited, label: S.name, debounce,
    get: () => bo.name || '',
    set: (value) => modeling.updateProperties(element, { name: value || undefined })
  };
  const idEntry = is(bo, 'bpmn:Participant') ? null : {
    id: 'mealroll-id', component: TextEntry, isEdited: isTextFieldEntryEdited, label: S.id, debounce,
    description: S.idHint,
    get: () => bo.id,
    validate: (value) => {
      if (!value) return S.idEmpty;
      if (!ID.test(value)) return S.idInvalid;
      if (value !== bo.id && (bo.$model && bo.$model.ids ? bo.$model.ids.assigned(value)
        : injector.get('elementRegistry').get(value))) return S.idTaken;
      return null;
    },
    set: (value, error) => { if (!error && value && value !== bo.id) modeling.updateProperties(element, { id: value }); }
  };
  group('mealroll-general', S.generalGroup, [nameEntry, idEntry]);

  if (isLane) {
    // Lane names are role codes in the BPMN; the page shows their Chinese labels and maps them back on export.
    const known = Object.keys(roles).map((code) => roles[code]);
    group('mealroll-lane', S.laneGroup, [{
      id: 'mealroll-role', component: ChoiceEntry, isEdited: isSelectEntryEdited, label: S.role,
      description: S.roleHint,
      get: () => bo.name || '',
      options: () => {
        const options = known.map((label) => ({ value: label, label }));
        if (known.indexOf(bo.name || '') < 0) options.unshift({ value: bo.name || '', label: format(S.roleUnknown, { name: bo.name || '' }) });
        return options;
      },
      set: (value) => modeling.updateProperties(element, { name: value })
    }]);
  }

  if (is(bo, 'bpmn:UserTask')) {
    const current = () => getProperty(bo, 'form');
    group('mealroll-task', S.taskGroup, [{
      id: 'mealroll-form', component: ChoiceEntry, isEdited: isSelectEntryEdited, label: S.form,
      get: current,
      options: () => {
        const options = [{ value: '', label: S.noForm }].concat(Object.keys(forms).sort().map((name) => ({
          value: name,
          label: (forms[name] && forms[name].title ? forms[name].title + '（' + name + '）' : name) + (newForms[name] ? ' *' : '')
        })));
        if (current() && !forms[current()]) options.push({ value: current(), label: format(S.formMissing, { name: current() }) });
        return options;
      },
      set: (value) => setProperty(injector, element, 'form', value)
    }, {
      id: 'mealroll-form-edit', component: ButtonEntry,
      text: current() && forms[current()] ? S.editForm : S.newForm,
      onClick: () => {
        const name = current() && forms[current()] ? current() : '';
        if (this._config.editForm) this._config.editForm(name, (saved) => {
          if (saved === current()) injector.get('eventBus').fire('elements.changed', { elements: [element] });
          else setProperty(injector, element, 'form', saved);
        });
      }
    }, {
      id: 'mealroll-due', component: TextEntry, isEdited: isTextFieldEntryEdited, label: S.due, description: S.dueHint,
      debounce, get: () => getProperty(bo, 'due'), set: (value) => setProperty(injector, element, 'due', value)
    }, {
      id: 'mealroll-reminders', component: TextEntry, isEdited: isTextFieldEntryEdited, label: S.reminders,
      description: S.remindersHint, debounce,
      get: () => getProperty(bo, 'reminders'), set: (value) => setProperty(injector, element, 'reminders', value)
    }, {
      id: 'mealroll-instructions', component: AreaEntry, isEdited: isTextAreaEntryEdited, label: S.instructions,
      description: S.instructionsHint, debounce, rows: 5,
      get: () => getInstructions(bo), set: (value) => setInstructions(injector, element, value)
    }]);
  }

  if (is(bo, 'bpmn:ScriptTask')) {
    group('mealroll-script', S.scriptGroup, [{
      id: 'mealroll-script', component: AreaEntry, isEdited: isTextAreaEntryEdited, label: S.script,
      description: S.scriptHint, debounce, rows: 6, monospace: true,
      get: () => bo.script || '',
      set: (value) => modeling.updateProperties(element, { script: value || undefined, scriptFormat: 'python' })
    }]);
  }

  const timer = timerOf(bo);
  if (timer) {
    const kind = () => TIMER_KINDS.filter((k) => timer[k])[0] || 'timeDuration';
    const expression = () => (timer[kind()] ? unquote(timer[kind()].body || '') : '');
    const update = (to, value) => {
      const props = { timeDuration: undefined, timeDate: undefined, timeCycle: undefined };
      value = (value || '').trim();
      if (value) props[to] = moddle.create('bpmn:FormalExpression', { body: LITERAL_TIME.test(value) ? '"' + value + '"' : value });
      modeling.updateModdleProperties(element, timer, props);
    };
    group('mealroll-timer', S.timerGroup, [{
      id: 'mealroll-timer-kind', component: ChoiceEntry, isEdited: () => true, label: S.timerKind,
      get: kind,
      options: () => TIMER_KINDS.map((k) => ({ value: k, label: S[k] })),
      set: (value) => update(value, expression())
    }, {
      id: 'mealroll-timer-expression', component: TextEntry, isEdited: isTextFieldEntryEdited, label: S.timerExpression,
      description: S.timerHint, debounce, get: expression, set: (value) => update(kind(), value)
    }]);
  }

  if (fromGateway(bo)) {
    const gateway = bo.sourceRef;
    const isDefault = () => gateway.default === bo;
    group('mealroll-condition', S.conditionGroup, [{
      id: 'mealroll-condition', component: AreaEntry, isEdited: isTextAreaEntryEdited, label: S.condition,
      description: isDefault() ? S.defaultFlowHint : S.conditionHint, debounce, rows: 2, monospace: true,
      get: () => (bo.conditionExpression ? bo.conditionExpression.body || '' : ''),
      set: (value) => modeling.updateProperties(element, {
        conditionExpression: value && value.trim() ? moddle.create('bpmn:FormalExpression', { body: value.trim() }) : undefined
      })
    }, is(gateway, 'bpmn:ParallelGateway') ? null : {
      id: 'mealroll-default-flow', component: FlagEntry, isEdited: isCheckboxEntryEdited, label: S.defaultFlow,
      get: isDefault,
      set: (value) => {
        const shape = injector.get('elementRegistry').get(gateway.id);
        if (shape) modeling.updateProperties(shape, { default: value ? bo : undefined });
      }
    }]);
  }

  return groups;
};
