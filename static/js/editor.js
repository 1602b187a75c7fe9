// The talk editor: a refused save (422, 409) comes back as the editor with its problems, so
// swap it in like any answer; the checks as you type need nothing more than htmx.
(function () {
  "use strict";
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];
})();
