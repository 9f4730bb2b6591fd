"""Start-up checks of a store: settings that can lose jobs, said once as a warning each.

On Redis: an eviction policy other than ``noeviction`` and a server without persistence
(README "Production Redis"). Run once per worker start and by ``dockyard stats``, never
on a hot path; a check the store's user may not run is skipped silently.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .backends import open_backend, resolve_url
from .errors import BackendRefusedError

log = logging.getLogger("dockyard.worker")


async def startup_warnings(backend: Any, timeout: float = 5.0) -> list[str]:
    """The store's warnings (empty for stores without such settings, or when the check
    cannot finish in ``timeout`` seconds); a refusal that will not heal is raised."""
    check = getattr(backend, "server_warnings", None)
    if check is None:
        return []
    try:
        async with asyncio.timeout(timeout):
            found: list[str] = await check()
            return found
    except BackendRefusedError:
        raise
    except Exception as exc:  # the check is advice: never let it stop a worker
        log.debug("store check skipped: %s", exc)
        return []


async def store_warnings(url: str | None, prefix: str = "bull") -> list[str]:
    """The warnings of the store at ``url`` (for ``dockyard stats``)."""
    # On a Redis Cluster the probe is bound to a slot like any queue: a hash tag keeps a
    # prefix without one from being refused (the check reads server settings, no keys).
    cluster = resolve_url(url).split("://", 1)[0].lower().endswith("+cluster")
    backend = open_backend(url, "{probe}" if cluster else "probe", prefix=prefix, retry_for=3.0)
    try:
        return await startup_warnings(backend)
    finally:
        await backend.close()
