"""The worker's decode loop against transformers' own generate(), one prompt at a time, on a tiny
random llama: batching, the shared prefix, length-sorted prefill groups and rows leaving the batch
when they stop must not change a single greedy token."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from generation.configs import Sampling
from generation.ml.decoding import STEP_MODES, RowSwitchedLoRA, decode, shared_prefix_length


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32)
    model.eval()
    return model


def _prompts(n: int, *, shared: int, vocab: int, seed: int = 3) -> list[list[int]]:
    rng = random.Random(seed)
    header = [rng.randrange(3, vocab) for _ in range(shared)]
    return [header + [rng.randrange(3, vocab) for _ in range(rng.randint(1, 14))] for _ in range(n)]


def _one_at_a_time(model, prompts, *, max_new_tokens: int, eos: int | None) -> list[list[int]]:
    import torch

    outputs = []
    for ids in prompts:
        with torch.inference_mode():
            out = model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos if eos is not None else [],
                pad_token_id=0,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        new = out[0, len(ids) :].tolist()
        if eos is not None and eos in new:
            new = new[: new.index(eos) + 1]
        outputs.append(new)
    return outputs


def _decode(model, prompts, *, max_new_tokens: int, eos: set[int], **kwargs) -> list[list[int]]:
    return [row.tokens for row in _decoded(model, prompts, max_new_tokens=max_new_tokens, eos=eos, **kwargs)]


def _decoded(model, prompts, *, max_new_tokens: int, eos: set[int], **kwargs):
    import torch

    with torch.inference_mode():
        return decode(
            model, prompts, max_new_tokens=max_new_tokens, eos_ids=eos, pad_id=0, device="cpu", **kwargs
        )


def test_the_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 4, 9]]) == 3
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert shared_prefix_length([[7, 8], [9, 8]]) == 0
    assert shared_prefix_length([[5, 6, 7]]) == 2


@pytest.mark.parametrize("step_mode", STEP_MODES)
@pytest.mark.parametrize("prefill_rows", [1, 3, 64])
def test_batched_greedy_decoding_matches_generate_one_prompt_at_a_time(tiny, prefill_rows, step_mode):
    prompts = _prompts(11, shared=9, vocab=tiny.config.vocab_size)
    expected = _one_at_a_time(tiny, prompts, max_new_tokens=12, eos=None)

    got = _decode(
        tiny, prompts, max_new_tokens=12, eos=set(), prefill_rows=prefill_rows, step_mode=step_mode
    )

    assert got == expected
    assert all(len(row) == 12 for row in got)


@pytest.mark.parametrize("step_mode", STEP_MODES)
def test_rows_that_stop_early_leave_the_batch_without_changing_the_others(tiny, step_mode):
    prompts = _prompts(12, shared=6, vocab=tiny.config.vocab_size, seed=5)
    free = _one_at_a_time(tiny, prompts, max_new_tokens=16, eos=None)
    eos = _eos_with_varied_stops(free)
    expected = _one_at_a_time(tiny, prompts, max_new_tokens=16, eos=eos)
    stop_steps = {len(row) for row in expected}
    assert len(stop_steps) >= 3, "the test needs rows that stop at different steps"

    got = _decode(tiny, prompts, max_new_tokens=16, eos={eos}, prefill_rows=4, step_mode=step_mode)

    assert got == expected


@pytest.mark.parametrize("step_mode", STEP_MODES)
def test_prompts_without_a_shared_prefix_and_a_single_prompt(tiny, step_mode):
    vocab = tiny.config.vocab_size
    prompts = [[5, 6, 7], [8], [9, 10, 11, 12, 13, 14, 15]]
    assert _decode(tiny, prompts, max_new_tokens=5, eos=set(), step_mode=step_mode) == _one_at_a_time(
        tiny, prompts, max_new_tokens=5, eos=None
    )
    single = _prompts(1, shared=0, vocab=vocab)
    assert _decode(tiny, single, max_new_tokens=7, eos=set(), step_mode=step_mode) == _one_at_a_time(
        tiny, single, max_new_tokens=7, eos=None
    )
    assert _decode(tiny, single, max_new_tokens=1, eos=set(), step_mode=step_mode) == _one_at_a_time(
        tiny, single, max_new_tokens=1, eos=None
    )


@pytest.mark.parametrize("step_mode", STEP_MODES)
def test_sampling_repeats_with_its_seed_and_top_k_1_is_greedy(tiny, step_mode):
    prompts = _prompts(6, shared=4, vocab=tiny.config.vocab_size)
    greedy = _decode(tiny, prompts, max_new_tokens=10, eos=set())
    hot = Sampling(do_sample=True, temperature=5.0, seed=11)

    first = _decode(tiny, prompts, max_new_tokens=10, eos=set(), sampling=hot, step_mode=step_mode)
    again = _decode(tiny, prompts, max_new_tokens=10, eos=set(), sampling=hot, step_mode=step_mode)
    other_seed = Sampling(do_sample=True, temperature=5.0, seed=12)
    other = _decode(tiny, prompts, max_new_tokens=10, eos=set(), sampling=other_seed, step_mode=step_mode)
    top1 = _decode(
        tiny, prompts, max_new_tokens=10, eos=set(), sampling=Sampling(do_sample=True, top_k=1, seed=11),
        step_mode=step_mode,
    )

    assert first == again
    assert first != other
    assert first != greedy
    assert top1 == greedy


def test_a_tiny_top_p_keeps_only_the_most_likely_token(tiny):
    prompts = _prompts(4, shared=2, vocab=tiny.config.vocab_size)
    greedy = _decode(tiny, prompts, max_new_tokens=6, eos=set())
    nucleus = _decode(
        tiny, prompts, max_new_tokens=6, eos=set(), sampling=Sampling(do_sample=True, top_p=1e-6, seed=1)
    )
    assert nucleus == greedy


def test_bad_input_is_refused(tiny):
    with pytest.raises(ValueError, match="step_mode must be one of transformers, static, graph"):
        _decode(tiny, [[1, 2]], max_new_tokens=3, eos=set(), step_mode="fast")
    with pytest.raises(ValueError, match="no tokens"):
        _decode(tiny, [[1, 2], []], max_new_tokens=3, eos=set())
    with pytest.raises(ValueError, match="max_new_tokens"):
        _decode(tiny, [[1, 2]], max_new_tokens=0, eos=set())
    assert _decode(tiny, [], max_new_tokens=3, eos=set()) == []


class ClockSpy:
    """The clock the decode loop charges rows by, recorded: every value it read, so a test can check
    that the rows' shares add up to the span the loop measured (an identity, not a timing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        from generation.ml.decoding import batch

        self.readings: list[float] = []
        real = time.perf_counter

        def perf_counter() -> float:
            self.readings.append(real())
            return self.readings[-1]

        monkeypatch.setattr(batch, "time", SimpleNamespace(perf_counter=perf_counter))

    @property
    def span(self) -> float:
        return self.readings[-1] - self.readings[0]


