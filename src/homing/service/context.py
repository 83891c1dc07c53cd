"""What the edges (web, DNS, CLI) share: settings, the store, and the update policy."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from homing.config import Settings
from homing.domain.windows import parse_windows
from homing.service.courier import Courier, CourierPolicy
from homing.service.figures import QueryMeter
from homing.service.mail import Mailer
from homing.service.push import PushWaiter
from homing.service.throttle import Throttle, ThrottlePolicy
from homing.service.updates import UpdatePolicy
from homing.store.db import Database


@dataclass
class Homing:
    settings: Settings
    db: Database
    # Set by `homing serve`: asked by updates of zones that push to an external primary.
    push_waiter: PushWaiter | None = None
    # Set by `homing serve`: DNS responses answered, read each second (admin overview).
    dns_meter: QueryMeter | None = None
    # Built from the settings; tests may put another Mailer in its place.
    mailer: Mailer = field(init=False)

    def __post_init__(self) -> None:
        self.mailer = Mailer.from_settings(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Homing:
        return cls(
            settings,
            Database(settings.resolved_database_url(), schema=settings.database_schema),
        )

    def courier(self) -> Courier:
        """The notification courier over this store and mailer (tests and `serve` alike)."""
        s = self.settings
        return Courier(
            self.db,
            self.mailer,
            CourierPolicy(
                webhook_timeout=s.webhook_timeout,
                webhook_allow_private=s.webhook_allow_private,
                max_attempts=s.notify_max_attempts,
                keep_days=s.notify_keep_days,
                interval=s.notify_interval,
            ),
        )

    @functools.cached_property
    def throttle(self) -> Throttle:
        """The one throttle of every door that takes a secret, shared by this process."""
        s = self.settings
        return Throttle(
            self.db,
            ThrottlePolicy(
                source=parse_windows(s.throttle_source),
                account_source=parse_windows(s.throttle_account_source),
                account=parse_windows(s.throttle_account),
                signup=parse_windows(s.throttle_signup),
                ipv4_prefix=s.throttle_ipv4_prefix,
                ipv6_prefix=s.throttle_ipv6_prefix,
                remember_seconds=s.auth_remember_seconds,
                remember_size=s.auth_remember_size,
            ),
        )

    @functools.cached_property
    def policy(self) -> UpdatePolicy:
        """Built once, at the first update: the settings do not change while serving."""
        s = self.settings
        return UpdatePolicy(
            max_hosts_per_request=s.max_hosts_per_request,
            abuse_nochg_limit=s.abuse_nochg_limit,
            abuse_window=s.abuse_window,
            group_member_max_age=s.group_member_max_age,
            badauth_limit=s.alert_badauth_limit,
            badauth_window=s.alert_badauth_window,
            allow_local_addresses=s.allow_local_addresses,
        )
