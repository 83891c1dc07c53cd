"""Fuzzing settings and the wire path every DNS fuzz target shares.

The runs are derandomized (the same examples on every run, so CI is reproducible) and
bounded; FUZZ_EXAMPLES=N asks for N examples per target, for a longer run by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.update_requests import Endpoints
from tests.fuzz.wire import WirePath

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,  # derandomized: nothing to replay, and no .hypothesis directory
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def wire_path() -> Iterator[WirePath]:
    with WirePath() as path:
        yield path


@pytest.fixture(scope="module")
def endpoints() -> Iterator[Endpoints]:
    """The update endpoints over no store (tests/fuzz/update_requests.py)."""
    ends = Endpoints()
    try:
        with ends.patches():
            yield ends
    finally:
        ends.close()


# The update parsers are cheap to run but their requests are costly to generate: half
# the examples keep the whole fuzz run near a minute.
FUZZ_REQUESTS = settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
