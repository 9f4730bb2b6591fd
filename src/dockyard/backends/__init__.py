"""Backends: where a queue's jobs live, chosen by URL."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ..errors import InvalidOptionError, NotSupportedError
from .base import Backend

if TYPE_CHECKING:
    from .postgres import PostgresBackend

#: The one default store of the library and of every ``dockyard`` command when neither a
#: URL nor ``DOCKYARD_URL`` is given: an SQLite file in the current directory, so a new
#: user's ``add``, ``worker``, ``stats``, ``demo`` and ``serve`` all meet on one store with
#: no server to run (field report #20).
DEFAULT_URL = "sqlite:///dockyard.db"
#: URL schemes served by the Redis backend.
REDIS_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)
#: URL schemes served by the PostgreSQL backend.
POSTGRES_SCHEMES = ("postgresql", "postgres")


def resolve_url(url: str | None) -> str:
    """The URL to use: the one given, else ``DOCKYARD_URL``, else :data:`DEFAULT_URL`."""
    return url or os.environ.get("DOCKYARD_URL") or DEFAULT_URL


def display_url(url: str) -> str:
    """``url`` fit to print: a password becomes ``***``, a relative SQLite path gains the
    absolute one it means here (so a user sees which file a command really uses)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower().endswith(("+sentinel", "+cluster")):
        return _display_sentinel_url(parts)
    if parts.password:
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    if parts.scheme.lower() == "sqlite" and url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and not path.startswith("/"):
            return f"{url} ({os.path.abspath(path)})"
    return url


def _display_sentinel_url(parts: SplitResult) -> str:
    """A Sentinel or Cluster URL (several hosts, which urlsplit cannot read a port of)
    with its password and any ``sentinel_password`` hidden."""
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    netloc = f"{user}{':***' if colon else ''}{at}{hosts}"
    query = "&".join(
        "sentinel_password=***" if item.startswith("sentinel_password=") else item
        for item in parts.query.split("&")
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def open_backend(
    url: str | None, queue: str, *, prefix: str = "bull", retry_for: float | None = 20.0
) -> Backend:
    """The backend for ``url`` serving ``queue``; nothing is connected until first use."""
    url = resolve_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in REDIS_SCHEMES:
        from .redis import RedisBackend

        return RedisBackend(url, queue, prefix=prefix, retry_for=retry_for)
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url, queue, prefix=prefix)
    if scheme == "sqlite":
        from .sqlite import SqliteBackend

        return SqliteBackend(url, queue, prefix=prefix)
    if scheme in POSTGRES_SCHEMES:
        return _postgres()(url, queue, prefix=prefix, retry_for=retry_for)
    raise InvalidOptionError(
        f"unknown backend URL {url!r}; use redis://host:port/db, rediss://, unix://, "
        "redis+sentinel://host:26379/SERVICE, redis+cluster://host1:7000,host2:7001, "
        "sqlite:///path/to/jobs.db, postgresql://user:password@host/db or memory://"
    )


def _postgres() -> type[PostgresBackend]:
    """The PostgreSQL backend class; NotSupportedError when psycopg is not installed."""
    try:
        from .postgres import PostgresBackend
    except ImportError as exc:
        raise NotSupportedError(
            f"the postgresql:// backend needs psycopg 3 ({exc}); install it with "
            "pip install 'dockyard[postgres]'"
        ) from None
    return PostgresBackend


async def list_queues(url: str | None = None, prefix: str = "bull") -> list[str]:
    """Names of the queues under ``prefix`` in the store at ``url``, sorted."""
    url = resolve_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in REDIS_SCHEMES:
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
    if scheme in POSTGRES_SCHEMES:
        backend = _postgres()(url, "probe", prefix=prefix, retry_for=3.0)
        try:
            return await backend.list_queue_names()
        finally:
            await backend.close()
    open_backend(url, "probe", prefix=prefix)  # raises the same errors as opening a queue
    raise NotSupportedError(f"listing queues is not available for {scheme}:// stores")


__all__ = [
    "DEFAULT_URL",
    "Backend",
    "display_url",
    "list_queues",
    "open_backend",
    "resolve_url",
]
