"""Cautions and statements that accompany the claims: position and length bias (one observation per
pair, Holm-adjusted as one family, the favoured side named), identity leaks, reliability, training.
Each appears only when there is something to say."""

from __future__ import annotations

from typing import Any

ALPHA = 0.05
MODE_NAMES = {"lora": "LoRA", "full": "Full"}


def _stated(metric: str, text: str) -> dict[str, Any]:
    return {"metric": metric, "text": text, "refused": False, "reason": None}


def _p_text(block: dict[str, Any]) -> str:
    return f"exact binomial p = {block['p']:.2g}, Holm-adjusted over the bias tests p = {block['p_holm']:.2g}"


def _significant(block: dict[str, Any] | None) -> bool:
    return block is not None and block.get("p_holm") is not None and block["p_holm"] < ALPHA


def position_bias_claim(bias: dict[str, Any]) -> dict[str, Any] | None:
    per_pair = bias.get("per_pair")
    if not _significant(per_pair) or per_pair["favoured"] is None:
        return None
    side = per_pair["favoured"]
    share = per_pair["left_win_rate"] if side == "left" else 1 - per_pair["left_win_rate"]
    return _stated(
        "position_bias",
        f"Caution: raters favoured the {side} answer: it won {share * 100:.0f}% of the {per_pair['n']} "
        f"pairs whose mean scores differ (one observation per pair; {_p_text(per_pair)}). Sides were "
        "drawn at random, so the comparison of the models stays fair, but individual scores carry this "
        "bias.",
    )


def length_bias_claim(bias: dict[str, Any]) -> dict[str, Any] | None:
    per_pair = bias.get("per_pair")
    if not _significant(per_pair) or per_pair["favoured"] is None:
        return None
    side = per_pair["favoured"]
    share = per_pair["share"] if side == "longer" else 1 - per_pair["share"]
    return _stated(
        "length_bias",
        f"Caution: the {side} answer had the higher mean score in {share * 100:.0f}% of the "
        f"{per_pair['n']} pairs of unequal length whose mean scores differ (one observation per pair; "
        f"{_p_text(per_pair)}); part of the score difference may be about length rather than content.",
    )


def identity_leak_claim(leaks: dict[str, Any]) -> dict[str, Any] | None:
    if not leaks["n_flagged"]:
        return None
    counts = leaks["count"]
    return _stated(
        "identity_leaks",
        f"Caution: {counts['finetuned']} fine-tuned and {counts['pretrained']} pre-trained answer(s) name a "
        "model, a vendor or their training (see the flagged list); raters who read them may not have been "
        "blind.",
    )


def reliability_claim(rel: dict[str, Any]) -> dict[str, Any] | None:
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


def training_claim(training: dict[str, Any]) -> dict[str, Any] | None:
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


def caution_claims(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The cautions and statements that apply to a built report, in a fixed order."""
    optional = (
        position_bias_claim(report["position_bias"]),
        length_bias_claim(report["length_bias"]),
        identity_leak_claim(report["identity_leaks"]),
        reliability_claim(report["reliability"]),
        training_claim(report["training"]),
    )
    return [claim for claim in optional if claim is not None]
