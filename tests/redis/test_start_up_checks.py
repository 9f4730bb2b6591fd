"""What dockyard checks about a Redis server: its version at every connection's set-up, and
once per worker start (and in ``dockyard stats``) the settings that can lose jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest

import redis
from dockyard import BackendVersionError, Queue, Worker
from dockyard.backends import open_backend
from dockyard.backends.redis.health import MIN_VERSION, parse_version, warnings_from
from dockyard.devserver import RedisServer

EVICTS, VOLATILE = "maxmemory-policy allkeys-lru", "no persistence"


async def _one_job(url: str) -> None:
    """Start a worker and let it finish a job: by then its start-up checks have run."""
    name = f"check-{uuid.uuid4().hex[:6]}"
    async with Queue(name, url=url) as queue, Worker(name, lambda job: "ok", url=url):
        job = await queue.add("x")
        assert await job.wait_until_finished(timeout=10) == "ok"


def _stats(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", "stats", "--url", url, *extra],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if needle in r.getMessage()]


async def test_a_worker_warns_once_per_start_of_eviction_and_no_persistence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer(extra_args=("--maxmemory-policy", "allkeys-lru")) as server:
        with caplog.at_level(logging.WARNING, logger="dockyard"):
            await _one_job(server.url)
        for needle in (EVICTS, VOLATILE):
            (record,) = _lines(caplog, needle)
            assert record.levelno == logging.WARNING
        shown = _stats(server.url)
        assert shown.returncode == 0, shown.stderr
        warned = [line for line in shown.stdout.splitlines() if line.startswith("warning:")]
        assert len(warned) == 2 and EVICTS in warned[0] and VOLATILE in warned[1]
        as_json = _stats(server.url, "--json")
        assert "warning:" not in as_json.stdout and EVICTS in as_json.stderr


async def test_a_durable_noeviction_server_gives_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer(appendonly=True) as server:
        with caplog.at_level(logging.WARNING, logger="dockyard"):
            await _one_job(server.url)
        assert not _lines(caplog, EVICTS) and not _lines(caplog, VOLATILE)
        assert "warning:" not in _stats(server.url).stdout


async def test_without_config_get_only_what_info_shows_is_checked() -> None:
    """CONFIG GET may be refused by ACL: the persistence check is then skipped silently, and
    the eviction policy still read from INFO."""
    with RedisServer(extra_args=("--maxmemory-policy", "volatile-lru")) as server:
        admin = redis.Redis(port=server.port)
        admin.execute_command("ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "+@all",
                              "-config")  # fmt: skip
        admin.close()
        url = server.url.replace("redis://", "redis://noconfig:pw@")
        backend = open_backend(url, "q", retry_for=5.0)
        try:
            found = await backend.server_warnings()  # type: ignore[attr-defined]
        finally:
            await backend.close()
        assert len(found) == 1 and "maxmemory-policy volatile-lru" in found[0]


@pytest.mark.parametrize(
    ("memory", "persistence", "save", "expected"),
    [
        ({"maxmemory_policy": "noeviction"}, {"aof_enabled": "0"}, "3600 1", []),
        ({"maxmemory_policy": "noeviction"}, {"aof_enabled": "1"}, "", []),
        ({"maxmemory_policy": "noeviction"}, {"aof_enabled": "0"}, "", [VOLATILE]),
        ({"maxmemory_policy": "noeviction"}, {"aof_enabled": "0"}, None, []),
        ({"maxmemory_policy": "allkeys-lfu"}, {}, None, ["maxmemory-policy allkeys-lfu"]),
        ({}, {}, None, []),
    ],
)
def test_which_settings_warn(
    memory: dict[str, str], persistence: dict[str, str], save: str | None, expected: list[str]
) -> None:
    found = warnings_from(memory, persistence, save, "redis://h:6379/0")
    assert len(found) == len(expected)
    for line, needle in zip(found, expected, strict=True):
        assert needle in line


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("6.2.0", True),
        ("6.2.14", True),
        ("7.0.15", True),
        ("10.0.0", True),
        ("6.0.16", False),
        ("5.0.14", False),
        ("6.1.99", False),
    ],
)
def test_the_minimum_version_is_6_2(text: str, accepted: bool) -> None:
    version = parse_version(text)
    assert version is not None and (version >= MIN_VERSION) is accepted
    assert parse_version("unstable") is None and parse_version("") is None


class _VersionRewriter:
    """A loopback proxy in front of a real server that reports another redis_version."""

    def __init__(self, upstream: int, real: str, shown: str) -> None:
        self.upstream, self.real, self.shown = upstream, real.encode(), shown.encode()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> _VersionRewriter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, change: Callable[[bytes], bytes]
        ) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(1 << 16):
                    dst.write(change(data))
                    await dst.drain()
            dst.close()

        old = b"redis_version:" + self.real
        new = b"redis_version:" + self.shown
        tasks = [
            asyncio.create_task(pipe(reader, up_writer, lambda d: d)),
            asyncio.create_task(pipe(up_reader, writer, lambda d: d.replace(old, new))),
        ]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_redis_older_than_6_2_is_refused_at_once_naming_both_versions(
    redis_server: RedisServer, redis_sync: redis.Redis
) -> None:
    real = str(redis_sync.info("server")["redis_version"])
    major, _, rest = real.partition(".")
    older = "0" * (len(major) - 1) + "5." + rest  # as long as the real one: 7.0.15 -> 5.0.15
    async with _VersionRewriter(redis_server.port, real, older) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        async with Queue("q", backend=open_backend(url, "q", retry_for=60.0)) as queue:
            with pytest.raises(BackendVersionError) as refused:
                await asyncio.wait_for(queue.count(), 10.0)
    assert older in str(refused.value) and "6.2.0" in str(refused.value)
