"""The dashboard's views in headless Chromium on Redis and SQLite: each address opens its
view, back and forward move between views, retry from the failed tab, bulk actions, the
add-job form, the charts, read-only mode, live updates and a phone-width window."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Dialog, Page, expect

from dockyard import Job, Queue
from dockyard.web import create_app

from ..waiting import wait_until
from .conftest import Served, serve
from .test_dashboard import BackgroundWorker

WRITE = {"X-Dockyard": "1"}
T = TypeVar("T")
#: The pager's text: first, an en dash, last, "of" the total.
PAGE_TEXT = " {}\u2013{} of 25 "


def _api(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.base + "/api/v1", timeout=10, headers=WRITE)


def _sync(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a thread of its own (Playwright's loop runs here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _add(url: str, queue: str, names: list[str], **opts: object) -> list[str]:
    async with Queue(queue, url=url) as q:
        jobs = await q.add_bulk([(name, {"n": i}, dict(opts)) for i, name in enumerate(names)])
    return [j.id for j in jobs]


def _run_failing(served: Served, queue: str, ids: list[str], fail: set[str]) -> None:
    """Run ids through a worker (with metrics); those in ``fail`` fail once each."""
    failed: set[str] = set()

    async def handler(job: Job) -> str:
        if job.id in fail and job.id not in failed:
            failed.add(job.id)
            raise RuntimeError(f"smtp is down for {job.id}\nTraceback line two")
        return "sent"

    worker = BackgroundWorker(served.url, queue, handler, metrics={"max_data_points": 60})
    api = _api(served)
    try:
        wait_until(lambda: all(api.get(f"/queues/{queue}/jobs/{i}").json()["state"]
                               in ("completed", "failed") for i in ids),
                   timeout=20, what="the jobs to finish")  # fmt: skip
    finally:
        worker.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page at 1280x720 that fails its test on a script error or a request to another
    site; ask for it after the server, so that it closes first (its event streams end,
    and the server stops at once)."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Everything ships in the package: no request leaves the test's own servers.
    away: list[str] = []
    local = ("http://127.0.0.1:", "data:")
    page.on("request", lambda r: None if r.url.startswith(local) else away.append(r.url))
    yield page
    page.close()
    assert errors == [], f"the page's scripts threw: {errors}"
    assert away == [], f"requests to other sites: {away}"


def test_each_address_opens_its_view_and_back_forward_move_between_them(
    server: Served, page: Page
) -> None:
    ids = _sync(_add(server.url, "mail", [f"send-{i}" for i in range(25)]))
    base = server.base
    page.goto(f"{base}/queues/mail/waiting?page=2&size=10")
    expect(page.locator("#page")).to_have_text(PAGE_TEXT.format(11, 20))
    expect(page.locator("#states a.current")).to_have_attribute("data-state", "waiting")
    expect(page.locator("#page-size")).to_have_value("10")
    expect(page.locator(f"#jobs tr[data-job-id='{ids[14]}']")).to_be_visible()
    page.locator("#next").click()
    expect(page).to_have_url(f"{base}/queues/mail/waiting?page=3&size=10")
    expect(page.locator("#page")).to_have_text(PAGE_TEXT.format(21, 25))
    page.locator(f"#jobs tr[data-job-id='{ids[0]}'] a").click()
    expect(page).to_have_url(f"{base}/queues/mail/jobs/{ids[0]}")
    expect(page.locator("#job-title")).to_have_text(f"Job {ids[0]} (send-0)")
    expect(page.locator("#job-data")).to_contain_text('"n": 0')

    page.go_back()
    expect(page).to_have_url(f"{base}/queues/mail/waiting?page=3&size=10")
    expect(page.locator("#page")).to_have_text(PAGE_TEXT.format(21, 25))
    page.go_back()
    expect(page.locator("#page")).to_have_text(PAGE_TEXT.format(11, 20))
    page.go_forward()
    page.go_forward()
    expect(page.locator("#job-title")).to_have_text(f"Job {ids[0]} (send-0)")
    page.locator("#crumbs a", has_text="Queues").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("#queues tr[data-queue='mail'] td[data-state='waiting']")).to_have_text(
        "25"
    )
    # A newest-first list: the first row of a queue's view is the last job added.
    page.goto(f"{base}/queues/mail")
    expect(page.locator("#jobs tbody tr").first).to_have_attribute("data-job-id", ids[-1])
    page.goto(f"{base}/queues/mail/nonsense")
    expect(page.locator("#view")).to_contain_text("No such page")


def test_retry_selected_from_the_failed_tab_moves_the_job(server: Served, page: Page) -> None:
    ids = _sync(_add(server.url, "mail", ["a", "b", "c"]))
    _run_failing(server, "mail", ids, fail={ids[0], ids[1]})
    page.goto(f"{server.base}/queues/mail/failed")
    failed = page.locator("#states a[data-state='failed'] .count")
    expect(failed).to_have_text("2")
    row = page.locator(f"#jobs tr[data-job-id='{ids[0]}']")
    expect(row.locator("td.reason")).to_have_text(f"smtp is down for {ids[0]}")  # first line
    row.locator("input[type=checkbox]").check()
    expect(page.locator("#bulk-promote")).to_be_disabled()
    page.locator("#bulk-retry").click()
    expect(page.locator("#status")).to_have_text("retried 1 job")
    expect(row).to_have_count(0)
    expect(failed).to_have_text("1")
    assert _api(server).get(f"/queues/mail/jobs/{ids[0]}").json()["state"] == "waiting"
    # Retry all failed: asks, naming the count.
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.locator("#retry-all").click()
    expect(page.locator("#status")).to_have_text("retried: 1 job")
    expect(failed).to_have_text("0")
    assert messages == ["Retry all 1 failed job of queue mail?"]
    assert _api(server).get(f"/queues/mail/jobs/{ids[1]}").json()["state"] == "waiting"


def test_bulk_promote_and_remove_ask_for_the_count(server: Served, page: Page) -> None:
    ids = _sync(_add(server.url, "mail", ["p", "q", "r"], delay=3600))
    page.goto(f"{server.base}/queues/mail/delayed")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    page.locator("#select-all").check()
    page.locator("#bulk-promote").click()
    expect(page.locator("#status")).to_have_text("promoted 3 jobs")
    page.locator("#states a[data-state='waiting']").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    for job_id in ids[:2]:
        page.locator(f"#jobs tr[data-job-id='{job_id}'] input").check()
    messages: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("#bulk-remove").click()
    expect(page.locator("#status")).to_have_text("remove cancelled")
    assert "Remove 2 selected jobs from queue mail" in messages[0]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#bulk-remove").click()
    expect(page.locator("#status")).to_have_text("removed 2 jobs")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert _api(server).get("/queues/mail/jobs?state=waiting").json()["total"] == 1


def test_the_add_job_form_refuses_bad_json(server: Served, page: Page) -> None:
    _sync(_add(server.url, "mail", ["x"]))
    page.goto(f"{server.base}/queues/mail")
    page.locator("#add-job-open").click()
    page.fill("#add-name", "welcome")
    page.fill("#add-data", '{"to": "ann@example.com",}')
    expect(page.locator("#add-error")).to_contain_text("Data is not valid JSON")
    expect(page.locator("#add-submit")).to_be_disabled()
    page.fill("#add-data", '{"to": "ann@example.com"}')
    page.fill("#add-opts", "[1, 2]")
    expect(page.locator("#add-error")).to_contain_text("Options must be a JSON object")
    # The server checks too, and its answer is shown: an option it does not know.
    page.fill("#add-opts", '{"frobnicate": 1}')
    expect(page.locator("#add-submit")).to_be_enabled()
    page.locator("#add-submit").click()
    expect(page.locator("#add-error")).to_contain_text("Not added")
    assert _api(server).get("/queues/mail/jobs").json()["total"] == 1
    page.fill("#add-opts", '{"delay": 3600}')
    page.locator("#add-submit").click()
    expect(page.locator("#job-title")).to_contain_text("(welcome)")
    expect(page.locator("#job-state")).to_have_text("delayed")
    expect(page.locator("#job-data")).to_contain_text("ann@example.com")
    # "Add a job like this": the same name, data and options, prefilled.
    page.locator("#job-like").click()
    expect(page.locator("#add-name")).to_have_value("welcome")
    expect(page.locator("#add-data")).to_have_value(re.compile("ann@example.com"))
    # Options as the form takes them: seconds (not BullMQ's stored milliseconds), no id.
    expect(page.locator("#add-opts")).to_have_value(re.compile(r'"delay": 3600\b'))
    page.locator("#add-submit").click()
    expect(page.locator("#status")).to_contain_text("added job")
    assert _api(server).get("/queues/mail/jobs?state=delayed").json()["total"] == 2


def test_the_charts_have_points_after_jobs_ran(server: Served, page: Page) -> None:
    ids = _sync(_add(server.url, "mail", [f"j{i}" for i in range(6)]))
    _run_failing(server, "mail", ids, fail={ids[0]})
    page.goto(f"{server.base}/queues/mail/completed")
    chart = page.locator("#chart-throughput svg")
    expect(chart.locator("circle.point.completed").first).to_be_visible(timeout=10_000)
    counted = chart.locator("circle.point.completed").evaluate_all(
        "(dots) => dots.reduce((sum, d) => sum + Number(d.dataset.n), 0)")  # fmt: skip
    assert counted == 5
    assert chart.locator("circle.point.failed").count() >= 1
    expect(page.locator("#chart-wait svg rect.wait")).to_have_count(5)


@pytest.fixture
def read_only(store_url: str) -> Iterator[Served]:
    yield from serve(store_url, app=create_app(url=store_url, read_only=True))


def test_read_only_shows_no_changes_and_the_api_refuses_them(read_only: Served, page: Page) -> None:
    ids = _sync(_add(read_only.url, "mail", ["a", "b"]))
    page.goto(f"{read_only.base}/queues/mail")
    expect(page.locator(f"#jobs tr[data-job-id='{ids[0]}']")).to_be_visible()
    for hidden in ("#pause-resume", "#add-job-open", "#bulk-remove", "#clean", "#select-all"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#jobs tbody input[type=checkbox]")).to_have_count(0)
    page.goto(f"{read_only.base}/queues/mail/jobs/{ids[0]}")
    expect(page.locator("#job-state")).to_have_text("waiting")
    for hidden in ("#job-retry", "#job-promote", "#job-remove", "#job-like"):
        expect(page.locator(hidden)).to_be_hidden()
    delete = 'async (path) => (await fetch(path, {method: "DELETE", headers: WRITE})).status'
    status = page.evaluate(delete.replace("WRITE", '{"X-Dockyard": "1"}'),
                           f"api/v1/queues/mail/jobs/{ids[0]}")  # fmt: skip
    assert status == 403
    assert _api(read_only).get(f"/queues/mail/jobs/{ids[0]}").status_code == 200


def test_new_jobs_show_from_the_event_stream(server: Served, page: Page) -> None:
    _sync(_add(server.url, "mail", ["first"]))
    page.goto(f"{server.base}/queues/mail")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    lists: list[str] = []
    page.on("request", lambda r: lists.append(r.url) if "/jobs?state=" in r.url else None)
    # A burst: 2,000 jobs (and their events) make a few list reads, not thousands.
    _sync(_add(server.url, "mail", [f"burst-{i}" for i in range(2000)]))
    expect(page.locator("#states a[data-state='waiting'] .count")).to_have_text("2,001")
    expect(page.locator("#jobs tbody tr")).to_have_count(20)
    assert len(lists) < 40


def test_a_phone_width_window_scrolls_no_wider_than_itself(
    browser: Browser, server: Served
) -> None:
    ids = _sync(_add(server.url, "a-queue-with-a-rather-long-name", ["x" * 80]))
    page = browser.new_page(viewport={"width": 390, "height": 844})
    for path in ("/", "/queues/a-queue-with-a-rather-long-name",
                 f"/queues/a-queue-with-a-rather-long-name/jobs/{ids[0]}"):  # fmt: skip
        page.goto(server.base + path)
        expect(page.locator("#view section").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    page.close()


def test_find_opens_a_job_by_id_and_lists_jobs_by_name(server: Served, page: Page) -> None:
    ids = _sync(_add(server.url, "mail", ["welcome", "invoice-may", "invoice-june"]))
    page.goto(f"{server.base}/queues/mail")
    page.fill("#search-text", ids[0])
    page.press("#search-text", "Enter")
    expect(page).to_have_url(f"{server.base}/queues/mail/jobs/{ids[0]}")
    expect(page.locator("#job-title")).to_have_text(f"Job {ids[0]} (welcome)")
    page.fill("#search-text", "Invoice")
    page.press("#search-text", "Enter")
    expect(page).to_have_url(f"{server.base}/queues/mail/waiting?name=Invoice")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    expect(page.locator("#filter-note")).to_contain_text("2 jobs named like")


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Served]:
    """The app under /ops/jobs of a user's own app (no token)."""
    host = FastAPI()
    url = f"sqlite:///{tmp_path}/mounted.db"
    host.mount("/ops/jobs", create_app(url=url))
    yield from serve(url, app=host)


