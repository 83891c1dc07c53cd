"""DO and CD in the answers the dispatcher signs (a secondary's signed SOA check)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import pytest

from homing.dns.access import AccessLoader
from homing.dns.answer import Responder
from homing.dns.dispatch import Dispatcher
from homing.dns.index import ZoneIndex
from homing.service import zones
from homing.service.journal import Follower
from homing.service.keys import add_key
from homing.store.db import Database

ZONE = "flags.example.net"


@pytest.mark.parametrize("want_dnssec", [True, False])
async def test_a_signed_query_gets_do_and_cd_back(db: Database, want_dnssec: bool) -> None:
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    key = await add_key(db, "flags-key", zone=ZONE)
    index = ZoneIndex()
    follower = Follower(db, index)
    try:
        await follower.sync()
        access = AccessLoader(db)
        await access.reload()
        dispatcher = Dispatcher(index, db, access, Responder(index))
        keyring = dns.tsigkeyring.from_text({key.name: (key.algorithm, key.secret)})
        q = dns.message.make_query(ZONE, "SOA", use_edns=0, want_dnssec=want_dnssec)
        q.flags |= dns.flags.Flag.CD
        q.use_tsig(keyring, key.name)
        [wire] = list(await dispatcher.handle(q.to_wire(), "127.0.0.1", tcp=False))
        r = dns.message.from_wire(wire, keyring=keyring, request_mac=q.mac)
        assert r.rcode() == dns.rcode.Rcode.NOERROR and r.answer and r.had_tsig
        assert r.flags & dns.flags.Flag.CD
        assert bool(r.ednsflags & dns.flags.EDNSFlag.DO) == want_dnssec
    finally:
        db.on_commit.remove(follower.committed)
