"""The campaign report: read the campaign's rows with a few flat queries, compute with numpy.

`campaign_report(campaign)` is the one source of every figure: the report page, the API and the
`report` command all render this same dict. The statistics themselves live in `analysis`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.db.models.functions import Length

from annotations import analysis
from annotations.models import Campaign, Pair, Rating, User
from generation.models import Answer, FinetuneRun, ModelLoadAttempt, Role

REPORT_KEYS = (
    "campaign",
    "n_prompts",
    "n_ratings",
    "relevance",
    "win_rate",
    "accuracy",
    "agreement",
    "position_bias",
    "reliability",
    "latency",
    "cost",
    "training",
)
TRAINING_FIELDS = (
    "mode",
    "trainable_params",
    "total_params",
    "trainable_pct",
    "peak_memory_bytes",
    "wall_seconds",
    "tokens_per_s",
    "epochs_run",
    "best_epoch",
    "early_stopped",
    "train_loss",
    "val_loss",
)


MODE_NAMES = {"lora": "LoRA", "full": "Full"}


class _Ratings:
    """The campaign's ratings as parallel numpy arrays, in role terms (one entry per rating)."""

    def __init__(self, rows: list[tuple], pair_ids: np.ndarray) -> None:
        self.n = len(rows)
        if rows:
            cols = list(zip(*rows))
        else:
            cols = [()] * 9
        pair_id = np.fromiter(cols[0], dtype=np.int64, count=self.n)
        self.pair_codes = np.searchsorted(pair_ids, pair_id)
        self.annotator_ids = np.fromiter(cols[1], dtype=np.int64, count=self.n)
        self.finetuned_left = np.fromiter((side == "left" for side in cols[2]), dtype=bool, count=self.n)
        self.score_left = np.fromiter(cols[3], dtype=np.int64, count=self.n)
        self.score_right = np.fromiter(cols[4], dtype=np.int64, count=self.n)
        correct_left = _verdicts(cols[5], self.n)
        correct_right = _verdicts(cols[6], self.n)
        self.duration_ms = np.fromiter(
            (np.nan if d is None else d for d in cols[7]), dtype=np.float64, count=self.n
        )
        self.preferences = list(cols[8])
        fl = self.finetuned_left
        self.finetuned_scores = np.where(fl, self.score_left, self.score_right)
        self.pretrained_scores = np.where(fl, self.score_right, self.score_left)
        self.finetuned_verdicts = np.where(fl, correct_left, correct_right)
        self.pretrained_verdicts = np.where(fl, correct_right, correct_left)


def _verdicts(values: tuple, n: int) -> np.ndarray:
    return np.fromiter((analysis.NO_VERDICT if v is None else int(v) for v in values), dtype=np.int8, count=n)


def _fetch_ratings(campaign: Campaign, pair_ids: np.ndarray) -> _Ratings:
    rows = list(
        Rating.objects.filter(assignment__pair__campaign=campaign)
        .order_by()
        .values_list(
            "assignment__pair_id",
            "assignment__annotator_id",
            "assignment__finetuned_side",
            "score_left",
            "score_right",
            "correct_left",
            "correct_right",
            "duration_ms",
            "preference",
        )
    )
    return _Ratings(rows, pair_ids)


