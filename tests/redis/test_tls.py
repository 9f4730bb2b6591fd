"""``rediss://`` with a private certificate authority, client certificates, and TLS
refusals that fail at once instead of being retried as an outage.

Before: a self-signed or company CA could not be given, and its CERTIFICATE_VERIFY_FAILED
was retried for 20 s before "Is it running?". Each refusal below is asked for with a 60 s
retry window and must arrive well inside it (asyncio.wait_for with 10 s), typed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import (
    BackendTLSError,
    FlowProducer,
    Queue,
    QueueEvents,
    Worker,
)
from dockyard.backends import open_backend

from .tlspki import Pki, TlsServer, make_pki

#: Far longer than any refusal may take: a refusal retried as an outage would hit the bound.
WINDOW = 60.0
BOUND = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(pki: Pki) -> Iterator[TlsServer]:
    """A TLS-only server that does not ask for client certificates."""
    with TlsServer(pki) as server:
        yield server


@pytest.fixture(scope="module")
def mtls(pki: Pki) -> Iterator[TlsServer]:
    """A TLS-only server that requires a client certificate of our CA."""
    with TlsServer(pki, client_certs=True) as server:
        yield server


def _name() -> str:
    return f"tls-{uuid.uuid4().hex[:8]}"


def _queue(url: str, name: str) -> Queue:
    """A queue with a long reconnect window, so only a refusal can end a call early."""
    return Queue(name, backend=open_backend(url, name, retry_for=WINDOW))


async def _round_trip(url: str) -> None:
    """Add a job, work it, see its events: the whole cycle over this URL."""
    name = _name()
    async with Queue(name, url=url) as queue, QueueEvents(name, url=url, block=0.5) as events:
        async with Worker(name, lambda job: job.data["n"] * 2, url=url):
            job = await queue.add("double", {"n": 21})
            assert await job.wait_until_finished(timeout=BOUND) == 42
        seen: list[str] = []
        while "completed" not in seen:
            event = await events.next(timeout=BOUND)
            assert event is not None, f"no completed event, saw {seen}"
            seen.append(event.name)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_a_private_ca_given_with_ssl_ca_certs_is_trusted(tls: TlsServer, pki: Pki) -> None:
    """Queue, Worker, QueueEvents and FlowProducer all work over rediss:// with our CA."""
    url = tls.url(ssl_ca_certs=pki.ca)
    await _round_trip(url)
    name = _name()
    async with FlowProducer(url=url) as flows:
        node = await flows.add(
            {"name": "parent", "queue": name, "children": [{"name": "kid", "queue": name}]}
        )
        assert await node.job.get_state() == "waiting-children"


def test_every_cli_command_takes_the_same_tls_url(tls: TlsServer, pki: Pki) -> None:
    name = _name()
    url = tls.url(ssl_ca_certs=pki.ca)
    added = _cli("add", name, "hello", "--url", url)
    assert added.returncode == 0, added.stderr
    shown = _cli("stats", name, "--url", url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"waiting": 1' in shown.stdout


async def test_an_untrusted_certificate_is_refused_at_once(tls: TlsServer) -> None:
    """No ssl_ca_certs: the server's certificate is not trusted, which no retry can change."""
    async with _queue(tls.url(), _name()) as queue:
        with pytest.raises(BackendTLSError) as refused:
            await asyncio.wait_for(queue.add("x"), BOUND)
    assert "ssl_ca_certs" in str(refused.value)
    assert "running" not in str(refused.value)


async def test_a_worker_meeting_an_untrusted_certificate_stops_at_once(tls: TlsServer) -> None:
    """A worker retries an unreachable store forever; a refused certificate it raises."""
    worker = Worker(_name(), lambda job: None, url=tls.url())
    with pytest.raises(BackendTLSError):
        await asyncio.wait_for(worker.run(handle_signals=False), BOUND)


def test_the_cli_says_which_option_a_tls_refusal_needs(tls: TlsServer) -> None:
    done = _cli("stats", "q", "--url", tls.url())
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ssl_ca_certs" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


async def test_a_certificate_for_another_host_is_refused_unless_the_check_is_off(
    pki: Pki,
) -> None:
    with TlsServer(pki, cert=pki.elsewhere) as server:
        async with _queue(server.url(ssl_ca_certs=pki.ca), _name()) as queue:
            with pytest.raises(BackendTLSError) as refused:
                await asyncio.wait_for(queue.add("x"), BOUND)
        assert "'127.0.0.1'" in str(refused.value)
        assert "ssl_check_hostname" in str(refused.value)
        lenient = server.url(ssl_ca_certs=pki.ca, ssl_check_hostname="false")
        async with Queue(_name(), url=lenient) as queue:
            await queue.add("x")
            assert await queue.count() == 1


async def test_ssl_cert_reqs_none_skips_verification(tls: TlsServer) -> None:
    async with Queue(_name(), url=tls.url(ssl_cert_reqs="none")) as queue:
        await queue.add("x")
        assert await queue.count() == 1


async def test_mutual_tls_works_with_a_client_certificate(mtls: TlsServer, pki: Pki) -> None:
    cert, key = pki.client
    await _round_trip(mtls.url(ssl_ca_certs=pki.ca, ssl_certfile=cert, ssl_keyfile=key))


async def test_mutual_tls_without_a_client_certificate_is_refused_at_once(
    mtls: TlsServer, pki: Pki
) -> None:
    async with _queue(mtls.url(ssl_ca_certs=pki.ca), _name()) as queue:
        with pytest.raises(BackendTLSError) as refused:
            await asyncio.wait_for(queue.add("x"), BOUND)
    assert "ssl_certfile" in str(refused.value) and "client certificate" in str(refused.value)


async def test_a_client_certificate_of_another_ca_is_refused_at_once(
    mtls: TlsServer, pki: Pki
) -> None:
    cert, key = pki.stranger
    url = mtls.url(ssl_ca_certs=pki.ca, ssl_certfile=cert, ssl_keyfile=key)
    async with _queue(url, _name()) as queue:
        with pytest.raises(BackendTLSError) as refused:
            await asyncio.wait_for(queue.add("x"), BOUND)
    assert "client certificate" in str(refused.value)


def test_a_missing_certificate_file_is_refused_when_the_queue_is_made(
    tls: TlsServer, tmp_path: Path
) -> None:
    from dockyard import InvalidOptionError

    missing = tmp_path / "nope.pem"
    with pytest.raises(InvalidOptionError, match="ssl_ca_certs"):
        Queue("q", url=tls.url(ssl_ca_certs=missing))
