"""Plain-language claims: a sentence a team could quote, or a refusal with the reason.

The headline claims (relevance, win rate, accuracy) are made only when the sample is large enough and,
where a test applies, significant; one refused for significance keeps the sentence it would have read
(`would_read`). Cautions (position and length bias, identity leaks) and the reliability and training
statements appear only when there is something to say.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# the smallest sample a plain-language claim is made from; below this the claim is refused
MIN_PROMPTS_FOR_CLAIM = 10
MODE_NAMES = {"lora": "LoRA", "full": "Full"}


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def ratings_each(counts: np.ndarray) -> str:
    counts = counts[counts > 0]
    if len(counts) == 0:
        return "no ratings"
    if counts.min() == counts.max():
        k = int(counts[0])
        return f"{k} rating{'s' if k != 1 else ''} each"
    return f"{counts.mean():.1f} ratings each on average"


def relevance_claim(rel: dict[str, Any], ratings_per_prompt: str) -> dict[str, Any]:
    n = rel["n_prompts"]
    claim: dict[str, Any] = {"metric": "relevance.improvement", "text": None, "refused": True, "reason": None}
    if rel["improvement"] is None:
        claim["reason"] = rel.get("improvement_reason", "improvement could not be computed")
        return claim
    if n < MIN_PROMPTS_FOR_CLAIM:
        claim["reason"] = f"only {n} prompts rated; at least {MIN_PROMPTS_FOR_CLAIM} are needed for a claim"
        return claim
    if rel["ci95"] is None:
        claim["reason"] = rel.get("ci95_reason", "no confidence interval")
        return claim
    lo, hi = rel["ci95"]
    imp = rel["improvement"]
    direction = "more" if imp >= 0 else "less"
    text = (
        f"Fine-tuned answers were rated {_pct(abs(imp))} {direction} relevant than pre-trained answers "
        f"(95% CI {lo * 100:.0f}–{hi * 100:.0f}%, {n} prompts, {ratings_per_prompt})."
    )
    if lo <= 0 <= hi:
        claim["reason"] = f"the 95% CI ({lo * 100:.0f}% to {hi * 100:.0f}%) includes 0: no detectable change"
        claim["would_read"] = text
        return claim
    claim.update(text=text, refused=False)
    return claim


def win_rate_claim(win: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = {"metric": "win_rate", "text": None, "refused": True, "reason": None}
    if win["n"] < MIN_PROMPTS_FOR_CLAIM:
        claim["reason"] = f"only {win['n']} ratings; at least {MIN_PROMPTS_FOR_CLAIM} are needed for a claim"
        return claim
    claim.update(
        refused=False,
        text=(
            f"In {win['n']} ratings the fine-tuned answer scored higher {_pct(win['finetuned'])} of the "
            f"time, lower {_pct(win['pretrained'])}, equal {_pct(win['tie'])}."
        ),
    )
    return claim


def accuracy_claim(task: str, block: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = {"metric": f"accuracy.{task}", "text": None, "refused": True, "reason": None}
    pt, ft = block["pretrained"], block["finetuned"]
    if pt["accuracy"] is None or ft["accuracy"] is None:
        claim["reason"] = "no majority verdicts for one of the roles"
        return claim
    n = min(pt["n"], ft["n"])
    if n < MIN_PROMPTS_FOR_CLAIM:
        claim["reason"] = f"only {n} judged answers; at least {MIN_PROMPTS_FOR_CLAIM} are needed for a claim"
        return claim
    p = block.get("mcnemar_p")
    p_text = (
        f"exact McNemar p = {p:.3g}" if p is not None else block.get("mcnemar_p_reason", "no McNemar test")
    )
    text = (
        f"On {task}, human-judged accuracy was {_pct(ft['accuracy'])} for fine-tuned answers "
        f"(95% CI {_pct(ft['ci95'][0])}–{_pct(ft['ci95'][1])}, n={ft['n']}) vs {_pct(pt['accuracy'])} "
        f"for pre-trained (95% CI {_pct(pt['ci95'][0])}–{_pct(pt['ci95'][1])}, n={pt['n']}); {p_text}."
    )
    if p is None or p >= 0.05:
        claim["reason"] = "the difference is not significant at 5% (exact McNemar test)"
        claim["would_read"] = text
        return claim
    claim.update(refused=False, text=text)
    return claim


def _stated(metric: str, text: str) -> dict[str, Any]:
    return {"metric": metric, "text": text, "refused": False, "reason": None}


def _position_bias_claim(bias: dict[str, Any]) -> dict[str, Any] | None:
    if bias["p"] is None or bias["p"] >= 0.05:
        return None
    return _stated(
        "position_bias",
        f"Caution: raters favoured the left answer in {bias['left_win_rate'] * 100:.0f}% of {bias['n']} "
        f"non-tied ratings (exact binomial p = {bias['p']:.3g}); the random left/right order keeps the "
        "comparison fair, but individual scores carry this bias.",
    )


def _length_bias_claim(bias: dict[str, Any]) -> dict[str, Any] | None:
    longer = bias["longer_wins"]
    if longer["p"] is None or longer["p"] >= 0.05:
        return None
    side = "longer" if longer["share"] > 0.5 else "shorter"
    share = longer["share"] if side == "longer" else 1 - longer["share"]
    return _stated(
        "length_bias",
        f"Caution: the {side} answer scored higher in {share * 100:.0f}% of {longer['n']} ratings with "
        f"unequal scores and lengths (exact binomial p = {longer['p']:.3g}); part of the score difference "
        "may be about length rather than content.",
    )


def _identity_leak_claim(leaks: dict[str, Any]) -> dict[str, Any] | None:
    if not leaks["n_flagged"]:
        return None
    counts = leaks["count"]
    return _stated(
        "identity_leaks",
        f"Caution: {counts['finetuned']} fine-tuned and {counts['pretrained']} pre-trained answer(s) name a "
        "model, a vendor or their training (see the flagged list); raters who read them may not have been "
        "blind.",
    )


def _reliability_claim(rel: dict[str, Any]) -> dict[str, Any] | None:
    if rel["load_success_rate"] is None:
        return None
    text = (
        f"Model loading succeeded in {rel['load_successes']} of {rel['load_attempts']} attempts "
        f"({rel['load_success_rate'] * 100:.0f}%); "
    )
    if rel["fallback_rate"] is None:
        text += "the fallback rate is unknown."
    else:
        text += (
            f"{rel['fallback_answers']} fine-tuned answer(s) ({rel['fallback_rate'] * 100:.1f}% of those "
            "requested) were served by the pre-trained model as fallback."
        )
    return _stated("reliability", text)


def _training_claim(training: dict[str, Any]) -> dict[str, Any] | None:
    trainable, total = training.get("trainable_params"), training.get("total_params")
    if not trainable or not total:
        return None
    mode = MODE_NAMES.get(training.get("mode") or "", "The")
    text = (
        f"{mode} fine-tuning trained {trainable:,} of {total:,} parameters ({trainable / total * 100:.2f}%)"
    )
    if training.get("epochs_run") is not None:
        text += f", ran {training['epochs_run']} epochs and kept epoch {training['best_epoch']}"
        if training.get("early_stopped"):
            text += " (early stopping)"
    return _stated("training.trainable_pct", text + ".")


def report_claims(report: dict[str, Any], ratings_per_prompt: str) -> list[dict[str, Any]]:
    """Every claim of a built report: the headline ones always (made or refused), others when they apply."""
    claims = [
        relevance_claim(report["relevance"], ratings_per_prompt),
        win_rate_claim(report["win_rate"]),
    ]
    claims += [accuracy_claim(task, block) for task, block in report["accuracy"].items()]
    optional = (
        _position_bias_claim(report["position_bias"]),
        _length_bias_claim(report["length_bias"]),
        _identity_leak_claim(report["identity_leaks"]),
        _reliability_claim(report["reliability"]),
        _training_claim(report["training"]),
    )
    return claims + [claim for claim in optional if claim is not None]
