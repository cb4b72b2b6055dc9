// Keeps a fine-tuning run page current: polls GET /api/finetune-runs/{id}/ and, when an epoch has
// finished or the status changed, fetches the page again and swaps in its #run-live part (the facts
// and the server-drawn loss curves), so the curves grow as epochs arrive. No inline code: CSP-safe.
(function () {
  "use strict";
  var FINISHED = ["succeeded", "failed", "cancelled"];

  function swapLive(box) {
    return fetch(box.dataset.page, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("run-live");
        var current = box.querySelector("#run-live");
        if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); }
      });
  }

  function poll(box) {
    fetch(box.dataset.api, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (run) {
        var changed = String(run.epochs_run) !== box.dataset.epochsRun || run.status !== box.dataset.status;
        box.dataset.epochsRun = String(run.epochs_run);
        box.dataset.status = run.status;
        var done = FINISHED.indexOf(run.status) >= 0;
        var next = function () { if (!done) { window.setTimeout(function () { poll(box); }, 3000); } };
        if (changed) { swapLive(box).then(next, next); } else { next(); }
      })
      .catch(function () { window.setTimeout(function () { poll(box); }, 10000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll(".run-progress[data-api]");
    Array.prototype.forEach.call(boxes, function (box) {
      if (FINISHED.indexOf(box.dataset.status) < 0) { poll(box); }
    });
  });
})();
