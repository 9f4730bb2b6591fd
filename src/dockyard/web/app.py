"""The app factory: queues opened on demand, auth, body limits, error answers."""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..backends import list_queues, open_backend, resolve_url
from ..errors import (
    BackendUnavailableError,
    DockyardError,
    InvalidJobError,
    InvalidOptionError,
    JobLockedError,
    JobNotFoundError,
    JobStateError,
    NotSupportedError,
)
from ..queue import Queue

COOKIE = "dockyard_token"


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
    #: Discovered names and when: finding them scans the store, so at most every 30 s.
    _found: tuple[float, list[str]] = (0.0, [])
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    def queue(self, name: str) -> Queue:
        found = self.queues.pop(name, None)
        if found is None:
            if self.fixed is not None and name not in self.fixed:
                raise JobNotFoundError(f"this server does not serve a queue named {name!r}")
            while len(self.queues) >= MAX_OPEN_QUEUES:
                oldest = self.queues.pop(next(iter(self.queues)))
                task = asyncio.get_running_loop().create_task(oldest.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            backend = open_backend(self.url, name, prefix=self.prefix, retry_for=5.0)
            found = Queue(name, prefix=self.prefix, backend=backend)
        self.queues[name] = found  # last: the most recently used
        return found

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


def _status(exc: DockyardError) -> int:
    if isinstance(exc, (InvalidOptionError, InvalidJobError)):
        return 422
    if isinstance(exc, JobLockedError):
        return 409
    if isinstance(exc, JobNotFoundError):
        return 404
    if isinstance(exc, JobStateError):
        return 409
    if isinstance(exc, NotSupportedError):
        return 501
    if isinstance(exc, BackendUnavailableError):
        return 503
    return 500


def create_app(
    *,
    url: str | None = None,
    prefix: str = "bull",
    queues: Sequence[str] | None = None,
    token: str | None = None,
    max_body_bytes: int = 1_000_000,
) -> FastAPI:
    """The API and dashboard over the store at ``url`` (all its queues, or only ``queues``).

    ``token`` (default ``$DOCKYARD_API_TOKEN``) is then required on every route, as
    ``Authorization: Bearer <token>`` or the dashboard's HTTP-only cookie.
    """
    from .api import router
    from .metrics import router as metrics_router

    token = token if token is not None else os.environ.get("DOCKYARD_API_TOKEN") or None
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
    app.include_router(router, prefix="/api/v1")
    app.include_router(metrics_router)
    static = files("dockyard.web").joinpath("static")

    @app.exception_handler(DockyardError)
    async def dockyard_error(request: Request, exc: DockyardError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status(exc))

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = _local_path(request)
        if token is not None and path != "/login":
            given = request.query_params.get("token") if path == "/" else None
            if given is not None and hmac.compare_digest(given, token):
                response: Response = RedirectResponse("./", status_code=303)
                _set_cookie(response, token, request)
                return response
            if not _authorized(request, token):
                if path == "/":
                    return HTMLResponse(static.joinpath("login.html").read_text())
                return JSONResponse(
                    {"detail": "missing or wrong token: send 'Authorization: Bearer <token>'"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse(
                {"detail": f"the body is larger than {max_body_bytes:,} bytes; send less"},
                status_code=413,
            )
        return await call_next(request)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = (await request.body()).decode("utf-8", "replace")
        given = dict(p.split("=", 1) for p in form.split("&") if "=" in p).get("token", "")
        from urllib.parse import unquote_plus

        if token is None or hmac.compare_digest(unquote_plus(given), token):
            # Relative, so that it lands on the dashboard wherever the app is mounted.
            response: Response = RedirectResponse("./", status_code=303)
            if token is not None:
                _set_cookie(response, token, request)
            return response
        return HTMLResponse(
            static.joinpath("login.html").read_text().replace("<!--error-->", "Wrong token."),
            status_code=401,
        )

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def _local_path(request: Request) -> str:
    """The path inside this app: without the prefix it is mounted under in a bigger app."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def _set_cookie(response: Response, token: str, request: Request) -> None:
    # Scoped to the app's own path, so a host serving other apps does not receive it.
    path = request.scope.get("root_path", "").rstrip("/") + "/"
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", max_age=7 * 86400, path=path
    )


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and hmac.compare_digest(cookie, token)


def registry_of(request: Request) -> Registry:
    """The app's Registry (for routes)."""
    registry: Registry = request.app.state.registry
    return registry
