"""A job of more than two systems (issue 17): rows of the base and of several LoRA adapters share one
batch, each adapter switched on for its own rows only, and every row gets what its system gives alone.
Also through the engine: a request list of three adapters and the base is answered in mixed batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.ml.decoding import STEP_MODES, RowSwitchedLoRA
from tests.ml.test_decoding import _decode, _eos_with_varied_stops, _one_at_a_time, _prompts
from tests.support.tiny_models import build_lora_adapter

NAMES = ("finetuned", "epoch-a", "epoch-b")


@pytest.fixture(scope="module")
def three_adapters(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folders = [
        build_lora_adapter(tiny_llama_dir, tmp_path_factory.mktemp(f"adapter-{n}"), seed=10 + n, r=4 + 4 * n)
        for n in range(len(NAMES))
    ]
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(folders[0]), adapter_name=NAMES[0])
    for name, folder in zip(NAMES[1:], folders[1:], strict=True):
        model.load_adapter(str(folder), adapter_name=name)
    model.eval()
    return model


def _alone(model, prompts, *, eos):
    """Each system's greedy answers, one prompt at a time through transformers' generate()."""
    base_model = model.get_base_model()
    with model.disable_adapter():
        out = {None: _one_at_a_time(base_model, prompts, max_new_tokens=10, eos=eos)}
    for name in NAMES:
        model.set_adapter(name)
        out[name] = _one_at_a_time(base_model, prompts, max_new_tokens=10, eos=eos)
    return out


@pytest.mark.parametrize("step_mode", STEP_MODES)
def test_base_and_three_adapters_in_one_batch_give_what_each_gives_alone(three_adapters, step_mode):
    model = three_adapters
    prompts = _prompts(5, shared=6, vocab=model.get_base_model().config.vocab_size, seed=21)
    first = _alone(model, prompts, eos=None)
    assert len({str(v) for v in first.values()}) == 4, "every system must answer differently for this test"
    eos = _eos_with_varied_stops([row for rows in first.values() for row in rows])
    alone = _alone(model, prompts, eos=eos)

    switch = RowSwitchedLoRA(model, NAMES)
    assert RowSwitchedLoRA.supports(model, NAMES)
    switch.activate(model)
    systems = (None, *NAMES)
    rows = [(p, s) for p in range(len(prompts)) for s in range(len(systems))]
    got = _decode(
        model.get_base_model(),
        [prompts[p] for p, _ in rows],
        max_new_tokens=10,
        eos={eos},
        prefill_rows=4,
        adapter_rows=[s for _, s in rows],
        row_lora=switch,
        step_mode=step_mode,
    )

    assert got == [alone[systems[s]][p] for p, s in rows]


def test_an_adapter_number_out_of_range_is_refused(three_adapters):
    switch = RowSwitchedLoRA(three_adapters, NAMES[:2])
    with pytest.raises(ValueError, match="adapter_rows"):
        _decode(
            three_adapters.get_base_model(), [[5, 6, 7]], max_new_tokens=2, eos=set(),
            adapter_rows=[3], row_lora=switch,
        )  # fmt: skip


def test_the_engine_answers_every_system_in_mixed_batches(tiny_llama_dir, tmp_path, monkeypatch):
    """Through the worker's engine: requests of the base and three adapters on one loaded base; with
    the row switch on, batches mix systems, and every answer equals its system's answer in a batch of
    its own system."""
    from generation.ml import engine
    from generation.ml.loading import ModelHost
    from generation.ml.modeling import resolve_base

    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "switch")
    host = ModelHost()
    entry, _ = host.load_base(resolve_base(str(tiny_llama_dir), "", model_dir=tmp_path / "models"))
    names = [
        host.load_adapter(entry, str(build_lora_adapter(tiny_llama_dir, tmp_path / f"a{n}", seed=30 + n)))[0]
        for n in range(3)
    ]
    texts = [f"review number {i}: the battery is {'good' if i % 2 else 'bad'}" for i in range(4)]
    requests = [
        engine.Request(key=(i, s), prompt_text=text, adapter=adapter)
        for i, text in enumerate(texts)
        for s, adapter in enumerate([None, *names])
    ]
    batches_seen: list[set] = []
    mixed = {}
    for results in engine.generate(entry, requests, max_new_tokens=6, batch_size=8):
        batches_seen.append({r.key[1] for r in results})
        mixed.update({r.key: r.text for r in results})
    assert any(len(systems) > 2 for systems in batches_seen), batches_seen

    homogeneous = {}
    for s, adapter in enumerate([None, *names]):
        own = [r for r in requests if r.adapter == adapter]
        for results in engine.generate(entry, own, max_new_tokens=6, batch_size=8):
            homogeneous.update({r.key: r.text for r in results})
    assert mixed == homogeneous
    assert len({mixed[(0, s)] for s in range(4)}) > 1
