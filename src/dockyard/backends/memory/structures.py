"""Data structures of the memory store: Redis-like sorted sets and cross-thread waiters."""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_left, bisect_right, insort
from itertools import islice
from typing import Any


class Waiter:
    """A future of some event loop, to be resolved from any thread."""

    __slots__ = ("future", "loop", "thread")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()
        self.thread = threading.get_ident()

    def wake(self, value: Any) -> None:
        try:
            if self.thread == threading.get_ident():
                resolve(self.future, value)
            else:
                self.loop.call_soon_threadsafe(resolve, self.future, value)
        except RuntimeError:  # its loop is closed: nobody waits any more
            pass


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class ZSet:
    """A sorted set as Redis keeps one: members ordered by (score, member)."""

    __slots__ = ("_head", "_items", "_scores")

    def __init__(self) -> None:
        self._items: list[tuple[float, str]] = []  # sorted; live from _head on
        self._head = 0
        self._scores: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, member: object) -> bool:
        return member in self._scores

    def add(self, member: str, score: float) -> None:
        if member in self._scores:
            self.remove(member)
        self._scores[member] = score
        item = (score, member)
        items = self._items
        if len(items) == self._head or items[-1] < item:
            items.append(item)
        else:
            insort(items, item, lo=self._head)

    def remove(self, member: str) -> bool:
        score = self._scores.pop(member, None)
        if score is None:
            return False
        i = bisect_left(self._items, (score, member), self._head)
        if i == self._head:
            self._drop_head()
        else:
            del self._items[i]
        return True

    def _drop_head(self) -> None:
        self._head += 1
        items = self._items
        if self._head == len(items):
            items.clear()
            self._head = 0
        elif self._head >= 1024 and self._head * 2 >= len(items):
            del items[: self._head]
            self._head = 0

    def first(self) -> tuple[float, str] | None:
        return self._items[self._head] if self._head < len(self._items) else None

    def pop_min(self) -> str | None:
        first = self.first()
        if first is None:
            return None
        self._drop_head()
        del self._scores[first[1]]
        return first[1]

    def by_rank(self, start: int, end: int, reverse: bool) -> list[str]:
        """ZRANGE (or ZREVRANGE when ``reverse``) start end."""
        n = len(self._scores)
        lo, hi = bounds(n, start, end)
        items, head = self._items, self._head
        if reverse:
            return [items[head + n - 1 - i][1] for i in range(lo, hi)]
        return [member for _, member in items[head + lo : head + hi]]

    def up_to(self, max_score: float, limit: int) -> list[str]:
        """ZRANGEBYSCORE 0 max_score LIMIT 0 limit."""
        out: list[str] = []
        for score, member in islice(self._items, self._head, None):
            if score > max_score or len(out) >= limit:
                break
            out.append(member)
        return out

    def max_in(self, low: float, high: float) -> float | None:
        """The highest score within [low, high], or None."""
        i = bisect_right(self._items, high, self._head, key=_score)
        if i > self._head and self._items[i - 1][0] >= low:
            return self._items[i - 1][0]
        return None


def _score(item: tuple[float, str]) -> float:
    return item[0]


def bounds(n: int, start: int, end: int) -> tuple[int, int]:
    """Redis's LRANGE/ZRANGE index rules: ``[lo, hi)`` for inclusive start/end, negatives
    counted from the end."""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = n + end
    end = min(end, n - 1)
    if start > end:
        return 0, 0
    return start, end + 1
