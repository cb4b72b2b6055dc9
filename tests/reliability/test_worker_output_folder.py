"""A fine-tuning run never writes over files it did not make (issue 15, item 5, the worker's side): the
attack had the worker (root) replace the README.md of an existing folder outside the var folder. The
tiny random llama trains for real on the CPU; the web side's checks are in test_path_confinement.py."""

from __future__ import annotations

import pytest

from generation.ml.finetune import FinetuneError
from generation.models import FinetuneRun, JobStatus
from generation.paths import NOT_ALLOWED
from generation.worker.training import finetune_run_execute
from tests.support.figures import figure
from tests.support.training_data import make_review_dataset, tiny_config

pytestmark = pytest.mark.django_db


def _train(base, output, **kwargs) -> FinetuneRun:
    config = tiny_config(epochs=2)
    return finetune_run_execute(
        dataset_name="reviews", base_model=str(base), output_dir=output, config=config, **kwargs
    )


def test_the_worker_refuses_output_outside_the_roots_and_never_overwrites(tiny_llama_dir, tmp_path, settings):
    var = tmp_path / "var"
    var.mkdir()
    settings.EVALSITE_MODEL_ROOTS = [str(var)]
    make_review_dataset()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "README.md").write_text("not yours")
    busy = var / "busy"
    busy.mkdir()
    (busy / "README.md").write_text("an older run's notes")
    answers = {}
    for name, output in {"outside": outside, "non-empty": busy}.items():
        with pytest.raises(FinetuneError) as error:
            _train(tiny_llama_dir, output)
        answers[name] = str(error.value)

    # a folder that fills while the run trains (another run, a person): the run fails, nothing replaced
    racing = var / "racing"

    def intruder(progress) -> None:
        racing.mkdir(exist_ok=True)
        (racing / "README.md").write_text("written during the run")

    with pytest.raises(FinetuneError, match="no longer empty: nothing was overwritten"):
        _train(tiny_llama_dir, racing, on_epoch=intruder)
    run = FinetuneRun.objects.get()
    leftovers = sorted(p.name for p in var.iterdir())
    figure("output-never-overwritten", outside="refused", non_empty="refused", filled_while_training="failed",
           files_replaced=int((racing / "README.md").read_text() != "written during the run"),
           files_added=len(list(racing.iterdir())) - 1, staging_left=len(leftovers) - 2)  # fmt: skip
    assert answers["outside"] == f"--output: {NOT_ALLOWED}"
    assert answers["non-empty"] == "--output: must be a new or empty folder (nothing is ever overwritten)"
    assert (outside / "README.md").read_text() == "not yours" and len(list(outside.iterdir())) == 1
    assert (busy / "README.md").read_text() == "an older run's notes" and len(list(busy.iterdir())) == 1
    assert [p.name for p in racing.iterdir()] == ["README.md"]
    assert (racing / "README.md").read_text() == "written during the run"
    assert leftovers == ["busy", "racing"]  # the staging folder is gone
    assert run.status == JobStatus.FAILED and "no longer empty" in run.error
