"""The app factory: queues opened on demand, auth, body limits, error answers."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from urllib.parse import unquote_plus

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..backends import list_queues, open_backend, resolve_url
from ..errors import (
    DockyardError,
    InvalidJobError,
    InvalidOptionError,
    JobFailed,
    JobNotFoundError,
    JobStateError,
    LockLostError,
    NotSupportedError,
)
from ..queue import Queue
from .guard import LOOPBACK_HOSTS, Guard, Rules, check_hosts, check_token, cookie_header
from .pages import dashboard_page, login_page, safe_next
from .rates import Throughput

log = logging.getLogger("dockyard.web")


#: Queue objects kept open at once; past it the least recently used one is closed, so that
#: requests naming ever new queues cannot grow the server's memory without bound.
MAX_OPEN_QUEUES = 256


@dataclass(slots=True)
class Registry:
    """The app's store and its Queue objects, opened on first use, closed at shutdown."""

    url: str
    prefix: str
    fixed: tuple[str, ...] | None
    queues: dict[str, Queue] = field(default_factory=dict)
    rates: dict[str, Throughput] = field(default_factory=dict)
    #: Discovered names and when: finding them scans the store, so at most every 30 s.
    _found: tuple[float, list[str]] = (0.0, [])
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    def queue(self, name: str) -> Queue:
        found = self.queues.pop(name, None)
        if found is None:
            if self.fixed is not None and name not in self.fixed:
                raise JobNotFoundError(f"this server does not serve a queue named {name!r}")
            while len(self.queues) >= MAX_OPEN_QUEUES:
                evicted = next(iter(self.queues))
                oldest = self.queues.pop(evicted)
                self.rates.pop(evicted, None)
                task = asyncio.get_running_loop().create_task(oldest.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            backend = open_backend(self.url, name, prefix=self.prefix, retry_for=5.0)
            found = Queue(name, prefix=self.prefix, backend=backend)
        self.queues[name] = found  # last: the most recently used
        return found

    async def per_second(self, name: str) -> float:
        """Jobs of the queue finished per second lately (see rates.py)."""
        queue = self.queue(name)
        return await self.rates.setdefault(name, Throughput()).per_second(queue.backend)

    async def names(self) -> list[str]:
        if self.fixed is not None:
            return list(self.fixed)
        at, names = self._found
        if time.monotonic() - at > 30.0:
            names = await list_queues(self.url, self.prefix)
            self._found = (time.monotonic(), names)
        # Queues opened through this app since the last scan count too.
        return sorted(set(names) | set(self.queues))

    async def close(self) -> None:
        for queue in self.queues.values():
            await queue.close()
        self.queues.clear()
        if self._closing:
            await asyncio.gather(*self._closing)


def status_for(exc: DockyardError) -> int:
    """The HTTP status for an error of dockyard's: 4xx for the caller's mistakes, 503
    for the store's troubles, whatever subclass it is (never a bare 500)."""
    if isinstance(exc, (InvalidOptionError, InvalidJobError, NotSupportedError, ValueError)):
        return 422
    if isinstance(exc, (JobNotFoundError, LookupError)):
        return 404
    if isinstance(exc, (JobStateError, LockLostError, JobFailed)):
        return 409
    return 503  # unreachable, full or failing store (BackendUnavailableError and the like)


class BodyTooLarge(Exception):
    """The request's body passed the app's limit (answered 413)."""


async def read_body(request: Request) -> bytes:
    """The request's body, read no further than the app's limit: a chunked body of any size
    costs at most the limit in memory (field report #15)."""
    limit: int = request.app.state.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit:,} bytes; send less")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *,
    url: str | None = None,
    prefix: str = "bull",
    queues: Sequence[str] | None = None,
    token: str | None = None,
    max_body_bytes: int = 1_000_000,
    allowed_hosts: Sequence[str] | None = None,
    read_only: bool = False,
) -> FastAPI:
    """The API and dashboard over the store at ``url`` (all its queues, or only ``queues``).

    ``token`` (default ``$DOCKYARD_API_TOKEN``; 16 characters at least) is then required on
    every route, as ``Authorization: Bearer <token>`` or the dashboard's HTTP-only cookie.
    ``allowed_hosts`` are the ``Host`` names it answers to (``"name"``, ``"name:port"`` or
    ``"*"``); by default loopback names only without a token, any with one. Writes from
    other sites are refused (see guard.py). ``read_only`` refuses every change (403) and
    the dashboard offers none.
    """
    from .api import router
    from .dashapi import router as dash_router
    from .flowapi import router as flow_router
    from .metrics import router as metrics_router

    if token is None:
        token = os.environ.get("DOCKYARD_API_TOKEN") or None
    token = check_token(token)
    if allowed_hosts is None and token is None:
        allowed_hosts = LOOPBACK_HOSTS
    hosts = check_hosts(allowed_hosts)
    registry = Registry(resolve_url(url), prefix, tuple(queues) if queues is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await registry.close()

    app = FastAPI(
        title="dockyard",
        summary="Enqueue, follow and manage jobs",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.registry = registry
    app.state.max_body_bytes = max_body_bytes
    app.state.read_only = bool(read_only)
    app.include_router(router, prefix="/api/v1")
    app.include_router(flow_router, prefix="/api/v1")
    app.include_router(dash_router, prefix="/api/v1")
    app.include_router(metrics_router)
    static = files("dockyard.web").joinpath("static")
    app.add_middleware(Guard, rules=Rules(token, hosts, max_body_bytes, bool(read_only)))

    @app.exception_handler(DockyardError)
    async def dockyard_error(request: Request, exc: DockyardError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Still a 500, but JSON with a detail; the traceback goes to the server's log.
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        detail = f"internal error ({type(exc).__name__}); see the server's log"
        return JSONResponse({"detail": detail}, status_code=500)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = (await read_body(request)).decode("utf-8", "replace")
        fields = dict(p.split("=", 1) for p in form.split("&") if "=" in p)
        given = fields.get("token", "")
        target = safe_next(unquote_plus(fields.get("next", "")))
        if token is None or hmac.compare_digest(
            unquote_plus(given).encode("utf-8", "surrogatepass"), token.encode()
        ):
            # Relative, so that it lands on the dashboard wherever the app is mounted, at
            # the address a shared link named.
            response: Response = RedirectResponse(f"./{target}", status_code=303)
            if token is not None:
                name, value = cookie_header(token, request.scope)
                response.headers.append(name.decode(), value.decode("latin-1"))
            return response
        page = login_page(request.scope, next_path=target, error="Wrong token.")
        return HTMLResponse(page, status_code=401)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(dashboard_page(request.scope, read_only=read_only))

    @app.get("/queues/{view:path}", include_in_schema=False)
    async def view(view: str, request: Request) -> HTMLResponse:
        # Every view's address (a queue, a state's page, a job) is the dashboard's page;
        # its script reads the address. The API is under /api/v1: no clash.
        return HTMLResponse(dashboard_page(request.scope, read_only=read_only))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def registry_of(request: Request) -> Registry:
    """The app's Registry (for routes)."""
    registry: Registry = request.app.state.registry
    return registry
