"""The `systems` section laid out for the report page where a template cannot look a cell up by two
names: the win matrix as a square table (rows and columns in job order, the diagonal empty)."""

from __future__ import annotations

from typing import Any


def win_matrix_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """[{system, cells: [cell of the row system against each column system, None on the diagonal]}]
    in the section's system order; [] when the section has no win matrix."""
    section = report.get("systems") or {}
    cells = (section.get("win_matrix") or {}).get("cells") or {}
    names = [n for n in section.get("systems") or [] if n in cells]
    return [
        {"system": row, "cells": [None if col == row else cells[row].get(col) for col in names]}
        for row in names
    ]
