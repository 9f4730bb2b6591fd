"""A private PostgreSQL server for tests: ``initdb`` in a temp folder, ``pg_ctl start`` on a
free loopback port, stopped by its pid. Never the machine's own server (on 5432).

As root, the server runs as the unprivileged ``postgres`` user (PostgreSQL refuses root),
in a folder that user owns. Logins over TCP need a password (so tests can get one wrong);
``fsync=off``: a test server need not survive a power cut.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg

from dockyard.devserver import free_port

USER = "postgres"
PASSWORD = "dockyard-test"
DATABASE = "dockyard"


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
    """One private PostgreSQL cluster with a database ``dockyard``; see the module docstring."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
        self.data = self.dir / "data"
        self.pid: int | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(USER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", USER, "--"]

    def url(
        self, database: str = DATABASE, *, schema: str | None = None, password: str = PASSWORD
    ) -> str:
        """``postgresql://postgres:<password>@127.0.0.1:<port>/<database>[?schema=...]``."""
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}{query}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> PostgresServer:
        """initdb (the first time), start, and wait until it accepts logins."""
        if not self.data.exists():
            pwfile = self.dir / "pw"
            pwfile.write_text(PASSWORD)
            if self._as:
                user = pwd.getpwnam(USER)
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f"CREATE DATABASE {DATABASE}")
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
