"""The report as a readable summary for a terminal (`report --format text`): every figure with its n,
CI and, where a figure is missing, the reason. One function per section, in the order printed."""

from __future__ import annotations

from typing import Any

from reports.statistics.common import ROLES

# identity leaks listed by name; the rest are counted and left to the JSON report
LISTED_LEAKS = 20


def report_as_text(report: dict[str, Any]) -> str:
    """The report as a readable summary for a terminal: figures with n, CI and reasons."""
    lines = [
        *_header(report),
        "",
        *_relevance(report["relevance"]),
        "",
        _win_rate(report["win_rate"]),
        "",
        *_accuracy(report["accuracy"]),
        "",
        _agreement(report["agreement"]),
        _position_bias(report["position_bias"]),
        _reliability(report["reliability"]),
        *_latency_and_cost(report["latency"], report["cost"]),
        _training(report["training"]),
        *_length_bias(report["length_bias"]),
        *_identity_leaks(report["identity_leaks"]),
        *_annotators(report["per_annotator"]),
        "",
        *_claims(report["claims"]),
    ]
    return "\n".join(lines) + "\n"


def _num(value: Any, fmt: str = "{:.3f}", reason: str | None = None) -> str:
    if value is None:
        return f"n/a ({reason})" if reason else "n/a"
    return fmt.format(value)


def _ci(ci: list[float] | None, pct: bool = True) -> str:
    if not ci:
        return "CI n/a"
    return f"95% CI {ci[0] * 100:.1f}–{ci[1] * 100:.1f}%" if pct else f"95% CI {ci[0]:.3f}–{ci[1]:.3f}"


def _header(report: dict[str, Any]) -> list[str]:
    return [
        (
            f"Campaign {report['campaign']} ({report['campaign_name']}): {report['n_prompts']} prompts, "
            f"{report['n_ratings']} ratings, {report['n_annotators']} annotators, "
            f"{report['ratings_per_prompt']}"
        )
    ]


def _relevance(rel: dict[str, Any]) -> list[str]:
    ci = _ci(rel["ci95"]) if rel["ci95"] else "CI n/a: " + str(rel.get("ci95_reason"))
    return [
        "Relevance",
        f"  pre-trained mean  {_num(rel['pretrained_mean'], reason=rel.get('pretrained_mean_reason'))}",
        f"  fine-tuned mean   {_num(rel['finetuned_mean'], reason=rel.get('finetuned_mean_reason'))}",
        (
            f"  improvement       {_num(rel['improvement'], '{:+.1%}', rel.get('improvement_reason'))}  "
            f"({ci}, n={rel['n_prompts']} prompts)"
        ),
        f"  Wilcoxon p        {_num(rel['wilcoxon_p'], '{:.3g}', rel.get('wilcoxon_p_reason'))}",
    ]


def _win_rate(win: dict[str, Any]) -> str:
    return (
        f"Win rate (n={win['n']} ratings): fine-tuned {_num(win['finetuned'], '{:.1%}')}, "
        f"pre-trained {_num(win['pretrained'], '{:.1%}')}, tie {_num(win['tie'], '{:.1%}')}"
    )


def _accuracy(accuracy: dict[str, Any]) -> list[str]:
    lines = ["Accuracy (human majority verdicts; automated label match)"]
    if not accuracy:
        lines.append("  no tasks")
    for task, block in accuracy.items():
        for role in ROLES:
            r = block[role]
            lines.append(
                f"  {task:<16} {role:<11} {_num(r['accuracy'], '{:.1%}', r.get('reason'))}  "
                f"({_ci(r['ci95'])}, n={r['n']})"
            )
        auto = block["automated"]
        lines.append(
            f"  {task:<16} McNemar p {_num(block['mcnemar_p'], '{:.3g}', block.get('mcnemar_p_reason'))}; "
            f"automated pre-trained {_num(auto['pretrained'], '{:.1%}')}, "
            f"fine-tuned {_num(auto['finetuned'], '{:.1%}', auto.get('reason'))} (n={auto['n']})"
        )
    return lines


def _agreement(agr: dict[str, Any]) -> str:
    return (
        f"Agreement (Krippendorff's alpha, n={agr['n_units']} units): scores "
        f"{_num(agr['score_alpha'], reason=agr.get('score_alpha_reason'))}, correctness "
        f"{_num(agr['correct_alpha'], reason=agr.get('correct_alpha_reason'))}"
    )


def _position_bias(bias: dict[str, Any]) -> str:
    return (
        f"Position bias (n={bias['n']} non-tied): left wins "
        f"{_num(bias['left_win_rate'], '{:.1%}', bias.get('left_win_rate_reason'))}, "
        f"p {_num(bias['p'], '{:.3g}', bias.get('p_reason'))}"
    )


