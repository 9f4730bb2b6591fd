"""The dashboard in headless Chromium (Debian's, driven by Playwright) on a real
redis-server: a queue's job schedulers with their remove button, and a job's flow tree
with links from child to parent and back down."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, expect

from ..flowtrees import ROOT_NAME, build
from .conftest import Served, serve


@pytest.fixture
def site(redis_url: str) -> Iterator[Served]:
    yield from serve(redis_url)


def test_schedulers_list_and_flow_tree(browser: Browser, site: Served) -> None:
    build(site.url)
    api = httpx.Client(base_url=site.base + "/api/v1", timeout=10, headers={"X-Dockyard": "1"})
    put = api.put(
        "/queues/frames/schedulers/tick", json={"pattern": "0 0 1 1 *", "tz": "Europe/Paris"}
    )
    assert put.status_code == 200, put.text
    page = browser.new_page()
    page.goto(site.base + "/queues/frames")

    # The queue's schedulers: id, pattern, next run, iterations.
    row = page.locator("#schedulers tr[data-scheduler-id='tick']")
    expect(row.locator("td").nth(1)).to_have_text("0 0 1 1 * (Europe/Paris)", timeout=10_000)
    expect(row.locator("td").nth(2)).to_contain_text("(in ")
    expect(row.locator("td").nth(3)).to_have_text("1")

    # A child's flow: its parent with its state, and a link up to it.
    page.locator("#states a[data-state='completed']").click()
    page.locator("#jobs tr[data-job-id='f1'] a").click()
    expect(page.locator("#job-flow-box")).to_be_visible(timeout=10_000)
    expect(page.locator("#job-parent")).to_contain_text("renders:r1")
    expect(page.locator("#job-parent .state")).to_have_text("waiting-children")
    page.locator("#job-parent a[data-job-id='r1']").click()

    # The root's tree: every job with its state, names shown as given (not as HTML).
    expect(page.locator("#job-title")).to_have_text(f"Job r1 ({ROOT_NAME})", timeout=10_000)
    tree = page.locator("#job-flow")
    expect(tree.locator("li[data-job-id='f1'] > .state")).to_have_text("completed")
    expect(tree.locator("li[data-job-id='f2'] > .state")).to_have_text("waiting-children")
    expect(tree.locator("li[data-job-id='f2'] li[data-job-id='a1'] > .state")).to_have_text(
        "waiting")  # fmt: skip
    tree.locator("a[data-job-id='a1']").click()
    expect(page.locator("#job-title")).to_have_text("Job a1 (asset)", timeout=10_000)
    expect(page.locator("#job-parent")).to_contain_text("frames:f2")

    # Removing a scheduler asks first; dismissing keeps it. Back goes through the jobs.
    for _ in range(3):
        page.go_back()
    expect(page).to_have_url(site.base + "/queues/frames/completed")
    messages: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.locator("button").click()
    expect(page.locator("#status")).to_have_text("remove cancelled")
    assert "Remove job scheduler tick from queue frames" in messages[0]
    assert api.get("/queues/frames/schedulers/tick").status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button").click()
    expect(page.locator("#schedulers-box")).to_be_hidden(timeout=10_000)
    assert api.get("/queues/frames/schedulers/tick").status_code == 404
    page.close()
