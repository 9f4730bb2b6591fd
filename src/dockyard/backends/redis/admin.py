"""Admin transitions and event reads of the Redis backend: one typed call per script.

These are the operations a person or a dashboard runs (remove, retry, promote, clean,
drain, obliterate, change a job), kept apart from the worker's hot path in backend.py.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .connection import ConnectionLost, RedisAddress, RedisClient
from .keys import QueueKeys
from .scripts import load_scripts

#: The sorted set that holds each state whose jobs ``move_jobs_to_wait`` can move.
_SETS = {"failed": "failed", "completed": "completed", "delayed": "delayed"}
#: The key holding each state ``clean`` works on.
_CLEAN_KEYS = {
    "completed": "completed",
    "failed": "failed",
    "delayed": "delayed",
    "prioritized": "prioritized",
    "wait": "wait",
    "waiting": "wait",
    "paused": "paused",
    "active": "active",
}


#: Our names of queue settings -> BullMQ's meta fields.
_META_FIELDS = {"max_events": "opts.maxLenEvents"}


def _now() -> int:
    return int(time.time() * 1000)


class RedisAdmin:
    """Mixed into RedisBackend: the admin half of the Backend protocol."""

    queue: str
    prefix: str
    keys: QueueKeys
    address: RedisAddress
    client: RedisClient
    _listener: RedisClient | None
    _retry_for: float | None

    async def _call(self, what: str, coro: Any) -> Any:
        raise NotImplementedError  # RedisBackend's

    async def _read(self, *args: Any) -> Any:
        raise NotImplementedError  # RedisBackend's

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self._call(name, load_scripts()[name].run(self.client, keys, args))

    async def remove(self, job_id: str) -> int:
        keys = self.keys.many(
            "wait",
            "paused",
            "active",
            "prioritized",
            "delayed",
            "completed",
            "failed",
            "waiting-children",
            "events",
            "meta",
            "stalled",
        )
        code: int = await self._script("removeJob", keys, (self.keys.job_prefix, job_id))
        return code

    async def reprocess(self, job_id: str, state: str, lifo: bool, reset_attempts: bool) -> int:
        keys = self.keys.many(state, "wait", "paused", "meta", "marker", "events", "active")
        args = (self.keys.job_prefix, job_id, state, int(lifo), int(reset_attempts))
        code: int = await self._script("reprocessJob", keys, args)
        return code

    async def promote(self, job_id: str) -> int:
        keys = self.keys.many(
            "delayed", "wait", "paused", "meta", "prioritized", "pc", "marker", "events", "active"
        )
        code: int = await self._script("promote", keys, (self.keys.job_prefix, job_id))
        return code

    async def move_jobs_to_wait(self, state: str, count: int, before_ms: int) -> int:
        source = _SETS[state]
        keys = self.keys.many(source, "wait", "paused", "meta", "marker", "events", "active")
        max_score = (before_ms + 1) * 4096 - 1 if state == "delayed" else before_ms
        moved = 0
        while True:
            batch = min(count - moved, 1000)
            if batch <= 0:
                return moved
            reply = await self._script(
                "moveJobsToWait", keys, (self.keys.job_prefix, batch, max_score, state)
            )
            moved += int(reply[0])
            if not int(reply[1]) or not int(reply[0]):
                return moved

    async def drain(self, delayed: bool) -> int:
        keys = self.keys.many("wait", "paused", "prioritized", "delayed", "pc", "marker")
        removed: int = await self._script("drain", keys, (self.keys.job_prefix, int(delayed)))
        return removed

    async def clean(self, state: str, before_ms: int, limit: int) -> list[str]:
        keys = self.keys.many(_CLEAN_KEYS[state], "events", "meta", "stalled")
        args = (self.keys.job_prefix, before_ms, limit, _CLEAN_KEYS[state])
        ids: list[bytes] = await self._script("cleanJobsInSet", keys, args)
        return [i.decode() for i in ids]

    async def obliterate(self, force: bool) -> int:
        keys = self.keys.many("meta", "events")
        while True:
            code: int = await self._script(
                "obliterate", keys, (self.keys.job_prefix, 1000, int(force))
            )
            if code != 1:  # 1: more to delete, call again
                return code

    async def change_priority(self, job_id: str, priority: int, lifo: bool) -> int:
        keys = self.keys.many("wait", "paused", "meta", "prioritized", "pc", "marker", "active")
        args = (self.keys.job_prefix, job_id, priority, int(lifo))
        code: int = await self._script("changePriority", keys, args)
        return code

    async def change_delay(self, job_id: str, delay_ms: int) -> int:
        keys = self.keys.many("delayed", "meta", "marker", "events")
        args = (self.keys.job_prefix, job_id, delay_ms, _now())
        code: int = await self._script("changeDelay", keys, args)
        return code

    async def update_data(self, job_id: str, data: str) -> int:
        code: int = await self._script("updateData", (self.keys.job(job_id),), (data,))
        return code

    async def set_limits(self, limits: Mapping[str, int | None]) -> None:
        meta = self.keys.key("meta")
        limits = {_META_FIELDS.get(k, k): v for k, v in limits.items()}
        drop = [name for name, value in limits.items() if value is None]
        keep = [(name, value) for name, value in limits.items() if value is not None]
        if drop:
            await self._call("set limits", self.client.execute("HDEL", meta, *drop))
        if keep:
            flat = [part for pair in keep for part in pair]
            await self._call("set limits", self.client.execute("HSET", meta, *flat))

    async def get_limits(self) -> dict[str, int]:
        names = ("concurrency", "max", "duration", "max_events")
        fields = [_META_FIELDS.get(n, n) for n in names]
        values = await self._read("HMGET", self.keys.key("meta"), *fields)
        return {n: int(v) for n, v in zip(names, values, strict=True) if v is not None}

    # -- events and workers -------------------------------------------------------------

    async def read_events(
        self, last_id: str = "$", count: int = 1000, timeout: float | None = 0.0
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries of the events stream after ``last_id`` (``$``: only new ones), oldest
        first; waits up to ``timeout`` s (None: forever) when there are none yet."""
        key = self.keys.key("events")
        if last_id == "$":
            # Resolve "$" now, so that events written between two calls are not skipped.
            newest = await self._read("XREVRANGE", key, "+", "-", "COUNT", 1)
            last_id = newest[0][0].decode() if newest else "0-0"
        if timeout is not None and timeout <= 0:
            reply = await self._read("XREAD", "COUNT", count, "STREAMS", key, last_id)
        else:
            listener = self._listener
            if listener is None:
                listener = self._listener = RedisClient(self.address, retry_for=self._retry_for)
            block_ms = 0 if timeout is None else max(1, int(timeout * 1000))
            try:
                async with asyncio.timeout(None if timeout is None else timeout + 2.0):
                    reply = await listener.execute(
                        "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", key, last_id
                    )
            except TimeoutError:
                listener.drop()
                return []
            except ConnectionLost:
                listener.drop()
                return []
        if not reply:
            return []
        out: list[tuple[str, dict[str, str]]] = []
        for entry_id, fields in reply[0][1]:
            decoded = [f.decode("utf-8", "replace") for f in fields]
            out.append((entry_id.decode(), dict(zip(decoded[::2], decoded[1::2], strict=False))))
        return out

    async def get_metrics(self, kind: str, start: int, end: int) -> dict[str, Any]:
        key = self.keys.key(f"metrics:{kind}")
        conn = await self.client.connection()
        meta, data = await conn.many(
            (("HMGET", key, "count", "prevTS", "prevCount"), ("LRANGE", key + ":data", start, end))
        )
        return {
            "count": int(meta[0] or 0),
            "prev_ts": int(meta[1]) if meta[1] is not None else None,
            "prev_count": int(meta[2] or 0),
            "data": [int(x) for x in data],
        }

    async def get_workers(self) -> list[dict[str, str]]:
        """Connections named as workers of this queue (Node's and dockyard's alike)."""
        encoded = base64.b64encode(self.queue.encode()).decode()
        wanted = f"{self.prefix}:{encoded}"
        raw = await self._read("CLIENT", "LIST")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        workers: list[dict[str, str]] = []
        for line in text.splitlines():
            fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
            name = fields.get("name", "")
            if name != wanted and not name.startswith(wanted + ":"):
                continue
            fields["worker_name"] = name.split(":w:", 1)[1] if ":w:" in name else ""
            workers.append(fields)
        return workers

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[int, int]:
        conn = await self.client.connection()
        commands: list[tuple[Any, ...]] = []
        for priority in priorities:
            if priority == 0:
                # Priority-0 jobs are the ready lists.
                commands.append(("LLEN", self.keys.key("wait")))
                commands.append(("LLEN", self.keys.key("paused")))
            else:
                low = priority * 4294967296
                commands.append(("ZCOUNT", self.keys.key("prioritized"), low, low + 4294967295))
        replies = [int(r) for r in await conn.many(commands)]
        counts: dict[int, int] = {}
        i = 0
        for priority in priorities:
            if priority == 0:
                counts[0] = replies[i] + replies[i + 1]
                i += 2
            else:
                counts[priority] = replies[i]
                i += 1
        return counts


