"""How long the dashboard takes to open a big queue: fill a queue with N waiting jobs,
serve the app, then time (median of 5) the API reads the queue's view makes (counts, one
page of 20 jobs, the charts) and, with Chromium at hand, the view itself in a browser
until its first page of jobs shows. Prints the timings; asserts nothing.

Usage: ``python bench/dashboard_open.py [N] [--store sqlite|redis] [--no-browser]``
(default 1,000,000 on SQLite; filling a million jobs takes a few minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import uvicorn

from dockyard import Queue
from dockyard.devserver import RedisServer
from dockyard.web import create_app

CHROMIUM = "/usr/bin/chromium"
QUEUE = "bench"


async def fill(url: str, n: int) -> float:
    started = time.perf_counter()
    async with Queue(QUEUE, url=url) as queue:
        for i in range(0, n, 1000):
            await queue.add_bulk([("noop", {"i": j}, {}) for j in range(i, min(i + 1000, n))])
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median_ms(work: Callable[[], object], runs: int = 5) -> str:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        took.append((time.perf_counter() - started) * 1000)
    return f"{statistics.median(took):8.1f} ms (min {min(took):.1f}, max {max(took):.1f})"


def time_browser(base: str) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})

        def open_view() -> None:
            page.goto(f"{base}/queues/{QUEUE}/waiting")
            page.locator("#jobs tbody tr").nth(19).wait_for()
            page.locator("#states a[data-state='waiting'] .count").wait_for()

        result = median_ms(open_view)
        browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.store == "redis":
            url = stack.enter_context(RedisServer()).url
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{folder}/bench.db"
        print(f"filling {args.n:,} jobs on {args.store} ...", flush=True)
        print(f"  filled in {asyncio.run(fill(url, args.n)):.1f} s")
        port = free_port()
        config = uvicorn.Config(create_app(url=url), host="127.0.0.1", port=port,
                                log_level="warning", timeout_graceful_shutdown=1)  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        api = httpx.Client(base_url=f"{base}/api/v1", timeout=60)
        total = api.get(f"/queues/{QUEUE}").json()["counts"]["waiting"]
        print(f"queue {QUEUE!r}: {total:,} waiting jobs")
        print(f"  counts          {median_ms(lambda: api.get(f'/queues/{QUEUE}'))}")
        page = f"/queues/{QUEUE}/jobs?state=waiting&start=0&end=19"
        print(f"  first page (20) {median_ms(lambda: api.get(page))}")
        last = f"/queues/{QUEUE}/jobs?state=waiting&start={total - 20}&end={total - 1}"
        print(f"  last page (20)  {median_ms(lambda: api.get(last))}")
        print(f"  charts          {median_ms(lambda: api.get(f'/queues/{QUEUE}/stats'))}")
        if not args.no_browser and os.path.exists(CHROMIUM):
            print(f"  view in Chromium, until 20 rows show {time_browser(base)}")
        server.should_exit = True
        thread.join(10)


if __name__ == "__main__":
    main()
