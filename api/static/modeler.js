// The process modeler (/processes/{id}/edit, /processes/new) and the diagram of a version diff.
// bpmn-js draws and edits the diagram; the properties panel on the right (bpmn-js-properties-panel with
// mealroll's provider, api/static_src/modeler/) edits what mealroll reads from each element (lane role,
// form, due rule, reminders, timers, conditions, scripts) in plain words. Visible texts come from the
// page (#modeler-strings, rendered from the catalog).
// The server is the authority: 校验 calls POST /api/process-definitions/validate and marks every
// element an error names; a deploy that fails validation changes nothing.
(function () {
  "use strict";
  var FONT = '"Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif';

  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  // Lane names in the BPMN are role codes; the diagram shows their Chinese labels and maps them back on export.
  function relabelLanes(xml, map) {
    var doc = new DOMParser().parseFromString(xml, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) return xml;
    var lanes = doc.getElementsByTagNameNS("http://www.omg.org/spec/BPMN/20100524/MODEL", "lane");
    Array.prototype.forEach.call(lanes, function (lane) {
      var to = map[lane.getAttribute("name")];
      if (to) lane.setAttribute("name", to);
    });
    return new XMLSerializer().serializeToString(doc);
  }
  function invert(map) {
    var out = {};
    Object.keys(map).forEach(function (k) { out[map[k]] = k; });
    return out;
  }

  // --- the diff page: a read-only diagram with added and changed elements marked ---------------
  function diffPage() {
    var data = JSON.parse($("#diff-data").textContent);
    var canvasEl = $("#diff-canvas");
    var script = el("script", {src: canvasEl.dataset.viewer});
    script.onload = function () {
      var viewer = new window.BpmnJS({container: canvasEl, textRenderer: {defaultStyle: {fontFamily: FONT}}});
      viewer.importXML(relabelLanes(data.bpmn, data.lane_labels)).then(function () {
        var canvas = viewer.get("canvas"), registry = viewer.get("elementRegistry");
        ["added", "changed"].forEach(function (kind) {
          data.marks[kind].forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, "diff-" + kind); });
        });
        canvas.zoom("fit-viewport");
      });
    };
    document.head.appendChild(script);
  }

  // --- the modeler -----------------------------------------------------------------------------
  function modelerPage(root) {
    var setup = JSON.parse($("#modeler-setup").textContent);
    var strings = JSON.parse($("#modeler-strings").textContent);
    var T = strings.page;
    var fmt = window.MealrollModelerPanel.format;
    var csrf = root.dataset.csrf;
    var status = $(".modeler-status", root);
    var findingsCard = $(".modeler-findings", root);
    var forms = setup.forms;       // name → JSON Schema: deployed ones, plus those edited here
    var newForms = {};             // edited or created here: deployed with the process
    var toLabel = setup.roles, toCode = invert(setup.roles);
    var marked = [];
    var findingsById = {};         // element id → [{message, kind}] of the last validation, shown in the panel

    // The properties panel (bpmn-js-properties-panel, with mealroll's provider only) edits each element;
    // the form editor below is the page's, opened from the panel's form field.
    var modeler = new window.BpmnJS({
      container: $("#modeler-canvas"), keyboard: {bindTo: document},
      textRenderer: {defaultStyle: {fontFamily: FONT}},
      propertiesPanel: {parent: "#modeler-panel"},
      additionalModules: window.MealrollModelerPanel.modules(strings.translate),
      mealroll: {roles: toLabel, forms: forms, newForms: newForms, strings: strings.panel, editForm: openFormDialog,
                findings: findingsById}
    });
    var registry = modeler.get("elementRegistry"), canvas = modeler.get("canvas");

    function say(text, isError) {
      status.textContent = text;
      status.className = "modeler-status " + (isError ? "error" : "meta");
    }

    function load(xml) {
      return modeler.importXML(relabelLanes(xml, toLabel)).then(function (result) {
        canvas.zoom("fit-viewport");
        clearMarks();
        if (result.warnings && result.warnings.length) say(fmt(T.importWarnings, {count: result.warnings.length}));
      }).catch(function (err) { say(fmt(T.cannotOpen, {error: err.message}), true); });
    }

    function exportXml() {
      applyNewProcessId();
      return modeler.saveXML({format: true}).then(function (r) { return relabelLanes(r.xml, toCode); });
    }

    // --- forms: pick one in the panel, or write JSON Schema here with a live preview -------------
    var dialog = $("#form-dialog"), formName = $("#form-name"), formJson = $("#form-json");
    var formError = $(".form-json-error", dialog), preview = $(".form-preview", dialog);
    var onFormSaved = null;

    var seq = 0;
    function field(label, input, hint) {
      var id = "preview-" + (++seq);
      input.id = id;
      return el("div", {"class": "field"}, [el("label", {"for": id, text: label}), input,
        hint ? el("p", {"class": "hint", text: hint}) : null]);
    }
    function select(options) {
      var s = el("select");
      options.forEach(function (o) { s.appendChild(el("option", {value: o[0], text: o[1]})); });
      return s;
    }

    function renderPreview() {
      var schema;
      preview.innerHTML = "";
      try { schema = JSON.parse(formJson.value); } catch (err) {
        formError.textContent = fmt(T.jsonError, {error: err.message});
        return null;
      }
      if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
        formError.textContent = T.formNotObject;
        return null;
      }
      formError.textContent = "";
      var required = schema.required || [];
      if (schema.title) preview.appendChild(el("h4", {text: schema.title}));
      var props = schema.properties || {};
      Object.keys(props).forEach(function (key) {
        var p = props[key] || {}, input;
        var choices = p["enum"] ? p["enum"].map(function (v) { return [String(v), String(v)]; })
          : p.oneOf ? p.oneOf.map(function (o) { return [String(o["const"]), o.title || String(o["const"])]; }) : null;
        if (choices) input = select([["", T.choose]].concat(choices));
        else if (p.type === "boolean") input = el("input", {type: "checkbox"});
        else if (p.type === "integer" || p.type === "number") input = el("input", {type: "number"});
        else if (p.format === "date") input = el("input", {type: "date"});
        else if (p.maxLength && p.maxLength > 200) input = el("textarea", {rows: "3"});
        else input = el("input", {type: "text"});
        var label = (p.title || key) + (required.indexOf(key) >= 0 ? " *" : "");
        preview.appendChild(field(label, input, p.description || null));
      });
      if (!Object.keys(props).length) preview.appendChild(el("p", {"class": "meta", text: T.noFields}));
      return schema;
    }

    // Called by the panel's form field: `name` is the form to edit ("" for a new one); `done(name)` puts
    // the saved form on the task.
    function openFormDialog(name, done) {
      onFormSaved = done;
      formName.value = name;
      formJson.value = JSON.stringify(name ? forms[name] : {
        type: "object", title: T.newFormTitle, required: ["decision"],
        properties: {decision: {type: "string", title: T.newFormDecision, oneOf: [
          {"const": "approve", title: T.newFormApprove}, {"const": "return", title: T.newFormReturn}]},
        comment: {type: "string", title: T.newFormComment, maxLength: 500}}
      }, null, 2);
      renderPreview();
      if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
    }
    var previewTimer = null;
    formJson.addEventListener("input", function () {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(renderPreview, 250);
    });
    $("#form-cancel").addEventListener("click", function () { dialog.close(); });
    $("#form-save").addEventListener("click", function () {
      var schema = renderPreview(), name = formName.value.trim();
      if (!/^[A-Za-z0-9_]+$/.test(name)) { formError.textContent = T.formNameInvalid; return; }
      if (!schema) return;
      forms[name] = schema;
      newForms[name] = schema;
      dialog.close();
      if (onFormSaved) onFormSaved(name);
    });

    // --- validation, highlighted on the diagram ---------------------------------------------------
    function clearMarks() {
      marked.forEach(function (id) { if (registry.get(id)) canvas.removeMarker(id, "has-error"); });
      marked = [];
      Object.keys(findingsById).forEach(function (id) { delete findingsById[id]; });
      modeler.get("eventBus").fire("propertiesPanel.providersChanged");  // the panel shows the findings anew
    }
    function showFindings(errors, warnings) {
      clearMarks();
      var list = $(".findings", findingsCard);
      list.innerHTML = "";
      findingsCard.hidden = !(errors.length || warnings.length);
      function add(item, cls) {
        var id = item.element_id;
        var li = el("li", {"class": cls, tabindex: "0", "data-kind": cls === "error" ? T.findingError : T.findingWarning,
          text: (id ? "[" + id + "] " : "") + item.message});
        if (id && registry.get(id)) {
          if (cls === "error" && marked.indexOf(id) < 0) { canvas.addMarker(id, "has-error"); marked.push(id); }
          (findingsById[id] = findingsById[id] || []).push({message: item.message, kind: cls});
          li.addEventListener("click", function () {
            var target = registry.get(id);
            modeler.get("selection").select(target);
            canvas.scrollToElement(target);
          });
        }
        list.appendChild(li);
      }
      errors.forEach(function (e) { add(e, "error"); });
      warnings.forEach(function (w) { add(w, "warning"); });
      modeler.get("eventBus").fire("propertiesPanel.providersChanged");
    }

    function post(url, body, json) {
      return fetch(url, {method: "POST", credentials: "same-origin", body: json ? JSON.stringify(body) : body,
        headers: {"X-CSRF-Token": csrf, "Accept": "application/json",
                  "Content-Type": json ? "application/json" : "application/xml"}})
        .then(function (r) { return r.json().then(function (data) { return {status: r.status, data: data}; }); });
    }

    function validate() {
      say(T.validating);
      return exportXml().then(function (xml) {
        // New forms are not deployed yet: the check endpoint takes them along; otherwise the contract endpoint.
        return Object.keys(newForms).length ? post("/api/process-definitions/check", {bpmn: xml, forms: newForms}, true)
          : post("/api/process-definitions/validate", xml, false);
      }).then(function (r) {
        if (r.status !== 200) { say(r.data.message || fmt(T.checkFailed, {status: r.status}), true); return false; }
        showFindings(r.data.errors, r.data.warnings);
        say(r.data.valid ? (r.data.warnings.length ? fmt(T.validWithWarnings, {count: r.data.warnings.length}) : T.valid)
          : fmt(T.invalid, {count: r.data.errors.length}), !r.data.valid);
        return r.data.valid;
      }).catch(function (err) { say(fmt(T.checkRequestFailed, {error: err.message}), true); return false; });
    }

    function applyNewProcessId() {
      var idInput = $("#new-process-id"), nameInput = $("#new-process-name");
      if (!idInput) return;
      var participant = registry.filter(function (e) { return e.type === "bpmn:Participant"; })[0];
      var process = participant ? participant.businessObject.processRef : canvas.getRootElement().businessObject;
      if (idInput.value.trim()) process.id = idInput.value.trim();
      if (nameInput.value.trim()) {
        process.name = nameInput.value.trim();
        if (participant) modeler.get("modeling").updateProperties(participant, {name: nameInput.value.trim()});
      }
    }

    function deploy() {
      var note = $("#deploy-note").value.trim();
      if (!note) { say(T.noteRequired, true); $("#deploy-note").focus(); return; }
      if ($("#new-process-id") && !/^[A-Za-z_][A-Za-z0-9_]*$/.test($("#new-process-id").value.trim())) {
        say(T.processIdInvalid, true); $("#new-process-id").focus(); return;
      }
      say(T.deploying);
      exportXml().then(function (xml) {
        var url = setup.process_id ? "/api/processes/" + encodeURIComponent(setup.process_id) + "/versions" : "/api/processes";
        return post(url, {bpmn: xml, note: note, forms: newForms}, true);
      }).then(function (r) {
        if (r.status === 201) {
          if (!r.data.created) { say(fmt(T.unchanged, {version: r.data.version})); return; }
          window.location.href = "/processes/" + encodeURIComponent(r.data.process_id) + "?deployed=" + r.data.version;
          return;
        }
        var details = Array.isArray(r.data.details) ? r.data.details : [];
        showFindings(details.filter(function (d) { return d.message; }).map(function (d) {
          return {element_id: d.element_id || null, message: d.message}; }), []);
        say(fmt(T.notDeployed, {message: r.data.message || ("HTTP " + r.status)}), true);
      }).catch(function (err) { say(fmt(T.deployRequestFailed, {error: err.message}), true); });
    }

    function download() {
      exportXml().then(function (xml) {
        var blob = new Blob([xml], {type: "application/xml"});
        var a = el("a", {href: URL.createObjectURL(blob), download: (setup.process_id || $("#new-process-id").value || "process") + ".bpmn"});
        document.body.appendChild(a);
        a.click();
        a.remove();
      });
    }

    $("#import-file").addEventListener("change", function (ev) {
      var file = ev.target.files[0];
      if (!file) return;
      if (file.size > 5 * 1024 * 1024) { say(T.fileTooLarge, true); return; }
      file.text().then(function (text) { return load(text); }).then(function () { say(fmt(T.imported, {name: file.name})); });
      ev.target.value = "";
    });
    $("#btn-validate").addEventListener("click", validate);
    $("#btn-deploy").addEventListener("click", deploy);
    $("#btn-download").addEventListener("click", download);
    load(setup.bpmn);
    window.mealrollModeler = modeler;  // for the browser tests and for curious administrators
  }

  function start() {
    var root = document.getElementById("modeler");
    if (root && window.BpmnJS && window.MealrollModelerPanel) modelerPage(root);
    else if (document.getElementById("diff-data")) diffPage();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
