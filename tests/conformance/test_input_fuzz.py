"""Fuzzing the API boundary on every store: whatever a user passes as data, name, id,
option, progress, log line or return value is either stored and read back equal, or
refused with a typed DockyardError; either way the store still answers afterwards
(field report #1, #2, #3, #21)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard import DockyardError, InvalidJobError, InvalidOptionError, Job, Queue, Worker
from dockyard.options import RESERVED_IDS

FUZZ = settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_LONE = st.sampled_from(["\udce9", "\ud800", "\udfff"])
#: Text, now and then with a lone surrogate in it.
TEXT = st.one_of(
    st.text(max_size=12),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), _LONE, st.text(max_size=4)),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(),
    TEXT,
)
KEYS = st.one_of(TEXT, TEXT, st.integers(-5, 5), st.none(), st.booleans(), st.floats(0, 1))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
DATA = st.one_of(JSONISH, st.binary(max_size=4), st.sets(st.integers(), max_size=2))
#: Ids built to hit the queue's key names, and plain ones.
IDS = st.one_of(
    TEXT,
    st.sampled_from(sorted(RESERVED_IDS)),
    st.builds(
        lambda head, mid, tail: f"{head}:{mid}:{tail}",
        st.sampled_from([*sorted(RESERVED_IDS), "order", "a"]),
        st.text("abc:7", min_size=1, max_size=3),
        st.one_of(st.integers(0, 10**13).map(str), st.text("xyz:", min_size=1, max_size=3)),
    ),
    st.integers(-3, 10**6).map(str),
)


def _storable(value: Any, depth: int = 0) -> bool:
    """The rule, written independently: JSON that reads back equal."""
    if depth > 400:
        return False
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return all(_storable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _storable(k) for k in value) and all(
            _storable(v, depth + 1) for v in value.values()
        )
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types (``True`` is not ``1``, ``1.0`` is not ``1``)."""
    return bool(a == b) and json.dumps(a) == json.dumps(b)


def _run(url: str, body: Callable[[Queue], Awaitable[None]]) -> None:
    """Run ``body`` on a fresh queue of the store, then check the store still answers."""

    async def main() -> None:
        async with Queue(f"fz-{uuid.uuid4().hex[:10]}", url=url) as queue:
            await queue.set_global_concurrency(7)
            await body(queue)
            probe = await queue.add("probe", {"ok": 1})
            stored = await queue.get_job(probe.id)
            assert stored is not None and stored.data == {"ok": 1}
            assert (await queue.get_global_limits())["concurrency"] == 7

    asyncio.run(main())


@FUZZ
@given(data=DATA)
def test_data_is_stored_as_given_or_refused(backend_url: str, data: Any) -> None:
    async def body(queue: Queue) -> None:
        try:
            job = await queue.add("t", data)
        except InvalidJobError:
            assert not _storable(data), data
            assert sum((await queue.get_job_counts()).values()) == 0
            return
        assert _storable(data), data
        stored = await queue.get_job(job.id)
        expected = {} if data is None else data  # no data (None) is stored as {}
        assert stored is not None and _same(stored.data, expected)

    _run(backend_url, body)


@FUZZ
@given(name=TEXT, update=DATA)
def test_names_and_updated_data_are_stored_or_refused(
    backend_url: str, name: str, update: Any
) -> None:
    async def body(queue: Queue) -> None:
        try:
            job = await queue.add(name, {"v": 1})
        except InvalidJobError:
            assert not name or not _storable(name)
            return
        stored = await queue.get_job(job.id)
        assert stored is not None and stored.name == name
        try:
            await job.update_data(update)
        except InvalidJobError:
            assert not _storable(update)
            update_seen: Any = {"v": 1}
        else:
            update_seen = update
        again = await queue.get_job(job.id)
        assert again is not None and _same(again.data, update_seen)

    _run(backend_url, body)