def _eos_with_varied_stops(outputs: list[list[int]]) -> int:
    """The token whose first appearance varies most across rows: as "end of sequence", it stops rows
    early, late and never."""
    first_steps: dict[int, set[int]] = {}
    for tokens in outputs:
        for token in set(tokens):
            first_steps.setdefault(token, set()).add(tokens.index(token))
    return max(first_steps, key=lambda t: len(first_steps[t]))


@pytest.mark.parametrize("step_mode", ["transformers", "static"])
def test_each_row_is_charged_for_the_steps_it_took_and_the_shares_add_up(tiny, step_mode, monkeypatch):
    rng = random.Random(8)
    prompts = [[7, 8, 9] + [rng.randrange(3, tiny.config.vocab_size) for _ in range(6)] for _ in range(10)]
    eos = _eos_with_varied_stops(_one_at_a_time(tiny, prompts, max_new_tokens=20, eos=None))
    clock = ClockSpy(monkeypatch)
    rows = _decoded(tiny, prompts, max_new_tokens=20, eos={eos}, prefill_rows=10, step_mode=step_mode)

    # every forward pass after the clock started is charged to the rows it computed, and only once
    assert len(clock.readings) > 20
    assert sum(r.seconds for r in rows) == pytest.approx(clock.span, rel=1e-9)
    # equal prompts share the prefill equally, so a row's time grows with the steps it stayed for
    by_length = sorted(rows, key=lambda r: len(r.tokens))
    assert len(by_length[0].tokens) < len(by_length[-1].tokens)
    for shorter, longer in zip(by_length, by_length[1:]):
        if len(shorter.tokens) == len(longer.tokens):
            assert shorter.seconds == pytest.approx(longer.seconds, rel=1e-6)
        else:
            assert shorter.seconds < longer.seconds


