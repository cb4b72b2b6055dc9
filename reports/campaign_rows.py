"""The campaign's rows, read with a few flat queries and turned into numpy arrays in role terms.

Each read is one `values_list` query, never a query per row, so a report over 100,000 ratings costs
a handful of queries. `reports.building` hands these arrays to `reports.statistics`.

On a campaign of more than two systems (issue 17) a pair shows any two of the job's systems; the
two-system figures (relevance, accuracy, agreement, bias, …) read only the pairs that set pre-trained
against fine-tuned: every reader goes through `two_system_pairs` unless asked for every pair
(`every_system=True`, what the `systems` section and the disagreement queue read). In a two-system
campaign that is every pair. A pair's "pretrained" slot holds the earlier system in job order, its
"finetuned" slot the later; `CampaignPairs.system_a` / `system_b` name them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import QuerySet
from django.db.models.functions import Length

from annotations.models import Campaign, Pair, Rating
from generation.models import Answer, Role
from reports.statistics.common import NO_VERDICT, ROLES

# (pair id, prompt external_id, pre-trained text, fine-tuned text, pre-trained chars, fine-tuned chars)
AnswerTextRow = tuple[int, str, str, str, int | None, int | None]
# (label, pre-trained text, fine-tuned text)
LabelledAnswers = tuple[str, str, str]
# one rating, in the column order CampaignRatings reads
RATING_COLUMNS = (
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


def two_system_pairs(rows: QuerySet, via: str = "") -> QuerySet:
    """`rows` (pairs, or rows reached from a pair through `via`, e.g. "assignment__pair__") cut to the
    pairs that set pre-trained against fine-tuned: the pairs every two-system figure reads."""
    return rows.filter(
        **{
            f"{via}pretrained_answer__role": Role.PRETRAINED.value,
            f"{via}finetuned_answer__role": Role.FINETUNED.value,
        }
    )


def _scoped(rows: QuerySet, every_system: bool, via: str = "") -> QuerySet:
    return rows if every_system else two_system_pairs(rows, via)


@dataclass(frozen=True)
class CampaignPairs:
    """The campaign's pairs by id; a pair's code is its index here (0..n-1). `read_pairs` also fills
    each pair's prompt, external id, and the system and answer of its two slots (None elsewhere)."""

    ids: np.ndarray  # int64, ascending
    tasks: np.ndarray  # object: the prompt's task of each pair
    prompts: np.ndarray | None = None  # int64: the prompt id of each pair
    external_ids: np.ndarray | None = None  # object: the prompt's external id
    system_a: np.ndarray | None = None  # object: the system of the "pretrained" slot's answer
    system_b: np.ndarray | None = None  # object: the system of the "finetuned" slot's answer
    answer_a: np.ndarray | None = None  # int64: the answer ids of the two slots
    answer_b: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def systems_of(self, code: int) -> tuple[str, str]:
        """The two systems of the pair with this code: (the "pretrained" slot's, the "finetuned" slot's)."""
        if self.system_a is None or self.system_b is None:
            return ROLES[0], ROLES[1]
        return str(self.system_a[code]), str(self.system_b[code])


class CampaignRatings:
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
        correct_left = verdict_codes(cols[5], self.n)
        correct_right = verdict_codes(cols[6], self.n)
        self.duration_ms = np.fromiter(
            (np.nan if d is None else d for d in cols[7]), dtype=np.float64, count=self.n
        )
        self.preferences = list(cols[8])
        fl = self.finetuned_left
        self.finetuned_scores = np.where(fl, self.score_left, self.score_right)
        self.pretrained_scores = np.where(fl, self.score_right, self.score_left)
        self.finetuned_verdicts = np.where(fl, correct_left, correct_right)
        self.pretrained_verdicts = np.where(fl, correct_right, correct_left)


def verdict_codes(values: tuple, n: int) -> np.ndarray:
    """Stored verdicts (True / False / None) as int8 codes 1 / 0 / NO_VERDICT."""
    return np.fromiter((NO_VERDICT if v is None else int(v) for v in values), dtype=np.int8, count=n)


PAIR_COLUMNS = (
    "id",
    "prompt__task",
    "prompt_id",
    "prompt__external_id",
    "pretrained_answer__role",
    "finetuned_answer__role",
    "pretrained_answer_id",
    "finetuned_answer_id",
)


def read_pairs(campaign: Campaign, *, every_system: bool = False) -> CampaignPairs:
    """The pre-trained vs fine-tuned pairs, or with `every_system` every pair of the campaign."""
    rows = list(
        _scoped(Pair.objects.filter(campaign=campaign), every_system)
        .order_by("id")
        .values_list(*PAIR_COLUMNS)
    )
    cols = list(zip(*rows)) if rows else [()] * len(PAIR_COLUMNS)
    n = len(rows)
    return CampaignPairs(
        ids=np.fromiter(cols[0], dtype=np.int64, count=n),
        tasks=np.array(cols[1], dtype=object),
        prompts=np.fromiter(cols[2], dtype=np.int64, count=n),
        external_ids=np.array(cols[3], dtype=object),
        system_a=np.array(cols[4], dtype=object),
        system_b=np.array(cols[5], dtype=object),
        answer_a=np.fromiter(cols[6], dtype=np.int64, count=n),
        answer_b=np.fromiter(cols[7], dtype=np.int64, count=n),
    )


