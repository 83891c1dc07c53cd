"""The end-to-end fixtures (a real `homing serve`) for the signed-zone tests."""

from tests.e2e.conftest import dig_path, server  # noqa: F401
