"""A private Redis Cluster for tests: 3 primaries + 3 replicas on loopback ports.

Every server is our own (``RedisServer``, a temp folder each), joined with ``redis-cli
--cluster create`` and stopped by pid. Helpers move a slot (a failover, a migration)
the way an operator would, and wait until every node agrees on the result.
"""

from __future__ import annotations

import contextlib
import subprocess
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis
from dockyard.devserver import RedisServer, free_port

from .redis.tlspki import Pki
from .waiting import wait_until

#: Queue keys under this prefix all hash to one slot (BullMQ's own advice for Cluster).
PREFIX = "{bull}"


class RedisCluster:
    """Three primaries with ``replicas`` replicas each; which are primaries changes as
    tests fail over."""

    def __init__(self, *, replicas: int = 1, pki: Pki | None = None) -> None:
        self.replicas = replicas
        #: With a pki every node speaks only TLS, to clients and on the cluster bus.
        self.pki = pki
        self.servers: list[RedisServer] = []
        self._ports_used: set[int] = set()

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def url(self, seeds: int = 2) -> str:
        """``redis+cluster://`` with the first ``seeds`` nodes as seeds (``rediss+cluster``
        with our CA for a TLS cluster)."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports[:seeds])
        if self.pki is not None:
            return f"rediss+cluster://{hosts}?ssl_ca_certs=" + quote(str(self.pki.ca))
        return f"redis+cluster://{hosts}"

    def client(self, port: int) -> redis.Redis:
        """A redis-py client on one node (the caller closes it)."""
        tls: dict[str, Any] = {}
        if self.pki is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.pki.ca)}
        return redis.Redis(port=port, decode_responses=True, **tls)

    def _tls_args(self, port: int) -> tuple[str, ...]:
        if self.pki is None:
            return ()
        cert, key = self.pki.server
        return ("--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.pki.ca),
                "--tls-auth-clients", "no", "--tls-cluster", "yes",
                "--tls-replication", "yes")  # fmt: skip

    def _cli_tls(self) -> list[str]:
        return ["--tls", "--cacert", str(self.pki.ca)] if self.pki is not None else []

    def _start_node(self) -> RedisServer:
        """One cluster-enabled server; its client and bus ports are free ones, picked
        again if another process takes one first."""
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "3000", "--appendonly", "no")  # fmt: skip
        for attempt in range(5):
            port, bus = free_port(), free_port()
            if {port, bus} & self._ports_used or port == bus:
                continue
            self._ports_used |= {port, bus}
            extra = (*args, "--cluster-port", str(bus), *self._tls_args(port))
            server = RedisServer(port=port, extra_args=extra)
            try:
                return server.start()
            except RuntimeError:
                server.cleanup()
                if attempt == 4:
                    raise
        raise RuntimeError("no free ports for a cluster node")

    def start(self) -> RedisCluster:
        for _ in range(3 * (1 + self.replicas)):
            self.servers.append(self._start_node())
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            ["redis-cli", *self._cli_tls(), "--cluster", "create", *nodes,
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
        self.wait_settled()
        return self

    def command(self, port: int, *args: str) -> object:
        """Run one command on node ``port`` and return its reply."""
        with contextlib.closing(self.client(port)) as client:
            return client.execute_command(*args)

    def slot_owners(self, port: int) -> dict[tuple[int, int], int]:
        """``{(first, last): primary port}`` as node ``port`` sees it."""
        with contextlib.closing(self.client(port)) as client:
            reply = client.execute_command("CLUSTER", "SLOTS")
        if isinstance(reply, dict):  # redis-py parses it into {(first, last): {...}}
            return {
                (int(k[0]), int(k[1])): int(v["primary"][1]) for k, v in reply.items()
            }
        return {(int(e[0]), int(e[1])): int(e[2][1]) for e in reply}

    def _live_port(self) -> int:
        """A node that runs (the first does, unless a test killed it)."""
        return next(s.port for s in self.servers if s.process and s.process.poll() is None)

    def owner(self, slot: int) -> int:
        """The port of the primary serving ``slot`` now."""
        for (first, last), port in self.slot_owners(self._live_port()).items():
            if first <= slot <= last:
                return port
        raise AssertionError(f"no node serves slot {slot}")

    def primaries(self) -> list[int]:
        return sorted(set(self.slot_owners(self._live_port()).values()))

    def replica_of(self, primary: int) -> int:
        with contextlib.closing(self.client(primary)) as client:
            info = client.info("replication")
        return int(info["slave0"]["port"])

    def _settled(self) -> bool:
        try:
            views = []
            for port in self.ports:
                info = str(self.command(port, "CLUSTER", "INFO"))
                if "cluster_state:ok" not in info:
                    return False
                views.append(self.slot_owners(port))
            if any(view != views[0] for view in views):
                return False
            for primary in set(views[0].values()) if self.replicas else ():
                with contextlib.closing(self.client(primary)) as client:
                    info = client.info("replication")
                if int(info.get("connected_slaves", 0)) < 1:
                    return False
                replica = int(info["slave0"]["port"])
                with contextlib.closing(self.client(replica)) as client:
                    if client.info("replication").get("master_link_status") != "up":
                        return False
            return True
        except redis.RedisError:
            return False

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Until every node says the cluster is ok, agrees on the slot map, and each
        primary has a replica in sync."""
        wait_until(self._settled, timeout, "the cluster to settle")

    def flush(self) -> None:
        """Empty every primary (replicas follow)."""
        for port in self.primaries():
            self.command(port, "FLUSHALL")

    def fail_over(self, slot: int) -> tuple[int, int]:
        """Promote the replica of ``slot``'s primary (``CLUSTER FAILOVER`` on it, as an
        operator would) and wait until all agree; ``(old, new)`` primary ports."""
        old = self.owner(slot)
        new = self.replica_of(old)
        self.command(new, "CLUSTER", "FAILOVER")
        wait_until(lambda: self.owner(slot) == new, 20, f"node {new} to serve slot {slot}")
        self.wait_settled()
        return old, new

    def kill_owner(self, slot: int) -> tuple[int, int]:
        """SIGKILL the primary of ``slot``, wait until the cluster promotes its replica,
        then start the dead node again (it rejoins as a replica); ``(old, new)`` ports."""
        old = self.owner(slot)
        server = next(s for s in self.servers if s.port == old)
        server.kill()
        wait_until(lambda: self._serves(slot, old), 30, f"a replacement for node {old}")
        server.start()
        self.wait_settled()
        return old, self.owner(slot)

    def _serves(self, slot: int, dead: int) -> bool:
        try:
            return self.owner(slot) != dead
        except redis.RedisError:
            return False

    def migrate(self, slot: int, to: int) -> None:
        """Move ``slot`` (and its keys) to primary ``to`` by hand: IMPORTING, MIGRATING,
        MIGRATE in batches until the source holds none, then SETSLOT NODE on both."""
        source = self.owner(slot)
        self.move_keys(slot, to)
        self.finish_move(slot, source, to)

    def move_keys(self, slot: int, to: int) -> None:
        """The first half of a migration: ``slot`` is IMPORTING on ``to`` and MIGRATING on
        its owner, which then hands over every key it holds (it still owns the slot)."""
        source = self.owner(slot)
        with contextlib.closing(self.client(source)) as src, contextlib.closing(
            self.client(to)
        ) as dst:
            source_id, target_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command(
                "CLUSTER", "MYID"
            )
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
                if not keys:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", to, "", 0, 10000, "KEYS", *keys)

    def finish_move(self, slot: int, source: int, to: int) -> None:
        """The second half: ``to`` owns ``slot`` (SETSLOT NODE on both), all agree."""
        with contextlib.closing(self.client(source)) as src, contextlib.closing(
            self.client(to)
        ) as dst:
            target_id = dst.execute_command("CLUSTER", "MYID")
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        wait_until(lambda: self.owner(slot) == to, 20, f"node {to} to serve slot {slot}")
        self.wait_settled()

    def stop(self) -> None:
        for server in self.servers:
            server.cleanup()

    def __enter__(self) -> RedisCluster:
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
