"""Human wording for the report page and the text report: labels for the JSON's field names, role
names, units and plurals.

The statistics modules write their method notes and reasons for the JSON report, so they name its
keys (`ci95 =`, `wilcoxon_p`, `latency.ROLE`). A researcher reading the page should not have to know
the keys: `humanize` rewrites a note's key names into words, and the JSON keeps the keys. The roles
read "pre-trained" and "fine-tuned" everywhere a person reads them. No Django here, so the text report
and the template filters (reports/templatetags/report_labels.py) share it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

ROLE_LABELS = {"pretrained": "pre-trained", "finetuned": "fine-tuned"}
# a rater's preference in role terms (the report's and the pair page's wording)
PREFERENCE_LABELS = {
    "finetuned": "fine-tuned better",
    "pretrained": "pre-trained better",
    "tie": "tie",
    "both_bad": "both bad",
    "left": "left better",
    "right": "right better",
}
# a claim's `metric` (a path into the JSON) as the page names it
METRIC_LABELS = {
    "relevance.difference": "score difference",
    "relevance.across_raters": "score difference across raters",
    "win_rate.by_prompt": "win rate over prompts",
    "training.trainable_pct": "training",
    "position_bias": "position bias",
    "length_bias": "length bias",
}
# key names that appear in method notes and reasons, as words; any other snake_case name loses its
# underscores (`task_mix_gap` -> "task mix gap"), so a key added later still reads as words
KEY_LABELS = {
    "ci95": "95% CI",
    "difference_ci95": "the 95% CI of the difference",
    "pretrained_ci95": "the pre-trained share's 95% CI",
    "tie_ci95": "the tie share's 95% CI",
    "wilcoxon_p": "Wilcoxon p",
    "permutation_p": "permutation p",
    "mcnemar_p": "McNemar p",
    "mcnemar_p_holm": "Holm-adjusted McNemar p",
    "p_holm": "Holm-adjusted p",
    "sign_test_p": "sign test p",
    "finetuned_share_of_discordant": "the fine-tuned share of the discordant prompts",
    "p50_ms": "p50",
    "p95_ms": "p95",
    "first_token": "first token",
    "n_units": "units",
    "n_prompts": "prompts",
    "mean_abs_diff": "mean absolute difference",
    "per_pair": "per pair",
    "per_answer": "per answer",
    "by_prompt": "by prompt",
    "auc": "AUC",
    "answer_chars": "answer length column",
    "latency.ROLE": "each role's batch-share latency",
    "latency.serving": "the answered-alone latency",
    "win_rate.by_prompt": "the win rate over prompts",
    "both_bad": "both bad",
    "score_spread": "score spread",
}
# a dotted JSON path (`latency.serving`) or a snake_case name (`wilcoxon_p`) or a lone `ci95`; a file
# name (`bench/coverage.py`) or a library call (`scipy.stats.spearmanr`) has neither an underscore nor
# an entry in KEY_LABELS and is left alone
_TOKEN = re.compile(
    r"(?<![/\w.])([A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)+|ci95|pretrained|finetuned)(?![\w/])"
)
_ROLE_WORD = re.compile(r"\b(pretrained|finetuned|Pretrained|Finetuned)\b")


def role_label(role: Any) -> str:
    """A role key as people read it, "pre-trained" / "fine-tuned"; anything else unchanged."""
    return ROLE_LABELS.get(str(role), str(role))


def preference_label(preference: Any) -> str:
    return PREFERENCE_LABELS.get(str(preference), str(preference).replace("_", " "))


def system_label(name: Any) -> str:
    """A system's name as people read it (issue 17): "pre-trained", "fine-tuned", else a JobSystem's
    name exactly as it is (a slug; its underscores and hyphens are kept)."""
    return role_label(name)


def system_preference_label(preference: Any, systems: Any) -> str:
    """A preference in system terms: "<system> better" when it names one of `systems`, else as
    `preference_label` words it (tie, both bad). For the two systems it equals `preference_label`."""
    if str(preference) in {str(name) for name in systems}:
        return f"{system_label(preference)} better"
    return preference_label(preference)


def _token_label(token: str) -> str | None:
    if token in KEY_LABELS:
        return KEY_LABELS[token]
    if token in ROLE_LABELS:
        return ROLE_LABELS[token]
    if "." in token:
        head, *rest = token.split(".")
        if "_" not in token and head not in METRIC_LABELS and head not in KEY_LABELS:
            return None  # scipy.stats.spearmanr, e.g.: a name, not a key
        tail = ", ".join(_token_label(part) or part for part in rest)
        return f"{_token_label(head) or head} ({tail})"
    if "_" in token:
        return " ".join(ROLE_LABELS.get(part, part) for part in token.split("_"))
    return None


def humanize(text: Any) -> str:
    """A method note or reason with the JSON's key names written as words and the roles hyphenated.

    `ci95 = Wilson interval` reads "95% CI: Wilson interval"; `permutation_p` "permutation p"."""
    if text is None:
        return ""
    text = str(text)

    def replace(match: re.Match[str]) -> str:
        label = _token_label(match.group(1))
        return match.group(0) if label is None else label

    out = _TOKEN.sub(replace, text)
    # "95% CI = Wilson interval" -> "95% CI: Wilson interval" where a key was defined
    for label in set(KEY_LABELS.values()):
        out = out.replace(f"{label} = ", f"{label}: ")
    return _ROLE_WORD.sub(_role_word, out)


def _role_word(match: re.Match[str]) -> str:
    word = match.group(1)
    label = ROLE_LABELS[word.lower()]
    return label.capitalize() if word[0].isupper() else label


def metric_label(metric: Any) -> str:
    """A claim's metric path as words: `win_rate.by_prompt` -> "win rate over prompts"."""
    metric = str(metric)
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    head, _, rest = metric.partition(".")
    if head == "accuracy" and rest:
        return f"accuracy ({rest})"
    return humanize(metric)


def count(value: Any) -> str:
    """An integer with thousands separators: 12,345; a missing figure as a dash."""
    if value is None:
        return "—"
    return f"{int(value):,}"


def plural(value: Any, word: str, words: str | None = None) -> str:
    """'1 annotator', '2 annotators', '1,200 ratings': the count with the right form of the noun."""
    if value is None:
        return f"— {words or word + 's'}"
    n = int(value)
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def bytes_label(value: Any) -> str:
    """Bytes in binary units: 3,000,000,000 -> "2.79 GiB"; under 1 KiB as bytes."""
    if value is None:
        return "—"
    size = float(value)
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if size >= 1024**power:
            return f"{size / 1024**power:,.2f} {unit}"
    return plural(int(size), "byte")


def seconds_label(milliseconds: Any) -> str:
    """A time spent, from milliseconds: "8.2 s", "3 min 05 s"."""
    if milliseconds is None:
        return "—"
    seconds = float(milliseconds) / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes:,} min {rest:02d} s"


def when_label(value: Any) -> str:
    """An ISO 8601 time (the report JSON's strings) in UTC to the minute: "2026-11-30 09:22 UTC"."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
