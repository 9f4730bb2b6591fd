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

import redis
from dockyard.devserver import RedisServer, free_port

from ..waiting import wait_until

SERVICE = "dockyard-main"
#: Writes wait for one replica, so a primary cut off from its replica refuses them.
SAFE_WRITES = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "5")


class Sentinels:
    """Primary + replica + three sentinels monitoring them as :data:`SERVICE`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-sentinel-"))
        self.primary = RedisServer(extra_args=SAFE_WRITES)
        self.replica: RedisServer | None = None
        self.ports = [free_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def url(self, *, service: str = SERVICE, db: int = 0, dead_first: int | None = None) -> str:
        hosts = [f"127.0.0.1:{port}" for port in self.ports]
        if dead_first is not None:
            hosts.insert(0, f"127.0.0.1:{dead_first}")
        return f"redis+sentinel://{','.join(hosts)}/{service}/{db}"

    def start(self) -> Sentinels:
        self.primary.start()
        self.replica = RedisServer(
            extra_args=("--replicaof", "127.0.0.1", str(self.primary.port))
        ).start()
        binary = shutil.which("redis-server") or "redis-server"
        for port in self.ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"logfile {self.dir}/sentinel-{port}.log\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
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
        return redis.Redis(port=self.ports[index], decode_responses=True)

    def primary_port(self) -> int:
        """The primary's port as the first sentinel names it now."""
        with contextlib.closing(self.sentinel()) as client:
            _, port = client.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
            return int(port)

    def _knows_replica(self, port: int) -> bool:
        try:
            with contextlib.closing(redis.Redis(port=port, decode_responses=True)) as client:
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
