// The process modeler (/processes/{id}/edit, /processes/new) and the diagram of a version diff.
// bpmn-js draws and edits the diagram; the panel on the right edits what mealroll reads from each
// element (lane role, form, due rule, reminders, timers, conditions, scripts) in plain words.
// The server is the authority: 校验 calls POST /api/process-definitions/validate and marks every
// element an error names; a deploy that fails validation changes nothing.
(function () {
  "use strict";
  var SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core";
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
    var csrf = root.dataset.csrf;
    var status = $(".modeler-status", root);
    var panel = $("#modeler-panel");
    var findingsCard = $(".modeler-findings", root);
    var forms = setup.forms;       // name → JSON Schema: deployed ones, plus those edited here
    var newForms = {};             // edited or created here: deployed with the process
    var toLabel = setup.roles, toCode = invert(setup.roles);
    var marked = [];

    var modeler = new window.BpmnJS({
      container: $("#modeler-canvas"), keyboard: {bindTo: document},
      textRenderer: {defaultStyle: {fontFamily: FONT}}
    });
    var modeling = modeler.get("modeling"), moddle = modeler.get("moddle");
    var registry = modeler.get("elementRegistry"), canvas = modeler.get("canvas");

    function say(text, isError) {
      status.textContent = text;
      status.className = "modeler-status " + (isError ? "error" : "meta");
    }

    function load(xml) {
      return modeler.importXML(relabelLanes(xml, toLabel)).then(function (result) {
        canvas.zoom("fit-viewport");
        clearMarks();
        showPanel(null);
        if (result.warnings && result.warnings.length) say("导入时有 " + result.warnings.length + " 处无法识别的内容已忽略。");
      }).catch(function (err) { say("无法打开此文件：" + err.message, true); });
    }

    function exportXml() {
      applyNewProcessId();
      return modeler.saveXML({format: true}).then(function (r) { return relabelLanes(r.xml, toCode); });
    }

    // --- mealroll properties (spiffworkflow:properties) as generic extension elements ---------
    function spiffProps(bo, create) {
      var ext = bo.extensionElements;
      if (!ext) {
        if (!create) return null;
        ext = moddle.create("bpmn:ExtensionElements", {values: []});
        ext.$parent = bo;
        bo.extensionElements = ext;
      }
      ext.values = ext.values || [];
      var props = ext.values.filter(function (v) { return v.$type === "spiffworkflow:properties"; })[0];
      if (!props) {
        if (!create) return null;
        props = moddle.createAny("spiffworkflow:properties", SPIFF, {$children: []});
        ext.values.push(props);
      }
      props.$children = props.$children || [];
      return props;
    }
    function getProp(bo, name) {
      var props = spiffProps(bo, false);
      var found = props && props.$children.filter(function (c) { return c.name === name; })[0];
      return found ? found.value || "" : "";
    }
    function setProp(element, name, value) {
      var bo = element.businessObject, props = spiffProps(bo, true);
      props.$children = props.$children.filter(function (c) { return c.name !== name; });
      if (value) props.$children.push(moddle.createAny("spiffworkflow:property", SPIFF, {name: name, value: value}));
      modeling.updateProperties(element, {extensionElements: bo.extensionElements});
    }
    function getInstructions(bo) {
      var ext = bo.extensionElements, found = ext && (ext.values || []).filter(function (v) {
        return v.$type === "spiffworkflow:instructionsForEndUser"; })[0];
      return found ? found.$body || "" : "";
    }
    function setInstructions(element, value) {
      var bo = element.businessObject;
      spiffProps(bo, true);
      var ext = bo.extensionElements;
      ext.values = ext.values.filter(function (v) { return v.$type !== "spiffworkflow:instructionsForEndUser"; });
      if (value) ext.values.push(moddle.createAny("spiffworkflow:instructionsForEndUser", SPIFF, {$body: value}));
      modeling.updateProperties(element, {extensionElements: ext});
    }

    // --- the panel ------------------------------------------------------------------------------
    var seq = 0;
    function field(label, input, hint) {
      var id = "prop-" + (++seq);
      input.id = id;
      return el("div", {"class": "field"}, [el("label", {"for": id, text: label}), input,
        hint ? el("p", {"class": "hint", text: hint}) : null]);
    }
    function textInput(value, onchange, multiline) {
      var input = el(multiline ? "textarea" : "input", multiline ? {rows: "4"} : {});
      input.value = value || "";
      input.addEventListener("change", function () { onchange(input.value.trim()); });
      return input;
    }
    function select(options, value, onchange) {
      var s = el("select");
      options.forEach(function (o) {
        var opt = el("option", {value: o[0], text: o[1]});
        if (o[0] === value) opt.selected = true;
        s.appendChild(opt);
      });
      s.addEventListener("change", function () { onchange(s.value); });
      return s;
    }
    var KINDS = {"bpmn:UserTask": "人工环节", "bpmn:ServiceTask": "系统操作", "bpmn:ScriptTask": "脚本计算",
      "bpmn:ExclusiveGateway": "排他网关", "bpmn:ParallelGateway": "并行网关", "bpmn:InclusiveGateway": "包容网关",
      "bpmn:StartEvent": "开始事件", "bpmn:EndEvent": "结束事件", "bpmn:BoundaryEvent": "边界事件",
      "bpmn:IntermediateCatchEvent": "中间事件", "bpmn:SequenceFlow": "连线", "bpmn:Lane": "泳道",
      "bpmn:Participant": "流程", "bpmn:Process": "流程"};

    function unquote(v) { return /^".*"$/.test(v) ? v.slice(1, -1) : v; }
    function quoteIfLiteral(v) {
      // Timer expressions are Python: an ISO duration or date is written as a quoted string.
      return /^(R\d*\/)?P[\dYMWDTHS.]+$|^\d{4}-\d{2}-\d{2}/.test(v) ? '"' + v + '"' : v;
    }
    function timerOf(bo) {
      return (bo.eventDefinitions || []).filter(function (d) { return d.$type === "bpmn:TimerEventDefinition"; })[0];
    }

    function showPanel(element) {
      panel.innerHTML = "";
      if (!element || element.type === "bpmn:Process") {
        panel.appendChild(el("p", {"class": "meta", text: "点选流程图中的环节、泳道、连线或定时器，在这里修改它的属性。"}));
        return;
      }
      var bo = element.businessObject;
      panel.appendChild(el("h3", {text: (bo.name || bo.id)}, []));
      panel.appendChild(el("p", {"class": "kind", text: (KINDS[element.type] || element.type) + " · id " + bo.id}));
      if (element.type === "bpmn:Lane") {
        var roles = Object.keys(toLabel).map(function (code) { return [toLabel[code], toLabel[code]]; });
        if (!toCode[bo.name]) roles.unshift([bo.name || "", (bo.name || "") + "（不是已知角色）"]);
        panel.appendChild(field("办理角色", select(roles, bo.name || "", function (v) {
          modeling.updateProperties(element, {name: v}); showPanel(element);
        }), "泳道里的人工环节由此角色办理。"));
        return;
      }
      if (element.type !== "label") {
        panel.appendChild(field("名称", textInput(bo.name, function (v) {
          modeling.updateProperties(element, {name: v}); })));
      }
      if (element.type === "bpmn:UserTask") {
        var names = Object.keys(forms).sort();
        var current = getProp(bo, "form");
        var options = [["", "（无表单）"]].concat(names.map(function (n) {
          return [n, (forms[n].title ? forms[n].title + "（" + n + "）" : n) + (newForms[n] ? " *" : "")]; }));
        if (current && !forms[current]) options.push([current, current + "（不存在）"]);
        var formSelect = select(options, current, function (v) { setProp(element, "form", v); showPanel(element); });
        panel.appendChild(field("表单", formSelect));
        panel.appendChild(el("p", {}, [
          el("button", {type: "button", "class": "secondary", text: current && forms[current] ? "编辑此表单" : "新建表单",
            onclick: function () { openFormDialog(element, current && forms[current] ? current : ""); }})]));
        panel.appendChild(field("办理期限", textInput(getProp(bo, "due"), function (v) { setProp(element, "due", v); }),
          "P5D：5 天；P5WD：5 个工作日；--09-10：每年 9 月 10 日。留空表示不设期限。"));
        panel.appendChild(field("提醒规则", textInput(getProp(bo, "reminders"), function (v) { setProp(element, "reminders", v); }),
          "留空用默认：-P3D,-P1D,P0D,overdue-daily,escalate-after-3（提前 3 天、1 天、当天，逾期每天提醒，逾期 3 个工作日上报）。"));
        panel.appendChild(field("办理说明", textInput(getInstructions(bo), function (v) { setInstructions(element, v); }, true),
          "显示在任务页上，可用 {{ 变量 }}。"));
      }
      if (element.type === "bpmn:ScriptTask") {
        panel.appendChild(field("脚本（Python 表达式，只能使用流程数据）", textInput(bo.script, function (v) {
          modeling.updateProperties(element, {script: v, scriptFormat: "python"}); }, true)));
      }
      var timer = timerOf(bo);
      if (timer) {
        var kind = timer.timeDuration ? "timeDuration" : timer.timeDate ? "timeDate" : timer.timeCycle ? "timeCycle" : "timeDuration";
        var expr = timer[kind] ? unquote(timer[kind].body || "") : "";
        var kindSelect = select([["timeDuration", "等待时长"], ["timeDate", "到指定时间"], ["timeCycle", "周期"]], kind,
          function (v) { updateTimer(v, exprInput.value.trim()); });
        var exprInput = textInput(expr, function (v) { updateTimer(kindSelect.value, v); });
        panel.appendChild(field("定时方式", kindSelect));
        panel.appendChild(field("定时表达式", exprInput,
          "如 P5D（5 天）、PT12H（12 小时）、2026-09-10T08:00:00+08:00，或保存时间的流程变量名。"));
      }
      function updateTimer(kind, value) {
        var props = {timeDuration: undefined, timeDate: undefined, timeCycle: undefined};
        if (value) props[kind] = moddle.create("bpmn:FormalExpression", {body: quoteIfLiteral(value)});
        modeling.updateModdleProperties(element, timer, props);
      }
      if (element.type === "bpmn:SequenceFlow" && bo.sourceRef && /Gateway$/.test(bo.sourceRef.$type)) {
        var isDefault = bo.sourceRef.default === bo;
        var cond = bo.conditionExpression ? bo.conditionExpression.body || "" : "";
        panel.appendChild(field("条件（Python 表达式）", textInput(cond, function (v) {
          modeling.updateProperties(element, {conditionExpression: v ? moddle.create("bpmn:FormalExpression", {body: v}) : undefined});
        }), isDefault ? "这是网关的默认路径：其他条件都不满足时走这里。" : "例如 decision == \"approve\"。"));
      }
    }

    // --- forms: pick one, or write JSON Schema with a live preview ------------------------------
    var dialog = $("#form-dialog"), formName = $("#form-name"), formJson = $("#form-json");
    var formError = $(".form-json-error", dialog), preview = $(".form-preview", dialog);
    var dialogElement = null;

    function renderPreview() {
      var schema;
      preview.innerHTML = "";
      try { schema = JSON.parse(formJson.value); } catch (err) {
        formError.textContent = "JSON 格式错误：" + err.message;
        return null;
      }
      if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
        formError.textContent = "表单须是 JSON 对象";
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
        if (choices) input = select([["", "请选择"]].concat(choices), "", function () {});
        else if (p.type === "boolean") input = el("input", {type: "checkbox"});
        else if (p.type === "integer" || p.type === "number") input = el("input", {type: "number"});
        else if (p.format === "date") input = el("input", {type: "date"});
        else if (p.maxLength && p.maxLength > 200) input = el("textarea", {rows: "3"});
        else input = el("input", {type: "text"});
        var label = (p.title || key) + (required.indexOf(key) >= 0 ? " *" : "");
        preview.appendChild(field(label, input, p.description || null));
      });
      if (!Object.keys(props).length) preview.appendChild(el("p", {"class": "meta", text: "（没有字段）"}));
      return schema;
    }

    function openFormDialog(element, name) {
      dialogElement = element;
      formName.value = name;
      formName.readOnly = false;
      formJson.value = JSON.stringify(name ? forms[name] : {
        type: "object", title: "新表单", required: ["decision"],
        properties: {decision: {type: "string", title: "结论", oneOf: [{"const": "approve", title: "通过"},
          {"const": "return", title: "退回修改"}]}, comment: {type: "string", title: "意见", maxLength: 500}}
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
      if (!/^[A-Za-z0-9_]+$/.test(name)) { formError.textContent = "表单名称：只能用英文字母、数字和下划线"; return; }
      if (!schema) return;
      forms[name] = schema;
      newForms[name] = schema;
      if (dialogElement) setProp(dialogElement, "form", name);
      dialog.close();
      showPanel(dialogElement);
    });

    // --- validation, highlighted on the diagram ---------------------------------------------------
    function clearMarks() {
      marked.forEach(function (id) { if (registry.get(id)) canvas.removeMarker(id, "has-error"); });
      marked = [];
    }
    function showFindings(errors, warnings) {
      clearMarks();
      var list = $(".findings", findingsCard);
      list.innerHTML = "";
      findingsCard.hidden = !(errors.length || warnings.length);
      function add(item, cls) {
        var id = item.element_id;
        var li = el("li", {"class": cls, tabindex: "0", text: (id ? "[" + id + "] " : "") + item.message});
        if (id && registry.get(id)) {
          if (cls === "error" && marked.indexOf(id) < 0) { canvas.addMarker(id, "has-error"); marked.push(id); }
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
    }

    function post(url, body, json) {
      return fetch(url, {method: "POST", credentials: "same-origin", body: json ? JSON.stringify(body) : body,
        headers: {"X-CSRF-Token": csrf, "Accept": "application/json",
                  "Content-Type": json ? "application/json" : "application/xml"}})
        .then(function (r) { return r.json().then(function (data) { return {status: r.status, data: data}; }); });
    }

    function validate() {
      say("正在校验…");
      return exportXml().then(function (xml) {
        // New forms are not deployed yet: the check endpoint takes them along; otherwise the contract endpoint.
        return Object.keys(newForms).length ? post("/api/process-definitions/check", {bpmn: xml, forms: newForms}, true)
          : post("/api/process-definitions/validate", xml, false);
      }).then(function (r) {
        if (r.status !== 200) { say(r.data.message || ("校验失败：HTTP " + r.status), true); return false; }
        showFindings(r.data.errors, r.data.warnings);
        say(r.data.valid ? "校验通过" + (r.data.warnings.length ? "（有 " + r.data.warnings.length + " 条提示）" : "") + "。"
          : "有 " + r.data.errors.length + " 处错误，已在图中标红。", !r.data.valid);
        return r.data.valid;
      }).catch(function (err) { say("校验请求失败：" + err.message, true); return false; });
    }

    function applyNewProcessId() {
      var idInput = $("#new-process-id"), nameInput = $("#new-process-name");
      if (!idInput) return;
      var participant = registry.filter(function (e) { return e.type === "bpmn:Participant"; })[0];
      var process = participant ? participant.businessObject.processRef : canvas.getRootElement().businessObject;
      if (idInput.value.trim()) process.id = idInput.value.trim();
      if (nameInput.value.trim()) {
        process.name = nameInput.value.trim();
        if (participant) modeling.updateProperties(participant, {name: nameInput.value.trim()});
      }
    }

    function deploy() {
      var note = $("#deploy-note").value.trim();
      if (!note) { say("请填写变更说明。", true); $("#deploy-note").focus(); return; }
      if ($("#new-process-id") && !/^[A-Za-z_][A-Za-z0-9_]*$/.test($("#new-process-id").value.trim())) {
        say("流程 id：请用英文字母、数字和下划线，以字母开头。", true); $("#new-process-id").focus(); return;
      }
      say("正在部署…");
      exportXml().then(function (xml) {
        var url = setup.process_id ? "/api/processes/" + encodeURIComponent(setup.process_id) + "/versions" : "/api/processes";
        return post(url, {bpmn: xml, note: note, forms: newForms}, true);
      }).then(function (r) {
        if (r.status === 201) {
          if (!r.data.created) { say("内容与第 " + r.data.version + " 版相同，没有部署新版本。"); return; }
          window.location.href = "/processes/" + encodeURIComponent(r.data.process_id) + "?deployed=" + r.data.version;
          return;
        }
        var details = Array.isArray(r.data.details) ? r.data.details : [];
        showFindings(details.filter(function (d) { return d.message; }).map(function (d) {
          return {element_id: d.element_id || null, message: d.message}; }), []);
        say("未部署：" + (r.data.message || ("HTTP " + r.status)), true);
      }).catch(function (err) { say("部署请求失败：" + err.message, true); });
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
      if (file.size > 5 * 1024 * 1024) { say("文件超过 5 MB。", true); return; }
      file.text().then(function (text) { return load(text); }).then(function () { say("已导入 " + file.name + "，校验后可部署。"); });
      ev.target.value = "";
    });
    $("#btn-validate").addEventListener("click", validate);
    $("#btn-deploy").addEventListener("click", deploy);
    $("#btn-download").addEventListener("click", download);
    modeler.on("selection.changed", function (e) { showPanel(e.newSelection.length === 1 ? e.newSelection[0] : null); });
    load(setup.bpmn);
    window.mealrollModeler = modeler;  // for the browser tests and for curious administrators
  }

  function start() {
    var root = document.getElementById("modeler");
    if (root && window.BpmnJS) modelerPage(root);
    else if (document.getElementById("diff-data")) diffPage();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
