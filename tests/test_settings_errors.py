"""Settings mistakes as an operator meets them: one line naming the setting and the value,
a non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.test_cli import homing


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    return {**clean, "HOMING_DATA_DIR": str(tmp_path / "var")}


def one_line(env: dict[str, str], *args: str) -> str:
    result = homing(env, *args)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    # `serve` logs its start before it fails; the failure is its one line of its own.
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("homing:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("HOMING_RRL_RATE", "lots", "HOMING_RRL_RATE='lots': Input should be a valid integer"),
        ("HOMING_RRL_RATE", "-1", "HOMING_RRL_RATE='-1': Input should be greater than or equal"),
        ("HOMING_DNS_LISTEN", "0.0.0.0", "HOMING_DNS_LISTEN='0.0.0.0': listen address"),
        ("HOMING_HTTP_LISTEN", "::1:80", "HOMING_HTTP_LISTEN='::1:80': listen address"),
        ("HOMING_HTTP_LISTEN", "127.0.0.1:99999", "port must be 0..65535"),
        ("HOMING_DNS_LISTN", "127.0.0.1:53", "unknown setting HOMING_DNS_LISTN (did you mean"
         " HOMING_DNS_LISTEN?)"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_named_with_its_value(
    env: dict[str, str], variable: str, value: str, said: str
) -> None:
    line = one_line({**env, variable: value}, "migrate")
    assert line.startswith("homing: bad settings: ") and said in line
    assert "validation error" not in line


def test_a_file_setting_that_does_not_exist(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "homing.toml"
    config.write_text('dns_listn = "127.0.0.1:53"\n')
    line = one_line({**env, "HOMING_CONFIG": str(config)}, "migrate")
    assert "dns_listn is not a setting" in line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("taken", ["dns", "http"])
def test_address_in_use_names_the_port_and_the_setting(env: dict[str, str], taken: str) -> None:
    dns_port, http_port = free_port(), free_port()
    holder = socket.socket(type=socket.SOCK_DGRAM if taken == "dns" else socket.SOCK_STREAM)
    with holder:
        holder.bind(("127.0.0.1", dns_port if taken == "dns" else http_port))
        if taken == "http":
            holder.listen(1)
        settings = {
            "HOMING_DNS_LISTEN": f"127.0.0.1:{dns_port}",
            "HOMING_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        }
        line = one_line({**env, **settings}, "serve")
    port, variable = (dns_port, "DNS") if taken == "dns" else (http_port, "HTTP")
    assert f"port {port} is in use" in line and f"HOMING_{variable}_LISTEN" in line, line
