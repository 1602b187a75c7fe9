/* beliefgap for reveal.js: a slide opens, closes or reveals a question of the poll when it is
   shown, through the session's remote key (made on the session's control page; it can move
   that session's questions and do nothing else). No build step:

     <script src="https://POLL/static/js/reveal-beliefgap.js"></script>
     <script>
       Reveal.initialize({
         beliefgap: { server: "https://POLL", key: "THE REMOTE KEY" },
         plugins: [ BeliefGap ]
       });
     </script>

   On a slide (<section>):
     data-beliefgap-open="belief"    open the question "belief" (data-beliefgap-seconds="60":
                                     with a countdown)
     data-beliefgap-close="belief"   close it (the belief gap and how views moved are drawn)
     data-beliefgap-reveal="belief"  show its result
     data-beliefgap-next             close the open question and open the next one
   Several on one slide run in that order. Each runs once per slide per page load: going back a
   slide does not open a question again (beliefgap: { repeat: true } changes that).
   The result is the page's event "beliefgap" ({ detail: { action, phase, ok, status } }). */
(function (root) {
  "use strict";

  var ACTIONS = ["open", "close", "reveal", "next"];

  function BeliefGap() {
    var deck = null;
    var config = {};
    var done = typeof WeakMap === "function" ? new WeakMap() : null;

    function send(action, phase, seconds) {
      var server = String(config.server || "").replace(/\/+$/, "");
      var path = action === "next" ? "/next" : "/phases/" + encodeURIComponent(phase) + "/" + action;
      if (seconds && (action === "open" || action === "next")) {
        path += "?seconds=" + encodeURIComponent(seconds);
      }
      function report(ok, status) {
        var detail = { action: action, phase: phase || null, ok: ok, status: status };
        if (!ok && root.console) root.console.warn("beliefgap: " + action + " " + (phase || "") + " failed", status);
        root.dispatchEvent(new CustomEvent("beliefgap", { detail: detail }));
      }
      return fetch(server + "/api/v1/remote" + path, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { Authorization: "Bearer " + config.key },
      }).then(function (response) {
        report(response.ok, response.status);
      }, function () {
        report(false, 0);
      });
    }

    function run(slide) {
      if (!slide || !config.server || !config.key) return;
      if (done && !config.repeat) {
        if (done.has(slide)) return;
        done.set(slide, true);
      }
      var seconds = slide.getAttribute("data-beliefgap-seconds");
      var chain = Promise.resolve();
      ACTIONS.forEach(function (action) {
        var name = "data-beliefgap-" + action;
        if (!slide.hasAttribute(name)) return;
        var phase = slide.getAttribute(name);
        if (action !== "next" && !phase) return;
        chain = chain.then(function () { return send(action, phase, seconds); });
      });
      return chain;
    }

    return {
      id: "beliefgap",
      init: function (reveal) {
        deck = reveal;
        config = deck.getConfig().beliefgap || {};
        deck.on("ready", function (event) { run(event.currentSlide); });
        deck.on("slidechanged", function (event) { run(event.currentSlide); });
      },
      run: run,
    };
  }

  root.BeliefGap = BeliefGap;
})(window);
