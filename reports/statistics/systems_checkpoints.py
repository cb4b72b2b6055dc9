"""Training meets judgment: the epochs of one fine-tuning run, each a system in the ranking, beside
their validation loss, and whether the epoch early stopping kept (the lowest validation loss) is also
the one the raters prefer.

Two epochs are told apart by the ranking's own rule when the full `rank_systems` result is given (its
pairwise bootstrap differences, Holm-adjusted), and otherwise, from a plain {system: {"strength",
"ci95"}} mapping, when their 95% strength intervals do not overlap (a stricter rule: two intervals can
overlap while the difference is clear). The statement says "cannot tell" whenever the kept epoch is
not told apart from an epoch the raters may prefer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METHOD = (
    "kept epoch = the lowest validation loss (the earliest on a tie, as early stopping keeps the first "
    "best); strength and 95% interval of each epoch's system from the ranking; two epochs are told apart "
    "by the ranking's pairwise rule (bootstrap difference, Holm-adjusted) when the full ranking is "
    "given, else when their strength intervals do not overlap"
)


def _apart_rule(strengths: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
    """The per-system figures and a function (a, b) -> told apart, from either input shape."""
    if "strengths" in strengths and "pairwise" in strengths:
        told = {frozenset((p["higher"], p["lower"])): p["told_apart"] for p in strengths["pairwise"]}
        return strengths["strengths"], lambda a, b: told.get(frozenset((a, b)), False)
    figures = strengths

    def overlap_rule(a: str, b: str) -> bool:
        ca, cb = figures[a].get("ci95"), figures[b].get("ci95")
        return bool(ca and cb and (ca[0] > cb[1] or cb[0] > ca[1]))

    return figures, overlap_rule


def _names(epochs: list[int], systems: dict[int, str]) -> str:
    listed = [f"epoch {e} ({systems[e]})" for e in epochs]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def _verdict(rows: list[dict[str, Any]], kept: dict[str, Any], apart: Any) -> dict[str, Any]:
    """The plain-words statement from the rated epochs' rows and the kept epoch's row."""
    systems = {r["epoch"]: r["system"] for r in rows}
    others = [r for r in rows if r["epoch"] != kept["epoch"] and r["strength"] is not None]
    if not others:
        return {
            "verdict": None,
            "text": None,
            "refused": True,
            "reason": "no other epoch was rated: nothing to compare",
        }
    k_name = (
        f"epoch {kept['epoch']} ({kept['system']}, validation loss {kept['val_loss']:.4g}, strength "
        f"{kept['strength']:+.2f}), the one early stopping kept"
    )
    better = [r for r in others if r["strength"] > kept["strength"] and apart(r["system"], kept["system"])]
    if better:
        best = max(better, key=lambda r: r["strength"])
        text = (
            f"The raters prefer epoch {best['epoch']} ({best['system']}, validation loss "
            f"{best['val_loss']:.4g}, strength {best['strength']:+.2f}) to {k_name}, and the data tell "
            "them apart: validation loss and human preference disagree on this run."
        )
        return {"verdict": "disagree", "text": text, "refused": False, "reason": None}
    unclear = [r["epoch"] for r in others if not apart(r["system"], kept["system"])]
    if not unclear:
        text = (
            f"The raters prefer {k_name}: its strength is above every other rated epoch's and the data "
            "tell it apart from each, so validation loss and human preference agree on this run."
        )
        return {"verdict": "agree", "text": text, "refused": False, "reason": None}
    below = [r["epoch"] for r in others if r["epoch"] not in unclear]
    text = (
        f"The data cannot tell whether the raters prefer {k_name}: it cannot be told apart from "
        f"{_names(unclear, systems)}."
    )
    if below:
        text += f" It is preferred to {_names(below, systems)}."
    return {"verdict": "cannot_tell", "text": text, "refused": False, "reason": None}


def checkpoint_vs_loss(
    strengths: Mapping[str, Any], val_loss_by_epoch: Mapping[int, tuple[str, float]]
) -> dict[str, Any]:
    """The table (epoch, system, validation loss, strength, 95% CI, kept) in epoch order and the
    statement. `strengths`: a `rank_systems` result, or {system: {"strength", "ci95"}};
    `val_loss_by_epoch`: {epoch: (system name, validation loss)}. Raises ValueError when empty."""
    if not val_loss_by_epoch:
        raise ValueError("val_loss_by_epoch is empty: no epoch to compare")
    figures, apart = _apart_rule(strengths)
    rows = []
    for epoch in sorted(val_loss_by_epoch):
        system, loss = val_loss_by_epoch[epoch]
        figure = figures.get(system) or {}
        row: dict[str, Any] = {
            "epoch": int(epoch),
            "system": system,
            "val_loss": float(loss),
            "strength": figure.get("strength"),
            "ci95": figure.get("ci95"),
        }
        if row["strength"] is None:
            row["reason"] = figure.get("reason", "this epoch's system is not in the ranking")
        rows.append(row)
    kept = min(rows, key=lambda r: (r["val_loss"], r["epoch"]))
    for row in rows:
        row["kept"] = row is kept
    out: dict[str, Any] = {"method": METHOD, "rows": rows, "kept_epoch": kept["epoch"]}
    rated = [r for r in rows if r["strength"] is not None]
    out["preferred_epoch"] = max(rated, key=lambda r: r["strength"])["epoch"] if rated else None
    if kept["strength"] is None:
        reason = f"the kept epoch {kept['epoch']} ({kept['system']}) has no strength: {kept['reason']}"
        out["statement"] = {"verdict": None, "text": None, "refused": True, "reason": reason}
        return out
    out["statement"] = _verdict(rows, kept, apart)
    board = strengths.get("leaderboard") if "pairwise" in strengths else None
    refused = board["statement"] if board and board["statement"]["refused"] else None
    if refused and out["statement"]["text"]:
        out["statement"] = {
            "verdict": None,
            "text": None,
            "refused": True,
            "reason": refused["reason"],
            "would_read": out["statement"]["text"],
        }
    return out
