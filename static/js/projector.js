// The projector and the read-only view (no keys there): keyboard (right arrow = next, at most once a second; R = reveal/hide, Q = QR code, F = full screen,
// D = dark theme), countdowns, a cursor that hides when the mouse rests, and a small mark while
// the event stream is lost.
(function () {
  "use strict";

  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];

  var body = document.body;
  // The read-only view (/view/...) takes its theme from its address and has no keys.
  var readOnly = body.classList.contains("view");
  try {
    if (!readOnly && localStorage.getItem("bg-projector-theme") === "dark") {
      body.classList.replace("theme-light", "theme-dark");
    }
  } catch (e) { /* storage may be off */ }

  // ---------------------------------------------------------------- countdowns
  var deadlines = new WeakMap();
  function tick() {
    document.querySelectorAll(".countdown[data-closes-in]").forEach(function (el) {
      if (!deadlines.has(el)) {
        deadlines.set(el, performance.now() + parseFloat(el.dataset.closesIn) * 1000);
      }
      var left = Math.max(0, Math.ceil((deadlines.get(el) - performance.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      el.classList.toggle("is-low", left <= 10);
    });
  }
  setInterval(tick, 250);
  tick();
  body.addEventListener("htmx:afterSwap", tick);

  // ---------------------------------------------------------------- keyboard
  function submit(name) {
    var form = document.querySelector('form[data-key="' + name + '"]');
    if (form) form.requestSubmit();
  }
  // A second → within a second (a clicker's bounce, a double press) would skip a question:
  // it is ignored.
  var NEXT_GUARD_MS = 1000;
  var lastNext = -Infinity;
  function next() {
    var now = performance.now();
    if (now - lastNext < NEXT_GUARD_MS) return;
    lastNext = now;
    submit("arrowright");
  }
  function fullScreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch(function () {});
    }
  }
  // A view in a slide deck's frame passes the deck's keys on: a click on the slide gives the
  // frame the keyboard, and a clicker's next/previous would otherwise stop at the view. reveal.js
  // takes them as calls of its postMessage API; any other page ignores them.
  var DECK_KEYS = {
    ArrowRight: "next", ArrowDown: "next", PageDown: "next", " ": "next",
    ArrowLeft: "prev", ArrowUp: "prev", PageUp: "prev",
  };
  var framed = readOnly && window.parent !== window;
  document.addEventListener("keydown", function (event) {
    if (framed && DECK_KEYS[event.key] && !(event.ctrlKey || event.metaKey || event.altKey)) {
      window.parent.postMessage(JSON.stringify({ method: DECK_KEYS[event.key] }), "*");
      event.preventDefault();
      return;
    }
    if (readOnly) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    switch (event.key) {
      case "ArrowRight":
      case "PageDown": // presentation clickers send this
        next();
        break;
      case "r": case "R":
        submit("r");
        break;
      case "c": case "C": // close voting without moving on: the gap and the shift are drawn then
        submit("c");
        break;
      case "q": case "Q":
        body.classList.toggle("qr-off");
        fitLabels();
        break;
      case "f": case "F":
        fullScreen();
        break;
      case "d": case "D":
        var dark = body.classList.toggle("theme-dark");
        body.classList.toggle("theme-light", !dark);
        try { localStorage.setItem("bg-projector-theme", dark ? "dark" : "light"); } catch (e) {}
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  // ---------------------------------------------------------------- the event stream
  // The mark shows when the stream has failed and not come back within LOST_AFTER_MS (a blip
  // passes unseen), or when it went quiet (the server pings every 10 s); it goes when anything
  // is heard again. htmx's event-stream extension does the reconnecting.
  var LOST_AFTER_MS = 2000;
  var QUIET_MS = 25000;
  var lostMark = document.querySelector("[data-conn-lost]");
  var streamOpen = false;
  var lastHeard = Date.now();
  var lostCheck = null;
  function showLost(lost) {
    if (lostMark) lostMark.hidden = !lost;
    body.dataset.stream = lost ? "lost" : (streamOpen ? "open" : "connecting");
  }
  function heard() {
    lastHeard = Date.now();
    showLost(false);
  }
  body.addEventListener("htmx:sseOpen", function (event) {
    streamOpen = true;
    var source = event.detail && event.detail.source;
    if (source) {
      ["ping", "state", "counts"].forEach(function (name) {
        source.addEventListener(name, heard);
      });
    }
    heard();
  });
  body.addEventListener("htmx:sseClose", function () { // the view's address was revoked
    streamOpen = false;
  });
  body.addEventListener("htmx:sseError", function () {
    streamOpen = false;
    if (lostCheck) return;
    lostCheck = setTimeout(function () {
      lostCheck = null;
      if (!streamOpen) showLost(true);
    }, LOST_AFTER_MS);
  });
  setInterval(function () {
    if (streamOpen && Date.now() - lastHeard > QUIET_MS) showLost(true);
  }, 5000);

  // ---------------------------------------------------------------- labels beside the QR code
  // Beside the QR code a revealed chart is drawn narrower (its "beside-qr" variant), but some
  // charts still come out with labels under UI.md's 28 px there (five long definitions at
  // 1280x720). Measured after every swap and resize: where a label would be smaller, the slide
  // gets qr-cramped and the chart takes the slide (projector.css), the join address and code
  // on its status line.
  var MIN_LABEL_PX = 28;
  function smallestLabel(slide) {
    var smallest = Infinity;
    slide.querySelectorAll(".reveal svg.chart").forEach(function (svg) {
      var matrix = svg.getBoundingClientRect().width ? svg.getScreenCTM() : null;
      if (!matrix) return;
      svg.querySelectorAll("text[font-size]").forEach(function (text) {
        smallest = Math.min(smallest, parseFloat(text.getAttribute("font-size")) * matrix.a);
      });
    });
    return smallest;
  }
  function fitLabels() {
    var slide = document.querySelector("#stage .slide.stage--revealed");
    if (!slide) return;
    slide.classList.remove("qr-cramped");
    var code = slide.querySelector(".qr-block");
    if (!code || !code.getBoundingClientRect().width) return; // no code beside the chart
    if (smallestLabel(slide) < MIN_LABEL_PX - 0.01) slide.classList.add("qr-cramped");
  }
  fitLabels();
  body.addEventListener("htmx:afterSwap", fitLabels);
  body.addEventListener("htmx:oobAfterSwap", fitLabels);
  window.addEventListener("resize", fitLabels);

  // ---------------------------------------------------------------- cursor and hints
  var hint = document.querySelector(".keys-hint");
  var idle = null;
  function rest() {
    body.classList.add("cursor-hidden");
    if (hint) hint.classList.add("is-hidden");
  }
  function wake() {
    body.classList.remove("cursor-hidden");
    if (hint) hint.classList.remove("is-hidden");
    clearTimeout(idle);
    idle = setTimeout(rest, 3000);
  }
  document.addEventListener("mousemove", wake);
  wake();
})();
