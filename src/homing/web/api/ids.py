"""The ids the API's paths and bodies carry: database ids, 1 to 2**31 - 1."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

DatabaseId = Annotated[int, Field(ge=1, le=2**31 - 1)]
HostId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A host's id, from GET /hosts")]
GroupId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A group's id, from GET /groups")]
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A token's id, from GET /tokens")]
