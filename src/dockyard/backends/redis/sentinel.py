"""Redis Sentinel: ask the sentinels which server is the primary, connect to it, check it.

A ``redis+sentinel://`` address names sentinels and a service; each (re)connection asks
the sentinels in turn (skipping those that do not answer) for the service's primary, then
checks with ``ROLE`` that the server really is a primary. A replica or a demoted primary
(a failover under way) is an OSError, so :class:`~.connection.RedisClient` tries again
after its usual short, growing pause, until its retry window closes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import BackendRefusedError
from .address import RedisAddress
from .connection import Connection, PermissionReply, ReplyError


class SentinelServiceError(BackendRefusedError):
    """No sentinel of the URL monitors the service it names; fix the service name in the
    URL (``redis+sentinel://host:26379/SERVICE``) or add it to the sentinels' config."""


def sentinel_address(address: RedisAddress, host: str, port: int) -> RedisAddress:
    """Where one sentinel is and how to log in to it (the sentinels' own login, db 0)."""
    options = address.sentinel
    assert options is not None
    password = options.password
    if password is None and options.username:
        password = ""
    return RedisAddress(
        host=host, port=port, username=options.username, password=password, tls=address.tls
    )


async def find_primary(address: RedisAddress, *, timeout: float) -> RedisAddress:
    """The address of the primary the sentinels name now; OSError when none answers,
    SentinelServiceError when every one that answers knows no such service."""
    options = address.sentinel
    assert options is not None
    failures: list[str] = []
    unknown = 0
    for host, port in options.hosts:
        where = sentinel_address(address, host, port)
        try:
            conn = await Connection.open(where, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            failures.append(f"{where.host}:{where.port}: {exc or 'no answer'}")
            continue
        try:
            reply = await conn.send(("SENTINEL", "get-master-addr-by-name", options.service))
        finally:
            conn.close()
        if isinstance(reply, ReplyError):
            failures.append(f"{host}:{port}: {reply}")
            continue
        if not reply:
            unknown += 1
            continue
        primary_host, primary_port = (_text(part) for part in reply)
        return dataclasses.replace(
            address, host=primary_host, port=int(primary_port), sentinel=None
        )
    if unknown and not failures:
        raise SentinelServiceError(
            f"no sentinel of {address} monitors a service named {options.service!r}; "
            "fix the service name in the URL or the sentinels' 'sentinel monitor' line"
        )
    raise ConnectionError(
        f"no sentinel of {address} named a primary for {options.service!r} ("
        + "; ".join(failures or ["none answered"])
        + ")"
    )


async def open_primary(
    address: RedisAddress, *, name: str | None, timeout: float
) -> Connection:
    """A connection to the primary the sentinels name, checked with ``ROLE``; a server
    that is not (or no longer) the primary raises ConnectionError, to be retried."""
    primary = await find_primary(address, timeout=timeout)
    conn = await Connection.open(primary, name=name, timeout=timeout, follow_failover=True)
    role = await conn.send(("ROLE",))
    if isinstance(role, PermissionReply):  # the ACL does not allow ROLE: trust the sentinels
        return conn
    if isinstance(role, ReplyError) or not role or _text(role[0]) != "master":
        conn.close()
        shown = role if isinstance(role, ReplyError) else _text(role[0]) if role else "?"
        service = address.sentinel.service if address.sentinel else "?"
        raise ConnectionError(
            f"Redis at {primary} is not the primary of {service!r} (role {shown}); "
            "a failover is under way"
        )
    return conn


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