def test_the_views_work_under_a_mount_prefix(mounted: Served, page: Page) -> None:
    ids = _sync(_add(mounted.url, "mail", ["a", "b"]))
    root = f"{mounted.base}/ops/jobs"
    page.goto(f"{root}/queues/mail/waiting")
    page.locator(f"#jobs tr[data-job-id='{ids[1]}'] a").click()
    expect(page).to_have_url(f"{root}/queues/mail/jobs/{ids[1]}")
    expect(page.locator("#job-title")).to_have_text(f"Job {ids[1]} (b)")
    page.go_back()
    expect(page).to_have_url(f"{root}/queues/mail/waiting")
    # An id with a slash is one segment of the address (%2F): the page and its script load.
    page.goto(f"{root}/queues/mail/jobs/batch%2F7")
    expect(page.locator("#crumbs")).to_have_text("Queues / mail / job batch/7")
    page.locator("a.brand").click()
    expect(page).to_have_url(f"{root}/")
    expect(page.locator("#queues tr[data-queue='mail'] td[data-state='waiting']")).to_have_text("2")


def test_a_running_job_shows_its_logs_and_progress_live(server: Served, page: Page) -> None:
    release = threading.Event()

    async def handler(job: Job) -> str:
        await job.log("connecting to smtp")
        await job.update_progress(40)
        await asyncio.to_thread(release.wait, 20)
        await job.log("sent")
        return "done"

    (job_id,) = _sync(_add(server.url, "mail", ["send"]))
    worker = BackgroundWorker(server.url, "mail", handler)
    try:
        wait_until(lambda: _api(server).get(f"/queues/mail/jobs/{job_id}").json()["progress"] == 40,
                   timeout=20, what="the job to run")  # fmt: skip
        page.goto(f"{server.base}/queues/mail/jobs/{job_id}")
        expect(page.locator("#job-state")).to_have_text("active")
        expect(page.locator("#job-logs")).to_have_text("connecting to smtp")
        expect(page.locator("#job-progress-text")).to_have_text("40%")
        expect(page.locator("#job-remove")).to_be_disabled()
        release.set()
        expect(page.locator("#job-state")).to_have_text("completed", timeout=10_000)
        expect(page.locator("#job-logs")).to_have_text("connecting to smtp\nsent")
        expect(page.locator("#job-return")).to_have_text('"done"')
    finally:
        release.set()
        worker.stop()


def test_clean_by_age_keeps_younger_jobs(server: Served, page: Page) -> None:
    ids = _sync(_add(server.url, "mail", ["a", "b"]))
    _run_failing(server, "mail", ids, fail=set(ids))
    page.goto(f"{server.base}/queues/mail/failed")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.select_option("#clean-age", "3600")
    page.once("dialog", accept)
    page.locator("#clean").click()
    expect(page.locator("#status")).to_have_text("cleaned failed: 0 jobs")
    assert messages == ["Remove failed jobs older than 1 hour (of 2) from queue mail?"]
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    page.select_option("#clean-age", "0")
    page.once("dialog", accept)
    page.locator("#clean").click()
    expect(page.locator("#status")).to_have_text("cleaned failed: 2 jobs")
    expect(page.locator("#jobs tbody tr")).to_have_count(0)
    assert messages[1] == "Remove 2 failed jobs from queue mail?"
