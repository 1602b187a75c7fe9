/* The audience page's script; the page works without it (plain forms, a reload shows what is new).
   - holds the session's live stream: the pushed question panel is swapped in without a request,
     unless this phone answered one of the open questions (then it fetches its own panel); the
     revealed results are swapped in as they change, each question folded or unfolded as the
     person left it;
   - recovers by itself: a dropped stream reconnects with backoff, a stream that went quiet (a
     network blip that left the socket up), a return to the network and a wake from sleep all
     reconnect, and every connection starts with the current question; a vote or a panel
     request that failed is retried with backoff; a vote refused for coming too fast (429) is
     sent again after the server's Retry-After, saying so;
   - keeps the % estimate's slider, number field and big number in step (the number field carries
     what the slider chose; emptied, all three show nothing chosen, which the server refuses);
   - counts a running countdown down, and fetches the panel again when it reaches zero;
   - drops a shown refusal (?error=) from the address, so a reload does not repeat it. */
(function () {
  "use strict";
  document.documentElement.classList.add("aud-js");

  var STREAM_QUIET_MS = 25000; // the server pings every 10 s: this much silence means a dead stream
  var WAKE_AFTER_MS = 5000; // hidden for longer than this: reconnect on return
  var MAX_VOTE_TRIES = 10;

  var live = document.querySelector(".aud-live[data-events]");
  var statusLine = document.querySelector("[data-live-status]");
  var answered = {}; // phase key -> true: what this phone answered, as its own panels say
  var timers = [];

  function panel() {
    return document.getElementById("aud-panel");
  }

  function backoff(attempt, capMs) {
    var base = Math.min(capMs, 1000 * Math.pow(2, attempt));
    return base / 2 + Math.random() * base / 2;
  }

  var statusKind = null; // "stream" (reconnecting) or "vote" (sending again)

  function showStatus(text, kind) {
    if (!statusLine) return;
    statusKind = text ? kind : null;
    statusLine.textContent = text || "";
    statusLine.hidden = !text;
  }

  // ------------------------------------------------------------------ the % estimate

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
      if (number.value.trim() === "" && !(number.validity && number.validity.badInput)) {
        // Cleared: back to nothing chosen, as the server sees it (the slider where it was drawn).
        slider.value = slider.defaultValue;
        if (output) {
          output.textContent = "?";
          output.classList.add("aud-est__big--empty");
        }
        return;
      }
      if (isNaN(value)) return;
      slider.value = String(value);
      show(number.value);
    });
  }

  // ------------------------------------------------------------------ countdowns

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
        refreshPanel();
      }
    });
  }

  // ------------------------------------------------------------------ panels

  function learn(el) {
    // A panel drawn for this phone lists what it answered; a pushed one (data-shared) does not.
    if (el && el.id === "aud-panel" && el.hasAttribute("data-answered")) {
      answered = {};
      el.getAttribute("data-answered").split(",").forEach(function (key) {
        if (key) answered[key] = true;
      });
      showErase();
    }
  }

  function showErase() {
    // "Erase my answers" only once there is something to erase.
    var erase = document.querySelector("[data-erase]");
    if (erase) erase.hidden = Object.keys(answered).length === 0;
  }

  function openKeys(signature) {
    return signature ? signature.split(";").map(function (part) { return part.split("@")[0]; }) : [];
  }

  var panelTries = 0;
  var panelRetry = null;

  function refreshPanel() {
    var current = panel();
    if (current && window.htmx && current.hasAttribute("hx-get")) {
      window.htmx.trigger(current, "aud:refresh");
    }
  }

  function retryPanel() {
    if (panelRetry) return;
    panelRetry = window.setTimeout(function () {
      panelRetry = null;
      refreshPanel();
    }, backoff(panelTries++, 15000));
  }

  var heldPanel = null; // a pushed panel that came while this phone's vote was on the way
  var votesInFlight = 0;

  function onPanel(html) {
    if (votesInFlight > 0) {
      heldPanel = html; // decided once the vote's answer says what this phone answered
      return;
    }
    var template = document.createElement("template");
    template.innerHTML = html;
    var incoming = template.content.querySelector("#aud-panel");
    var current = panel();
    if (!incoming || !current) return;
    var signature = incoming.getAttribute("data-open");
    if (current.getAttribute("data-open") === signature) return; // already showing these questions
    var mine = openKeys(signature).some(function (key) { return answered[key]; });
    if (mine) {
      refreshPanel(); // only this phone's own panel shows its answer
    } else {
      window.htmx.swap(current, html, { swapStyle: "outerHTML" });
    }
  }

  // The revealed questions are folded (the newest open): one this person opened or closed stays
  // so when the results are pushed again, as they are after every vote on a revealed question.
  var folded = {}; // phase key -> open, as this person left it

  document.addEventListener("click", function (event) {
    var summary = event.target.closest && event.target.closest("summary");
    var details = summary && summary.parentElement;
    if (details && details.matches("[data-live-results] details[data-phase]")) {
      folded[details.dataset.phase] = !details.open; // the click is about to turn it over
    }
  });

  function onResults(html) {
    var body = document.querySelector("[data-live-results]");
    if (!body) return;
    window.htmx.swap(body, html, { swapStyle: "innerHTML" });
    body.querySelectorAll("details[data-phase]").forEach(function (details) {
      var open = folded[details.dataset.phase];
      if (open !== undefined) details.open = open;
    });
  }

  // ------------------------------------------------------------------ the live stream

  var source = null;
  var lastHeard = Date.now();
  var streamTries = 0;
  var reconnectTimer = null;
  var hiddenSince = null;

  function connect() {
    if (!live || !window.EventSource || !window.htmx) return;
    window.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (source) source.close();
    var stream = new EventSource(live.getAttribute("data-events"));
    source = stream;
    lastHeard = Date.now();
    function heard(handler) {
      return function (event) {
        if (stream !== source) return;
        lastHeard = Date.now();
        streamTries = 0;
        if (statusKind === "stream") showStatus("");
        if (handler) handler(event.data);
      };
    }
    stream.addEventListener("panel", heard(onPanel));
    stream.addEventListener("results", heard(onResults));
    stream.addEventListener("state", heard(null));
    stream.addEventListener("ping", heard(null));
    stream.addEventListener("error", function () {
      if (stream !== source) return;
      // CONNECTING: the browser reconnects by itself (the server set the delay). CLOSED: it
      // gave up (the server answered with an error); try again later, with backoff.
      if (stream.readyState === EventSource.CLOSED) reconnectLater();
      if (Date.now() - lastHeard > 3000 && statusKind !== "vote") {
        showStatus(live.dataset.reconnecting, "stream");
      }
    });
  }

  function reconnectLater() {
    if (reconnectTimer) return;
    reconnectTimer = window.setTimeout(connect, backoff(streamTries++, 30000));
  }

  function watchdog() {
    if (source && document.visibilityState !== "hidden" && Date.now() - lastHeard > STREAM_QUIET_MS) {
      connect(); // the stream went quiet without closing: a fresh one starts with the current state
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      hiddenSince = Date.now();
    } else if (hiddenSince !== null) {
      var away = Date.now() - hiddenSince;
      hiddenSince = null;
      if (away > WAKE_AFTER_MS || !source || source.readyState !== EventSource.OPEN) connect();
    }
  });
  window.addEventListener("online", connect);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) connect(); // back from the back-forward cache
  });

  // ------------------------------------------------------------------ votes and requests

  var voteTries = 0;
  var voteRetry = null; // the timer that sends a failed vote again

  function isVote(elt) {
    return elt && elt.matches && elt.matches("form.aud-form");
  }

  // Watched on the request itself: the answer replaces the form, so htmx's events about the
  // finished request fire on a detached element and never reach the document.
  document.addEventListener("htmx:beforeSend", function (event) {
    var xhr = event.detail.xhr;
    var vote = isVote(event.detail.elt);
    if (!xhr) return;
    if (vote) votesInFlight++;
    xhr.addEventListener("loadend", function () {
      // Answered (refusals come back as panels); a 429 is sent again (see failed).
      if (xhr.status >= 200 && xhr.status < 500 && xhr.status !== 429) {
        if (vote) voteTries = 0;
        else panelTries = 0;
        if (vote || statusKind !== "vote") showStatus("");
      }
      if (!vote) return;
      votesInFlight = Math.max(0, votesInFlight - 1);
      if (votesInFlight === 0 && heldPanel !== null) {
        var held = heldPanel;
        heldPanel = null;
        window.setTimeout(function () { onPanel(held); }, 50); // once the answer is swapped in
      }
    });
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!isVote(elt)) return;
    window.clearTimeout(voteRetry); // this vote replaces one waiting to be sent again
    voteRetry = null;
    event.detail.parameters.answered = Object.keys(answered).join(",");
    elt._bgLastVote = { path: event.detail.path, values: Object.fromEntries(event.detail.formData) };
    var trigger = event.detail.triggeringEvent;
    var button = trigger && trigger.submitter;
    if (button && button.classList) {
      elt.querySelectorAll(".aud-option--sending").forEach(function (other) {
        other.classList.remove("aud-option--sending");
      });
      button.classList.add("aud-option--sending");
    }
  });

  function retryAfterMs(xhr) {
    var seconds = parseInt(xhr.getResponseHeader("Retry-After"), 10);
    return (isNaN(seconds) || seconds < 1 ? 1 : seconds) * 1000;
  }

  function failed(event) {
    var elt = event.detail && event.detail.elt;
    var xhr = event.detail && event.detail.xhr;
    var tooFast = xhr && xhr.status === 429;
    if (xhr && xhr.status && xhr.status < 500 && !tooFast) return; // refusals come back as panels
    if (isVote(elt) && elt._bgLastVote && voteTries < MAX_VOTE_TRIES) {
      var last = elt._bgLastVote;
      var delay;
      if (tooFast) {
        // Wait what the server asks, plus a little, and say when the vote goes again.
        delay = retryAfterMs(xhr) + Math.random() * 1000;
        // Many new phones behind this one's address, or this phone itself answering fast.
        var manyNew = xhr.getResponseHeader("X-Refusal") === "too_many_new_participants";
        var text = live ? (manyNew ? live.dataset.manyNew : live.dataset.tooFast) || "" : "";
        showStatus(text.replace("{seconds}", String(Math.ceil(delay / 1000))), "vote");
        voteTries++;
      } else {
        showStatus(live ? live.dataset.retrying : "", "vote");
        delay = backoff(voteTries++, 15000);
      }
      window.clearTimeout(voteRetry);
      voteRetry = window.setTimeout(function () {
        voteRetry = null;
        var form = document.body.contains(elt) ? elt : null;
        window.htmx.ajax("POST", last.path, {
          source: form || panel(),
          values: last.values,
          target: "#aud-panel",
          swap: "outerHTML",
        });
      }, delay);
    } else if (elt && elt.id === "aud-panel") {
      retryPanel();
    }
  }

  // ------------------------------------------------------------------ erase my answers

  // The footer's button sends DELETE /api/v1/sessions/{code}/me (after the browser's confirm):
  // on 204 this phone has no answers any more, so its panel is fetched again (the open question
  // comes back unanswered) and the footer says it is done.
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-erase")) return;
    var status = document.querySelector("[data-erase-status]");
    var ok = event.detail.xhr && event.detail.xhr.status === 204;
    if (ok) {
      answered = {};
      showErase();
      refreshPanel();
    }
    if (status) {
      status.textContent = ok ? elt.dataset.erased : elt.dataset.eraseFailed;
      status.hidden = false;
    }
  });

  document.addEventListener("htmx:sendError", failed);
  document.addEventListener("htmx:responseError", failed);

  // ------------------------------------------------------------------ start

  function init(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("form")) setupEstimate(scope);
    scope.querySelectorAll("form.aud-est").forEach(setupEstimate);
    scope.querySelectorAll("[data-seconds-left]").forEach(setupCountdown);
    learn(scope.id === "aud-panel" ? scope : scope.querySelector("#aud-panel"));
  }

  if (window.htmx) {
    window.htmx.onLoad(init);
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  }
  window.setInterval(tick, 1000);
  window.setInterval(watchdog, 5000);
  connect();

  // A refusal shown after a form post (?error=...) should not come back on reload.
  if (window.history && window.history.replaceState && /[?&]error=/.test(location.search)) {
    var url = new URL(location.href);
    url.searchParams.delete("error");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
})();
