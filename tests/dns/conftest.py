from __future__ import annotations

import pytest

from homing.dns.index import ZoneIndex
from tests.dns.zone import build_index


@pytest.fixture
def index() -> ZoneIndex:
    return build_index()
