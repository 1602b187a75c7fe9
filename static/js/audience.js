/* The audience page's small helpers; the page works without them.
   - keeps the % estimate's slider, number field and big number in step;
   - skips re-fetching the panel when a live "state" event leaves the open phases as they are;
   - counts a running countdown down, and fetches the panel again when it reaches zero;
   - drops a shown refusal (?error=) from the address, so a reload does not repeat it;
   - reloads the page when a form's anti-forgery token has expired (403). */
(function () {
  "use strict";
  document.documentElement.classList.add("aud-js");

  var timers = [];

  function formatTime(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function setupEstimate(form) {
    var slider = form.querySelector("[data-est-slider]");
    var number = form.querySelector("[data-est-number]");
    var output = form.querySelector("[data-est-output]");
    if (!slider || !number || form.dataset.estReady) return;
    form.dataset.estReady = "1";
    function show(text) {
      if (!output) return;
      output.textContent = text + "%";
      output.classList.remove("aud-est__big--empty");
    }
    slider.addEventListener("input", function () {
      number.value = slider.value;
      show(slider.value);
    });
    number.addEventListener("input", function () {
      var value = parseFloat(number.value);
      if (isNaN(value)) return;
      slider.value = String(value);
      show(number.value);
    });
  }

  function setupCountdown(el) {
    if (el.dataset.countdownReady) return;
    el.dataset.countdownReady = "1";
    var left = parseInt(el.dataset.secondsLeft, 10);
    if (isNaN(left)) return;
    timers.push({ el: el, deadline: Date.now() + left * 1000, refreshed: false });
  }

  function tick() {
    var now = Date.now();
    timers = timers.filter(function (timer) { return document.body.contains(timer.el); });
    timers.forEach(function (timer) {
      var left = Math.max(0, Math.ceil((timer.deadline - now) / 1000));
      timer.el.textContent = left > 0
        ? timer.el.dataset.text.replace("{time}", formatTime(left))
        : timer.el.dataset.closing;
      // A second after zero the server has closed the phase: show what comes next.
      if (!timer.refreshed && now - timer.deadline > 1000) {
        timer.refreshed = true;
        var panel = document.getElementById("aud-panel");
        if (panel && window.htmx) window.htmx.trigger(panel, "aud:refresh");
      }
    });
  }

  function init(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("form")) setupEstimate(scope);
    scope.querySelectorAll("form.aud-est").forEach(setupEstimate);
    scope.querySelectorAll("[data-seconds-left]").forEach(setupCountdown);
  }

  if (window.htmx) {
    window.htmx.onLoad(init);
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  }
  window.setInterval(tick, 1000);

  // The panel is fetched again on every live "state" event, but it only changes when the open
  // phases or their countdowns do: skip the request when they are what the panel shows (after a
  // reveal, a hide, or the snapshot that opens every connection).
  function openSignature(state) {
    return state.phases
      .filter(function (phase) { return phase.state === "open"; })
      .map(function (phase) {
        var end = phase.closes_at ? Math.floor(Date.parse(phase.closes_at) / 1000) : "";
        return phase.id + "@" + end;
      })
      .join(";");
  }

  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail && event.detail.triggeringEvent;
    var panel = event.detail && event.detail.elt;
    if (!trigger || trigger.type !== "sse:state" || !panel || !panel.hasAttribute("data-open")) {
      return;
    }
    try {
      var state = JSON.parse(trigger.detail.data);
      if (openSignature(state) === panel.getAttribute("data-open")) event.preventDefault();
    } catch (e) {
      // Not the expected shape: fetch the panel as usual.
    }
  });

  // A refusal shown after a form post (?error=...) should not come back on reload.
  if (window.history && window.history.replaceState && /[?&]error=/.test(location.search)) {
    var url = new URL(location.href);
    url.searchParams.delete("error");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.status === 403) window.location.reload();
  });
})();
