"""The Jinja2 environment: autoescaping, strict undefined names, and the portal's filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from homing.service.portal import Plan
from homing.web.portal import csrf

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"


def when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 minutes ago', '3 days ago'."""
    if value is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return ""


def interval(seconds: int) -> str:
    """A plan's minimum update interval in words."""
    if seconds <= 0:
        return "none"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def price(plan: Plan) -> str:
    if plan.price_cents == 0:
        return "Free"
    return f"{plan.price_cents // 100}.{plan.price_cents % 100:02d} {plan.currency} / {plan.period}"


def _context(request: Request) -> dict[str, Any]:
    session = request.session
    return {
        "user": session.get("user") if isinstance(session.get("uid"), int) else None,
        "is_admin": session.get("admin") is True,
        "flash": session.pop("flash", None),
        "csrf_token": csrf.csrf_token(request),
        "path": request.url.path,
    }


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update({"when": when, "ago": ago, "interval": interval, "price": price})
    return Jinja2Templates(env=env, context_processors=[_context])
