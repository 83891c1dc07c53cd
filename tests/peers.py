"""Finding the real peer programs; a missing peer fails the test under HOMING_REQUIRE_PEERS=1."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess

import pytest

PEER_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def required() -> bool:
    return os.environ.get("HOMING_REQUIRE_PEERS", "") not in ("", "0")


def missing(what: str) -> None:
    """Skip, or fail when peers are required (as in CI)."""
    if required():
        pytest.fail(f"peer {what} is required (HOMING_REQUIRE_PEERS=1) but not available")
    pytest.skip(f"peer {what} not available")


def program(name: str) -> str:
    """Path of a peer program, looking in the sbin directories too."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(PEER_DIRS))
    if found is None:
        missing(name)
        raise AssertionError("unreachable")
    return found


def stop(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Stop a process this test started: SIGTERM by PID, SIGKILL if it lingers; its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    return process.returncode
