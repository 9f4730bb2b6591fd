"""Who may write: CSRF, DNS rebinding and tokens (field report #4 and #26), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.errors import InvalidOptionError
from dockyard.web import create_app

from .conftest import TOKEN, Served, serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Served]:
    yield from serve(f"sqlite:///{tmp_path}/guard.db")


def _state(site: Served) -> tuple[int, bool]:
    """Jobs in queue q and whether it is paused, read with a proper client."""
    queues = {q["name"]: q for q in httpx.get(site.base + "/api/v1/queues").json()["queues"]}
    q = queues.get("q")
    return (0, False) if q is None else (sum(q["counts"].values()), q["paused"])


def test_json_sent_as_text_plain_is_refused_and_adds_nothing(site: Served) -> None:
    """A browser sends text/plain cross-site without asking first (field report #4)."""
    r = httpx.post(site.base + "/api/v1/queues/q/jobs", content=b'{"name": "pwn", "data": {}}',
                   headers={"Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    assert _state(site) == (0, False)


def test_bodiless_writes_need_the_dashboards_header(site: Served) -> None:
    """pause, resume, drain and clean take no body: plain POSTs are refused (report #4)."""
    api = site.base + "/api/v1/queues/q"
    for route in ("/pause", "/drain", "/clean?state=completed"):
        r = httpx.post(api + route)
        assert r.status_code == 403 and "X-Dockyard" in r.json()["detail"]
    assert _state(site) == (0, False)
    assert httpx.post(api + "/pause", headers={"X-Dockyard": "1"}).json() == {"paused": True}
    assert _state(site) == (0, True)


def test_a_write_from_another_origin_is_refused(site: Served) -> None:
    """Even with the right content type and header, a foreign Origin is refused (#4)."""
    api = site.base + "/api/v1/queues/q"
    evil = {"Origin": "http://evil.example", "X-Dockyard": "1"}
    r = httpx.post(api + "/jobs", json={"name": "pwn"}, headers=evil)
    assert r.status_code == 403 and "evil.example" in r.json()["detail"]
    assert httpx.post(api + "/pause", headers=evil).status_code == 403
    cross = {"Sec-Fetch-Site": "cross-site", "X-Dockyard": "1"}
    assert httpx.post(api + "/pause", headers=cross).status_code == 403
    assert _state(site) == (0, False)
    same = {"Origin": site.base, "X-Dockyard": "1"}
    assert httpx.post(api + "/jobs", json={"name": "ok"}, headers=same).status_code == 202
    assert _state(site) == (1, False)


def test_a_foreign_host_header_is_refused_against_dns_rebinding(site: Served) -> None:
    """A page on evil.example rebound to 127.0.0.1 sends Host: evil.example (#4)."""
    rebound = {"Host": "evil.example:8080"}
    r = httpx.get(site.base + "/api/v1/queues", headers=rebound)
    assert r.status_code == 400 and "--allowed-host" in r.json()["detail"]
    r = httpx.post(site.base + "/api/v1/queues/q/jobs", json={"name": "pwn"}, headers=rebound)
    assert r.status_code == 400
    assert httpx.get(site.base + "/", headers=rebound).status_code == 400
    assert _state(site) == (0, False)
    for host in ("localhost", "127.0.0.1:1234", "[::1]:80"):
        assert httpx.get(site.base + "/api/v1/queues", headers={"Host": host}).status_code == 200


def test_allowed_hosts_are_the_ones_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hosts.db"
    app = create_app(url=url, allowed_hosts=["jobs.example", "other.example:9000"])
    for served in serve(url, app=app):
        base = served.base

        def get(host: str, base: str = base) -> httpx.Response:
            return httpx.get(base + "/api/v1/queues", headers={"Host": host})

        assert get("jobs.example").status_code == 200
        assert get("JOBS.example:1234").status_code == 200
        assert get("other.example:9000").status_code == 200
        assert get("other.example:9001").status_code == 400
        assert get("127.0.0.1").status_code == 400
    with pytest.raises(InvalidOptionError):
        create_app(url=url, allowed_hosts="jobs.example")  # type: ignore[arg-type]


def test_a_bearer_token_write_needs_no_csrf_header(locked_server: Served) -> None:
    """Browsers never add Authorization by themselves: such writes are not cross-site."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(locked_server.base + "/api/v1/queues/q/pause", headers=auth)
    assert r.status_code == 200
    # With a token, any Host is fine: a rebound name carries no token.
    r = httpx.get(locked_server.base + "/api/v1/queues", headers={**auth, "Host": "x.example"})
    assert r.status_code == 200


@pytest.mark.parametrize("token", ["", " ", "                    ", "short", "fifteen-chars-x",
                                   "sixteen chars ok", "non-ascii-é-token-x"])  # fmt: skip
def test_blank_short_or_odd_tokens_are_refused(token: str, tmp_path: Path) -> None:
    """Field report #26: a whitespace token could never match, a short one is guessable."""
    with pytest.raises(InvalidOptionError, match="token"):
        create_app(url=f"sqlite:///{tmp_path}/t.db", token=token)


def test_serve_refuses_a_blank_token(capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.web.serve import run

    assert run(url="memory://x", host="0.0.0.0", port=1, token=" ") == 2
    assert run(url="memory://x", host="127.0.0.1", port=1, token="too-short") == 2
    assert "at least 16 characters" in capsys.readouterr().err


def test_a_token_with_spaces_around_it_is_used_stripped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/strip.db"
    for served in serve(url, app=create_app(url=url, token=f"  {TOKEN}\n")):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(served.base + "/api/v1/queues", headers=headers).status_code == 200
        odd = {"Authorization": "Bearer caf\xe9-not-the-token".encode("latin-1")}
        assert httpx.get(served.base + "/api/v1/queues", headers=odd).status_code == 401
