"""docs/operations.md lists every setting, and no setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from homing.config import Settings

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def table_rows() -> list[str]:
    return [line for line in OPERATIONS.read_text().splitlines() if line.startswith("| `HOMING_")]


def test_every_setting_has_a_row() -> None:
    rows = "\n".join(table_rows())
    missing = [
        f"HOMING_{name.upper()}"
        for name in Settings.model_fields
        if f"`HOMING_{name.upper()}`" not in rows
    ]
    assert missing == [], f"add these to the settings table of docs/operations.md: {missing}"


def test_every_row_is_a_setting() -> None:
    known = {f"HOMING_{name.upper()}" for name in Settings.model_fields}
    named = set(
        re.findall(r"`(HOMING_[A-Z0-9_]+)`", "\n".join(row.split("|")[1] for row in table_rows()))
    )
    assert named - known == set()
