// The live guidelines preview on the open-a-campaign page: while the admin types, the Markdown is
// posted to the preview endpoint, which draws it with the rating page's own renderer, and the result
// replaces the preview box. Without this script the "Preview" button does the same by a full post.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("campaign-form");
    var box = document.getElementById("guidelines-preview");
    if (!form || !box) { return; }
    var text = form.querySelector("textarea[name='guidelines']");
    var token = form.querySelector("input[name='csrfmiddlewaretoken']");
    if (!text || !token) { return; }
    var timer = null;
    var sent = 0;

    function refresh() {
      var body = new URLSearchParams();
      body.set("guidelines", text.value);
      var mine = ++sent;
      fetch(box.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": token.value, "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString()
      })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          if (mine !== sent) { return; }  // an older answer arriving late
          // the fragment is escaped Markdown with fixed tags only (annotations/display.py)
          box.innerHTML = html || "<p class=\"muted\">(no guidelines)</p>";
        })
        .catch(function () { /* the Preview button still works */ });
    }

    text.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 300);
    });
    var button = document.getElementById("preview-button");
    if (button) {
      button.addEventListener("click", function (event) { event.preventDefault(); refresh(); });
    }
  });
})();
