"""A private Sentinel set-up for tests: a primary, a replica and three sentinels on loopback.

Every process is our own, on a free port, stopped by pid. The first primary refuses writes
while no replica follows it (``min-replicas-to-write 1``), as a production set-up should:
once the failover detaches its replica it cannot take writes the new primary would never
see. (The replica has no such setting: with a single replica, the new primary would have
none to count until the sentinels reconfigure the old one, some ten seconds later.)
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis
from dockyard.devserver import RedisServer, free_port

from ..waiting import wait_until
from .tlspki import Pki

SERVICE = "dockyard-main"
#: Writes wait for one replica, so a primary cut off from its replica refuses them.
SAFE_WRITES = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "5")


class Sentinels:
    """Primary + replica + three sentinels monitoring them as :data:`SERVICE`; with a
    ``pki`` every one of them speaks only TLS (servers, replication and sentinels)."""

    def __init__(self, pki: Pki | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-sentinel-"))
        self.pki = pki
        self.primary_port_at_start = free_port() if pki else 0
        self.primary = RedisServer(extra_args=SAFE_WRITES + self._tls(self.primary_port_at_start))
        if not pki:
            self.primary_port_at_start = self.primary.port
        self.replica: RedisServer | None = None
        self.ports = [free_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def _tls(self, tls_port: int) -> tuple[str, ...]:
        """A server's TLS-only arguments (none without a pki)."""
        if self.pki is None:
            return ()
        cert, key = self.pki.server
        return ("--port", "0", "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.pki.ca),
                "--tls-auth-clients", "no", "--tls-replication", "yes")  # fmt: skip

    def url(self, *, service: str = SERVICE, db: int = 0, dead_first: int | None = None) -> str:
        hosts = [f"127.0.0.1:{port}" for port in self.ports]
        if dead_first is not None:
            hosts.insert(0, f"127.0.0.1:{dead_first}")
        if self.pki is not None:
            query = "?ssl_ca_certs=" + quote(str(self.pki.ca))
            return f"rediss+sentinel://{','.join(hosts)}/{service}/{db}{query}"
        return f"redis+sentinel://{','.join(hosts)}/{service}/{db}"

    def client(self, port: int) -> redis.Redis:
        """A redis-py client on a server or sentinel of this set-up (the caller closes it)."""
        tls: dict[str, Any] = {}
        if self.pki is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.pki.ca)}
        return redis.Redis(port=port, decode_responses=True, **tls)

    def start(self) -> Sentinels:
        self.primary.start()
        replica_tls = self._tls(free_port()) if self.pki else ()
        self.replica = RedisServer(
            extra_args=("--replicaof", "127.0.0.1", str(self.primary_port_at_start), *replica_tls)
        ).start()
        binary = shutil.which("redis-server") or "redis-server"
        for port in self.ports:
            conf = self.dir / f"sentinel-{port}.conf"
            listen = f"port {port}\n"
            if self.pki is not None:
                cert, key = self.pki.server
                listen = (f"port 0\ntls-port {port}\ntls-cert-file {cert}\n"
                          f"tls-key-file {key}\ntls-ca-cert-file {self.pki.ca}\n"
                          "tls-auth-clients no\ntls-replication yes\n")  # fmt: skip
            conf.write_text(
                f"{listen}bind 127.0.0.1\ndir {self.dir}\n"
                f"logfile {self.dir}/sentinel-{port}.log\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port_at_start} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self.processes.append(
                subprocess.Popen(
                    [binary, str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            wait_until(lambda port=port: self._knows_replica(port), 15, f"sentinel {port} ready")
        return self

    def sentinel(self, index: int = 0) -> redis.Redis:
        """A redis-py client on one sentinel (the caller closes it)."""
        return self.client(self.ports[index])

    def primary_port(self) -> int:
        """The primary's port as the first sentinel names it now."""
        with contextlib.closing(self.sentinel()) as client:
            _, port = client.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
            return int(port)

    def _knows_replica(self, port: int) -> bool:
        try:
            with contextlib.closing(self.client(port)) as client:
                replicas = client.execute_command("SENTINEL", "replicas", SERVICE)
        except redis.RedisError:
            return False
        for entry in replicas:
            fields = dict(zip(entry[::2], entry[1::2], strict=True)) if isinstance(
                entry, list) else entry  # fmt: skip
            if fields.get("flags") == "slave" and fields.get("master-link-status") == "ok":
                return True
        return False

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self.processes.clear()
        for server in (self.primary, self.replica):
            if server is not None:
                server.cleanup()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)

    def __enter__(self) -> Sentinels:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
