"""RedisBackend: the Backend protocol on Redis, in BullMQ's data model."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ...errors import (
    BackendUnavailableError,
    ClusterSlotError,
    DockyardError,
    JobNotFoundError,
    error_for_code,
)
from ...job import Job
from ..base import Fetched, Finish, Lease, NewJob
from .admin import RedisAdmin
from .connection import ConnectionLost, RedisAddress, RedisClient
from .flows import RedisFlows
from .health import server_warnings
from .keys import QueueKeys, validate_queue_name
from .schedulers import RedisSchedulers, advance_fetched
from .scripts import QueueScripts
from .slots import bind_queue, queue_slot

_LIST_STATES = {"waiting": "wait", "wait": "wait", "paused": "paused", "active": "active"}
_ZSET_STATES = {
    "delayed": "delayed",
    "prioritized": "prioritized",
    "completed": "completed",
    "failed": "failed",
    "waiting-children": "waiting-children",
}


def _now() -> int:
    return int(time.time() * 1000)


class RedisBackend(RedisAdmin):
    """One queue on Redis. Commands share one auto-pipelined connection; a worker's wait
    for work uses a second, named, blocking connection as Node BullMQ's does."""

    kind = "redis"

    def __init__(
        self, url: str, queue: str, *, prefix: str = "bull", retry_for: float | None = 20.0
    ) -> None:
        validate_queue_name(queue, prefix)
        self.queue = queue
        self.prefix = prefix
        self.keys = QueueKeys(prefix, queue)
        self._url = url
        # On a cluster: bound to the queue's slot, or refused here, before any write.
        self.address = bind_queue(RedisAddress.from_url(url), prefix, queue)
        self.client = RedisClient(self.address, retry_for=retry_for)
        self.scripts = QueueScripts(self.client, self.keys)
        self.flows = RedisFlows(self.client, self.keys)
        self.schedulers = RedisSchedulers(self.client, self.keys)
        self._blocking: RedisClient | None = None
        self._listener: RedisClient | None = None
        self._interrupted = False
        self._retry_for = retry_for

    def __repr__(self) -> str:
        return f"<RedisBackend {self.address} {self.keys.base}>"

    def reopen(self) -> RedisBackend:
        return RedisBackend(self._url, self.queue, prefix=self.prefix, retry_for=self._retry_for)

    def sibling(self, queue: str) -> RedisBackend:
        return RedisBackend(self._url, queue, prefix=self.prefix, retry_for=self._retry_for)

    async def server_warnings(self) -> list[str]:
        """Settings of the server that can lose jobs (eviction, no persistence), a line each."""
        return await server_warnings(self.client)

    async def close(self) -> None:
        await self.client.close()
        if self._blocking is not None:
            await self._blocking.close()
        if self._listener is not None:
            await self._listener.close()

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except ConnectionLost as exc:
            raise BackendUnavailableError(
                f"{what}: the connection to Redis at {self.address} was lost before the reply "
                f"({exc}); the change may or may not have been applied"
            ) from None

    async def _read(self, *args: Any) -> Any:
        """A read-only command: retried once over a fresh connection if the socket drops."""
        for attempt in (1, 2):
            try:
                return await self.client.execute(*args)
            except ConnectionLost:
                if attempt == 2:
                    raise BackendUnavailableError(
                        f"lost the connection to Redis at {self.address} twice during {args[0]}"
                    ) from None
        raise AssertionError("unreachable")

    # -- producers --------------------------------------------------------------------

    def _check_dead_letter_slots(self, jobs: Sequence[NewJob]) -> None:
        """On a cluster, a job's dead-letter queue must be keyable too (a hash tag), or its
        copy would fail only when the job fails for good: refuse the add now."""
        for job in jobs:
            if '"dlq"' not in job.opts:
                continue
            name = json.loads(job.opts).get("dlq")
            if not isinstance(name, str):
                continue
            try:
                queue_slot(self.prefix, name)
            except ClusterSlotError:
                raise ClusterSlotError(
                    f"dead_letter_queue {name!r} cannot live on the Redis Cluster under prefix "
                    f"{self.prefix!r}: its keys would span slots; put a hash tag in its name "
                    "(e.g. '{" + name + "}') or use prefix='{bull}'. Nothing was written"
                ) from None

    async def add(self, job: NewJob) -> str:
        if self.address.cluster is not None:
            self._check_dead_letter_slots((job,))
        reply = await self._call(
            "add",
            self.scripts.add_job(
                job.job_id,
                job.name,
                job.data,
                job.opts,
                job.timestamp,
                job.delay,
                job.priority,
                job.lifo,
                job.dedup,
            ),
        )
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        if self.address.cluster is not None:
            self._check_dead_letter_slots(jobs)
        batch = [
            (j.job_id, j.name, j.data, j.opts, j.timestamp, j.delay, j.priority, j.lifo, j.dedup)
            for j in jobs
        ]
        replies = await self._call("add_bulk", self.scripts.add_jobs(batch))
        return [r.decode() if isinstance(r, bytes) else str(r) for r in replies]

    # -- reads ------------------------------------------------------------------------

    def _job(self, job_id: str, flat: Sequence[bytes], token: str | None = None) -> Job:
        return Job.from_redis(job_id, flat, queue_name=self.queue, backend=self, token=token)

    async def get_job(self, job_id: str) -> Job | None:
        flat = await self._read("HGETALL", self.keys.job(job_id))
        if not flat:
            return None
        return self._job(job_id, flat)

    async def get_state(self, job_id: str) -> str:
        state: str = await self._call("get_state", self.scripts.get_state(job_id))
        return state

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        conn = await self.client.connection()
        commands = []
        for state in states:
            if state in _LIST_STATES:
                commands.append(("LLEN", self.keys.key(_LIST_STATES[state])))
            elif state in _ZSET_STATES:
                commands.append(("ZCARD", self.keys.key(_ZSET_STATES[state])))
            else:
                raise ValueError(state)
        try:
            replies = await conn.many(commands)
        except ConnectionLost:
            raise BackendUnavailableError(f"lost the connection to {self.address}") from None
        return {state: int(n) for state, n in zip(states, replies, strict=True)}

    async def get_job_ids(self, state: str, start: int, end: int, asc: bool) -> list[str]:
        if state in _LIST_STATES:
            key = self.keys.key(_LIST_STATES[state])
            if asc:
                ids = await self._read("LRANGE", key, -(end + 1), -(start + 1))
                ids.reverse()
            else:
                ids = await self._read("LRANGE", key, start, end)
        elif state in _ZSET_STATES:
            key = self.keys.key(_ZSET_STATES[state])
            ids = await self._read("ZRANGE" if asc else "ZREVRANGE", key, start, end)
        else:
            raise ValueError(state)
        return [i.decode() for i in ids]

    async def get_logs(self, job_id: str, start: int, end: int) -> list[str]:
        lines = await self._read("LRANGE", self.keys.job(job_id) + ":logs", start, end)
        return [line.decode("utf-8", "replace") for line in lines]

    async def is_paused(self) -> bool:
        return bool(await self._read("HEXISTS", self.keys.key("meta"), "paused"))

    # -- job updates ------------------------------------------------------------------

    async def update_progress(self, job_id: str, progress: str) -> None:
        code = await self._call("update_progress", self.scripts.update_progress(job_id, progress))
        if code < 0:
            raise error_for_code(code, job_id, "update_progress")

    async def add_log(self, job_id: str, line: str, keep: int | None) -> int:
        count: int = await self._call("log", self.scripts.add_log(job_id, line, keep))
        if count < 0:
            raise error_for_code(count, job_id, "log")
        return count

    # -- admin ------------------------------------------------------------------------

    async def pause(self) -> None:
        await self._call("pause", self.scripts.pause(True))

    async def resume(self) -> None:
        await self._call("resume", self.scripts.pause(False))

    # -- workers ----------------------------------------------------------------------

    def _fetched(self, reply: list[Any], token: str) -> Fetched:
        jobs = [self._job(reply[i].decode(), reply[i + 1], token) for i in range(2, len(reply), 2)]
        return Fetched(jobs, int(reply[0]), int(reply[1]))

    async def fetch(self, lease: Lease, count: int) -> Fetched:
        reply = await self._call(
            "fetch",
            self.scripts.move_to_active(
                _now(),
                lease.token,
                lease.lock_ms,
                lease.worker_name,
                count,
                lease.limit_max,
                lease.limit_ms,
            ),
        )
        return await advance_fetched(self.scripts, self._fetched(reply, lease.token))

    def worker_client_name(self, worker_name: str | None) -> str:
        """Node's name for a worker's blocking connection: ``P:<base64(N)>[:w:<name>]``."""
        encoded = base64.b64encode(self.queue.encode()).decode()
        base = f"{self.prefix}:{encoded}"
        return f"{base}:w:{worker_name}" if worker_name else base

    async def wait_for_work(self, timeout: float, worker_name: str | None) -> float | None:
        if self._blocking is None:
            self._blocking = RedisClient(
                self.address, name=self.worker_client_name(worker_name), retry_for=self._retry_for
            )
        self._interrupted = False
        try:
            # A socket that died silently would block forever: give up on it after the
            # server's own timeout plus a margin, and reconnect on the next wait.
            async with asyncio.timeout(timeout + 2.0):
                reply = await self._blocking.execute(
                    "BZPOPMIN", self.keys.key("marker"), f"{max(timeout, 0.001):.3f}"
                )
        except TimeoutError:
            self._blocking.drop()
            return None
        except ConnectionLost:
            if self._interrupted:
                return None
            raise BackendUnavailableError(
                f"lost the blocking connection to {self.address}"
            ) from None
        if not reply:
            return None
        due = int(float(reply[2]))
        return float(due) if due > _now() else None

    async def interrupt_wait(self) -> None:
        self._interrupted = True
        if self._blocking is not None:
            self._blocking.drop()

    async def ensure_worker_connection(self, worker_name: str | None) -> None:
        """Open the named blocking connection now, so ``getWorkers()`` lists this worker."""
        if self._blocking is None:
            self._blocking = RedisClient(
                self.address, name=self.worker_client_name(worker_name), retry_for=self._retry_for
            )
        await self._blocking.connection()

    async def finish(
        self, result: Finish, next_lease: Lease | None, count: int = 1
    ) -> Fetched | None:
        scripts = self.scripts
        now = _now()
        outcome = result.outcome
        if outcome in ("completed", "failed"):
            lease = next_lease
            reply = await self._call(
                outcome,
                scripts.move_to_finished(
                    result.job_id,
                    result.token,
                    now,
                    outcome == "completed",
                    result.value,
                    result.stacktrace,
                    result.keep_count,
                    result.keep_age,
                    result.attempts,
                    count if lease else 0,
                    lease.token if lease else "",
                    lease.lock_ms if lease else 0,
                    lease.worker_name if lease else None,
                    lease.limit_max if lease else None,
                    lease.limit_ms if lease else None,
                    result.metrics,
                ),
            )
            if isinstance(reply, int):
                raise await self.flows.finish_error(reply, result.job_id, f"move to {outcome}")
            if lease is None:
                return None
            return await advance_fetched(self.scripts, self._fetched(reply, lease.token))
        if outcome in ("retry", "release"):
            release = outcome == "release"
            code = await self._call(
                outcome,
                scripts.retry_job(
                    result.job_id,
                    result.token,
                    now,
                    True if release else result.lifo,
                    result.value,
                    result.stacktrace,
                    count_attempt=not release,
                ),
            )
        elif outcome == "delayed":
            code = await self._call(
                "delay",
                scripts.move_to_delayed(
                    result.job_id,
                    result.token,
                    now,
                    result.delay_ms,
                    not result.count_attempt,
                    result.value,
                    result.stacktrace,
                ),
            )
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
        if code < 0:
            raise error_for_code(code, result.job_id, f"move to {outcome}")
        return await self.fetch(next_lease, count) if next_lease else None

    async def finish_many(
        self, results: Sequence[Finish], next_lease: Lease | None, count: int = 1
    ) -> tuple[list[DockyardError | None], Fetched | None]:
        """Store several completed/finally failed outcomes in one script call, each checked
        against its own lock; fetch up to ``count`` next jobs when at least one was stored.
        Returns one error (or None) per outcome, in order, and the fetched jobs."""
        lease = next_lease
        reply = await self._call(
            "finish",
            self.scripts.move_many_to_finished(
                [
                    (
                        r.job_id,
                        r.token,
                        r.outcome == "completed",
                        r.value,
                        r.stacktrace,
                        r.keep_count,
                        r.keep_age,
                        r.attempts,
                        r.metrics,
                    )
                    for r in results
                ],
                _now(),
                count if lease else 0,
                lease.token if lease else "",
                lease.lock_ms if lease else 0,
                lease.worker_name if lease else None,
                lease.limit_max if lease else None,
                lease.limit_ms if lease else None,
            ),
        )
        n = len(results)
        errors: list[DockyardError | None] = []
        for r, code in zip(results, reply[:n], strict=True):
            errors.append(
                None
                if code == 0
                else await self.flows.finish_error(code, r.job_id, f"move to {r.outcome}")
            )
        if lease is None:
            return errors, None
        return errors, await advance_fetched(self.scripts, self._fetched(reply[n:], lease.token))

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        lost = await self._call(
            "extend locks", self.scripts.extend_locks(list(locks.items()), lock_ms)
        )
        return [i.decode() for i in lost]

    async def locked_with(self, tokens: Collection[str]) -> dict[str, str]:
        wanted = set(tokens)
        if not wanted:
            return {}
        ids = [i.decode() for i in await self._read("LRANGE", self.keys.key("active"), 0, -1)]
        if not ids:
            return {}
        values = await self._read("MGET", *(self.keys.job(i) + ":lock" for i in ids))
        held = {i: v.decode() for i, v in zip(ids, values, strict=True) if v is not None}
        return {i: token for i, token in held.items() if token in wanted}

    async def check_stalled(self, max_stalled_count: int, interval_ms: int) -> list[str]:
        ids = await self._call(
            "stalled check",
            self.scripts.move_stalled_jobs_to_wait(max_stalled_count, _now(), interval_ms),
        )
        return [i.decode() for i in ids]

    async def wait_finished(self, job_id: str, timeout: float | None) -> tuple[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        events_key = self.keys.key("events")
        last = await self._read("XREVRANGE", events_key, "+", "-", "COUNT", 1)
        last_id = last[0][0] if last else b"0-0"
        listener = RedisClient(self.address, retry_for=self._retry_for)
        try:
            while True:
                found = await self._finished_state(job_id)
                if found is not None:
                    return found
                block = 5.0 if deadline is None else deadline - time.monotonic()
                if block <= 0:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
                block_ms = max(1, int(min(block, 5.0) * 1000))
                reply = await listener.execute(
                    "XREAD", "BLOCK", block_ms, "COUNT", 1000, "STREAMS", events_key, last_id
                )
                if not reply:
                    continue
                for entry_id, fields in reply[0][1]:
                    last_id = entry_id
                    event = dict(zip(fields[::2], fields[1::2], strict=False))
                    if event.get(b"jobId") != job_id.encode():
                        continue
                    if event.get(b"event") == b"completed":
                        return "completed", _json(event.get(b"returnvalue", b"null"))
                    if event.get(b"event") == b"failed":
                        state = await self.get_state(job_id)
                        if state in ("failed", "unknown"):
                            reason = event.get(b"failedReason", b"")
                            return "failed", reason.decode("utf-8", "replace")
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    async def _finished_state(self, job_id: str) -> tuple[str, Any] | None:
        job = await self.get_job(job_id)
        if job is None:
            # Finished and removed by retention before we looked: its outcome is in the
            # recent events, if anywhere.
            found = await self._outcome_from_events(job_id)
            if found is None:
                raise JobNotFoundError(
                    f"job {job_id} does not exist in queue {self.queue!r} (it may have been "
                    "removed); there is nothing to wait for"
                )
            return found
        if job.finished_on is None:
            return None
        if job.failed_reason is not None and await self.get_state(job_id) == "failed":
            return "failed", job.failed_reason
        return "completed", job.return_value

    async def _outcome_from_events(self, job_id: str) -> tuple[str, Any] | None:
        """The newest ``completed``/``failed`` event of the job among the last 2,000."""
        entries = await self._read("XREVRANGE", self.keys.key("events"), "+", "-", "COUNT", 2000)
        wanted = job_id.encode()
        for _, fields in entries:
            event = dict(zip(fields[::2], fields[1::2], strict=False))
            if event.get(b"jobId") != wanted:
                continue
            if event.get(b"event") == b"completed":
                return "completed", _json(event.get(b"returnvalue", b"null"))
            if event.get(b"event") == b"failed":
                return "failed", event.get(b"failedReason", b"").decode("utf-8", "replace")
        return None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
