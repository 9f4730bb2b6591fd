"""The replies and losses a Redis command can end in, as exceptions: an error reply (with
its full-store and permission kinds), a lost connection, a failover reply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import (
    BackendError,
    BackendFullError,
    BackendPermissionError,
    BackendUnavailableError,
)
from .refusals import PERMISSION_REPLIES


class ReplyError(BackendError):
    """An error reply from the Redis server (``-ERR ...``); the message is the server's.

    An ``OOM`` reply (the server is at ``maxmemory``) is built as :class:`OutOfMemoryReply`,
    a :class:`~dockyard.errors.BackendFullError`, so callers can tell a full store apart;
    an ACL refusal (``NOPERM``) as :class:`PermissionReply`, which is never retried.
    """

    def __new__(cls, *args: object) -> ReplyError:
        if cls is ReplyError and args:
            text = str(args[0])
            if text.startswith("OOM"):
                cls = OutOfMemoryReply
            elif text.startswith(PERMISSION_REPLIES):
                cls = PermissionReply
        return super().__new__(cls, *args)


class OutOfMemoryReply(ReplyError, BackendFullError):
    """Redis refused a write because it is at ``maxmemory`` (policy ``noeviction``)."""

    def __str__(self) -> str:
        return (
            "Redis is out of memory (maxmemory reached, nothing was written by the refused "
            "command); free memory, raise maxmemory or remove finished jobs. The server said: "
            + super().__str__()
        )


class PermissionReply(ReplyError, BackendPermissionError):
    """An ACL refusal (NOPERM) as the server worded it; callers that know the command
    raise :func:`~.refusals.permission_error` instead, which names what to grant."""


class ConnectionLost(BackendUnavailableError):
    """The socket closed before the reply came; the command may or may not have run."""


class FailoverReply(ConnectionLost):
    """A Sentinel-followed server answered READONLY, UNBLOCKED, LOADING, NOREPLICAS or
    MASTERDOWN: it is not (or no longer) a writable primary and did not run the command;
    the connection is dropped so the next use finds the primary again."""


def checked(replies: Sequence[Any]) -> list[Any]:
    """``replies`` as a list, raising the first error reply among them."""
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise reply
    return list(replies)
