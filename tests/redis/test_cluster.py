"""Redis Cluster: ``redis+cluster://`` URLs route each queue to the node serving its slot.

One private 3-primary + 3-replica cluster serves the whole session (tests/rediscluster.py);
tests that fail over or move a slot leave it settled for the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import redis
from dockyard import (
    BackendPermissionError,
    FlowProducer,
    InvalidOptionError,
    Job,
    Queue,
    QueueEvents,
    Worker,
)
from dockyard.backends import display_url, list_queues, open_backend
from dockyard.backends.redis.address import RedisAddress
from dockyard.backends.redis.slots import key_slot, queue_slot
from dockyard.errors import ClusterSlotError

from ..rediscluster import PREFIX, RedisCluster
from ..waiting import wait_for
from .test_acl import documented_acl, password

ROOT = Path(__file__).resolve().parents[2]
#: Jobs per run in the failover and migration tests (the issue's figure): half are added
#: before the slot moves, half while it moves, and the worker runs throughout.
JOBS = 10_000
CHUNK = 250


def keys_everywhere(cluster: RedisCluster, pattern: str) -> dict[int, list[str]]:
    """``{primary port: keys matching pattern}`` for every primary holding any."""
    found: dict[int, list[str]] = {}
    for port in cluster.primaries():
        with contextlib.closing(cluster.client(port)) as client:
            keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            found[port] = keys
    return found


def tryagains(cluster: RedisCluster, port: int) -> int:
    """How many TRYAGAIN replies node ``port`` has sent so far."""
    with contextlib.closing(cluster.client(port)) as client:
        stats = client.info("errorstats")
    return int(stats.get("errorstat_TRYAGAIN", {}).get("count", 0))


# -- URLs and slots (no server) ---------------------------------------------------------


def test_a_cluster_url_lists_its_seeds() -> None:
    address = RedisAddress.from_url("redis+cluster://u:pw@h1:7000,h2,[::1]:7002")
    assert address.cluster is not None
    assert address.cluster.seeds == (("h1", 7000), ("h2", 6379), ("::1", 7002))
    assert (address.username, address.password, address.tls) == ("u", "pw", None)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://h1:7000/1", "only database 0"),
        ("redis+cluster://h1:7000?db=2", "only database 0"),
        ("redis+cluster://h1:port", "bad port"),
        ("redis+cluster://h1,,h2", "empty seed"),
        ("redis+cluster://h1?ssl_cert_reqs=none", "use rediss\\+cluster"),
        ("redis+cluster://h1?sentinel_password=x", "only apply to redis\\+sentinel"),
        ("redis+cluster://h1?size=3", "unknown option"),
    ],
)
def test_bad_cluster_urls_are_refused_by_name(url: str, says: str) -> None:
    with pytest.raises(InvalidOptionError, match=says):
        RedisAddress.from_url(url)
    with pytest.raises(InvalidOptionError, match=says):
        Queue("{q}", url=url)


@given(st.text(max_size=60))
def test_any_cluster_url_parses_or_is_refused_with_invalid_option(tail: str) -> None:
    for scheme in ("redis+cluster://", "rediss+cluster://"):
        try:
            address = RedisAddress.from_url(scheme + tail)
        except InvalidOptionError:
            continue
        assert address.cluster is not None and address.cluster.seeds
        assert all(0 < port < 65536 for _, port in address.cluster.seeds)


def test_printed_cluster_urls_hide_the_password() -> None:
    shown = display_url("rediss+cluster://u:secret@h1:7000,h2:7001?ssl_cert_reqs=none")
    assert shown == "rediss+cluster://u:***@h1:7000,h2:7001?ssl_cert_reqs=none"


@pytest.mark.parametrize(
    ("prefix", "queue"),
    [("bull", "emails"), ("bull", "em{ails"), ("{}bull", "q"), ("b{ull", "q"), ("bull", "{}")],
)
def test_a_queue_whose_keys_would_span_slots_is_refused_at_once(prefix: str, queue: str) -> None:
    with pytest.raises(ClusterSlotError, match="hash tag") as caught:
        Queue(queue, url="redis+cluster://127.0.0.1:1", prefix=prefix)
    assert isinstance(caught.value, InvalidOptionError)
    assert "prefix='{bull}'" in str(caught.value)


@pytest.mark.parametrize(
    ("prefix", "queue"),
    [("{bull}", "emails"), ("bull", "{emails}"), ("x{a}y", "q"), ("b", "a{x}}"), ("b{ull", "q}")],
)
def test_a_hash_tag_in_prefix_or_name_puts_every_key_of_a_queue_in_one_slot(
    prefix: str, queue: str
) -> None:
    slot = queue_slot(prefix, queue)
    for suffix in ("wait", "meta", "1", "1:lock", "{odd}", "x}y", "events"):
        assert key_slot(f"{prefix}:{queue}:{suffix}") == slot


NAME_TEXT = st.text(alphabet="ab{}:-_.", min_size=1, max_size=12)


@given(NAME_TEXT, NAME_TEXT.filter(lambda name: ":" not in name), st.lists(NAME_TEXT, max_size=5))
def test_a_queue_is_refused_or_every_key_it_can_have_is_in_its_slot(
    prefix: str, queue: str, suffixes: list[str]
) -> None:
    try:
        slot = queue_slot(prefix, queue)
    except ClusterSlotError:
        # Refused only when some two keys of the queue would really differ in slot.
        assert len({key_slot(f"{prefix}:{queue}:{s}") for s in ("1", "2", "}x", "{y}")}) > 1
        return
    for suffix in [*suffixes, "wait", "1:lock", "{x}", "}"]:
        assert key_slot(f"{prefix}:{queue}:{suffix}") == slot


def test_key_slots_match_the_servers(redis_cluster: RedisCluster) -> None:
    keys = ["", "a", "{bull}:q:wait", "{}x", "{{a}}", "a{b}c{d}", "x{}{y}", "é{ü}", "123456789"]
    keys += [f"key:{n}:{n * 7919}" for n in range(200)]
    with contextlib.closing(redis_cluster.client(redis_cluster.ports[0])) as client:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("CLUSTER", "KEYSLOT", key)
        expected = pipe.execute()
    assert [key_slot(key) for key in keys] == expected


# -- a queue on the cluster ---------------------------------------------------------------


async def test_jobs_run_retry_and_wait_on_a_cluster_queue(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    """Add, process, a retry after a failure, a delayed job and the events, all through
    the seeds; every key lands on the one primary serving the queue's slot."""
    tries: dict[str, int] = {}

    def handler(job: Job) -> int:
        tries[job.name] = tries.get(job.name, 0) + 1
        if job.name == "flaky" and tries["flaky"] == 1:
            raise RuntimeError("first try fails")
        return int(job.data["n"]) * 2

    async with (
        Queue("core", url=cluster_url, prefix=PREFIX) as queue,
        QueueEvents("core", url=cluster_url, prefix=PREFIX, block=0.5) as events,
        Worker("core", handler, url=cluster_url, prefix=PREFIX),
    ):
        plain = await queue.add("plain", {"n": 1})
        flaky = await queue.add("flaky", {"n": 2}, attempts=2)
        later = await queue.add("later", {"n": 3}, delay=0.3)
        assert await plain.wait_until_finished(timeout=20) == 2
        assert await flaky.wait_until_finished(timeout=20) == 4
        assert await later.wait_until_finished(timeout=20) == 6
        seen: list[tuple[str, str | None]] = []
        while sum(name == "completed" for name, _ in seen) < 3:
            event = await events.next(timeout=10)
            assert event is not None, f"events stopped after {seen}"
            seen.append((event.name, event.job_id))
        assert ("delayed", later.id) in seen
        assert {("completed", job.id) for job in (plain, flaky, later)} <= set(seen)
    assert tries == {"plain": 1, "flaky": 2, "later": 1}
    owner = redis_cluster.owner(queue_slot(PREFIX, "core"))
    assert set(keys_everywhere(redis_cluster, "{bull}:core:*")) == {owner}
    with contextlib.closing(redis_cluster.client(owner)) as client:
        assert client.zcard("{bull}:core:completed") == 3
        assert client.hget(f"{{bull}}:core:{flaky.id}", "atm") == "2"


