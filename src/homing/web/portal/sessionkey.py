"""The session signing key: random on first start, kept in `{data_dir}/session.key` (0600)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 32


def load_or_create(path: Path) -> str:
    """The key in `path`, creating it atomically (several workers may start at once)."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another worker won: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others; restricting it to its owner", path)
        path.chmod(0o600)
    key = path.read_text().strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"{path}: session key too short; delete the file to make a new one")
    return key


class SessionKey:
    """Loads the key on first use, so building the app touches no file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: str | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = load_or_create(self.path)
        return self._key
