// modelyard web UI: the little behaviour the pages need (no framework, no build step, no network).
(function () {
  "use strict";
  // "/" jumps to the search box, as on most sites; Escape leaves it.
  document.addEventListener("keydown", function (e) {
    var q = document.getElementById("q");
    if (!q) return;
    var t = e.target, typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); q.focus(); q.select(); }
    else if (e.key === "Escape" && t === q) { q.blur(); }
  });
  // The compare button counts the ticked runs and is enabled for 2..20 of them.
  function selection() {
    var form = document.getElementById("select-runs"), button = document.getElementById("compare");
    if (!form || !button) return;
    var min = +button.dataset.min, max = +button.dataset.max, label = document.getElementById("selected");
    function update() {
      var n = form.querySelectorAll('input[name="run"]:checked').length;
      button.disabled = n < min || n > max;
      label.textContent = n === 0 ? "Tick " + min + " to " + max + " runs to compare." :
        n + " selected" + (n < min ? ": tick at least " + min + "." : n > max ? ": at most " + max + "." : ".");
    }
    form.addEventListener("change", update);
    update();
  }
  // The smoothing slider shows its value as it moves.
  function slider() {
    var s = document.getElementById("smooth"), out = document.getElementById("smooth-out");
    if (s && out) s.addEventListener("input", function () { out.textContent = s.value; });
  }
  // Buttons that change something ask first when they say so (data-confirm).
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
  // A running rollout's page fetches itself every data-refresh seconds and swaps in the parts that
  // change (#live, #live-body; #actions unless the user is in one of its forms); it stops once the
  // fetched page no longer asks for refreshing (the rollout finished) or the session ended.
  function live() {
    var box = document.getElementById("live");
    if (!box || !box.dataset.refresh) return;
    var every = Math.max(1, +box.dataset.refresh) * 1000;
    function swap(doc, id) {
      var now = document.getElementById(id), next = doc.getElementById(id);
      if (now && next) now.innerHTML = next.innerHTML;
      return next;
    }
    function tick() {
      fetch(location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var next = swap(doc, "live");
          swap(doc, "live-body");
          var acts = document.getElementById("actions");
          if (acts && !acts.contains(document.activeElement)) swap(doc, "actions");
          if (next && next.dataset.refresh) window.setTimeout(tick, every);
          else box.removeAttribute("data-refresh");
        })
        .catch(function () { window.setTimeout(tick, every * 2); });
    }
    window.setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () { selection(); slider(); live(); });
})();
