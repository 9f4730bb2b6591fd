"""Bad bodies, odd ids and names, huge bodies: always a 4xx with a detail, never a 500
(field report #14, #15, #16, #18)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard import Queue
from dockyard.backends.redis.keys import validate_queue_name
from dockyard.errors import InvalidOptionError

from .conftest import Served
from .test_api import client

JSON_HEADERS = {"Content-Type": "application/json"}


def _post_raw(http: httpx.Client, body: bytes) -> httpx.Response:
    return http.post("/queues/b/jobs", content=body, headers=JSON_HEADERS)


def test_a_lone_surrogate_is_a_422_and_the_server_goes_on(server: Served) -> None:
    """Field report #14 (and #1): "\\ud800" in a JSON string is not text."""
    with client(server) as http:
        r = _post_raw(http, b'{"name": "x", "data": {"s": "\\ud800"}}')
        assert r.status_code == 422 and "surrogate" in r.json()["detail"]
        assert _post_raw(http, b'{"name": "\\udce9"}').status_code == 422
        pair = _post_raw(http, b'{"name": "ok", "data": "\\ud83d\\ude00"}')  # a real pair
        assert pair.status_code == 202
        job = http.get(f"/queues/b/jobs/{pair.json()['id']}").json()
        assert job["data"] == "\U0001f600"
        assert http.get("/queues/b/jobs", params={"state": "waiting"}).json()["total"] == 1


def test_deeply_nested_json_is_a_400(server: Served) -> None:
    with client(server) as http:
        r = _post_raw(http, b"[" * 100_000)
        assert r.status_code == 400 and "detail" in r.json()
        r = _post_raw(http, b'{"name": "x", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        assert 400 <= r.status_code < 500


def test_ids_that_name_queue_keys_are_refused_and_change_nothing(server: Served) -> None:
    """DELETE .../jobs/id, GET .../jobs/events and friends (field report #14, #2)."""
    with client(server) as http:
        http.post("/queues/k/jobs", json={"name": "x"})
        assert http.post("/queues/k/pause").status_code == 200
        for job_id in ("id", "meta", "events", "de:user:7", "metrics:completed:data", "a:b"):
            for method, path in (("DELETE", ""), ("GET", ""), ("POST", "/retry"),
                                 ("POST", "/promote")):  # fmt: skip
                r = http.request(method, f"/queues/k/jobs/{quote(job_id, safe='')}{path}")
                assert r.status_code == 422, (method, job_id, r.text)
                assert "queue's keys" in r.json()["detail"]
        queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
        assert queues["k"]["paused"] is True and queues["k"]["counts"]["paused"] == 1


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(alphabet=st.characters(codec=None), max_size=20),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip
_OPTION_NAMES = ["jobId", "job_id", "delay", "priority", "attempts", "backoff", "lifo",
                 "removeOnComplete", "remove_on_fail", "timestamp", "timeout", "deduplication",
                 "keep_logs", "dead_letter_queue", "stack_trace_limit", "bogus"]  # fmt: skip
_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=10), _VALUES),
        "data": _VALUES,
        "opts": st.one_of(st.dictionaries(st.sampled_from(_OPTION_NAMES), _VALUES, max_size=3),
                          _VALUES),
        "extra": _VALUES,
    },
)  # fmt: skip
_BODIES = st.one_of(
    _ENTRY.map(json.dumps),
    st.lists(_ENTRY, max_size=3).map(json.dumps),
    _VALUES.map(json.dumps),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=60,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=_BODIES)
def test_any_body_gets_an_answer_below_500(server: Served, body: str) -> None:
    """Hypothesis: whatever is posted, the answer is a 2xx or a 4xx with a detail (#14)."""
    with client(server) as http:
        r = _post_raw(http, body.encode("utf-8", "surrogatepass"))
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert r.json()["detail"]


def test_a_chunked_body_is_cut_at_the_limit(server: Served) -> None:
    """Field report #15: the server answers 413 after about 1 MB, long before 50 MB."""
    total = 50_000_000
    chunk = b"x" * 65536
    host, port = urlsplit(server.base).hostname, urlsplit(server.base).port
    assert host is not None and port is not None
    sent = 0
    pending = b""
    answer = b""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(
            b"POST /api/v1/queues/big/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.setblocking(False)
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        deadline = time.monotonic() + 60
        while not answer and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 1)
            if readable:
                answer = sock.recv(65536)
            elif writable:
                pending = pending or framed
                try:
                    done = sock.send(pending)
                except BlockingIOError:
                    continue
                pending, sent = pending[done:], sent + done
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < total  # answered before the client could send it all
    with client(server) as http:
        queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
        assert "big" not in queues or sum(queues["big"]["counts"].values()) == 0


def test_list_pages_leave_out_big_payloads(server: Served) -> None:
    """Field report #18: a page of jobs stays small; the job view has the full data."""
    big = {"blob": "z" * 3_000_000}

    async def add() -> str:
        async with Queue("huge", url=server.url) as q:
            await q.add("small", {"n": 1})
            return (await q.add("big", big)).id

    big_id = asyncio.run(add())
    with client(server) as http:
        page = http.get("/queues/huge/jobs", params={"state": "waiting"})
        assert len(page.content) < 20_000
        jobs = {j["name"]: j for j in page.json()["jobs"]}
        assert jobs["big"]["data"] is None and jobs["big"]["data_truncated"] is True
        assert jobs["small"]["data"] == {"n": 1} and jobs["small"]["data_truncated"] is False
        assert http.get(f"/queues/huge/jobs/{big_id}").json()["data"] == big


def test_unroutable_queue_names_are_refused_at_creation(server: Served) -> None:
    """Field report #16: names with '/', spaces, control characters or a leading '.'."""
    for name in ("q/with/slash", "../../etc", "a b", "new\nline", "star*", ".hidden", "..", " "):
        with pytest.raises(InvalidOptionError, match="queue name"):
            Queue(name, url=server.url)
    with client(server) as http:
        r = http.get("/queues/a%20b/jobs")
        assert r.status_code == 422 and "queue name" in r.json()["detail"]
        assert http.post("/queues/a%2Fb/jobs", json={"name": "x"}).status_code == 404


@settings(max_examples=50,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(name=st.text(min_size=1, max_size=12))
def test_every_accepted_queue_name_can_be_opened_over_http(server: Served, name: str) -> None:
    """Hypothesis (#16): a name is either refused, or its routes answer like any other."""
    try:
        validate_queue_name(name, "bull")
    except InvalidOptionError:
        return
    with client(server) as http:
        r = http.get(f"/queues/{quote(name, safe='')}/jobs")
        assert r.status_code == 200, (name, r.text)
