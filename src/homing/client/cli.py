"""`homing client run|once|status [--config FILE]`.

Exit codes (docs/client.md): 0 success; 1 the configuration or cache cannot be used;
2 command-line usage; 3 a host is stopped by a fatal answer (badauth, nohost, ERR ...);
4 a host is not up to date for a passing reason (server unreachable, back-off, no address).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from homing.client.cache import Cache, CacheError
from homing.client.config import ClientConfig, ConfigError, load_config
from homing.client.daemon import Client, Summary
from homing.client.status import render

DEFAULT_CONFIG = Path("/etc/homing/client.toml")
EXIT_CONFIG = 1
EXIT_STOPPED = 3
EXIT_PENDING = 4

client_app = typer.Typer(help="The update client.", no_args_is_help=True)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", envvar="HOMING_CLIENT_CONFIG", help="The client's TOML configuration"
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log every decision")]


def _fail(message: str, code: int = EXIT_CONFIG) -> None:
    typer.echo(f"homing client: {message}", err=True)
    raise typer.Exit(code)


def _config(path: Path) -> ClientConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from exc


def _logging(verbose: bool) -> None:
    # Under systemd the journal stamps each line itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=stamp + "%(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # httpx logs every request URL at INFO, and the DVR request carries the password in it.
    for noisy in ("httpx", "httpcore", "pyroute2", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@client_app.command()
def run(config: ConfigOption = DEFAULT_CONFIG, verbose: VerboseOption = False) -> None:
    """Keep every host up to date until stopped (SIGTERM, SIGINT); SIGHUP rereads the config."""
    _logging(verbose)
    current = _config(config)

    async def main() -> None:
        nonlocal current
        loop = asyncio.get_running_loop()
        while True:
            stop = asyncio.Event()
            reason: list[str] = []

            def on_signal(name: str, ev: asyncio.Event = stop, why: list[str] = reason) -> None:
                why.append(name)
                ev.set()

            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, on_signal, sig.name)
            await Client(current).run(stop)
            if not reason or any(r != "SIGHUP" for r in reason):
                logging.getLogger("homing.client").info("stopping (%s)", ", ".join(reason))
                return
            try:
                current = load_config(config)
                logging.getLogger("homing.client").info("configuration reloaded")
            except ConfigError as exc:
                logging.getLogger("homing.client").error(
                    "configuration not reloaded, keeping the old one: %s", exc
                )

    try:
        asyncio.run(main())
    except CacheError as exc:
        _fail(str(exc))


@client_app.command()
def once(config: ConfigOption = DEFAULT_CONFIG, verbose: VerboseOption = False) -> None:
    """Update every host whose address changed, once; print one line per host."""
    _logging(verbose)
    cfg = _config(config)
    try:
        results = asyncio.run(Client(cfg).once())
    except CacheError as exc:
        _fail(str(exc))
        return
    for name, (_summary, line) in results.items():
        typer.echo(f"{name}: {line}")
    summaries = {summary for summary, _line in results.values()}
    if Summary.STOPPED in summaries:
        raise typer.Exit(EXIT_STOPPED)
    if Summary.PENDING in summaries:
        raise typer.Exit(EXIT_PENDING)


@client_app.command()
def status(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Each host's last result (ACT, or ERR with its code and meaning), address and time."""
    cfg = _config(config)
    text, code = render(cfg.hosts, Cache(cfg.cache_dir).load(), time.time())
    typer.echo(text)
    raise typer.Exit(code)
