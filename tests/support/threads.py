"""For tests whose code under test writes from a thread of its own (the worker's heartbeat, the stale-run
reaper) while the test reads the same rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError

T = TypeVar("T")


def settled(read: Callable[[], T]) -> T:
    """`read()`, again while the test database says a table is locked: SQLite's shared in-memory test
    database refuses a read while another thread's connection writes (PostgreSQL never does)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return read()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
