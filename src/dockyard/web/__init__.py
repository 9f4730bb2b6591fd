"""HTTP API and web dashboard: ``create_app(...)`` builds an ASGI app (FastAPI).

Mount it in your own app (``app.mount("/jobs", create_app(url=...))``) or run it with
``dockyard serve``. Routes: the JSON API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``),
Prometheus metrics at ``/metrics``, the dashboard at ``/``.
"""

from .app import create_app

__all__ = ["create_app"]
