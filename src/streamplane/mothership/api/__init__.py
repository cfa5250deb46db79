"""The REST API (``/v1``): thin routes over the store, the reconciler's operations and
Kafka admin. ``app.py`` wires the routers of ``routes/``; ``errors.py`` maps exceptions to
answers; ``deps.py`` holds what the routes share."""

from streamplane.mothership.api.app import create_app

__all__ = ["create_app"]
