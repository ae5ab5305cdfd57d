"""Logging set-up: text lines, or with LOG_FORMAT=json one JSON object per line for a log shipper.

Every job event (submitted, started, progress at DEBUG, succeeded, failed, canceled) is one log record
whose JSON line carries the job id, node, mode, model and durations as top-level fields.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sdedge.config import Settings
from sdedge.job_events import JobEvent, JobEvents

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOB_FIELDS = "sdedge_job"  # the LogRecord attribute holding a job event's fields
job_log = logging.getLogger("sdedge.jobs")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, a job event's fields, an exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        line.update(getattr(record, JOB_FIELDS, None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """The root logger's format and level, once per process (later calls change nothing)."""
    if settings.log_format == "json":
        handler = logging.StreamHandler()  # stderr: `sdedge mcp` keeps stdout for the protocol
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=settings.log_level, handlers=[handler])
    else:
        logging.basicConfig(level=settings.log_level, format=TEXT_FORMAT)


def log_job_events(events: JobEvents) -> None:
    """Log every job event of an app as one record (progress at DEBUG, failures at WARNING)."""
    events.subscribe(_log_event)


def _log_event(event: JobEvent) -> None:
    level = {"progress": logging.DEBUG, "failed": logging.WARNING}.get(event.kind, logging.INFO)
    if not job_log.isEnabledFor(level):
        return
    fields = event.to_dict()
    durations = "".join(f" {name}={fields[name]:.3f}s" for name in ("queue_wait_seconds", "run_seconds")
                        if name in fields)
    reason = f": {event.error.get('message')}" if event.error else ""
    job_log.log(level, "job %s %s (%s, %s on %s)%s%s", event.job_id, event.kind, event.mode, event.model, event.node,
                durations, reason, extra={JOB_FIELDS: fields})
