"""Our Lua scripts: loaded once from ``lua/`` and run by SHA, one typed function each.

A script file ``name-N.lua`` declares N KEYS; ``lib.lua`` is prepended to every script.
A NOSCRIPT reply (the server's script cache was flushed, or the server restarted) is
answered by sending the source once with EVAL, which caches it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from .connection import PermissionReply, RedisClient, ReplyError
from .keys import QueueKeys
from .refusals import permission_error

_NAME = re.compile(r"^(?P<name>[A-Za-z]+)-(?P<keys>\d+)\.lua$")


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its name, how many KEYS it takes, its full source and SHA1."""

    name: str
    num_keys: int
    source: bytes
    sha: bytes

    async def run(self, client: RedisClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA it (EVAL once on NOSCRIPT); raise ReplyError on a script error."""
        if len(keys) != self.num_keys:
            raise ValueError(f"{self.name} takes {self.num_keys} keys, got {len(keys)}")
        reply = await client.send((b"EVALSHA", self.sha, self.num_keys, *keys, *args))
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await client.send((b"EVAL", self.source, self.num_keys, *keys, *args))
        if isinstance(reply, ReplyError):
            raise self.refusal(client, reply, keys)
        return reply

    def refusal(self, client: RedisClient, reply: ReplyError, keys: Sequence[str]) -> Exception:
        """The error to raise for an error reply: an ACL refusal names the script, the
        command it called and the keys (field report: NOPERM was a raw ReplyError)."""
        if isinstance(reply, PermissionReply):
            return permission_error(
                str(reply), (b"EVALSHA", self.sha), client.address,
                script=(self.name, self.source), keys=keys,
            )  # fmt: skip
        return reply

    async def run_many(
        self, client: RedisClient, keys: Sequence[str], arg_lists: Sequence[Sequence[Any]]
    ) -> list[Any]:
        """Run the script once per argument list, all written at once (one round trip)."""
        conn = await client.connection()
        head = (b"EVALSHA", self.sha, self.num_keys, *keys)
        futures = [conn.send((*head, *args)) for args in arg_lists]
        replies = list(await asyncio.gather(*futures))  # replies come in order
        for i, reply in enumerate(replies):
            if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
                replies[i] = await self.run(client, keys, arg_lists[i])
            elif isinstance(reply, ReplyError):
                raise self.refusal(client, reply, keys)
        return replies


@cache
def load_scripts() -> dict[str, Script]:
    """Every script of the ``lua`` folder by name, read once per process."""
    folder = files("dockyard.backends.redis").joinpath("lua")
    lib = folder.joinpath("lib.lua").read_bytes()
    scripts: dict[str, Script] = {}
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        source = lib + b"\n" + entry.read_bytes()
        name = match["name"]
        scripts[name] = Script(name, int(match["keys"]), source, _sha(source))
    return scripts


def _sha(source: bytes) -> bytes:
    return hashlib.sha1(source, usedforsecurity=False).hexdigest().encode()


def _s(value: str | None) -> str:
    return "" if value is None else value


def _dedup_args(dedup: tuple[str, int | None, bool, bool] | None) -> tuple[Any, ...]:
    if dedup is None:
        return ("", "", b"0", b"0")
    dedup_id, ttl, extend, replace = dedup
    return (
        dedup_id,
        "" if ttl is None else ttl,
        b"1" if extend else b"0",
        b"1" if replace else b"0",
    )


class QueueScripts:
    """The scripts bound to one queue's keys and one client: a typed call per script."""

    def __init__(self, client: RedisClient, keys: QueueKeys) -> None:
        s = load_scripts()
        self._client = client
        self._prefix = keys.job_prefix
        self._add, self._active, self._finished = (
            s["addJob"],
            s["moveToActive"],
            s["moveToFinished"],
        )
        self._retry, self._delayed, self._extend = (
            s["retryJob"],
            s["moveToDelayed"],
            s["extendLocks"],
        )
        self._stalled, self._progress, self._log = (
            s["moveStalledJobsToWait"],
            s["updateProgress"],
            s["addLog"],
        )
        self._state, self._pause = s["getState"], s["pause"]
        k = keys.many
        self._add_keys = k(
            "wait",
            "paused",
            "meta",
            "id",
            "delayed",
            "prioritized",
            "pc",
            "marker",
            "events",
            "active",
        )
        fetch = (
            "wait",
            "active",
            "prioritized",
            "events",
            "stalled",
            "limiter",
            "delayed",
            "paused",
            "meta",
            "pc",
            "marker",
        )
        self._fetch_keys = k(*fetch)
        self._completed_keys = k(*fetch, "completed")
        self._failed_keys = k(*fetch, "failed")
        self._finished_many_keys = k(*fetch, "completed", "failed")
        self._finished_many = s["moveManyToFinished"]
        self._retry_keys = k(
            "active",
            "wait",
            "paused",
            "meta",
            "prioritized",
            "pc",
            "marker",
            "events",
            "stalled",
            "delayed",
        )
        self._delayed_keys = k("active", "delayed", "events", "meta", "marker", "stalled")
        self._stalled_keys = k(
            "stalled", "wait", "active", "stalled-check", "meta", "paused", "marker", "events"
        )
        self._state_keys = k(
            "completed",
            "failed",
            "delayed",
            "prioritized",
            "active",
            "wait",
            "paused",
            "waiting-children",
        )
        self._pause_keys = k("wait", "paused", "meta", "prioritized", "events", "delayed", "marker")
        self._events = keys.key("events")
        self._meta = keys.key("meta")

    async def add_job(
        self,
        custom_id: str | None,
        name: str,
        data: str,
        opts: str,
        timestamp: int,
        delay: int,
        priority: int,
        lifo: bool,
        dedup: tuple[str, int | None, bool, bool] | None = None,
    ) -> bytes:
        """addJob: store and enqueue one job; the new (or existing) id."""
        args = (
            self._prefix,
            _s(custom_id),
            name,
            data,
            opts,
            timestamp,
            delay,
            priority,
            b"1" if lifo else b"0",
            *_dedup_args(dedup),
        )
        reply: bytes = await self._add.run(self._client, self._add_keys, args)
        return reply

    async def add_jobs(self, jobs: Sequence[tuple[Any, ...]]) -> list[bytes]:
        """addJob for many jobs in one round trip; ``jobs`` as add_job's arguments."""
        arg_lists = [
            (
                self._prefix,
                _s(cid),
                name,
                data,
                opts,
                ts,
                delay,
                prio,
                b"1" if lifo else b"0",
                *_dedup_args(dedup),
            )
            for cid, name, data, opts, ts, delay, prio, lifo, dedup in jobs
        ]
        return await self._add.run_many(self._client, self._add_keys, arg_lists)

    async def move_to_active(
        self,
        now: int,
        token: str,
        lock_ms: int,
        worker_name: str | None,
        count: int,
        limit_max: int | None = None,
        limit_ms: int | None = None,
    ) -> list[Any]:
        """moveToActive: up to ``count`` jobs, as ``[ttl, next_delayed, id, hash, ...]``."""
        args = (
            self._prefix,
            now,
            token,
            lock_ms,
            _s(worker_name),
            count,
            "" if limit_max is None else limit_max,
            "" if limit_ms is None else limit_ms,
        )
        reply: list[Any] = await self._active.run(self._client, self._fetch_keys, args)
        return reply

    async def move_to_finished(
        self,
        job_id: str,
        token: str,
        now: int,
        completed: bool,
        value: str,
        stacktrace: str | None,
        keep_count: int,
        keep_age: float,
        attempts: int,
        fetch: int,
        next_token: str,
        lock_ms: int,
        worker_name: str | None,
        limit_max: int | None = None,
        limit_ms: int | None = None,
        metrics: int = 0,
    ) -> int | list[Any]:
        """moveToFinished: a negative code, or the fetch tuple (empty unless ``fetch``)."""
        keys = self._completed_keys if completed else self._failed_keys
        args = (
            self._prefix,
            job_id,
            token,
            now,
            "completed" if completed else "failed",
            value,
            _s(stacktrace),
            keep_count,
            keep_age,
            attempts,
            fetch,
            next_token,
            lock_ms,
            _s(worker_name),
            "" if limit_max is None else limit_max,
            "" if limit_ms is None else limit_ms,
            metrics,
        )
        reply: int | list[Any] = await self._finished.run(self._client, keys, args)
        return reply

    async def move_many_to_finished(
        self,
        finishes: Sequence[tuple[str, str, bool, str, str | None, int, float, int, int]],
        now: int,
        fetch: int,
        next_token: str,
        lock_ms: int,
        worker_name: str | None,
        limit_max: int | None = None,
        limit_ms: int | None = None,
    ) -> list[Any]:
        """moveManyToFinished: one code per ``(job_id, token, completed, value, stacktrace,
        keep_count, keep_age, attempts, metrics)``, then the fetch tuple."""
        args: list[Any] = [
            self._prefix,
            now,
            fetch,
            next_token,
            lock_ms,
            _s(worker_name),
            "" if limit_max is None else limit_max,
            "" if limit_ms is None else limit_ms,
            len(finishes),
        ]
        for (
            job_id,
            token,
            completed,
            value,
            stack,
            keep_count,
            keep_age,
            attempts,
            points,
        ) in finishes:
            args += (
                job_id,
                token,
                "completed" if completed else "failed",
                value,
                _s(stack),
                keep_count,
                keep_age,
                attempts,
                points,
            )
        reply: list[Any] = await self._finished_many.run(
            self._client, self._finished_many_keys, args
        )
        return reply

    async def retry_job(
        self,
        job_id: str,
        token: str,
        now: int,
        lifo: bool,
        reason: str,
        stacktrace: str | None,
        count_attempt: bool = True,
    ) -> int:
        """retryJob: back to wait at once; 0 or a negative code."""
        args = (
            self._prefix,
            job_id,
            token,
            now,
            b"1" if lifo else b"0",
            reason,
            _s(stacktrace),
            b"1" if count_attempt else b"0",
        )
        reply: int = await self._retry.run(self._client, self._retry_keys, args)
        return reply

    async def move_to_delayed(
        self,
        job_id: str,
        token: str,
        now: int,
        delay_ms: int,
        skip_attempt: bool,
        reason: str | None,
        stacktrace: str | None,
    ) -> int:
        """moveToDelayed: due at now + delay; 0 or a negative code."""
        args = (
            self._prefix,
            job_id,
            token,
            now,
            delay_ms,
            b"1" if skip_attempt else b"0",
            _s(reason),
            _s(stacktrace),
        )
        reply: int = await self._delayed.run(self._client, self._delayed_keys, args)
        return reply

    async def extend_locks(self, locks: Sequence[tuple[str, str]], lock_ms: int) -> list[bytes]:
        """extendLocks: the ids whose lock could not be renewed."""
        args: list[Any] = [self._prefix, lock_ms]
        for job_id, token in locks:
            args += (job_id, token)
        reply: list[bytes] = await self._extend.run(self._client, self._stalled_keys[:1], args)
        return reply

    async def move_stalled_jobs_to_wait(
        self, max_stalled: int, now: int, interval_ms: int
    ) -> list[bytes]:
        """moveStalledJobsToWait: ids requeued as stalled (empty if another ran recently)."""
        args = (max_stalled, self._prefix, now, interval_ms)
        reply: list[bytes] = await self._stalled.run(self._client, self._stalled_keys, args)
        return reply

    async def update_progress(self, job_id: str, progress: str) -> int:
        """updateProgress: 0, or -1 when the job is missing."""
        keys = (self._prefix + job_id, self._events, self._meta)
        reply: int = await self._progress.run(self._client, keys, (job_id, progress))
        return reply

    async def add_log(self, job_id: str, line: str, keep: int | None) -> int:
        """addLog: the log's length, or -1 when the job is missing."""
        key = self._prefix + job_id
        args = (line, "" if keep is None else keep)
        reply: int = await self._log.run(self._client, (key, key + ":logs"), args)
        return reply

    async def get_state(self, job_id: str) -> str:
        """getState: the job's state name, or ``unknown``."""
        reply: bytes = await self._state.run(self._client, self._state_keys, (job_id,))
        return reply.decode()

    async def pause(self, pause: bool) -> None:
        """pause: pause or resume the queue."""
        args = ("paused" if pause else "resumed",)
        await self._pause.run(self._client, self._pause_keys, args)

    async def advance_job_scheduler(
        self, scheduler_id: str, job_id: str, now: int, iteration: int, next_ms: int | None
    ) -> bytes | int:
        """advanceJobScheduler: the next iteration's id, or a code saying why none was made."""
        keys = (
            *(
                self._prefix + s
                for s in ("repeat", "delayed", "wait", "paused", "meta", "prioritized")
            ),
            *(self._prefix + s for s in ("marker", "id", "events", "pc", "active")),
            self._prefix + job_id,
        )
        args = (
            self._prefix,
            scheduler_id,
            job_id,
            now,
            iteration,
            "" if next_ms is None else next_ms,
        )
        script = load_scripts()["advanceJobScheduler"]
        reply: bytes | int = await script.run(self._client, keys, args)
        return reply