async def list_queue_names(url: str, prefix: str) -> list[str]:
    """Names of the queues under ``prefix`` in the Redis at ``url`` (by their ``meta``/``id``);
    on a cluster, those of every primary."""
    address = RedisAddress.from_url(url)
    if address.cluster is None:
        return sorted(await _scan_queue_names(RedisClient(address, retry_for=5.0), prefix))
    from .cluster import primaries

    names: set[str] = set()
    for node in await primaries(address, timeout=5.0):
        plain = dataclasses.replace(node, cluster=None)  # SCAN this node, not a slot's owner
        names |= await _scan_queue_names(RedisClient(plain, retry_for=5.0), prefix)
    return sorted(names)


async def _scan_queue_names(client: RedisClient, prefix: str) -> set[str]:
    """The queue names one server holds under ``prefix``; closes ``client``."""
    names: set[str] = set()
    try:
        cursor = b"0"
        head = prefix + ":"
        while True:
            cursor, keys = await client.execute("SCAN", cursor, "MATCH", head + "*", "COUNT", 1000)
            for raw in keys:
                key = raw.decode("utf-8", "replace")
                rest = key[len(head) :]
                name, _, suffix = rest.rpartition(":")
                if suffix in ("meta", "id") and name and ":" not in name:
                    names.add(name)
            if cursor in (b"0", 0, "0"):
                break
    finally:
        await client.close()
    return names
