// Open-text answers on the phone (app/formats/text.py): a live count of the characters left
// under each field, counted by the server's own rule (app/formats/text_rules.py: `display`, then
// `length`), written again here step for step: NFKC, whitespace collapsed, punctuation stripped
// at both ends unless it closes a bracket or quote opened inside ("Yes!!!" is 3, "(yes)" is 3,
// "GPT (4)" is 7), full-width letters read as ordinary ones, an emoji joined by zero-width
// joiners one character, up to two accents on a letter free. The server decides; this only warns
// early, and says what the server will count. Fields pushed in later (htmx swaps) are set up as
// they come. `window.BeliefgapText.length` is the count, for the tests.
(function () {
  "use strict";

  // What Python's str.isspace() calls whitespace (str.split() collapses these).
  var SPACES = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;
  var SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
  var PUNCTUATION = /^\p{P}$/u;
  var MARK = /^[\p{Mn}\p{Me}\p{Mc}]$/u;
  var ZWJ = "\u200d";
  var MARKS_FREE = 2;
  // Closing brackets and quotes (after NFKC) and their opening partners.
  var OPENERS = {
    ")": "(", "]": "[", "}": "{", "\u201d": "\u201c", "\u2019": "\u2018", "\u00bb": "\u00ab",
    "\u203a": "\u2039", "\u300d": "\u300c", "\u300f": "\u300e", "\u3011": "\u3010",
    "\u300b": "\u300a", "\u3009": "\u3008", "\u3015": "\u3014", "\u3017": "\u3016",
  };
  var CLOSERS = {};
  Object.keys(OPENERS).forEach(function (closing) { CLOSERS[OPENERS[closing]] = closing; });

  // Characters (code points) off both ends: whitespace and punctuation, keeping a closing
  // bracket or quote whose opening partner is in the text (and an opening one whose partner is).
  function stripEdges(chars) {
    var start = 0;
    var end = chars.length;
    while (start < end) {
      var first = chars[start];
      var keepFirst = CLOSERS[first] !== undefined && chars.slice(start + 1, end).indexOf(CLOSERS[first]) >= 0;
      if (SPACE.test(first) || (PUNCTUATION.test(first) && !keepFirst)) start += 1;
      else break;
    }
    while (end > start) {
      var last = chars[end - 1];
      var keepLast = OPENERS[last] !== undefined && chars.slice(start, end - 1).indexOf(OPENERS[last]) >= 0;
      if (SPACE.test(last) || (PUNCTUATION.test(last) && !keepLast)) end -= 1;
      else break;
    }
    return chars.slice(start, end);
  }

  // Whether the whole text is one bracketed or quoted span: "(yes)", not "(a) (b)".
  function enclosed(chars) {
    var closing = CLOSERS[chars[0]];
    if (closing === undefined || chars.length < 2 || chars[chars.length - 1] !== closing) return false;
    var depth = 0;
    for (var i = 0; i < chars.length; i++) {
      if (chars[i] === chars[0]) depth += 1;
      else if (chars[i] === closing) {
        depth -= 1;
        if (depth === 0 && i < chars.length - 1) return false;
      }
    }
    return depth === 0;
  }

  function displayOnce(text) {
    var collapsed = text.normalize("NFKC").split(SPACES).filter(Boolean).join(" ");
    var chars = stripEdges(Array.from(collapsed));
    while (enclosed(chars)) chars = stripEdges(chars.slice(1, -1));
    return chars.join("");
  }

  // The form of an answer that is shown (text_rules.display).
  function display(text) {
    var previous = null;
    while (text !== previous) {
      previous = text;
      text = displayOnce(text);
    }
    return text;
  }

  // Characters as a reader counts them (text_rules.length).
  function count(text) {
    var n = 0;
    var joined = false;
    var marks = 0;
    Array.from(text).forEach(function (ch) {
      var code = ch.codePointAt(0);
      if (ch === ZWJ) { joined = true; return; }
      if (joined) { joined = false; return; }
      if (MARK.test(ch)) {
        marks += 1;
        if (marks > MARKS_FREE) n += 1;
        return;
      }
      marks = 0;
      if ((code >= 0xfe00 && code <= 0xfe0f) || (code >= 0x1f3fb && code <= 0x1f3ff) || (code >= 0xe0020 && code <= 0xe007f)) return;
      n += 1;
    });
    return n;
  }

  function length(text) { return count(display(text)); }
  window.BeliefgapText = { length: length, display: display };

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
