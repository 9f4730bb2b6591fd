"""The test set-up's private redis-server: its own port, restartable, stopped by pid."""

from __future__ import annotations

import os

import redis
from dockyard.devserver import RedisServer


def test_private_server_is_not_the_machines_server(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    assert redis.Redis(port=redis_server.port).ping()


def test_each_test_starts_with_an_empty_database_first(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    assert redis_sync.dbsize() == 0
    redis_sync.set("left-behind", "1")


def test_each_test_starts_with_an_empty_database_second(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    assert redis_sync.dbsize() == 0


def test_a_durable_server_keeps_data_across_a_kill_and_restart(
    fresh_redis_server: RedisServer,
) -> None:
    client = redis.Redis(port=fresh_redis_server.port)
    client.set("k", "v")
    old_pid = fresh_redis_server.pid
    assert old_pid is not None
    fresh_redis_server.kill()
    try:
        os.kill(old_pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    fresh_redis_server.start()
    assert redis.Redis(port=fresh_redis_server.port).get("k") == b"v"
