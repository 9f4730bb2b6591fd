"""What an add writes, key by key, in BullMQ's layout."""

from __future__ import annotations

import json

import redis
from dockyard import Backoff, Queue

from .conftest import events


async def test_a_standard_add_writes_bullmqs_hash_list_marker_and_events(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    job = await queue.add(
        "send",
        {"to": "a"},
        attempts=3,
        backoff=Backoff.fixed(1.5),
        remove_on_complete=5,
        keep_logs=10,
    )
    h = redis_sync.hgetall(f"bull:q:{job.id}")
    assert h["name"] == "send"
    assert json.loads(h["data"]) == {"to": "a"}
    assert json.loads(h["opts"]) == {
        "attempts": 3,
        "backoff": {"type": "fixed", "delay": 1500},
        "removeOnComplete": 5,
        "kl": 10,
    }
    assert int(h["timestamp"]) == round(job.timestamp * 1000)
    assert h["delay"] == "0" and h["priority"] == "0"
    assert redis_sync.lrange("bull:q:wait", 0, -1) == [job.id]
    assert redis_sync.zrange("bull:q:marker", 0, -1, withscores=True) == [("0", 0.0)]
    assert [e["event"] for e in events(redis_sync)] == ["added", "waiting"]
    assert events(redis_sync)[0] == {"event": "added", "jobId": job.id, "name": "send"}
    assert redis_sync.hget("bull:q:meta", "opts.maxLenEvents") == "10000"


async def test_fifo_adds_push_left_and_lifo_adds_push_right(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    a = await queue.add("a", {})
    b = await queue.add("b", {})
    c = await queue.add("c", {}, lifo=True)
    assert redis_sync.lrange("bull:q:wait", 0, -1) == [b.id, a.id, c.id]


async def test_the_id_counter_advances_for_custom_ids_too(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("a", {})
    await queue.add("b", {}, job_id="custom")
    await queue.add("c", {}, job_id="custom")
    assert redis_sync.get("bull:q:id") == "3"
    assert [e["event"] for e in events(redis_sync)][-1] == "duplicated"


async def test_a_delayed_add_scores_due_time_times_4096_with_a_per_ms_sequence(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    ts = 1_800_000_000.0
    a = await queue.add("a", {}, delay=5, timestamp=ts)
    b = await queue.add("b", {}, delay=5, timestamp=ts)
    due = int(ts * 1000) + 5000
    assert redis_sync.zrange("bull:q:delayed", 0, -1, withscores=True) == [
        (a.id, float(due * 4096)),
        (b.id, float(due * 4096 + 1)),
    ]
    assert redis_sync.hget(f"bull:q:{a.id}", "delay") == "5000"
    delayed = [e for e in events(redis_sync) if e["event"] == "delayed"]
    assert delayed[0] == {"event": "delayed", "jobId": a.id, "delay": str(due)}
    assert redis_sync.zscore("bull:q:marker", "1") == due
    assert redis_sync.llen("bull:q:wait") == 0


async def test_a_prioritized_add_scores_priority_times_2_32_plus_a_counter(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    a = await queue.add("a", {}, priority=7)
    b = await queue.add("b", {}, priority=7)
    assert redis_sync.zrange("bull:q:prioritized", 0, -1, withscores=True) == [
        (a.id, float(7 * 2**32 + 1)),
        (b.id, float(7 * 2**32 + 2)),
    ]
    assert redis_sync.get("bull:q:pc") == "2"
    assert redis_sync.hget(f"bull:q:{a.id}", "priority") == "7"


async def test_braces_in_the_prefix_are_kept_for_cluster_hash_tags(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    async with Queue("q", url=redis_url, prefix="{tenant}") as q:
        job = await q.add("a", {})
    assert redis_sync.exists(f"{{tenant}}:q:{job.id}")
    assert redis_sync.llen("{tenant}:q:wait") == 1


async def test_scripts_reload_after_the_servers_script_cache_is_flushed(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("a", {})
    redis_sync.script_flush()
    job = await queue.add("b", {})
    assert redis_sync.exists(f"bull:q:{job.id}")


async def test_a_bulk_add_reloads_flushed_scripts_too(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("a", {})
    redis_sync.script_flush()
    jobs = await queue.add_bulk([("b", {}), ("c", {})])
    assert [redis_sync.hget(f"bull:q:{job.id}", "name") for job in jobs] == ["b", "c"]
