"""homing: a self-hostable dynamic DNS provider and update client."""

__version__ = "0.1.0"
