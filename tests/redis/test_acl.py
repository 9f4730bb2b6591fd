"""The README's minimal ACL: each role's user does its job, and a refusal fails fast.

The ACL lines are read from README.md ("Production Redis") and applied as they are, so
the documented rules are the tested ones. Every refusal is asked for with a 60 s retry
window and must arrive well inside it (asyncio.wait_for, 10 s): a wrong password used to
be retried as an outage, and a NOPERM from a script reached callers as a raw ReplyError.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import redis
from dockyard import (
    BackendAuthError,
    BackendPermissionError,
    FlowProducer,
    Job,
    Queue,
    QueueEvents,
    Worker,
)
from dockyard.backends import open_backend
from dockyard.backends.redis.connection import ReplyError
from dockyard.devserver import RedisServer

README = Path(__file__).resolve().parents[2] / "README.md"
WINDOW, BOUND = 60.0, 10.0


def documented_acl() -> dict[str, list[str]]:
    """``{user: rules}`` from the README's ```acl block."""
    block = re.search(r"```acl\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README.md has no ```acl block"
    users: dict[str, list[str]] = {}
    for line in block.group(1).splitlines():
        if line.strip():
            keyword, name, *rules = line.split()
            assert keyword == "user"
            users[name] = rules
    return users


def password(user: str) -> str:
    """The password the README's line gives ``user`` (``>PASSWORD``)."""
    return next(rule[1:] for rule in documented_acl()[user] if rule.startswith(">"))


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A server of this module's own, with the documented users (and variants per test)."""
    with RedisServer() as srv:
        admin = redis.Redis(port=srv.port)
        for name, rules in documented_acl().items():
            admin.execute_command("ACL", "SETUSER", name, *rules)
        admin.close()
        yield srv


@pytest.fixture
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(port=server.port, decode_responses=True)
    yield client
    client.close()


def url_of(server: RedisServer, user: str, secret: str | None = None) -> str:
    return f"redis://{user}:{secret or password(user)}@127.0.0.1:{server.port}/0"


def variant(admin: redis.Redis, role: str, *changes: str, drop: str | None = None) -> str:
    """A user with ``role``'s documented rules, minus ``drop``, plus ``changes``; its name
    (its password is the role's)."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    rules = [rule for rule in documented_acl()[role] if rule != drop]
    admin.execute_command("ACL", "SETUSER", name, *rules, *changes)
    return name


def queue_named() -> str:
    return f"acl-{uuid.uuid4().hex[:8]}"


def test_the_readme_documents_the_three_roles() -> None:
    assert set(documented_acl()) == {"dockyard-producer", "dockyard-worker", "dockyard-dashboard"}


async def test_each_role_does_its_job_with_the_documented_acl(
    server: RedisServer, admin: redis.Redis
) -> None:
    """Producer adds (one, bulk, a flow); the worker processes with lock renewal, stalled
    checks and events; the dashboard reads, lists the worker, and does admin."""
    name = queue_named()
    producer = url_of(server, "dockyard-producer")
    worker_url = url_of(server, "dockyard-worker")
    dashboard = url_of(server, "dockyard-dashboard")
    started = asyncio.Event()

    async def handler(job: Job) -> str:
        if job.name == "boom":
            raise RuntimeError("boom")
        if job.name == "slow":
            started.set()
            await job.log("working")
            await job.update_progress(50)
            await asyncio.sleep(2.5)  # the work itself: longer than two lock periods
        return job.name

    async with Queue(name, url=producer) as queue, Queue(name, url=dashboard) as board:
        slow = await queue.add("slow")
        bulk = await queue.add_bulk([("a", None), ("b", None)])
        boom = await queue.add("boom", attempts=1)
        async with FlowProducer(url=producer) as flows:
            parent = await flows.add({"name": "parent", "queue": name,
                                      "children": [{"name": "kid", "queue": name}]})  # fmt: skip
        async with (
            QueueEvents(name, url=dashboard, last_id="0-0", block=0.5) as events,
            Worker(
                name,
                handler,
                url=worker_url,
                name="acl-worker",
                lock_duration=1.0,
                stalled_interval=0.5,
                concurrency=4,
            ),  # fmt: skip
        ):
            await asyncio.wait_for(started.wait(), BOUND)
            workers = await board.get_workers()
            assert [w["worker_name"] for w in workers] == ["acl-worker"]
            for job_id in (slow.id, *(j.id for j in bulk), parent.job.id):
                job = await board.get_job(job_id)
                assert job is not None
                await job.wait_until_finished(timeout=BOUND)
            assert await boom.get_state() == "failed"
            seen: set[str] = set()
            while "completed" not in seen or "active" not in seen:
                event = await events.next(timeout=BOUND)
                assert event is not None, seen
                seen.add(event.name)
        done = await board.get_job(slow.id)
        assert done is not None and done.return_value == "slow"
        assert done.attempts_started == 1  # the lock was renewed: never taken as stalled
        assert await board.get_job_logs(slow.id) == ["working"]
        counts = await board.get_job_counts("completed", "failed")
        assert counts == {"completed": 5, "failed": 1}
        await board.retry_job(boom.id)
        retried = await board.get_job(boom.id)
        assert retried is not None and await retried.get_state() == "waiting"
        await board.pause()
        assert await board.is_paused()
        await board.resume()
        assert await board.remove(boom.id)
        assert len(await board.clean(0, 100, "completed")) == 5
        await board.pause()
        await board.obliterate(force=True)
        assert not admin.keys(f"bull:{name}:*")


def test_the_cli_works_as_the_dashboard_user(server: RedisServer) -> None:
    """Every key dockyard reads for `stats` is allowed; the persistence check needs CONFIG
    GET, which the documented ACL does not grant, so it is skipped without a word."""
    url = url_of(server, "dockyard-dashboard")
    done = subprocess.run([sys.executable, "-m", "dockyard", "stats", "--url", url],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "persistence" not in done.stdout + done.stderr
    as_admin = subprocess.run(
        [sys.executable, "-m", "dockyard", "stats", "--url", server.url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "warning: Redis at" in as_admin.stdout and "no persistence" in as_admin.stdout


async def test_a_wrong_password_fails_fast_with_its_own_message(server: RedisServer) -> None:
    url = url_of(server, "dockyard-worker", "not-the-password")
    name = queue_named()
    async with Queue(name, backend=open_backend(url, name, retry_for=WINDOW)) as queue:
        with pytest.raises(BackendAuthError) as refused:
            await asyncio.wait_for(queue.add("x"), BOUND)
    assert "refused the login of user 'dockyard-worker'" in str(refused.value)
    assert "not-the-password" not in str(refused.value)
    worker = Worker(name, lambda job: None, url=url)  # retries an outage forever
    with pytest.raises(BackendAuthError):
        await asyncio.wait_for(worker.run(handle_signals=False), BOUND)


async def test_no_password_for_a_server_that_needs_one_says_so() -> None:
    with RedisServer() as protected:
        redis.Redis(port=protected.port).config_set("requirepass", "s3cret")
        name = queue_named()
        backend = open_backend(protected.url, name, retry_for=WINDOW)
        async with Queue(name, backend=backend) as queue:
            with pytest.raises(BackendAuthError, match="needs a password"):
                await asyncio.wait_for(queue.add("x"), BOUND)
        right = protected.url.replace("redis://", "redis://:s3cret@")
        async with Queue(name, url=right) as queue:
            await queue.add("x")
            assert await queue.count() == 1


async def test_a_worker_without_client_setname_fails_fast_naming_it(
    server: RedisServer, admin: redis.Redis
) -> None:
    user = variant(admin, "dockyard-worker", drop="+client|setname")
    worker = Worker(queue_named(), lambda job: None, url=url_of(server, user, password(
        "dockyard-worker")))  # fmt: skip
    with pytest.raises(BackendPermissionError) as refused:
        await asyncio.wait_for(worker.run(handle_signals=False), BOUND)
    assert "CLIENT|SETNAME" in str(refused.value)
    assert f"ACL SETUSER {user} +client|setname" in str(refused.value)


async def test_keys_outside_the_users_pattern_are_named(
    server: RedisServer, admin: redis.Redis
) -> None:
    user = variant(admin, "dockyard-producer", "resetkeys", "~other:*")
    name = queue_named()
    url = url_of(server, user, password("dockyard-producer"))
    async with Queue(name, backend=open_backend(url, name, retry_for=WINDOW)) as queue:
        with pytest.raises(BackendPermissionError) as refused:
            await asyncio.wait_for(queue.add("x"), BOUND)
        with pytest.raises(BackendPermissionError) as read_refused:
            await asyncio.wait_for(queue.get_job("1"), BOUND)
    assert f"bull:{name}:wait" in str(refused.value) and "~bull:*" in str(refused.value)
    assert f"bull:{name}:1" in str(read_refused.value)
    assert "HGETALL" in str(read_refused.value)


async def test_a_command_a_script_may_not_run_is_a_typed_error_naming_it(
    server: RedisServer, admin: redis.Redis
) -> None:
    """NOPERM inside a script (here XADD, the events stream) is no raw ReplyError."""
    user = variant(admin, "dockyard-producer", "-xadd")
    name = queue_named()
    async with Queue(name, url=url_of(server, user, password("dockyard-producer"))) as queue:
        with pytest.raises(BackendPermissionError) as refused:
            await asyncio.wait_for(queue.add("x"), BOUND)
    assert not isinstance(refused.value, ReplyError)
    text = str(refused.value)
    assert "XADD" in text and "script addJob" in text and f"ACL SETUSER {user} +xadd" in text


async def test_a_worker_meeting_nopermission_at_run_time_logs_it_and_stops(
    server: RedisServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Policy (README): a refusal will not heal, so the worker stops rather than retrying
    (every job it took would stall); run() raises it."""
    user = variant(admin, "dockyard-worker", "-xadd")
    name = queue_named()
    async with Queue(name, url=url_of(server, "dockyard-producer")) as queue:
        await queue.add("x")
    worker = Worker(name, lambda job: None, url=url_of(server, user, password("dockyard-worker")))
    with (
        caplog.at_level(logging.ERROR, logger="dockyard.worker"),
        pytest.raises(BackendPermissionError, match="XADD"),
    ):
        await asyncio.wait_for(worker.run(handle_signals=False), BOUND)
    stops = [r for r in caplog.records if "retrying cannot help" in r.getMessage()]
    assert len(stops) == 1 and stops[0].levelno == logging.ERROR
