from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

from homing.dns.index import ZoneIndex
from tests.dns.zone import build_index


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async DNS test runs on both loops: `homing serve` uses uvloop."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def index() -> ZoneIndex:
    return build_index()