@FUZZ
@given(job_id=IDS)
def test_custom_ids_are_stored_or_refused_and_never_touch_queue_keys(
    backend_url: str, job_id: str
) -> None:
    async def body(queue: Queue) -> None:
        try:
            job = await queue.add("t", {"id": 1}, job_id=job_id)
        except InvalidJobError:
            pass
        else:
            assert job.id == job_id
            stored = await queue.get_job(job_id)
            assert stored is not None and stored.data == {"id": 1}
        # Reading or removing by the same id answers for that job, or is refused.
        try:
            found = await queue.get_job(job_id)
            removed = await queue.remove(job_id)
        except InvalidJobError:
            return
        assert removed is (found is not None)
        assert await queue.get_job(job_id) is None

    _run(backend_url, body)


PROGRESS = st.one_of(
    st.integers(),
    st.floats(),
    st.dictionaries(KEYS, SCALARS, max_size=3),
    st.booleans(),
    TEXT,
)


@FUZZ
@given(progress=PROGRESS, line=st.one_of(TEXT, st.integers(0, 3)))
def test_progress_and_log_lines_are_stored_or_refused(
    backend_url: str, progress: Any, line: Any
) -> None:
    async def body(queue: Queue) -> None:
        job = await queue.add("t", {})
        try:
            await job.update_progress(progress)
        except (InvalidJobError, InvalidOptionError):
            assert isinstance(progress, (bool, str)) or not _storable(progress)
        else:
            stored = await queue.get_job(job.id)
            assert stored is not None and _same(stored.progress, progress)
        try:
            await job.log(line)
        except (InvalidJobError, InvalidOptionError):
            assert not isinstance(line, str) or not _storable(line)
            assert await queue.get_job_logs(job.id) == []
        else:
            assert await queue.get_job_logs(job.id) == [line]

    _run(backend_url, body)


OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "delay": st.one_of(st.floats(), st.integers(-5, 10**7), TEXT),
        "priority": st.one_of(st.integers(-2, 2**21 + 1), st.floats(0, 3)),
        "attempts": st.one_of(st.integers(-1, 5), st.none()),
        "lifo": st.one_of(st.booleans(), st.integers(0, 1)),
        "backoff": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["fixed", "exponential", "x"]),
                    "delay": st.floats(-1, 10),
                }
            ),
        ),
        "remove_on_complete": st.one_of(st.booleans(), st.integers(-1, 5)),
        "timeout": st.one_of(st.floats(-1, 100), st.none()),
        "deduplication": st.fixed_dictionaries({"id": TEXT}),
        "dead_letter_queue": TEXT,
        "job_id": IDS,
        "keep_logs": st.integers(-1, 3),
    },
)


@FUZZ
@given(options=OPTIONS)
def test_options_are_applied_or_refused(backend_url: str, options: dict[str, Any]) -> None:
    async def body(queue: Queue) -> None:
        try:
            job = await queue.add("t", {"o": 1}, **options)
        except (InvalidJobError, InvalidOptionError):
            return
        stored = await queue.get_job(job.id)
        assert stored is not None and stored.data == {"o": 1}
        if "priority" in options:
            assert stored.opts.priority == options["priority"]
        if options.get("attempts") is not None:
            assert stored.opts.attempts == options["attempts"]
        if options.get("job_id") is not None:
            assert stored.id == options["job_id"]

    _run(backend_url, body)


@settings(
    max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=JSONISH)
def test_return_values_are_stored_as_returned_or_fail_the_job(backend_url: str, value: Any) -> None:
    async def give(job: Job) -> Any:
        return value

    async def body(queue: Queue) -> None:
        job = await queue.add("r", {})
        async with Worker(queue.name, give, url=backend_url):
            try:
                result = await job.wait_until_finished(timeout=10)
            except DockyardError as exc:
                assert not _storable(value), (value, exc)
                stored = await queue.get_job(job.id)
                assert stored is not None and stored.failed_reason
                return
        assert _storable(value) and _same(result, value)
        stored = await queue.get_job(job.id)
        assert stored is not None and _same(stored.return_value, value)

    _run(backend_url, body)


@pytest.mark.parametrize("bad", [{1: 2}, "caf\udce9", 2**64])
def test_the_oracle_agrees_with_the_store_on_known_cases(bad: Any) -> None:
    """The fuzz tests' independent rule refuses what the field report showed broken."""
    assert not _storable(bad)
