"""Several worker processes under one supervisor: start, restart, recycle, shut down.

``dockyard worker app.tasks:send --processes 4`` runs a :class:`Supervisor` that starts 4
child processes, each ``python -m dockyard worker ... --processes 1`` with
``DOCKYARD_SUPERVISED`` set. A child that dies is restarted with a backoff (1 s doubling to
30 s while it keeps dying young), and the log says how it ended. A child that exits 0
(recycled after ``--max-jobs`` or past ``--max-memory``) is replaced at once. SIGTERM or
SIGINT: every child is asked to finish its jobs (SIGTERM); past ``--shutdown-timeout``, or
on a second signal to the supervisor, it is told to stop now (SIGUSR1: its active jobs go
back to wait at once), and killed if it still runs 5 s later.

A supervised child takes every SIGTERM and SIGINT as "finish your jobs", however many
arrive: a terminal's Ctrl-C reaches the whole process group and systemd signals the whole
cgroup, so a child hears the same stop more than once (field report #6). Only the
supervisor's SIGUSR1 stops it at once.

A supervised child watches its parent: if the supervisor dies (even by SIGKILL), the
child finishes its active jobs and exits, so no worker is left unmanaged.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("dockyard.supervisor")

#: Set in a supervised child's environment; its value is the supervisor's pid.
CHILD_ENV = "DOCKYARD_SUPERVISED"

#: What the supervisor sends a child to stop it at once (its active jobs go back to wait).
STOP_NOW = signal.SIGUSR1


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorSettings:
    """How many children, and how to stop and restart them. Durations in seconds."""

    processes: int = 1
    shutdown_timeout: float = 30.0
    restart_delay: float = 1.0
    max_restart_delay: float = 30.0
    #: A child that ran this long before dying counts as healthy: its backoff starts over.
    healthy_after: float = 30.0


@dataclass(slots=True)
class _Child:
    slot: int
    popen: subprocess.Popen[bytes]
    started: float
    failures: int = 0


class Supervisor:
    """Runs ``child_argv`` in ``settings.processes`` processes; see the module docstring."""

    def __init__(self, child_argv: Sequence[str], settings: SupervisorSettings) -> None:
        self.child_argv = list(child_argv)
        self.settings = settings
        self._children: dict[int, _Child] = {}
        self._stopping = threading.Event()
        self._signals = 0
        #: Restarts so far, per slot (tests and the final log line read it).
        self.restarts: dict[int, int] = {}

    def _spawn(self, slot: int, failures: int = 0) -> None:
        env = dict(os.environ, **{CHILD_ENV: str(os.getpid())})
        popen = subprocess.Popen(self.child_argv, env=env)
        self._children[slot] = _Child(slot, popen, time.monotonic(), failures)
        log.info("worker %d started (pid %d)", slot, popen.pid)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.info("%s received: asking %d worker(s) to finish", name, len(self._children))
            self._stopping.set()
        else:
            log.warning("%s received again: stopping the workers now", name)
            self._forward(STOP_NOW)

    def _forward(self, sig: int) -> None:
        for child in self._children.values():
            if child.popen.poll() is None:
                with _quiet():
                    child.popen.send_signal(sig)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        pending: dict[int, tuple[float, int]] = {}  # slot -> (restart at, failures)
        for slot in range(self.settings.processes):
            self._spawn(slot)
        while not self._stopping.is_set():
            now = time.monotonic()
            for slot, (at, failures) in list(pending.items()):
                if now >= at:
                    del pending[slot]
                    self.restarts[slot] = self.restarts.get(slot, 0) + 1
                    self._spawn(slot, failures)
            for slot, child in list(self._children.items()):
                code = child.popen.poll()
                if code is None:
                    continue
                del self._children[slot]
                pending[slot] = self._plan_restart(child, code, now)
            self._stopping.wait(0.1)
        return self._shutdown()

    def _plan_restart(self, child: _Child, code: int, now: float) -> tuple[float, int]:
        ran = now - child.started
        if code == 0:
            log.info("worker %d (pid %d) exited to be recycled; starting a new one",
                     child.slot, child.popen.pid)  # fmt: skip
            return now, 0
        failures = 0 if ran >= self.settings.healthy_after else child.failures + 1
        delay = min(
            self.settings.restart_delay * 2 ** max(failures - 1, 0),
            self.settings.max_restart_delay,
        )
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        log.warning(
            "worker %d (pid %d) died with %s after %.1f s; restarting in %.1f s",
            child.slot, child.popen.pid, how, ran, delay,
        )  # fmt: skip
        return now + delay, failures

    def _shutdown(self) -> int:
        self._forward(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout
        if self._wait_all(deadline):
            log.info("all workers stopped")
            return 0
        log.warning(
            "workers still busy after %.1f s: stopping them now (their jobs go back to wait)",
            self.settings.shutdown_timeout,
        )
        self._forward(STOP_NOW)
        if self._wait_all(time.monotonic() + 5.0):
            return 0
        self._forward(signal.SIGKILL)
        self._wait_all(time.monotonic() + 5.0)
        log.error("killed workers that did not stop; their jobs return by the stalled check")
        return 1

    def _wait_all(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if all(c.popen.poll() is not None for c in self._children.values()):
                return True
            time.sleep(0.05)
        return all(c.popen.poll() is not None for c in self._children.values())


class _quiet:
    """Ignore ProcessLookupError (a child that exited meanwhile)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is ProcessLookupError


def parent_alive(expected: int) -> bool:
    """True while the supervisor that started this process is still its parent."""
    return os.getppid() == expected


def child_argv(argv: Sequence[str]) -> list[str]:
    """The command line of a child: this command with ``--processes 1``."""
    return [sys.executable, "-m", "dockyard", *argv, "--processes", "1"]