def _accuracy(campaign: Campaign, ratings: _Ratings, pair_tasks: np.ndarray, n_pairs: int) -> dict[str, Any]:
    labelled: dict[str, list[tuple[str, str, str]]] = {}
    for task, label, pt_text, ft_text in (
        Pair.objects.filter(campaign=campaign)
        .exclude(prompt__label="")
        .order_by()
        .values_list("prompt__task", "prompt__label", "pretrained_answer__text", "finetuned_answer__text")
    ):
        labelled.setdefault(task, []).append((label, pt_text, ft_text))
    rating_tasks = pair_tasks[ratings.pair_codes] if ratings.n else np.array([], dtype=pair_tasks.dtype)
    out: dict[str, Any] = {}
    for task in sorted(set(pair_tasks.tolist())):
        mask = rating_tasks == task
        block = analysis.human_accuracy(
            ratings.pair_codes[mask],
            ratings.pretrained_verdicts[mask],
            ratings.finetuned_verdicts[mask],
            n_pairs,
        )
        block["n_pairs"] = int((pair_tasks == task).sum())
        block["n_ratings"] = int(mask.sum())
        block["automated"] = analysis.automated_accuracy(task, labelled.get(task, []))
        block["method"] = (
            "an answer counts when most of its raters who gave a verdict agree (splits and empty verdicts "
            "are left out); ci95 = Wilson interval; mcnemar_p = exact McNemar test (binomial on discordant "
            "prompts) over prompts where both answers have a majority verdict"
        )
        out[task] = block
    return out


def _answers(campaign: Campaign) -> dict[str, dict[str, np.ndarray]]:
    rows = list(
        Answer.objects.filter(job_id=campaign.job_id)
        .order_by()
        .values_list("role", "latency_ms", "output_tokens", "fallback")
    )
    by_role: dict[str, dict[str, np.ndarray]] = {}
    for role in analysis.ROLES:
        mine = [r for r in rows if r[0] == role]
        by_role[role] = {
            "latency_ms": np.array([np.nan if r[1] is None else r[1] for r in mine], dtype=np.float64),
            "output_tokens": np.array([np.nan if r[2] is None else r[2] for r in mine], dtype=np.float64),
            "fallback": np.array([bool(r[3]) for r in mine], dtype=bool),
        }
    return by_role


