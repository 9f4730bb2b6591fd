"""The HTTP API on a queue that Node BullMQ filled and works."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ..web.conftest import serve
from .support import BULLMQ_VERSIONS, node_args

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
def test_the_api_reads_and_retries_jobs_added_and_failed_by_node(
    bullmq: str, redis_url: str, queue_name: str, node: Any
) -> None:
    """Node adds 3 jobs (one made to fail) and a Node worker runs them; the API lists
    them with Node's counts, shows the failure, and its retry lets a Node worker finish."""
    jobs = [
        {"name": "ok", "data": {"behaviour": "ok", "i": 0}},
        {"name": "ok", "data": {"behaviour": "ok", "i": 1}},
        {"name": "bad", "data": {"behaviour": "ok", "message": "nope", "fail_times": 1}},
    ]
    added = node("produce.mjs", node_args(bullmq, redis_url, queue_name, jobs=jobs)).wait()
    ids = added[-1]["ids"]
    node("work.mjs", node_args(bullmq, redis_url, queue_name, until=3)).wait()
    for served in serve(redis_url):
        with httpx.Client(base_url=served.base + "/api/v1", timeout=10) as http:
            queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
            assert queues[queue_name]["counts"]["completed"] == 2
            assert queues[queue_name]["counts"]["failed"] == 1
            failed = http.get(f"/queues/{queue_name}/jobs", params={"state": "failed"}).json()
            assert [j["id"] for j in failed["jobs"]] == [ids[2]]
            assert failed["jobs"][0]["failed_reason"] == "nope"
            ok = http.get(f"/queues/{queue_name}/jobs/{ids[0]}").json()
            assert ok["state"] == "completed" and ok["return_value"] == {"ok": True, "i": 0}
            retry = f"/queues/{queue_name}/jobs/{ids[2]}/retry"
            assert http.post(retry, headers={"X-Dockyard": "1"}).status_code == 200
        node("work.mjs", node_args(bullmq, redis_url, queue_name, until=1)).wait()
        with httpx.Client(base_url=served.base + "/api/v1", timeout=10) as http:
            assert http.get(f"/queues/{queue_name}/jobs/{ids[2]}").json()["state"] == "completed"
