"""Who may call the app: the token, the ``Host`` (DNS rebinding) and cross-site writes (CSRF).

One pure ASGI middleware, so that it sees every request before FastAPI does and never
buffers a response (event streams pass straight through).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InvalidOptionError
from .pages import is_view_path, login_page

COOKIE = "dockyard_token"
#: The header the dashboard sends on every write; a cross-site page cannot send it
#: without a CORS preflight, which this app never grants.
CSRF_HEADER = "x-dockyard"
MIN_TOKEN_LENGTH = 16
#: Host names a tokenless app answers to when no ``allowed_hosts`` are given.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def check_token(token: object) -> str | None:
    """The token to require (stripped), or None; refuse one that is blank or guessable
    (field report #26)."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise InvalidOptionError(f"the API token must be a string, got {type(token).__name__}")
    stripped = token.strip()
    if len(stripped) < MIN_TOKEN_LENGTH:
        raise InvalidOptionError(
            f"the API token must be at least {MIN_TOKEN_LENGTH} characters (got "
            f"{len(stripped)} after stripping spaces); make one with: python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not all(33 <= ord(c) < 127 and c not in ';,"\\' for c in stripped):
        raise InvalidOptionError(
            'the API token must be printable ASCII without spaces or ; , " \\ (HTTP headers '
            "and a cookie carry it)"
        )
    return stripped


def _split_host(host: str) -> tuple[str, str | None]:
    """``name[:port]`` as (name, port); IPv6 names keep their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return host, None
        rest = host[end + 1 :]
        return host[: end + 1], rest[1:] if rest.startswith(":") else None
    if host.count(":") > 1:  # a bare IPv6 address, no port
        return f"[{host}]", None
    name, colon, port = host.partition(":")
    return name, port if colon else None


def check_hosts(hosts: Sequence[str] | None) -> tuple[tuple[str, str | None], ...] | None:
    """``allowed_hosts`` as (name, port or None) pairs; None lets every Host in."""
    if hosts is None:
        return None
    if isinstance(hosts, str):
        raise InvalidOptionError("allowed_hosts is a list of host names, not one string")
    out = []
    for host in hosts:
        if not isinstance(host, str) or not host.strip():
            raise InvalidOptionError(f"allowed_hosts holds host names ('example.com:8080', '*'), "
                                     f"got {host!r}")  # fmt: skip
        out.append(_split_host(host))
    return tuple(out)


def host_allowed(host: str, allowed: tuple[tuple[str, str | None], ...] | None) -> bool:
    """Whether a request's ``Host`` names this server (a rebound DNS name does not)."""
    if allowed is None:
        return True
    name, port = _split_host(host)
    return any(
        a_name == "*" or (a_name == name and (a_port is None or a_port == port))
        for a_name, a_port in allowed
    )


def _origin_netloc(netloc: str, scheme: str) -> str:
    name, port = _split_host(netloc)
    if port is None or (scheme, port) in (("http", "80"), ("https", "443")):
        return name
    return f"{name}:{port}"


def same_origin(origin: str, host: str) -> bool:
    """True when ``Origin`` names the site the request was sent to (its ``Host``)."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed pages, files) and anything odd
    return _origin_netloc(parts.netloc, parts.scheme) == _origin_netloc(host, parts.scheme)


def _secret_equal(given: str, token: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
    )


@dataclass(frozen=True, slots=True)
class Rules:
    """What the guard enforces: the token, the accepted hosts, the body limit."""

    token: str | None
    hosts: tuple[tuple[str, str | None], ...] | None
    max_body_bytes: int
    #: Refuse every write (403): a dashboard to look, not to touch.
    read_only: bool = False


class Guard:
    """Checks each HTTP request before the app sees it; answers 4xx for refused ones."""

    def __init__(self, app: ASGIApp, *, rules: Rules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, body, headers = refusal
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = _local_path(scope)
        method = scope["method"]
        rules = self.rules
        host = headers.get("host", "")
        if not host_allowed(host, rules.hosts):
            return _json(400, f"this server does not answer to Host {host!r} (a protection "
                              "against DNS rebinding); add it with --allowed-host or "
                              "create_app(allowed_hosts=[...])")  # fmt: skip
        token = rules.token
        bearer = False
        if token is not None and path != "/login":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [None])[0] if path == "/" else None
            if given is not None and _secret_equal(given, token):
                return 303, b"", [(b"location", b"./"), cookie_header(token, scope)]
            bearer = _bearer_ok(headers, token)
            if not bearer and not _cookie_ok(headers, token):
                if method == "GET" and is_view_path(path):
                    # A shared link: sign in, then go on to the address it named.
                    query = scope.get("query_string", b"").decode("latin-1")
                    target = path[1:] + (f"?{query}" if query and path != "/" else "")
                    page = login_page(scope, next_path=target).encode()
                    return 200, page, [(b"content-type", b"text/html; charset=utf-8")]
                status, body, extra = _json(
                    401, "missing or wrong token: send 'Authorization: Bearer <token>'"
                )
                return status, body, [*extra, (b"www-authenticate", b"Bearer")]
        if method in WRITE_METHODS and rules.read_only and path != "/login":
            return _json(403, "this server is read-only (dockyard serve --read-only, or "
                              "create_app(read_only=True)): it refuses every change; use a "
                              "server started without it")  # fmt: skip
        if method in WRITE_METHODS:
            refused = _cross_site_write(headers, host, path, bearer)
            if refused is not None:
                return refused
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > rules.max_body_bytes:
            return _json(413, f"the body is larger than {rules.max_body_bytes:,} bytes; send less")
        return None


def _cross_site_write(
    headers: dict[str, str], host: str, path: str, bearer: bool
) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
    """Refuse writes a page of another site could have made a browser send (field report #4)."""
    origin = headers.get("origin")
    if origin is not None and not same_origin(origin, host):
        return _json(403, f"refused a write from another site (Origin {origin!r}, Host "
                          f"{host!r})")  # fmt: skip
    if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return _json(403, "refused a write from another site (Sec-Fetch-Site)")
    if bearer or path == "/login":
        return None  # a browser never adds an Authorization header by itself
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json" or CSRF_HEADER in headers:
        return None
    if ctype or headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        return _json(415, "send the body as 'Content-Type: application/json'")
    return _json(
        403,
        "a write needs the header 'X-Dockyard: 1' or 'Content-Type: application/json' "
        "(so that other sites cannot make browsers send it)",
    )


def _json(status: int, detail: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, json.dumps({"detail": detail}).encode(), [(b"content-type", b"application/json")]


def _bearer_ok(headers: dict[str, str], token: str) -> bool:
    header = headers.get("authorization", "")
    return header.lower().startswith("bearer ") and _secret_equal(header[7:].strip(), token)


def _cookie_ok(headers: dict[str, str], token: str) -> bool:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and _secret_equal(value.strip('"'), token):
            return True
    return False


def _local_path(scope: Scope) -> str:
    """The path inside this app: without the prefix it is mounted under in a bigger app."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def cookie_header(token: str, scope: Scope | dict[str, Any]) -> tuple[bytes, bytes]:
    """The token cookie, HTTP-only and scoped to the app's own path, so that a host
    serving other apps does not receive it."""
    path = scope.get("root_path", "").rstrip("/") + "/"
    value = (f"{COOKIE}={token}; HttpOnly; Max-Age={7 * 86400}; Path={path}; "
             "SameSite=strict")  # fmt: skip
    return b"set-cookie", value.encode("latin-1")
