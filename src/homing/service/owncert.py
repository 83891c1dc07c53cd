"""The service's own HTTPS certificate by ACME (RFC 8555) DNS-01, for names in zones it serves.

The challenge TXT goes through the store like a host's (apply_change: journal, IXFR,
NOTIFY, the other workers), homing's own DNS is asked until it serves the value, and the
new key and chain replace the files the HTTPS reloader watches (web/tls.py). The ACME
protocol is the certbot project's `acme` library; it is synchronous, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype
import sqlalchemy as sa
from acme import challenges, client, errors, messages
from acme import crypto_util as acme_crypto
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.config import Settings
from homing.dns.server import parse_listen
from homing.domain.errors import HomingError
from homing.domain.names import normalize, zone_for
from homing.domain.records import RRsetValue
from homing.service.challenges import VIA, challenge_name, txt_rdata
from homing.service.changes import ZoneRef, apply_change
from homing.store.db import Database, Txn
from homing.store.schema import rrsets, zones

log = logging.getLogger(__name__)

ACTOR = "homing"  # the journal's actor for the service's own challenge values
PLACEHOLDER = "homing placeholder"  # the subject of the certificate served until the first
CHALLENGE_TTL = 60
ORDER_TIMEOUT = 300.0  # seconds for the CA to validate and issue once asked
FIRST_RETRY = 30.0  # seconds after a failure; doubled each time, up to the check interval
DNS_ASK_INTERVAL = 0.2


class OwnCertificateError(HomingError):
    """Getting the certificate failed; logged and retried."""


def certificate_name(text: str) -> str:
    """A name for the certificate, normalised: a host name, or `*.` and one (a wildcard,
    proved at the same `_acme-challenge` name as its base); InvalidName otherwise."""
    wildcard = text.strip().startswith("*.")
    base = normalize(text.strip().removeprefix("*.") if wildcard else text)
    return f"*.{base}" if wildcard else base


@dataclass(frozen=True)
class Plan:
    """What to get and where to put it, from the settings."""

    directory: str
    names: tuple[str, ...]
    cert: Path
    key: Path
    state: Path  # the account key and the lock live here
    email: str | None
    ca_file: Path | None
    renew_before: float
    check_interval: float
    dns_wait: float
    dns_address: tuple[str, int]

    @classmethod
    def from_settings(cls, settings: Settings) -> Plan | None:
        if not settings.acme_directory or not settings.tls_cert_file or not settings.tls_key_file:
            return None
        host, port = parse_listen(settings.dns_listen)
        # Asked on the loopback when the DNS listens on every address.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return cls(
            directory=settings.acme_directory,
            names=tuple(certificate_name(n) for n in settings.tls_names),
            cert=settings.tls_cert_file,
            key=settings.tls_key_file,
            state=settings.data_dir / "acme",
            email=settings.acme_email,
            ca_file=settings.acme_ca_file,
            renew_before=float(settings.acme_renew_before),
            check_interval=settings.acme_check_interval,
            dns_wait=settings.acme_dns_wait,
            dns_address=(host, port),
        )


# -- the files ---------------------------------------------------------------------


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    """One writer of the pair at a time across this machine's workers."""
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, data: bytes, mode: int) -> None:
    """Written aside and renamed: a reader sees the old file or the new, never half."""
    spare = path.with_name(f".{path.name}.new")
    with contextlib.suppress(FileNotFoundError):
        spare.unlink()
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(spare, path)


def write_pair(cert: Path, key: Path, chain_pem: bytes, key_pem: bytes) -> None:
    """The key (mode 0600) first, then the chain: the reloader loads the pair once both
    moved, and a check between the two renames only keeps the old pair a moment longer."""
    _write(key, key_pem, 0o600)
    _write(cert, chain_pem, 0o644)


def _new_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key, pem


