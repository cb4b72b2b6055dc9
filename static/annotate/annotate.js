// Keyboard and time measurement for the rating pages. Progressive enhancement: every action is also a
// plain link, button or radio, so the pages work without this file. Keys are read from data-key /
// data-arrow attributes that the server renders next to the labels the annotator sees.
(function () {
  "use strict";

  var form = document.getElementById("rating-form");
  var durationField = document.getElementById("duration_ms");

  // Time on the page while it is visible: a pair left in a background tab does not count.
  var visibleMs = 0;
  var visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      visibleSince = performance.now();
    } else if (visibleSince !== null) {
      visibleMs += performance.now() - visibleSince;
      visibleSince = null;
    }
  });
  function elapsedMs() {
    return Math.round(visibleMs + (visibleSince !== null ? performance.now() - visibleSince : 0));
  }
  var submitting = false;
  if (form && durationField) {
    form.addEventListener("submit", function () {
      durationField.value = String(elapsedMs());
      submitting = true;
    });
  }

  var ARROWS = { ArrowLeft: "←", ArrowRight: "→", ArrowDown: "↓", ArrowUp: "↑" };

  function follow(id) {
    var el = document.getElementById(id);
    if (!el) { return false; }
    el.click();
    return true;
  }

  function choose(selector) {
    var input = form ? form.querySelector(selector) : null;
    if (!input) { return false; }
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function submitForm() {
    if (!form || submitting) { return; }
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit(document.getElementById("submit-button"));
    } else {
      document.getElementById("submit-button").click();
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.metaKey) { return; }
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && /^(text|search|password|email|number)$/i.test(target.type)));
    if (typing) {
      if (event.key === "Escape") { target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && event.ctrlKey) { submitForm(); event.preventDefault(); }
      return;
    }
    if (event.ctrlKey) { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = false;
    if (ARROWS[key]) {
      handled = choose('input[data-arrow="' + ARROWS[key] + '"]');
    } else if (key === "Enter") {
      if (target && (target.tagName === "A" || target.tagName === "BUTTON" || target.tagName === "SUMMARY")) { return; }
      submitForm();
      handled = !!form;
    } else if (key === "n") {
      handled = follow("skip-button") || follow("continue-link");
    } else if (key === "b") {
      handled = follow("previous-link");
    } else if (key === "m") {
      handled = follow("my-ratings-link");
    } else if (key === "g") {
      var panel = document.getElementById("guidelines");
      if (panel) { panel.open = !panel.open; handled = true; }
    } else if (key === "i") {
      var comment = document.getElementById("id_comment");
      if (comment) { comment.focus(); handled = true; }
    } else if (key.length === 1 && /^[0-9a-z]$/.test(key)) {
      handled = choose('input[data-key="' + key + '"]');
    }
    if (handled) { event.preventDefault(); }
  });
})();
