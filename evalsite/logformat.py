"""Log lines a log aggregator can parse: with LOG_FORMAT=json every line is one JSON object.

The same formatter serves the three kinds of process `make serve` starts: Django's LOGGING uses it in
the web processes and management commands (evalsite/settings.py), the Celery worker puts it on the
handlers Celery installs (generation/worker/tasks.py), and gunicorn's own lines (start, workers booted
or lost, access lines when enabled) use it through `--logger-class evalsite.logformat.GunicornLogger`
(the Procfile). Fields: time (UTC, ISO 8601), level, logger, message, pid, source (honcho's process
name, e.g. worker.1, when run by `make serve`), whatever the call passed as `extra` (evalsite's state
change lines pass job_id, chunk, run_id, status, failure_kind, worker), and exception when there is one.

This module reads LOG_FORMAT from the environment, not from Django's settings: gunicorn's master loads
it before Django is set up.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger as _GunicornBaseLogger

# attributes every LogRecord has; anything else on a record came from `extra`
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def log_format() -> str:
    return (os.environ.get("LOG_FORMAT") or "text").strip().lower()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside the message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        source = os.environ.get("HONCHO_PROCESS_NAME")
        if source:
            entry["source"] = source
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class GunicornLogger(_GunicornBaseLogger):
    """gunicorn's logger, whose handlers use the JSON formatter when LOG_FORMAT=json."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if log_format() != "json":
            return
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
