"""What FlowProducer writes on Redis, key by key, as BullMQ's FlowProducer does
(bullmq-flows-schedulers.md A.1, A.3): parents in waiting-children, children enqueued by
their options, ``parentKey``/``parent`` JSON (flag only when set), ``opts.parent``."""

from __future__ import annotations

import json
from typing import Any

import redis
from dockyard import FlowProducer

from .conftest import events


async def test_a_flow_is_written_as_bullmqs_flow_producer_writes_it(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    async with FlowProducer(url=redis_url) as flows:
        node = await flows.add({
            "name": "parent", "queue": "pq", "data": {"p": 1},
            "opts": {"job_id": "p1", "delay": 5, "priority": 3},
            "children": [
                {"name": "a", "queue": "cq",
                 "opts": {"job_id": "a", "fail_parent_on_failure": True}},
                {"name": "b", "queue": "cq", "opts": {"job_id": "b", "delay": 60}},
                {"name": "c", "queue": "cq", "opts": {"job_id": "c", "priority": 2}},
                {"name": "d", "queue": "cq", "opts": {"job_id": "d", "lifo": True,
                                                      "remove_dependency_on_failure": True}},
            ],
        })  # fmt: skip
    assert node.job.id == "p1"
    parent = redis_sync.hgetall("bull:pq:p1")
    assert parent["delay"] == "5000" and parent["priority"] == "3"  # applied at release
    assert "parentKey" not in parent and "parent" not in parent
    assert redis_sync.zrange("bull:pq:waiting-children", 0, -1, withscores=True) == [
        ("p1", float(parent["timestamp"]))
    ]
    assert redis_sync.zcard("bull:pq:delayed") == redis_sync.zcard("bull:pq:prioritized") == 0
    assert [(e["event"], e["jobId"]) for e in events(redis_sync, "pq")] == [
        ("added", "p1"), ("waiting-children", "p1")
    ]  # fmt: skip
    assert redis_sync.get("bull:pq:id") == "1" and redis_sync.get("bull:cq:id") == "4"
    assert redis_sync.smembers("bull:pq:p1:dependencies") == {f"bull:cq:{c}" for c in "abcd"}
    flags: dict[str, dict[str, Any]] = {"a": {"fpof": True}, "b": {}, "c": {}, "d": {"rdof": True}}
    for child, flag in flags.items():
        fields = redis_sync.hgetall(f"bull:cq:{child}")
        assert fields["parentKey"] == "bull:pq:p1"
        assert json.loads(fields["parent"]) == {"id": "p1", "queueKey": "bull:pq", **flag}
        opts = json.loads(fields["opts"])
        assert opts["parent"] == {"id": "p1", "queue": "bull:pq"}
        assert {k: opts[k] for k in ("fpof", "cpof", "idof", "rdof") if k in opts} == flag
    assert redis_sync.lrange("bull:cq:wait", 0, -1) == ["a", "d"]  # LIFO: d is taken first
    assert redis_sync.zrange("bull:cq:delayed", 0, -1) == ["b"]
    assert redis_sync.zrange("bull:cq:prioritized", 0, -1) == ["c"]
    assert [e["jobId"] for e in events(redis_sync, "cq") if e["event"] == "added"] == list("abcd")


async def test_a_refused_flow_writes_nothing_not_even_the_id_counters(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    """The store's own check (a missing parent) runs before the first write."""
    async with FlowProducer(url=redis_url) as flows:
        try:
            await flows.add({
                "name": "r", "queue": "cq", "children": [{"name": "x", "queue": "dq"}],
                "opts": {"parent": {"id": "gone", "queue": "bull:pq"}},
            })  # fmt: skip
        except LookupError:
            pass
        else:
            raise AssertionError("a missing parent was accepted")
    assert redis_sync.keys("*") == []
