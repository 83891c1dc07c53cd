"""One settings object: homing.toml (path in HOMING_CONFIG) and HOMING_* variables, env winning."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from homing.domain.errors import InvalidName
from homing.domain.names import normalize
from homing.domain.windows import parse_windows


class Settings(BaseSettings):
    """Everything an operator can set. Names map to HOMING_<NAME> variables and toml keys."""

    model_config = SettingsConfigDict(env_prefix="HOMING_", extra="forbid")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    database_schema: str | None = None  # PostgreSQL only: tables live in this schema
    dns_listen: str = "127.0.0.1:8053"
    http_listen: str = "127.0.0.1:8080"
    trusted_proxies: list[str] = Field(default_factory=list)
    # HTTP connection bounds (a trusted proxy is exempt from the per-source cap)
    http_request_timeout: float = Field(default=10.0, gt=0, le=300)  # a whole request, s
    http_connections_per_source: int = Field(default=32, ge=1)  # an IPv4 address, an IPv6 /56
    http_max_connections: int = Field(default=4096, ge=1)  # the oldest idle one makes room
    http_max_requests: int = Field(default=2048, ge=1)  # in progress; more answer 503
    # HTTPS served directly (both or neither); the files are read again when they change.
    tls_cert_file: Path | None = None  # PEM certificate chain
    tls_key_file: Path | None = None  # PEM private key
    tls_reload_interval: float = Field(default=60.0, gt=0)  # seconds between mtime checks
    # The certificate by ACME DNS-01 for tls_names (in zones served here), into the files above.
    acme_directory: str | None = None  # the CA's directory URL; unset: the files are yours
    acme_email: str | None = None
    acme_ca_file: Path | None = None  # PEM bundle trusted for the directory's HTTPS
    tls_names: list[str] = Field(default_factory=list, max_length=100)
    acme_renew_before: int = Field(default=30 * 86400, ge=0)  # seconds before expiry
    acme_check_interval: float = Field(default=43200.0, gt=0, le=86400)  # seconds
    acme_dns_wait: float = Field(default=60.0, gt=0, le=3600)  # for our DNS to serve the TXT
    # /metrics: from these client networks, or anywhere with "Authorization: Bearer TOKEN"
    metrics_allow: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    metrics_token: SecretStr | None = None
    log_format: str = Field(default="text", pattern="^(text|json)$")  # json: one object a line
    # This node's name where several share a store (the overview's DNS query chart).
    node_name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64)

    # dyndns2 and abuse rules
    max_hosts_per_request: int = 20
    # Publish loopback and link-local addresses (a lab, or every client on this machine).
    allow_local_addresses: bool = False
    abuse_nochg_limit: int = 10  # nochg answers per host within abuse_window before it is blocked
    abuse_window: int = 3600
    group_member_max_age: int = 3600  # seconds a group member stays in the group's answer
    follow_interval: float = 0.5  # how often other processes' journal rows are picked up

    # The throttle on every door that takes a secret: COUNT/SECONDS windows per key
    throttle_source: str = "60/60,600/3600"  # failures from one source prefix, any account
    throttle_account_source: str = "5/900,20/86400"  # wrong passwords for an account, per prefix
    throttle_account: str = "50/3600,200/86400"  # wrong passwords for an account, all sources
    throttle_signup: str = "5/3600,20/86400"  # sign-ups from one source prefix
    throttle_ipv4_prefix: int = Field(default=24, ge=8, le=32)  # a source is its /24 ...
    throttle_ipv6_prefix: int = Field(default=56, ge=16, le=128)  # ... or its /56
    auth_remember_seconds: float = Field(default=600.0, ge=0)  # a verified password; 0: never
    auth_remember_size: int = Field(default=4096, ge=0)  # verified passwords kept per process

    @field_validator(
        "throttle_source",
        "throttle_account_source",
        "throttle_account",
        "throttle_signup",
        "throttle_acme_dns_register",
    )
    @classmethod
    def _throttle_windows(cls, value: str) -> str:
        parse_windows(value)
        return value

    tsig_allow_md5: bool = False  # hmac-md5 keys, for old equipment only
    # DNS response rate limiting (UDP): answers per second per source /24 or /56, as NSD's
    # rrl-ratelimit (0: off); every rrl_slip-th limited answer goes out truncated (0: none).
    rrl_rate: int = Field(default=200, ge=0)
    rrl_slip: int = Field(default=2, ge=0)
    # What the DNS server says about itself; unset: nothing (CHAOS queries are REFUSED).
    # identity: CHAOS TXT id.server and hostname.bind; version: version.bind and
    # version.server (RFC 4892); nsid: the NSID option to a query asking for it (RFC 5001).
    dns_identity: str | None = Field(default=None, max_length=255, pattern="^[ -~]+$")
    dns_version: str | None = Field(default=None, max_length=255, pattern="^[ -~]+$")
    dns_nsid: str | None = Field(default=None, max_length=128, pattern="^[ -~]+$")
    # ACME DNS-01: challenge TXT values are deleted this long after their last change, s;
    # acme_dns_zone (a zone served here) turns on the acme-dns compatible API at the root.
    acme_challenge_lifetime: int = Field(default=3600, ge=60, le=7 * 86400)
    acme_expiry_interval: float = Field(default=60.0, gt=0)  # seconds between expiry passes
    acme_dns_zone: str | None = None
    throttle_acme_dns_register: str = "10/3600,50/86400"  # acme-dns registrations per prefix
    # hidden primary: how long an update waits for its push before answering dnserr
    push_wait: float = Field(default=3.0, gt=0, le=30)

    # notifications (docs/user-guide.md) and the inactivity policy (docs/admin-guide.md)
    alert_badauth_limit: int = Field(default=5, ge=1)  # wrong secrets for a host ...
    alert_badauth_window: int = Field(default=3600, ge=1)  # ... within seconds: one alert
    webhook_timeout: float = Field(default=5.0, gt=0, le=60)
    webhook_allow_private: bool = False  # let webhooks reach loopback and private addresses
    notify_interval: float = Field(default=5.0, gt=0)  # outbox look-ups without a wake-up
    notify_max_attempts: int = Field(default=8, ge=1, le=30)
    notify_keep_days: int = Field(default=30, ge=1)  # sent and failed notifications kept
    inactivity_interval: float = Field(default=3600.0, gt=0)  # seconds between policy runs
    # The leader's signing upkeep (signatures due, key roll steps), seconds between passes,
    # and how often a zone waiting for its parent has the parent's DS asked.
    dnssec_interval: float = Field(default=60.0, gt=0, le=3600)
    dnssec_parent_interval: float = Field(default=300.0, gt=0, le=86400)
    # The policy until an operator saves it on /admin/inactivity; 0 days: never.
    inactivity_warn_days: int = Field(default=0, ge=0)
    inactivity_disable_days: int = Field(default=0, ge=0)
    inactivity_delete_days: int = Field(default=0, ge=0)
    inactivity_notice_days: int = Field(default=7, ge=1)
    # outgoing mail (password reset, notifications); no smtp_host: mails go to the log
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None  # SecretStr: never printed with the settings
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS (usually port 465)
    smtp_ca_file: Path | None = None  # PEM CA bundle for a relay the system store does not know
    smtp_timeout: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = "homing@localhost"
    # The site as users reach it, e.g. https://ddns.example.net: the base of mailed links.
    # Unset: no links are mailed (never built from a request's Host header: the asker's to forge).
    public_url: str | None = None
    signup_verify_email: bool = False  # a new account is active once its mailed link is followed

    # zone defaults for `homing zone add`
    soa_rname: str | None = None
    default_ttl: int = 60

    @model_validator(mode="after")
    def _mail_settings_agree(self) -> Settings:
        if self.smtp_starttls and self.smtp_tls:
            raise ValueError("smtp_starttls and smtp_tls exclude each other: choose one")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.acme_directory and (self.tls_cert_file is None or not self.tls_names):
            raise ValueError("acme_directory needs tls_cert_file, tls_key_file and tls_names")
        if self.acme_directory and not self.acme_directory.startswith("https://"):
            raise ValueError(f"acme_directory must start with https://: {self.acme_directory!r}")
        for name in self.tls_names:
            try:
                normalize(name.strip().removeprefix("*."))
            except InvalidName as exc:
                raise ValueError(f"tls_names: {name!r} is not a host name") from exc
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("smtp_user and smtp_password go together")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url must start with https:// or http://: {self.public_url!r}")
        if self.mail_from.count("@") != 1 or any(c in self.mail_from for c in "\r\n"):
            raise ValueError(f"mail_from is not one mail address: {self.mail_from!r}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("HOMING_CONFIG")
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"HOMING_CONFIG names a missing file: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; by default an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'homing.db').resolve()}"


def load(**overrides: Any) -> Settings:
    """Settings from file and environment, with explicit overrides on top."""
    return Settings(**overrides)
