"""The report as a readable summary for a terminal (`report --format text`): every figure with its n,
CI and, where a figure is missing, the reason. One function per section, in the order printed."""

from __future__ import annotations

from typing import Any

from reports.labels import bytes_label, count, humanize, metric_label, plural, role_label
from reports.statistics.common import ROLES
from reports.text_reading import across_raters_lines, comment_lines, disagreement_lines, systems_lines

# identity leaks listed by name; the rest are counted and left to the JSON report
LISTED_LEAKS = 20


def report_as_text(report: dict[str, Any]) -> str:
    """The report as a readable summary for a terminal: figures with n, CI and reasons."""
    lines = [
        *_header(report),
        *_coverage(report["coverage"]),
        "",
        *_relevance(report["relevance"], report["score_scale"]),
        "",
        *_win_rate(report["win_rate"]),
        "",
        *_accuracy(report["accuracy"]),
        "",
        _agreement(report["agreement"]),
        *_position_bias(report["position_bias"]),
        _reliability(report["reliability"]),
        *_latency_and_cost(report["latency"], report["cost"]),
        *_serving(report["latency"].get("serving"), report["cost"].get("per_1000_requests")),
        _training(report["training"]),
        *_length_bias(report["length_bias"]),
        *_identity_leaks(report["identity_leaks"]),
        *_annotators(report["per_annotator"]),
        *_style(report.get("style_identifiability")),
        *systems_lines(report.get("systems")),
        *disagreement_lines(report),
        *comment_lines(report.get("comments")),
        "",
        *_claims(report["claims"]),
    ]
    return "\n".join(lines) + "\n"


def _num(value: Any, fmt: str = "{:.3f}", reason: str | None = None) -> str:
    if value is None:
        return f"n/a ({reason})" if reason else "n/a"
    return fmt.format(value)


def _ci(ci: list[float] | None, signed: bool = False) -> str:
    if not ci:
        return "CI n/a"
    if signed:
        return f"95% CI {ci[0] * 100:+.1f}% to {ci[1] * 100:+.1f}%"
    return f"95% CI {ci[0] * 100:.1f}–{ci[1] * 100:.1f}%"


def _header(report: dict[str, Any]) -> list[str]:
    return [
        (
            f"Campaign {report['campaign']} ({report['campaign_name']}): "
            f"{plural(report['n_prompts'], 'prompt')}, "
            f"{plural(report['n_ratings'], 'rating')}, {plural(report['n_annotators'], 'annotator')}, "
            f"{report['ratings_per_prompt']}"
        )
    ]


def _small(block: dict[str, Any]) -> str:
    return ", small sample" if block.get("small_sample") else ""


def _points_ci(ci: list[float] | None, reason: str | None) -> str:
    return f"95% CI {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else f"no CI: {reason}"


def _coverage(cov: dict[str, Any]) -> list[str]:
    per = cov["ratings_per_prompt"]
    spread = ""
    if per["mean"] is not None:
        spread = f"; ratings per rated prompt {per['mean']:.1f} (min {per['min']}, max {per['max']})"
    even = {True: "even", False: f"uneven: {cov.get('even_reason')}", None: f"n/a ({cov.get('even_reason')})"}
    lines = [
        f"Coverage: {cov['summary']}{spread}",
        f"  task mix gap {_num(cov['task_mix_gap'], '{:.2f}')}; coverage {even[cov['even']]}",
    ]
    for task, t in cov["by_task"].items():
        per = t["ratings_per_prompt"]
        each = f", {per['mean']:.1f} ratings each" if per["mean"] is not None else ""
        lines.append(
            f"  {task:<16} {t['n_rated']} of {t['n_prompts']} rated ({t['share_rated']:.0%}){each}; "
            f"question: {t['question']}"
        )
    return lines


def _relevance(rel: dict[str, Any], scale: str) -> list[str]:
    ci = _ci(rel["ci95"], signed=True) if rel["ci95"] else "CI n/a: " + str(rel.get("ci95_reason"))
    perm = {"exact": "exact", "monte_carlo": "Monte Carlo", "normal": "normal approximation"}.get(
        rel.get("permutation_method", ""), ""
    )
    lines = [
        f"Score difference (headline; {scale})",
        f"  pre-trained mean  {_num(rel['pretrained_mean'], reason=rel.get('pretrained_mean_reason'))}",
        f"  fine-tuned mean   {_num(rel['finetuned_mean'], reason=rel.get('finetuned_mean_reason'))}",
        (
            f"  difference        {_num(rel['difference'], '{:+.3f} points', rel.get('difference_reason'))}  "
            f"({_points_ci(rel['difference_ci95'], rel.get('difference_ci95_reason'))}, "
            f"n={rel['n_prompts']} prompts{_small(rel)})"
        ),
        (
            f"  improvement       {_num(rel['improvement'], '{:+.1%}', rel.get('improvement_reason'))}  "
            f"({ci}, n={rel['n_prompts']} prompts; relative to the pre-trained mean: scale-dependent)"
        ),
        (
            f"  permutation p     {_num(rel['permutation_p'], '{:.3g}', rel.get('permutation_p_reason'))}"
            + (f" (paired sign-flip, {perm})" if rel["permutation_p"] is not None else "")
        ),
        (
            f"  Wilcoxon p        {_num(rel['wilcoxon_p'], '{:.3g}', rel.get('wilcoxon_p_reason'))} "
            "(scipy defaults, zero differences dropped; for reference)"
        ),
        f"  interval methods: {humanize(rel['ci_method'])}",
        *across_raters_lines(rel.get("across_raters")),
    ]
    for task, t in rel.get("by_task", {}).items():
        lines.append(
            f"  {task:<16} difference {_num(t['difference'], '{:+.2f}', t.get('difference_reason'))} "
            f"({_points_ci(t['difference_ci95'], t.get('difference_ci95_reason'))}, "
            f"n={t['n_prompts']}{_small(t)})"
        )
    return lines


