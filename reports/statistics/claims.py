"""Plain-language claims: a sentence a team could quote, or a refusal that says why.

One decision rule per claim, on one set of prompts: the interval the claim shows and the test it cites
come from the same prompts and must agree; when they do not, the claim is refused with both numbers.
Headline claims (score difference, win rate, accuracy per task) are always listed, made or refused;
one refused after its figures were computed keeps the sentence it would have read (`would_read`).
Overall claims name their coverage and are refused while coverage is too uneven to stand for the
campaign. Cautions and statements (bias, identity leaks, reliability, training) are in `cautions`.
"""

from __future__ import annotations

from typing import Any

from reports.statistics.cautions import caution_claims
from reports.statistics.common import SCORE_SCALE, SMALL_SAMPLE

ALPHA = 0.05
# The fewest prompts an overall claim (score difference, win rate) is made from. bench/coverage.py
# shows that from here up, in every simulated process, the 95% interval missed the truth and a null
# campaign produced a claim at most 6% of the time; below it (at 10-20 prompts, a campaign whose
# fine-tuning breaks 15% of answers often has no broken one among its rated prompts, and its interval
# missed up to 7%) the figures are shown, flagged small, and the claim refused. Equal to SMALL_SAMPLE.
MIN_PROMPTS_FOR_CLAIM = SMALL_SAMPLE
# accuracy claims rest on exact tests (McNemar, Clopper-Pearson), valid at any n; this keeps a claim
# from resting on a handful of verdicts
MIN_PROMPTS_FOR_ACCURACY_CLAIM = 10


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _p(p: float) -> str:
    return f"{p:.2g}"


def _refused(metric: str, reason: str, would_read: str | None = None) -> dict[str, Any]:
    claim: dict[str, Any] = {"metric": metric, "text": None, "refused": True, "reason": reason}
    if would_read:
        claim["would_read"] = would_read
    return claim


def _reasons(*reasons: str | None) -> str:
    """The reasons that apply, the first in full and the rest after "also" ("" when none apply)."""
    present = [r for r in reasons if r]
    if not present:
        return ""
    return present[0] + "".join(f"; also, {r}" for r in present[1:])


def _uneven(coverage: dict[str, Any]) -> str | None:
    if coverage["even"] is False:
        return f"coverage is too uneven to stand for the campaign: {coverage['even_reason']}"
    return None


def _made(metric: str, text: str) -> dict[str, Any]:
    return {"metric": metric, "text": text, "refused": False, "reason": None}


def _too_few(n: int, coverage: dict[str, Any]) -> str:
    """Why a claim is refused below MIN_PROMPTS_FOR_CLAIM (naming the coverage unless an uneven-coverage
    reason, which names it, follows)."""
    scope = f" ({coverage['summary']})" if coverage["even"] is not False else ""
    return (
        f"only {n} prompts rated{scope}; an overall claim needs at least "
        f"{MIN_PROMPTS_FOR_CLAIM} (with fewer, the simulated 95% intervals missed the truth, or null "
        "campaigns produced claims, more than 6% of the time: bench/coverage.py); the figures are shown "
        "without a claim"
    )


def ratings_each(counts: Any) -> str:
    counts = counts[counts > 0]
    if len(counts) == 0:
        return "no ratings"
    if counts.min() == counts.max():
        k = int(counts[0])
        return f"{k} rating{'s' if k != 1 else ''} each"
    return f"{counts.mean():.1f} ratings each on average"


def question_phrase(coverage: dict[str, Any]) -> str:
    """The question the raters answered: quoted when the rated prompts share one, else per task."""
    questions = {t["question"] for t in coverage["by_task"].values() if t["n_rated"] and t["question"]}
    if len(questions) == 1:
        return f"for the question “{questions.pop()}”"
    return "for each task's question"


def _scope(coverage: dict[str, Any], ratings_per_prompt: str, n_annotators: int) -> str:
    every = "every task covered" if coverage["even"] else "coverage uneven"
    raters = f"scored by this campaign's {n_annotators} annotator{'s' if n_annotators != 1 else ''}"
    return f"{coverage['summary']} ({every}); {ratings_per_prompt}; {raters}"


