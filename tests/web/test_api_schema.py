"""schemathesis against the REST API's OpenAPI document, in process, over a fresh SQLite store.

Every operation gets generated requests (valid and invalid); every answer must be
documented (status code, content type, body schema) and none may be a 5xx.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from homing.config import Settings
from homing.domain.errors import AccountError
from homing.service import accounts, hosts, tokens, zones
from homing.service.context import Homing
from homing.store.db import Database
from homing.web.app import create_app

Scope = dict[str, Any]
MAX_EXAMPLES = 300  # per operation; the whole run stays well under a minute
# One store for this run of the tests, in a folder removed when the process ends.
_FOLDER = tempfile.TemporaryDirectory(prefix="homing-schemathesis-")
_DATA = Path(_FOLDER.name)
# The seeded account's token (every action, every host), made at start-up.
TOKEN: dict[str, str] = {}


class WithStore:
    """The app plus an ASGI lifespan: migrate (and seed) the store at start, close it at the end.

    schemathesis runs the app on its own event loop thread and drives the lifespan
    per test, so the store is opened and closed on that loop.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.app = create_app(Homing(Settings(data_dir=_DATA), db))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.db.migrate()
                # A taken user ID and email, so duplicates get answered too (seeded once).
                with contextlib.suppress(AccountError):
                    account = await accounts.create_account(
                        self.db, "taken", "taken@example.org", "correct horse battery"
                    )
                    # A zone, a host and a token, so the authenticated operations get past
                    # the 401 and reach their own answers.
                    await zones.add_zone(self.db, "dyn.example.net")
                    await hosts.add_host(self.db, "cam.dyn.example.net", "taken")
                    created = await tokens.create_token(
                        self.db, account, "schemathesis", tokens.ACTIONS
                    )
                    TOKEN["value"] = created.secret
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


APP = WithStore(Database(f"sqlite+aiosqlite:///{_DATA / 'homing.db'}"))
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree
    derandomize=True,  # the same examples every run: a failure here is reproducible
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: Any) -> None:
    # Every built-in check (no 5xx, documented status codes, content types, headers and
    # bodies, invalid data rejected) except one: schema-valid sign-ups may still be refused
    # (422) for rules a schema cannot state, e.g. a confirmation that differs.
    headers = {"Authorization": f"Bearer {TOKEN['value']}"} if TOKEN else None
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
