"""Figures for `make reliability`: every fault and security test states what it checked as one line.

`figure("rating-double-submit", posted=2, stored=1)` prints `scenario=rating-double-submit posted=2
stored=1` and, when RELIABILITY_FIGURES names a file (scripts/reliability.sh sets it), appends the
same line there, so the runner can print one line per scenario after pytest has finished.
No tests in this module.
"""

from __future__ import annotations

import os


def figure(scenario: str, **values: object) -> str:
    line = " ".join([f"scenario={scenario}", *(f"{key}={value}" for key, value in values.items())])
    print(line)
    path = os.environ.get("RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    return line
