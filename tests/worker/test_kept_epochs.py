"""Checkpoints of one run (issue 17): `keep_epochs` / `keep_every` (the `finetune` command's
--keep-epochs / --keep-every) write the chosen epochs' real weights beside the best ones, each an
adapter folder a job can load, listed in training.json with its validation loss."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generation.configs import ConfigError, FinetuneConfig
from generation.worker.training import finetune_run_execute
from tests.support.training_data import lora_tensors, tiny_config
from tests.support.training_data import make_review_dataset as make_dataset


@pytest.mark.django_db
def test_kept_epochs_hold_that_epochs_weights_and_are_listed_with_their_loss(tiny_llama_dir, tmp_path):
    from safetensors.torch import load_file

    make_dataset()
    curve = [3.0, 2.0, 1.5, 1.7, 1.6]  # best at epoch 3
    snapshots = {}

    def scripted_validation(model, epoch):
        snapshots[epoch] = {n.replace(".default", ""): t for n, t in lora_tensors(model).items()}
        return curve[epoch - 1]

    output = tmp_path / "adapter"
    config = tiny_config(epochs=5, patience=5)
    config.keep_epochs, config.keep_every = (1, 2), 4
    finetune_run_execute(
        dataset_name="reviews",
        base_model=str(tiny_llama_dir),
        output_dir=output,
        config=config,
        evaluate=scripted_validation,
    )
    metrics = json.loads((output / "training.json").read_text())
    assert [k["epoch"] for k in metrics["kept_epochs"]] == [1, 2, 4]
    assert [k["val_loss"] for k in metrics["kept_epochs"]] == [3.0, 2.0, 1.7]
    assert metrics["best_epoch"] == 3 and metrics["config"]["keep_epochs"] == [1, 2]
    for kept in metrics["kept_epochs"]:
        folder = output / kept["folder"]
        assert (folder / "adapter_config.json").exists()
        saved = load_file(str(folder / "adapter_model.safetensors"))
        for name, tensor in saved.items():
            assert tensor.equal(snapshots[kept["epoch"]][name]), (kept["epoch"], name)
    # the best epoch's weights are still the run's main adapter, and differ from a kept epoch's
    best = load_file(str(output / "adapter_model.safetensors"))
    two = load_file(str(output / "epochs/epoch-002/adapter_model.safetensors"))
    assert all(best[n].equal(snapshots[3][n]) for n in best)
    assert any(not best[n].equal(two[n]) for n in best)


@pytest.mark.django_db
def test_a_kept_epoch_loads_as_an_adapter(tiny_llama_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    make_dataset()
    config = tiny_config(epochs=2, patience=5)
    config.keep_every = 1
    finetune_run_execute(
        dataset_name="reviews", base_model=str(tiny_llama_dir), output_dir=tmp_path / "a", config=config
    )
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    model = PeftModel.from_pretrained(base, str(tmp_path / "a" / "epochs" / "epoch-001"))
    assert model.peft_config["default"].r == config.r


def test_epoch_lists_are_parsed_and_checked():
    assert FinetuneConfig(keep_epochs="25, 5,10,5").keep_epochs == (5, 10, 25)
    config = FinetuneConfig(keep_every=10, keep_epochs=(3,))
    assert [e for e in range(1, 31) if config.keeps(e)] == [3, 10, 20, 30]
    with pytest.raises(ConfigError) as caught:
        FinetuneConfig(keep_epochs="5,x")
    assert caught.value.field == "keep_epochs"
    with pytest.raises(ConfigError):
        FinetuneConfig(keep_every=0)


@pytest.mark.django_db
def test_the_command_rejects_a_bad_epoch_list_in_one_line(tiny_llama_dir, tmp_path):
    make_dataset()
    argv = ["--dataset", "reviews", "--base", str(tiny_llama_dir), "--output", str(tmp_path / "o")]
    with pytest.raises(CommandError) as caught:
        call_command("finetune", *argv, "--keep-epochs", "5,0", stdout=StringIO())
    assert str(caught.value) == "--keep-epochs '0' is not an epoch number (1, 2, …)"
    assert not (tmp_path / "o").exists()
