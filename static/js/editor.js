// The talk editor: a refused save (422, 409) comes back as the editor with its problems, so
// swap it in like any answer. As the presenter types, the server swaps in each field's problems
// (hx-swap-oob); the field they describe is marked invalid or valid to match.
(function () {
  "use strict";
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];

  document.body.addEventListener("htmx:oobAfterSwap", function (event) {
    // The event names the element that was replaced: look up the one that took its place.
    var old = event.detail.target;
    var slot = old && old.id ? document.getElementById(old.id) : null;
    if (!slot || !slot.classList.contains("ed-problem")) return;
    var bad = slot.textContent.trim() !== "";
    document.querySelectorAll('[aria-describedby="' + slot.id + '"]').forEach(function (field) {
      if (bad) field.setAttribute("aria-invalid", "true");
      else field.removeAttribute("aria-invalid");
    });
  });
})();
