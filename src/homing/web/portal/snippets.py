"""Ready-to-paste settings for a new host, one per client kind (shown once, with the secret)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Snippet:
    key: str  # HTML id
    title: str
    note: str
    text: str
    group: str = "device"  # "device" or "router": the host-ready page's two sections


def client_settings(base_url: str, fqdn: str, secret: str) -> list[Snippet]:
    """Settings for `fqdn` against the server at `base_url` (scheme://host[:port])."""
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    hostport = parts.netloc
    tls = parts.scheme == "https"
    return [
        Snippet(
            "ddclient",
            "ddclient",
            "In /etc/ddclient.conf (mode 0600), then restart ddclient.",
            "\n".join(
                [
                    "daemon=300",
                    "protocol=dyndns2",
                    f"ssl={'yes' if tls else 'no'}",
                    f"server={hostport}",
                    f"usev4=webv4, webv4={base}/checkip",
                    f"login={fqdn}",
                    f"password='{secret}'",
                    fqdn,
                ]
            ),
        ),
        Snippet(
            "inadyn",
            "inadyn",
            "In /etc/inadyn.conf (inadyn 2.x), then restart inadyn.",
            "\n".join(
                [
                    "period = 300",
                    "custom homing {",
                    f'    ddns-server    = "{hostport}"',
                    '    ddns-path      = "/nic/update?hostname=%h&myip=%i"',
                    f"    ssl            = {'true' if tls else 'false'}",
                    f'    checkip-server = "{hostport}"',
                    '    checkip-path   = "/checkip"',
                    f"    checkip-ssl    = {'true' if tls else 'false'}",
                    f'    username       = "{fqdn}"',
                    f'    password       = "{secret}"',
                    f'    hostname       = "{fqdn}"',
                    "}",
                ]
            ),
        ),
        *router_settings(base, fqdn, secret),
        Snippet(
            "dvr",
            "DVR or camera",
            "The DVR answers ACT on success or ERR 0x8000800N; add &ip=ADDRESS to set an "
            "address other than the one the request comes from.",
            f"{base}/dvr/update?host={fqdn}&password={secret}",
        ),
        Snippet(
            "curl",
            "curl (scripts, cron)",
            "Without myip the address the request comes from is used.",
            f"curl -fsS -u '{fqdn}:{secret}' \\\n    '{base}/nic/update?hostname={fqdn}'",
        ),
        Snippet(
            "homing-client",
            "homing client",
            "In the client's TOML file, then run `homing client run --config FILE`.",
            "\n".join(
                [
                    'cache_dir = "/var/lib/homing-client"',
                    "",
                    "[[server]]",
                    f'url = "{base}"',
                    "",
                    "[[host]]",
                    f'name = "{fqdn}"',
                    f'secret = "{secret}"',
                    'protocol = "dyndns2"',
                    'ipv4 = "web"',
                    'ipv6 = "none"',
                ]
            ),
        ),
    ]


def router_settings(base: str, fqdn: str, secret: str) -> list[Snippet]:
    """The router URLs of docs/clients.md for `fqdn`, each router's placeholders kept."""
    update = f"{base}/nic/update"
    fields = [f"User name:   {fqdn}", f"Password:    {secret}"]

    def router(key: str, title: str, note: str, *lines: str) -> Snippet:
        return Snippet(key, title, note, "\n".join(lines), "router")

    userinfo = f"{base.split('://', 1)[0]}://[USERNAME]:[PASSWORD]@{base.split('://', 1)[-1]}"
    return [
        router(
            "fritzbox",
            "FRITZ!Box",
            "Internet > Permit Access > DynDNS, provider User-defined. The IPv6 prefix moves "
            "this host's prefix hosts.",
            f"Update URL:  {update}?hostname=<domain>&myipv4=<ipaddr>&myipv6=<ip6addr>"
            "&ip6lanprefix=<ip6lanprefix>&username=<username>&password=<pass>",
            f"Domain name: {fqdn}",
            *fields,
        ),
        router(
            "openwrt",
            "OpenWrt (ddns-scripts)",
            'Services > Dynamic DNS, service "-- custom --"; a second service with "Use IPv6" '
            "updates the AAAA.",
            f"update_url:  {userinfo}/nic/update?hostname=[DOMAIN]&myip=[IP]",
            f"Lookup host / domain: {fqdn}",
            *fields,
        ),
        router(
            "pfsense",
            "pfSense / OPNsense",
            'Services > Dynamic DNS, service type "Custom". Leave Wildcard and MX unticked.',
            f"pfSense update URL:  {update}?hostname={fqdn}&myip=%IP%",
            f"OPNsense update URL: {update}?hostname=__HOSTNAME__&myip=__MYIP__",
            f"Hostname:    {fqdn}",
            *fields,
        ),
        router(
            "mikrotik",
            "MikroTik RouterOS",
            "A script run by the scheduler; set $ipaddr to the WAN address first.",
            f'/tool fetch mode={base.split("://", 1)[0]} output=none user="{fqdn}" '
            f'password="{secret}" url="{update}?hostname={fqdn}&myip=$ipaddr"',
        ),
        router(
            "unifi",
            "UniFi",
            'Settings > Internet > Dynamic DNS, service "dyndns".',
            f"Server:      {update.split('://', 1)[-1]}?hostname=%h&myip=%i",
            f"Hostname:    {fqdn}",
            *fields,
        ),
        router(
            "nas",
            "Synology / QNAP",
            "Synology: Control Panel > External Access > DDNS > Customize Provider. QNAP: "
            "DDNS, Customized (the address is the one the request comes from).",
            f"Synology query URL: {update}?hostname=__HOSTNAME__&myip=__MYIP__"
            "&username=__USERNAME__&password=__PASSWORD__",
            f"QNAP URL:           {update}?hostname={fqdn}&username={fqdn}&password={secret}",
            f"Hostname:    {fqdn}",
            *fields,
        ),
        router(
            "router",
            "Other routers (a dyndns2 provider)",
            "Routers with a DynDNS / dyndns2 provider and a server field.",
            f"Server:      {update.split('://', 1)[-1].split('/', 1)[0]}",
            "Path:        /nic/update",
            f"Host name:   {fqdn}",
            *fields,
        ),
    ]
