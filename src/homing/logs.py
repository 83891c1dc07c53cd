"""Log lines for `homing serve`: text for a terminal, or one JSON object a line (log_format)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
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


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, with each second's date and time formatted once, not once a line."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second, stamp = self._second
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, stamp)
        return f"{stamp},{int(record.msecs):03d}"


class TurnBuffered(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines an event loop's turn logs with one write.

    Every update request logs a line; written one at a time they cost a system call
    each. On a thread running an event loop a line waits for the end of the loop's
    current turn (`call_soon`), at most MAX_LINES of them; elsewhere it is written at once,
    after any that wait, so the order holds."""

    MAX_LINES = 256

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[str] = []
        # The loop whose turn will write them, and its thread: another loop's line asks its
        # own (the one asked may be closed before its turn ends).
        self._flush_on: asyncio.AbstractEventLoop | None = None
        self._flush_thread = 0

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock
        try:
            self._lines.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self.MAX_LINES:
            self.flush()
            return
        queued = self._flush_on
        if (
            queued is not None
            and self._flush_thread == threading.get_ident()
            and queued.is_running()
        ):
            return  # this thread runs that loop: the line goes with this turn's flush
        # Asked only then: on Python 3.11 each ask is a getpid() system call.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if loop is not queued:
            self._flush_on = loop
            self._flush_thread = threading.get_ident()
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._flush_on = None
            text = "".join(self._lines)
            self._lines.clear()
            try:
                if text:
                    self.stream.write(text)
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": text}))


def configure(log_format: str) -> None:
    """Route the root logger to stderr in the chosen format, at INFO."""
    handler = TurnBuffered()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
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
    logging.logProcesses = log_format == "json"  # a getpid() each; the text shows none
