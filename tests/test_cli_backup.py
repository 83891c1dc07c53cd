"""`homing backup FILE` / `homing restore FILE [--force]` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def homing(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    env["HOMING_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "homing", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_backup_then_restore_refuses_a_filled_store_unless_forced(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    assert homing(source, "zone", "add", "dyn.example.net").returncode == 0
    dump = tmp_path / "store.jsonl"
    made = homing(source, "backup", str(dump))
    assert made.returncode == 0, made.stderr
    assert "backup of revision" in made.stdout and dump.is_file()

    restored = homing(target, "restore", str(dump))
    assert restored.returncode == 0, restored.stderr
    assert "dyn.example.net" in homing(target, "zone", "list").stdout

    again = homing(target, "restore", str(dump))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        "homing: the store is not empty: restore into a new one, or use --force"
    )
    assert homing(target, "restore", str(dump), "--force").returncode == 0

    missing = homing(target, "restore", str(tmp_path / "nothing.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
