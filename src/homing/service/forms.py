"""How an operator's form is refused: every field at fault at once, each with its message."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from homing.domain.errors import HomingError

T = TypeVar("T")


class AdminError(HomingError):
    """An operator form was refused; `code` is stable, `fields` maps each field at fault
    ("form" for the form as a whole) to what is wrong with it, in words."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.fields = dict(fields) if fields else {field or "form": message}


class FormCheck:
    """Checks a form field by field and keeps every refusal, so the operator sees them all."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.errors: dict[str, str] = {}

    def field(self, name: str, check: Callable[[], T]) -> T | None:
        """`check()`'s value; its HomingError is kept under `name` (or the field it names)."""
        try:
            return check()
        except AdminError as exc:
            for field, message in exc.fields.items():
                self.errors.setdefault(name if field == "form" else field, message)
        except HomingError as exc:
            self.errors.setdefault(name, str(exc))
        return None

    def refuse(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def done(self) -> None:
        """Raise every refusal kept, in one AdminError; nothing when the form is good."""
        if self.errors:
            message = " ".join(self.errors.values())
            field = next(iter(self.errors))
            raise AdminError(self.code, message, field, fields=self.errors)