async def test_a_spanning_queue_is_refused_before_anything_is_written(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    with pytest.raises(ClusterSlotError, match="prefix='\\{bull\\}'"):
        Queue("emails", url=cluster_url)
    with pytest.raises(ClusterSlotError):
        Worker("emails", lambda job: None, url=cluster_url)
    with pytest.raises(ClusterSlotError):
        open_backend(cluster_url, "emails")
    assert keys_everywhere(redis_cluster, "*") == {}


async def test_braces_in_queue_names_spread_queues_over_primaries_and_all_are_listed(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    names = [f"{{q{n}}}" for n in range(12)]
    for name in names:
        async with Queue(name, url=cluster_url) as queue:
            await queue.add("x", {})
    holders = keys_everywhere(redis_cluster, "bull:*")
    assert len(holders) > 1  # the queues really are on several primaries
    assert await list_queues(cluster_url, "bull") == sorted(names)


async def test_a_flow_in_one_slot_is_stored_and_runs(cluster_url: str) -> None:
    async def parent(job: Job) -> int:
        return sum((await job.get_children_values()).values())

    async with (
        FlowProducer(url=cluster_url, prefix=PREFIX) as flows,
        Worker("children", lambda job: job.data["n"], url=cluster_url, prefix=PREFIX),
        Worker("parents", parent, url=cluster_url, prefix=PREFIX),
    ):
        tree = await flows.add({"name": "parent", "queue": "parents", "children": [
            {"name": "child", "queue": "children", "data": {"n": 1}},
            {"name": "child", "queue": "children", "data": {"n": 2}}]})  # fmt: skip
        assert await tree.job.wait_until_finished(timeout=20) == 3


async def test_a_flow_across_slots_is_refused_and_writes_nothing(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    async with FlowProducer(url=cluster_url) as flows:
        with pytest.raises(ClusterSlotError, match="one hash tag"):
            await flows.add({"name": "parent", "queue": "{a}", "children": [
                {"name": "child", "queue": "{b}", "data": {}}]})  # fmt: skip
    assert keys_everywhere(redis_cluster, "*") == {}


async def test_a_dead_letter_queue_in_another_slot_gets_the_failed_job(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    async def boom(job: Job) -> None:
        raise RuntimeError("no")

    async with (
        Queue("{pay}", url=cluster_url) as queue,
        Queue("{pay-dead}", url=cluster_url) as dead,
        Worker("{pay}", boom, url=cluster_url),
    ):
        job = await queue.add("charge", {"n": 1}, dead_letter_queue="{pay-dead}")
        await wait_for(lambda: _waiting(dead), 20, "the dead letter")
    assert queue_slot("bull", "{pay}") != queue_slot("bull", "{pay-dead}")
    letters = await _letters(cluster_url)
    assert [(letter["queue"], letter["job_id"]) for letter in letters] == [("{pay}", job.id)]


async def _waiting(queue: Queue) -> bool:
    return bool((await queue.get_job_counts("waiting"))["waiting"])


async def _letters(url: str) -> list[dict[str, object]]:
    async with Queue("{pay-dead}", url=url) as dead:
        return [job.data for job in await dead.get_jobs("waiting")]


async def test_a_dead_letter_queue_without_a_hash_tag_is_refused_at_add(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    async with Queue("{pay}", url=cluster_url) as queue:
        with pytest.raises(ClusterSlotError, match="dead_letter_queue 'pay-dead'"):
            await queue.add("charge", {}, dead_letter_queue="pay-dead")
        with pytest.raises(ClusterSlotError, match="dead_letter_queue"):
            await queue.add_bulk([("charge", {}, {"dead_letter_queue": "pay-dead"})])
    assert keys_everywhere(redis_cluster, "*") == {}


def test_the_cli_adds_and_reports_through_the_cluster(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    def dockyard(*args: str, prefix: str = PREFIX) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dockyard", *args, "--url", cluster_url, "--prefix", prefix],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip

    added = dockyard("add", "cli", "send", "--data", '{"n": 1}', "--json")
    assert added.returncode == 0, added.stderr
    stats = dockyard("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["cli"]["waiting"] == 1
    # The default prefix, a hash tag in the queue's name instead:
    tagged = dockyard("add", "{cli}", "send", "--json", prefix="bull")
    assert tagged.returncode == 0, tagged.stderr
    stats = dockyard("stats", "--json", prefix="bull")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["{cli}"]["waiting"] == 1
    refused = dockyard("add", "cli", "send", prefix="bull")
    assert refused.returncode != 0 and "hash tag" in refused.stderr
    owner = redis_cluster.owner(queue_slot(PREFIX, "cli"))
    with contextlib.closing(redis_cluster.client(owner)) as client:
        assert client.exists(f"{{bull}}:cli:{json.loads(added.stdout)['id']}")


# -- failover and resharding --------------------------------------------------------------


async def run_through(cluster: RedisCluster, queue_name: str, disturb: str) -> None:
    """Add JOBS jobs while a worker runs them; halfway, fail over or migrate the queue's
    slot (the second half is added while it moves). Every job completes exactly once
    (``atm`` 1), none is lost."""
    url = cluster.url()
    slot = queue_slot(PREFIX, queue_name)
    ran: dict[str, int] = {}

    def handler(job: Job) -> None:
        ran[job.id or ""] = ran.get(job.id or "", 0) + 1

    async def add_range(queue: Queue, start: int, stop: int) -> None:
        for first in range(start, stop, CHUNK):
            batch = [("noop", {}, {"job_id": f"j{n}"}) for n in range(first, first + CHUNK)]
            while True:
                try:
                    await queue.add_bulk(batch)
                    break
                except ConnectionError:
                    pass  # the same ids again: nothing doubles

    async with (
        Queue(queue_name, url=url, prefix=PREFIX) as queue,
        Worker(queue_name, handler, url=url, prefix=PREFIX, concurrency=50,
               max_stalled_count=10, lock_duration=4, stalled_interval=1),  # fmt: skip
    ):
        await add_range(queue, 0, JOBS // 2)
        old = cluster.owner(slot)
        if disturb == "failover":
            moved = asyncio.to_thread(cluster.fail_over, slot)
        else:
            target = next(p for p in cluster.primaries() if p != old)
            moved = asyncio.to_thread(cluster.migrate, slot, target)
        adding = asyncio.ensure_future(add_range(queue, JOBS // 2, JOBS))
        await moved
        await adding
        new = cluster.owner(slot)
        assert new != old
        completed_key = f"{PREFIX}:{queue_name}:completed"
        with contextlib.closing(cluster.client(new)) as client:
            await wait_for(lambda: client.zcard(completed_key) >= JOBS, 90, "every job done")
            completed = set(client.zrange(completed_key, 0, -1))
            assert completed == {f"j{n}" for n in range(JOBS)}
            pipe = client.pipeline(transaction=False)
            for n in range(JOBS):
                pipe.hget(f"{PREFIX}:{queue_name}:j{n}", "atm")
            assert pipe.execute() == ["1"] * JOBS  # each completed exactly once
    assert set(ran) == completed
    assert set(keys_everywhere(cluster, f"{PREFIX}:{queue_name}:*")) == {new}


async def test_a_primary_failover_during_a_run_loses_no_job_and_repeats_none(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    await run_through(redis_cluster, "failover", "failover")


async def test_a_slot_migration_during_a_run_loses_no_job_and_repeats_none(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    await run_through(redis_cluster, "migration", "migrate")


async def test_while_a_slot_is_half_moved_reads_follow_ask_and_writes_wait_for_the_move(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    """Keys already on the importing node are read there (ASK, then ASKING + the command);
    a script whose keys are split or missing is answered TRYAGAIN and sent again until the
    move is done: it is then applied once, on the new owner."""
    slot = queue_slot(PREFIX, "halfway")
    async with Queue("halfway", url=cluster_url, prefix=PREFIX) as queue:
        first = await queue.add("a", {"n": 1})
        source = redis_cluster.owner(slot)
        target = next(p for p in redis_cluster.primaries() if p != source)
        await asyncio.to_thread(redis_cluster.move_keys, slot, target)
        try:
            found = await queue.get_job(first.id or "")  # ASK: served by the importing node
            assert found is not None and found.data == {"n": 1}
            refused = tryagains(redis_cluster, target)
            adding = asyncio.ensure_future(queue.add("b", {"n": 2}))
            await wait_for(lambda: tryagains(redis_cluster, target) > refused, 10, "TRYAGAIN")
            assert not adding.done()  # nothing can apply it before the move is done
        finally:
            await asyncio.to_thread(redis_cluster.finish_move, slot, source, target)
        second = await asyncio.wait_for(adding, 10)
    with contextlib.closing(redis_cluster.client(target)) as client:
        assert client.lrange("{bull}:halfway:wait", 0, -1) == [second.id, first.id]
    with contextlib.closing(redis_cluster.client(source)) as client:
        assert not client.keys("{bull}:halfway:*")


async def test_when_the_queues_primary_dies_its_replacement_serves_the_queue(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    """A dead primary (SIGKILL): once the cluster promotes its replica, the worker and the
    producer reconnect there by themselves and carry on. (Writes the dead primary had not
    yet replicated are gone: Redis replication is asynchronous, so this test adds its
    jobs after the switch.)"""
    slot = queue_slot(PREFIX, "phoenix")
    async with (
        Queue("phoenix", url=cluster_url, prefix=PREFIX) as queue,
        Worker("phoenix", lambda job: job.data["n"], url=cluster_url, prefix=PREFIX),
    ):
        before = await queue.add("n", {"n": 1})
        assert await before.wait_until_finished(timeout=20) == 1
        old, new = await asyncio.to_thread(redis_cluster.kill_owner, slot)
        assert new != old
        after = [await queue.add("n", {"n": n}) for n in range(2, 12)]
        for job in after:
            assert await job.wait_until_finished(timeout=30) == job.data["n"]
    with contextlib.closing(redis_cluster.client(new)) as client:
        assert client.zcard("{bull}:phoenix:completed") == 11


async def test_a_user_the_acl_denies_the_slot_map_fails_at_once(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    for port in redis_cluster.ports:  # ACLs are per node
        redis_cluster.command(port, "ACL", "SETUSER", "noslots", "on", ">pw", "~*", "+@all",
                           "-cluster")  # fmt: skip
    try:
        url = cluster_url.replace("redis+cluster://", "redis+cluster://noslots:pw@")
        backend = open_backend(url, "q", prefix=PREFIX, retry_for=60.0)
        async with Queue("q", prefix=PREFIX, backend=backend) as queue:
            with pytest.raises(BackendPermissionError, match="CLUSTER") as caught:
                await asyncio.wait_for(queue.add("x", {}), 10)
        assert "+cluster" in str(caught.value)
    finally:
        for port in redis_cluster.ports:
            redis_cluster.command(port, "ACL", "DELUSER", "noslots")


async def test_the_documented_acl_with_the_slot_map_and_asking_runs_jobs_on_a_cluster(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    """The README's producer and worker users, keyed to ``{bull}:*`` and given the two
    cluster commands the README names, on every node."""
    users = documented_acl()
    roles = ("dockyard-producer", "dockyard-worker")
    for port in redis_cluster.ports:
        for user in roles:
            rules = ["~{bull}:*" if rule == "~bull:*" else rule for rule in users[user]]
            redis_cluster.command(port, "ACL", "SETUSER", user, *rules, "+cluster|slots",
                                  "+asking")  # fmt: skip
    try:
        seeds = cluster_url.removeprefix("redis+cluster://")
        producer, worker = (f"redis+cluster://{user}:{password(user)}@{seeds}" for user in roles)
        async with (
            Queue("acl", url=producer, prefix=PREFIX) as queue,
            Worker("acl", lambda job: job.data["n"] + 1, url=worker, prefix=PREFIX),
        ):
            job = await queue.add("inc", {"n": 1})
            assert await job.wait_until_finished(timeout=20) == 2
    finally:
        for port in redis_cluster.ports:
            redis_cluster.command(port, "ACL", "DELUSER", *roles)


def test_a_server_that_is_no_cluster_is_refused_by_name(redis_server: object) -> None:
    port = redis_server.port  # type: ignore[attr-defined]
    url = f"redis+cluster://127.0.0.1:{port}"

    async def add() -> None:
        async with Queue("q", url=url, prefix=PREFIX) as queue:
            await queue.add("x", {})

    with pytest.raises(InvalidOptionError, match="not part of a cluster"):
        asyncio.run(add())
    with contextlib.closing(redis.Redis(port=port)) as client:
        assert not client.exists("{bull}:q:id")
