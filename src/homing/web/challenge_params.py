"""dyndns2's ACME challenge parameters, as DuckDNS has them: `txt=VALUE` adds VALUE to the
host's `_acme-challenge` TXT, `clear=true` removes it (or, without `txt`, every value).

Only the host's own secret opens this door (user name: the host's name), and only for its
own challenge name: `hostname`, when given, must be that host.
"""

from __future__ import annotations

from collections.abc import Mapping

from homing.domain.errors import HomingError
from homing.domain.outcomes import Outcome
from homing.service import challenges
from homing.service.context import Homing

CLEAR_WORDS = frozenset({"true", "yes", "1", "on"})


def wants_challenge(params: Mapping[str, str]) -> bool:
    """Whether a dyndns2 request is about the challenge (it then changes no address)."""
    return "txt" in params or "clear" in params


async def challenge_answer(
    homing: Homing, credentials: tuple[str, str], params: Mapping[str, str], client_ip: str
) -> str:
    """The one answer line: `good` (changed), `nochg`, or a refusal word and its reason."""
    user, secret = credentials
    hostname = params.get("hostname", "").strip()
    clear = params.get("clear", "").strip().lower()
    value = params.get("txt")
    if hostname and hostname.lower().rstrip(".") != user.lower().rstrip("."):
        return f"{Outcome.NOHOST.dyndns2} the host's own secret changes only its own challenge"
    if clear and clear not in CLEAR_WORDS and clear not in ("false", "no", "0", "off"):
        return f"{Outcome.BAD_REQUEST.dyndns2} clear is true or false"
    host_id = await challenges.host_by_secret(
        homing.db, user, secret, throttle=homing.throttle, address=client_ip
    )
    if host_id is None:
        return Outcome.BADAUTH.dyndns2
    actor = f"{user[:64]}@{client_ip}"
    try:
        if clear in CLEAR_WORDS:
            found = await challenges.delete_value(homing.db, host_id, value or None, actor=actor)
        elif value:
            found = await challenges.set_value(homing.db, host_id, value, actor=actor)
        else:
            return f"{Outcome.BAD_REQUEST.dyndns2} txt is empty"
    except challenges.ChallengeRefused as exc:
        return f"{exc.outcome.dyndns2} {exc}"
    except HomingError:
        return Outcome.INTERNAL.dyndns2
    return Outcome.GOOD.dyndns2 if found.changed else Outcome.NOCHG.dyndns2
