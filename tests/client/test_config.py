"""The client's configuration file: one line per refusal, naming the file, the table, the key
and the value at fault, from load_config as `homing-client` reads the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from homing.client.config import ConfigError, load_config

GOOD = """\
cache_dir = "cache"

[[server]]
url = "https://dyn.example.net"

[[host]]
name = "cam.example.net"
secret = "s3cret"
ipv4 = "web"
"""


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = _load(tmp_path, GOOD)
    config = load_config(path)
    assert config.cache_dir == tmp_path / "cache"
    assert config.servers[0].url == "https://dyn.example.net"
    assert config.hosts[0].name == "cam.example.net"
    assert config.checkip_urls == ("https://dyn.example.net/checkip",)


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            'cache_dir = "cache"',
            'cache_dir = "cache"\ntimeout = "soon"',
            'config: timeout is not valid: expected a duration like 30, "90s", "10m" or "25d"'
            " (got 'soon')",
        ),
        (
            'url = "https://dyn.example.net"',
            'url = "https://dyn.example.net"\nverify = "no"',
            "[[server]] #1: verify must be true or false (got 'no')",
        ),
        (
            'url = "https://dyn.example.net"',
            'url = "ftp://dyn.example.net"',
            "[[server]] #1: url is not a http:// or https:// or dns:// URL"
            " (got 'ftp://dyn.example.net')",
        ),
        (
            'ipv4 = "web"',
            'ipv4 = "dhcp"',
            "host cam.example.net: ipv4 is not one of interface:NAME, web, web:URL, "
            "command:CMD, none (got 'dhcp')",
        ),
        (
            'ipv4 = "web"',
            'ipv4 = "web"\nmin_interval = -5',
            "host cam.example.net: min_interval must not be negative (got -5)",
        ),
    ],
)
def test_a_bad_value_in_each_table_is_one_line(
    tmp_path: Path, old: str, new: str, line: str
) -> None:
    path = _load(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {line}"
    assert "\n" not in str(caught.value)


def test_a_secret_is_never_repeated_in_an_error(tmp_path: Path) -> None:
    path = _load(
        tmp_path,
        GOOD.replace('secret = "s3cret"', 'secret = "hmac-md9:k:s3cret"\nprotocol = "rfc2136"'),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: host cam.example.net: ")
    assert "s3cret" not in str(caught.value)


def test_an_unknown_key_names_the_known_ones(tmp_path: Path) -> None:
    path = _load(tmp_path, GOOD.replace('ipv4 = "web"', 'ipv4 = "web"\ncolour = "red"'))
    with pytest.raises(ConfigError, match=r"host cam.example.net: unknown key 'colour' \(known: "):
        load_config(path)
