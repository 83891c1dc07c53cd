"""DNS queries per second from readings of the total answered (times given, not waited for)."""

from __future__ import annotations

import pytest

from homing.service.figures import QueryMeter


def test_no_readings_no_figure() -> None:
    rate = QueryMeter().rate()
    assert (rate.per_second, rate.answered) == (None, 0)


def test_one_reading_is_zero_per_second() -> None:
    meter = QueryMeter()
    meter.add(100.0, 7)
    assert (meter.rate().per_second, meter.rate().answered) == (0.0, 7)


def test_the_rate_spans_the_last_window() -> None:
    meter = QueryMeter(window=10)
    for second in range(30):
        # 50 per second for 20 s, then 200 per second
        meter.add(1000.0 + second, 50 * min(second, 20) + 200 * max(0, second - 20))
    rate = meter.rate()
    assert meter.readings[0][0] == 1019.0 and len(meter.readings) == 11
    assert rate.window == 10.0
    assert rate.per_second == pytest.approx((2800 - 950) / 10)
    assert rate.answered == 2800


def test_a_restarted_worker_starts_the_window_afresh() -> None:
    meter = QueryMeter()
    meter.add(1.0, 500)
    meter.add(2.0, 600)
    meter.add(3.0, 120)  # a worker came back with a count from zero: the total fell
    meter.add(4.0, 220)
    rate = meter.rate()
    assert rate.per_second == pytest.approx(100.0) and rate.answered == 220
