"""The fixtures the signed-zone tests share with others: a real `homing serve` (end to
end) and a clean environment for the CLI."""

from tests.e2e.conftest import dig_path, server  # noqa: F401
from tests.test_cli import env  # noqa: F401
