"""The URLs of docs/clients.md's router section, replayed with the real curl against
`homing serve` with their placeholders filled as each router fills them, checked with dig.

Each URL here is also asserted to appear verbatim in docs/clients.md, so the page and
the requests tested cannot drift apart. DNS is asked right after the answer is read,
without polling: homing moves its DNS before it answers.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import httpx
import pytest

from tests import peers
from tests.e2e.conftest import LOOPBACK, ZONE, Server

pytestmark = pytest.mark.peer("curl")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "clients.md"

FRITZBOX = (
    "https://ddns.example.net/nic/update?hostname=<domain>&myipv4=<ipaddr>&myipv6=<ip6addr>"
    "&ip6lanprefix=<ip6lanprefix>&username=<username>&password=<pass>"
)
FRITZBOX_NSUPDATE = (
    "https://ddns.example.net/nic/update?hostname=<domain>&myip=<ipaddr>,<ip6lanprefix>"
    "&username=<username>&password=<pass>"
)
OPENWRT = "https://[USERNAME]:[PASSWORD]@ddns.example.net/nic/update?hostname=[DOMAIN]&myip=[IP]"
PFSENSE = "https://ddns.example.net/nic/update?hostname=router.dyn.example.net&myip=%IP%"
OPNSENSE = "https://ddns.example.net/nic/update?hostname=__HOSTNAME__&myip=__MYIP__"
MIKROTIK = "https://ddns.example.net/nic/update?hostname=router.dyn.example.net&myip=$ipaddr"
UNIFI = "ddns.example.net/nic/update?hostname=%h&myip=%i"
SYNOLOGY = (
    "https://ddns.example.net/nic/update?hostname=__HOSTNAME__&myip=__MYIP__"
    "&username=__USERNAME__&password=__PASSWORD__"
)
QNAP = (
    "https://ddns.example.net/nic/update?hostname=nas.dyn.example.net"
    "&username=nas.dyn.example.net&password=SECRET"
)
ROUTER_URLS = [
    FRITZBOX,
    FRITZBOX_NSUPDATE,
    OPENWRT,
    PFSENSE,
    OPNSENSE,
    MIKROTIK,
    UNIFI,
    SYNOLOGY,
    QNAP,
]

ROUTER = f"router.{ZONE}"
PC = f"pc.{ZONE}"
NAS = f"nas.{ZONE}"
PC_IID = "::1234:56ff:fe78:9abc"


def test_every_router_url_is_the_one_documented() -> None:
    text = DOCS.read_text()
    for url in ROUTER_URLS:
        assert url in text, url


def replay(
    server: Server,
    template: str,
    fill: dict[str, str],
    auth: tuple[str, str] | None = None,
    path_like: str = "ddns.example.net",
) -> str:
    """The router's request: placeholders filled, our server's address in; the body of
    its 200 answer (curl follows no redirect, as ddclient counts one as a failure)."""
    url = template
    for placeholder, value in fill.items():
        url = url.replace(placeholder, value)
    url = url.replace(path_like, server.http_hostport)
    url = url.replace("https://", "http://")
    if not url.startswith("http://"):
        url = "http://" + url  # a server field: the router adds its scheme
    args = [peers.program("curl"), "-sS", "-g", "--max-time", "10", "-w", "\n%{http_code}"]
    if auth is not None:
        args += ["-u", f"{auth[0]}:{auth[1]}"]
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, f"curl {url}: {result.stderr}"
    body, _, code = result.stdout.rpartition("\n")
    assert code == "200", f"{url}: HTTP {code} {body!r}"
    return body.removesuffix("\n")  # one answer line


def fritz(server: Server, secret: str, ipaddr: str, ip6addr: str, prefix: str) -> str:
    fill = {
        "<domain>": ROUTER, "<username>": ROUTER, "<pass>": secret,
        "<ipaddr>": ipaddr, "<ip6addr>": ip6addr, "<ip6lanprefix>": prefix,
    }  # fmt: skip
    return replay(server, FRITZBOX, fill)


def aaaa(server: Server, name: str) -> list[str]:
    return server.dig(name, "AAAA").values("AAAA")


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_fritzbox_updates_both_families_and_moves_its_prefix_hosts(server: Server) -> None:
    _, secret = server.new_host("router")
    server.cli("host", "add", PC, "--owner", "alice", "--prefix-of", ROUTER, "--iid", PC_IID)

    body = fritz(server, secret, "192.0.2.10", "2001:db8:ffff::1", "2001:db8:4:5::/64")
    assert body == "good 192.0.2.10,2001:db8:ffff::1"
    assert server.dig(ROUTER, "A").values("A") == ["192.0.2.10"]
    assert aaaa(server, ROUTER) == ["2001:db8:ffff::1"]
    assert aaaa(server, PC) == ["2001:db8:4:5:1234:56ff:fe78:9abc"]

    # A prefix host added now gets its AAAA at once from the router's last prefix (the
    # CLI is another process: its change reaches the server through the journal).
    server.cli("host", "add", NAS, "--owner", "alice", "--prefix-of", ROUTER, "--iid", "::2")
    server.wait_dns(NAS, "AAAA", lambda a: a.values("AAAA") == ["2001:db8:4:5::2"])

    # The provider hands out a new prefix: every prefix host moves in the same commit.
    body = fritz(server, secret, "192.0.2.10", "2001:db8:ffff::2", "2001:db8:6:7::/64")
    assert body == "good 192.0.2.10,2001:db8:ffff::2"
    assert aaaa(server, PC) == ["2001:db8:6:7:1234:56ff:fe78:9abc"]
    assert aaaa(server, NAS) == ["2001:db8:6:7::2"]
    assert server.kdig(PC, "AAAA").values("AAAA") == ["2001:db8:6:7:1234:56ff:fe78:9abc"]

    # The line loses IPv6: the router's AAAA goes, its A and its prefix hosts stay.
    assert fritz(server, secret, "192.0.2.11", "", "") == "good 192.0.2.11"
    answer = server.dig(ROUTER, "AAAA")
    assert answer.status == "NOERROR" and answer.values("AAAA") == [], answer
    assert server.dig(ROUTER, "A").values("A") == ["192.0.2.11"]
    assert aaaa(server, NAS) == ["2001:db8:6:7::2"]


def test_fritzbox_nsupdate_info_form_sets_ipv4_and_moves_prefix_hosts(server: Server) -> None:
    _, secret = server.new_host("router")
    server.cli("host", "add", PC, "--owner", "alice", "--prefix-of", ROUTER, "--iid", PC_IID)
    fill = {"<domain>": ROUTER, "<username>": ROUTER, "<pass>": secret}
    body = replay(
        server,
        FRITZBOX_NSUPDATE,
        {**fill, "<ipaddr>": "192.0.2.20", "<ip6lanprefix>": "2001:db8:8::/64"},
    )
    assert body == "good 192.0.2.20"  # the prefix never fails the rest of the request
    assert server.dig(ROUTER, "A").values("A") == ["192.0.2.20"]
    assert aaaa(server, PC) == ["2001:db8:8:0:1234:56ff:fe78:9abc"]
    assert aaaa(server, ROUTER) == []  # no AAAA to rewrite: none is made up


def test_preserve_keeps_a_and_myipv6_sets_aaaa(server: Server) -> None:
    _, secret = server.new_host("router")
    assert fritz(server, secret, "192.0.2.30", "2001:db8:ffff::30", "") == (
        "good 192.0.2.30,2001:db8:ffff::30"
    )
    url = "http://ddns.example.net/nic/update?hostname=<domain>&myipv4=preserve&myipv6=<ip6addr>"
    body = replay(
        server, url, {"<domain>": ROUTER, "<ip6addr>": "2001:db8:ffff::31"}, (ROUTER, secret)
    )
    assert body == "good 2001:db8:ffff::31"
    assert server.dig(ROUTER, "A").values("A") == ["192.0.2.30"]
    assert aaaa(server, ROUTER) == ["2001:db8:ffff::31"]


def test_openwrt_pfsense_opnsense_mikrotik_unifi_synology_qnap(server: Server) -> None:
    made = dict(server.new_hosts(["router", "opn", "mt", "unifi", "syno", "nas", "owrt"]))
    router, opn = made[ROUTER], made[f"opn.{ZONE}"]

    def host(label: str) -> tuple[str, str]:
        return f"{label}.{ZONE}", made[f"{label}.{ZONE}"]

    name, secret = host("owrt")
    fill = {"[USERNAME]": name, "[PASSWORD]": secret, "[DOMAIN]": name}
    assert replay(server, OPENWRT, {**fill, "[IP]": "192.0.2.41"}) == "good 192.0.2.41"
    # Its IPv6 service is a second section: the AAAA is set, the A left alone.
    assert replay(server, OPENWRT, {**fill, "[IP]": "2001:db8:41::1"}) == "good 2001:db8:41::1"
    assert server.dig(name, "A").values("A") == ["192.0.2.41"]
    assert aaaa(server, name) == ["2001:db8:41::1"]

    assert replay(server, PFSENSE, {"%IP%": "192.0.2.42"}, (ROUTER, router)) == "good 192.0.2.42"
    assert server.dig(ROUTER, "A").values("A") == ["192.0.2.42"]

    fill = {"__HOSTNAME__": f"opn.{ZONE}", "__MYIP__": "192.0.2.43"}
    assert replay(server, OPNSENSE, fill, (f"opn.{ZONE}", opn)) == "good 192.0.2.43"

    name, secret = host("mt")
    mikrotik = MIKROTIK.replace(ROUTER, name)
    assert replay(server, mikrotik, {"$ipaddr": "192.0.2.44"}, (name, secret)) == "good 192.0.2.44"

    name, secret = host("unifi")
    assert replay(server, UNIFI, {"%h": name, "%i": "192.0.2.45"}, (name, secret)) == (
        "good 192.0.2.45"
    )

    name, secret = host("syno")
    fill = {"__HOSTNAME__": name, "__USERNAME__": name, "__PASSWORD__": secret}
    assert replay(server, SYNOLOGY, {**fill, "__MYIP__": "192.0.2.46"}) == "good 192.0.2.46"

    name, secret = host("nas")
    assert replay(server, QNAP, {"SECRET": secret}) == f"good {LOOPBACK}"  # its source

    for label, address in [("opn", "192.0.2.43"), ("mt", "192.0.2.44"), ("unifi", "192.0.2.45"),
                           ("syno", "192.0.2.46"), ("nas", LOOPBACK)]:  # fmt: skip
        assert server.dig(f"{label}.{ZONE}", "A").values("A") == [address], label


@pytest.mark.parametrize(
    "path",
    [
        "/nic/update",
        "/nic/update/",
        "/update",
        "/update/",
        "/v3/update",
        "/nic/dyndns",
        "/nic/statdns",
    ],
)
def test_paths_people_copy_answer_like_nic_update(server: Server, path: str) -> None:
    fqdn, secret = server.new_host("router")
    url = f"http://ddns.example.net{path}?hostname={fqdn}&myip=192.0.2.50"
    assert replay(server, url, {}, (fqdn, secret)) == "good 192.0.2.50"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.50"]


def test_dyndns1_host_id_form(server: Server) -> None:
    fqdn, secret = server.new_host("router")
    url = "http://ddns.example.net/nic/dyndns?action=edit&started=1&hostname=YES&host_id=<h>&myip=192.0.2.51"
    assert replay(server, url, {"<h>": fqdn}, (fqdn, secret)) == "good 192.0.2.51"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.51"]


def test_tick_boxes_are_refused_visibly_and_change_nothing(server: Server) -> None:
    fqdn, secret = server.new_host("router")
    base = f"http://ddns.example.net/nic/update?hostname={fqdn}&myip="
    # Dyn's own example URL: every option NOCHG, accepted.
    nochg = "&wildcard=NOCHG&mx=NOCHG&backmx=NOCHG"
    assert replay(server, base + "192.0.2.60" + nochg, {}, (fqdn, secret)) == "good 192.0.2.60"
    # pfSense's DynDNS type with Wildcard, MX and Backup MX ticked.
    for ticked in ("&wildcard=ON", "&mx=mail.example.org&backmx=NO", "&backmx=YES"):
        body = replay(server, base + "192.0.2.61" + ticked, {}, (fqdn, secret))
        assert body == "badagent", ticked
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.60"]
    assert server.dig(f"anything.{fqdn}", "A").status == "NXDOMAIN"  # no wildcard
    answer = server.dig(fqdn, "MX")
    assert answer.status == "NOERROR" and answer.values("MX") == [], answer


def test_myip_is_the_address_alone(server: Server) -> None:
    server.ensure_zone()
    result = subprocess.run(
        [peers.program("curl"), "-sS", "--max-time", "10", f"{server.http_url}/myip"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.stdout == LOOPBACK


_VALUES = ["", "preserve", "192.0.2.77", "2001:db8:7::77", "192.0.2.78,2001:db8:7::78",
           "2001:db8:9::/64", "192.0.2.79,2001:db8:9::/64", " , "]  # fmt: skip
_PARAMS = ["myip", "myipv4", "myipv6", "ip", "ipv6", "ip6lanprefix"]


def test_naming_an_address_parameter_never_publishes_the_source(server: Server) -> None:
    """The server allows loopback addresses here (every test client is on loopback), so
    only the rule keeps 127.0.0.1 out of DNS."""
    fqdn, secret = server.new_host("router")
    rng = random.Random(17)
    with httpx.Client(base_url=server.http_url, auth=(fqdn, secret), timeout=10) as client:
        for _ in range(40):
            names = rng.sample(_PARAMS, rng.randint(1, 3))
            params = [("hostname", fqdn), *((n, rng.choice(_VALUES)) for n in names)]
            response = client.get("/nic/update", params=params)
            assert response.status_code == 200
            assert LOOPBACK not in response.text, params
            assert LOOPBACK not in server.dig(fqdn, "A").values("A"), params
        # The control: naming none of them publishes the source.
        assert client.get("/nic/update", params={"hostname": fqdn}).text == f"good {LOOPBACK}\n"
