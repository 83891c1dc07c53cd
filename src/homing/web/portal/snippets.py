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
                    f"use=web, web={base}/checkip",
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
        Snippet(
            "router",
            "Router (custom dyndns2 provider)",
            "Most routers take an update URL with placeholders; the FRITZ!Box form is shown. "
            "User name and password go in their own fields.",
            "\n".join(
                [
                    f"Update URL:  {base}/nic/update?hostname=<domain>&myip=<ipaddr>,<ip6addr>",
                    f"Domain name: {fqdn}",
                    f"User name:   {fqdn}",
                    f"Password:    {secret}",
                ]
            ),
        ),
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
