"""A real dockyard web server (uvicorn in a thread, on a free port) per test."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from dockyard.web import create_app

#: Debian's Chromium (``make chromium``), driven by Playwright.
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A token of the length the app requires (16 characters at least).
TOKEN = "s3cret-s3cret-s3cret"


@dataclass
class Served:
    base: str
    url: str  # the store
    token: str | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(store_url: str, token: str | None = None, app: Any = None) -> Iterator[Served]:
    """Run the app (or ``app``, one that holds it) on a free loopback port until the
    generator is closed."""
    port = _free_port()
    app = app if app is not None else create_app(url=store_url, token=token)
    # A page left open keeps an event stream: stop waiting for it after a moment.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("the web server did not start")
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", store_url, token)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(params=["redis", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param in ("redis", "postgres"):
        url: str = request.getfixturevalue(f"{request.param}_url")
        return url
    return f"sqlite:///{tmp_path}/web-{uuid.uuid4().hex}.db"


@pytest.fixture
def server(store_url: str) -> Iterator[Served]:
    yield from serve(store_url)


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[Served]:
    yield from serve(f"sqlite:///{tmp_path}/locked.db", token=TOKEN)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (pages are per test). Not per session: while
    it runs, Playwright's event loop counts as running on this thread, and other modules'
    tests call asyncio.run()."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
