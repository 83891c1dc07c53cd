"""Authoritative DNS: zone index, sans-I/O answer logic, transports."""
