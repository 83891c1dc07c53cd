"""The ASGI app: update protocols, REST API, and (later) the portal."""
