"""The statistics in `reports.statistics`, checked against independent computations."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from scipy import stats

from reports.statistics.accuracy import (
    answer_matches,
    automated_accuracy,
    majority_verdicts,
    mcnemar_exact,
    wilson_interval,
)
from reports.statistics.agreement import agreement_with_others, krippendorff_alpha
from reports.statistics.bias import length_bias, position_bias, side_preference
from reports.statistics.campaign_coverage import campaign_coverage
from reports.statistics.claims import relevance_claim
from reports.statistics.identity import IDENTITY_REGEX, find_identity_leak, identity_leaks
from reports.statistics.intervals import mean_interval
from reports.statistics.latency import cost, latency
from reports.statistics.relevance import relevance, win_rate


def test_relevance_means_improvement_and_wilcoxon_match_hand_computation():
    # prompt 0: two ratings, prompt 1: one, prompt 2: two
    codes = np.array([0, 0, 1, 2, 2])
    pt = np.array([2, 4, 3, 1, 2])
    ft = np.array([4, 4, 5, 2, 2])
    out = relevance(codes, pt, ft, 3)
    pt_means = [3.0, 3.0, 1.5]
    ft_means = [4.0, 5.0, 2.0]
    assert out["n_prompts"] == 3
    assert out["pretrained_mean"] == pytest.approx(sum(pt_means) / 3)
    assert out["finetuned_mean"] == pytest.approx(sum(ft_means) / 3)
    assert out["improvement"] == pytest.approx((11 / 3 - 7.5 / 3) / (7.5 / 3))
    diffs = [f - p for f, p in zip(ft_means, pt_means)]
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(diffs).pvalue)


def test_intervals_are_deterministic_and_contain_the_estimates():
    rng = np.random.default_rng(1)
    n = 60
    codes = np.repeat(np.arange(n), 3)
    pt = rng.integers(1, 6, size=3 * n)
    ft = np.clip(pt + rng.integers(-1, 3, size=3 * n), 1, 5)
    first = relevance(codes, pt, ft, n)
    second = relevance(codes, pt, ft, n)
    assert first["ci95"] == second["ci95"] and first["permutation_p"] == second["permutation_p"]
    lo, hi = first["ci95"]
    assert lo < first["improvement"] < hi
    lo, hi = first["difference_ci95"]
    assert lo < first["difference"] < hi


def test_difference_interval_is_the_mean_interval_of_prompt_differences():
    rng = np.random.default_rng(7)
    codes = np.repeat(np.arange(40), 2)
    pt = rng.integers(1, 6, 80)
    ft = rng.integers(1, 6, 80)
    out = relevance(codes, pt, ft, 40)
    diffs = (ft - pt).reshape(40, 2).mean(axis=1)
    ci = stats.ttest_1samp(diffs, 0).confidence_interval(0.95)
    assert out["difference"] == pytest.approx(diffs.mean())
    assert out["difference_ci95"] == pytest.approx(list(mean_interval(diffs)))
    # never narrower than the t-interval on the same differences
    assert out["difference_ci95"][0] <= ci.low + 1e-12 and out["difference_ci95"][1] >= ci.high - 1e-12
    assert out["improvement"] == pytest.approx(diffs.mean() / pt.reshape(40, 2).mean(axis=1).mean())


def test_recoding_the_scale_keeps_the_difference_but_not_the_improvement():
    codes = np.arange(6)
    pt = np.array([2, 3, 2, 1, 3, 2])
    ft = np.array([3, 4, 4, 2, 3, 4])
    one_to_five = relevance(codes, pt, ft, 6)
    zero_to_four = relevance(codes, pt - 1, ft - 1, 6)
    assert one_to_five["difference"] == pytest.approx(zero_to_four["difference"])
    assert one_to_five["difference_ci95"] == pytest.approx(zero_to_four["difference_ci95"])
    assert zero_to_four["improvement"] > 1.5 * one_to_five["improvement"]


def test_relevance_with_all_equal_scores_has_zero_improvement_and_no_wilcoxon():
    codes = np.array([0, 1, 2])
    scores = np.array([3, 3, 3])
    out = relevance(codes, scores, scores, 3)
    assert out["improvement"] == 0
    assert out["wilcoxon_p"] is None
    assert "zero" in out["wilcoxon_p_reason"]


def test_relevance_of_nothing_is_null_with_reasons():
    empty = np.array([], dtype=np.int64)
    out = relevance(empty, empty, empty, 0)
    for key in ("pretrained_mean", "finetuned_mean", "improvement", "ci95", "wilcoxon_p"):
        assert out[key] is None
        assert out[f"{key}_reason"]
    assert out["n_prompts"] == 0


def test_relevance_of_one_prompt_has_no_ci_and_no_test():
    out = relevance(np.array([0]), np.array([2]), np.array([4]), 1)
    assert out["improvement"] == 1.0
    assert out["ci95"] is None and "2 prompts" in out["ci95_reason"]
    assert out["wilcoxon_p"] is None and out["wilcoxon_p_reason"]


def test_win_rate_counts_higher_lower_and_equal():
    out = win_rate(np.array([1, 2, 3, 4]), np.array([2, 2, 1, 5]))
    assert (out["finetuned"], out["pretrained"], out["tie"], out["n"]) == (0.5, 0.25, 0.25, 4)


def test_position_bias_against_binomtest():
    left = np.array([5, 4, 3, 3, 1, 5, 4])
    right = np.array([1, 2, 3, 4, 2, 3, 1])
    out = position_bias(left, right)
    assert out["n"] == 6 and out["left_wins"] == 4
    assert out["left_win_rate"] == pytest.approx(4 / 6)
    assert out["p"] == pytest.approx(stats.binomtest(4, 6, 0.5).pvalue)


def test_position_bias_with_only_ties_is_null():
    out = position_bias(np.array([3, 2]), np.array([3, 2]))
    assert out["left_win_rate"] is None and out["p"] is None and out["p_reason"]


@pytest.mark.parametrize("k,n", [(0, 5), (3, 10), (10, 10), (42, 97)])
def test_wilson_interval_matches_the_closed_formula(k, n):
    z = 1.959963984540054
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(max(0, centre - half))
    assert hi == pytest.approx(min(1, centre + half))


def test_majority_verdict_leaves_out_splits_and_empty_verdicts():
    units = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    verdicts = np.array([1, 1, 0, 1, 0, -1, -1, 0], dtype=np.int8)
    assert majority_verdicts(units, verdicts, 5).tolist() == [1, -1, -1, 0, -1]


def test_mcnemar_is_a_binomial_test_on_discordant_prompts():
    pt = np.array([1, 0, 0, 0, 1, 0, 0, 1])
    ft = np.array([1, 1, 1, 1, 0, 1, 0, 1])
    out = mcnemar_exact(pt, ft)
    assert (out["only_finetuned"], out["only_pretrained"]) == (4, 1)
    assert out["p"] == pytest.approx(stats.binomtest(4, 5, 0.5).pvalue)


def test_mcnemar_without_discordant_pairs_is_null_with_reason():
    out = mcnemar_exact(np.array([1, 0]), np.array([1, 0]))
    assert out["p"] is None and "discordant" in out["reason"]


@pytest.mark.parametrize(
    "task,answer,label,expected",
    [
        ("sentiment", "Negative. It broke.", "negative", True),
        ("sentiment", "It is neutral or positive", "positive", False),  # the first word counts
        ("sentiment", "NEGATIVE!", "negative", True),
        ("sentiment", "Verdict: (negative)", "negative", True),
        ("sentiment", "negatively", "negative", False),
        ("recommendation", "No. It leaks; not yes.", "no", True),
        ("recommendation", "I know nothing", "yes", False),
        ("recommendation", "Yes!", "yes", True),
        ("features", "Great battery life and price", "Battery life", True),
        ("features", "Great screen", "battery life", False),
        ("my-custom-task", "The answer is 42", "42", True),
    ],
)
def test_task_matchers(task, answer, label, expected):
    assert answer_matches(task, answer, label) is expected


def test_automated_accuracy_over_labelled_prompts():
    out = automated_accuracy("recommendation", [("no", "Yes", "No"), ("yes", "no", "yes sir")])
    assert (out["pretrained"], out["finetuned"], out["n"]) == (0.0, 1.0, 2)
    assert automated_accuracy("sentiment", [])["reason"]


def _alpha_inputs(matrix: np.ndarray):
    raters, units = np.nonzero(~np.isnan(matrix))
    return units, matrix[raters, units]


def test_interval_alpha_matches_krippendorff_on_the_reliability_matrix():
    matrix = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5],
            [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5],
        ]
    )
    units, values = _alpha_inputs(matrix)
    out = krippendorff_alpha(units, values.astype(int) - 1, 10, 5, "interval")
    assert out["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    )
    assert out["n_units"] == 10


def test_nominal_alpha_matches_krippendorff():
    matrix = np.array([[1, 0, 1, 1, np.nan, 0], [1, 0, 0, 1, 1, 0], [np.nan, 0, 1, 1, 1, np.nan]])
    units, values = _alpha_inputs(matrix)
    out = krippendorff_alpha(units, values.astype(int), 6, 2, "nominal")
    assert out["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    )


def test_alpha_with_a_single_rater_per_unit_is_null_with_reason():
    out = krippendorff_alpha(np.array([0, 1, 2]), np.array([1, 2, 3]), 3, 5, "interval")
    assert out["alpha"] is None and "fewer than 2 raters" in out["reason"]
    assert out["n_units"] == 0


def test_alpha_with_identical_values_is_null_with_reason():
    out = krippendorff_alpha(np.array([0, 0, 1, 1]), np.array([2, 2, 2, 2]), 2, 5, "interval")
    assert out["alpha"] is None and "variation" in out["reason"]


def test_latency_percentiles_and_throughput():
    lat = np.array([100.0, 200.0, 300.0, np.nan])
    tokens = np.array([10.0, np.nan, 30.0, 5.0])
    out = latency(lat, tokens)
    assert out["n"] == 3
    assert out["p50_ms"] == pytest.approx(200.0)
    assert out["p95_ms"] == pytest.approx(np.percentile([100, 200, 300], 95))
    assert out["tokens_per_s"] == pytest.approx(40 / 0.4)


def test_cost_per_request():
    out = cost(np.array([1000.0, 3000.0]), 3.6)
    assert out["gpu_seconds"] == 4.0
    assert out["per_request_usd"] == pytest.approx(2.0 * 3.6 / 3600)


def _even(n):
    return campaign_coverage(["sentiment"] * n, np.ones(n, dtype=np.int64), {"sentiment": "Is it right?"})


def _rel(**figures):
    base = {
        "difference": 0.5,
        "difference_ci95": [0.2, 0.8],
        "permutation_p": 0.001,
        "improvement": 0.2,
        "ci95": [0.08, 0.32],
        "n_prompts": 50,
    }
    return {**base, **figures}


def test_relevance_claim_is_refused_when_the_ci_includes_zero():
    claim = relevance_claim(
        _rel(difference_ci95=[-0.1, 0.6], permutation_p=0.2), _even(50), "1 rating each", 2
    )
    assert claim["refused"] and "includes 0" in claim["reason"] and "p = 0.2" in claim["reason"]


def test_relevance_claim_is_refused_for_too_few_prompts():
    claim = relevance_claim(_rel(n_prompts=4), _even(4), "1 rating each", 1)
    assert claim["refused"] and "only 4 prompts" in claim["reason"]


def test_relevance_claim_reads_with_difference_ci_test_coverage_and_raters():
    claim = relevance_claim(_rel(difference=0.85, difference_ci95=[0.6, 1.1]), _even(50), "1 rating each", 2)
    assert not claim["refused"]
    assert claim["text"] == (
        "Fine-tuned answers scored 0.85 points higher than pre-trained answers on the raters' 1–5 quality "
        "score (1 = poor … 5 = excellent) for the question “Is it right?” (95% CI +0.60 to +1.10 points, "
        "paired permutation p = 0.001; 50 prompts: 50 of 50 prompts rated (100%): sentiment 50 of 50 "
        "(every task covered); 1 rating each; scored by this campaign's 2 annotators). Relative to the "
        "pre-trained mean that is "
        "+20% (95% CI +8% to +32%), a scale-dependent figure: the same ratings coded 0–4 would give "
        "another percentage."
    )


# --------------------------------------------------------------------------------------------
# Per-annotator agreement, side preference, length bias, identity leaks
# --------------------------------------------------------------------------------------------


def _others_loop(units, raters, scores, rater):
    """Plain loop: (own score, mean of the other raters) on every unit the rater shares."""
    own, others = [], []
    for u in sorted(set(units)):
        mine = [s for uu, r, s in zip(units, raters, scores) if uu == u and r == rater]
        rest = [s for uu, r, s in zip(units, raters, scores) if uu == u and r != rater]
        if mine and rest:
            own.append(np.mean(mine))
            others.append(np.mean(rest))
    return np.array(own), np.array(others)


def test_agreement_with_others_matches_a_plain_loop():
    rng = np.random.default_rng(7)
    units = rng.integers(0, 12, size=60)
    raters = rng.integers(0, 4, size=60)
    scores = rng.integers(1, 6, size=60)
    # one unit-rater combination never repeats in the app, but the function must still average repeats
    out = agreement_with_others(units, raters, scores, 4)
    for rater in range(4):
        own, others = _others_loop(units.tolist(), raters.tolist(), scores.tolist(), rater)
        entry = out[rater]
        assert entry["n_units"] == len(own)
        assert entry["mean_abs_diff"] == pytest.approx(np.mean(np.abs(own - others)))
        assert entry["pearson"] == pytest.approx(stats.pearsonr(own, others).statistic)
        assert entry["spearman"] == pytest.approx(stats.spearmanr(own, others).statistic)
        assert entry["spearman_p"] == pytest.approx(stats.spearmanr(own, others).pvalue)


def test_agreement_with_others_without_overlap_is_null_with_reason():
    # rater 0 alone on units 0-1; raters 1 and 2 share unit 2 only (too few for a correlation)
    out = agreement_with_others(np.array([0, 1, 2, 2]), np.array([0, 0, 1, 2]), np.array([1, 2, 3, 5]), 3)
    assert out[0]["n_units"] == 0 and out[0]["mean_abs_diff"] is None
    assert "no overlap" in out[0]["mean_abs_diff_reason"] and "no overlap" in out[0]["spearman_reason"]
    assert out[1]["n_units"] == 1 and out[1]["mean_abs_diff"] == 2.0
    assert out[1]["spearman"] is None and "at least 3" in out[1]["spearman_reason"]


def test_agreement_with_others_with_a_constant_rater_has_no_correlation():
    units = np.array([0, 1, 2, 0, 1, 2])
    raters = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([3, 3, 3, 1, 4, 5])
    out = agreement_with_others(units, raters, scores, 2)
    assert out[0]["mean_abs_diff"] == pytest.approx(np.mean([2, 1, 2]))
    assert out[0]["pearson"] is None and "constant" in out[0]["pearson_reason"]


def test_side_preference_against_binomtest():
    out = side_preference(["left", "left", "right", "tie", "both_bad", "left"])
    assert (out["left"], out["n"]) == (3, 4)
    assert out["left_share"] == 0.75
    assert out["p"] == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue)
    none = side_preference(["tie", "both_bad"])
    assert none["left_share"] is None and none["p"] is None and none["left_share_reason"]


def test_length_bias_against_spearmanr_and_binomtest():
    rng = np.random.default_rng(3)
    n = 80
    pt_chars = rng.integers(10, 400, size=n)
    ft_chars = rng.integers(10, 400, size=n)
    ft_chars[:5] = pt_chars[:5]  # equal lengths: no longer answer
    pt = rng.integers(1, 6, size=n)
    ft = rng.integers(1, 6, size=n)
    out = length_bias(pt, ft, pt_chars, ft_chars)
    overall = stats.spearmanr(np.r_[pt, ft], np.r_[pt_chars, ft_chars])
    assert out["overall"]["spearman"] == pytest.approx(overall.statistic)
    assert out["overall"]["p"] == pytest.approx(overall.pvalue)
    assert out["overall"]["n"] == 2 * n
    assert out["finetuned"]["spearman"] == pytest.approx(stats.spearmanr(ft, ft_chars).statistic)
    assert out["pretrained"]["p"] == pytest.approx(stats.spearmanr(pt, pt_chars).pvalue)
    wins = total = 0
    for a, b, la, lb in zip(pt, ft, pt_chars, ft_chars):
        if a == b or la == lb:
            continue
        total += 1
        wins += (a > b) == (la > lb)
    assert out["longer_wins"]["n"] == total and out["longer_wins"]["longer_wins"] == wins
    assert out["longer_wins"]["share"] == pytest.approx(wins / total)
    assert out["longer_wins"]["p"] == pytest.approx(stats.binomtest(wins, total, 0.5).pvalue)
    # bins: every row counted once per role, means match a loop over the same edges
    edges = out["bins"]["edges"]
    assert sum(b["n"] for b in out["bins"]["finetuned"]) == n
    first = [s for s, c in zip(ft, ft_chars) if edges[0] <= c < edges[1]]
    assert out["bins"]["finetuned"][0]["mean_score"] == pytest.approx(np.mean(first))


def test_length_bias_with_equal_scores_or_no_rows_is_null_with_reasons():
    flat = length_bias(np.full(5, 3), np.full(5, 3), np.arange(5), np.arange(5) + 10)
    assert flat["overall"]["spearman"] is None and "same" in flat["overall"]["spearman_reason"]
    assert flat["longer_wins"]["share"] is None and flat["longer_wins"]["share_reason"]
    empty = length_bias(*(np.zeros(0, np.int64) for _ in range(4)))
    assert empty["overall"]["n"] == 0 and empty["overall"]["spearman_reason"]
    assert empty["bins"]["edges"] == []


@pytest.mark.parametrize(
    "text,phrase",
    [
        ("As an AI developed by OpenAI, I cannot say.", "As an AI"),
        ("I am a large language model.", "large language model"),
        ("I'm ChatGPT, happy to help", "ChatGPT"),
        ("This is SmolLM2 speaking", "SmolLM2"),
        ("Made with the Hugging Face transformers library", "Hugging Face"),
        ("TinyLlama says yes", "TinyLlama"),
        ("I was trained by a team", "trained by"),
        ("My fine-tuned weights", "fine-tuned"),
        ("Claude from Anthropic", "Claude"),
        ("Search it on google.", "google"),
    ],
)
def test_identity_patterns_flag_model_and_vendor_names(text, phrase):
    out = identity_leaks([("p1", "finetuned", text)])
    assert out["n_flagged"] == 1 and out["flagged"][0]["phrase"] == phrase


@pytest.mark.parametrize(
    "text",
    [
        "Positive. The battery lasts.",
        "No, it leaks.",
        "The llamas of Peru",
        "She was trained well",
        "AI-free text",
    ],
)
def test_identity_patterns_leave_ordinary_answers_alone(text):
    assert identity_leaks([("p1", "pretrained", text)])["n_flagged"] == 0


def test_identity_leaks_count_per_role_and_list_prompt_role_phrase():
    out = identity_leaks(
        [
            ("b", "finetuned", "As an AI language model I think yes"),
            ("a", "pretrained", "OpenAI made me"),
            ("a", "finetuned", "positive"),
            ("c", "pretrained", ""),
        ]
    )
    assert out["count"] == {"pretrained": 1, "finetuned": 1}
    assert out["n_checked"] == {"pretrained": 2, "finetuned": 2}
    assert [(f["prompt"], f["role"], f["phrase"]) for f in out["flagged"]] == [
        ("a", "pretrained", "OpenAI"),
        ("b", "finetuned", "As an AI language model"),
    ]
    assert {p["name"] for p in out["patterns"]} >= {"openai", "as_an_ai", "llama"}


def test_identity_literal_prefilter_never_hides_a_regex_match():
    # every phrase the regexes can match, in odd cases and spacings, inside filler text
    fragments = [
        "As An AI",
        "as a artificial intelligence assistant",
        "LANGUAGE MODELS",
        "llms",
        "ai Chatbot",
        "Built By",
        "finetuning",
        "Fine Tuned",
        "open ai",
        "Chat GPT",
        "gpt-4.5",
        "GPT3",
        "smollm2",
        "HuggingFace",
        "TINYLLAMA",
        "claude",
        "DeepMind",
        "bard",
        "QWEN",
        "meta ai",
        "Mistral",
        "ai",
        "said",
        "tuned",
        "model",
        "face",
        "gp",
        "open",
    ]
    rng = np.random.default_rng(11)
    for _ in range(400):
        words = rng.choice(fragments, size=3).tolist()
        text = " ".join(["Well,", words[0], "and", words[1], words[2] + "."])
        assert (IDENTITY_REGEX.search(text) is None) == (find_identity_leak(text) is None), text
