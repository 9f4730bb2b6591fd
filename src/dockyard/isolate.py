"""Isolated handlers (BullMQ's "sandboxed processors"): each job runs in a child process.

``Worker(..., isolate=True)`` (``dockyard worker --isolate``) keeps a pool of child
processes, one per slot, each running :func:`child_main` (started with ``python -c``,
not ``-m``, so runpy never warns about a module already imported). A job goes to a free
child as one JSON line; the child imports the handler by its ``module:function`` name, runs it
(async or plain), and answers with JSON lines: progress and log calls as they happen,
then the result or the error. Nothing is pickled. A handler that crashes its process, or
spins the CPU, cannot stop the worker's lock renewal or other jobs: a child that dies
fails that attempt (the job retries as its attempts allow), and a ``timeout`` kills it.
A child that died is replaced by a fresh one for the next job. A child ignores SIGINT (a
terminal's Ctrl-C reaches the whole process group; its worker decides when it stops), and a
handler's SystemExit or KeyboardInterrupt fails that job like any error (field report #24).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import signal
import sys
import traceback
from typing import Any

from .errors import InvalidOptionError, UnrecoverableError

#: Child output lines this long at most (a result, a log line).
LINE_LIMIT = 64 * 1024 * 1024

#: What a child runs: main() of this module, imported rather than run as ``-m``.
CHILD_CODE = "from dockyard.isolate import child_main; child_main()"


class ChildDiedError(Exception):
    """The job's child process died while running it (a crash, ``os._exit``, a kill)."""


class HandlerError(Exception):
    """The handler raised in its child process; the message is the child's error."""

    def __init__(self, message: str, trace: str) -> None:
        super().__init__(message)
        self.child_trace = trace


def target_of(handler: Any) -> str:
    """The ``module:qualname`` a child can import ``handler`` by (refusing what it cannot)."""
    if isinstance(handler, str):
        head, sep, attr = handler.partition(":")
        if not sep or not head or not attr:
            raise InvalidOptionError(f"an isolated handler is 'module:function', got {handler!r}")
        return handler
    module: str | None = getattr(handler, "__module__", None)
    qualname: str = getattr(handler, "__qualname__", "")
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise InvalidOptionError(
            f"isolate=True needs handlers importable by name (a module-level function in a "
            f"module, not {handler!r}); or give 'module:function'"
        )
    return f"{module}:{qualname}"


class Child:
    """One child process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD_CODE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        return cls(process)

    def alive(self) -> bool:
        return self.process.returncode is None

    def stdin_open(self) -> bool:
        return self.process.stdin is not None and not self.process.stdin.is_closing()

    async def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    def death(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"exit code {code}"


class Pool:
    """Children for a worker's slots, started on demand and replaced when they die."""

    def __init__(self) -> None:
        self._idle: list[Child] = []
        self._all: set[Child] = set()

    async def run(self, target: str, job: Any, timeout: float | None) -> Any:
        """Run the job in a child; its result, or the handler's error, ChildDiedError or
        TimeoutError (the child is then killed)."""
        child = self._idle.pop() if self._idle else None
        if child is None or not child.alive():
            child = await Child.start()
            self._all.add(child)
        healthy = False
        try:
            async with asyncio.timeout(timeout):
                result = await self._exchange(child, target, job)
            healthy = True
            return result
        except HandlerError:
            healthy = True
            raise
        finally:
            if healthy and child.alive():
                self._idle.append(child)
            else:
                self._all.discard(child)
                await child.kill()

    async def _exchange(self, child: Child, target: str, job: Any) -> Any:
        stdin, stdout = child.process.stdin, child.process.stdout
        assert stdin is not None and stdout is not None
        message = {
            "target": target,
            "job": {
                "id": job.id,
                "name": job.name,
                "data": job.data,
                "attempts_made": job.attempts_made,
                "opts": job.opts.to_bullmq(),
            },
        }
        stdin.write(json.dumps(message).encode() + b"\n")
        await stdin.drain()
        while True:
            line = await stdout.readline()
            if not line:
                await child.process.wait()
                raise ChildDiedError(f"the job's process died ({child.death()})")
            reply = json.loads(line)
            if "progress" in reply:
                await job.update_progress(reply["progress"])
            elif "log" in reply:
                await job.log(reply["log"])
            elif "result" in reply:
                return reply["result"]
            else:
                error = reply["error"]
                if error.get("unrecoverable"):
                    raise UnrecoverableError(error["message"])
                raise HandlerError(error["message"], error.get("trace", ""))

    async def close(self) -> None:
        """Stop every child."""
        for child in list(self._all):
            if child.stdin_open() and child.process.stdin is not None:
                child.process.stdin.close()
            await child.kill()
        self._all.clear()
        self._idle.clear()


# -- the child side -------------------------------------------------------------------------


class ChildJob:
    """What a handler gets in its child: the job's fields, and progress/log calls that
    go to the worker (awaitable for ``async def`` handlers, plain calls otherwise)."""

    def __init__(self, fields: dict[str, Any], out: Any, awaitable: bool) -> None:
        self.id: str = fields["id"]
        self.name: str = fields["name"]
        self.data: Any = fields["data"]
        self.attempts_made: int = fields["attempts_made"]
        self.opts: dict[str, Any] = fields["opts"]
        self._out = out
        self._awaitable = awaitable

    def _send(self, message: dict[str, Any]) -> Any:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()
        if self._awaitable:
            return asyncio.sleep(0)
        return None

    def update_progress(self, progress: Any) -> Any:
        """Report progress (a number or a JSON-able dict)."""
        return self._send({"progress": progress})

    def log(self, line: str) -> Any:
        """Add a line to the job's log."""
        return self._send({"log": str(line)})


def _load(target: str, cache: dict[str, Any]) -> Any:
    found = cache.get(target)
    if found is None:
        module, _, attr = target.partition(":")
        found = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
        cache[target] = found
    return found


def main() -> None:
    """Serve jobs from stdin until it closes (the worker's pool ends us)."""
    out = sys.stdout
    sys.stdout = sys.stderr  # a handler's print() must not corrupt the protocol
    handlers: dict[str, Any] = {}
    for line in sys.stdin:
        message = json.loads(line)
        try:
            handler = _load(message["target"], handlers)
            is_async = inspect.iscoroutinefunction(handler)
            job = ChildJob(message["job"], out, is_async)
            result = asyncio.run(handler(job)) if is_async else handler(job)
            reply: dict[str, Any] = {"result": result}
            text = json.dumps(reply)
        except BaseException as exc:
            if isinstance(exc, Exception):
                reason = str(exc) or type(exc).__name__
            else:  # SystemExit, KeyboardInterrupt...: this job fails, the child goes on
                args = ", ".join(repr(a) for a in exc.args)
                reason = f"the handler raised {type(exc).__name__}({args})"
            text = json.dumps(
                {
                    "error": {
                        "message": reason,
                        "unrecoverable": type(exc).__name__ == "UnrecoverableError",
                        "trace": "".join(traceback.format_exception(exc)),
                    }
                }
            )
        out.write(text + "\n")
        out.flush()


def child_main() -> None:
    """A child's entry point: SIGINT ignored, and no traceback on the way out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)


if __name__ == "__main__":
    child_main()
