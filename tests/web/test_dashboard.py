"""The dashboard in headless Chromium (Debian's, driven by Playwright): see a queue's
counts, open a failed job, press retry, see it complete; sign in from a shared link; no
writes from other sites; destructive actions ask first."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from dockyard import Job, Worker

from .conftest import Served, serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Served]:
    yield from serve(f"sqlite:///{tmp_path}/ui.db")


class BackgroundWorker:
    """A Worker on its own thread and event loop, while the browser test runs."""

    def __init__(self, url: str, queue: str, handler, **options) -> None:  # type: ignore[no-untyped-def]
        self.loop = asyncio.new_event_loop()
        self.worker = Worker(queue, handler, url=url, drain_delay=0.2, **options)
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
        expect(page).to_have_url(site.base + "/queues/mail/waiting")
        page.locator("#states a[data-state='failed']").click()
        expect(page).to_have_url(site.base + "/queues/mail/failed")
        job_row = page.locator(f"#jobs tr[data-job-id='{job_id}']")
        expect(job_row).to_contain_text("smtp is down", timeout=10_000)
        job_row.locator("a").click()
        expect(page).to_have_url(f"{site.base}/queues/mail/jobs/{job_id}")
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


def test_a_shared_link_opens_its_view_after_sign_in(browser: Browser, tmp_path: Path) -> None:
    for served in serve(f"sqlite:///{tmp_path}/auth.db", token="t0k-t0k-t0k-t0k-t0k"):
        api = httpx.Client(base_url=served.base + "/api/v1", timeout=10,
                           headers={"Authorization": "Bearer t0k-t0k-t0k-t0k-t0k"})  # fmt: skip
        job_id = api.post("/queues/mail/jobs", json={"name": "send"}).json()["id"]
        link = f"{served.base}/queues/mail/jobs/{job_id}"
        page = browser.new_page()
        page.goto(link)
        page.fill("#token", "wrong")
        page.click("#sign-in")
        expect(page.locator(".error")).to_have_text("Wrong token.")
        page.fill("#token", "t0k-t0k-t0k-t0k-t0k")
        page.click("#sign-in")
        expect(page).to_have_url(link)
        expect(page.locator("#job-title")).to_have_text(f"Job {job_id} (send)", timeout=10_000)
        page.goto(served.base + "/")
        expect(page.locator("#queues tr[data-queue='mail']")).to_be_visible(timeout=10_000)
        page.close()


@pytest.fixture
def evil_site(site: Served) -> Iterator[str]:
    """A page on another origin (another loopback port) that tries to write to ``site``."""
    api = site.base + "/api/v1/queues/mail"
    page = f"""<!doctype html><title>evil</title><script>
    (async () => {{
      const tries = [
        fetch("{api}/jobs", {{mode: "no-cors", method: "POST",
          headers: {{"Content-Type": "text/plain"}},
          body: JSON.stringify({{name: "evil", data: {{}}}})}}),
        fetch("{api}/pause", {{mode: "no-cors", method: "POST"}}),
        fetch("{api}/drain", {{mode: "no-cors", method: "POST"}}),
      ];
      const settled = await Promise.allSettled(tries);  // fulfilled: the server answered
      document.title = "answered " + settled.filter((r) => r.status === "fulfilled").length;
    }})();
    </script>""".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_page_of_another_origin_cannot_add_or_pause(
    browser: Browser, site: Served, evil_site: str
) -> None:
    """Field report #4: no-cors fetches from another origin change nothing."""
    api = httpx.Client(base_url=site.base + "/api/v1", timeout=10, headers={"X-Dockyard": "1"})
    api.post("/queues/mail/jobs", json={"name": "mine"})
    page = browser.new_page()
    page.goto(evil_site)
    expect(page).to_have_title("answered 3", timeout=10_000)  # all three reached the server
    page.close()
    queue = {q["name"]: q for q in api.get("/queues").json()["queues"]}["mail"]
    assert queue["paused"] is False and queue["counts"]["waiting"] == 1
    names = [j["name"] for j in api.get("/queues/mail/jobs").json()["jobs"]]
    assert names == ["mine"]


def test_clean_asks_first_naming_the_count(browser: Browser, site: Served) -> None:
    """Field report #5: dismissing the dialog changes nothing; accepting cleans."""
    api = httpx.Client(base_url=site.base + "/api/v1", timeout=10, headers={"X-Dockyard": "1"})
    api.post("/queues/emails/jobs", json=[{"name": f"e{i}"} for i in range(200)])
    page = browser.new_page()
    page.goto(site.base + "/queues/emails")
    expect(page.locator("#page")).to_contain_text("of 200")
    messages: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("#clean").click()
    expect(page.locator("#status")).to_have_text("clean cancelled")
    assert "Remove 200 waiting jobs" in messages[0] and "not run yet" in messages[0]
    assert api.get("/queues/emails/jobs").json()["total"] == 200

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#clean").click()
    expect(page.locator("#page")).to_contain_text("of 0", timeout=10_000)
    assert api.get("/queues/emails/jobs").json()["total"] == 0
    page.close()


def test_remove_asks_first_then_goes_back_to_the_queue(browser: Browser, site: Served) -> None:
    """Field report #5: Remove confirms; afterwards the queue's view, no lasting error."""
    api = httpx.Client(base_url=site.base + "/api/v1", timeout=10, headers={"X-Dockyard": "1"})
    job_id = api.post("/queues/emails/jobs", json={"name": "bye"}).json()["id"]
    page = browser.new_page()
    page.goto(site.base + "/queues/emails")
    page.locator(f"#jobs tr[data-job-id='{job_id}'] a").click()
    expect(page.locator("#job-state")).to_have_text("waiting")
    expect(page.locator("#job-return")).to_have_text("(not finished)")
    expect(page.locator("#job-added")).not_to_be_empty()

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#job-remove").click()
    expect(page.locator("#status")).to_have_text("remove cancelled")
    assert api.get(f"/queues/emails/jobs/{job_id}").status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#job-remove").click()
    expect(page).to_have_url(site.base + "/queues/emails/waiting", timeout=10_000)
    expect(page.locator("#status")).to_have_text(f"removed job {job_id}")
    expect(page.locator(f"#jobs tr[data-job-id='{job_id}']")).to_have_count(0)
    assert api.get(f"/queues/emails/jobs/{job_id}").status_code == 404
    page.close()
