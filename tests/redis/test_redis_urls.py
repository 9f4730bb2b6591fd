"""Redis URLs: TLS options parsed and checked, anything unknown or wrong refused by name.

A typo such as ``?ssl_ca_cert=`` used to be ignored in silence (and with it the CA); now
every query option is known or refused with InvalidOptionError naming it, for Queue,
Worker, QueueEvents and FlowProducer alike, before any connection is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard import FlowProducer, InvalidOptionError, Queue, QueueEvents, Worker
from dockyard.backends.redis.address import QUERY_OPTIONS, RedisAddress, TlsOptions

_MAKERS: list[Callable[[str], Any]] = [
    lambda url: Queue("q", url=url),
    lambda url: Worker("q", lambda job: None, url=url),
    lambda url: QueueEvents("q", url=url),
    lambda url: FlowProducer(url=url),
]


def test_plain_urls_parse_as_before() -> None:
    address = RedisAddress.from_url("redis://u:p%40ss@example.org:6380/3")
    assert (address.host, address.port, address.db) == ("example.org", 6380, 3)
    assert (address.username, address.password, address.tls) == ("u", "p@ss", None)
    assert RedisAddress.from_url("unix:///tmp/r.sock?db=2") == RedisAddress(
        path="/tmp/r.sock", db=2
    )
    assert RedisAddress.from_url("redis://:secret@h").password == "secret"


def test_a_user_without_a_password_logs_in_as_that_user() -> None:
    """It used to be dropped in silence (logging in as ``default``)."""
    address = RedisAddress.from_url("redis://reporter@h/0")
    assert (address.username, address.password, address.user) == ("reporter", "", "reporter")


def test_tls_options_parse_with_verification_on_by_default(tmp_path: Path) -> None:
    assert RedisAddress.from_url("rediss://h").tls == TlsOptions()
    ca = _ca(tmp_path)
    address = RedisAddress.from_url(f"rediss://h:6390/1?ssl_ca_certs={ca}&ssl_cert_reqs=Optional")
    assert address.tls == TlsOptions(ca_certs=str(ca), cert_reqs="optional", check_hostname=True)
    lax = RedisAddress.from_url("rediss://h?ssl_cert_reqs=none")
    assert lax.tls == TlsOptions(cert_reqs="none", check_hostname=False)
    assert str(lax) == "rediss://h:6379/0"


def _ca(folder: Path) -> Path:
    """Any valid PEM CA file will do for parsing: Python's own test CA is not at hand, so
    use the system bundle if present, else make one."""
    import ssl

    bundle = ssl.get_default_verify_paths().cafile
    if bundle and Path(bundle).exists():
        return Path(bundle)
    from .tlspki import make_pki

    return make_pki(folder).ca


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("redis://h?ssl_ca_cert=/x.pem", "'ssl_ca_cert'"),
        ("rediss://h?ssl_verify=no", "'ssl_verify'"),
        ("redis://h?ssl_ca_certs=/x.pem", "use rediss://"),
        ("unix:///r.sock?ssl_cert_reqs=none", "unix socket"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs='maybe'"),
        ("rediss://h?ssl_check_hostname=perhaps", "ssl_check_hostname"),
        ("rediss://h?ssl_cert_reqs=none&ssl_check_hostname=true", "drop one of them"),
        ("rediss://h?ssl_keyfile=/k.pem", "needs ssl_certfile"),
        ("rediss://h?ssl_ca_certs=/no/such/ca.pem", "ssl_ca_certs=/no/such/ca.pem"),
        ("rediss://h?ssl_certfile=/no/such.pem", "ssl_certfile=/no/such.pem"),
        ("redis://h?db=1&db=2", "given 2 times"),
        ("redis://h/1?db=2", "database twice"),
        ("redis://h?db=", "no value"),
        ("redis://h/x", "must be a number"),
        ("redis://h/-1", "must be a number"),
        ("redis://h:99999", "not a valid URL"),
        ("http://h", "unsupported Redis URL scheme"),
    ],
)
def test_bad_urls_are_refused_naming_what_is_wrong(url: str, named: str) -> None:
    with pytest.raises(InvalidOptionError) as refused:
        RedisAddress.from_url(url)
    assert named in str(refused.value)


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(InvalidOptionError) as refused:
        RedisAddress.from_url("redis://u:hunter2@h?typo=1")
    assert "hunter2" not in str(refused.value) and "'typo'" in str(refused.value)


_OPTION = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&=#%+"),
                  min_size=1, max_size=20).filter(lambda s: s not in QUERY_OPTIONS)  # fmt: skip


@given(option=_OPTION, value=st.text(min_size=1, max_size=10).map(lambda s: s.encode().hex()))
def test_every_unknown_option_is_refused_by_name(option: str, value: str) -> None:
    """Whatever the typo, the option is named; nothing is ignored in silence."""
    for scheme in ("redis", "rediss"):
        with pytest.raises(InvalidOptionError) as refused:
            RedisAddress.from_url(f"{scheme}://h/0?{option}={value}")
        assert repr(option) in str(refused.value)


@given(url=st.text(max_size=60).map(lambda s: "rediss://h/0?" + s))
def test_any_query_parses_or_is_refused_with_a_typed_error(url: str) -> None:
    try:
        address = RedisAddress.from_url(url)
    except InvalidOptionError:
        return
    assert address.tls is not None


@pytest.mark.parametrize("make", _MAKERS, ids=["Queue", "Worker", "QueueEvents", "FlowProducer"])
def test_every_entry_point_refuses_a_typo_at_construction(make: Callable[[str], Any]) -> None:
    with pytest.raises(InvalidOptionError, match="'ssl_ca_cert'"):
        make("rediss://127.0.0.1:1/0?ssl_ca_cert=/etc/ca.pem")
