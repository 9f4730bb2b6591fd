"""How the ``dockyard`` command talks to its user: the consoles, the line naming the store,
one-line errors with the exit code each deserves, and running a command's coroutine.

Exit codes: 0 done; 1 the operation failed; 2 bad usage or input; 3 the store cannot be
reached; 130 interrupted. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console

from .backends import display_url, resolve_url
from .errors import (
    BackendRefusedError,
    BackendUnavailableError,
    DockyardError,
    InvalidJobError,
    InvalidOptionError,
)

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
T = TypeVar("T")


def _console(stream: Any, *, stderr: bool = False) -> Console:
    """A console that never cuts or wraps output going to a file or pipe (field report #25):
    rich assumes 80 columns there, which truncated headers such as ``prioritized``."""
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=1000 if wide else None)


out = _console(sys.stdout)
err = _console(sys.stderr, stderr=True)


class UserError(click.ClickException):
    """A one-line error for the user, with the exit code it deserves."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        """Print ``error: <message>`` as plain text: no markup to eat ``[web]``, no wrapping."""
        line = " ".join(self.message.split())  # one line, whatever the message held
        click.echo(f"{click.style('error:', fg='red')} {line}", err=True)


def store_line(url: str | None) -> str:
    """``store: <url> (<where it came from>)`` for the store a command will use (#20)."""
    context = click.get_current_context(silent=True)
    source = context.get_parameter_source("url") if context is not None else None
    shown = display_url(resolve_url(url))
    if not url:
        return f"store: {shown}, the default; set --url or DOCKYARD_URL to use another"
    if source is ParameterSource.ENVIRONMENT:
        return f"store: {shown} (from DOCKYARD_URL)"
    return f"store: {shown} (from --url)"


def announce_store(url: str | None, *, quiet: bool = False) -> None:
    """Say on stderr which store this command uses, unless ``quiet`` (``--json``)."""
    if not quiet:
        click.echo(store_line(url), err=True)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions behind it (cause or context), outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _refused(exc: BaseException) -> bool:
    """True when nothing listened: a refused connection (one address or several)."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    return isinstance(exc, OSError) and f"[Errno {errno.ECONNREFUSED}]" in str(exc)


def unreachable_message(exc: BaseException, url: str | None) -> str:
    """A short line that fits why the store could not be used (field report #22): "is it
    running?" only when nothing listens, the store's own words otherwise."""
    where = display_url(resolve_url(url))
    chain = _chain(exc)
    if any(_refused(e) for e in chain):
        return f"cannot reach {where}: connection refused; is it running?"
    root = next((e for e in reversed(chain) if not isinstance(e, DockyardError)), None)
    if isinstance(root, socket.gaierror):
        return f"cannot reach {where}: unknown host ({root.strerror})"
    if isinstance(root, TimeoutError):
        return f"cannot reach {where}: no answer in time"
    if isinstance(root, sqlite3.Error):
        return f"cannot open {where}: {root}"
    inner = [e for e in chain if isinstance(e, DockyardError)]
    return str(inner[-1] if inner else exc)


def _reply_error(exc: BaseException) -> bool:
    """An error reply of the Redis server that no typed error wrapped (e.g. OOM)."""
    from .backends.redis.connection import ReplyError

    return isinstance(exc, ReplyError)


def failure(exc: BaseException, url: str | None) -> UserError | None:
    """The one-line error for ``exc``, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, BackendUnavailableError):
        return UserError(unreachable_message(exc, url), EXIT_UNREACHABLE)
    if isinstance(exc, BackendRefusedError):  # wrong password, bad database: the store is
        return UserError(str(exc), EXIT_UNREACHABLE)  # there but cannot be used
    if isinstance(exc, (InvalidOptionError, InvalidJobError)):
        return UserError(str(exc), EXIT_USAGE)
    if isinstance(exc, DockyardError):
        return UserError(str(exc) or type(exc).__name__)
    if isinstance(exc, ValueError):  # e.g. data the store cannot encode
        return UserError(str(exc), EXIT_USAGE)
    if _reply_error(exc):
        text = str(exc).split(". script:", 1)[0]
        if text.startswith("OOM "):
            return UserError("Redis is out of memory (maxmemory) and refuses writes; free "
                             "some or raise maxmemory")  # fmt: skip
        return UserError(f"the store refused the command: {text}")
    if isinstance(exc, OSError):
        where = display_url(resolve_url(url))
        return UserError(f"lost the store at {where}: {exc}", EXIT_UNREACHABLE)
    return None


@contextmanager
def quiet_library() -> Iterator[None]:
    """Keep the library's log lines (reconnect warnings) off the screen while a command
    runs: its outcome is reported once, as one line (#22)."""
    lib = logging.getLogger("dockyard")
    handler = logging.NullHandler()
    lib.addHandler(handler)
    propagate, lib.propagate = lib.propagate, False
    try:
        yield
    finally:
        lib.removeHandler(handler)
        lib.propagate = propagate


def run(coro: Coroutine[Any, Any, T], url: str | None = None) -> T:
    """Run ``coro``; turn every error of the store into one line and its exit code."""
    try:
        with quiet_library():
            return asyncio.run(coro)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except click.ClickException:
        raise
    except Exception as exc:
        problem = failure(exc, url)
        if problem is None:
            raise
        raise problem from None
