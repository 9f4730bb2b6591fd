"""The time-zone half of dockyard.cron: wall-clock arithmetic and cron-parser 4.9's forward search.

Kept apart from the grammar: this part only needs a pattern's sorted hour/minute/second lists and
its day test. See dockyard.cron for why the search must copy cron-parser's DST behaviour.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .errors import InvalidOptionError

if TYPE_CHECKING:
    from .cron import CronPattern

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
MIN_MS = 0
MAX_MS = 95_617_584_000_000  # 5000-01-01T00:00Z
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_MS = timedelta(milliseconds=1)
_MAX_STEPS = 20_000
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class Clock:
    """Wall time of one zone; resolves local times like luxon, cron-parser's date library."""

    __slots__ = ("zone",)

    def __init__(self, zone: ZoneInfo | None) -> None:
        self.zone = zone

    def offset(self, t_ms: int) -> int:
        """UTC offset in ms at instant ``t_ms`` (looked up at the whole second, like luxon)."""
        if self.zone is None:
            return 0
        delta = datetime.fromtimestamp(t_ms // 1000, self.zone).utcoffset()
        return 0 if delta is None else delta // _ONE_MS

    def resolve(self, local_ms: int, guess: int) -> int:
        """The instant of wall time ``local_ms`` (ms on a UTC-like axis).

        Keeps offset ``guess`` when it is valid there (so a repeated time stays in the same half),
        else takes the zone's offset; a time in a gap is read with the offset before the gap,
        which moves it forward by the gap (luxon's rule).
        """
        utc = local_ms - guess
        after = self.offset(utc)
        if after == guess:
            return utc
        utc -= after - guess
        again = self.offset(utc)
        if again == after:
            return utc
        return local_ms - min(after, again)


UTC_CLOCK = Clock(None)


@lru_cache(maxsize=256)
def clock_for(tz: str | None) -> Clock:
    """The clock of IANA zone ``tz`` (None = UTC); InvalidOptionError for an unknown zone."""
    if tz is None:
        return UTC_CLOCK
    if not isinstance(tz, str) or not _ZONE_NAME.fullmatch(tz) or tz in _NOT_ZONES:
        raise InvalidOptionError(
            f"time zone {tz!r} is not an IANA name like 'Europe/Paris' or 'UTC'"
        )
    try:
        zone = ZoneInfo(tz)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise InvalidOptionError(
            f"unknown time zone {tz!r}: use an IANA name like 'Europe/Paris' (exact case)"
        ) from exc
    return UTC_CLOCK if tz == "UTC" else Clock(zone)


@lru_cache(maxsize=8192)
def day_change(clock: Clock, day_no: int) -> int | None:
    """The instant (whole second) local day ``day_no`` changes UTC offset; None if it does not."""
    if clock.zone is None:
        return None
    start_local, end_local = day_no * DAY_MS, (day_no + 1) * DAY_MS
    start = clock.resolve(start_local, clock.offset(start_local))
    end = clock.resolve(end_local, clock.offset(end_local))
    first = clock.offset(start)
    low, high = start // 1000, (end - 1) // 1000
    if clock.offset(high * 1000) == first:
        return None
    while high - low > 1:  # offset(low) == first != offset(high)
        middle = (low + high) // 2
        if clock.offset(middle * 1000) == first:
            low = middle
        else:
            high = middle
    return high * 1000


class Search:
    """One ``next_after``: cron-parser 4.9's forward search from a fresh parse, as BullMQ runs it.

    Days come from the pattern's day test; within a day with one UTC offset the time is looked up
    directly. Where the offset changes, the walk goes unit by unit over the change (next hour,
    minute or second, as cron-parser would), keeping its DST memory.
    """

    __slots__ = ("clock", "day", "dst_end", "dst_start", "end", "hours", "pattern", "start")

    def __init__(self, pattern: CronPattern, clock: Clock, start: int, end: int | None) -> None:
        if not MIN_MS <= start <= MAX_MS:
            raise InvalidOptionError(f"after_ms {start} is outside years 1970-4999")
        self.pattern = pattern
        self.clock = clock
        self.start = start
        self.end = end
        self.hours = frozenset(pattern.hours)
        self.day = -1  # local day of the cursor at the previous step
        # cron-parser's DST memory, only kept when the hour field does not list all 24 hours:
        self.dst_start: int | None = None  # landing hour after the clock jumped 2 hours
        self.dst_end: int | None = None  # hour whose repeat (after falling back) is skipped

    def run(self) -> int | None:
        """The first fire after ``start`` (None past ``end``)."""
        pattern, clock, end = self.pattern, self.clock, self.end
        t = self.start
        for _ in range(_MAX_STEPS):
            if end is not None and t > end:
                return None
            offset = clock.offset(t)
            day_no, in_day = divmod(t + offset, DAY_MS)
            if day_no != self.day:
                self.day = day_no
                self._forget_idle_memory()
            day = date.fromordinal(_EPOCH_ORDINAL + day_no)
            if not pattern.matches_date(day):
                found = pattern.next_date(day + timedelta(days=1))
                if found is None:
                    return None
                t = self._midnight(found.toordinal() - _EPOCH_ORDINAL, offset)
                continue
            if self._memory_idle():
                change = day_change(clock, day_no)
                tod = pattern.time_at_or_after(in_day // 1000 + (1 if t == self.start else 0))
                if change is None or t >= change:  # one offset from t to the end of the day
                    if tod is None:
                        t = clock.resolve((day_no + 1) * DAY_MS, offset)
                        continue
                    fire = clock.resolve(day_no * DAY_MS + tod * 1000, offset)
                    return None if end is not None and fire > end else fire
                if tod is not None and day_no * DAY_MS + tod * 1000 - offset < change:
                    fire = day_no * DAY_MS + tod * 1000 - offset  # before the change
                    return None if end is not None and fire > end else fire
                t = max(t, self._last_stop_before(change))
            t, fired = self._step(t, t + clock.offset(t))
            if fired:
                return None if end is not None and t > end else t
        return None

    def _midnight(self, day_no: int, offset: int) -> int:
        """Start of local day ``day_no``, reached as cron-parser's day steps reach it."""
        clock = self.clock
        eve = (day_no - 1) * DAY_MS
        before = clock.resolve(eve, clock.offset(eve - offset))
        return clock.resolve(day_no * DAY_MS, clock.offset(before))

    def _memory_idle(self) -> bool:
        """Whether the DST memory can change nothing (so looking times up directly is exact)."""
        start, end = self.dst_start, self.dst_end
        start_idle = start is None or start in self.hours or (start - 1) not in self.hours
        return start_idle and (end is None or end not in self.hours)

    def _forget_idle_memory(self) -> None:
        # cron-parser never acts on an idle memory again (its landing hour and its fall-back hour
        # are other hours in every zone), so a new day starts with none.
        if self._memory_idle():
            self.dst_start = self.dst_end = None

    def _last_stop_before(self, change: int) -> int:
        """Where the walk stands just before it steps over ``change`` (no fire lies in between)."""
        before = change - SECOND_MS
        local = before + self.clock.offset(before)
        if local // HOUR_MS % 24 not in self.hours:
            unit = HOUR_MS
        elif local // MINUTE_MS % 60 not in self.pattern.minutes:
            unit = MINUTE_MS
        else:
            unit = SECOND_MS
        return before - local % unit

    def _step(self, t: int, local: int) -> tuple[int, bool]:
        """One step of cron-parser's walk; (new cursor, whether the cursor is the fire)."""
        pattern = self.pattern
        hour = local // HOUR_MS % 24
        if hour not in self.hours:
            if self.dst_start != hour:
                self.dst_start = None
                return self._advance(t, HOUR_MS, notice=True), False
            if hour - 1 not in self.hours:
                return self._advance(t, HOUR_MS, notice=False), False
            # else the landing hour stands in for the skipped one
        elif self.dst_end == hour:
            self.dst_end = None
            return self._advance(t, HOUR_MS, notice=True), False
        if local // MINUTE_MS % 60 not in pattern.minutes:
            return self._advance(t, MINUTE_MS, notice=True), False
        if local // SECOND_MS % 60 not in pattern.seconds or t == self.start:
            return self._advance(t, SECOND_MS, notice=True), False
        return t, True

    def _advance(self, t: int, unit: int, *, notice: bool) -> int:
        """Move to the start of the next hour/minute/second, noting DST jumps like cron-parser."""
        clock = self.clock
        later = t + unit
        offset = clock.offset(later)
        local = later + offset
        moved = clock.resolve(local - local % unit, offset)
        if moved < t or (unit == HOUR_MS and moved == t):
            moved += HOUR_MS
        if notice and len(self.hours) != 24:
            before = (t + clock.offset(t)) // HOUR_MS % 24
            landed = moved + clock.offset(moved)
            after = landed // HOUR_MS % 24
            if after - before == 2:
                self.dst_start = after
            elif after == before and landed % HOUR_MS == 0:
                self.dst_end = after
        return moved
