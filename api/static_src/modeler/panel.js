// Entry of api/static/vendor/modeler-panel/modeler-panel.min.js (built by scripts/vendor_assets.py).
// The page loads bpmn-js' own modeler build first (window.BpmnJS); this bundle adds the properties
// panel as bpmn-js modules: `new BpmnJS({additionalModules: MealrollModelerPanel.modules(strings), …})`.

import { BpmnPropertiesPanelModule } from 'bpmn-js-properties-panel';

import MealrollPropertiesProvider, { format } from './provider.js';

const MealrollPropertiesProviderModule = {
  __init__: ['mealrollPropertiesProvider'],
  mealrollPropertiesProvider: ['type', MealrollPropertiesProvider]
};

// bpmn-js and the panel pass their English texts through `translate`; the page gives the Chinese ones
// (from the Babel catalog) keyed by the English text. A text without a translation stays as it is.
function translateModule(texts) {
  return {
    translate: ['value', function translate(template, replacements) {
      return format(Object.prototype.hasOwnProperty.call(texts, template) ? texts[template] : template, replacements || {});
    }]
  };
}

window.MealrollModelerPanel = {
  modules(texts) {
    return [BpmnPropertiesPanelModule, MealrollPropertiesProviderModule, translateModule(texts || {})];
  },
  format
};