def read_ratings(campaign: Campaign, pair_ids: np.ndarray, *, every_system: bool = False) -> CampaignRatings:
    """The ratings of the pairs `read_pairs` read with the same `every_system` (codes index `pair_ids`)."""
    ratings = Rating.objects.filter(assignment__pair__campaign=campaign)
    rows = list(
        _scoped(ratings, every_system, "assignment__pair__")
        .order_by()
        .values_list(*RATING_COLUMNS)
    )
    return CampaignRatings(rows, pair_ids)


def read_answer_texts(campaign: Campaign) -> list[AnswerTextRow]:
    """Both answers of every pair with their lengths (computed by the database), by pair id."""
    return list(
        two_system_pairs(Pair.objects.filter(campaign=campaign))
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


def answer_chars(answer_rows: list[AnswerTextRow], pair_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Characters of the pre-trained and the fine-tuned answer of each pair (by pair code)."""
    chars = {r[0]: (r[4] or 0, r[5] or 0) for r in answer_rows}
    pt_chars = np.array([chars.get(pk, (0, 0))[0] for pk in pair_ids.tolist()], dtype=np.int64)
    ft_chars = np.array([chars.get(pk, (0, 0))[1] for pk in pair_ids.tolist()], dtype=np.int64)
    return pt_chars, ft_chars


def read_answers_by_role(campaign: Campaign) -> dict[str, dict[str, np.ndarray]]:
    """Every answer of the campaign's job, per role: latency_ms and output_tokens (NaN where unknown)
    and fallback."""
    rows = list(
        Answer.objects.filter(job_id=campaign.job_id)
        .order_by()
        .values_list("role", "latency_ms", "output_tokens", "fallback")
    )
    by_role: dict[str, dict[str, np.ndarray]] = {}
    for role in ROLES:
        mine = [r for r in rows if r[0] == role]
        by_role[role] = {
            "latency_ms": np.array([np.nan if r[1] is None else r[1] for r in mine], dtype=np.float64),
            "output_tokens": np.array([np.nan if r[2] is None else r[2] for r in mine], dtype=np.float64),
            "fallback": np.array([bool(r[3]) for r in mine], dtype=bool),
        }
    return by_role


def read_labelled_answers(campaign: Campaign) -> dict[str, list[LabelledAnswers]]:
    """Per task: (label, pre-trained text, fine-tuned text) of each pair whose prompt has a label."""
    labelled: dict[str, list[LabelledAnswers]] = {}
    for task, label, pt_text, ft_text in (
        two_system_pairs(Pair.objects.filter(campaign=campaign))
        .exclude(prompt__label="")
        .order_by()
        .values_list("prompt__task", "prompt__label", "pretrained_answer__text", "finetuned_answer__text")
    ):
        labelled.setdefault(task, []).append((label, pt_text, ft_text))
    return labelled


def read_gold_by_pair(
    campaign: Campaign, pair_ids: np.ndarray, *, every_system: bool = False
) -> np.ndarray:
    """The gold preference of each pair (by pair code), "" for an ordinary pair."""
    gold = dict(
        _scoped(Pair.objects.filter(campaign=campaign), every_system)
        .exclude(gold_preference="")
        .values_list("id", "gold_preference")
    )
    return np.array([gold.get(pk, "") for pk in pair_ids.tolist()], dtype=object)


def read_many(campaign_ids: list[int]) -> dict[int, tuple[CampaignPairs, CampaignRatings]]:
    """The pairs and ratings of several campaigns in two queries (the campaigns overview): the
    pre-trained vs fine-tuned pairs and their ratings, as `read_pairs` and `read_ratings` give one
    campaign (ids and tasks only), keyed by campaign id."""
    pair_rows: dict[int, list[tuple[int, str]]] = {pk: [] for pk in campaign_ids}
    for campaign_id, pair_id, task in (
        two_system_pairs(Pair.objects.filter(campaign_id__in=campaign_ids))
        .order_by("campaign_id", "id")
        .values_list("campaign_id", "id", "prompt__task")
    ):
        pair_rows[campaign_id].append((pair_id, task))
    rating_rows: dict[int, list[tuple]] = {pk: [] for pk in campaign_ids}
    for campaign_id, *row in (
        two_system_pairs(
            Rating.objects.filter(assignment__pair__campaign_id__in=campaign_ids), "assignment__pair__"
        )
        .order_by()
        .values_list("assignment__pair__campaign_id", *RATING_COLUMNS)
    ):
        rating_rows[campaign_id].append(tuple(row))
    out = {}
    for pk in campaign_ids:
        pairs = CampaignPairs(
            ids=np.array([p[0] for p in pair_rows[pk]], dtype=np.int64),
            tasks=np.array([p[1] for p in pair_rows[pk]], dtype=object),
        )
        out[pk] = (pairs, CampaignRatings(rating_rows[pk], pairs.ids))
    return out
