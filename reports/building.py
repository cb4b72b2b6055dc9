"""The campaign report: read the campaign's rows with a few flat queries, compute with numpy.

`campaign_report(campaign)` is the one source of every figure: the report page, the API and the
`report` command all render this same dict. The reads live in `campaign_rows`, the statistics in
`reports.statistics`; this module puts the blocks together in the order of the JSON contract.

On a campaign of more than two systems (issue 17) every two-system figure reads the pairs that set
pre-trained against fine-tuned (`campaign_rows.two_system_pairs`); the `systems` section and the
disagreement queue read every pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from annotations.models import Campaign
from generation.models import job_system_names
from reports.annotators import PER_ANNOTATOR_METHOD, per_annotator
from reports.campaign_rows import (
    AnswerTextRow,
    CampaignPairs,
    CampaignRatings,
    answer_chars,
    read_answer_texts,
    read_answers_by_role,
    read_gold_by_pair,
    read_labelled_answers,
    read_pairs,
    read_ratings,
)
from reports.comments import COMMENTS_METHOD, campaign_comments
from reports.disagreement import disagreement_queue
from reports.generation_figures import reliability, training
from reports.serving_figures import serving_figures
from reports.statistics.accuracy import adjust_across_tasks, automated_accuracy, human_accuracy
from reports.statistics.agreement import agreement
from reports.statistics.bias import adjust_bias_family, length_bias, position_bias
from reports.statistics.campaign_coverage import campaign_coverage
from reports.statistics.claims import ratings_each, report_claims
from reports.statistics.common import ROLES, SCORE_SCALE
from reports.statistics.identity import identity_leaks
from reports.statistics.latency import cost, latency, latency_histogram
from reports.statistics.raters import across_raters
from reports.statistics.relevance import difference_by_task, relevance, score_distribution, win_rate
from reports.style_figures import style_figures
from reports.systems_section import many_system_figures, systems_section

# the SPEC's keys, first and in this order; the extra figures follow them
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
ACCURACY_METHOD = (
    "an answer's verdict is the strict majority of the raters asked: correct when more than half of "
    "its ratings say correct, incorrect when more than half say incorrect, none otherwise (\"not sure\" "
    "counts for neither side; ties give none); accuracy = share of verdicts that say correct, ci95 = "
    "Wilson interval; paired = both roles over the prompts with a verdict for both answers, the prompts "
    "mcnemar_p = exact McNemar test (binomial on the discordant prompts) compares; "
    "finetuned_share_of_discordant with its Clopper-Pearson interval names the model the discordance "
    "favours; fewer than 30 prompts are flagged as a small sample"
)
NO_RATINGS_REASON = "no ratings yet: every human-judged figure is empty"


def campaign_report(campaign: Campaign) -> dict[str, Any]:
    """Every figure of the campaign report (SPEC "Report"), with sample sizes, CIs and reasons."""
    pairs = read_pairs(campaign)
    ratings = read_ratings(campaign, pairs.ids)
    answers = read_answers_by_role(campaign)
    systems = job_system_names(campaign.job_id)
    every = _every_pair(campaign, systems, pairs, ratings)
    report = _spec_figures(campaign, pairs, ratings, answers)
    report.update(_extra_figures(campaign, pairs, ratings, answers, every))
    if every.pairs is pairs:
        report["systems"] = systems_section(ratings, pairs, report["coverage"], systems)
    else:
        coverage = _coverage(campaign, every.pairs, every.ratings)  # of every pair, for the statement
        section = systems_section(every.ratings, every.pairs, coverage, systems)
        section.update(many_system_figures(section, campaign.job, every.pairs, every.ratings, pairs.n))
        report["systems"] = section
    adjust_bias_family(report["position_bias"], report["length_bias"])
    if ratings.n == 0:
        report["reason"] = NO_RATINGS_REASON
    report["claims"] = report_claims(report)
    return report


@dataclass(frozen=True)
class EveryPair:
    """Every pair of the campaign and its ratings (the same objects as the two-system read when the
    job has two systems), with each pair's gold preference by code."""

    pairs: CampaignPairs
    ratings: CampaignRatings
    gold: np.ndarray


def _every_pair(
    campaign: Campaign, systems: list[str], pairs: CampaignPairs, ratings: CampaignRatings
) -> EveryPair:
    if len(systems) <= 2:
        return EveryPair(pairs, ratings, read_gold_by_pair(campaign, pairs.ids))
    every = read_pairs(campaign, every_system=True)
    return EveryPair(
        every,
        read_ratings(campaign, every.ids, every_system=True),
        read_gold_by_pair(campaign, every.ids, every_system=True),
    )


def _coverage(campaign: Campaign, pairs: CampaignPairs, ratings: CampaignRatings) -> dict[str, Any]:
    ratings_per_pair = (
        np.bincount(ratings.pair_codes, minlength=pairs.n) if pairs.n else np.zeros(0, np.int64)
    )
    return campaign_coverage(
        pairs.tasks.tolist(),
        ratings_per_pair,
        {task: campaign.question_for(task) for task in set(pairs.tasks.tolist())},
    )


