"""The web portal: server-rendered pages (Jinja2) that work without JavaScript.

`portal_routes(homing)` gives the routes the app mounts; each carries the portal's
middleware (security headers, signed session, CSRF check), so the update protocols
and the REST API stay untouched by them.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from homing.service.context import Homing
from homing.web.portal.csrf import CSRFProtection
from homing.web.portal.headers import SecurityHeaders
from homing.web.portal.pages import Endpoint, Portal
from homing.web.portal.sessionkey import SessionKey
from homing.web.portal.sessions import Sessions
from homing.web.portal.templating import STATIC
from homing.web.portal.throttle import LoginThrottle

__all__ = ["Portal", "portal_routes"]


def portal_routes(homing: Homing, *, throttle: LoginThrottle | None = None) -> list[BaseRoute]:
    portal = Portal(homing, throttle)
    key = SessionKey(homing.settings.data_dir / "session.key")
    stack = [
        Middleware(SecurityHeaders),
        Middleware(Sessions, key=key, trusted_proxies=homing.settings.trusted_proxies),
        Middleware(CSRFProtection, reject=portal.csrf_rejected),
    ]

    def page(path: str, endpoint: Endpoint, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, portal.guard(endpoint), methods=list(methods), middleware=stack)

    both = ("GET", "POST")
    return [
        page("/", portal.home),
        page("/pricing", portal.pricing),
        page("/signup", portal.signup, both),
        page("/login", portal.login, both),
        page("/logout", portal.logout, both),
        page("/dashboard", portal.dashboard),
        page("/hosts/new", portal.host_new, both),
        page("/hosts/availability", portal.host_availability),
        page("/hosts/{host_id:int}/delete", portal.host_delete, both),
        Mount(
            "/static",
            app=StaticFiles(directory=STATIC),
            name="static",
            middleware=[Middleware(SecurityHeaders)],
        ),
    ]
