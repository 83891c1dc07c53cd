"""Who may NOTIFY a secondary zone here (RFC 1996): its primary, from the primary's
address, signed with the zone's primary key when it has one."""

from __future__ import annotations

import logging
from collections.abc import Callable

import dns.rcode

from homing.dns.access import AccessLoader, ZoneAccess
from homing.dns.tsig import ScopedKey

__all__ = ["ForwardedNotify", "judge_notify"]

log = logging.getLogger(__name__)


def judge_notify(
    zone_name: str, settings: ZoneAccess | None, peer: str, signer: ScopedKey | None
) -> dns.rcode.Rcode:
    """NOERROR for a NOTIFY from the zone's primary, signed with its key if it has one;
    NOTAUTH when the zone is not a secondary zone here; REFUSED from anyone else."""
    if settings is None or settings.primary is None:
        return dns.rcode.Rcode.NOTAUTH
    if peer.split("%", 1)[0] != settings.primary[0]:
        log.info("NOTIFY of %s from %s refused: not its primary %s", zone_name, peer,
                 settings.primary)  # fmt: skip
        return dns.rcode.Rcode.REFUSED
    wanted = settings.primary_key
    if wanted is not None and (signer is None or signer.name != wanted):
        log.info("NOTIFY of %s from %s refused: not signed with key %s", zone_name, peer,
                 wanted)  # fmt: skip
        return dns.rcode.Rcode.REFUSED
    return dns.rcode.Rcode.NOERROR


class ForwardedNotify:
    """The NOTIFY judge of workers other than 0 (`serve --workers`): the same rules, and an
    accepted NOTIFY is handed to worker 0, which pulls the secondary zones."""

    def __init__(self, access: AccessLoader, forward: Callable[[str], None]) -> None:
        self.access = access
        self.forward = forward

    def __call__(self, zone_name: str, peer: str, signer: ScopedKey | None) -> dns.rcode.Rcode:
        rcode = judge_notify(zone_name, self.access.current.zones.get(zone_name), peer, signer)
        if rcode == dns.rcode.Rcode.NOERROR:
            log.info("NOTIFY of %s from %s accepted; passed on to worker 0", zone_name, peer)
            self.forward(zone_name)
        return rcode
