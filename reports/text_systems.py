"""The text report's lines for a campaign of more than two systems (issue 17), after the leaderboard:
what the two-system figures cover, the win matrix, each system against the pre-trained baseline, the
rankings per task, accuracy per system, and the kept epochs of the run against validation loss."""

from __future__ import annotations

from typing import Any

from reports.labels import humanize, plural, role_label


def _ci(ci: list[float] | None, fmt: str = "{:+.2f}") -> str:
    return f"95% CI {fmt.format(ci[0])} to {fmt.format(ci[1])}" if ci else "no CI"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _statement(statement: dict[str, Any]) -> str:
    if statement.get("refused"):
        return f"no statement: {humanize(statement.get('reason') or '')}"
    return humanize(statement.get("text") or "")


def win_matrix_lines(section: dict[str, Any]) -> list[str]:
    """Rows beat columns: prompts won of prompts decided, per ordered pair of systems."""
    cells = section["win_matrix"]["cells"]
    names = [n for n in section["systems"] if n in cells]
    width = max(12, *(len(role_label(n)) for n in names))
    lines = [
        "  Win matrix (row beat column: share of decided prompts won, prompts compared)",
        "    " + " " * width + "".join(f"  {role_label(n):>{width}}" for n in names),
    ]
    for row in names:
        out = []
        for col in names:
            cell = cells[row].get(col) if col != row else None
            text = "—" if cell is None else f"{_pct(cell['share'])} n={cell['n_prompts']}"
            out.append(f"  {text:>{width}}")
        lines.append(f"    {role_label(row):<{width}}" + "".join(out))
    return lines


def baseline_lines(section: dict[str, Any]) -> list[str]:
    """Each system's mean score difference against the baseline, with its interval and Holm p."""
    baseline = section["baseline"]
    base = role_label(baseline["system"])
    lines = [f"  Against {base} (mean score difference over shared prompts, Holm-adjusted)"]
    for name, b in baseline["comparisons"].items():
        d = "n/a" if b["difference"] is None else f"{b['difference']:+.2f}"
        p = "n/a" if b["p_holm"] is None else f"{b['p_holm']:.3g}"
        n = plural(b["n_prompts"], "prompt")
        lines.append(f"    {role_label(name):<12} {d} ({_ci(b['ci95'])}; p_holm={p}; {n})")
        lines.append(f"      {_statement(b['claim'])}")
    return lines


def task_lines(section: dict[str, Any]) -> list[str]:
    lines = ["  By task"]
    for task, ranking in section["by_task"].items():
        order = [
            f"{role_label(r['system'])} {r['strength']:+.2f}"
            for r in ranking["leaderboard"]["rows"]
            if r["strength"] is not None
        ]
        lines.append(
            f"    {task} ({plural(ranking['n_prompts'], 'prompt')}): {', '.join(order) or 'not ranked'}"
        )
        lines.append(f"      {_statement(ranking['leaderboard']['statement'])}")
    return lines


def accuracy_lines(section: dict[str, Any]) -> list[str]:
    if not section.get("accuracy"):
        return []
    lines = ["  Accuracy by system (majority verdict per answer, Wilson 95% CI)"]
    for task, block in section["accuracy"].items():
        figures = [
            f"{role_label(name)} {_pct(a['accuracy'])}"
            + (f" ({_ci(a['ci95'], '{:.0%}')}, n={a['n']})" if a["ci95"] else f" (n={a['n']})")
            for name, a in block.items()
        ]
        lines.append(f"    {task}: {'; '.join(figures)}")
    return lines


def checkpoint_lines(section: dict[str, Any]) -> list[str]:
    """The kept epochs of the run: validation loss beside human strength, and the statement."""
    block = section.get("checkpoints")
    if not block:
        return []
    if not block.get("rows"):
        return [f"  Checkpoints vs validation loss: {humanize(block.get('reason') or '')}"]
    lines = [
        "  Checkpoints vs validation loss (kept = lowest validation loss)",
        f"    {'epoch':>5}  {'system':<14} {'val loss':>9}  {'strength':>8}  95% CI",
    ]
    for r in block["rows"]:
        strength = "n/a" if r["strength"] is None else f"{r['strength']:+.2f}"
        kept = "  kept" if r["kept"] else ""
        lines.append(
            f"    {r['epoch']:>5}  {role_label(r['system']):<14} {r['val_loss']:>9.4f}  {strength:>8}  "
            f"{_ci(r['ci95']) if r['ci95'] else r.get('reason', 'no CI')}{kept}"
        )
    lines.append(f"    {_statement(block['statement'])}")
    lines.extend(f"    note: {note}" for note in block.get("notes") or [])
    return lines


def many_system_lines(section: dict[str, Any]) -> list[str]:
    """Every K-system block after the leaderboard; [] for a two-system campaign's section."""
    if not section.get("scope"):
        return []
    lines = [f"  {section['scope']['text']}"]
    if "win_matrix" in section:
        lines += [*win_matrix_lines(section), *baseline_lines(section), *task_lines(section)]
    return [*lines, *accuracy_lines(section), *checkpoint_lines(section)]