def _reliability(reli: dict[str, Any]) -> str:
    generation = _num(reli["generation_success_rate"], "{:.1%}", reli.get("generation_success_rate_reason"))
    return (
        f"Reliability: loads {reli['load_successes']}/{reli['load_attempts']} "
        f"({_num(reli['load_success_rate'], '{:.1%}', reli.get('load_success_rate_reason'))}), fallback "
        f"{_num(reli['fallback_rate'], '{:.1%}', reli.get('fallback_rate_reason'))}, generation "
        f"{reli['answers_made']}/{reli['answers_requested']} ({generation})"
    )


def _latency_and_cost(latency: dict[str, Any], cost: dict[str, Any]) -> list[str]:
    lines = []
    for role in ROLES:
        lat = latency[role]
        lines.append(
            f"Latency {role:<11} p50 {_num(lat['p50_ms'], '{:.0f} ms', lat.get('reason'))}, "
            f"p95 {_num(lat['p95_ms'], '{:.0f} ms')}, {_num(lat['tokens_per_s'], '{:.1f} tok/s')} "
            f"(n={lat['n']})"
        )
    lines.append(
        f"Cost: {_num(cost['gpu_seconds'], '{:.1f} GPU s', cost.get('gpu_seconds_reason'))}, "
        f"{_num(cost['per_request_usd'], '${:.6f}')} per request at ${cost['gpu_hour_price_usd']}/GPU hour"
    )
    return lines


def _training(training: dict[str, Any]) -> str:
    if not training["n_runs"]:
        return f"Training: n/a ({training.get('reason')})"
    return (
        f"Training (run {training['run']}, {training['mode']}): trainable {training.get('trainable_params')} "
        f"of {training.get('total_params')} ({training.get('trainable_pct')}%), "
        f"epochs {training.get('epochs_run')}, best {training.get('best_epoch')}, "
        f"early stopped {training.get('early_stopped')}, peak memory "
        f"{training.get('peak_memory_bytes')} B, {training.get('wall_seconds')} s"
    )


def _length_bias(lb: dict[str, Any]) -> list[str]:
    lines = ["Length bias (Spearman of score and answer characters, rating × answer rows):"]
    for key in ("overall", *ROLES):
        b = lb[key]
        lines.append(
            f"  {key:<11} rho {_num(b['spearman'], '{:+.3f}', b.get('spearman_reason'))}, "
            f"p {_num(b['p'], '{:.3g}')} (n={b['n']})"
        )
    lw = lb["longer_wins"]
    lines.append(
        f"  longer answer scored higher {_num(lw['share'], '{:.1%}', lw.get('share_reason'))}, "
        f"p {_num(lw['p'], '{:.3g}')} (n={lw['n']} ratings with unequal scores and lengths)"
    )
    return lines


def _identity_leaks(leaks: dict[str, Any]) -> list[str]:
    counts = leaks["count"]
    lines = [
        (
            f"Identity leaks: {leaks['n_flagged']} answer(s) flagged (pre-trained {counts['pretrained']}, "
            f"fine-tuned {counts['finetuned']})"
        )
    ]
    for leak in leaks["flagged"][:LISTED_LEAKS]:
        lines.append(f"  {leak['prompt']} {leak['role']}: \"{leak['phrase']}\"")
    if leaks["n_flagged"] > LISTED_LEAKS:
        lines.append(f"  ... {leaks['n_flagged'] - LISTED_LEAKS} more in the JSON report")
    return lines


def _annotators(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["Annotators (agreement = vs mean of the others on the same units; left = side preference):"]
    for a in rows:
        agr, side = a["agreement_with_others"], a["side_preference"]
        gold = (
            f"gold {a['gold_accuracy']:.0%} (n={a['gold_n']})"
            if a["gold_accuracy"] is not None
            else f"gold n/a ({a['gold_accuracy_reason']})"
        )
        lines.append(
            f"  {a['annotator']} {a['ratings']} ratings, mean {a['mean_score']:.2f}, "
            f"|diff| {_num(agr['mean_abs_diff'], '{:.2f}', agr.get('mean_abs_diff_reason'))}, "
            f"rho {_num(agr['spearman'], '{:+.2f}', agr.get('spearman_reason'))} (n={agr['n_units']}), "
            f"left {_num(side['left_share'], '{:.0%}', side.get('left_share_reason'))} (n={side['n']}), "
            + gold
        )
    return lines


def _claims(claims: list[dict[str, Any]]) -> list[str]:
    lines = ["Claims"]
    for claim in claims:
        if claim["refused"]:
            lines.append(f"  - refused ({claim['metric']}): {claim['reason']}")
        else:
            lines.append(f"  - {claim['text']}")
    return lines
