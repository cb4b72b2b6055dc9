// Keyboard, form checks, guidelines and time measurement for the rating pages. Progressive enhancement:
// every action is also a plain link, button or radio, so the pages work without this file (the server
// checks the form too). Keys are read from data-key attributes that the server renders next to the
// labels the annotator sees.
//
// Shortcuts are single letter or number keys, never arrows, Tab, Space or Enter inside a control: those
// keep their native meaning (scrolling, moving focus, choosing within a radio group). No shortcut fires
// while a text field has focus or while Ctrl, Alt, Shift or Meta is held, except Ctrl+Enter (submit)
// inside the comment box.
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

  // Required choices: each group left empty gets its message next to it and nothing is sent. The same
  // messages come from the server when a form arrives incomplete anyway (no JavaScript, an old page).
  var REQUIRED = ["score_left", "score_right", "correct_left", "correct_right", "preference"];

  function groupOf(name) {
    var input = form.querySelector('input[name="' + name + '"]');
    return input ? input.closest("fieldset") : null;
  }

  function clearMissing(fieldset) {
    fieldset.classList.remove("missing");
    var old = fieldset.querySelectorAll(".error");
    for (var i = 0; i < old.length; i++) { old[i].remove(); }
  }

  function markMissing(name) {
    var fieldset = groupOf(name);
    if (!fieldset) { return null; }
    clearMissing(fieldset);
    fieldset.classList.add("missing");
    var message = document.createElement("p");
    message.className = "error";
    message.setAttribute("role", "alert");
    message.textContent = form.getAttribute("data-missing-" + name) || "Please choose one.";
    fieldset.appendChild(message);
    return fieldset;
  }

  function missingGroups() {
    return REQUIRED.filter(function (name) {
      return form.querySelector('input[name="' + name + '"]') &&
        !form.querySelector('input[name="' + name + '"]:checked');
    });
  }

  var submitting = false;
  if (form && durationField) {
    form.noValidate = true; // the messages below replace the browser's bubbles
    form.addEventListener("submit", function (event) {
      var skipping = event.submitter && event.submitter.id === "skip-button";
      if (!skipping) {
        var missing = missingGroups();
        if (missing.length) {
          event.preventDefault();
          var first = null;
          missing.forEach(function (name) {
            var fieldset = markMissing(name);
            if (!first) { first = fieldset; }
          });
          if (first) {
            first.scrollIntoView({ block: "center" });
            first.querySelector("input").focus({ preventScroll: true });
          }
          return;
        }
      }
      durationField.value = String(elapsedMs());
      submitting = true;
    });
    form.addEventListener("change", function (event) {
      var fieldset = event.target.closest("fieldset.missing");
      if (fieldset) { clearMissing(fieldset); }
    });
  }

  // Guidelines: open on this browser's first visit to the campaign and whenever they changed since it
  // last saw them; otherwise as the annotator left them (open or closed) on the previous pair.
  var guidelines = document.getElementById("guidelines");
  if (guidelines) {
    var storeKey = "evalsite.guidelines." + guidelines.getAttribute("data-campaign");
    var version = guidelines.getAttribute("data-version");
    var remember = function () {
      try {
        localStorage.setItem(storeKey, JSON.stringify({ version: version, open: guidelines.open }));
      } catch (e) { /* storage refused (private mode): the panel just opens each time */ }
    };
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { saved = null; }
    guidelines.open = !saved || saved.version !== version || saved.open === true;
    remember();
    guidelines.addEventListener("toggle", remember);
  }

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
    var button = document.getElementById("submit-button");
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit(button);
    } else {
      button.click();
    }
  }

  function isTextField(el) {
    if (!el) { return false; }
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") { return true; }
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset|hidden|range|color|file|image)$/i.test(el.type);
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (isTextField(target)) {
      if (event.key === "Escape") { target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form && form.contains(target)) {
        submitForm();
        event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.altKey || event.metaKey || event.shiftKey || event.isComposing) { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = false;
    if (key === "Enter") {
      // Enter on a link, a button or the guidelines' summary does what it does natively
      if (target && target.closest && target.closest("a, button, summary")) { return; }
      if (!form) { return; }
      submitForm();
      handled = true;
    } else if (key === "n") {
      handled = follow("skip-button") || follow("continue-link");
    } else if (key === "b") {
      handled = follow("previous-link");
    } else if (key === "m") {
      handled = follow("my-ratings-link");
    } else if (key === "g") {
      if (guidelines) { guidelines.open = !guidelines.open; handled = true; }
    } else if (key === "i") {
      var comment = document.getElementById("id_comment");
      if (comment) { comment.focus(); handled = true; }
    } else if (/^[0-9a-z]$/.test(key)) {
      handled = choose('input[data-key="' + key + '"]');
    }
    if (handled) { event.preventDefault(); }
  });
})();
