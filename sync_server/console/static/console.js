// patrol-sync console: live pages. A page marked data-live listens to the server's
// event stream and, when devices' pushes commit, re-reads itself and swaps its <main>
// in place (no reload, scroll kept); the stream hears every worker's commits. While the
// stream is down (a proxy cut it, too many tabs) it re-reads every 30 s instead.
// Nothing else needs JavaScript.
(function () {
  "use strict";
  var source = document.body.getAttribute("data-live");
  if (!source) return;
  var busy = false, again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main"), current = document.getElementById("main");
        var typing = document.activeElement && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
        if (fresh && current && !typing) {
          current.innerHTML = fresh.innerHTML;
        }
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* a failed refresh waits for the next event */ })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  if (window.EventSource) {
    var events = new EventSource(source);
    events.onopen = function () { document.body.classList.add("live-on"); };
    events.onerror = function () { document.body.classList.remove("live-on"); };
    var readies = 0;
    events.onmessage = function (e) {
      // "ready" again: a new stream after the last one ended; what committed between them counts too
      if (e.data === "changed" || (e.data === "ready" && readies++ > 0)) refresh();
    };
  }
  setInterval(function () {
    if (!document.body.classList.contains("live-on")) refresh();
  }, 30000);
})();
