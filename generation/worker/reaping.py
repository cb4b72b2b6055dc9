"""Failing fine-tuning runs whose worker is gone, from the workers themselves (never from a page).

Each worker does it when it starts (runs still marked running under its own name were killed with its
previous process; runs whose heartbeat stopped anywhere are failed too) and then periodically, on a
daemon thread, so a run whose worker died is failed within FINETUNE_STALE_SECONDS plus one interval
as long as any worker is running.
"""

from __future__ import annotations

import logging
import threading

from django.db import connection

from generation.runs import finetune_runs_fail_for_worker, finetune_runs_fail_stale, finetune_stale_seconds

logger = logging.getLogger(__name__)


def fail_runs_left_by_this_worker(hostname: str) -> list[int]:
    """Fail the runs this worker's previous process left running, and every stale run; their ids."""
    lost = finetune_runs_fail_for_worker(hostname) + finetune_runs_fail_stale()
    if lost:
        logger.warning("fine-tuning runs %s were left running by a lost worker: marked failed", lost)
    return lost


def reap_interval() -> float:
    """Seconds between two passes: a quarter of the stale limit, at most a minute."""
    return max(0.01, min(60.0, finetune_stale_seconds() / 4))


class StaleRunReaper(threading.Thread):
    """A daemon thread that fails stale runs every `interval` seconds until `stop()`.

    It closes its database connection after each pass, so an idle worker holds none between passes
    and a database that restarted meanwhile is simply connected to again."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(name="evalsite-stale-run-reaper", daemon=True)
        self.interval = interval if interval is not None else reap_interval()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.reap_once()

    def reap_once(self) -> list[int]:
        try:
            return finetune_runs_fail_stale()
        except Exception:  # the database may be away for a moment: try again next time
            logger.exception("could not check for stale fine-tuning runs")
            return []
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