def _spec_figures(
    campaign: Campaign,
    pairs: CampaignPairs,
    ratings: CampaignRatings,
    answers: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """The SPEC's blocks, in REPORT_KEYS order."""
    all_latency = np.concatenate([answers[r]["latency_ms"] for r in ROLES])
    price = float(settings.GPU_HOUR_PRICE_USD)
    serving, per_1000_requests = serving_figures(campaign, all_latency, price)
    return {
        "campaign": campaign.pk,
        "n_prompts": pairs.n,
        "n_ratings": ratings.n,
        "relevance": _relevance(ratings, pairs),
        "win_rate": win_rate(
            ratings.pretrained_scores, ratings.finetuned_scores, ratings.pair_codes, pairs.n
        ),
        "accuracy": _accuracy(campaign, ratings, pairs),
        "agreement": agreement(
            ratings.pair_codes,
            ratings.pretrained_scores,
            ratings.finetuned_scores,
            ratings.pretrained_verdicts,
            ratings.finetuned_verdicts,
            pairs.n,
        ),
        "position_bias": position_bias(
            ratings.score_left, ratings.score_right, ratings.pair_codes, pairs.n
        ),
        "reliability": reliability(campaign, answers),
        "latency": {
            **{role: latency(answers[role]["latency_ms"], answers[role]["output_tokens"]) for role in ROLES},
            "serving": serving,
        },
        "cost": {**cost(all_latency, price), "per_1000_requests": per_1000_requests},
        "training": training(campaign),
    }


def _extra_figures(
    campaign: Campaign,
    pairs: CampaignPairs,
    ratings: CampaignRatings,
    answers: dict[str, dict[str, np.ndarray]],
    every: EveryPair,
) -> dict[str, Any]:
    """The figures beyond the SPEC's keys: volume, score counts, per annotator, length and identity."""
    answer_rows = read_answer_texts(campaign)
    ratings_per_pair = (
        np.bincount(ratings.pair_codes, minlength=pairs.n) if pairs.n else np.zeros(0, np.int64)
    )
    gold = every.gold if every.pairs is pairs else read_gold_by_pair(campaign, pairs.ids)
    return {
        "campaign_name": campaign.name,
        "job": campaign.job_id,
        "status": campaign.status,
        "overlap": campaign.overlap,
        "n_prompts_rated": int((ratings_per_pair > 0).sum()),
        "coverage": _coverage(campaign, pairs, ratings),
        "score_scale": SCORE_SCALE,
        "n_annotators": len(np.unique(ratings.annotator_ids)),
        "ratings_per_prompt": ratings_each(ratings_per_pair),
        "score_distribution": {
            "pretrained": score_distribution(ratings.pretrained_scores),
            "finetuned": score_distribution(ratings.finetuned_scores),
        },
        "per_annotator": per_annotator(ratings, gold),
        "n_gold_pairs": int((gold != "").sum()),
        "per_annotator_method": PER_ANNOTATOR_METHOD,
        "length_bias": _length_bias(ratings, *answer_chars(answer_rows, pairs.ids)),
        "identity_leaks": _identity_leaks(answer_rows),
        "style_identifiability": style_figures(answer_rows),
        "latency_distribution": latency_histogram({role: answers[role]["latency_ms"] for role in ROLES}),
        # the pairs whose raters disagree most, and the raters' comments (both link to the pair page)
        **disagreement_queue(every.pairs, every.ratings, every.gold, every_system=every.pairs is not pairs),
        "comments": campaign_comments(campaign),
        "comments_method": COMMENTS_METHOD,
    }


def _accuracy(campaign: Campaign, ratings: CampaignRatings, pairs: CampaignPairs) -> dict[str, Any]:
    """Per task: human accuracy of both roles from majority verdicts, and the automated label match."""
    labelled = read_labelled_answers(campaign)
    pair_tasks = pairs.tasks
    rating_tasks = pair_tasks[ratings.pair_codes] if ratings.n else np.array([], dtype=pair_tasks.dtype)
    out: dict[str, Any] = {}
    for task in sorted(set(pair_tasks.tolist())):
        mask = rating_tasks == task
        block = human_accuracy(
            ratings.pair_codes[mask],
            ratings.pretrained_verdicts[mask],
            ratings.finetuned_verdicts[mask],
            pairs.n,
        )
        block["n_pairs"] = int((pair_tasks == task).sum())
        block["n_ratings"] = int(mask.sum())
        block["automated"] = automated_accuracy(task, labelled.get(task, []))
        block["method"] = ACCURACY_METHOD
        out[task] = block
    adjust_across_tasks(out)
    return out


def _relevance(ratings: CampaignRatings, pairs: CampaignPairs) -> dict[str, Any]:
    """The headline block, plus the same difference per task (descriptive, no claims)."""
    codes, pt, ft = ratings.pair_codes, ratings.pretrained_scores, ratings.finetuned_scores
    block = relevance(codes, pt, ft, pairs.n)
    block["across_raters"] = across_raters(codes, ratings.annotator_ids, pt, ft, pairs.n)
    block["by_task"] = difference_by_task(codes, pt, ft, pairs.tasks)
    return block


def _length_bias(ratings: CampaignRatings, pt_chars: np.ndarray, ft_chars: np.ndarray) -> dict[str, Any]:
    codes = ratings.pair_codes
    return length_bias(
        ratings.pretrained_scores,
        ratings.finetuned_scores,
        pt_chars[codes] if ratings.n else np.zeros(0, np.int64),
        ft_chars[codes] if ratings.n else np.zeros(0, np.int64),
        codes,
        len(pt_chars),
    )


def _identity_leaks(answer_rows: list[AnswerTextRow]) -> dict[str, Any]:
    answers = []
    for _pk, external_id, pt_text, ft_text, *_ in answer_rows:
        answers.append((external_id, "pretrained", pt_text))
        answers.append((external_id, "finetuned", ft_text))
    return identity_leaks(answers)
