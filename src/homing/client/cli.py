"""`homing client run|once|status` (filled in by the client work)."""

from __future__ import annotations

import typer

client_app = typer.Typer(help="The update client.", no_args_is_help=True)
