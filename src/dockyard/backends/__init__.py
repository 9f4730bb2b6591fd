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
    if scheme in ("sqlite", "redis+cluster"):
        raise NotSupportedError(
            f"the {scheme}:// backend is not available in this version; use redis://"
        )
    raise InvalidOptionError(
        f"unknown backend URL {url!r}; use redis://host:port/db, rediss://, unix://, "
        "memory:// (sqlite:// is planned)"
    )


__all__ = ["DEFAULT_URL", "Backend", "open_backend", "resolve_url"]
