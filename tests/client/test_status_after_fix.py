"""`homing client status` for a host stopped by a fatal answer whose configuration was then
fixed: not ACT (nothing has been registered with the new configuration) but NEW, exit 4."""

from __future__ import annotations

from homing.client.config import HostConfig
from homing.client.policy import HostState, Rules, record
from homing.client.protocol import parse_answer
from homing.client.status import render
from tests.client.test_policy import A


def test_a_fixed_configuration_is_new_until_it_is_tried() -> None:
    broken = HostConfig(name="a.example.net", secret="wrong")
    fixed = HostConfig(name="a.example.net", secret="right")
    stopped = record(
        HostState(), A, parse_answer("dyndns2", 200, "badauth"), 0.0, Rules(broken.config_hash), 0
    )
    text, code = render([broken], {"a.example.net": stopped}, 10.0)
    assert code == 3 and "updates stopped" in text
    for state in (stopped, stopped.for_config(fixed.config_hash)):  # as loaded, and as run
        text, code = render([fixed], {"a.example.net": state}, 10.0)
        assert code == 4, text
        assert "status   NEW  not updated since its configuration changed (badauth)" in text
        assert "ACT" not in text
    good = record(
        stopped.for_config(fixed.config_hash), A, parse_answer("dyndns2", 200, "good 192.0.2.1"),
        20.0, Rules(fixed.config_hash), 0,
    )  # fmt: skip
    text, code = render([fixed], {"a.example.net": good}, 30.0)
    assert code == 0 and "status   ACT" in text
