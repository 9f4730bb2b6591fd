"""Serving for real: mounted in a bigger app, event streams that end cleanly, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import redis
from dockyard.web import create_app

from ..waiting import wait_until
from .conftest import TOKEN, Served, serve


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Served]:
    """The app under /jobs of a user's own FastAPI app, with a token."""
    host = FastAPI()

    @host.get("/")
    async def home() -> dict[str, str]:
        return {"app": "the user's own"}

    url = f"sqlite:///{tmp_path}/mounted.db"
    host.mount("/jobs", create_app(url=url, token=TOKEN))
    yield from serve(url, app=host)


def test_sign_in_works_where_the_app_is_mounted(mounted: Served) -> None:
    jobs = mounted.base + "/jobs/"
    page = httpx.get(jobs)
    assert page.status_code == 200 and 'name="token"' in page.text
    assert httpx.get(jobs + "api/v1/queues").status_code == 401
    assert httpx.get(mounted.base + "/").json() == {"app": "the user's own"}

    signed = httpx.get(jobs + "?token=" + TOKEN, follow_redirects=False)
    assert signed.status_code == 303
    assert httpx.URL(jobs).join(signed.headers["location"]) == httpx.URL(jobs)
    assert "path=/jobs/" in signed.headers["set-cookie"].lower()

    form = httpx.post(jobs + "login", data={"token": TOKEN}, follow_redirects=False)
    assert form.status_code == 303
    assert httpx.URL(jobs + "login").join(form.headers["location"]) == httpx.URL(jobs)

    with httpx.Client(cookies={"dockyard_token": TOKEN}) as browser:
        dashboard = browser.get(jobs)
        assert dashboard.status_code == 200 and "static/app.js" in dashboard.text
        assert browser.get(jobs + "static/app.js").status_code == 200
        assert browser.get(jobs + "api/v1/queues").status_code == 200


def _event_readers(client: redis.Redis) -> int:
    return sum(1 for c in client.client_list() if c["cmd"] in ("xread", "xrevrange"))


@pytest.fixture
def redis_served(redis_url: str) -> Iterator[Served]:
    yield from serve(redis_url)


def test_an_event_stream_releases_its_connection_when_the_client_leaves(
    redis_served: Served, redis_sync: redis.Redis
) -> None:
    url = redis_served.base + "/api/v1/queues/q/events"
    for _ in range(3):
        with httpx.stream("GET", url, timeout=10) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines) == ": connected"
            assert _event_readers(redis_sync) >= 1
    wait_until(lambda: _event_readers(redis_sync) == 0, what="the streams' connections closed")


def test_an_event_stream_resumes_after_last_event_id(redis_served: Served) -> None:
    api = redis_served.base + "/api/v1"
    ids = httpx.post(api + "/queues/q/jobs", json=[{"name": "a"}, {"name": "b"}]).json()["ids"]
    with httpx.stream("GET", api + "/queues/q/events?last_id=0", timeout=10) as response:
        seen = []
        for line in response.iter_lines():
            if line.startswith("id: "):
                seen.append(line[4:])
            if len(seen) == 2:
                break
    headers = {"Last-Event-ID": seen[0]}
    with httpx.stream("GET", api + "/queues/q/events", headers=headers, timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("id: "):
                assert line[4:] == seen[1]  # the one after, not "from now"
                break
    assert len(ids) == 2
    bad = httpx.get(api + "/queues/q/events", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and "event id" in bad.json()["detail"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_stops_on_ctrl_c_with_a_stream_open(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DOCKYARD_URL": f"sqlite:///{tmp_path}/serve.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(port)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(base + "/api/v1/queues", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, what="dockyard serve answering", timeout=20)
        with httpx.stream("GET", base + "/api/v1/queues/q/events", timeout=10) as response:
            assert next(response.iter_lines()) == ": connected"
            proc.send_signal(signal.SIGINT)
            started = time.monotonic()
            assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