def relevance_claim(
    rel: dict[str, Any], coverage: dict[str, Any], ratings_per_prompt: str, n_annotators: int
) -> dict[str, Any]:
    """The headline: the mean score difference on the raters' scale, its interval, and the paired
    permutation test, which must agree; the relative improvement rides along, labelled scale-dependent.
    Refused while coverage is uneven, and below MIN_PROMPTS_FOR_CLAIM prompts (every reason given)."""
    metric = "relevance.difference"
    n = rel["n_prompts"]
    if rel["difference"] is None:
        return _refused(metric, rel.get("difference_reason", "the difference could not be computed"))
    uneven = _uneven(coverage)
    if n < MIN_PROMPTS_FOR_CLAIM:
        return _refused(metric, _reasons(_too_few(n, coverage), uneven))
    if rel["difference_ci95"] is None:
        no_ci = rel.get("difference_ci95_reason", "no confidence interval")
        return _refused(metric, _reasons(no_ci, uneven))
    lo, hi = rel["difference_ci95"]
    d, p = rel["difference"], rel["permutation_p"]
    direction = "higher" if d >= 0 else "lower"
    p_text = f"paired permutation p = {_p(p)}" if p is not None else "no permutation test"
    relative = ""
    if rel["improvement"] is not None and rel["ci95"] is not None:
        r_lo, r_hi = rel["ci95"]
        relative = (
            f" Relative to the pre-trained mean that is {rel['improvement'] * 100:+.0f}% (95% CI "
            f"{r_lo * 100:+.0f}% to {r_hi * 100:+.0f}%), a scale-dependent figure: the same ratings "
            "coded 0–4 would give another percentage."
        )
    text = (
        f"Fine-tuned answers scored {abs(d):.2f} points {direction} than pre-trained answers on "
        f"{SCORE_SCALE} {question_phrase(coverage)} (95% CI {lo:+.2f} to {hi:+.2f} points, {p_text}; "
        f"{n} prompts: {_scope(coverage, ratings_per_prompt, n_annotators)}).{relative}"
    )
    interval = f"the 95% CI ({lo:+.2f} to {hi:+.2f} points)"
    reason = _reasons(uneven, _disagreement(lo > 0 or hi < 0, p, interval, p_text))
    if reason:
        return _refused(metric, reason, text)
    return _made(metric, text)


def _disagreement(excludes: bool, p: float | None, interval: str, p_text: str, null: str = "0") -> str | None:
    """Why an interval-and-test decision is not a claim, or None when both say 'different'.
    ``null``: the no-difference value the interval is checked against, in words."""
    significant = p is not None and p < ALPHA
    if excludes and significant:
        return None
    if not excludes and not significant:
        return f"no detectable difference: {interval} includes {null} and {p_text}"
    return (
        f"the interval and the test disagree: {interval} {'excludes' if excludes else 'includes'} "
        f"{null} but {p_text} is {'not ' if excludes else ''}below {ALPHA}; a claim needs both"
    )


def new_raters_claim(rel: dict[str, Any], coverage: dict[str, Any]) -> dict[str, Any]:
    """Would a new panel of raters see the difference too? Made when the interval over prompts and
    raters (`relevance.across_raters`) excludes 0 (its t-test agrees by construction); refused, saying
    why, with few prompts, uneven coverage, one annotator, or an interval that includes 0."""
    metric = "relevance.across_raters"
    block = rel.get("across_raters") or {}
    n = block.get("n_prompts", 0)
    if block.get("difference") is None:
        return _refused(metric, block.get("reason", "no prompt has ratings yet"))
    uneven = _uneven(coverage)
    if n < MIN_PROMPTS_FOR_CLAIM:
        return _refused(metric, _reasons(_too_few(n, coverage), uneven))
    if block.get("ci95") is None:
        return _refused(metric, _reasons(block.get("reason", "no interval"), uneven))
    lo, hi = block["ci95"]
    k = block["n_annotators"]
    d = block["difference"]
    p_text = f"two-way cluster t-test p = {_p(block['p'])}, {block['df']} degrees of freedom"
    text = (
        f"Counting the raters as a sample too, the difference of {d:+.2f} points has a 95% CI of "
        f"{lo:+.2f} to {hi:+.2f} points ({p_text}; {n} prompts, {k} annotators): a new panel of raters "
        f"drawn like this one would likely also see fine-tuned answers score {'higher' if d > 0 else 'lower'}."
    )
    if not (lo > 0 or hi < 0):
        return _refused(
            metric,
            _reasons(
                uneven,
                f"with {k} annotator{'s' if k != 1 else ''}, the interval that counts raters as a sample "
                f"({lo:+.2f} to {hi:+.2f} points, {p_text}) includes 0: raters differ enough that another "
                "panel might not see the difference; the headline describes this campaign's raters only",
            ),
        )
    if uneven:
        return _refused(metric, uneven, text)
    return _made(metric, text)


