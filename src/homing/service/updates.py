"""The address update use case behind dyndns2 and the DVR endpoint: `update`.

The path of one update, from here down:
1. `update` (this module): the request's size, the source's throttle, then the batch.
2. `Database.write_batched_sync` (store/db.py) queues it for the writer, which runs all
   waiting updates as one call of `UpdateBatcher.run_sync` (service/updatebatch.py).
3. `updaterules.decide` (service/updaterules.py): the host's secret, then per host name
   `updaterules.update_host`: syntax, ownership, status, nochg and abuse, minimum
   interval, change.
4. `changes.apply_changes_sync` (service/changes.py): RRsets, serial and journal rows.
5. The commit; then `Follower.committed` (service/journal.py), a `Database.on_commit`
   hook, applies the journal entries to the zone index (dns/index.py), so DNS answers
   with the change before the caller hears `good`.
A user name that is no host of the batch (a group, an account) goes through
`credentials.resolve_credentials` (service/credentials.py) and then the same batch.
"""

from __future__ import annotations

from homing.domain.addresses import AddressSet, parse_address
from homing.domain.outcomes import Outcome
from homing.service.credentials import UNKNOWN_NAME, resolve_credentials
from homing.service.throttle import Throttle
from homing.service.updatebatch import BATCHER
from homing.service.updaterules import SLOW, Item
from homing.service.updatetypes import (
    HostResult,
    UpdatePolicy,
    UpdateRequest,
    answered,
    host_name,
)
from homing.store.db import Database

__all__ = ["HostResult", "UpdatePolicy", "UpdateRequest", "source_addresses", "update"]


async def update(
    db: Database,
    request: UpdateRequest,
    policy: UpdatePolicy,
    throttle: Throttle | None = None,
) -> list[HostResult]:
    """Apply one update request; one result per requested host, in order.

    The common case (a host's own secret) is decided entirely inside the batched write,
    so concurrent updates cost a few statements per commit, not per request. A source
    the throttle has locked is answered badauth before any secret is looked at. Returns
    once the change is durable and in the zone index (`journal.Follower.committed`).
    """
    requested = request.hostnames
    if requested is not None and len(requested) > policy.max_hosts_per_request:
        return [HostResult(",".join(requested)[:64], Outcome.NUMHOST)]
    if throttle is not None and await throttle.source_wait(request.client_ip) > 0:
        return answered(request, Outcome.BADAUTH)
    username = host_name(request.username)
    if username is not None:
        results = await db.write_batched_sync(BATCHER, Item(request, None, policy, username))
        if results is not SLOW:
            if throttle is not None and results and results[0].outcome is Outcome.BADAUTH:
                await throttle.failed(throttle.source(request.client_ip))  # a wrong secret
            return results
    grant = await resolve_credentials(db, request, throttle)
    if grant is None or grant is UNKNOWN_NAME:
        return answered(request, Outcome.BADAUTH if grant is None else Outcome.NOHOST)
    results = await db.write_batched_sync(BATCHER, Item(request, grant, policy))
    assert results is not None
    return results


def source_addresses(client_ip: str, *, allow_local: bool = False) -> AddressSet:
    """The request's own source address, used when no address is given; it meets the same
    rules as a given one (a link-local peer comes with a scope ID, and a loopback peer is
    most often a proxy whose address is not the client's)."""
    return AddressSet.of(parse_address(client_ip, allow_local=allow_local))