def _reliability(campaign: Campaign, answers: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    job = campaign.job
    attempts = list(ModelLoadAttempt.objects.filter(job=job).values_list("kind", "success"))
    made = sum(len(a["fallback"]) for a in answers.values())
    finetuned_made = len(answers[Role.FINETUNED]["fallback"])
    fallbacks = int(answers[Role.FINETUNED]["fallback"].sum())
    out: dict[str, Any] = {
        "load_attempts": len(attempts),
        "load_successes": sum(1 for _, ok in attempts if ok),
        "load_success_rate": None,
        "fallback_rate": None,
        "fallback_answers": fallbacks,
        "generation_success_rate": None,
        "answers_made": made,
        "answers_requested": job.total,
        "method": "load success = successful model/adapter loads / attempts; fallback = fine-tuned answers "
        "served by the pre-trained model / fine-tuned answers requested (half the job's total); generation "
        "success = answers made / answers requested",
    }
    if attempts:
        out["load_success_rate"] = out["load_successes"] / len(attempts)
        by_kind: dict[str, dict[str, int]] = {}
        for kind, ok in attempts:
            entry = by_kind.setdefault(kind, {"attempts": 0, "successes": 0})
            entry["attempts"] += 1
            entry["successes"] += int(ok)
        out["load_by_kind"] = by_kind
    else:
        out["load_success_rate_reason"] = (
            "no model loads recorded (answers were imported)"
            if job.imported
            else "no model loads recorded yet"
        )
    finetuned_requested = job.total // 2 if job.total else finetuned_made
    if finetuned_requested:
        out["fallback_rate"] = fallbacks / finetuned_requested
    else:
        out["fallback_rate_reason"] = "no fine-tuned answers were requested"
    if job.total:
        out["generation_success_rate"] = made / job.total
    else:
        out["generation_success_rate_reason"] = "the job records no number of answers requested"
    return out


def _training_run(run: FinetuneRun) -> dict[str, Any]:
    metrics = run.metrics or {}
    entry: dict[str, Any] = {"run": run.pk, "status": run.status, "base_model": run.base_model}
    for field in TRAINING_FIELDS:
        entry[field] = metrics.get(field)
    entry["mode"] = entry["mode"] or run.mode
    missing = [f for f in TRAINING_FIELDS if entry[f] is None]
    if missing:
        entry["reason"] = (
            "training.json not recorded yet" if not metrics else f"training.json lacks: {', '.join(missing)}"
        )
    return entry


def _training(campaign: Campaign) -> dict[str, Any]:
    run = campaign.job.finetune_run
    out: dict[str, Any] = {"runs": [], "n_runs": 0}
    if run is None:
        out["reason"] = "no fine-tuning run is linked to this campaign's generation job"
        return out
    linked = _training_run(run)
    out["runs"] = [linked]
    out["n_runs"] = 1
    # the linked run's figures also at the top of the block: there is one run per job
    out.update({k: v for k, v in linked.items() if k not in ("reason",)})
    if "reason" in linked:
        out["reason"] = linked["reason"]
    # LoRA vs full: a finished run of the other mode on the same base model and dataset, if any
    other = (
        FinetuneRun.objects.filter(base_model=run.base_model, dataset_id=run.dataset_id, status="succeeded")
        .exclude(pk=run.pk)
        .exclude(mode=run.mode)
        .first()
    )
    if other is not None:
        comparison = _training_run(other)
        out["comparison"] = comparison
        ratios: dict[str, Any] = {}
        for key in ("peak_memory_bytes", "wall_seconds", "trainable_params"):
            a, b = linked.get(key), comparison.get(key)
            ratios[key] = (
                (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
            )
        out["ratio_to_comparison"] = ratios
    return out


NO_GOLD_RATED_REASON = "this annotator rated none of the campaign's gold pairs"


def _role_preferences(ratings: _Ratings) -> np.ndarray:
    """Each rating's preference in role terms: left/right become finetuned/pretrained by the stored side."""
    out = np.empty(ratings.n, dtype=object)
    for i, (pref, ft_left) in enumerate(zip(ratings.preferences, ratings.finetuned_left.tolist(), strict=True)):
        if pref == "left":
            out[i] = "finetuned" if ft_left else "pretrained"
        elif pref == "right":
            out[i] = "pretrained" if ft_left else "finetuned"
        else:
            out[i] = pref
    return out


def _gold_by_pair(campaign: Campaign, pair_ids: np.ndarray) -> np.ndarray:
    """The gold preference of each pair (by pair code), "" for an ordinary pair."""
    gold = dict(
        Pair.objects.filter(campaign=campaign).exclude(gold_preference="").values_list("id", "gold_preference")
    )
    return np.array([gold.get(pk, "") for pk in pair_ids.tolist()], dtype=object)


def _gold_accuracy(mask: np.ndarray, rating_gold: np.ndarray, role_prefs: np.ndarray, any_gold: bool) -> dict:
    """Share of the annotator's ratings of gold pairs whose preference (in role terms) is the gold one."""
    if not any_gold:
        return {"gold_accuracy": None, "gold_n": 0, "gold_correct": 0, "gold_accuracy_reason": analysis.GOLD_REASON}
    on_gold = mask & (rating_gold != "")
    n = int(on_gold.sum())
    if n == 0:
        return {"gold_accuracy": None, "gold_n": 0, "gold_correct": 0, "gold_accuracy_reason": NO_GOLD_RATED_REASON}
    hits = int((role_prefs[on_gold] == rating_gold[on_gold]).sum())
    return {"gold_accuracy": hits / n, "gold_n": n, "gold_correct": hits}


def _per_annotator(ratings: _Ratings, gold: np.ndarray | None = None) -> list[dict[str, Any]]:
    if ratings.n == 0:
        return []
    if gold is None:
        gold = np.array([], dtype=object)
    any_gold = bool(len(gold)) and bool((gold != "").any())
    rating_gold = gold[ratings.pair_codes] if any_gold else np.full(ratings.n, "", dtype=object)
    role_prefs = _role_preferences(ratings)
    ids, inverse = np.unique(ratings.annotator_ids, return_inverse=True)
    users = {u.pk: u for u in User.objects.filter(pk__in=ids.tolist()).only("id")}
    # units = (pair, role): 2 × pair + 0 pre-trained / 1 fine-tuned, as in `analysis.agreement`
    agreement = analysis.agreement_with_others(
        np.concatenate([2 * ratings.pair_codes, 2 * ratings.pair_codes + 1]),
        np.concatenate([inverse, inverse]),
        np.concatenate([ratings.pretrained_scores, ratings.finetuned_scores]),
        len(ids),
    )
    preferences = np.array(ratings.preferences, dtype=object)
    rows = []
    for code, user_id in enumerate(ids.tolist()):
        mask = inverse == code
        durations = ratings.duration_ms[mask]
        durations = durations[~np.isnan(durations)]
        scores = np.concatenate([ratings.score_left[mask], ratings.score_right[mask]])
        user = users.get(user_id) or User(pk=user_id)
        rows.append(
            {
                "annotator": user.pseudonym,
                "ratings": int(mask.sum()),
                "mean_score": float(scores.mean()),
                "median_duration_ms": float(np.median(durations)) if len(durations) else None,
                "agreement_with_others": agreement[code],
                "side_preference": analysis.side_preference(preferences[mask].tolist()),
                **_gold_accuracy(mask, rating_gold, role_prefs, any_gold),
            }
        )
    rows.sort(key=lambda r: (-r["ratings"], r["annotator"]))
    return rows


PER_ANNOTATOR_METHOD = (
    "agreement_with_others: the rater's score on each (pair, role) unit against the mean score of the other "
    "raters on that unit, over units someone else also rated (n_units); mean_abs_diff, Pearson r and "
    "Spearman rho (scipy); side_preference: share of the rater's left/right preferences that chose the left "
    "answer (ties and both-bad left out), p = two-sided exact binomial test against 0.5; gold_accuracy: share of "
    "the rater's ratings of gold pairs whose preference, translated from left/right to roles by the "
    "assignment's stored side, equals the pair's gold preference (finetuned, pretrained, tie, both_bad); "
    "gold_n = those ratings; null with a reason when the campaign has no gold pairs or the rater rated none"
)


def _answer_rows(campaign: Campaign) -> list[tuple]:
    """(pair id, prompt external_id, pre-trained text, fine-tuned text, their lengths) by pair id."""
    return list(
        Pair.objects.filter(campaign=campaign)
        .order_by("id")
        .annotate(
            pt_chars=Length("pretrained_answer__text"),
            ft_chars=Length("finetuned_answer__text"),
        )
        .values_list(
            "id",
            "prompt__external_id",
            "pretrained_answer__text",
            "finetuned_answer__text",
            "pt_chars",
            "ft_chars",
        )
    )


def _length_bias(ratings: _Ratings, pt_chars: np.ndarray, ft_chars: np.ndarray) -> dict[str, Any]:
    codes = ratings.pair_codes
    return analysis.length_bias(
        ratings.pretrained_scores,
        ratings.finetuned_scores,
        pt_chars[codes] if ratings.n else np.zeros(0, np.int64),
        ft_chars[codes] if ratings.n else np.zeros(0, np.int64),
    )


def _identity_leaks(answer_rows: list[tuple]) -> dict[str, Any]:
    def answers():
        for _pk, external_id, pt_text, ft_text, *_ in answer_rows:
            yield external_id, "pretrained", pt_text
            yield external_id, "finetuned", ft_text

    return analysis.identity_leaks(list(answers()))


def _latency_distribution(answers: dict[str, dict[str, np.ndarray]], n_bins: int = 10) -> dict[str, Any]:
    """Histogram of answer latencies per role over shared edges (for the page's chart)."""
    known = {r: a["latency_ms"][~np.isnan(a["latency_ms"])] for r, a in answers.items()}
    both = np.concatenate([known[r] for r in analysis.ROLES])
    if len(both) == 0:
        return {"edges_ms": [], "pretrained": [], "finetuned": [], "reason": "no answer has a recorded latency"}
    lo, hi = float(both.min()), float(both.max())
    if hi == lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, n_bins + 1)
    out: dict[str, Any] = {"edges_ms": [float(e) for e in edges]}
    for role in analysis.ROLES:
        out[role] = [int(c) for c in np.histogram(known[role], bins=edges)[0]]
    return out


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
        f"Caution: the {side} answer scored higher in {share * 100:.0f}% of {longer['n']} ratings with unequal "
        f"scores and lengths (exact binomial p = {longer['p']:.3g}); part of the score difference may be "
        "about length rather than content.",
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


def _claims(report: dict[str, Any], ratings_per_prompt: str) -> list[dict[str, Any]]:
    claims = [
        analysis.relevance_claim(report["relevance"], ratings_per_prompt),
        analysis.win_rate_claim(report["win_rate"]),
    ]
    claims += [analysis.accuracy_claim(task, block) for task, block in report["accuracy"].items()]
    optional = (
        _position_bias_claim(report["position_bias"]),
        _length_bias_claim(report["length_bias"]),
        _identity_leak_claim(report["identity_leaks"]),
        _reliability_claim(report["reliability"]),
        _training_claim(report["training"]),
    )
    return claims + [claim for claim in optional if claim is not None]


def campaign_report(campaign: Campaign) -> dict[str, Any]:
    """Every figure of the campaign report (SPEC "Report"), with sample sizes, CIs and reasons."""
    pairs = list(Pair.objects.filter(campaign=campaign).order_by("id").values_list("id", "prompt__task"))
    pair_ids = np.array([p[0] for p in pairs], dtype=np.int64)
    pair_tasks = np.array([p[1] for p in pairs], dtype=object)
    n_pairs = len(pairs)
    ratings = _fetch_ratings(campaign, pair_ids)
    answer_rows = _answer_rows(campaign)
    chars = {r[0]: (r[4] or 0, r[5] or 0) for r in answer_rows}
    pt_chars = np.array([chars.get(pk, (0, 0))[0] for pk in pair_ids.tolist()], dtype=np.int64)
    ft_chars = np.array([chars.get(pk, (0, 0))[1] for pk in pair_ids.tolist()], dtype=np.int64)

    ratings_per_pair = (
        np.bincount(ratings.pair_codes, minlength=n_pairs) if n_pairs else np.zeros(0, np.int64)
    )
    answers = _answers(campaign)
    all_latency = np.concatenate([answers[r]["latency_ms"] for r in analysis.ROLES])
    price = float(settings.GPU_HOUR_PRICE_USD)

    report: dict[str, Any] = {
        "campaign": campaign.pk,
        "n_prompts": n_pairs,
        "n_ratings": ratings.n,
        "relevance": analysis.relevance(
            ratings.pair_codes, ratings.pretrained_scores, ratings.finetuned_scores, n_pairs
        ),
        "win_rate": analysis.win_rate(ratings.pretrained_scores, ratings.finetuned_scores),
        "accuracy": _accuracy(campaign, ratings, pair_tasks, n_pairs),
        "agreement": analysis.agreement(
            ratings.pair_codes,
            ratings.pretrained_scores,
            ratings.finetuned_scores,
            ratings.pretrained_verdicts,
            ratings.finetuned_verdicts,
            n_pairs,
        ),
        "position_bias": analysis.position_bias(ratings.score_left, ratings.score_right),
        "reliability": _reliability(campaign, answers),
        "latency": {
            role: analysis.latency(answers[role]["latency_ms"], answers[role]["output_tokens"])
            for role in analysis.ROLES
        },
        "cost": analysis.cost(all_latency, price),
        "training": _training(campaign),
    }
    report.update(
        {
            "campaign_name": campaign.name,
            "job": campaign.job_id,
            "status": campaign.status,
            "overlap": campaign.overlap,
            "n_prompts_rated": int((ratings_per_pair > 0).sum()),
            "n_annotators": len(np.unique(ratings.annotator_ids)),
            "ratings_per_prompt": analysis.ratings_each(ratings_per_pair),
            "score_distribution": {
                "pretrained": analysis.score_distribution(ratings.pretrained_scores),
                "finetuned": analysis.score_distribution(ratings.finetuned_scores),
            },
            "per_annotator": _per_annotator(ratings, _gold_by_pair(campaign, pair_ids)),
            "n_gold_pairs": int(campaign.pairs.exclude(gold_preference="").count()),
            "per_annotator_method": PER_ANNOTATOR_METHOD,
            "length_bias": _length_bias(ratings, pt_chars, ft_chars),
            "identity_leaks": _identity_leaks(answer_rows),
            "latency_distribution": _latency_distribution(answers),
        }
    )
    if ratings.n == 0:
        report["reason"] = "no ratings yet: every human-judged figure is empty"
    report["claims"] = _claims(report, report["ratings_per_prompt"])
    return report


def _num(value: Any, fmt: str = "{:.3f}", reason: str | None = None) -> str:
    if value is None:
        return f"n/a ({reason})" if reason else "n/a"
    return fmt.format(value)


def _ci(ci: list[float] | None, pct: bool = True) -> str:
    if not ci:
        return "CI n/a"
    return f"95% CI {ci[0] * 100:.1f}–{ci[1] * 100:.1f}%" if pct else f"95% CI {ci[0]:.3f}–{ci[1]:.3f}"


def report_as_text(report: dict[str, Any]) -> str:
    """The report as a readable summary for a terminal: figures with n, CI and reasons."""
    rel = report["relevance"]
    win = report["win_rate"]
    agr = report["agreement"]
    bias = report["position_bias"]
    reli = report["reliability"]
    cost = report["cost"]
    lines = [
        (
            f"Campaign {report['campaign']} ({report['campaign_name']}): {report['n_prompts']} prompts, "
            f"{report['n_ratings']} ratings, {report['n_annotators']} annotators, {report['ratings_per_prompt']}"
        ),
        "",
        "Relevance",
        f"  pre-trained mean  {_num(rel['pretrained_mean'], reason=rel.get('pretrained_mean_reason'))}",
        f"  fine-tuned mean   {_num(rel['finetuned_mean'], reason=rel.get('finetuned_mean_reason'))}",
        (
            f"  improvement       {_num(rel['improvement'], '{:+.1%}', rel.get('improvement_reason'))}  "
            f"({_ci(rel['ci95']) if rel['ci95'] else 'CI n/a: ' + str(rel.get('ci95_reason'))}, "
            f"n={rel['n_prompts']} prompts)"
        ),
        f"  Wilcoxon p        {_num(rel['wilcoxon_p'], '{:.3g}', rel.get('wilcoxon_p_reason'))}",
        "",
        (
            f"Win rate (n={win['n']} ratings): fine-tuned {_num(win['finetuned'], '{:.1%}')}, "
            f"pre-trained {_num(win['pretrained'], '{:.1%}')}, tie {_num(win['tie'], '{:.1%}')}"
        ),
        "",
        "Accuracy (human majority verdicts; automated label match)",
    ]
    if not report["accuracy"]:
        lines.append("  no tasks")
    for task, block in report["accuracy"].items():
        for role in analysis.ROLES:
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
    lines += [
        "",
        (
            f"Agreement (Krippendorff's alpha, n={agr['n_units']} units): scores "
            f"{_num(agr['score_alpha'], reason=agr.get('score_alpha_reason'))}, correctness "
            f"{_num(agr['correct_alpha'], reason=agr.get('correct_alpha_reason'))}"
        ),
        (
            f"Position bias (n={bias['n']} non-tied): left wins "
            f"{_num(bias['left_win_rate'], '{:.1%}', bias.get('left_win_rate_reason'))}, "
            f"p {_num(bias['p'], '{:.3g}', bias.get('p_reason'))}"
        ),
        (
            f"Reliability: loads {reli['load_successes']}/{reli['load_attempts']} "
            f"({_num(reli['load_success_rate'], '{:.1%}', reli.get('load_success_rate_reason'))}), fallback "
            f"{_num(reli['fallback_rate'], '{:.1%}', reli.get('fallback_rate_reason'))}, generation "
            f"{reli['answers_made']}/{reli['answers_requested']} "
            f"({_num(reli['generation_success_rate'], '{:.1%}', reli.get('generation_success_rate_reason'))})"
        ),
    ]
    for role in analysis.ROLES:
        lat = report["latency"][role]
        lines.append(
            f"Latency {role:<11} p50 {_num(lat['p50_ms'], '{:.0f} ms', lat.get('reason'))}, "
            f"p95 {_num(lat['p95_ms'], '{:.0f} ms')}, {_num(lat['tokens_per_s'], '{:.1f} tok/s')} (n={lat['n']})"
        )
    lines.append(
        f"Cost: {_num(cost['gpu_seconds'], '{:.1f} GPU s', cost.get('gpu_seconds_reason'))}, "
        f"{_num(cost['per_request_usd'], '${:.6f}')} per request at ${cost['gpu_hour_price_usd']}/GPU hour"
    )
    training = report["training"]
    if training["n_runs"]:
        lines.append(
            f"Training (run {training['run']}, {training['mode']}): trainable {training.get('trainable_params')} of "
            f"{training.get('total_params')} ({training.get('trainable_pct')}%), epochs {training.get('epochs_run')}, "
            f"best {training.get('best_epoch')}, early stopped {training.get('early_stopped')}, peak memory "
            f"{training.get('peak_memory_bytes')} B, {training.get('wall_seconds')} s"
        )
    else:
        lines.append(f"Training: n/a ({training.get('reason')})")
    lb = report["length_bias"]
    lines.append("Length bias (Spearman of score and answer characters, rating × answer rows):")
    for key in ("overall", *analysis.ROLES):
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
    leaks = report["identity_leaks"]
    lines.append(
        f"Identity leaks: {leaks['n_flagged']} answer(s) flagged (pre-trained {leaks['count']['pretrained']}, "
        f"fine-tuned {leaks['count']['finetuned']})"
    )
    for leak in leaks["flagged"][:20]:
        lines.append(f"  {leak['prompt']} {leak['role']}: \"{leak['phrase']}\"")
    if leaks["n_flagged"] > 20:
        lines.append(f"  ... {leaks['n_flagged'] - 20} more in the JSON report")
    if report["per_annotator"]:
        lines.append("Annotators (agreement = vs mean of the others on the same units; left = side preference):")
    for a in report["per_annotator"]:
        agr_o, side = a["agreement_with_others"], a["side_preference"]
        lines.append(
            f"  {a['annotator']} {a['ratings']} ratings, mean {a['mean_score']:.2f}, "
            f"|diff| {_num(agr_o['mean_abs_diff'], '{:.2f}', agr_o.get('mean_abs_diff_reason'))}, "
            f"rho {_num(agr_o['spearman'], '{:+.2f}', agr_o.get('spearman_reason'))} (n={agr_o['n_units']}), "
            f"left {_num(side['left_share'], '{:.0%}', side.get('left_share_reason'))} (n={side['n']}), "
            + (
                f"gold {a['gold_accuracy']:.0%} (n={a['gold_n']})"
                if a["gold_accuracy"] is not None
                else f"gold n/a ({a['gold_accuracy_reason']})"
            )
        )
    lines += ["", "Claims"]
    for claim in report["claims"]:
        lines.append(
            f"  - {claim['text']}"
            if not claim["refused"]
            else f"  - refused ({claim['metric']}): {claim['reason']}"
        )
    return "\n".join(lines) + "\n"
