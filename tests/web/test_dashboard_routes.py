"""The routes the dashboard's views stand on, over HTTP on Redis and SQLite: view
addresses answered with the page, sign-in that goes on to a shared link, read-only mode,
bulk actions, whole-state retry and promote, per-minute charts, workers and search."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from dockyard import Job, Queue, Worker
from dockyard.web import create_app
from dockyard.web.api import _Http
from dockyard.web.dashapi import BULK_ACTIONS, MAX_BULK, _bulk_args, minute_series
from dockyard.web.pages import safe_next

from ..waiting import wait_until
from .conftest import TOKEN, Served, serve

WRITE = {"X-Dockyard": "1"}


def _api(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.base + "/api/v1", timeout=10, headers=WRITE)


def _root(url: str, page: str) -> str:
    """The app's root as a browser resolves the page's <base> (relative to the page)."""
    found = re.search(r'<base href="([^"]*)">', page)
    assert found, "the page has no <base>"
    return str(httpx.URL(url).join(found.group(1)))


def test_every_view_address_answers_with_the_dashboard(server: Served) -> None:
    views = ("/", "/queues/mail", "/queues/mail/failed?page=3", "/queues/mail/jobs/42",
             "/queues/mail/jobs/a%2Fb", "/queues/mail/")  # fmt: skip
    for path in views:
        page = httpx.get(server.base + path)
        assert page.status_code == 200, path
        assert "static/app.js" in page.text and _root(server.base + path, page.text) == (
            server.base + "/"
        ), path
    # The API keeps its own answers under /api/v1: no clash with the view addresses.
    assert httpx.get(server.base + "/api/v1/queues/mail/jobs/42").status_code == 404
    assert [q["name"] for q in httpx.get(server.base + "/api/v1/queues").json()["queues"]] == [
        "mail"
    ]


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Served]:
    host = FastAPI()
    url = f"sqlite:///{tmp_path}/mounted.db"
    host.mount("/jobs", create_app(url=url, token=TOKEN))
    yield from serve(url, app=host)


def test_a_shared_link_signs_in_then_opens_its_address_under_a_mount(mounted: Served) -> None:
    link = mounted.base + "/jobs/queues/mail/failed?page=2"
    login = httpx.get(link)
    assert login.status_code == 200 and 'name="token"' in login.text
    assert _root(link, login.text) == mounted.base + "/jobs/"
    assert 'name="next" value="queues/mail/failed?page=2"' in login.text
    form = httpx.post(mounted.base + "/jobs/login", follow_redirects=False,
                      data={"token": TOKEN, "next": "queues/mail/failed?page=2"})  # fmt: skip
    assert form.status_code == 303
    assert httpx.URL(mounted.base + "/jobs/login").join(form.headers["location"]) == httpx.URL(link)
    with httpx.Client(cookies={"dockyard_token": TOKEN}) as browser:
        page = browser.get(link)
        assert page.status_code == 200 and _root(link, page.text) == mounted.base + "/jobs/"
        assert 'data-read-only="false"' in page.text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/etc",
        "queues/a//evil.example",
        "queues\\..\\x",
        "api/v1/queues",
    ],
)
def test_sign_in_never_sends_the_browser_elsewhere(mounted: Served, target: str) -> None:
    form = httpx.post(mounted.base + "/jobs/login", data={"token": TOKEN, "next": target},
                      follow_redirects=False)  # fmt: skip
    assert form.status_code == 303 and form.headers["location"] == "./"


@given(st.text(max_size=60))
def test_after_sign_in_the_target_is_a_view_of_this_app_or_the_overview(target: str) -> None:
    kept = safe_next(target)
    assert kept == "" or (kept.startswith("queues/") and "//" not in kept and "\\" not in kept)
    base = httpx.URL("http://app.example/jobs/login")
    assert base.join("./" + kept).host == "app.example"


@pytest.fixture
def read_only(store_url: str) -> Iterator[Served]:
    yield from serve(store_url, app=create_app(url=store_url, read_only=True))


def test_read_only_refuses_every_write_and_says_why(read_only: Served) -> None:
    asyncio.run(_add(read_only.url, "mail", 2))
    api = _api(read_only)
    assert api.get("/info").json() == {"read_only": True}
    assert api.get("/queues/mail/jobs").json()["total"] == 2
    writes = [
        ("POST", "/queues/mail/jobs", {"name": "x"}),
        ("POST", "/queues/mail/jobs/1/retry", None),
        ("POST", "/queues/mail/jobs/1/promote", None),
        ("DELETE", "/queues/mail/jobs/1", None),
        ("POST", "/queues/mail/bulk", {"action": "remove", "ids": ["1", "2"]}),
        ("POST", "/queues/mail/pause", None),
        ("POST", "/queues/mail/clean?state=waiting", None),
        ("POST", "/queues/mail/drain", None),
        ("POST", "/queues/mail/retry", None),
        ("PUT", "/queues/mail/schedulers/s", {"every": 60}),
        ("DELETE", "/queues/mail/schedulers/s", None),
    ]
    for method, path, body in writes:
        answer = api.request(method, path, json=body)
        assert answer.status_code == 403, (method, path)
        assert "read-only" in answer.json()["detail"]
    assert api.get("/queues/mail/jobs").json()["total"] == 2
    assert api.get("/queues/mail").json()["paused"] is False
    assert 'data-read-only="true"' in httpx.get(read_only.base + "/queues/mail").text


async def _add(url: str, queue: str, n: int, **opts: object) -> list[str]:
    async with Queue(queue, url=url) as q:
        jobs = await q.add_bulk([(f"job-{i}", {"i": i}, dict(opts)) for i in range(n)])
    return [j.id for j in jobs]


async def _run(url: str, queue: str, expected: int, fail: set[str] | None = None) -> None:
    """Run a worker (with metrics) until ``expected`` jobs have finished."""
    finished = asyncio.Event()
    seen: list[str] = []

    async def handler(job: Job) -> str:
        seen.append(job.id)
        if len(seen) >= expected:
            asyncio.get_running_loop().call_later(0.3, finished.set)
        if fail and job.id in fail:
            raise RuntimeError(f"job {job.id} broke\nsecond line")
        return "ok"

    worker = Worker(queue, handler, url=url, drain_delay=0.2, metrics={"max_data_points": 60})
    task = asyncio.create_task(worker.run(handle_signals=False))
    await asyncio.wait_for(finished.wait(), 20)
    await worker.close()
    await task


def test_bulk_actions_act_on_each_id_and_report_the_rest(server: Served) -> None:
    ids = asyncio.run(_add(server.url, "mail", 4))
    asyncio.run(_run(server.url, "mail", 4, fail=set(ids[:3])))
    delayed = asyncio.run(_add(server.url, "mail", 2, delay=3600))
    api = _api(server)
    out = api.post("/queues/mail/bulk", json={"action": "retry", "ids": [ids[0], ids[1], "nope"]})
    assert out.status_code == 200
    assert out.json()["done"] == [ids[0], ids[1]]
    assert [(e["id"], e["status"]) for e in out.json()["errors"]] == [("nope", 404)]
    assert api.get("/queues/mail").json()["counts"]["failed"] == 1
    promoted = api.post("/queues/mail/bulk", json={"action": "promote", "ids": delayed}).json()
    assert promoted["done"] == delayed and api.get("/queues/mail").json()["counts"]["delayed"] == 0
    removed = api.post("/queues/mail/bulk", json={"action": "remove", "ids": [ids[3], ids[2]]})
    assert removed.json()["done"] == [ids[3], ids[2]]
    assert api.get(f"/queues/mail/jobs/{ids[2]}").status_code == 404


@pytest.mark.parametrize("body", [
    {"action": "explode", "ids": ["1"]},
    {"action": "retry", "ids": []},
    {"action": "retry", "ids": [1]},
    {"action": "retry"},
    {"action": "remove", "ids": [str(i) for i in range(1001)]},
    ["retry"],
])  # fmt: skip
def test_a_bad_bulk_request_is_refused_and_changes_nothing(server: Served, body: object) -> None:
    asyncio.run(_add(server.url, "mail", 1))
    answer = _api(server).post("/queues/mail/bulk", json=body)
    assert answer.status_code == 422 and answer.json()["detail"]
    assert _api(server).get("/queues/mail").json()["counts"]["waiting"] == 1


def test_a_bulk_write_from_another_site_is_refused(server: Served) -> None:
    asyncio.run(_add(server.url, "mail", 1))
    answer = httpx.post(server.base + "/api/v1/queues/mail/bulk",
                        json={"action": "remove", "ids": ["1"]},
                        headers={"Origin": "http://evil.example"})  # fmt: skip
    assert answer.status_code == 403
    assert _api(server).get("/queues/mail").json()["counts"]["waiting"] == 1


def test_retry_all_failed_and_promote_all_delayed(server: Served) -> None:
    ids = asyncio.run(_add(server.url, "mail", 3))
    asyncio.run(_run(server.url, "mail", 3, fail=set(ids)))
    asyncio.run(_add(server.url, "mail", 2, delay=3600))
    api = _api(server)
    assert api.post("/queues/mail/retry").json() == {"moved": 3}
    assert api.post("/queues/mail/promote").json() == {"moved": 2}
    counts = api.get("/queues/mail").json()["counts"]
    assert (counts["failed"], counts["delayed"], counts["waiting"]) == (0, 0, 5)
    assert api.post("/queues/mail/retry?state=active").status_code == 400


def test_stats_count_the_jobs_that_ran_per_minute_and_their_waits(server: Served) -> None:
    api = _api(server)
    empty = api.get("/queues/mail/stats").json()
    assert empty["recorded"] is False and empty["completed"] == [] and empty["waits"] == []
    ids = asyncio.run(_add(server.url, "mail", 5))
    asyncio.run(_run(server.url, "mail", 5, fail={ids[0]}))
    stats = api.get("/queues/mail/stats?minutes=10").json()
    assert stats["recorded"] is True
    assert sum(n for _, n in stats["completed"]) == 4
    assert sum(n for _, n in stats["failed"]) == 1
    assert all(t % 60 == 0 for t, _ in stats["completed"])
    assert sorted(w["id"] for w in stats["waits"]) == sorted(ids[1:])
    assert all(w["wait"] >= 0 and w["run"] >= 0 for w in stats["waits"])


def test_minute_series_follows_bullmq_metrics() -> None:
    """``data[0]`` is the minute before ``prev_ts``'s; jobs since ``prev_ts`` are in its minute."""
    prev_ts = 1_000 * 60_000 + 5_000  # 5 s into minute 1000
    metrics = {"count": 12, "prev_count": 9, "prev_ts": prev_ts, "data": [4, 0, 5]}
    assert minute_series(metrics, 0) == [[997 * 60, 5], [998 * 60, 0], [999 * 60, 4],
                                         [1000 * 60, 3]]  # fmt: skip
    assert minute_series(metrics, 999) == [[999 * 60, 4], [1000 * 60, 3]]
    assert minute_series({"count": 0, "prev_count": 0, "prev_ts": None, "data": []}, 0) == []