def _win_rate(win: dict[str, Any]) -> list[str]:
    lines = [
        (
            f"Win rate over ratings (n={win['n']} ratings): fine-tuned {_num(win['finetuned'], '{:.1%}')}, "
            f"pre-trained {_num(win['pretrained'], '{:.1%}')}, tie {_num(win['tie'], '{:.1%}')}"
        )
    ]
    by = win.get("by_prompt")
    if by is None:
        return lines
    if by["n"] == 0:
        return lines + [f"Win rate over prompts: n/a ({by.get('reason')})"]
    decided = by["decided"]
    lines.append(
        f"Win rate over prompts (n={by['n']} prompts{_small(by)}): fine-tuned {by['finetuned']:.1%} "
        f"({_ci(by['ci95'])}), pre-trained {by['pretrained']:.1%} ({_ci(by['pretrained_ci95'])}), "
        f"tie {by['tie']:.1%} ({_ci(by['tie_ci95'])})"
    )
    lines.append(
        f"  not tied (n={decided['n']}): fine-tuned won "
        f"{_num(decided['finetuned_share'], '{:.1%}', decided.get('reason'))} ({_ci(decided['ci95'])}, "
        f"Clopper-Pearson), exact sign test p {_num(decided['sign_test_p'], '{:.3g}')}"
    )
    return lines


