"""The update endpoints: dyndns2 (/nic/update), the DVR request, and /checkip."""

from __future__ import annotations

import base64
import html
import logging
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Scope

from homing.domain.addresses import AddressSet
from homing.domain.errors import HomingError, InvalidAddress
from homing.domain.outcomes import Outcome
from homing.service.context import Homing
from homing.service.meters import METERS
from homing.service.push import confirm_pushed
from homing.service.updates import HostResult, UpdateRequest, source_addresses, update
from homing.web.challenge_params import challenge_answer, wants_challenge
from homing.web.clientip import ClientAddress
from homing.web.dyndns2params import address_set, hostnames_of, names_addresses, not_offered

log = logging.getLogger(__name__)

# ddclient misreads chunked bodies: every answer here is a plain body with Content-Length.
TEXT = "text/plain; charset=utf-8"
CHALLENGE = 'Basic realm="homing"'  # WWW-Authenticate of a badauth answer


def query_of(scope: Scope) -> dict[str, str]:
    """The query string's parameters, the last of repeated ones winning, as Starlette reads
    them, without its multi-dict (the update path reads two or three of them). One with
    nothing escaped (the common update: `hostname=...&myip=...`) is split as parse_qsl
    would split it, without its unquoting."""
    text = scope["query_string"].decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    return {name: value for name, _, value in (f.partition("=") for f in text.split("&") if f)}


def header(scope: Scope, name: bytes) -> str | None:
    """The first header `name` (lower case, as ASGI gives names) of a scope, or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def credentials_of(scope: Scope, params: Mapping[str, str]) -> tuple[str, str] | None:
    """user and password from `Authorization: Basic`, or the username/password params."""
    scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == "basic" and token:
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None
    param_user = params.get("username") or params.get("user")
    param_password = params.get("password") or params.get("pass")
    if param_user and param_password:
        return param_user, param_password
    return None


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _addresses(raw: str | None, client_ip: str, allow_local: bool) -> AddressSet:
    """The DVR's `ip` as a v4/v6 list; absent or empty means the request's source address."""
    texts = _split(raw)
    if texts:
        return AddressSet.parse(texts, allow_local=allow_local)
    return source_addresses(client_ip, allow_local=allow_local)


class UpdateEndpoints:
    def __init__(self, homing: Homing, client_address: ClientAddress) -> None:
        self.homing = homing
        self.client_address = client_address

    async def dyndns2(self, request: Request) -> Response:
        """GET /nic/update: one answer line per requested host, 200 (clients read words)
        but for a request without credentials (401 with a Basic challenge). The served app
        answers these GETs in its UpdateFront (app.py) with dyndns2_answer below, the same
        rules without a Request; this form is the router's, for an app without that front."""
        status, body = await self.dyndns2_answer(request.scope)
        return PlainTextResponse(
            body,
            status_code=status,
            media_type=TEXT,
            headers={"WWW-Authenticate": CHALLENGE} if status == 401 else None,
        )

    async def dyndns2_answer(self, scope: Scope) -> tuple[int, str]:
        """dyndns2() as a status and a body: the update fast path, called by UpdateFront for
        every GET on the dyndns2 paths (app.py)."""
        client_ip = self.client_address.of_scope(scope)
        params = query_of(scope)
        credentials = credentials_of(scope, params)
        if credentials is None:
            return 401, "badauth\n"
        if wants_challenge(params):
            return 200, await challenge_answer(self.homing, credentials, params, client_ip) + "\n"
        hostnames = hostnames_of(params)
        refused = Outcome.BAD_REQUEST if not_offered(params) is not None else None
        try:
            allow_local = self.homing.policy.allow_local_addresses
            if names_addresses(params):
                addresses = address_set(params, allow_local=allow_local)
            else:
                addresses = source_addresses(client_ip, allow_local=allow_local)
        except InvalidAddress:
            refused = Outcome.BAD_ADDRESS
        if refused is not None:  # nothing changes: one answer line per host named
            return 200, "\n".join([refused.dyndns2] * max(1, len(hostnames or []))) + "\n"
        agent = header(scope, b"user-agent") or ""
        results = await self._update(credentials, hostnames, addresses, "dyndns2", client_ip, agent)
        if results is None:
            return 200, Outcome.INTERNAL.dyndns2 + "\n"
        return 200, "\n".join(r.dyndns2_line() for r in results) + "\n"

    async def dvr(self, request: Request) -> Response:
        """GET|POST /dvr/update?host=&password=[&ip=]: `ACT` or `ERR 0x8000800N`."""
        values = query_of(request.scope)
        if request.method == "POST":
            try:
                form = await request.form(max_files=0)  # a file part is no DVR request
            except (MultiPartException, HTTPException, UnicodeDecodeError, ValueError):
                return _dvr(Outcome.BAD_REQUEST)  # a malformed body is the client's fault
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
        host = values.get("host", "").strip()
        password = values.get("password", "")
        if not host:
            return _dvr(Outcome.BAD_REQUEST)
        if not password:
            return _dvr(Outcome.BADAUTH)
        client_ip = self.client_address.of(request)
        try:
            allow_local = self.homing.policy.allow_local_addresses
            addresses = _addresses(values.get("ip"), client_ip, allow_local)
        except InvalidAddress:
            return _dvr(Outcome.BAD_ADDRESS)
        agent = request.headers.get("user-agent", "")
        results = await self._update((host, password), [host], addresses, "dvr", client_ip, agent)
        if results is None:
            return _dvr(Outcome.INTERNAL)
        return _dvr(results[0].outcome)

    async def _update(
        self,
        credentials: tuple[str, str],
        hostnames: list[str] | None,
        addresses: AddressSet,
        via: str,
        client_ip: str,
        agent: str,
    ) -> list[HostResult] | None:
        update_request = UpdateRequest(
            username=credentials[0],
            password=credentials[1],
            hostnames=hostnames,
            addresses=addresses,
            via=via,
            client_ip=client_ip,
            agent=agent,
        )
        started = time.perf_counter()
        try:
            results = await update(
                self.homing.db, update_request, self.homing.policy, self.homing.throttle
            )
        except HomingError as exc:
            log.warning("update failed: %s", exc)
            METERS.update(via, [Outcome.INTERNAL.dyndns2], time.perf_counter() - started)
            return None
        waiter = self.homing.push_waiter
        if waiter is not None:
            # Committed here; `good` only once the zone's external primary has it too.
            results = await confirm_pushed(results, waiter, self.homing.settings.push_wait)
        answers = [r.outcome.dyndns2 for r in results]
        METERS.update(via, answers, time.perf_counter() - started)
        # One line per request for the operator: which hosts, what they were answered.
        log.info(
            "update %s: %s via %s from %s",
            ",".join(r.hostname for r in results),
            ",".join(answers),
            via,
            client_ip,
        )
        return results

    async def checkip(self, request: Request) -> Response:
        """The caller's address as ddclient and inadyn parse it."""
        ip = html.escape(self.client_address.of(request))
        body = (
            "<html><head><title>Current IP Check</title></head>"
            f"<body>Current IP Address: {ip}</body></html>\n"
        )
        return Response(body, media_type="text/html; charset=utf-8")

    async def myip(self, request: Request) -> Response:
        """The caller's address alone, as plain text (nsupdate.info's form)."""
        return PlainTextResponse(self.client_address.of(request), media_type=TEXT)

    async def checkip_json(self, request: Request) -> Response:
        return JSONResponse({"ip": self.client_address.of(request)})


def _dvr(outcome: Outcome) -> Response:
    return PlainTextResponse(outcome.dvr + "\n", media_type=TEXT)