def test_workers_are_listed_where_the_store_knows_them(server: Served) -> None:
    api = _api(server)
    if server.url.startswith("sqlite"):
        answer = api.get("/queues/mail/workers")
        assert answer.status_code == 501 and "does not track" in answer.json()["detail"]
        return

    async def watch() -> list[dict[str, object]]:
        worker = Worker("mail", lambda job: None, url=server.url, name="mailer-1")
        task = asyncio.create_task(worker.run(handle_signals=False))
        try:
            for _ in range(500):
                found = await asyncio.to_thread(api.get, "/queues/mail/workers")
                if found.json()["workers"]:
                    return list(found.json()["workers"])
                await asyncio.sleep(0.02)
            raise AssertionError("the worker never showed")
        finally:
            await worker.close()
            await task

    workers = asyncio.run(watch())
    assert [w["name"] for w in workers][:1] == ["mailer-1"]
    assert workers[0]["addr"] and workers[0]["since"] is not None


def test_search_finds_jobs_by_name_in_a_state(server: Served) -> None:
    async def add() -> None:
        async with Queue("mail", url=server.url) as q:
            names = ["welcome", "Invoice-May", "invoice-june", "reminder"]
            await q.add_bulk([(name, {}, {}) for name in names])

    asyncio.run(add())
    found = _api(server).get("/queues/mail/search?name=INVOICE&state=waiting").json()
    assert [j["name"] for j in found["jobs"]] == ["invoice-june", "Invoice-May"]
    assert found["complete"] is True and found["scanned"] == 4
    assert _api(server).get("/queues/mail/search?name=x&state=nope").status_code == 400


