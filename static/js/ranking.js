// Rankings on the phone (app/formats/ranking.py): the list of options, each with a menu of its
// place, works as it is without this script. With it, each option also gets ↑ ↓ buttons, can be
// dragged by its place number, and moves when its menu changes; the menus, the numbers and a
// spoken status follow every move. Lists pushed in later (htmx swaps) are set up as they come.
(function () {
  "use strict";

  function items(list) {
    return Array.prototype.slice.call(list.querySelectorAll("[data-rank-item]"));
  }

  function renumber(list, moved) {
    items(list).forEach(function (item, index) {
      var place = String(index + 1);
      item.querySelector("[data-rank-place]").textContent = place;
      item.querySelector("[data-rank-select]").value = place;
      var up = item.querySelector("[data-rank-up]");
      var down = item.querySelector("[data-rank-down]");
      if (up) up.disabled = index === 0;
      if (down) down.disabled = index === items(list).length - 1;
    });
    if (moved) {
      var status = list.parentNode.querySelector("[data-rank-status]");
      var label = moved.querySelector(".aud-option__label").textContent;
      var place = items(list).indexOf(moved) + 1;
      if (status) status.textContent = list.dataset.moved.replace("{option}", label).replace("{place}", place);
    }
  }

  function moveTo(list, item, index) {
    var all = items(list).filter(function (other) { return other !== item; });
    index = Math.max(0, Math.min(index, all.length));
    list.insertBefore(item, all[index] || null);
    renumber(list, item);
  }

  function button(text, label, attr) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.setAttribute(attr, "");
    return b;
  }

  function setUp(list) {
    if (list.dataset.rankReady) return;
    list.dataset.rankReady = "1";
    items(list).forEach(function (item) {
      var label = item.querySelector(".aud-option__label").textContent;
      item.appendChild(button("↑", list.dataset.up.replace("{option}", label), "data-rank-up"));
      item.appendChild(button("↓", list.dataset.down.replace("{option}", label), "data-rank-down"));
      var handle = item.querySelector("[data-rank-place]");
      handle.style.touchAction = "none";
      handle.style.cursor = "grab";
      handle.addEventListener("pointerdown", function (event) { drag(list, item, event); });
    });
    list.addEventListener("click", function (event) {
      var target = event.target.closest("[data-rank-up], [data-rank-down]");
      if (!target) return;
      var item = target.closest("[data-rank-item]");
      var index = items(list).indexOf(item);
      moveTo(list, item, target.hasAttribute("data-rank-up") ? index - 1 : index + 1);
      target.focus();
    });
    list.addEventListener("change", function (event) {
      if (!event.target.matches("[data-rank-select]")) return;
      moveTo(list, event.target.closest("[data-rank-item]"), Number(event.target.value) - 1);
    });
    renumber(list, null);
  }

  function drag(list, item, event) {
    event.preventDefault();
    item.setPointerCapture && item.setPointerCapture(event.pointerId);
    item.classList.add("aud-option--chosen");
    function over(moveEvent) {
      var others = items(list).filter(function (other) { return other !== item; });
      var index = others.findIndex(function (other) {
        var box = other.getBoundingClientRect();
        return moveEvent.clientY < box.top + box.height / 2;
      });
      var wanted = index === -1 ? others.length : index;
      if (wanted !== items(list).indexOf(item)) moveTo(list, item, wanted);
    }
    function done() {
      item.classList.remove("aud-option--chosen");
      item.removeEventListener("pointermove", over);
      item.removeEventListener("pointerup", done);
      item.removeEventListener("pointercancel", done);
    }
    item.addEventListener("pointermove", over);
    item.addEventListener("pointerup", done);
    item.addEventListener("pointercancel", done);
  }

  function setUpAll(root) {
    (root || document).querySelectorAll("[data-rank-list]").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", function () { setUpAll(document); });
  document.addEventListener("htmx:afterSettle", function () { setUpAll(document); });
  setUpAll(document);
})();
