// Drafts of the task form: saved on the server 1.5 s after the last keystroke (PUT data-draft-url),
// so a dropped rural connection loses nothing and the form comes back on any device (the server
// fills it in when the task is opened again).
(function () {
  "use strict";
  var form = document.getElementById("task-form");
  if (!form || !form.dataset.draftUrl || !window.fetch) return;
  var status = document.getElementById("draft-status");
  var csrf = form.querySelector("input[name=csrf_token]");
  var DELAY = 1500, RETRY = 20000;
  var timer = null, dirty = false, busy = false, submitted = false;

  var clock = null;
  try {
    clock = new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", {timeZone: form.dataset.timezone, hour: "2-digit", minute: "2-digit",
                                              hourCycle: "h23"});
  } catch (e) { /* an old browser or an unknown zone: the device's own */ }

  // The words come with the page (data-say-*, in its language); {name} is filled in here.
  function say(key, values) {
    var text = form.dataset["say" + key] || "";
    Object.keys(values || {}).forEach(function (name) { text = text.split("{" + name + "}").join(values[name]); });
    if (status) status.textContent = text;
  }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  // The server's time in the county's zone, as the rest of the page shows times: a village PC's clock may be off.
  function hhmm(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) d = new Date();
    return clock ? clock.format(d) : two(d.getHours()) + ":" + two(d.getMinutes());
  }

  // As the browser would post the form: a radio's checked value, a ticked checkbox's value ("on").
  function fields() {
    var data = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.name === "csrf_token") return;
      if (/^(submit|button|reset|file)$/.test(el.type)) return;
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) return;
      data[el.name] = el.value;
    });
    return data;
  }

  function retryLater() {
    dirty = true;
    say("Offline");
    clearTimeout(timer);
    timer = setTimeout(save, RETRY);
  }

  function save(leaving) {
    clearTimeout(timer);
    timer = null;
    if (submitted) return;
    if (busy && !leaving) { dirty = true; return; }  // sent again when the request in flight ends
    dirty = false;
    busy = true;
    fetch(form.dataset.draftUrl, {
      method: "PUT", credentials: "same-origin", keepalive: !!leaving,
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf ? csrf.value : ""},
      body: JSON.stringify({data: fields()})
    }).then(function (response) {
      busy = false;
      if (response.ok) {
        response.json().then(function (saved) { return saved.saved_at; }, function () { return null; })
          .then(function (at) { say("Saved", {time: hhmm(at)}); });
        if (dirty) schedule();
      } else if (response.status >= 500) {
        retryLater();
      } else {
        // Refused (signed out, task taken or finished elsewhere): retrying would not help.
        response.json().then(function (e) { say("Refused", {message: e.message}); },
                             function () { say("Failed", {status: response.status}); });
      }
    }, function () { busy = false; retryLater(); });
  }

  function schedule() {
    dirty = true;
    clearTimeout(timer);
    timer = setTimeout(save, DELAY);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("submit", function () { submitted = true; clearTimeout(timer); });
  window.addEventListener("online", function () { if (dirty) save(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && dirty && timer) save(true);
  });
})();
