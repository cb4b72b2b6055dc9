"""The text report's later sections (`report --format text`): the leaderboard of the `systems` section,
the disagreement queue and the annotators' comments. Self-contained (labels only), so reports/text.py
stays one screenful per section."""

from __future__ import annotations

from typing import Any

from reports.labels import humanize, plural, role_label
from reports.text_systems import many_system_lines

LISTED = 10  # pairs and comments printed; the JSON report has them all


def _interval(ci: list[float] | None) -> str:
    return f"95% CI {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else "no CI"


def across_raters_lines(block: dict[str, Any] | None) -> list[str]:
    """The score difference's interval that counts raters as a sample too (would a new panel agree?)."""
    if not block:
        return []
    k = block["n_annotators"]
    ci = _interval(block["ci95"]) if block["ci95"] else f"no CI: {block.get('reason')}"
    p = f", p={block['p']:.3g}" if block["p"] is not None else ""
    return [
        f"  over new raters   {ci} ({plural(k, 'annotator')} as a sample; two-way cluster t, df={block['df']}{p})",
        f"  method: {block['method']}",
    ]


def systems_lines(systems: dict[str, Any] | None) -> list[str]:
    """The leaderboard: each system's Bradley–Terry strength with its interval and rank interval."""
    if not systems:
        return []
    if systems.get("reason"):
        reason = humanize(systems["reason"])
        return [f"Leaderboard (Bradley–Terry): {reason}", *many_system_lines(systems)]
    lines = [
        f"Leaderboard (Bradley–Terry strength, log scale centred on 0; basic bootstrap over prompts, "
        f"{systems['n_resamples']:,} resamples)"
    ]
    for row in systems["leaderboard"]["rows"]:
        if row["strength"] is None:
            reason = humanize(row.get("reason") or "")
            lines.append(f"  -. {role_label(row['system']):<12} not ranked: {reason}")
            continue
        lo, hi = row.get("rank_ci95") or (row["rank"], row["rank"])
        lines.append(
            f"  {row['rank']}. {role_label(row['system']):<12} {row['strength']:+.2f}  ({_interval(row['ci95'])}; "
            f"rank {lo}–{hi}; {plural(row['n_prompts'], 'prompt')})"
        )
    statement = systems["leaderboard"]["statement"]
    if statement["refused"]:
        lines.append(f"  no statement: {humanize(statement['reason'])}")
    else:
        lines.append(f"  {humanize(statement['text'])}")
    return [*lines, *many_system_lines(systems)]


def disagreement_lines(report: dict[str, Any]) -> list[str]:
    """The pairs whose raters disagree most (the HTML report links each to the unblinded pair page)."""
    rows = report.get("disagreements") or []
    total = report.get("n_disagreeing_pairs", 0)
    if not rows:
        return ["Disagreement queue: no pair rated twice or more disagrees yet"]
    lines = [
        f"Disagreement queue: {plural(total, 'pair')} where raters disagree; the first {min(LISTED, len(rows))}"
    ]
    for row in rows[:LISTED]:
        splits = [
            name
            for name, flag in (
                ("verdicts split", row.get("split_verdicts")),
                ("preference split", row.get("split_preference")),
            )
            if flag
        ]
        gold = ", gold" if row.get("gold") else ""
        if row.get("systems"):  # a campaign of more than two systems: the pair's two, in job order
            gold += f"; {' vs '.join(role_label(name) for name in row['systems'])}"
        lines.append(
            f"  pair {row['pair']} ({row.get('prompt_external_id') or '-'}, {row.get('task')}{gold}): score spread "
            f"{row.get('score_spread', 0):.1f} over {plural(row.get('n_ratings', 0), 'rating')}"
            + (f"; {', '.join(splits)}" if splits else "")
        )
    return lines


def comment_lines(comments: list[dict[str, Any]] | None) -> list[str]:
    """The annotators' comments, newest first, each with its pair and pseudonymous rater."""
    comments = comments or []
    if not comments:
        return ["Comments: none"]
    lines = [f"Comments: {plural(len(comments), 'comment')}; the newest {min(LISTED, len(comments))}"]
    for c in comments[:LISTED]:
        text = " ".join(str(c.get("comment", "")).split())
        if len(text) > 160:
            text = text[:157] + "…"
        lines.append(f"  pair {c['pair']} ({c.get('task')}), {c.get('rater')}: {text}")
    return lines
