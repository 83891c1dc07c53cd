"""Zone cuts in a zone's records: NS below the apex hands a subtree to other servers
(RFC 1034 4.3.2). Below a cut a zone may hold only glue, the addresses of name servers
its NS records name (RFC 9471); anything else there would never be answered."""

from __future__ import annotations

from collections.abc import Iterable

from homing.domain.errors import HomingError
from homing.domain.names import in_zone
from homing.domain.records import RRsetValue

__all__ = ["AT_CUT_TYPES", "GLUE_TYPES", "check_cuts", "cuts_of", "topmost_cut"]

GLUE_TYPES = frozenset({"A", "AAAA"})
# At the cut itself: the delegation, and the parent's DS for it (RFC 4035 2.4).
AT_CUT_TYPES = frozenset({"NS", "DS"})


def cuts_of(zone: str, values: Iterable[RRsetValue]) -> dict[str, tuple[str, ...]]:
    """The zone cuts among `values` (NS below the apex): name -> its name servers."""
    return {
        v.name: tuple(r.rstrip(".").lower() for r in v.rdatas)
        for v in values
        if v.rtype == "NS" and v.name != zone and v.rdatas
    }


def topmost_cut(name: str, zone: str, cuts: dict[str, tuple[str, ...]]) -> str | None:
    """The cut nearest the apex that `name` lies at or below, None when it is the zone's data."""
    labels = name.split(".")
    for i in range(len(labels) - len(zone.split(".")), 0, -1):
        ancestor = ".".join(labels[i - 1 :])
        if ancestor in cuts:
            return ancestor
    return None


def check_cuts(zone: str, values: Iterable[RRsetValue]) -> dict[str, tuple[str, ...]]:
    """The zone's cuts; HomingError naming the first record below one that is not glue."""
    values = list(values)
    cuts = cuts_of(zone, values)
    if not cuts:
        return cuts
    servers = {server for names in cuts.values() for server in names}
    for v in values:
        if not v.rdatas or not in_zone(v.name, zone) or v.name == zone:
            continue
        cut = topmost_cut(v.name, zone, cuts)
        if cut is None:
            continue
        if v.name == cut and v.rtype in AT_CUT_TYPES:
            continue
        if v.rtype in GLUE_TYPES and v.name in servers:
            continue
        raise HomingError(
            f"{v.name} {v.rtype} lies at or below the delegation {cut}: only NS and DS at the"
            " cut and the addresses of its name servers (glue) may be there"
        )
    return cuts
