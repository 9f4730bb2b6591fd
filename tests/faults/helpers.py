"""Helpers of the fault tests: worker processes, and reading a queue's keys back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

import redis

from ..waiting import wait_for

RUNNER = Path(__file__).with_name("worker_proc.py")


class WorkerProcess:
    """``worker_proc.py`` in a child process; its stdout is collected by a thread (so a
    full pipe never blocks the worker) and its job log is read from ``log``."""

    def __init__(self, url: str, log: Path, queue: str = "q", **options: Any) -> None:
        self.log = log
        self.popen = subprocess.Popen(
            [sys.executable, str(RUNNER), url, queue, str(log), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.output.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def said(self, text: str) -> bool:
        """True once a line of the process's output contains ``text``."""
        return any(text in line for line in list(self.output))

    def jobs(self, kind: str) -> list[str]:
        """Job ids of the ``start`` or ``end`` lines of the job log, in order."""
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        return [line.split()[1] for line in lines if line.startswith(kind + " ")]

    def signal(self, sig: int) -> None:
        os.kill(self.popen.pid, sig)

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def stop(self) -> None:
        """Kill the process if it still runs (fixture teardown)."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        self._reader.join(5)

    def transcript(self) -> str:
        return "\n".join(self.output)


ROOT = Path(__file__).resolve().parents[2]
FAST = ["--lock-duration", "2", "--stalled-interval", "1"]


class Supervised:
    """``python -m dockyard worker ...`` in a child process, its log lines collected."""

    def __init__(self, url: str, log: Path, *args: str, own_group: bool = False) -> None:
        """``own_group``: start it in a process group of its own, as a shell does, so a
        test can signal the whole group (os.killpg) the way a terminal's Ctrl-C does."""
        self.log = log
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "worker", *args, "--url", url, *FAST],
            cwd=ROOT,
            env={**os.environ, "DOCKYARD_TEST_LOG": str(log)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0 if own_group else None,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.popen.pid).children()
        except psutil.NoSuchProcess:
            return []

    def entries(self, kind: str) -> list[tuple[str, str]]:
        """(pid, job id) of the ``start`` or ``end`` lines of the handler log."""
        if not self.log.exists():
            return []
        rows = [line.split() for line in self.log.read_text().splitlines()]
        return [(r[0], r[2]) for r in rows if len(r) == 3 and r[1] == kind]

    def stop(self) -> None:
        for child in self.children():
            child.kill()
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)


def blocked_on_marker(client: redis.Redis) -> bool:
    """True while a worker's named connection (``bull:<base64 queue>``) waits in BZPOPMIN
    on a queue's marker: the worker is idle and its fetch loop is alive."""
    return any(
        c.get("cmd") == "bzpopmin" and c.get("name", "").startswith("bull:")
        for c in client.client_list()
    )


def job_hashes(client: redis.Redis, ids: list[str], queue: str = "q") -> dict[str, dict[str, str]]:
    """``{id: HGETALL bull:<queue>:<id>}`` in one round trip."""
    pipe = client.pipeline()
    for job_id in ids:
        pipe.hgetall(f"bull:{queue}:{job_id}")
    return dict(zip(ids, pipe.execute(), strict=True))


def events_per_job(client: redis.Redis, event: str, queue: str = "q") -> Counter[str]:
    """How many ``event`` entries of the queue's event stream name each job id."""
    counts: Counter[str] = Counter()
    entries: list[tuple[str, dict[str, str]]] = client.xrange(f"bull:{queue}:events")  # type: ignore[assignment]
    for _, fields in entries:
        if fields.get("event") == event and "jobId" in fields:
            counts[fields["jobId"]] += 1
    return counts


async def wait_exit(proc: WorkerProcess, timeout: float) -> tuple[int, float]:
    """Poll until the process exits (AssertionError after ``timeout`` s); its return code
    and how long the wait took."""
    started = time.monotonic()
    await wait_for(proc.exited, timeout=timeout, what=f"worker process {proc.pid} to exit")
    code = proc.popen.returncode
    assert code is not None
    return code, time.monotonic() - started
