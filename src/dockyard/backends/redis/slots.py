"""Redis Cluster hash slots: which slot a key is in, the one slot of a queue, redirects.

On a cluster every key of a queue must hash to one slot (a hash tag in the prefix or the
queue name, as BullMQ requires): its scripts work on many of its keys at once. Nothing
here talks to a server, so the connection module can use it without a cycle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ...errors import BackendUnavailableError, ClusterSlotError
from .address import RedisAddress

#: Redis Cluster's number of hash slots.
SLOTS = 16384
#: How the error replies that send a command elsewhere (it was not run) start.
REDIRECT_REPLIES = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")


def _crc16_table() -> tuple[int, ...]:
    """CRC-16/XMODEM (polynomial 0x1021), the checksum Redis Cluster hashes keys with."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM of ``data``."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def hash_tag(key: bytes) -> bytes | None:
    """The part of ``key`` Redis hashes when it has one: the text between its first ``{``
    and the first ``}`` after it, if that is not empty; None: the whole key is hashed."""
    start = key.find(b"{")
    if start < 0:
        return None
    end = key.find(b"}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def key_slot(key: str | bytes) -> int:
    """The hash slot of ``key`` (0-16383), as Redis Cluster computes it."""
    raw = key.encode() if isinstance(key, str) else key
    tag = hash_tag(raw)
    return crc16(raw if tag is None else tag) % SLOTS


def queue_slot(prefix: str, queue: str) -> int:
    """The one slot every key ``prefix:queue:...`` hashes to; ClusterSlotError when the
    keys' hash tag (or its absence) lets a job id or key suffix decide the slot."""
    base = f"{prefix}:{queue}:".encode()
    tag = hash_tag(base)
    if tag is None:
        raise ClusterSlotError(
            f"queue {queue!r} with prefix {prefix!r} would spread its keys over many slots "
            "of the Redis Cluster; give it a hash tag: prefix='{bull}' (every queue in one "
            f"slot) or a queue name like '{{{queue}}}' (a slot per queue). Nothing was written"
        )
    return key_slot(base)


def bind_queue(address: RedisAddress, prefix: str, queue: str) -> RedisAddress:
    """``address`` bound to the slot of ``queue`` when it is a cluster's (checked before
    any connection), else ``address`` itself."""
    if address.cluster is None:
        return address
    cluster = dataclasses.replace(address.cluster, slot=queue_slot(prefix, queue))
    return dataclasses.replace(address, cluster=cluster)


def check_flow_slots(address: RedisAddress, prefix: str, queues: Iterable[str]) -> None:
    """A flow is stored by one script on one node: on a cluster, every queue it names
    (its jobs' and their parents') must share the slot of ``address``."""
    cluster = address.cluster
    if cluster is None or cluster.slot is None:
        return
    for queue in queues:
        if queue_slot(prefix, queue) != cluster.slot:
            raise ClusterSlotError(
                f"this flow spans queue {queue!r}, whose keys are in another slot of the "
                "Redis Cluster than the flow's other queues; a flow (and a parent in another "
                "queue) needs one hash tag for all of them: use prefix='{bull}' rather than "
                "braces in the queue names. Nothing was written"
            )


class ClusterRedirect(BackendUnavailableError):
    """A cluster node did not run a command (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or a
    failover reply such as READONLY or UNBLOCKED); the client sends it again where the
    reply says, or after a short pause."""

    def __init__(self, reply: str, asked: RedisAddress) -> None:
        where = f"[{asked.host}]" if ":" in asked.host else asked.host
        super().__init__(f"Redis Cluster node {where}:{asked.port} did not run it: {reply}")
        kind, _, rest = reply.partition(" ")
        self.kind = kind
        #: For MOVED and ASK: the node to send it to.
        self.target: RedisAddress | None = None
        if kind in ("MOVED", "ASK"):
            where = rest.partition(" ")[2]
            host, _, port = where.rpartition(":")
            if port.isdigit():
                self.target = dataclasses.replace(
                    asked, host=host or asked.host, port=int(port), path=None
                )

    @property
    def stale(self) -> bool:
        """True when the connection's node may no longer serve the slot (drop it)."""
        return self.kind not in ("ASK", "TRYAGAIN")