def test_dockyard_serve_read_only_refuses_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    asyncio.run(_add(url, "mail", 1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--read-only", "--port", str(port),
         "--url", url],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def up() -> bool:
            try:
                return httpx.get(api + "/info", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=20, what="dockyard serve answering")
        assert httpx.get(api + "/info").json() == {"read_only": True}
        refused = httpx.post(api + "/queues/mail/pause", headers=WRITE)
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        assert httpx.get(api + "/queues/mail").json()["paused"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.stderr is not None and "(read-only)" in proc.stderr.read()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.one_of(JSON, st.fixed_dictionaries({"action": JSON, "ids": JSON})))
def test_a_bulk_body_is_either_an_action_on_ids_or_a_422(body: object) -> None:
    try:
        action, ids = _bulk_args(body)
    except _Http as exc:
        assert exc.status == 422 and exc.detail
        return
    assert action in BULK_ACTIONS and 0 < len(ids) <= MAX_BULK
    assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("opts", [
    {},
    {"delay": 90, "attempts": 3, "backoff": {"type": "exponential", "delay": 2.5, "jitter": 0.5},
     "priority": 7, "job_id": "order-1", "remove_on_complete": {"age": 3600, "count": 10},
     "remove_on_fail": 5, "timeout": 30, "keep_logs": 20, "stack_trace_limit": 3,
     "dead_letter_queue": "dead"},
    {"lifo": True, "remove_on_complete": True, "backoff": 4},
])  # fmt: skip
def test_a_job_like_this_gets_the_same_options_and_not_the_id(
    server: Served, opts: dict[str, object]
) -> None:
    api = _api(server)
    first = api.post("/queues/mail/jobs", json={"name": "send", "data": [1], "opts": opts})
    original = api.get(f"/queues/mail/jobs/{first.json()['id']}").json()
    assert "job_id" not in original["add_opts"]
    copy = api.post("/queues/mail/jobs", json={"name": "send", "data": [1],
                                               "opts": original["add_opts"]})  # fmt: skip
    assert copy.status_code == 202, copy.text
    made = api.get(f"/queues/mail/jobs/{copy.json()['id']}").json()
    assert made["id"] != original["id"]
    mine, theirs = dict(original["opts"]), dict(made["opts"])
    for stored in (mine, theirs):
        stored.pop("jobId", None)
        stored.pop("timestamp", None)
    assert theirs == mine


def test_a_job_like_a_deduplicated_one_is_deduplicated_too(server: Served) -> None:
    api = _api(server)
    opts = {"delay": 60, "deduplication": {"id": "d1", "ttl": 600}}
    first = api.post("/queues/mail/jobs", json={"name": "send", "opts": opts}).json()["id"]
    like = api.get(f"/queues/mail/jobs/{first}").json()["add_opts"]
    assert like["deduplication"] == {"id": "d1", "ttl": 600, "extend": False, "replace": False}
    again = api.post("/queues/mail/jobs", json={"name": "send", "opts": like})
    assert again.status_code == 202 and again.json()["id"] == first
