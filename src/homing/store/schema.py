"""The tables. Names are stored normalised (lower-case, IDNA, no final dot)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("max_hosts", sa.Integer, nullable=False, default=5),
    sa.Column("max_groups", sa.Integer, nullable=False, default=1),
    sa.Column("min_interval", sa.Integer, nullable=False, default=0),  # seconds between updates
    sa.Column("custom_ttl", sa.Boolean, nullable=False, default=False),
    sa.Column("price_cents", sa.Integer, nullable=False, default=0),
    sa.Column("currency", sa.String(3), nullable=False, default="EUR"),
    sa.Column("period", sa.String(16), nullable=False, default="month"),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    # 0: only the operator unblocks a host blocked for abuse; N: its owner may, once every N days.
    sa.Column("self_unblock_days", sa.Integer, nullable=False, default=1, server_default="1"),
    # ACME DNS-01: TXT values a host may hold at _acme-challenge.<host> at once, and how
    # many changes of them an hour (set or delete, by any door).
    sa.Column("acme_values", sa.Integer, nullable=False, default=4, server_default="4"),
    sa.Column("acme_changes_per_hour", sa.Integer, nullable=False, default=60, server_default="60"),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),  # as the user typed it
    sa.Column("user_key", sa.String(64), nullable=False, unique=True),  # case-folded
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("email_key", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False, default="user"),
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="active"),
    sa.Column("created_at", Timestamp, nullable=False),
    # Raised by a password reset: a portal session made before carries the old value and ends.
    sa.Column("session_epoch", sa.Integer, nullable=False, default=0, server_default="0"),
)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("serial", sa.BigInteger, nullable=False, default=1),
    sa.Column("mname", sa.String(253), nullable=False),
    sa.Column("rname", sa.String(253), nullable=False),
    sa.Column("refresh", sa.Integer, nullable=False, default=3600),
    sa.Column("retry", sa.Integer, nullable=False, default=600),
    sa.Column("expire", sa.Integer, nullable=False, default=1209600),
    sa.Column("minimum", sa.Integer, nullable=False, default=60),
    sa.Column("soa_ttl", sa.Integer, nullable=False, default=60),
    sa.Column("default_ttl", sa.Integer, nullable=False, default=60),
    sa.Column("public", sa.Boolean, nullable=False, default=True),  # offered to sign-up users
    sa.Column("notify", sa.Text, nullable=False, default=""),  # HOST:PORT per line
    sa.Column("allow_transfer", sa.Text, nullable=False, default=""),  # CIDR per line
    # Hidden primary: where each change is pushed (RFC 2136 + TSIG), with which key, and
    # the last serial that server acknowledged (NULL: it needs the whole zone first).
    sa.Column("push_target", sa.String(64), nullable=True),  # ADDRESS:PORT
    sa.Column("push_key", sa.String(253), nullable=True),  # a TSIG key's name
    sa.Column("pushed_serial", sa.BigInteger, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # Secondary zone: the primary it is transferred from (NULL: a zone of our own), the
    # TSIG key that signs the SOA checks and transfers, when the primary last answered
    # (Unix time; the SOA expire counts from it, across restarts) and how the last
    # transfer came (AXFR or IXFR).
    sa.Column("primary_target", sa.String(64), nullable=True),  # ADDRESS:PORT
    sa.Column("primary_key", sa.String(253), nullable=True),
    sa.Column("refreshed_at", sa.Float, nullable=True),
    sa.Column("last_transfer", sa.String(8), nullable=True),
    # The key our NOTIFYs for this zone are signed with (NULL: unsigned).
    sa.Column("notify_key", sa.String(253), nullable=True),
    # A reverse zone whose PTRs follow the addresses of the hosts inside it.
    sa.Column("auto_ptr", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # A signed zone's parent's name servers, ADDRESS:PORT per line: asked for the zone's
    # DS before a KSK roll's switch and before signing ends (service/dnssec.py).
    sa.Column("parent_servers", sa.Text, nullable=False, default="", server_default=""),
    # Whether the zone has DNSSEC keys (so its changes are signed), written with them: an
    # update that read the zone unsigned learns otherwise from the row it locks to move
    # the serial (service/changes.py).
    sa.Column("signed", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
)

hosts = sa.Table(
    "hosts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=False, index=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("ttl", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="active"),
    sa.Column("last_update_at", Timestamp, nullable=True),  # last accepted update (good or nochg)
    sa.Column("last_change_at", Timestamp, nullable=True),  # last update that changed an address
    sa.Column("last_client_ip", sa.String(45), nullable=True),
    sa.Column("last_via", sa.String(16), nullable=True),
    sa.Column("last_agent", sa.String(255), nullable=True),
    sa.Column("last_result", sa.String(32), nullable=True),  # Outcome name of the last request
    sa.Column("nochg_count", sa.Integer, nullable=False, default=0),
    sa.Column("nochg_window_start", Timestamp, nullable=True),
    sa.Column("unblocked_at", Timestamp, nullable=True),  # last unblock by its owner
    # Wrong secrets for this host within the alert window (the auth-failure alert's count).
    sa.Column("badauth_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("badauth_window_start", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column(
        "zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=True
    ),  # when name is in a zone
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("ttl", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column(
        "group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "host_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Index("ix_group_members_host", "host_id"),  # the groups of a host (the update path)
)

rrsets = sa.Table(
    "rrsets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("rtype", sa.String(16), nullable=False),
    sa.Column("ttl", sa.Integer, nullable=False),
    sa.Column("rdatas", sa.Text, nullable=False),  # one rdata text per line, sorted
    sa.UniqueConstraint("zone_id", "name", "rtype", name="uq_rrsets_zone_name_type"),
)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    # No foreign key: every row is written by the statement that moves its zone's serial,
    # and a zone's removal deletes its journal first (a key would be checked once a row).
    sa.Column("zone_id", sa.Integer, nullable=False),
    sa.Column("serial", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("rtype", sa.String(16), nullable=False),
    sa.Column("ttl", sa.Integer, nullable=False),
    sa.Column("old", sa.Text, nullable=False),
    sa.Column("new", sa.Text, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    # The TTL of `old`; NULL when there was none (and in rows from before 0007).
    sa.Column("old_ttl", sa.Integer, nullable=True),
    sa.Index("ix_journal_zone_serial", "zone_id", "serial"),
    sa.Index("ix_journal_name", "name"),
)

tsig_keys = sa.Table(
    "tsig_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("algorithm", sa.String(32), nullable=False),
    # HMAC needs the secret itself; it is as sensitive as the database.
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=True),
    sa.Column("host_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # A zone key's update policy, one grant per line ("subdomain NAME TYPE..."); NULL: the
    # whole zone, any type (but the SOA and apex NS).
    sa.Column("policy", sa.Text, nullable=True),
)

tsig_key_zones = sa.Table(
    # The further zones of a zone key (a DHCP server's one key for its forward and reverse
    # zones); its first zone is tsig_keys.zone_id.
    "tsig_key_zones",
    metadata,
    sa.Column(
        "key_id", sa.Integer, sa.ForeignKey("tsig_keys.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "zone_id", sa.Integer, sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True
    ),
)

tsig_seen = sa.Table(
    # A signed UPDATE's MAC, written in the transaction that answered it, until its TSIG
    # time window has passed: a copy sent again is answered with the first rcode and not
    # applied twice, by whichever worker or node receives it.
    "tsig_seen",
    metadata,
    sa.Column("key_name", sa.String(253), primary_key=True),
    sa.Column("mac", sa.String(128), primary_key=True),  # hex
    sa.Column("rcode", sa.Integer, nullable=False),
    sa.Column("until", sa.Float, nullable=False, index=True),  # Unix time
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # SHA-256, hex
    sa.Column("actions", sa.String(32), nullable=False),  # "read,update,manage" or a subset
    # False: only the hosts in api_token_hosts (deleting the last one leaves none, not all).
    sa.Column("all_hosts", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp, nullable=True),
)

api_token_hosts = sa.Table(
    "api_token_hosts",
    metadata,
    sa.Column(
        "token_id",
        sa.Integer,
        sa.ForeignKey("api_tokens.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "host_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    ),
)


throttle = sa.Table(
    # One row per throttled key (a source prefix, an account, an account from a prefix) and
    # window length: the window's theoretical arrival time (GCRA) and when the key may try
    # again. A row is charged and read in one transaction, so parallel guesses cannot
    # overrun a limit.
    "throttle",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("period", sa.Integer, primary_key=True),  # the window's length, seconds
    sa.Column("tat", sa.Float, nullable=False),  # Unix time
    sa.Column("until", sa.Float, nullable=False, index=True),  # Unix time
)

password_resets = sa.Table(
    # A mailed reset link: only the SHA-256 of its token; at most one per account (a new
    # request replaces it), deleted when used.
    "password_resets",
    metadata,
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),  # Unix time
    sa.Column("expires_at", sa.Float, nullable=False),
)

reset_requests = sa.Table(
    # One row per reset request under two keys (account, client address), for the throttle;
    # kept only as long as its window.
    "reset_requests",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("key", sa.String(400), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False, index=True),  # Unix time
)


alert_settings = sa.Table(
    # Which notifications an account wants and where; no row: none (but the inactivity
    # policy's warnings still go out by email).
    "alert_settings",
    metadata,
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("email_on", sa.Boolean, nullable=False, default=False),
    sa.Column("webhook_url", sa.String(2000), nullable=True),
    # HMAC needs the key itself (like TSIG secrets); shown to its owner once.
    sa.Column("webhook_secret", sa.String(64), nullable=True),
    sa.Column("on_address", sa.Boolean, nullable=False, default=False),
    sa.Column("on_auth", sa.Boolean, nullable=False, default=False),
    sa.Column("on_abuse", sa.Boolean, nullable=False, default=False),
    sa.Column("on_stale", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

outbox = sa.Table(
    # One row per notification and channel, written in the transaction of its cause;
    # the leader's courier delivers it (pending -> sent, or failed after the last retry).
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("channel", sa.String(8), nullable=False),  # email, webhook
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("host", sa.String(253), nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # JSON object
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),  # pending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("next_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Index("ix_outbox_due", "status", "next_at"),
)

inactivity_policy = sa.Table(
    # The operator's inactivity policy as last saved on the admin page (one row, id 1);
    # without it the settings' inactivity_* values hold. 0 days: that step never happens.
    "inactivity_policy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("warn_days", sa.Integer, nullable=False),
    sa.Column("disable_days", sa.Integer, nullable=False),
    sa.Column("delete_days", sa.Integer, nullable=False),
    sa.Column("notice_days", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

inactivity_marks = sa.Table(
    # How far the policy went with an idle host: the stage reached for the idle spell that
    # began at `basis` (its last update); a newer update starts over.
    "inactivity_marks",
    metadata,
    sa.Column(
        "host_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("basis", Timestamp, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("marked_at", Timestamp, nullable=False),
)

prefix_hosts = sa.Table(
    # A host whose AAAA is its router's delegated IPv6 prefix + its own interface id; the
    # router (a host of the same owner) moves it with every update that carries a prefix.
    "prefix_hosts",
    metadata,
    sa.Column(
        "host_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "router_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("iid", sa.String(45), nullable=False),  # IPv6 text, e.g. ::1234:56ff:fe78:9abc
    sa.Index("ix_prefix_hosts_router", "router_id"),
)

router_prefixes = sa.Table(
    # The last prefix a router's update carried, so a prefix host added later gets its
    # address at once.
    "router_prefixes",
    metadata,
    sa.Column(
        "host_id", sa.Integer, sa.ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("prefix", sa.String(49), nullable=False),  # e.g. 2001:db8:1::/64
    sa.Column("updated_at", Timestamp, nullable=False),
)

acmedns_registrations = sa.Table(
    # An acme-dns compatible account: one TXT name under the operator's acme-dns zone. The
    # password is stored as SHA-256 (it is 40 random characters); `txt` keeps the two most
    # recent values, oldest first, one per line.
    "acmedns_registrations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(36), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(64), nullable=False),
    sa.Column("subdomain", sa.String(36), nullable=False, unique=True),
    sa.Column("allowfrom", sa.Text, nullable=False, default=""),  # CIDR per line; empty: any
    sa.Column("txt", sa.Text, nullable=False, default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=True),
)


dnssec_keys = sa.Table(
    # A signed zone's keys: no row, an unsigned zone. The private key (PKCS#8 PEM) is as
    # sensitive as the database, like the TSIG secrets. role: csk, ksk or zsk; state:
    # published (in the DNSKEY RRset, not signing yet), active (signing), retired (still
    # published, no longer signing); changed_at: when the state last changed (the rolls
    # count from it).
    "dnssec_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "zone_id",
        sa.Integer,
        sa.ForeignKey("zones.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("algorithm", sa.Integer, nullable=False),  # DNSSEC algorithm number (13, 15)
    sa.Column("private_key", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("changed_at", Timestamp, nullable=False),
)

query_counts = sa.Table(
    # DNS queries a node answered in each bucket (Unix time of its start, a multiple of
    # service.querycounts.BUCKET): every worker adds its own count once per bucket; rows
    # older than a day and a bucket are pruned.
    "query_counts",
    metadata,
    sa.Column("bucket", sa.BigInteger, primary_key=True),
    sa.Column("node", sa.String(64), primary_key=True),
    sa.Column("queries", sa.BigInteger, nullable=False),
)

settings_generation = sa.Table(
    # One row: a counter that triggers (migration 0021) move with every change of the
    # columns a running server's keys and zone lists are read from, so a server reloads
    # them when it moved. Not in a backup: it describes the store, not its contents, and
    # a restore moves it like any other change.
    "settings_generation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
)


def backed_up_tables() -> list[sa.Table]:
    """The tables a backup holds, in the order their foreign keys allow."""
    return [t for t in metadata.sorted_tables if t is not settings_generation]
