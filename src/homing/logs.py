"""Log lines for `homing serve`: text for a terminal, or one JSON object a line (log_format)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """time, level, logger, message (and the traceback, if any) as one JSON object, so a
    message with a newline or a quote never splits or breaks a record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str) -> None:
    """Route the root logger to stderr in the chosen format, at INFO."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Alembic's start-up lines (its dialect, DDL transactions) say nothing an operator acts on.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Every update request logs a line: skip what no format here shows (the logging
    # module's documented optimisations), above all the caller's frame look-up.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