def test_graph_steps_charge_every_row_alike_for_the_steps_and_the_shares_add_up(tiny, monkeypatch):
    """The graph loop computes every row at every step (its shapes are fixed), so after the prefill
    each row is charged the same; rows still pay their own prefill group."""
    prompts = [[7, 8, 9, 10, 11, 12] for _ in range(6)]
    eos = _eos_with_varied_stops(_one_at_a_time(tiny, prompts[:1], max_new_tokens=9, eos=None))
    clock = ClockSpy(monkeypatch)
    rows = _decoded(tiny, prompts, max_new_tokens=9, eos={eos}, prefill_rows=6, step_mode="graph")

    assert len(clock.readings) > 2
    assert sum(r.seconds for r in rows) == pytest.approx(clock.span, rel=1e-9)
    assert all(r.seconds == pytest.approx(rows[0].seconds, rel=1e-6) for r in rows)


@pytest.fixture(scope="module")
def tiny_peft(tiny_llama_dir: Path, tiny_adapter_dir: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(tiny_adapter_dir), adapter_name="finetuned")
    model.eval()
    return model


@pytest.mark.parametrize("step_mode", STEP_MODES)
def test_both_roles_in_one_batch_give_what_each_role_gives_alone(tiny_peft, step_mode):
    vocab = tiny_peft.get_base_model().config.vocab_size
    prompts = _prompts(7, shared=8, vocab=vocab, seed=4)
    base_model = tiny_peft.get_base_model()
    with tiny_peft.disable_adapter():
        pretrained = _one_at_a_time(base_model, prompts, max_new_tokens=12, eos=None)
    tiny_peft.set_adapter("finetuned")
    finetuned = _one_at_a_time(base_model, prompts, max_new_tokens=12, eos=None)
    assert pretrained != finetuned, "the adapter must change something for this test to mean anything"
    eos = _eos_with_varied_stops(pretrained + finetuned)
    with tiny_peft.disable_adapter():
        pretrained = _one_at_a_time(base_model, prompts, max_new_tokens=12, eos=eos)
    finetuned = _one_at_a_time(base_model, prompts, max_new_tokens=12, eos=eos)

    assert RowSwitchedLoRA.supports(tiny_peft, "finetuned")
    switch = RowSwitchedLoRA(tiny_peft, "finetuned")
    rows = [(p, role) for p in range(len(prompts)) for role in (False, True)]
    got = _decode(
        base_model,
        [prompts[p] for p, _ in rows],
        max_new_tokens=12,
        eos={eos},
        prefill_rows=3,
        adapter_rows=[role for _, role in rows],
        row_lora=switch,
        step_mode=step_mode,
    )

    assert got == [(finetuned if role else pretrained)[p] for p, role in rows]
    # the switch leaves the model as it found it: adapter on for every row again
    assert _one_at_a_time(base_model, prompts[:2], max_new_tokens=12, eos=eos) == finetuned[:2]


@pytest.mark.parametrize("step_mode", STEP_MODES)
def test_a_lora_branch_gone_nan_does_not_reach_the_pretrained_rows_of_a_shared_batch(
    tiny_llama_dir, tiny_adapter_dir, step_mode
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32)
    base.eval()
    prompts = _prompts(4, shared=6, vocab=base.config.vocab_size, seed=9)
    pretrained = _one_at_a_time(base, prompts, max_new_tokens=8, eos=None)
    model = PeftModel.from_pretrained(base, str(tiny_adapter_dir), adapter_name="finetuned")
    model.eval()
    with torch.no_grad():  # what an fp16 overflow or a diverged adapter puts in the LoRA branch
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.fill_(float("nan"))

    rows = [(p, role) for p in range(len(prompts)) for role in (False, True)]
    got = _decode(
        model.get_base_model(),
        [prompts[p] for p, _ in rows],
        max_new_tokens=8,
        eos=set(),
        adapter_rows=[role for _, role in rows],
        row_lora=RowSwitchedLoRA(model, "finetuned"),
        step_mode=step_mode,
    )

    assert [got[i] for i, (_, role) in enumerate(rows) if not role] == pretrained


