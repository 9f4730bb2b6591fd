"""Backends: where a queue's jobs live, chosen by URL."""

from __future__ import annotations

import os

from ..errors import InvalidOptionError, NotSupportedError
from .base import Backend

#: The library's default store when no URL is given (the design's contract).
DEFAULT_URL = "redis://localhost:6379/0"


def resolve_url(url: str | None) -> str:
    """The URL to use: the one given, else ``DOCKYARD_URL``, else the default Redis."""
    return url or os.environ.get("DOCKYARD_URL") or DEFAULT_URL


def open_backend(
    url: str | None, queue: str, *, prefix: str = "bull", retry_for: float | None = 20.0
) -> Backend:
    """The backend for ``url`` serving ``queue``; nothing is connected until first use."""
    url = resolve_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackend

        return RedisBackend(url, queue, prefix=prefix, retry_for=retry_for)
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url, queue, prefix=prefix)
    if scheme == "sqlite":
        from .sqlite import SqliteBackend

        return SqliteBackend(url, queue, prefix=prefix)
    if scheme == "redis+cluster":
        raise NotSupportedError(
            "the redis+cluster:// backend is not available in this version; use redis:// "
            "(put a {hash tag} in the prefix to keep a queue in one cluster slot)"
        )
    raise InvalidOptionError(
        f"unknown backend URL {url!r}; use redis://host:port/db, rediss://, unix://, "
        "sqlite:///path/to/jobs.db or memory://"
    )


async def list_queues(url: str | None = None, prefix: str = "bull") -> list[str]:
    """Names of the queues under ``prefix`` in the store at ``url``, sorted."""
    url = resolve_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        from .redis.admin import list_queue_names

        return await list_queue_names(url, prefix)
    if scheme == "memory":
        from .memory import store_for

        store = store_for(url)
        with store.lock:
            return sorted(name for (p, name) in store.queues if p == prefix)
    if scheme == "sqlite":
        from .sqlite import SqliteBackend

        backend = SqliteBackend(url, "probe", prefix=prefix)
        try:
            return await backend.list_queue_names()
        finally:
            await backend.close()
    open_backend(url, "probe", prefix=prefix)  # raises the same errors as opening a queue
    raise NotSupportedError(f"listing queues is not available for {scheme}:// stores")


__all__ = ["DEFAULT_URL", "Backend", "list_queues", "open_backend", "resolve_url"]
