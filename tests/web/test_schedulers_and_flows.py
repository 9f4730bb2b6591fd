"""The flow and job-scheduler routes against a running server (real redis-server): a job's
flow tree, and putting, reading, listing and removing schedulers; bad bodies are 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..flowtrees import ROOT_NAME, build
from .conftest import Served, serve
from .test_api import client

JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(params=["redis", "sqlite"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """The server on Redis, then on SQLite: both keep flows and schedulers alike."""
    if request.param == "redis":
        yield from serve(request.getfixturevalue("redis_url"))
    else:
        yield from serve(f"sqlite:///{tmp_path}/flows.db")


def test_the_flow_route_answers_the_tree_with_states(site: Served) -> None:
    build(site.url)
    with client(site) as http:
        r = http.get("/queues/renders/jobs/r1/flow")
        assert r.status_code == 200, r.text
        root = r.json()
        assert (root["id"], root["queue"], root["name"]) == ("r1", "renders", ROOT_NAME)
        assert (root["state"], root["parent"]) == ("waiting-children", None)
        kids = {c["id"]: c for c in root["children"]}
        assert kids["f1"]["state"] == "completed" and kids["f1"]["children"] == []
        assert kids["f2"]["state"] == "waiting-children"
        assert [(g["id"], g["queue"], g["state"]) for g in kids["f2"]["children"]] == [
            ("a1", "assets", "waiting")]  # fmt: skip
        child = http.get("/queues/frames/jobs/f2/flow", params={"depth": 1}).json()
        assert child["parent"] == {"id": "r1", "queue": "renders"} and child["children"] == []


def test_the_flow_route_refuses_bad_input_with_a_detail(site: Served) -> None:
    build(site.url)
    with client(site) as http:
        for depth in (0, 101, "x"):
            r = http.get("/queues/renders/jobs/r1/flow", params={"depth": depth})
            assert r.status_code == 422 and r.json()["detail"], depth
        missing = http.get("/queues/renders/jobs/nope/flow")
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        reserved = http.get("/queues/renders/jobs/meta/flow")
        assert reserved.status_code == 422 and "queue's keys" in reserved.json()["detail"]


def test_put_get_list_and_delete_schedulers(site: Served) -> None:
    with client(site) as http:
        body = {
            "every": 60,
            "template": {
                "name": "tick",
                "data": {"n": 1},
                "opts": {"attempts": 2, "removeOnComplete": True},
            },
        }
        r = http.put("/queues/mail/schedulers/tick", json=body)
        assert r.status_code == 200, r.text
        tick = r.json()
        assert (tick["id"], tick["name"], tick["every"], tick["pattern"]) == (
            "tick",
            "tick",
            60,
            None,
        )
        assert tick["job_id"].startswith("repeat:tick:") and tick["iterations"] == 1
        assert tick["template"]["opts"]["attempts"] == 2
        assert http.get(f"/queues/mail/jobs/{tick['job_id']}").json()["name"] == "tick"
        cron = {"pattern": "0 9 * * *", "tz": "Europe/Paris", "limit": 3,
                "start": "2031-01-02T03:04:05+00:00"}  # fmt: skip
        r = http.put("/queues/mail/schedulers/daily", json=cron)
        assert r.status_code == 200, r.text
        daily = r.json()
        assert (daily["pattern"], daily["tz"], daily["limit"]) == ("0 9 * * *", "Europe/Paris", 3)
        assert daily["start"] == 1925089445.0 and daily["next_run"] > daily["start"]
        listed = http.get("/queues/mail/schedulers").json()["schedulers"]
        assert [s["id"] for s in listed] == ["tick", "daily"]  # soonest next run first
        assert http.get("/queues/mail/schedulers/daily").json()["next_run"] == daily["next_run"]
        # A PUT replaces the schedule.
        again = http.put("/queues/mail/schedulers/tick", json={"every": 120}).json()
        assert again["every"] == 120
        r = http.delete("/queues/mail/schedulers/tick")
        assert r.status_code == 200 and r.json() == {"id": "tick", "removed": True}
        for method in ("GET", "DELETE"):
            r = http.request(method, "/queues/mail/schedulers/tick")
            assert r.status_code == 404 and "tick" in r.json()["detail"]
        assert [s["id"] for s in http.get("/queues/mail/schedulers").json()["schedulers"]] == [
            "daily"]  # fmt: skip


def test_a_put_from_another_site_or_without_json_is_refused(site: Served) -> None:
    api = site.base + "/api/v1/queues/mail/schedulers/s"
    plain = httpx.put(api, content=b'{"every": 5}', headers={"Content-Type": "text/plain"})
    assert plain.status_code in (403, 415) and plain.json()["detail"]
    assert httpx.delete(api).status_code == 403  # no X-Dockyard, no JSON
    evil = {"Origin": "http://evil.example", **JSON_HEADERS}
    assert httpx.put(api, content=b'{"every": 5}', headers=evil).status_code == 403
    assert httpx.get(site.base + "/api/v1/queues/mail/schedulers").json() == {"schedulers": []}


BAD_BODIES: list[Any] = [
    None, [], "every", {"every": 5, "pattern": "* * * * *"}, {}, {"every": -1},
    {"every": "soon"}, {"pattern": "nope"}, {"every": 5, "tz": "Europe/Paris"},
    {"pattern": "* * * * *", "tz": "Mars/Olympus"}, {"every": 5, "limit": 0},
    {"every": 5, "immediately": "yes"}, {"every": 5, "start": "next tuesday"},
    {"every": 5, "bogus": 1}, {"every": 5, "template": []},
    {"every": 5, "template": {"name": "x", "extra": 1}}, {"every": 5, "template": {"opts": [1]}},
    {"every": 5, "template": {"opts": {"jobId": "mine"}}}, {"every": 5, "template": {"name": ""}},
    {"every": 5, "start": "0001-01-01"}, {"every": 1e300}, {"pattern": "0 0 30 2 *"},
    {"every": 5, "end": 0},
]  # fmt: skip


def test_bad_bodies_are_4xx_with_a_detail_and_write_nothing(site: Served) -> None:
    with client(site) as http:
        for body in BAD_BODIES:
            r = http.put("/queues/mail/schedulers/s", content=json.dumps(body).encode(),
                         headers=JSON_HEADERS)  # fmt: skip
            assert r.status_code in (400, 422), (body, r.text)
            assert r.json()["detail"], body
        r = http.put("/queues/mail/schedulers/s", content=b"{not json", headers=JSON_HEADERS)
        assert r.status_code == 400
        assert http.get("/queues/mail/schedulers").json() == {"schedulers": []}


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                     st.text(max_size=12))  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
_FIELDS = ["every", "pattern", "tz", "start", "end", "limit", "immediately", "offset",
           "template", "bogus"]  # fmt: skip
_TEMPLATES = st.fixed_dictionaries({}, optional={
    "name": _VALUES, "data": _VALUES,
    "opts": st.dictionaries(st.sampled_from(["attempts", "jobId", "delay", "priority", "lifo",
                                             "backoff", "repeat", "x"]), _VALUES, max_size=3),
})  # fmt: skip
_SPECIAL = {
    "every": st.one_of(st.floats(), st.integers(-5, 10**12), _VALUES),
    "pattern": st.one_of(st.sampled_from(["* * * * *", "0 0 * * * *", "*/5 * * * *", "61 * * * *",
                                          "@daily", ""]), _VALUES),
    "tz": st.one_of(st.sampled_from(["UTC", "Europe/Paris", "Nowhere/Else"]), _VALUES),
    "start": st.one_of(st.floats(), st.text(max_size=30), _VALUES),
    "template": st.one_of(_TEMPLATES, _VALUES),
}  # fmt: skip
_BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={f: _SPECIAL.get(f, _VALUES) for f in _FIELDS}),
    _VALUES,
)


@settings(max_examples=60,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=_BODIES)
def test_any_put_body_gets_an_answer_below_500(site: Served, body: Any) -> None:
    """Hypothesis: whatever the PUT body, a 200 with the scheduler or a 4xx with a detail."""
    raw = json.dumps(body).encode()  # NaN and Infinity too, as Python writes them
    with client(site) as http:
        r = http.put("/queues/h/schedulers/s", content=raw, headers=JSON_HEADERS)
        assert r.status_code in (200, 400, 422), r.text
        if r.status_code == 200:
            assert r.json()["id"] == "s" and r.json()["next_run"] is not None
        else:
            assert r.json()["detail"]


def test_the_openapi_document_has_the_new_routes(site: Served) -> None:
    spec = httpx.get(site.base + "/api/v1/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/api/v1/queues/{queue}/schedulers/{scheduler_id}"]) == {
        "get",
        "put",
        "delete",
    }
    assert "get" in paths["/api/v1/queues/{queue}/schedulers"]
    flow = paths["/api/v1/queues/{queue}/jobs/{job_id}/flow"]["get"]
    depth = next(p for p in flow["parameters"] if p["name"] == "depth")
    assert (depth["schema"]["minimum"], depth["schema"]["maximum"]) == (1, 100)
