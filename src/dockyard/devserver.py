"""Private servers for demos, tests and benchmarks: ``redis-server`` and PostgreSQL, each on
a free loopback port in a temp folder.

They never touch a server they did not start, and stop their own by pid.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
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


PG_USER = "postgres"
PG_PASSWORD = "dockyard-test"
PG_DATABASE = "dockyard"


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run `make postgres` (or apt-get install postgresql)"
        )
    return Path(initdb).parent


class PostgresServer:
    """One private PostgreSQL cluster with a database ``dockyard``: ``initdb`` in a temp
    folder, ``pg_ctl start`` on a free loopback port, stopped by its pid.

    As root, the server runs as the unprivileged ``postgres`` user (PostgreSQL refuses root),
    in a folder that user owns. Logins over TCP need a password (so tests can get one
    wrong); ``fsync=off``: a test or benchmark server need not survive a power cut.
    Needs the ``postgres`` extra (psycopg) and PostgreSQL's server binaries.
    """

    def __init__(self, *, settings: Sequence[str] = ()) -> None:
        """``settings``: more server settings, ``name=value`` each (``-c`` options)."""
        self.settings = tuple(settings)
        self.bin = _bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
        self.data = self.dir / "data"
        self.pid: int | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_USER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", PG_USER, "--"]

    def url(
        self, database: str = PG_DATABASE, *, schema: str | None = None, password: str = PG_PASSWORD
    ) -> str:
        """``postgresql://postgres:<password>@127.0.0.1:<port>/<database>[?schema=...]``."""
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{PG_USER}:{password}@127.0.0.1:{self.port}/{database}{query}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> PostgresServer:
        """initdb (the first time), start, and wait until it accepts logins."""
        if not self.data.exists():
            pwfile = self.dir / "pw"
            pwfile.write_text(PG_PASSWORD)
            if self._as:
                user = pwd.getpwnam(PG_USER)
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", PG_USER,
                "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
                "--no-locale", "-E", "UTF8",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB"
        ) + "".join(f" -c {setting}" for setting in self.settings)
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        import psycopg  # the postgres extra; only this class needs it

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        return self

    def stop(self, *, immediate: bool = False, timeout: float = 30.0) -> None:
        """Stop our server by its pid (fast shutdown, or immediate: a crash and recovery)."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT if immediate else signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