def _accuracy(accuracy: dict[str, Any]) -> list[str]:
    lines = ["Accuracy (human strict-majority verdicts; automated label match)"]
    if not accuracy:
        lines.append("  no tasks")
    for task, block in accuracy.items():
        for role in ROLES:
            r = block[role]
            lines.append(
                f"  {task:<16} {role_label(role):<11} {_num(r['accuracy'], '{:.1%}', r.get('reason'))}  "
                f"({_ci(r['ci95'])}, n={r['n']}{_small(r)})"
            )
        paired, mc = block["paired"], block["mcnemar"]
        if paired["n"]:
            lines.append(
                f"  {task:<16} paired (n={paired['n']} prompts with both verdicts{_small(paired)}): "
                f"fine-tuned {paired['finetuned']['accuracy']:.1%}, pre-trained "
                f"{paired['pretrained']['accuracy']:.1%}; discordant {mc['discordant']}: fine-tuned right "
                f"on {mc['only_finetuned']}, pre-trained right on {mc['only_pretrained']} "
                f"(favours {role_label(mc['favours'] or 'neither')})"
            )
        auto = block["automated"]
        lines.append(
            f"  {task:<16} McNemar p {_num(block['mcnemar_p'], '{:.3g}', block.get('mcnemar_p_reason'))}, "
            f"Holm-adjusted {_num(block['mcnemar_p_holm'], '{:.3g}')} ({block['n_tests']} tests); "
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


def _position_bias(bias: dict[str, Any]) -> list[str]:
    lines = [
        (
            f"Position bias (n={bias['n']} non-tied ratings): left wins "
            f"{_num(bias['left_win_rate'], '{:.1%}', bias.get('left_win_rate_reason'))}, "
            f"p {_num(bias['p'], '{:.3g}', bias.get('p_reason'))}, favoured {bias['favoured'] or 'neither'}"
        )
    ]
    pp = bias.get("per_pair")
    if pp is not None:
        lines.append(
            f"  per pair (n={pp['n']} pairs, one observation each; claims use this): left wins "
            f"{_num(pp['left_win_rate'], '{:.1%}', pp.get('left_win_rate_reason'))}, "
            f"p {_num(pp['p'], '{:.3g}')}, Holm-adjusted {_num(pp.get('p_holm'), '{:.3g}')}, "
            f"favoured {pp['favoured'] or 'neither'}"
        )
    return lines


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
            f"Latency (batch share) {role_label(role):<11} "
            f"p50 {_num(lat['p50_ms'], '{:.0f} ms', lat.get('reason'))}, "
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
    stopped = {True: "yes", False: "no"}.get(training.get("early_stopped"), "n/a")
    return (
        f"Training (run {training['run']}, {training['mode']}): "
        f"trainable {count(training.get('trainable_params'))} "
        f"of {count(training.get('total_params'))} parameters ({training.get('trainable_pct')}%), "
        f"epochs {training.get('epochs_run')}, best {training.get('best_epoch')}, "
        f"early stopped {stopped}, peak memory "
        f"{bytes_label(training.get('peak_memory_bytes'))}, {training.get('wall_seconds')} s"
    )


def _length_bias(lb: dict[str, Any]) -> list[str]:
    lines = ["Length bias (Spearman of score and answer characters, rating × answer rows):"]
    for key in ("overall", *ROLES):
        b = lb[key]
        lines.append(
            f"  {role_label(key):<11} rho {_num(b['spearman'], '{:+.3f}', b.get('spearman_reason'))}, "
            f"p {_num(b['p'], '{:.3g}')} (n={b['n']})"
        )
    lw = lb["longer_wins"]
    lines.append(
        f"  longer answer scored higher {_num(lw['share'], '{:.1%}', lw.get('share_reason'))}, "
        f"p {_num(lw['p'], '{:.3g}')} (n={lw['n']} ratings with unequal scores and lengths)"
    )
    pp = lb.get("per_pair")
    if pp is not None:
        lines.append(
            f"  per pair (claims use this): longer answer's mean score higher "
            f"{_num(pp['share'], '{:.1%}', pp.get('share_reason'))}, p {_num(pp['p'], '{:.3g}')}, "
            f"Holm-adjusted {_num(pp.get('p_holm'), '{:.3g}')} (n={pp['n']} pairs), "
            f"favoured {pp['favoured'] or 'neither'}"
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
        lines.append(f'  {leak["prompt"]} {role_label(leak["role"])}: "{leak["phrase"]}"')
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
            f"mean difference {a['mean_difference']:+.2f}, "
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
            lines.append(f"  - refused ({metric_label(claim['metric'])}): {humanize(claim['reason'])}")
        else:
            lines.append(f"  - {claim['text']}")
    return lines


def _alone(figures: dict[str, Any], prefix: str) -> str:
    """ "p50 45 ms (95% CI 40–47), p95 46 ms (CI n/a)" for one of the serving quantile pairs."""
    parts = []
    for name in ("p50", "p95"):
        ci = figures.get(f"{prefix}_{name}_ci95")
        interval = f"95% CI {ci[0]:.0f}–{ci[1]:.0f}" if ci else "CI n/a: too few measurements"
        parts.append(f"{name} {_num(figures.get(f'{prefix}_{name}_ms'), '{:.0f} ms')} ({interval})")
    return ", ".join(parts)


def _serving(serving: dict[str, Any] | None, per_1000: dict[str, Any] | None) -> list[str]:
    """What one request waits when answered alone, beside the batch-share lines, and both costs."""
    if not serving:
        return []
    which = humanize(serving["which_is_which"])
    lines = ["Serving latency, one request answered alone (batch of 1): " + which]
    for role in ROLES:
        figures = serving[role]
        if not figures["n"]:
            lines.append(f"  {role_label(role):<11} n/a ({figures.get('reason')})")
            continue
        lines.append(
            f"  {role_label(role):<11} first token {_alone(figures, 'first_token')}; full answer "
            f"{_alone(figures, 'total')} (n={figures['n']} requests)"
        )
    if per_1000:
        ratio = per_1000.get("alone_to_batched")
        batched = _num(per_1000["batched_usd"], "${:.4f}", per_1000.get("batched_usd_reason"))
        alone = _num(per_1000["alone_usd"], "${:.4f}", per_1000.get("alone_usd_reason"))
        lines.append(
            f"Cost per 1,000 requests: batched {batched} (n={per_1000['batched_n']} answers), answered alone "
            f"{alone} (n={per_1000['alone_n']} requests)"
            + (f", {ratio:.1f}x the batched cost" if ratio else "")
        )
    return lines


def _style(style: dict[str, Any] | None) -> list[str]:
    """Whether the answers' text alone gives their model away (the classifier's AUC), and the warning."""
    if not style:
        return []
    if style["auc"] is None:
        return [f"Style identifiability: n/a ({style.get('reason')})"]
    ci, pair_ci = style["ci95"], style["pair_accuracy_ci95"]
    interval = f"95% CI {ci[0]:.2f}–{ci[1]:.2f}" if ci else f"no CI: {style.get('ci95_reason')}"
    headline = (
        f"Style identifiability (a classifier reading only the answers): AUC {style['auc']:.2f} "
        f"({interval}), picks the fine-tuned answer of a pair "
        f"{style['pair_accuracy']:.0%} of the time (95% CI {pair_ci[0]:.0%}–{pair_ci[1]:.0%}), "
        f"fitted on {style['n_prompts_used'] - style['n_prompts_scored']} prompts, "
        f"n={style['n_prompts_scored']} held-out prompts"
    )
    verdict = "  WARNING: " + style["warning"] if style.get("warning") else "  " + style.get("note", "")
    return [headline, verdict]
