"""Throttle windows: COUNT attempts per SECONDS, written "5/900,20/86400" in the settings."""

from __future__ import annotations

from typing import NamedTuple


class Window(NamedTuple):
    """`limit` attempts per `period` seconds."""

    limit: int
    period: int

    @property
    def interval(self) -> float:
        return self.period / self.limit


def parse_windows(text: str) -> tuple[Window, ...]:
    """ "5/900,20/86400" -> windows; ValueError with the reason for anything else."""
    windows = []
    for part in text.split(","):
        limit, sep, period = part.strip().partition("/")
        try:
            window = Window(int(limit), int(period))
        except ValueError:
            window = None
        if not sep or window is None or window.limit < 1 or window.period < 1:
            raise ValueError(f"a throttle window is COUNT/SECONDS, both positive: {part!r}")
        windows.append(window)
    if not windows or len({w.period for w in windows}) != len(windows):
        raise ValueError(f"throttle windows need distinct periods: {text!r}")
    return tuple(windows)
