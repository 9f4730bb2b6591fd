"""``dockyard worker`` processes and signals: one Ctrl-C to a process group, a worker whose
store is down, one log format throughout, and no noise on stderr from isolated children."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import redis
from dockyard import Queue

from ..waiting import wait_for
from .helpers import Supervised


@pytest.fixture
def running() -> Iterator[list[Supervised]]:
    started: list[Supervised] = []
    yield started
    for s in started:
        s.stop()


def _free_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _add(url: str, n: int, **data: object) -> list[str]:
    async with Queue("q", url=url) as queue:
        jobs = await queue.add_bulk([("n", {"i": i, **data}) for i in range(n)])
    return [job.id for job in jobs]


async def test_one_ctrl_c_to_the_process_group_of_a_supervisor_lets_active_jobs_finish(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """Field report #6: a terminal's Ctrl-C sends SIGINT to the whole process group, so each
    worker process hears it and then the supervisor's SIGTERM. Both together are one stop:
    the 2 active jobs (of 3 s) complete, the 2 waiting ones never start, and all exit 0."""
    ids = await _add(redis_url, 4, sleep=3.0)
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                     "--processes", "2", "--concurrency", "1", own_group=True)  # fmt: skip
    running.append(sup)
    await wait_for(lambda: len(sup.entries("start")) == 2, timeout=30, what="2 started jobs")
    started = sorted(job_id for _, job_id in sup.entries("start"))
    assert sup.entries("end") == [], "the jobs must still run when Ctrl-C comes"

    os.killpg(sup.popen.pid, signal.SIGINT)
    await wait_for(lambda: sup.popen.poll() is not None, timeout=30, what="the supervisor")

    transcript = "\n".join(sup.lines)
    assert sup.popen.returncode == 0, transcript
    assert "stopping now" not in transcript and "go back to wait" not in transcript
    assert sorted(job_id for _, job_id in sup.entries("end")) == started
    assert sorted(redis_sync.zrange("bull:q:completed", 0, -1)) == started
    assert sorted(redis_sync.lrange("bull:q:wait", 0, -1)) == sorted(set(ids) - set(started))
    assert redis_sync.llen("bull:q:active") == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_worker_started_while_its_redis_is_down_exits_0_on_one_signal(
    tmp_path: Path, running: list[Supervised], sig: signal.Signals
) -> None:
    """Field report #7: a worker that never reached its Redis (nothing listens on the port)
    used to ignore every SIGINT and SIGTERM, retrying forever. One signal now ends it."""
    url = f"redis://127.0.0.1:{_free_port()}/0"
    proc = Supervised(url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q")
    running.append(proc)
    await wait_for(lambda: proc.said("unreachable") > 0, timeout=30, what="a retrying worker")
    proc.popen.send_signal(sig)
    await wait_for(lambda: proc.popen.poll() is not None, timeout=10, what="the worker to exit")
    assert proc.popen.returncode == 0, "\n".join(proc.lines)
    assert proc.said(f"{sig.name} received") == 1


async def test_log_format_json_reaches_every_supervised_worker_process(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """Field report #12: ``--processes 2 --log-format json`` logs JSON lines only, from the
    supervisor and from both worker processes (one format throughout)."""
    await _add(redis_url, 6)
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                     "--processes", "2", "--log-format", "json", "--log-jobs")  # fmt: skip
    running.append(sup)
    await wait_for(lambda: redis_sync.zcard("bull:q:completed") == 6, timeout=30, what="6 done")
    await wait_for(lambda: sup.said("worker on queue") == 2, timeout=30, what="2 workers")
    sup.popen.send_signal(signal.SIGTERM)
    await wait_for(lambda: sup.popen.poll() is not None, timeout=30, what="the supervisor")
    assert sup.popen.returncode == 0
    lines = [line for line in sup.lines if line.strip()]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    assert all(isinstance(e, dict) and "message" in e for e in entries)
    children = {e["pid"] for e in entries if "worker on queue" in e["message"]}
    assert len(children) == 2 and sup.popen.pid not in children
    assert any(e["pid"] == sup.popen.pid for e in entries)


async def test_an_isolated_worker_prints_no_runtime_warning_and_no_traceback(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """Field report #24: each isolated child used to print runpy's RuntimeWarning, and a
    Ctrl-C (SIGINT to the whole process group, children included) printed each child's
    KeyboardInterrupt traceback. 6 jobs over 2 children, then Ctrl-C: stderr has neither,
    and the worker exits 0."""
    await _add(redis_url, 6)
    proc = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:isolated", "--queue", "q",
                      "--isolate", "--concurrency", "2", own_group=True)  # fmt: skip
    running.append(proc)
    await wait_for(lambda: redis_sync.zcard("bull:q:completed") == 6, timeout=60, what="6 done")
    assert len(proc.children()) == 2, "2 isolated children are idle"
    os.killpg(proc.popen.pid, signal.SIGINT)
    await wait_for(lambda: proc.popen.poll() is not None, timeout=30, what="the worker to exit")
    transcript = "\n".join(proc.lines)
    assert proc.popen.returncode == 0, transcript
    assert "RuntimeWarning" not in transcript
    assert "Traceback" not in transcript
    assert proc.said("SIGINT received") == 1
