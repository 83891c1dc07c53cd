"""`homing backup FILE` and `homing restore FILE`; registered on the app of homing.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from homing.cli import app, run_with_store
from homing.service import backup as backups


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the backup (JSON lines)")],
) -> None:
    """Write the whole store to FILE, consistent while serving (docs/operations.md)."""
    summary = run_with_store(lambda h: backups.backup(h.db, file))
    typer.echo(f"backup of revision {summary.revision}: {summary.total} rows in {file}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `homing backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace what the store holds (otherwise refused)")
    ] = False,
) -> None:
    """Load a backup into this store (SQLite or PostgreSQL, either way), in one transaction."""
    summary = run_with_store(lambda h: backups.restore(h.db, file, force=force))
    typer.echo(f"restored {summary.total} rows of revision {summary.revision} from {file}")
