"""One Redis connection never hands a caller another caller's reply (field report #1).

The client pipelines: replies are matched to callers by order alone. A call that fails
before its command is written (an argument that cannot be encoded), one cut off while its
command is written or in flight (the socket dropped, a network cut through a proxy) and one
answered with an error must all leave every other caller with its own reply, and the
connection answering afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.backends.redis.connection import RedisAddress, RedisClient, ReplyError
from dockyard.devserver import RedisServer
from dockyard.errors import BackendError, BackendUnavailableError, InvalidJobError

from ..faults.proxy import ReplyLosingProxy
from ..waiting import wait_for

#: Text Redis can carry: any character but a lone surrogate.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@dataclass(frozen=True)
class Op:
    """One call: ``echo``/``kv`` (valid), ``bad_text``/``bad_type`` (refused before the
    write) or ``error`` (an error reply)."""

    kind: str
    text: str = ""
    pad: int = 0


_OPS = st.one_of(
    st.builds(Op, kind=st.just("echo"), text=_TEXT, pad=st.sampled_from([0, 0, 20_000])),
    st.builds(Op, kind=st.just("kv"), text=_TEXT),
    st.builds(Op, kind=st.sampled_from(["bad_text", "bad_type", "error"])),
)
#: Batches of calls made in the same loop turn (one write), each ending in no fault, a
#: dropped socket (right after the writes) or a network cut (after the server got them).
_BATCHES = st.lists(
    st.tuples(st.lists(_OPS, min_size=1, max_size=6), st.sampled_from(["none", "drop", "cut"])),
    min_size=1,
    max_size=6,
)


async def _call(client: RedisClient, op: Op, tag: str) -> Any:
    if op.kind == "echo":
        return await client.execute("ECHO", tag + op.text + "x" * op.pad)
    if op.kind == "kv":
        await client.execute("SET", f"kv:{tag}", tag + op.text)
        return await client.execute("GET", f"kv:{tag}")
    if op.kind == "bad_text":
        return await client.execute("ECHO", tag + "caf\udce9")
    if op.kind == "bad_type":
        return await client.execute("ECHO", object())
    return await client.execute("INCRBY", f"kv:{tag}:n", "not-a-number")


def _check(op: Op, tag: str, outcome: Any, faulty: bool) -> None:
    """Each caller got its own answer; a fault may only turn it into 'connection lost'."""
    if faulty and isinstance(outcome, BackendUnavailableError):
        return
    if op.kind == "echo":
        assert outcome == (tag + op.text + "x" * op.pad).encode(), (op, outcome)
    elif op.kind == "kv":
        assert outcome == (tag + op.text).encode(), (op, outcome)
    elif op.kind in ("bad_text", "bad_type"):
        assert isinstance(outcome, InvalidJobError), (op, outcome)
    else:
        assert isinstance(outcome, ReplyError) and isinstance(outcome, BackendError), outcome
        assert "not an integer" in str(outcome)


async def _drive(port: int, batches: list[tuple[list[Op], str]]) -> None:
    proxy = await ReplyLosingProxy(port).start()
    client = RedisClient(RedisAddress.from_url(proxy.url), retry_for=5.0)
    try:
        for ops, fault in batches:
            await client.connection()  # every call of the batch goes out in this turn
            tags = [uuid.uuid4().hex for _ in ops]
            needle = next((t for o, t in zip(ops, tags, strict=True) if o.kind == "echo"), None)
            if fault == "cut" and needle is not None:
                proxy.hold_reply_to(needle.encode())
            calls = zip(ops, tags, strict=True)
            tasks = [asyncio.ensure_future(_call(client, o, t)) for o, t in calls]
            await asyncio.sleep(0)  # each task has sent its command (or been refused)
            if fault == "drop":
                client.drop()
            elif fault == "cut" and needle is not None:
                await wait_for(lambda: proxy.holding, what="the proxy to hold the batch")
                proxy.cut()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            for op, tag, outcome in zip(ops, tags, outcomes, strict=True):
                _check(op, tag, outcome, faulty=fault != "none")
        # Afterwards the connection still answers, each caller with its own reply.
        final = [uuid.uuid4().hex for _ in range(5)]
        replies = await asyncio.gather(*(client.execute("ECHO", t) for t in final))
        assert replies == [t.encode() for t in final]
    finally:
        await client.close()
        await proxy.close()


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=_BATCHES)
def test_every_caller_gets_its_own_reply_whatever_fails(
    redis_server: RedisServer, batches: list[tuple[list[Op], str]]
) -> None:
    asyncio.run(_drive(redis_server.port, batches))


async def test_an_unencodable_argument_fails_only_its_own_call(redis_server: RedisServer) -> None:
    """Field report #1, Details 1: the call after a lone surrogate used to hang and the one
    after it got the wrong reply. Now only the bad call fails, with InvalidJobError."""
    client = RedisClient(RedisAddress.from_url(redis_server.url), retry_for=5.0)
    try:
        first = client.execute("ECHO", "one")
        bad = client.execute("ECHO", "caf\udce9.txt")
        third = client.execute("ECHO", "three")
        results = await asyncio.gather(first, bad, third, return_exceptions=True)
        assert results[0] == b"one"
        assert isinstance(results[1], InvalidJobError)
        assert results[2] == b"three"
        assert await client.execute("ECHO", "four") == b"four"
    finally:
        await client.close()
