"""The dashboard in headless Chromium (Debian's, driven by Playwright): see a queue's
counts, open a failed job, press retry, see it complete."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dockyard import Job, Worker

from .conftest import Served, serve

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Served]:
    yield from serve(f"sqlite:///{tmp_path}/ui.db")


class BackgroundWorker:
    """A Worker on its own thread and event loop, while the browser test runs."""

    def __init__(self, url: str, queue: str, handler) -> None:  # type: ignore[no-untyped-def]
        self.loop = asyncio.new_event_loop()
        self.worker = Worker(queue, handler, url=url, drain_delay=0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.loop.run_until_complete(self.worker.run(handle_signals=False))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.worker.close(), self.loop).result(10)
        self.thread.join(10)


def test_open_a_failed_job_press_retry_and_see_it_complete(browser: Browser, site: Served) -> None:
    api = httpx.Client(base_url=site.base + "/api/v1", timeout=10)
    job_id = api.post("/queues/mail/jobs", json={"name": "send", "data": {"to": "x"}}).json()["id"]
    api.post("/queues/mail/jobs", json={"name": "later", "opts": {"delay": 3600}})
    fail_first: list[str] = []

    async def handler(job: Job) -> str:
        if not fail_first:
            fail_first.append(job.id)
            raise RuntimeError("smtp is down")
        await job.log("delivered")
        return "sent"

    worker = BackgroundWorker(site.url, "mail", handler)
    try:
        page: Page = browser.new_page()
        page.goto(site.base + "/")
        row = page.locator("#queues tr[data-queue='mail']")
        expect(row).to_be_visible(timeout=10_000)
        expect(row.locator("td[data-state='failed']")).to_have_text("1", timeout=15_000)
        expect(row.locator("td[data-state='delayed']")).to_have_text("1")
        row.click()
        page.locator("#states button[data-state='failed']").click()
        job_row = page.locator(f"#jobs tr[data-job-id='{job_id}']")
        expect(job_row).to_contain_text("smtp is down", timeout=10_000)
        job_row.click()
        expect(page.locator("#job-state")).to_have_text("failed")
        expect(page.locator("#job-failure")).to_contain_text("smtp is down")
        page.locator("#job-retry").click()
        expect(page.locator("#job-state")).to_have_text("completed", timeout=15_000)
        expect(page.locator("#job-return")).to_contain_text("sent")
        expect(page.locator("#job-logs")).to_contain_text("delivered")
        page.close()
    finally:
        worker.stop()
    assert api.get(f"/queues/mail/jobs/{job_id}").json()["state"] == "completed"


def test_the_sign_in_form_sets_the_cookie(browser: Browser, tmp_path: Path) -> None:
    for served in serve(f"sqlite:///{tmp_path}/auth.db", token="t0k-t0k-t0k-t0k-t0k"):
        page = browser.new_page()
        page.goto(served.base + "/")
        page.fill("#token", "wrong")
        page.click("#sign-in")
        expect(page.locator(".error")).to_have_text("Wrong token.")
        page.fill("#token", "t0k-t0k-t0k-t0k-t0k")
        page.click("#sign-in")
        expect(page.locator("#queues")).to_be_visible(timeout=10_000)
        page.close()
