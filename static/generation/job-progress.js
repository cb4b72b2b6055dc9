// Keeps job progress current on the admin pages by polling GET /api/jobs/{id}/. On the job list each
// .job-progress box is updated in place. On a job's page (inside #job-live) a change of status or of
// the answer count fetches the page again and swaps in its #job-live part, so the progress, the chunk
// table and the load attempts shown always come from one server read and agree. No inline code (CSP).
(function () {
  "use strict";
  var FINISHED = ["succeeded", "failed", "cancelled", "partially_failed"];
  // the same words as templates/generation/_progress.html
  var NO_WORKER = "No live worker: nothing answers this job until a worker starts.";

  function isFinished(status) { return FINISHED.indexOf(status) >= 0; }

  function eta(seconds) {
    if (seconds === null || seconds === undefined) { return "not yet known"; }
    return Math.round(seconds) + " s";
  }

  function setText(box, name, value) {
    var el = box.querySelector("[data-field='" + name + "']");
    if (el) { el.textContent = value; }
  }

  function render(box, job) {
    var bar = box.querySelector("progress");
    if (bar) { bar.max = Math.max(job.total, 1); bar.value = job.done; }
    setText(box, "done", job.done);
    setText(box, "total", job.total);
    setText(box, "status", job.status);
    var status = box.querySelector("[data-field='status']");
    if (status) { status.className = "status " + job.status; }
    setText(box, "tokens_per_s", job.tokens_per_s === null ? "-" : job.tokens_per_s.toFixed(1));
    setText(box, "eta", eta(job.eta_s));
    var etaPart = box.querySelector("[data-field='eta-part']");
    if (etaPart) { etaPart.hidden = isFinished(job.status); }
    setText(box, "error", job.error || "");
    setText(box, "worker", job.waiting_for_worker ? NO_WORKER : "");
    box.dataset.status = job.status;
    box.dataset.done = String(job.done);
  }

  function swapLive(live) {
    return fetch(live.dataset.page, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("job-live");
        if (!fresh) { return Promise.reject("no #job-live"); }
        var node = document.importNode(fresh, true);
        live.replaceWith(node);
        return node;
      });
  }

  function later(box, ms) { window.setTimeout(function () { poll(box); }, ms); }

  function poll(box) {
    fetch(box.dataset.api, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (job) {
        var live = box.closest("#job-live");
        var changed = job.status !== box.dataset.status || String(job.done) !== box.dataset.done;
        if (live && changed) {
          swapLive(live).then(function (node) {
            var fresh = node.querySelector(".job-progress[data-api]");
            if (fresh && !isFinished(fresh.dataset.status)) { later(fresh, 2000); }
          }, function () { later(box, 5000); });
          return;
        }
        if (!live) { render(box, job); }
        if (!isFinished(job.status)) { later(box, 2000); }
      })
      .catch(function () { later(box, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll(".job-progress[data-api]");
    Array.prototype.forEach.call(boxes, function (box) {
      if (!isFinished(box.dataset.status)) { poll(box); }
    });
  });
})();
