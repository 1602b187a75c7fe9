// The control page: keyboard shortcuts, countdowns, which phase the projector preview shows.
(function () {
  "use strict";

  // Refused actions (409, 422) come back as the panel with a message: swap them in too.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];

  // ---------------------------------------------------------------- countdowns
  var deadlines = new WeakMap();
  function format(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    var m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  }
  function tick() {
    document.querySelectorAll(".countdown[data-closes-in]").forEach(function (el) {
      if (!deadlines.has(el)) {
        deadlines.set(el, performance.now() + parseFloat(el.dataset.closesIn) * 1000);
      }
      var left = (deadlines.get(el) - performance.now()) / 1000;
      el.textContent = format(left);
      el.classList.toggle("is-low", left <= 10);
    });
  }
  setInterval(tick, 250);
  tick();

  // ---------------------------------------------------------------- the chart previewed
  // The preview shows what Reveal puts on the projector: the server draws it for the phase
  // picked by hand, or (an empty field) for the phase the room is on.
  var chosen = null; // a phase picked by hand; null follows the current phase
  function current() {
    var strip = document.querySelector(".strip");
    return (strip && strip.dataset.current) || "";
  }
  var followed = current(); // the phase the room was on when the panel was last drawn
  // The preview is fetched again when the phases change and as answers come in (at most once
  // a second, and always after the last answer), for the phase in the field; only the answer
  // to the latest request is shown.
  var asked = 0;
  var askedAt = -Infinity;
  var waiting = null;
  function refresh() {
    var preview = document.getElementById("preview");
    var field = document.getElementById("preview-phase");
    if (!preview || !field) return;
    var url = new URL(preview.dataset.src, window.location.href);
    url.searchParams.set("phase", field.value);
    var mine = ++asked;
    askedAt = performance.now();
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && mine === asked) preview.innerHTML = html;
      })
      .catch(function () {});
  }
  function soon() {
    if (waiting) return;
    var wait = Math.max(0, 1000 - (performance.now() - askedAt));
    waiting = setTimeout(function () { waiting = null; refresh(); }, wait);
  }
  var previewPane = document.getElementById("preview");
  if (previewPane) {
    previewPane.addEventListener("sse:counts", soon);
    previewPane.addEventListener("sse:state", refresh);
  }
  function showChart() {
    var key = chosen || current();
    var field = document.getElementById("preview-phase");
    if (field && field.value !== (chosen || "")) {
      field.value = chosen || "";
      refresh();
    }
    document.querySelectorAll("[data-show-chart]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.showChart === key));
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-show-chart]");
    if (!button) return;
    chosen = button.dataset.showChart;
    showChart();
  });
  // The panel is replaced when phases change: keep what the presenter typed in the timer,
  // unless the swap answers the Next that used it (a timer is for one question only).
  var typed = "";
  function timerField() { return document.querySelector('.strip__next input[name="seconds"]'); }
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "panel") {
      var field = timerField();
      var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
      var usedIt = elt && elt.classList && elt.classList.contains("strip__next");
      typed = field && !usedIt ? field.value : "";
    }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "panel") {
      var field = timerField();
      if (field && typed && !field.value) field.value = typed;
      // a phase picked by hand stays in the preview until the room moves on
      if (current() !== followed) {
        followed = current();
        chosen = null;
      }
      showChart();
      tick();
    }
  });
  showChart();

  // ---------------------------------------------------------------- keyboard
  // A second → within a second is a bounce or a double press, not "skip a question".
  var NEXT_GUARD_MS = 1000;
  var lastNext = -Infinity;
  function tooSoon() {
    var now = performance.now();
    if (now - lastNext < NEXT_GUARD_MS) return true;
    lastNext = now;
    return false;
  }
  var keys = { arrowright: "arrowright", r: "r", c: "c", p: "p" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.target.isContentEditable) return;
    var pressed = event.key.toLowerCase();
    if (pressed === "a" || pressed === "h") {
      // the moderation queue: show (A) or hide (H) the focused answer, else the first
      var focused = document.activeElement && document.activeElement.closest
        ? document.activeElement.closest("[data-queue-item]") : null;
      var item = focused || document.querySelector("#queue [data-queue-item]");
      var button = item && item.querySelector('[data-queue-action="' + (pressed === "a" ? "shown" : "hidden") + '"]');
      if (!button) return;
      event.preventDefault();
      button.click();
      return;
    }
    var name = keys[pressed];
    if (!name) return;
    var target = document.querySelector('[data-key="' + name + '"]');
    if (!target || target.disabled) return;
    event.preventDefault();
    if (name === "arrowright" && tooSoon()) return;
    target.click();
  });
})();
