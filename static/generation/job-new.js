// The job form (/jobs/new/): "also answer with the run's kept epochs" applies to a finished
// fine-tuning run only, so it is shown while one is picked in the model menu (and always without
// JavaScript; the server refuses it without a run). No inline code (CSP).
(function () {
  "use strict";
  var model = document.getElementById("id_model");
  var kept = document.getElementById("id_kept_epochs");
  if (!model || !kept) { return; }
  var field = kept.closest(".field") || kept.parentNode;

  function update() {
    var isRun = model.value.indexOf("run:") === 0;
    field.hidden = !isRun && !kept.checked;
  }

  model.addEventListener("change", update);
  update();
}());