def _run_bench(*args: str) -> dict:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(root / "bench" / "generation.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=root, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # child processes that import torch and transformers: ~10 s each here
@pytest.mark.parametrize("mode", ["switch", "merged"])
def test_the_generation_bench_reports_its_figures_and_the_engine_matches_naive(
    tiny_llama_dir, tiny_adapter_dir, mode
):
    report = _run_bench(
        "--base", str(tiny_llama_dir), "--adapter", str(tiny_adapter_dir), "--prompts", "5",
        "--max-new-tokens", "6", "--adapter-mode", mode,
    )
    assert report["adapter_mode"] == mode and report["device"] == "cpu" and report["prompts"] == 5
    assert report["naive_tokens"] == report["engine_tokens"] > 0
    assert report["matching_answers"] == report["answers"] == 10  # greedy fp32: word for word
    assert report["naive_tok_s"] > 0 and report["engine_tok_s"] > 0
    # all three are rounded to 2 decimals
    assert report["speedup"] == pytest.approx(report["engine_tok_s"] / report["naive_tok_s"], abs=0.011)
    assert report["model"] == str(tiny_llama_dir) and report["adapter_params"] > 0
    assert report["decode_step"] == "static" and report["cuda_graphs"] == {"captured": 0, "failed": 0}


def test_the_bench_interval_for_the_median_round_is_the_widest_order_statistics_that_cover_95_percent():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "generation.py"
    spec = importlib.util.spec_from_file_location("bench_generation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    five = bench.median_interval([6.61, 5.86, 6.56, 8.61, 6.95])
    # five values: only the range covers the median with >= 1 - 2/32; it says so rather than claim 95%
    assert (five["low"], five["high"], five["confidence"], five["n"]) == (5.86, 8.61, 0.9375, 5)
    ten = bench.median_interval([float(x) for x in range(10, 0, -1)])
    # ten: the 2nd and 9th of ten cover it with 1 - 2 * 11/1024; the 3rd and 8th only with 0.89
    assert (ten["low"], ten["high"], ten["confidence"]) == (2.0, 9.0, 0.9785)
    assert bench.median_interval([7.0]) is None


@pytest.mark.slow
def test_the_generation_bench_interleaves_its_rounds_with_shares_of_the_naive_loop(
    tiny_llama_dir, tiny_adapter_dir
):
    report = _run_bench(
        "--base", str(tiny_llama_dir), "--adapter", str(tiny_adapter_dir), "--prompts", "5",
        "--max-new-tokens", "6", "--rounds", "3",
    )
    assert report["rounds"] == 3 and len(report["engine_tok_s_rounds"]) == 3
    assert report["engine_tok_s"] == sorted(report["engine_tok_s_rounds"])[1]  # the median round
    assert len(report["speedup_rounds"]) == 3 and all(x > 0 for x in report["speedup_rounds"])
    interval, speedups = report["speedup_rounds_median_interval"], report["speedup_rounds"]
    assert (interval["low"], interval["high"]) == (min(speedups), max(speedups))
    assert report["engine_repeatable"] is True
    # the naive shares (1, 2 and 2 prompts) together cover every prompt once, in order
    assert report["naive_prompts"] == 5 and report["naive_tokens"] == report["engine_tokens"]
    assert report["matching_answers"] == report["answers"] == 10


@pytest.mark.slow
def test_the_generation_bench_can_skip_the_naive_loop(tiny_llama_dir, tiny_adapter_dir):
    report = _run_bench(
        "--base", str(tiny_llama_dir), "--adapter", str(tiny_adapter_dir), "--prompts", "3",
        "--max-new-tokens", "4", "--naive-prompts", "0",
    )
    assert report["naive_tok_s"] is None and report["speedup"] is None and report["naive_prompts"] == 0
    assert report["engine_tokens"] > 0 and report["engine_tok_s"] > 0


def test_the_cache_goes_by_the_name_the_models_forward_takes(tiny):
    """transformers 5.2x takes `cache=` (and still accepts `past_key_values=`); 5.17, the GPU machine's,
    takes only `past_key_values=` and would swallow `cache=` into **kwargs, decoding without a cache."""
    import inspect

    import torch

    from generation.ml.decoding import cache_argument

    class Older(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs):
            return input_ids

    assert cache_argument(tiny) in inspect.signature(tiny.forward).parameters
    assert cache_argument(Older()) == "past_key_values"
