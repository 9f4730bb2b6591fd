"""Flows on Redis: a job's children as BullMQ keeps them, and the step-job move.

A parent ``P:N:<id>`` keeps ``:dependencies`` (keys of pending children), ``:processed``
(child key -> return value JSON), ``:failed`` (child key -> reason, for children with
continue/ignore-on-failure; "ignored" in the readers) and ``:unsuccessful`` (children that
failed with fail-parent-on-failure). The parent side of a child's completion or failure is
done by the finishing script itself (lua/lib.lua, "Flows").
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ...errors import (
    BackendUnavailableError,
    DockyardError,
    InvalidJobError,
    InvalidOptionError,
    PendingChildrenError,
    ScriptCode,
    error_for_code,
)
from ..flowparts import flow_refused
from ..flowstore import FlowNode, FlowStore
from .connection import ConnectionLost, RedisClient, ReplyError
from .keys import QueueKeys
from .scripts import load_scripts
from .slots import check_flow_slots


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _value(raw: bytes) -> Any:
    """A child's return value as stored (JSON text; plain text if it is not JSON)."""
    try:
        return json.loads(raw)
    except ValueError:
        return _text(raw)


def _pairs(flat: list[bytes]) -> list[tuple[bytes, bytes]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


class RedisFlows:
    """The flow operations of one queue's jobs (reads, and moving to waiting-children)."""

    def __init__(self, client: RedisClient, keys: QueueKeys) -> None:
        self._client = client
        self._keys = keys
        scripts = load_scripts()
        self._move = scripts["moveToWaitingChildren"]
        self._add_flow = scripts["addFlow"]
        self._detach = scripts["removeChildDependency"]

    async def _many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Several reads in one round trip; a lost connection is BackendUnavailableError."""
        try:
            conn = await self._client.connection()
            futures = [conn.send(command) for command in commands]
            replies = [await f for f in futures]
        except ConnectionLost as exc:
            raise BackendUnavailableError(
                f"lost the connection to Redis at {self._client.address} ({exc})"
            ) from None
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return replies

    def job_key(self, job_id: str) -> str:
        """The full key children use to name this queue's job ``job_id``."""
        return self._keys.job(job_id)

    def _flow_args(self, nodes: Sequence[FlowNode], now: int) -> list[Any]:
        """addFlow's ARGV: the prefix, now, then 14 fields per node."""
        prefix = self._keys.prefix
        args: list[Any] = [prefix, now]
        for node in nodes:
            job = node.job
            if job.job_id is None:
                raise InvalidJobError(f"a flow node in queue {node.queue!r} has no job id")
            if job.dedup is not None:
                raise InvalidOptionError("deduplication is not available for jobs of a flow")
            parent: tuple[str, ...] = ("", "", "", "")
            if node.parent_id is not None:
                queue_key = f"{prefix}:{node.parent_queue}"
                info: dict[str, Any] = {"id": node.parent_id, "queueKey": queue_key}
                if node.on_failure is not None:
                    info[node.on_failure] = True  # the flag only when set, as BullMQ
                text = json.dumps(info, separators=(",", ":"), ensure_ascii=False)
                parent = (f"{queue_key}:{node.parent_id}", queue_key, node.parent_id, text)
            args += (
                node.queue,
                job.job_id,
                job.name,
                job.data,
                job.opts,
                job.timestamp,
                job.delay,
                job.priority,
                b"1" if job.lifo else b"0",
                b"1" if node.has_children else b"0",
                *parent,
            )
        return args

    async def add_flow(self, nodes: Sequence[FlowNode]) -> list[str]:
        """Store a whole tree at once (one script: all checks before any write); the ids
        in ``nodes`` order. A missing parent (JobNotFoundError) or an id that is another
        parent's child (InvalidJobError) refuses the whole flow."""
        if not nodes:
            return []
        queues = {node.queue for node in nodes}
        queues.update(node.parent_queue for node in nodes if node.parent_queue is not None)
        check_flow_slots(self._client.address, self._keys.prefix, sorted(queues))
        args = self._flow_args(nodes, int(time.time() * 1000))
        try:
            reply = await self._add_flow.run(self._client, (), args)
        except ConnectionLost as exc:
            raise BackendUnavailableError(
                f"add flow: the connection to Redis was lost before the reply ({exc}); the "
                "flow may or may not have been added"
            ) from None
        code = int(reply[0])
        if code < 0:
            culprit = int(reply[1]) if len(reply) > 1 else 0
            raise flow_refused(code, nodes[culprit])
        return [str(node.job.job_id) for node in nodes]

    async def remove_child_dependency(self, job_id: str) -> bool:
        """Detach the job from its parent: True if it was a pending dependency (a parent
        left with none goes to wait), False if it had no parent or was not pending."""
        try:
            code = await self._detach.run(self._client, (self._keys.job(job_id),), ())
        except ConnectionLost as exc:
            raise BackendUnavailableError(
                f"remove_child_dependency: the connection to Redis was lost before the reply "
                f"({exc}); the job may or may not have been detached"
            ) from None
        if code < 0:
            raise error_for_code(code, job_id, "remove_child_dependency")
        return bool(code == 0)

    async def move_to_waiting_children(
        self, job_id: str, token: str, child_key: str | None, now: int
    ) -> bool:
        """Park an active job until its children finish: True if it moved, False if no
        child is pending (it stays active, locked, and should carry on)."""
        key = self._keys.job(job_id)
        keys = (
            self._keys.key("active"),
            self._keys.key("waiting-children"),
            key,
            key + ":dependencies",
            key + ":unsuccessful",
            self._keys.key("stalled"),
            self._keys.key("events"),
            self._keys.key("meta"),
        )
        args = (token, child_key or "", now, job_id, self._keys.job_prefix)
        try:
            code = await self._move.run(self._client, keys, args)
        except ConnectionLost as exc:
            raise BackendUnavailableError(
                f"move to waiting-children: the connection to Redis was lost before the reply "
                f"({exc}); the job may or may not have moved"
            ) from None
        if code < 0:
            raise error_for_code(code, job_id, "move to waiting-children")
        return bool(code == 0)

    async def finish_error(self, code: int, job_id: str, operation: str) -> DockyardError:
        """The error for a finishing script's negative code; a completion refused for
        pending children says how many are pending."""
        if code != ScriptCode.PENDING_DEPENDENCIES:
            return error_for_code(code, job_id, operation)
        (pending,) = await self._many(("SCARD", self._keys.job(job_id) + ":dependencies"))
        return PendingChildrenError(
            f"{operation}: job {job_id} still has {pending} pending children; a parent "
            "completes only after all of them (use Job.move_to_waiting_children to wait)"
        )

    async def children_values(self, job_id: str) -> dict[str, Any]:
        """``{child key: return value}`` of the children that completed."""
        (flat,) = await self._many(("HGETALL", self._keys.job(job_id) + ":processed"))
        return {_text(k): _value(v) for k, v in _pairs(flat)}

    async def ignored_failures(self, job_id: str) -> dict[str, str]:
        """``{child key: failure reason}`` of children failed with continue/ignore policy."""
        (flat,) = await self._many(("HGETALL", self._keys.job(job_id) + ":failed"))
        return {_text(k): _text(v) for k, v in _pairs(flat)}

    async def dependencies(self, job_id: str) -> dict[str, Any]:
        """All four kinds of children, as BullMQ's ``getDependencies()`` without options."""
        key = self._keys.job(job_id)
        processed, pending, ignored, failed = await self._many(
            ("HGETALL", key + ":processed"),
            ("SMEMBERS", key + ":dependencies"),
            ("HGETALL", key + ":failed"),
            ("ZRANGE", key + ":unsuccessful", 0, -1),
        )
        return {
            "processed": {_text(k): _value(v) for k, v in _pairs(processed)},
            "unprocessed": sorted(_text(m) for m in pending),
            "failed": [_text(m) for m in failed],
            "ignored": {_text(k): _text(v) for k, v in _pairs(ignored)},
        }

    async def dependencies_count(self, job_id: str) -> dict[str, int]:
        """How many children of each kind (BullMQ's ``getDependenciesCount()``)."""
        key = self._keys.job(job_id)
        replies = await self._many(
            ("HLEN", key + ":processed"),
            ("SCARD", key + ":dependencies"),
            ("HLEN", key + ":failed"),
            ("ZCARD", key + ":unsuccessful"),
        )
        processed, unprocessed, ignored, failed = (int(n) for n in replies)
        return {
            "processed": processed,
            "unprocessed": unprocessed,
            "ignored": ignored,
            "failed": failed,
        }


def _is_a_flow_store(flows: RedisFlows) -> FlowStore:
    """Static check (mypy): RedisFlows satisfies the FlowStore protocol."""
    return flows
