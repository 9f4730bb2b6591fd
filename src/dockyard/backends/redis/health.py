"""What dockyard checks about a Redis server: its version (every connection, at set-up) and
the settings that can lose jobs (once per worker start, and in ``dockyard stats``).

Minimum version 6.2.0: the scripts need ``LPOS`` (6.0.6), ``SET ... KEEPTTL`` and fractional
``BZPOPMIN`` timeouts (6.0); 6.2 is where BullMQ stops warning and the oldest line still
maintained when dockyard was written, so it is the floor we accept (tested on 7.x).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import BackendVersionError

if TYPE_CHECKING:
    from .address import RedisAddress
    from .connection import RedisClient

log = logging.getLogger("dockyard.redis")

MIN_VERSION = (6, 2, 0)


def info_fields(reply: Any) -> dict[str, str]:
    """The ``name:value`` lines of an INFO reply as a dict (sections and comments left out)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and not name.startswith("#"):
            fields[name.strip()] = value.strip()
    return fields


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"7.0.15"`` as ``(7, 0, 15)``; None when it is not a dotted version."""
    parts = text.strip().split(".")
    if not text.strip() or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def check_version(info_server: Any, address: RedisAddress) -> None:
    """Raise BackendVersionError when INFO server reports a Redis older than MIN_VERSION
    (a version we cannot read is let through: the scripts themselves will say)."""
    reported = info_fields(info_server).get("redis_version", "")
    version = parse_version(reported)
    if version is not None and version < MIN_VERSION:
        needed = ".".join(map(str, MIN_VERSION))
        raise BackendVersionError(
            f"Redis at {address} is version {reported}; dockyard needs Redis {needed} or "
            "newer (its scripts use commands and options older servers lack); upgrade it"
        )


def warnings_from(
    memory: Mapping[str, str], persistence: Mapping[str, str], save: str | None, where: str
) -> list[str]:
    """The start-up warnings for these INFO memory/persistence fields and the ``save``
    setting (None when CONFIG GET was refused: then AOF alone tells)."""
    found: list[str] = []
    policy = memory.get("maxmemory_policy")
    if policy and policy != "noeviction":
        found.append(
            f"Redis at {where} has maxmemory-policy {policy}: when it reaches maxmemory it "
            "evicts keys, jobs and their locks included; set maxmemory-policy noeviction"
        )
    aof = persistence.get("aof_enabled")
    if aof == "0" and save is not None and not save.strip():
        found.append(
            f'Redis at {where} has no persistence (save "" and appendonly no): a restart '
            "loses every job; turn on appendonly yes (or RDB snapshots with save)"
        )
    return found


async def server_warnings(client: RedisClient) -> list[str]:
    """Check the server's eviction policy and persistence; one line per problem. A check
    that the ACL user may not run (INFO, CONFIG GET) is skipped silently."""
    conn = await client.connection()
    memory_f = conn.send(("INFO", "memory"))
    persistence_f = conn.send(("INFO", "persistence"))
    save_f = conn.send(("CONFIG", "GET", "save"))
    memory, persistence, save = await asyncio.gather(memory_f, persistence_f, save_f)
    save_value: str | None = None
    if isinstance(save, list) and len(save) == 2:
        save_value = save[1].decode("utf-8", "replace") if isinstance(save[1], bytes) else ""
    found = warnings_from(
        info_fields(memory) if isinstance(memory, bytes) else {},
        info_fields(persistence) if isinstance(persistence, bytes) else {},
        save_value,
        str(client.address),
    )
    if save_value is None:
        log.debug("CONFIG GET save refused at %s: persistence checked by AOF only", client.address)
    return found