def win_rate_claim(win: dict[str, Any], coverage: dict[str, Any]) -> dict[str, Any]:
    """Over prompts: how often the fine-tuned answer's mean score was higher, with Wilson intervals;
    the claim is the sign test on prompts not tied, with the Clopper-Pearson interval that matches it."""
    metric = "win_rate.by_prompt"
    by = win.get("by_prompt")
    if by is None or by["n"] == 0:
        return _refused(metric, (by or win).get("reason", "no prompt has ratings yet"))
    n = by["n"]
    uneven = _uneven(coverage)
    if n < MIN_PROMPTS_FOR_CLAIM:
        return _refused(metric, _reasons(_too_few(n, coverage), uneven))
    decided = by["decided"]
    if decided["n"] == 0:
        return _refused(metric, _reasons(decided["reason"], uneven))
    lo, hi = decided["ci95"]
    p = decided["sign_test_p"]
    p_text = f"exact sign test p = {_p(p)}"
    ft_lo, ft_hi = by["ci95"]
    pt_lo, pt_hi = by["pretrained_ci95"]
    text = (
        f"Over {n} rated prompts ({coverage['summary']}), the fine-tuned answer had the higher mean score "
        f"on {_pct(by['finetuned'])} (95% CI {_pct(ft_lo)}–{_pct(ft_hi)}), the lower on "
        f"{_pct(by['pretrained'])} (95% CI {_pct(pt_lo)}–{_pct(pt_hi)}) and tied on {_pct(by['tie'])}; of "
        f"the {decided['n']} prompts not tied it won {_pct(decided['finetuned_share'])} (95% CI "
        f"{_pct(lo)}–{_pct(hi)}, {p_text})."
    )
    interval = f"the 95% CI ({_pct(lo)}–{_pct(hi)})"
    reason = _reasons(uneven, _disagreement(lo > 0.5 or hi < 0.5, p, interval, p_text, "an even split (50%)"))
    if reason:
        return _refused(metric, reason, text)
    return _made(metric, text)


def accuracy_claim(task: str, block: dict[str, Any]) -> dict[str, Any]:
    """Per task, on the prompts with a verdict for both answers: both accuracies, which model the
    discordant prompts favour, the exact McNemar test and its Holm adjustment across tasks."""
    metric = f"accuracy.{task}"
    paired, mc = block["paired"], block["mcnemar"]
    n = paired["n"]
    if n == 0:
        return _refused(metric, "no prompt has a majority verdict for both answers")
    if n < MIN_PROMPTS_FOR_ACCURACY_CLAIM:
        return _refused(
            metric,
            f"only {n} prompts have a majority verdict for both answers; at least "
            f"{MIN_PROMPTS_FOR_ACCURACY_CLAIM} are needed for a claim",
        )
    if mc["p"] is None:
        return _refused(metric, mc["reason"])
    pt, ft = paired["pretrained"], paired["finetuned"]
    favoured = mc["favours"] or "finetuned"
    wins = mc["only_finetuned"] if favoured == "finetuned" else mc["only_pretrained"]
    share = wins / mc["discordant"]
    d_lo, d_hi = mc["discordant_ci95"]
    if favoured == "pretrained":
        d_lo, d_hi = 1 - d_hi, 1 - d_lo
    name = "fine-tuned" if favoured == "finetuned" else "pre-trained"
    small = f"; small sample: under {SMALL_SAMPLE} prompts" if paired["small_sample"] else ""
    holm_p, n_tests = block["mcnemar_p_holm"], block["n_tests"]
    p_text = f"exact McNemar p = {_p(mc['p'])}, Holm-adjusted over {n_tests} task(s) p = {_p(holm_p)}"
    text = (
        f"On {task}, over the {n} prompts with a majority verdict on both answers (of {block['n_pairs']} "
        f"in the task{small}), fine-tuned answers were judged correct on {_pct(ft['accuracy'])} (95% CI "
        f"{_pct(ft['ci95'][0])}–{_pct(ft['ci95'][1])}) and pre-trained on {_pct(pt['accuracy'])} (95% CI "
        f"{_pct(pt['ci95'][0])}–{_pct(pt['ci95'][1])}); the verdicts differ on {mc['discordant']} "
        f"prompts and the {name} answer was the correct one on {wins} of them ({_pct(share)}, 95% CI "
        f"{_pct(d_lo)}–{_pct(d_hi)}): {p_text}."
    )
    interval = f"the 95% CI of the {name} share ({_pct(d_lo)}–{_pct(d_hi)})"
    reason = _disagreement(d_lo > 0.5, holm_p, interval, p_text, "an even split (50%)")
    if reason:
        return _refused(metric, reason, text)
    return _made(metric, text)


def report_claims(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every claim of a built report: the headline ones always (made or refused), others when they apply."""
    coverage = report["coverage"]
    claims = [
        relevance_claim(report["relevance"], coverage, report["ratings_per_prompt"], report["n_annotators"]),
        new_raters_claim(report["relevance"], coverage),
        win_rate_claim(report["win_rate"], coverage),
    ]
    claims += [accuracy_claim(task, block) for task, block in report["accuracy"].items()]
    return claims + caution_claims(report)
