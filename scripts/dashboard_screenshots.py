"""The README's dashboard screenshots (docs/dashboard-*.png), light and dark: a queue that
ran jobs for a few minutes (so that the charts have points), its failed tab, a failed job.

Usage: ``.venv/bin/python scripts/dashboard_screenshots.py [--minutes 4]``; needs Chromium
(``make chromium``). Everything runs on a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from dockyard import Job, Queue, Worker
from dockyard.web import create_app

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM = "/usr/bin/chromium"


async def handler(job: Job) -> dict[str, str]:
    await job.update_progress(50)
    await job.log(f"rendering {job.data['template']} for {job.data['to']}")
    await asyncio.sleep(random.uniform(0.05, 0.4))
    if job.data["to"].endswith(".invalid"):
        raise ConnectionError(f"SMTP 550: mailbox {job.data['to']} unavailable")
    await job.update_progress(100)
    return {"message_id": f"<{job.id}.{int(time.time())}@mail.example>"}


async def traffic(url: str, minutes: float) -> None:
    """Jobs trickling in and being run (about one in eight fails) for ``minutes``."""
    worker = Worker("emails", handler, url=url, concurrency=4, name="mailer-1",
                    metrics={"max_data_points": 1440})  # fmt: skip
    runner = asyncio.create_task(worker.run(handle_signals=False))
    async with Queue("emails", url=url) as emails, Queue("reports", url=url) as reports:
        await reports.add("monthly", {"month": "2026-11"}, delay=3600)
        await reports.add("weekly", {"week": 48})
        deadline = time.monotonic() + minutes * 60
        n = 0
        while time.monotonic() < deadline:
            n += 1
            to = f"user{n}@{'example.invalid' if n % 8 == 0 else 'example.com'}"
            template = random.choice(["welcome", "receipt", "reminder"])
            await emails.add(f"send-{template}", {"to": to, "template": template},
                             attempts=1)  # fmt: skip
            await asyncio.sleep(random.uniform(0.2, 1.5))
        await emails.add("digest", {"to": "team@example.com", "template": "digest"},
                         delay=7200)  # fmt: skip
        await worker.close()
        await runner
        await emails.add("send-welcome", {"to": "new@example.com", "template": "welcome"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=4.0)
    args = parser.parse_args()
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/shots.db"
        asyncio.run(traffic(url, args.minutes))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = uvicorn.Config(create_app(url=url), host="127.0.0.1", port=port,
                                log_level="warning", timeout_graceful_shutdown=1)  # fmt: skip
        server = uvicorn.Server(config)
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
            )
            for scheme in ("light", "dark"):
                page = browser.new_page(
                    viewport={"width": 1280, "height": 720}, color_scheme=scheme
                )
                page.goto(f"{base}/queues/emails/failed")
                page.locator("#jobs tbody tr").first.wait_for()
                page.locator("#chart-throughput svg").wait_for()
                page.wait_for_timeout(500)
                page.screenshot(path=str(DOCS / f"dashboard-queue-{scheme}.png"))
                page.locator("#jobs tbody tr a").first.click()
                page.locator("#job-failure").wait_for()
                page.wait_for_timeout(500)
                page.screenshot(path=str(DOCS / f"dashboard-job-{scheme}.png"))
                page.close()
            browser.close()
        server.should_exit = True


if __name__ == "__main__":
    main()
