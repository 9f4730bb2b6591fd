"""A private ``redis-server`` for demos and tests: a free loopback port, a temp folder.

It never touches a server it did not start, and stops its own by pid.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server process of our own; ``appendonly=True`` makes it durable across kills.

    ``extra_args`` go to the server's command line as they are, e.g.
    ``("--maxmemory", "20mb", "--maxmemory-policy", "noeviction")``; with ``--port 0``
    among them (a TLS-only server) readiness is read from the server's log instead of PING.
    """

    def __init__(
        self, *, port: int | None = None, appendonly: bool = False, extra_args: Sequence[str] = ()
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: install it (Debian: apt-get install redis-server) "
                "or give a --url of a running Redis"
            )
        self.binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = tuple(extra_args)
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start (or restart) the server and wait until it answers PING."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.dir / "redis.log"),
            "--appendonly",
            "yes" if self.appendonly else "no",
        ]
        if self.appendonly:
            args += ["--appendfsync", "always"]
        args += self.extra_args
        log_path = self.dir / "redis.log"
        log_from = log_path.stat().st_size if log_path.exists() else 0  # this start's lines only
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._ready(log_from):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)
        return self

    def _ready(self, log_from: int) -> bool:
        if not any(a == "--port" and b == "0" for a, b in itertools.pairwise(self.extra_args)):
            return _ping(self.port)
        log = self.dir / "redis.log"
        text = log.read_bytes()[log_from:] if log.exists() else b""
        return b"Ready to accept connections" in text

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop our server by pid (SIGKILL if it does not exit in 5 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def kill(self) -> None:
        """SIGKILL the server (as a crash would)."""
        self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        """Stop and remove the temp folder."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
