"""Where a Redis server is and how to reach it (TLS, login, database), parsed from a URL.

``redis://[user:pass@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix:///path?db=N`` and
``redis+sentinel://[user:pass@]h1:26379,h2:26379/SERVICE[/db]`` (``rediss+sentinel`` for TLS)
and ``redis+cluster://[user:pass@]h1:7000,h2:7001`` (``rediss+cluster``: seed nodes of a Cluster).
Options go in the query; an unknown or repeated one is refused, never ignored, so a typo
cannot turn certificate checks off unnoticed. Each scheme has a parser in :data:`_SCHEMES`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from ...errors import InvalidOptionError

#: ``ssl_cert_reqs`` values and what they mean to Python's ssl module.
_CERT_REQS = {
    "required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
#: Every query option, by name: what each scheme accepts is checked by its parser.
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
QUERY_OPTIONS = ("db", *TLS_OPTIONS, *SENTINEL_OPTIONS)
#: The port of a sentinel named without one.
SENTINEL_PORT = 26379
#: The port of a cluster seed named without one.
CLUSTER_PORT = 6379


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How a ``rediss://`` connection checks the server and shows itself: a CA file (else
    the system's), an optional client certificate and key, and how strict to verify."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    cert_reqs: str = "required"
    check_hostname: bool = True

    def context(self) -> ssl.SSLContext:
        """A fresh client context (files are read again, so renewed certificates count);
        a missing or bad file raises InvalidOptionError naming its option."""
        context = ssl.create_default_context()
        context.check_hostname = self.check_hostname
        context.verify_mode = _CERT_REQS[self.cert_reqs]
        if self.ca_certs is not None:
            _load("ssl_ca_certs", self.ca_certs, lambda: context.load_verify_locations(
                cafile=self.ca_certs))  # fmt: skip
        if self.certfile is not None:
            shown = self.certfile + (f" with key {self.keyfile}" if self.keyfile else "")
            _load("ssl_certfile", shown, lambda: context.load_cert_chain(
                self.certfile or "", self.keyfile))  # fmt: skip
        return context


def _load(option: str, path: str, load: Callable[[], None]) -> None:
    try:
        load()
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidOptionError(
            f"{option}={path}: cannot be used ({reason}); give a readable PEM file"
        ) from None


@dataclass(frozen=True, slots=True)
class SentinelOptions:
    """How to find the primary of a Sentinel-watched service: the sentinels to ask (in
    turn), the service's name, and the sentinels' own login (None: they need none)."""

    hosts: tuple[tuple[str, int], ...]
    service: str
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """A Redis Cluster: the seed nodes asked (in turn) for the slot map, and the one hash
    slot this address is bound to (None until a queue binds it: see :mod:`.cluster`)."""

    seeds: tuple[tuple[str, int], ...]
    slot: int | None = None


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis server is and how to log in; ``tls`` is None for a plain connection.

    With ``sentinel`` set, host and port are those of the first sentinel and the server is
    whichever primary the sentinels name when connecting (see :mod:`.sentinel`).
    """

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: TlsOptions | None = None
    sentinel: SentinelOptions | None = None
    cluster: ClusterOptions | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """Parse ``redis://``, ``rediss://`` or ``unix://`` with its query options; anything
        wrong (a bad scheme, an unknown option, an unreadable certificate) raises
        InvalidOptionError before a connection is tried."""
        try:
            parts = urlsplit(url)
            if not parts.scheme.lower().endswith(("+sentinel", "+cluster")):  # several hosts
                parts.port  # noqa: B018  # a bad port raises only when read
        except ValueError as exc:
            raise InvalidOptionError(f"{_safe(url)} is not a valid URL: {exc}") from None
        parser = _SCHEMES.get(parts.scheme.lower())
        if parser is None:
            raise InvalidOptionError(
                f"unsupported Redis URL scheme {parts.scheme!r} in {_safe(url)}; "
                "use redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"
            )
        return parser(url, parts, _query(url, parts.query))

    @property
    def user(self) -> str:
        """The ACL user this address logs in as (``default`` when the URL names none)."""
        return self.username or "default"

    def __str__(self) -> str:
        if self.cluster is not None:
            scheme = "rediss+cluster" if self.tls else "redis+cluster"
            hosts = ",".join(f"{_host(h)}:{p}" for h, p in self.cluster.seeds)
            slot = "" if self.cluster.slot is None else f" (slot {self.cluster.slot})"
            return f"{scheme}://{hosts}{slot}"
        if self.sentinel is not None:
            scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
            hosts = ",".join(f"{_host(h)}:{p}" for h, p in self.sentinel.hosts)
            return f"{scheme}://{hosts}/{self.sentinel.service}/{self.db}"
        if self.path:
            return f"unix://{self.path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{_host(self.host)}:{self.port}/{self.db}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _safe(url: str) -> str:
    """``url`` quoted for a message, its password hidden."""
    from .. import display_url

    return repr(display_url(url))


