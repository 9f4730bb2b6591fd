"""``dockyard worker``: load a handler by name and run it in this process, or under a
supervisor of several processes (supervisor.py).

A process run this way can recycle itself: after ``max_jobs`` jobs or past ``max_memory``
MB of RSS it finishes its active jobs and exits 0, and its supervisor starts a fresh one.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from . import logs
from .errors import InvalidOptionError
from .supervisor import (
    CHILD_ENV,
    STOP_NOW,
    Supervisor,
    SupervisorSettings,
    child_argv,
    parent_alive,
)
from .worker import Worker

log = logging.getLogger("dockyard.worker")


def run_on_fastest_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run ``coro`` on uvloop when it is installed (the ``fast`` extra), else on asyncio's
    loop; ``DOCKYARD_LOOP=asyncio`` forces asyncio's. uvloop took a no-op worker from about
    32,000 to 35,000 jobs/s on Redis (bench/RESULTS.md)."""
    if os.environ.get("DOCKYARD_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
    return asyncio.run(coro)


def load_handler(target: str) -> Any:
    """The object named ``module:attr`` (``module:obj.attr`` too), imported from the current
    directory first, as ``python -m`` would."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidOptionError(
            f"the handler is named MODULE:HANDLER (e.g. app.tasks:send), got {target!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidOptionError(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise InvalidOptionError(f"module {module_name!r} has no {attr!r}") from None
    if not callable(found) and not isinstance(found, dict):
        raise InvalidOptionError(
            f"{target} is neither a function nor a dict of job name -> function"
        )
    return found


def _supervised_signals(worker: Worker) -> list[signal.Signals]:
    """A supervised child: SIGTERM and SIGINT always mean "finish your jobs" (however many
    arrive, from the terminal's process group or the supervisor); SIGUSR1 is the
    supervisor's "stop now" (field report #6)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, functools.partial(worker.on_stop_signal, sig, force=False))
    stop_now = functools.partial(worker.on_stop_signal, STOP_NOW, force=True)
    loop.add_signal_handler(STOP_NOW, stop_now)
    return [signal.SIGTERM, signal.SIGINT, STOP_NOW]


def _rss_mb() -> float:
    """This process's resident memory in MB (Linux /proc; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerCommand:
    """The options of ``dockyard worker``."""

    target: str
    queue: str
    processes: int = 1
    concurrency: int = 1
    lock_duration: float = 30.0
    stalled_interval: float = 30.0
    max_stalled_count: int = 1
    shutdown_timeout: float = 30.0
    max_jobs: int | None = None
    max_memory: int | None = None
    name: str | None = None
    log_jobs: bool = False
    isolate: bool = False
    url: str | None = None
    prefix: str = "bull"

    def run(self) -> int:
        """Work until stopped; the exit code."""
        supervised = os.environ.get(CHILD_ENV)
        recycles = self.max_jobs is not None or self.max_memory is not None
        if supervised is None and (self.processes > 1 or recycles):
            settings = SupervisorSettings(
                processes=self.processes, shutdown_timeout=self.shutdown_timeout
            )
            return Supervisor(child_argv(self.child_args()), settings).run()
        return run_on_fastest_loop(self._work(int(supervised) if supervised else None))

    def child_args(self) -> list[str]:
        """The ``worker`` command line a child runs (without ``--processes``)."""
        args = ["worker", self.target, "--queue", self.queue,
                "--concurrency", str(self.concurrency),
                "--lock-duration", str(self.lock_duration),
                "--stalled-interval", str(self.stalled_interval),
                "--max-stalled-count", str(self.max_stalled_count),
                "--shutdown-timeout", str(self.shutdown_timeout),
                "--prefix", self.prefix]  # fmt: skip
        for flag, value in (("--max-jobs", self.max_jobs), ("--max-memory", self.max_memory),
                            ("--name", self.name), ("--url", self.url)):  # fmt: skip
            if value is not None:
                args += [flag, str(value)]
        if self.log_jobs:
            args.append("--log-jobs")
        if self.isolate:
            args.append("--isolate")
        level = logging.getLevelName(logging.getLogger("dockyard").level).lower()
        args += ["--log-level", level if level != "notset" else "info"]
        args += ["--log-format", logs.configured_format()]  # one format throughout (#12)
        return args

    async def _work(self, supervisor_pid: int | None) -> int:
        worker = Worker(
            self.queue,
            self.target if self.isolate else load_handler(self.target),
            url=self.url,
            prefix=self.prefix,
            concurrency=self.concurrency,
            lock_duration=self.lock_duration,
            stalled_interval=self.stalled_interval,
            max_stalled_count=self.max_stalled_count,
            name=self.name,
            log_jobs=self.log_jobs,
            max_jobs=self.max_jobs,
            isolate=self.isolate,
        )
        log.info(
            "worker on queue %r: %s, concurrency %d", self.queue, self.target, self.concurrency
        )
        supervised = supervisor_pid is not None
        runner = asyncio.create_task(worker.run(handle_signals=not supervised))
        watch = asyncio.create_task(self._watch(worker, supervisor_pid))
        stops = _supervised_signals(worker) if supervised else []
        try:
            await runner
        finally:
            watch.cancel()
            loop = asyncio.get_running_loop()
            for sig in stops:
                loop.remove_signal_handler(sig)
        log.info("worker stopped after %d job(s)", worker.processed)
        return 0

    async def _watch(self, worker: Worker, supervisor_pid: int | None) -> None:
        """Recycle past the limits; stop when the supervisor is gone."""
        while not worker.closing:
            await asyncio.sleep(0.5)
            if self.max_memory is not None and _rss_mb() > self.max_memory:
                log.info("recycling at %.0f MB of memory (limit %d MB)", _rss_mb(), self.max_memory)
            elif supervisor_pid is not None and not parent_alive(supervisor_pid):
                log.warning("the supervisor (pid %d) is gone: finishing and exiting",
                            supervisor_pid)  # fmt: skip
            else:
                continue
            await worker.close()
            return
