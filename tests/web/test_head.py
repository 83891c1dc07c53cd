"""A HEAD on an update path answers 405 and updates nothing (Starlette would run the GET)."""

from __future__ import annotations

import pytest

from homing.web.app import DYNDNS2_PATHS
from tests.web.conftest import HOST, Site


@pytest.mark.parametrize("path", DYNDNS2_PATHS)
async def test_head_on_a_dyndns2_path_changes_nothing(site: Site, path: str) -> None:
    head = await site.client.head(f"{path}?hostname={HOST}&myip=192.0.2.77", auth=site.auth())
    assert head.status_code == 405
    assert "GET" in head.headers["allow"]
    # Had the HEAD stored the address, this would be nochg.
    get = await site.client.get(f"{path}?hostname={HOST}&myip=192.0.2.77", auth=site.auth())
    assert (get.status_code, get.text) == (200, "good 192.0.2.77\n")


async def test_head_on_the_dvr_endpoint_changes_nothing(site: Site) -> None:
    head = await site.client.head(f"/dvr/update?host={HOST}&password={site.secret}&ip=192.0.2.78")
    assert head.status_code == 405
    # Had the HEAD stored the address, this would be nochg.
    get = await site.client.get(f"/nic/update?hostname={HOST}&myip=192.0.2.78", auth=site.auth())
    assert get.text == "good 192.0.2.78\n"
