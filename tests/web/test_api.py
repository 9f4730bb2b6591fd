"""The HTTP API against a running server, on Redis and on SQLite."""

from __future__ import annotations

import json
import threading

import httpx

from dockyard import Job, Queue, Worker

from ..waiting import wait_for
from .conftest import Served


def client(served: Served, token: str | None = None) -> httpx.Client:
    """An API client as scripts use it: bodiless writes carry ``X-Dockyard: 1``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {"X-Dockyard": "1"}
    return httpx.Client(base_url=served.base + "/api/v1", headers=headers, timeout=10)


def test_post_a_job_then_follow_it_to_completion(server: Served) -> None:
    with client(server) as http:
        body = {"name": "send", "data": {"to": "a"}, "opts": {"attempts": 2, "jobId": "j1"}}
        r = http.post("/queues/mail/jobs", json=body)
        assert r.status_code == 202 and r.json() == {"id": "j1"}
        job = http.get("/queues/mail/jobs/j1").json()
        assert (job["state"], job["name"], job["data"]) == ("waiting", "send", {"to": "a"})
        assert job["opts"]["attempts"] == 2

        async def handle(j: Job) -> dict[str, bool]:
            await j.update_progress(100)
            await j.log("sent")
            return {"ok": True}

        _run_worker_until(server.url, "mail", handle, lambda: http.get("/queues/mail/jobs/j1")
                          .json()["state"] == "completed")  # fmt: skip
        done = http.get("/queues/mail/jobs/j1").json()
        assert done["return_value"] == {"ok": True} and done["progress"] == 100
        assert done["logs"] == ["sent"] and done["attempts_made"] == 1
        assert done["finished_on"] >= done["processed_on"] >= done["timestamp"]


def test_post_a_list_answers_ids_and_get_queues_counts(server: Served) -> None:
    with client(server) as http:
        r = http.post("/queues/bulk/jobs", json=[{"name": "a"}, {"name": "b", "data": [1]}])
        assert r.status_code == 202 and len(r.json()["ids"]) == 2
        queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
        assert queues["bulk"]["counts"]["waiting"] == 2 and queues["bulk"]["paused"] is False
        page = http.get("/queues/bulk/jobs", params={"state": "waiting", "start": 0, "end": 0})
        assert page.json()["total"] == 2 and len(page.json()["jobs"]) == 1


def test_admin_routes_pause_promote_remove_drain_clean(server: Served) -> None:
    with client(server) as http:
        delayed = http.post("/queues/q/jobs", json={"name": "d", "opts": {"delay": 3600}})
        job_id = delayed.json()["id"]
        assert http.post(f"/queues/q/jobs/{job_id}/promote").json()["state"] == "waiting"
        assert http.post("/queues/q/pause").json() == {"paused": True}
        assert http.get("/queues").json()["queues"][0]["paused"] is True
        assert http.post("/queues/q/resume").json() == {"paused": False}
        assert http.delete(f"/queues/q/jobs/{job_id}").json()["removed"] is True
        assert http.delete(f"/queues/q/jobs/{job_id}").status_code == 404
        http.post("/queues/q/jobs", json=[{"name": "x"}, {"name": "y"}])
        assert http.post("/queues/q/drain").json() == {"removed": 2}
        assert http.post("/queues/q/clean", params={"state": "failed"}).json() == {"removed": []}


def test_retry_route_runs_a_failed_job_again(server: Served) -> None:
    with client(server) as http:
        job_id = http.post("/queues/r/jobs", json={"name": "x"}).json()["id"]
        runs: list[int] = []

        async def flaky(job: Job) -> str:
            runs.append(1)
            if len(runs) == 1:
                raise RuntimeError("first time")
            return "second"

        state = lambda: http.get(f"/queues/r/jobs/{job_id}").json()["state"]  # noqa: E731
        _run_worker_until(server.url, "r", flaky, lambda: state() == "failed")
        assert http.post(f"/queues/r/jobs/{job_id}/retry").status_code == 200
        assert http.post(f"/queues/r/jobs/{job_id}/retry").status_code == 409  # it waits now
        _run_worker_until(server.url, "r", flaky, lambda: state() == "completed")
        assert http.get(f"/queues/r/jobs/{job_id}").json()["return_value"] == "second"


def test_server_sent_events_show_a_jobs_life(server: Served) -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(timeout=20) as http,
            http.stream("GET", server.base + "/api/v1/queues/sse/events") as stream,
        ):
            name = None
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    seen.append((name, json.loads(line[6:])))
                    if name == "completed":
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    with client(server) as http:
        job_id = http.post("/queues/sse/jobs", json={"name": "x"}).json()["id"]

        async def work(job: Job) -> int:
            await job.update_progress(40)
            return 7

        _run_worker_until(server.url, "sse", work, lambda: not thread.is_alive())
    names = [n for n, d in seen if d.get("job_id") == job_id]
    assert names[0] == "added" and "progress" in names and names[-1] == "completed"
    assert seen[-1][1]["return_value"] == 7


def test_metrics_are_prometheus_text(server: Served) -> None:
    with client(server) as http:
        http.post("/queues/m/jobs", json={"name": "x"})
    text = httpx.get(server.base + "/metrics").text
    assert "# TYPE dockyard_jobs gauge" in text
    assert 'dockyard_jobs{queue="m",state="waiting"} 1' in text


def test_bad_requests_get_4xx_and_write_nothing(server: Served) -> None:
    with client(server) as http:
        as_json = {"Content-Type": "application/json"}
        assert http.post("/queues/b/jobs", content=b"{nope", headers=as_json).status_code == 400
        assert http.post("/queues/b/jobs", content=b'{"name": "x"}').status_code == 415
        assert http.post("/queues/b/jobs", json={"data": 1}).status_code == 422
        assert (
            http.post("/queues/b/jobs", json={"name": "x", "opts": {"delay": -1}}).status_code
            == 422
        )
        assert (
            http.post("/queues/b/jobs", json={"name": "x", "opts": {"bogus": 1}}).status_code == 422
        )
        assert http.post("/queues/b/jobs", json=[{"name": "ok"}, {"name": ""}]).status_code == 422
        big = {"name": "x", "data": "y" * 2_000_000}
        assert http.post("/queues/b/jobs", json=big).status_code == 413
        assert http.get("/queues/b/jobs", params={"state": "bogus"}).status_code == 400
        assert http.get("/queues/b/jobs", params={"start": 5, "end": 1}).status_code == 400
        assert http.get("/queues/b/jobs/404").status_code == 404
        queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
        assert "b" not in queues or sum(queues["b"]["counts"].values()) == 0


def test_a_token_is_required_on_every_route_when_set(locked_server: Served) -> None:
    assert httpx.get(locked_server.base + "/api/v1/queues").status_code == 401
    assert httpx.get(locked_server.base + "/metrics").status_code == 401
    with client(locked_server, "wrong") as http:
        assert http.get("/queues").status_code == 401
    with client(locked_server, "s3cret-s3cret-s3cret") as http:
        assert http.get("/queues").status_code == 200
    page = httpx.get(locked_server.base + "/")
    assert page.status_code == 200 and 'name="token"' in page.text
    signed = httpx.get(locked_server.base + "/?token=s3cret-s3cret-s3cret", follow_redirects=False)
    assert signed.status_code == 303 and "httponly" in signed.headers["set-cookie"].lower()
    cookie = signed.cookies.get("dockyard_token")
    ok = httpx.get(locked_server.base + "/api/v1/queues", cookies={"dockyard_token": cookie})
    assert ok.status_code == 200


def test_serve_refuses_a_public_address_without_a_token() -> None:
    from dockyard.web.serve import run

    assert run(url="memory://x", host="0.0.0.0", port=1, token=None) == 2


def test_the_openapi_document_lists_the_routes(server: Served) -> None:
    spec = httpx.get(server.base + "/api/v1/openapi.json").json()
    assert "/api/v1/queues/{queue}/jobs" in spec["paths"]
    assert "/api/v1/queues/{queue}/jobs/{job_id}/retry" in spec["paths"]


def _run_worker_until(url: str, queue: str, handler, done) -> None:  # type: ignore[no-untyped-def]
    """Run a worker in its own thread and loop until ``done()`` holds."""
    import asyncio

    async def main() -> None:
        async with Worker(queue, handler, url=url):
            await wait_for(done, timeout=15, what=f"the {queue} job")

    asyncio.run(main())
    _ = Queue
