// The task page's 流程图: nothing is fetched until the section is opened (slow rural links). Then the
// bpmn-js viewer, its styles and the instance's diagram come once, and the steps are marked.
(function () {
  "use strict";
  var details = document.getElementById("diagram");
  if (!details || !window.fetch || !window.Promise) return;  // the server-rendered step list stays
  var view = details.querySelector(".diagram-view");
  var canvasEl = details.querySelector(".diagram-canvas");
  var status = details.querySelector(".diagram-status");
  var PAD = 12;
  var WATERMARK = 64;  // room below the diagram for the bpmn.io logo, which keeps its size at any scale
  var viewer = null, loading = null;

  function load(tag, attrs) {
    var key = attrs.src || attrs.href;
    if (document.querySelector(tag + "[" + (attrs.src ? "src" : "href") + "='" + key + "']")) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var el = document.createElement(tag);
      Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
      el.onload = resolve;
      el.onerror = function () { el.remove(); reject(new Error(key)); };
      document.head.appendChild(el);
    });
  }

  function fetchDiagram() {
    return fetch(details.dataset.diagramUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  // Scale 1 when the diagram fits the page width, smaller when it does not; the container keeps the
  // page's width so the bpmn.io watermark (a licence condition) stays in view.
  function fit() {
    var canvas = viewer.get("canvas");
    var inner = canvas.viewbox().inner;
    var width = canvasEl.clientWidth;
    if (!width || !inner.width) return;  // closed again before it arrived: fitted when reopened
    var scale = Math.min(1, (width - 2 * PAD) / inner.width);
    canvasEl.style.height = Math.ceil(inner.height * scale + PAD + WATERMARK) + "px";
    canvas.resized();
    var w = width / scale, h = canvasEl.clientHeight / scale;
    canvas.viewbox({x: inner.x - (w - inner.width) / 2, y: inner.y - PAD / scale, width: w, height: h});
  }

  // Lane names in the BPMN are role codes (school_principal); show 校长. Other names (steps, flows) are shown in
  // the page's language when the server sends their translations (`names`: Chinese → English).
  function withLaneLabels(xml, labels, names) {
    var doc = new DOMParser().parseFromString(xml, "application/xml");
    var BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL";
    if (doc.getElementsByTagName("parsererror").length) return xml;
    Array.prototype.forEach.call(doc.getElementsByTagNameNS(BPMN, "*"), function (el) {
      var name = el.getAttribute("name");
      if (!name) return;
      var shown = el.localName === "lane" ? labels[name] : names[name];
      if (shown) el.setAttribute("name", shown);
    });
    return new XMLSerializer().serializeToString(doc);
  }

  function render(data) {
    view.hidden = false;
    viewer = new window.BpmnJS({
      container: canvasEl,
      textRenderer: {defaultStyle: {fontFamily: '"Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif'}}
    });
    return viewer.importXML(withLaneLabels(data.bpmn, data.lane_labels || {}, data.names || {})).then(function () {
      var canvas = viewer.get("canvas"), elements = viewer.get("elementRegistry");
      function mark(ids, cls) {
        ids.forEach(function (id) { if (elements.get(id)) canvas.addMarker(id, cls); });
      }
      // A step done before and waiting again (a return loop) is shown as waiting.
      mark(data.completed.filter(function (id) { return data.active.indexOf(id) < 0; }), "step-completed");
      mark(data.active, "step-active");
      fit();
      status.textContent = "";
    });
  }

  function open() {
    if (viewer || loading) return;
    status.textContent = details.dataset.sayLoading || "";
    var styles = details.dataset.styles.split(" ").map(function (href) {
      return load("link", {rel: "stylesheet", href: href});
    });
    var script = window.BpmnJS ? Promise.resolve() : load("script", {src: details.dataset.viewer});
    loading = Promise.all([fetchDiagram(), script].concat(styles))
      .then(function (results) { return render(results[0]); })
      .catch(function () {
        if (viewer) { viewer.destroy(); viewer = null; }
        view.hidden = true;
        status.textContent = details.dataset.sayFailed || "";
      })
      .then(function () { loading = null; });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { if (viewer && details.open) fit(); }, 200);
  });
  details.addEventListener("toggle", function () {
    if (!details.open) return;
    if (viewer) fit(); else open();  // the window may have been resized while it was closed
  });
  if (details.open) open();
})();