def self_signed(names: Sequence[str], days: float) -> tuple[bytes, bytes]:
    """A certificate (PEM) for `names` signed by its own new key, and the key (PEM); its
    subject is PLACEHOLDER, which the renewal check replaces at once."""
    key, key_pem = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    marked = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, PLACEHOLDER)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(marked)
        .issuer_name(marked)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_placeholder(plan: Plan) -> bool:
    """A self-signed pair for the names when there is no pair yet, so HTTPS can listen
    before the first certificate arrives; True if one was written."""
    with _locked(plan.state):
        if plan.cert.exists() and plan.key.exists():
            return False
        write_pair(plan.cert, plan.key, *self_signed(plan.names, days=7))
        log.info("HTTPS starts with a self-signed placeholder until ACME issues %s", plan.cert)
        return True


def renewal_reason(plan: Plan, now: datetime.datetime) -> str | None:
    """Why the certificate on disk must be replaced now, or None while it is good."""
    try:
        cert = x509.load_pem_x509_certificate(plan.cert.read_bytes())
    except (OSError, ValueError) as exc:
        return f"no certificate to read ({exc})"
    subject = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if subject and subject[0].value == PLACEHOLDER:
        return "the placeholder is served"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = {certificate_name(n) for n in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        names = set()
    if names != set(plan.names):
        return f"it names {sorted(names)}, the settings {sorted(plan.names)}"
    left = (cert.not_valid_after_utc - now).total_seconds()
    if left <= plan.renew_before:
        return f"it expires in {left:.0f} s"
    return None


# -- the challenge in our own zone ---------------------------------------------------


async def _zone_of(db: Database, name: str) -> ZoneRef:
    async def query(conn: AsyncConnection) -> dict[str, int]:
        rows = await conn.execute(
            sa.select(zones.c.name, zones.c.id).where(zones.c.primary_target.is_(None))
        )
        return {str(r.name): int(r.id) for r in rows}

    ours = await db.read(query)
    zone = zone_for(name, frozenset(ours))
    if zone is None:
        raise OwnCertificateError(
            f"{name} is in no zone served here: homing answers DNS-01 only in its own zones"
        )
    return ZoneRef(ours[zone], zone)


async def _change_value(db: Database, zone: ZoneRef, name: str, rdata: str, add: bool) -> None:
    """Add or remove one value of the TXT at `name`, keeping the others (a name and its
    wildcard, or another node's order, validate at the same time)."""

    async def unit(txn: Txn) -> None:
        stored = await txn.conn.scalar(
            sa.select(rrsets.c.rdatas).where(
                rrsets.c.zone_id == zone.id, rrsets.c.name == name, rrsets.c.rtype == "TXT"
            )
        )
        values = set(RRsetValue.decode_rdatas(stored) if stored else ())
        if add:
            values.add(rdata)
        else:
            values.discard(rdata)
        after = RRsetValue(name, "TXT", CHALLENGE_TTL, tuple(sorted(values)))
        await apply_change(txn, zone, after, actor=ACTOR, via=VIA)

    await db.write(unit)


async def _served(address: tuple[str, int], name: str, value: str, wait: float) -> None:
    """Until our own DNS answers `value` at `name`: several answers in a row, as workers
    sharing the port each answer from their own copy of the zone."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    seen = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        try:
            answer = await dns.asyncquery.udp(query, address[0], port=address[1], timeout=1.0)
            texts = {
                b"".join(rdata.strings).decode("ascii", "replace")
                for rrset in answer.answer
                if rrset.rdtype == dns.rdatatype.TXT
                for rdata in rrset
            }
            seen = seen + 1 if value in texts else 0
        except (dns.exception.DNSException, OSError):
            seen = 0
        if seen >= 3:
            return
        # The running DNS gives no event to await from here; the wait is bounded above.
        await asyncio.sleep(DNS_ASK_INTERVAL)
    raise OwnCertificateError(f"homing's DNS did not serve the challenge at {name} within {wait} s")


# -- the ACME conversation ------------------------------------------------------------


def _account_key(state: Path) -> JWKEC:
    path = state / "account-key.pem"
    if not path.exists():
        _write(path, _new_key()[1], 0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return JWKEC(key=key)


def _client(plan: Plan) -> tuple[client.ClientV2, JWKEC]:
    key = _account_key(plan.state)
    # requests takes a CA bundle's path where acme's signature says bool.
    verify = cast(bool, str(plan.ca_file)) if plan.ca_file else True
    net = client.ClientNetwork(key, alg=ES256, verify_ssl=verify, user_agent="homing")
    acme = client.ClientV2(client.ClientV2.get_directory(plan.directory, net), net)
    registration = messages.NewRegistration.from_data(
        email=plan.email, terms_of_service_agreed=True
    )
    try:
        acme.new_account(registration)
    except errors.ConflictError as exc:  # this key has an account: use it
        net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
    return acme, key


@dataclass
class _Pending:
    challenge: messages.ChallengeBody
    name: str  # _acme-challenge.<name>
    value: str  # the TXT value


def _order(
    plan: Plan,
) -> tuple[client.ClientV2, JWKEC, messages.OrderResource, bytes, list[_Pending]]:
    acme, account = _client(plan)
    _key, key_pem = _new_key()
    order = acme.new_order(acme_crypto.make_csr(key_pem, list(plan.names)))
    pending = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue  # validated recently for this account
        found = [c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01)]
        if not found:
            raise OwnCertificateError(f"the CA offers no DNS-01 for {authz.body.identifier.value}")
        chall = cast(challenges.DNS01, found[0].chall)
        pending.append(
            _Pending(
                found[0],
                challenge_name(normalize(authz.body.identifier.value.removeprefix("*."))),
                chall.validation(account),
            )
        )
    return acme, account, order, key_pem, pending


def _finish(
    acme: client.ClientV2,
    account: JWKEC,
    order: messages.OrderResource,
    pending: list[_Pending],
) -> bytes:
    for item in pending:
        acme.answer_challenge(item.challenge, item.challenge.chall.response(account))
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT)
    done = acme.poll_and_finalize(order, deadline)
    return done.fullchain_pem.encode()


async def obtain(db: Database, plan: Plan) -> None:
    """One certificate for the plan's names, written where the reloader picks it up."""
    # Every name's zone first: no order is spent at the CA for a name we cannot prove.
    challenged = {challenge_name(n.removeprefix("*.")) for n in plan.names}
    zones_of = {name: await _zone_of(db, name) for name in challenged}
    acme, account, order, key_pem, pending = await asyncio.to_thread(_order, plan)
    published: list[tuple[ZoneRef, _Pending, str]] = []
    try:
        for item in pending:
            zone = zones_of.get(item.name) or await _zone_of(db, item.name)
            rdata = txt_rdata(item.value)
            await _change_value(db, zone, item.name, rdata, add=True)
            published.append((zone, item, rdata))
        for _zone, item, _rdata in published:
            await _served(plan.dns_address, item.name, item.value, plan.dns_wait)
        chain = await asyncio.to_thread(_finish, acme, account, order, pending)
    finally:
        for zone, item, rdata in published:
            try:
                await _change_value(db, zone, item.name, rdata, add=False)
            except Exception:  # the expiry pass removes what stays
                log.exception("challenge value at %s not removed", item.name)
    with _locked(plan.state):
        write_pair(plan.cert, plan.key, chain, key_pem)
    log.info("TLS certificate for %s issued by ACME into %s", ", ".join(plan.names), plan.cert)


async def run(db: Database, plan: Plan) -> None:
    """Look at the certificate every check interval and renew it when due; failures are
    logged and retried after FIRST_RETRY, doubling up to the check interval."""
    delay = FIRST_RETRY
    while True:
        wait = plan.check_interval
        reason = renewal_reason(plan, datetime.datetime.now(datetime.UTC))
        if reason is not None:
            log.info("getting a TLS certificate by ACME: %s", reason)
            try:
                await obtain(db, plan)
                delay = FIRST_RETRY
            except Exception as exc:  # never the service's end: the old pair keeps serving
                wait = min(delay, plan.check_interval)
                delay = min(delay * 2, plan.check_interval)
                log.warning("ACME certificate not obtained, retrying in %.0f s: %s", wait, exc)
        await asyncio.sleep(wait)  # expiry is a time, not an event
