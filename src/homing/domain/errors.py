"""Validation and protocol errors, each carrying the outcome it maps to at the edge."""

from __future__ import annotations

from homing.domain.outcomes import Outcome


class HomingError(Exception):
    """Base of homing's domain errors; `outcome` says how a protocol answers it."""

    outcome: Outcome = Outcome.INTERNAL

    def __init__(self, message: str = "", outcome: Outcome | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or "")
        if outcome is not None:
            self.outcome = outcome


class InvalidName(HomingError):
    """Not a valid host name."""

    outcome = Outcome.NOTFQDN

    def __init__(self, name: str) -> None:
        super().__init__(f"not a valid host name: {name!r}")
        self.name = name


class InvalidAddress(HomingError):
    """Not a valid IPv4 or IPv6 address."""

    outcome = Outcome.BAD_ADDRESS


class UnservableRecord(HomingError):
    """A record value that DNS could not serve (it does not render as its type); nothing
    was changed."""

    outcome = Outcome.BAD_REQUEST


class NotFound(HomingError):
    """No such object."""

    outcome = Outcome.NOHOST


class Conflict(HomingError):
    """The object already exists."""

    outcome = Outcome.BAD_REQUEST


class QuotaExceeded(HomingError):
    """The account's plan does not allow more of this."""

    outcome = Outcome.BAD_REQUEST


class SecondaryZone(HomingError):
    """The zone is a secondary here: its records come from its primary and are not edited here."""

    outcome = Outcome.DNSERR


class StoreUnavailable(HomingError):
    """The store could not be reached or failed; nothing was changed."""

    outcome = Outcome.INTERNAL


class AccountError(HomingError):
    """A sign-up or account change was refused; `code` is the stable API error code."""

    outcome = Outcome.BAD_REQUEST

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
