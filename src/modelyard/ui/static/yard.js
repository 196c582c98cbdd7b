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
  document.addEventListener("DOMContentLoaded", function () { selection(); slider(); });
})();
