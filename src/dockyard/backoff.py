"""Backoff: how long a failed job waits before its next attempt (BullMQ's ``backoff``)."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .durations import to_ms, to_seconds
from .errors import InvalidOptionError


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before the next attempt of a failed job.

    Build one with :meth:`fixed`, :meth:`exponential` or :meth:`custom` (a strategy named
    in the worker's ``backoff_strategies``). ``delay`` is in seconds.
    """

    type: str
    delay: float = 0.0
    jitter: float = 0.0

    @classmethod
    def fixed(cls, delay: float | timedelta, *, jitter: float = 0.0) -> Backoff:
        """Wait ``delay`` seconds before every retry (less a random ``jitter`` fraction)."""
        return cls("fixed", to_seconds(delay, "backoff delay"), _jitter(jitter))

    @classmethod
    def exponential(cls, delay: float | timedelta, *, jitter: float = 0.0) -> Backoff:
        """Wait ``delay * 2**(n-1)`` seconds before retry ``n`` (less a random ``jitter`` part)."""
        return cls("exponential", to_seconds(delay, "backoff delay"), _jitter(jitter))

    @classmethod
    def custom(cls, name: str, delay: float | timedelta = 0.0) -> Backoff:
        """Use the worker's strategy registered under ``name``."""
        if not isinstance(name, str) or not name:
            raise InvalidOptionError(f"a custom backoff needs a strategy name, got {name!r}")
        return cls(name, to_seconds(delay, "backoff delay"))

    @classmethod
    def coerce(cls, value: object) -> Backoff:
        """Accept a Backoff, seconds (fixed), or ``{"type", "delay" (s), "jitter"}``."""
        if isinstance(value, Backoff):
            return value
        if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool):
            return cls.fixed(value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"type", "delay", "jitter"}
            if unknown or "type" not in value:
                raise InvalidOptionError(
                    f"backoff takes 'type', 'delay' (seconds) and 'jitter', got {dict(value)!r}"
                )
            kind, delay = value["type"], value.get("delay", 0.0)
            jitter = value.get("jitter", 0.0)
            if kind == "fixed":
                return cls.fixed(delay, jitter=jitter)
            if kind == "exponential":
                return cls.exponential(delay, jitter=jitter)
            return cls.custom(kind, delay)
        raise InvalidOptionError(
            f"backoff must be a Backoff, a number of seconds or a dict, got {value!r}"
        )

    @property
    def builtin(self) -> bool:
        """True for the strategies computed here (fixed, exponential)."""
        return self.type in ("fixed", "exponential")

    def delay_for(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = first retry), BullMQ's formula."""
        base_ms = to_ms(self.delay)
        if self.type == "exponential":
            base_ms = round(2 ** (attempt - 1) * base_ms)
        if self.jitter > 0:
            base_ms = math.floor(
                base_ms * (1 - self.jitter) + random.random() * base_ms * self.jitter
            )
        return base_ms / 1000

    def to_bullmq(self) -> dict[str, Any]:
        """BullMQ's stored form: ``{"type", "delay" (ms)[, "jitter"]}``."""
        out: dict[str, Any] = {"type": self.type, "delay": to_ms(self.delay)}
        if self.jitter:
            out["jitter"] = self.jitter
        return out

    @classmethod
    def from_bullmq(cls, value: object) -> Backoff | None:
        """Read BullMQ's stored backoff (number of ms or dict with ms); None if unusable."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls("fixed", max(float(value), 0.0) / 1000)
        if isinstance(value, Mapping) and isinstance(value.get("type"), str):
            delay = value.get("delay", 0)
            jitter = value.get("jitter", 0)
            return cls(
                value["type"],
                float(delay) / 1000 if isinstance(delay, (int, float)) else 0.0,
                float(jitter) if isinstance(jitter, (int, float)) else 0.0,
            )
        return None


def _jitter(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidOptionError(f"backoff jitter must be between 0 and 1, got {value!r}")
    return float(value)
