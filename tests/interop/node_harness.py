"""Run the Node BullMQ scripts of tests/interop/node/ from pytest.

Each script takes one JSON argument and prints JSON lines; see the header of each .mjs file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

INTEROP_DIR = Path(__file__).resolve().parent
NODE_SCRIPTS = INTEROP_DIR / "node"
NODE_MODULES = INTEROP_DIR / "node_modules"
BULLMQ_ALIASES = ("bullmq5", "bullmq6")

Line = dict[str, Any]
Predicate = Callable[[Line], bool]


class NodeError(RuntimeError):
    """A Node script failed, timed out or never printed what a test waited for."""


def _command(script: str, args: dict[str, Any]) -> list[str]:
    """The argv running `script` (e.g. "work" or "work.mjs") with `args` as its JSON argument."""
    node = shutil.which("node")
    if node is None:
        raise NodeError("`node` is not on PATH: install Node.js 20+ to run the interop tests")
    missing = [a for a in BULLMQ_ALIASES if not (NODE_MODULES / a / "package.json").is_file()]
    if missing:
        raise NodeError(
            f"{', '.join(missing)} not installed in {NODE_MODULES}: run `make test` "
            "(it runs `npm ci --prefix tests/interop`), or that npm command yourself"
        )
    name = script if script.endswith(".mjs") else f"{script}.mjs"
    return [node, str(NODE_SCRIPTS / name), json.dumps(args)]


def _parse(text: str) -> Line:
    """One stdout line as a dict; non-JSON text becomes {"event": "raw", "text": ...}."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"event": "raw", "text": text}
    return value if isinstance(value, dict) else {"event": "raw", "text": text}


def run_node(script: str, args: dict[str, Any], timeout: float = 60.0) -> list[Line]:
    """Run a script to its end and return its JSON lines; raise NodeError on failure."""
    cmd = _command(script, args)
    try:
        proc = subprocess.run(
            cmd, cwd=INTEROP_DIR, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeError(
            f"{script} did not finish within {timeout} s\n"
            f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}"
        ) from None
    if proc.returncode != 0:
        raise NodeError(
            f"{script} exited with {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return [_parse(line) for line in proc.stdout.splitlines() if line.strip()]


async def arun_node(script: str, args: dict[str, Any], timeout: float = 60.0) -> list[Line]:
    """`run_node` in a thread, so dockyard code on the event loop keeps running meanwhile."""
    return await asyncio.to_thread(run_node, script, args, timeout)


class NodeProcess:
    """A script running in the background; its stdout lines are collected as they come."""

    def __init__(self, script: str, args: dict[str, Any]) -> None:
        self.script = script
        self._lines: list[Line] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self._proc = subprocess.Popen(
            _command(script, args),
            cwd=INTEROP_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for text in self._proc.stdout:
            if text.strip():
                with self._changed:
                    self._lines.append(_parse(text))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for text in self._proc.stderr:
            self._stderr.append(text)

    def lines(self) -> list[Line]:
        """The JSON lines printed so far (a copy)."""
        with self._changed:
            return list(self._lines)

    def events(self, name: str) -> list[Line]:
        """The lines printed so far whose "event" is `name`."""
        return [line for line in self.lines() if line.get("event") == name]

    def describe(self) -> str:
        """Exit status, stdout lines and stderr, for failure messages."""
        out = "\n".join(json.dumps(line) for line in self.lines())
        return (
            f"{self.script} (pid {self.pid}, exit {self.returncode})\n"
            f"stdout:\n{out}\nstderr:\n{''.join(self._stderr)}"
        )

    def wait_for(self, predicate: Predicate, timeout: float = 30.0) -> Line:
        """Block until some line satisfies `predicate` and return it; NodeError on timeout/exit."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines:
                    if predicate(line):
                        return line
                stdout_done = not self._readers[0].is_alive()
                left = deadline - time.monotonic()
                if stdout_done or left <= 0:
                    why = "exited" if stdout_done else f"timed out after {timeout} s"
                    raise NodeError(f"no matching line ({why}): {self.describe()}")
                self._changed.wait(min(left, 0.5))

    async def await_for(self, predicate: Predicate, timeout: float = 30.0) -> Line:
        """`wait_for` in a thread, so dockyard code on the event loop keeps running."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def wait(self, timeout: float = 60.0) -> list[Line]:
        """Wait for a clean exit (code 0) and return all lines; NodeError otherwise."""
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise NodeError(f"did not exit within {timeout} s: {self.describe()}") from None
        self._readers[0].join(5)
        if code != 0:
            raise NodeError(f"failed: {self.describe()}")
        return self.lines()

    async def await_exit(self, timeout: float = 60.0) -> list[Line]:
        """`wait` in a thread, so dockyard code on the event loop keeps running."""
        return await asyncio.to_thread(self.wait, timeout)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM (the scripts close gracefully), SIGKILL after `timeout`; return the exit code."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()
        self._readers[0].join(5)
        return code

    def kill(self) -> int:
        """SIGKILL the script at once, like a crashed worker; return the exit code."""
        if self._proc.poll() is None:
            self._proc.kill()
        code = self._proc.wait()
        self._readers[0].join(5)
        return code


def start_node(script: str, args: dict[str, Any]) -> NodeProcess:
    """Start a script in the background; stop it with .terminate() or .kill()."""
    return NodeProcess(script, args)
