"""The process-wide registry of memory stores, by ``memory://`` URL."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, unquote, urlsplit

from ...errors import InvalidOptionError, NotSupportedError
from .clock import Clock, ManualClock, SystemClock
from .state import QueueState


class Store:
    """Every queue of one ``memory://`` name, under one lock."""

    def __init__(self, name: str, manual: bool) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.clock: Clock = ManualClock(self) if manual else SystemClock()
        self.queues: dict[tuple[str, str], QueueState] = {}

    def queue(self, prefix: str, name: str) -> QueueState:
        with self.lock:
            q = self.queues.get((prefix, name))
            if q is None:
                q = QueueState(name, prefix, self.queues, self.clock.now_ms)
                self.queues[(prefix, name)] = q
            return q


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def parse_url(url: str) -> tuple[str, str | None]:
    """``(store name, clock)`` of a ``memory://`` URL; clock is ``system``, ``manual`` or None."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "memory":
        raise InvalidOptionError(f"not a memory:// URL: {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"name", "clock"})
    if unknown:
        raise InvalidOptionError(
            f"unknown option(s) {', '.join(unknown)} in {url!r}; memory:// takes "
            "?name=NAME and ?clock=system|manual"
        )
    name = unquote(parts.netloc + parts.path).strip("/")
    if "name" in query:
        given = query["name"][-1]
        if name and given != name:
            raise InvalidOptionError(f"{url!r} names two stores ({name!r} and {given!r})")
        name = given
    clock = query["clock"][-1] if "clock" in query else None
    if clock not in (None, "system", "manual"):
        raise InvalidOptionError(f"clock must be 'system' or 'manual' in {url!r}, got {clock!r}")
    return name, clock


def store_for(url: str) -> Store:
    """The process-wide store of ``url`` (created on first use)."""
    name, clock = parse_url(url)
    with _STORES_LOCK:
        store = _STORES.get(name)
        if store is None:
            store = _STORES[name] = Store(name, clock == "manual")
        elif clock is not None and store.clock.manual != (clock == "manual"):
            have = "manual" if store.clock.manual else "system"
            raise InvalidOptionError(
                f"the memory:// store {name!r} already exists with the {have} clock; use "
                f"?clock={have} (or no clock option) for it, or another store name"
            )
        return store


def clock_for(url: str) -> ManualClock:
    """The virtual clock of the store of ``url`` (``memory://NAME?clock=manual``)."""
    clock = store_for(url).clock
    if not isinstance(clock, ManualClock):
        raise NotSupportedError(
            f"the memory:// store of {url!r} runs on the system clock, which cannot be "
            "moved; open it with ?clock=manual (e.g. memory://tests?clock=manual)"
        )
    return clock


def reset(url: str | None = None) -> None:
    """Forget the store of ``url`` (every store when None); backends still open on it keep
    their old store, new ones get an empty store."""
    with _STORES_LOCK:
        if url is None:
            _STORES.clear()
        else:
            _STORES.pop(parse_url(url)[0], None)
