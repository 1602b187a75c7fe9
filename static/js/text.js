// Open-text answers on the phone (app/formats/text.py): a live count of the characters left
// under each field, counted as the server counts them (app/formats/text_rules.py: spaces
// collapsed, ends trimmed, an emoji or a letter with its accents one character). The server
// decides; this only warns early. Fields pushed in later (htmx swaps) are set up as they come.
(function () {
  "use strict";

  var graphemes = window.Intl && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

  function length(text) {
    var shown = text.normalize("NFKC").replace(/\s+/g, " ").trim();
    if (graphemes) return Array.from(graphemes.segment(shown)).length;
    return Array.from(shown).length;
  }

  function update(field) {
    var count = field.form.querySelector("[data-text-count]");
    if (!count) return;
    var limit = Number(field.dataset.limit);
    var left = limit - length(field.value);
    var template = left >= 0 ? count.dataset.left : count.dataset.over;
    count.textContent = template.replace("{n}", String(Math.abs(left))).replace("{limit}", String(limit));
    count.classList.toggle("aud-text__count--over", left < 0);
  }

  // What the phone typed is kept while it types, so a refused answer comes back in its field
  // to be corrected (the panel the server sends with the refusal has the field empty).
  function draftKey(field) { return "bg-text-draft:" + location.pathname + ":" + field.id; }
  function keep(field) {
    try { sessionStorage.setItem(draftKey(field), field.value); } catch (e) { /* private mode */ }
  }
  function restore(field) {
    var refused = document.querySelector("#aud-panel .aud-msg--error");
    try {
      var draft = sessionStorage.getItem(draftKey(field));
      if (refused && !field.value && draft) field.value = draft;
      else sessionStorage.removeItem(draftKey(field));
    } catch (e) { /* private mode */ }
  }

  function setUp(root) {
    root.querySelectorAll("[data-text-field]").forEach(function (field) {
      if (field.dataset.textReady) return;
      field.dataset.textReady = "1";
      restore(field);
      field.addEventListener("input", function () { keep(field); update(field); });
      field.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          field.form.requestSubmit();
        }
      });
      update(field);
    });
  }

  setUp(document);
  document.body.addEventListener("htmx:load", function (event) { setUp(event.target); });
})();
