"""End-to-end tests: the real `homing serve` process with real clients (dig, curl, ddclient...)."""
