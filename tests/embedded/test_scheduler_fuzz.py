"""Properties of the embedded stores' schedulers under arbitrary input (Hypothesis)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.backends import open_backend
from dockyard.backends.memory import reset
from dockyard.backends.schedulerlogic import every_after, first_every_slot
from dockyard.backends.schedulerstore import SchedulerSpec, SchedulerStore

NOW = 1_750_000_000_000

everies = st.integers(min_value=1, max_value=10**9)
times = st.integers(min_value=0, max_value=2 * 10**12)


@given(prev=times, every=everies, now=times, offset=st.integers(0, 10**9))
def test_the_next_every_slot_is_never_in_the_past_nor_a_back_fill(
    prev: int, every: int, now: int, offset: int
) -> None:
    offset %= every
    slot = every_after(prev, every, now, offset)
    if prev + every >= now:
        assert slot == prev + every
    else:  # a gap: the first slot of the phase after now, one run for all missed ones
        assert now < slot <= now + every
        assert slot % every == offset % every


@given(every=everies, now=times, offset=st.integers(1, 10**9))
def test_a_user_offset_gives_a_first_slot_of_that_phase_after_now(
    every: int, now: int, offset: int
) -> None:
    offset %= every
    slot = first_every_slot(every, now, None, offset)
    if offset:
        assert now < slot <= now + every and slot % every == offset
    else:
        assert slot == now


upserts = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([1_000, 60_000]), st.none()),  # every, or a cron pattern
        st.one_of(st.none(), st.integers(0, 10**8)),  # start, relative to now
        st.one_of(st.none(), st.integers(1, 999)),  # offset
        st.integers(0, 100_000),  # how much later than the previous upsert
        st.integers(0, 9),  # data
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=upserts, kind=st.sampled_from(["sqlite", "memory"]))
def test_any_sequence_of_upserts_leaves_exactly_one_pending_iteration(
    tmp_path: Path, steps: list[tuple[int | None, int | None, int | None, int, int]], kind: str
) -> None:
    """Upserting again never doubles an iteration nor leaves the scheduler without one
    (BullMQ #2988, #3085), whatever the changes and their timing."""
    url = (
        f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db"
        if kind == "sqlite"
        else f"memory://f-{uuid.uuid4().hex}"
    )

    async def run() -> None:
        backend = open_backend(url, "q")
        store: SchedulerStore = backend.schedulers  # type: ignore[attr-defined]
        now = NOW
        try:
            for every, start, offset, later, data in steps:
                now += later
                spec = SchedulerSpec(
                    scheduler_id="s", every_ms=every, pattern=None if every else "0 * * * *",
                    tz=None, start_ms=None if start is None else now + start, end_ms=None,
                    limit=None, offset_ms=offset, immediately=False, name="n",
                    data=f'{{"d": {data}}}', opts="{}",
                )  # fmt: skip
                cron_next = None if every else (now // 3_600_000 + 1) * 3_600_000
                job_id = await store.upsert_scheduler(spec, cron_next, now)
                ids = []
                for state in ("waiting", "delayed", "prioritized", "paused"):
                    ids += await backend.get_job_ids(state, 0, -1, True)
                assert ids == [job_id]
                info = await store.get_scheduler("s")
                assert info is not None and job_id == f"repeat:s:{info.next_ms}"
                assert info.iteration_count == 1
                job = await backend.get_job(job_id)
                assert job is not None and job.data == {"d": data}
        finally:
            await backend.close()
            if kind == "memory":
                reset(url)

    asyncio.run(run())