def _query(url: str, query: str) -> dict[str, str]:
    """The query options, each given once with a value; anything else is refused."""
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidOptionError(f"the query of {_safe(url)} is malformed") from None
    for name, given in values.items():
        if name not in QUERY_OPTIONS:
            raise InvalidOptionError(
                f"unknown option {name!r} in {_safe(url)}; Redis URLs take "
                + ", ".join(QUERY_OPTIONS)
            )
        if len(given) > 1:
            raise InvalidOptionError(f"option {name!r} is given {len(given)} times in {_safe(url)}")
        if not given[0]:
            raise InvalidOptionError(f"option {name!r} has no value in {_safe(url)}")
    return {name: given[0] for name, given in values.items()}


def _db(url: str, text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise InvalidOptionError(
            f"the database in {_safe(url)} must be a number from 0 up, not {text!r}"
        )
    return int(text)


def _tls(url: str, query: dict[str, str]) -> TlsOptions:
    """The TLS options of the query, checked now (files loaded once) so a bad one fails
    at construction rather than at the first connection."""
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in _CERT_REQS:
        raise InvalidOptionError(
            f"ssl_cert_reqs={reqs!r} in {_safe(url)}: use required (the default), optional or none"
        )
    check_text = query.get("ssl_check_hostname", "true" if reqs != "none" else "false").lower()
    if check_text not in _TRUE + _FALSE:
        raise InvalidOptionError(
            f"ssl_check_hostname={check_text!r} in {_safe(url)}: use true or false"
        )
    check = check_text in _TRUE
    if check and reqs == "none":
        raise InvalidOptionError(
            f"ssl_check_hostname=true needs a verified certificate, but {_safe(url)} sets "
            "ssl_cert_reqs=none; drop one of them"
        )
    if "ssl_keyfile" in query and "ssl_certfile" not in query:
        raise InvalidOptionError(
            f"ssl_keyfile in {_safe(url)} needs ssl_certfile (the client certificate) too"
        )
    options = TlsOptions(
        ca_certs=query.get("ssl_ca_certs"),
        certfile=query.get("ssl_certfile"),
        keyfile=query.get("ssl_keyfile"),
        cert_reqs=reqs,
        check_hostname=check,
    )
    options.context()  # raises InvalidOptionError for a missing or bad file
    return options


def _password(parts: SplitResult) -> str | None:
    """The URL's password; a user named without one logs in with an empty password (which
    a ``nopass`` ACL user accepts), rather than being silently dropped for ``default``."""
    if parts.password:
        return unquote(parts.password)
    return "" if parts.username else None


def _no_sentinel_options(url: str, query: dict[str, str]) -> None:
    given = [name for name in SENTINEL_OPTIONS if name in query]
    if given:
        raise InvalidOptionError(
            f"{', '.join(given)} in {_safe(url)} only apply to redis+sentinel:// URLs"
        )


def _tcp(url: str, parts: SplitResult, query: dict[str, str]) -> RedisAddress:
    _no_sentinel_options(url, query)
    tls = parts.scheme.lower() == "rediss"
    given_tls = [name for name in TLS_OPTIONS if name in query]
    if given_tls and not tls:
        raise InvalidOptionError(
            f"{', '.join(given_tls)} in {_safe(url)} only apply to TLS: use rediss:// "
            "(a plain redis:// connection would ignore them)"
        )
    path_db = parts.path.strip("/")
    if path_db and "db" in query:
        raise InvalidOptionError(f"{_safe(url)} gives the database twice (path and ?db=)")
    return RedisAddress(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        db=_db(url, path_db or query.get("db", "0")),
        username=unquote(parts.username) if parts.username else None,
        password=_password(parts),
        tls=_tls(url, query) if tls else None,
    )


def _unix(url: str, parts: SplitResult, query: dict[str, str]) -> RedisAddress:
    _no_sentinel_options(url, query)
    given_tls = [name for name in TLS_OPTIONS if name in query]
    if given_tls:
        raise InvalidOptionError(
            f"{', '.join(given_tls)} in {_safe(url)}: TLS is not used over a unix socket"
        )
    path = unquote(parts.path)
    if not path:
        raise InvalidOptionError(f"{_safe(url)} names no socket; use unix:///path/to/redis.sock")
    return RedisAddress(
        path=path,
        db=_db(url, query.get("db", "0")),
        username=unquote(parts.username) if parts.username else None,
        password=_password(parts),
    )


def _sentinel(url: str, parts: SplitResult, query: dict[str, str]) -> RedisAddress:
    """``redis+sentinel://[user:pass@]h1[:port],h2[:port]/SERVICE[/db]``: the URL's login
    is the primary's; the sentinels' own comes from ``sentinel_username``/``_password``."""
    tls = parts.scheme.lower() == "rediss+sentinel"
    given_tls = [name for name in TLS_OPTIONS if name in query]
    if given_tls and not tls:
        raise InvalidOptionError(
            f"{', '.join(given_tls)} in {_safe(url)} only apply to TLS: use rediss+sentinel://"
        )
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    hosts = tuple(_host_port(url, item, SENTINEL_PORT, "sentinel") for item in hostlist.split(","))
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not segments or len(segments) > 2 or not segments[0]:
        raise InvalidOptionError(
            f"{_safe(url)} must name the service the sentinels monitor: "
            "redis+sentinel://host1:26379,host2:26379/SERVICE[/db]"
        )
    if len(segments) == 2 and "db" in query:
        raise InvalidOptionError(f"{_safe(url)} gives the database twice (path and ?db=)")
    first_host, first_port = hosts[0]
    return RedisAddress(
        host=first_host,
        port=first_port,
        db=_db(url, segments[1] if len(segments) == 2 else query.get("db", "0")),
        username=unquote(user) if user else None,
        password=unquote(password) if has_password and password else ("" if user else None),
        tls=_tls(url, query) if tls else None,
        sentinel=SentinelOptions(
            hosts=hosts,
            service=unquote(segments[0]),
            username=query.get("sentinel_username"),
            password=query.get("sentinel_password"),
        ),
    )


def _cluster(url: str, parts: SplitResult, query: dict[str, str]) -> RedisAddress:
    """``redis+cluster://[user:pass@]h1[:port],h2[:port]``: seed nodes, one login for all;
    a cluster has only database 0, so none may be named."""
    _no_sentinel_options(url, query)
    tls = parts.scheme.lower() == "rediss+cluster"
    given_tls = [name for name in TLS_OPTIONS if name in query]
    if given_tls and not tls:
        raise InvalidOptionError(
            f"{', '.join(given_tls)} in {_safe(url)} only apply to TLS: use rediss+cluster://"
        )
    if parts.path.strip("/") or query.get("db", "0") != "0":
        raise InvalidOptionError(
            f"{_safe(url)} names a database, but Redis Cluster has only database 0; "
            "drop it: redis+cluster://host1:7000,host2:7001"
        )
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    seeds = tuple(_host_port(url, item, CLUSTER_PORT, "seed") for item in hostlist.split(","))
    first_host, first_port = seeds[0]
    return RedisAddress(
        host=first_host,
        port=first_port,
        username=unquote(user) if user else None,
        password=unquote(password) if has_password and password else ("" if user else None),
        tls=_tls(url, query) if tls else None,
        cluster=ClusterOptions(seeds=seeds),
    )


def _host_port(url: str, item: str, default_port: int, what: str) -> tuple[str, int]:
    """One ``host[:port]`` (``[v6]:port`` too) of a sentinel or seed list."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ("" if not rest else "?")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise InvalidOptionError(
            f"{_safe(url)} has an empty {what} address; list them as host:port,host:port"
        )
    if port_text and (
        not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536
    ):
        raise InvalidOptionError(f"{what} {item!r} in {_safe(url)} has a bad port")
    return host, int(port_text) if port_text else default_port


_Parser = Callable[[str, SplitResult, dict[str, str]], RedisAddress]
#: URL scheme -> its parser.
_SCHEMES: dict[str, _Parser] = {
    "redis": _tcp,
    "rediss": _tcp,
    "unix": _unix,
    "redis+sentinel": _sentinel,
    "rediss+sentinel": _sentinel,
    "redis+cluster": _cluster,
    "rediss+cluster": _cluster,
}
