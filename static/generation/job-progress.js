// Keeps every .job-progress[data-api] element up to date by polling GET /api/jobs/{id}/ (admin pages only).
(function () {
  "use strict";
  var FINISHED = ["succeeded", "failed", "cancelled", "partially_failed"];
  // the same words as templates/generation/_progress.html
  var NO_WORKER = "No live worker: nothing answers this job until a worker starts.";

  function clock(seconds) {
    if (seconds === null || seconds === undefined) { return "--:--"; }
    var s = Math.round(seconds), m = Math.floor(s / 60), h = Math.floor(m / 60);
    var mm = String(m % 60).padStart(2, "0"), ss = String(s % 60).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
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
    setText(box, "tokens_per_s", job.tokens_per_s === null ? "-" : job.tokens_per_s.toFixed(1));
    setText(box, "eta", clock(job.eta_s));
    setText(box, "error", job.error || "");
    setText(box, "worker", job.waiting_for_worker ? NO_WORKER : "");
    box.dataset.status = job.status;
  }

  function poll(box) {
    fetch(box.dataset.api, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (job) {
        render(box, job);
        if (FINISHED.indexOf(job.status) >= 0) {
          // The page shows more once a job ends (load attempts, chunk errors): load it once more.
          if (box.dataset.reloadWhenDone === "true") { window.location.reload(); }
          return;
        }
        window.setTimeout(function () { poll(box); }, 2000);
      })
      .catch(function () { window.setTimeout(function () { poll(box); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll(".job-progress[data-api]");
    Array.prototype.forEach.call(boxes, function (box) {
      if (FINISHED.indexOf(box.dataset.status) < 0) { poll(box); }
    });
  });
})();
