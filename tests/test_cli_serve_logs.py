"""What `homing serve` logs at start: its own lines, none of the libraries' chatter."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_start_up_logs_carry_no_library_chatter(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    with socket.socket() as taken:
        # The HTTP port is in use: the server migrates, loads and starts DNS, then stops
        # with its one-line reason, which is all this test needs of it.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env.update(
            HOMING_DATA_DIR=str(tmp_path / "var"),
            HOMING_HTTP_LISTEN=f"127.0.0.1:{port}",
            HOMING_DNS_LISTEN="127.0.0.1:0",
        )
        result = subprocess.run(
            [sys.executable, "-m", "homing", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert "HOMING_HTTP_LISTEN" in result.stderr.splitlines()[-1]
    assert "INFO homing.dns.server: DNS listening" in result.stderr
    assert "alembic" not in result.stderr, result.stderr
