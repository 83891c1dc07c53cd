"""The host-ready page's ddclient block is the form docs/clients.md recommends."""

from __future__ import annotations

from homing.web.portal.snippets import client_settings


def test_ddclient_block_uses_usev4_webv4() -> None:
    [ddclient] = [
        s
        for s in client_settings("https://ddns.example.net", "cam.dyn.example.net", "S")
        if s.key == "ddclient"
    ]
    lines = ddclient.text.splitlines()
    assert "usev4=webv4, webv4=https://ddns.example.net/checkip" in lines
    assert not any(line.startswith("use=") for line in lines)
