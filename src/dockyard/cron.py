"""Cron patterns of job schedulers, evaluated exactly as Node BullMQ evaluates them.

Node BullMQ computes a scheduler's next run with npm ``cron-parser`` (4.9.0 in BullMQ 5.62, 5.10.3
in BullMQ 6.7), re-parsing the pattern from the previous run each time. A mixed fleet of Node and
dockyard workers must agree on every next time, so this module reproduces cron-parser 4.9.0's
results to the millisecond, DST quirks included; ``tests/cron/cron_table.json`` (made by
``tests/cron/make_table.mjs`` from the real packages) is the judge.

Why not ``croniter``: its defaults read a sixth field as seconds *last*, fire twice at the autumn
change and move a nonexistent spring time differently, and cron-parser's rules around DST depend
on *how* its search reached the change (hour steps vs minute steps, whether the hour field lists
every hour). Wrapping croniter would mean re-deciding every DST case around it, so this is a
small engine of its own:

* Days are found by calendar arithmetic; on a day without an offset change the time of day is
  found directly in the sorted hour/minute/second lists.
* On a day whose UTC offset changes, the search walks forward in the units cron-parser uses
  (next hour, next minute, next second; local times resolved like luxon, which prefers the
  current offset and moves a nonexistent local time forward by the gap), with its two rules when
  the hour field is restricted (not all 24 hours): a jump of two wall-clock hours lets the landing
  hour stand in for the skipped one (``30 2 * * *`` fires at 03:30 on the spring day), and coming
  back to the start of the same hour skips the repeated hour (``30 1 * * *`` fires once in autumn).

Grammar: 5 fields, or 6 with seconds first; ``* , - / ?`` (``?`` in the day fields); ``JAN-DEC``
and ``SUN-SAT`` (any case); 0 and 7 are Sunday; ``L`` (last day) in day-of-month, ``<weekday>L``
(last such weekday) and ``<weekday>#<1-5>`` in day-of-week; ``@yearly @monthly @weekly @daily
@hourly``. Day-of-month and day-of-week both restricted means either may match. Refused: what
either cron-parser refuses (``H``, ``@annually``, ``@midnight``, duplicate values, a day the only
month never has, ...), fewer than 5 fields, and the few patterns that cron-parser 4.9 and 5.10
read differently (the error says how to write them unambiguously).
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from ._cron_search import Search, clock_for
from .errors import InvalidOptionError

__all__ = ["CronPattern", "parse_cron", "validate_timezone"]

_BadFactory = Callable[[str], "InvalidOptionError"]

# cron-parser 4.9's month lengths for its "is the day field a wildcard" test (February = 29).
_TABLE_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MAX_TEXT = 1024  # cron-parser 5 refuses longer patterns
_SEARCH_YEARS = 400  # one Gregorian cycle: a pattern that can fire fires within it

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_WEEKDAY_NAMES = {
    name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_NUMBER = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z]{3}")
_WHITESPACE = " \t\n\r\f\v"


@dataclass(frozen=True, kw_only=True)
class _Field:
    """How to read one of the six fields."""

    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    day_field: bool = False  # allows "?"


_FIELDS = (
    _Field(name="second", low=0, high=59),
    _Field(name="minute", low=0, high=59),
    _Field(name="hour", low=0, high=23),
    _Field(name="day-of-month", low=1, high=31, day_field=True),
    _Field(name="month", low=1, high=12, names=_MONTH_NAMES),
    _Field(name="day-of-week", low=0, high=7, names=_WEEKDAY_NAMES, day_field=True),
)


def _bad(text: str, why: str) -> InvalidOptionError:
    return InvalidOptionError(f"invalid cron pattern {text!r}: {why}")


@dataclass(frozen=True, kw_only=True)
class CronPattern:
    """A parsed cron pattern; ``next_after`` gives the fire times BullMQ's cron-parser 4.9 gives."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]  # numeric days of the month
    last_day: bool  # "L" in day-of-month
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday .. 6
    last_weekdays: tuple[int, ...]  # "5L" = last Friday of the month
    nth: int  # "1#2" = the second Monday: 2; 0 when not used
    any_day: bool  # day-of-month is "*" or "?"
    any_weekday: bool  # day-of-week covers every day ("*", "?", "0-7", "1-7")
    _month_days: dict[tuple[int, int], tuple[int, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )  # memo: (weekday of the 1st, length) -> allowed days

    @classmethod
    def parse(cls, text: str) -> CronPattern:
        """Parse ``text``; InvalidOptionError (naming the field and the reason) when it is bad."""
        if not isinstance(text, str):
            raise InvalidOptionError(f"a cron pattern must be a string, got {type(text).__name__}")
        return _parse_cached(text)

    def next_after(
        self, after_ms: int, *, tz: str | None = None, end_ms: int | None = None
    ) -> int | None:
        """Epoch ms of the first fire strictly after ``after_ms`` (whole seconds) in zone ``tz``.

        ``tz`` is an IANA name (None = UTC). Returns None when that time is after ``end_ms``.
        """
        if isinstance(after_ms, bool) or not isinstance(after_ms, int):
            raise InvalidOptionError(
                f"after_ms must be an int of epoch milliseconds, got {after_ms!r}"
            )
        if end_ms is not None and (isinstance(end_ms, bool) or not isinstance(end_ms, int)):
            raise InvalidOptionError(
                f"end_ms must be None or int epoch milliseconds, got {end_ms!r}"
            )
        return Search(self, clock_for(tz), after_ms, end_ms).run()

    def matches_date(self, day: date) -> bool:
        """Whether the pattern's day, weekday and month fields allow ``day``."""
        if day.month not in self.months:
            return False
        return day.day in self.days_of_month(day.year, day.month)

    def days_of_month(self, year: int, month: int) -> tuple[int, ...]:
        """The days of ``year``-``month`` the day-of-month and day-of-week fields allow."""
        shape = calendar.monthrange(year, month)
        days = self._month_days.get(shape)
        if days is None:
            days = self._month_days[shape] = _allowed_days(self, *shape)
        return days

    def next_date(self, day: date) -> date | None:
        """The first date >= ``day`` the day and month fields allow (None past year 9999)."""
        year, month, first = day.year, day.month, day.day
        for _ in range(_SEARCH_YEARS * 12 + 1):
            if month in self.months:
                found = _at_or_after(self.days_of_month(year, month), first)
                if found is not None:
                    return date(year, month, found)
            month, first = month + 1, 1
            if month == 13:
                year, month = year + 1, 1
                if year > 9999:
                    return None
        return None

    def time_at_or_after(self, second_of_day: int) -> int | None:
        """The first second of the day >= ``second_of_day`` the time fields allow, or None."""
        if second_of_day >= 86_400:
            return None
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        h = _at_or_after(self.hours, hour)
        while h is not None:
            if h > hour:
                return h * 3600 + self.minutes[0] * 60 + self.seconds[0]
            m = _at_or_after(self.minutes, minute)
            while m is not None:
                if m > minute:
                    return h * 3600 + m * 60 + self.seconds[0]
                s = _at_or_after(self.seconds, second)
                if s is not None:
                    return h * 3600 + m * 60 + s
                m = _at_or_after(self.minutes, minute + 1)
                minute = -1  # any later minute starts at the first second
            h = _at_or_after(self.hours, hour + 1)
        return None


def parse_cron(text: str) -> CronPattern:
    """Parse a cron pattern (see the module docstring); the same as ``CronPattern.parse``."""
    return CronPattern.parse(text)


def validate_timezone(tz: str) -> str:
    """Return ``tz`` if it is an IANA time-zone name this machine knows, else InvalidOptionError."""
    clock_for(tz)
    return tz


def _at_or_after(values: tuple[int, ...], value: int) -> int | None:
    i = bisect_left(values, value)
    return values[i] if i < len(values) else None


# --- parsing ------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _parse_cached(text: str) -> CronPattern:
    if len(text) > _MAX_TEXT:
        raise _bad(text[:40] + "...", f"longer than {_MAX_TEXT} characters")
    body = _MACROS.get(text, text)
    if body.startswith("@"):
        raise _bad(text, f"unknown macro; use one of {', '.join(_MACROS)}")
    for ch in body:
        if ch.isspace() and ch not in _WHITESPACE:
            raise _bad(text, f"unexpected space character {ch!r}; separate fields with spaces")
    parts = body.strip(_WHITESPACE).split()
    if len(parts) == 5:
        parts.insert(0, "0")
    elif len(parts) != 6:
        raise _bad(
            text,
            f"expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds "
            f"first, got {len(parts)}",
        )
    sec, minute, hour, dom, month, dow = (
        _parse_field(text, spec, raw) for spec, raw in zip(_FIELDS, parts, strict=True)
    )
    return _assemble(text, sec, minute, hour, dom, month, dow)


@dataclass(frozen=True, kw_only=True)
class _Parsed:
    """One field as cron-parser 5 lists it (for its duplicate check) plus the special items."""

    listed: tuple[int, ...]  # values in cron-parser 5's list order (weekday 7 kept in ranges)
    last: bool = False  # "L" (day-of-month)
    last_weekdays: tuple[int, ...] = ()
    nth: int = 0
    wildcard: bool = False  # the raw field is exactly "*" or "?"
    raw: str = ""


def _parse_field(text: str, spec: _Field, raw: str) -> _Parsed:
    def bad(why: str) -> InvalidOptionError:
        return _bad(text, f"{spec.name} field {raw!r}: {why}")

    if spec.name == "day-of-week" and "#" in raw:
        return _parse_nth(raw, bad)
    listed: list[int] = []
    last = False
    last_weekdays: list[int] = []
    for item in raw.split(","):
        if not item:
            raise bad("empty list item")
        if item == "L" and spec.name == "day-of-month":
            last = True
            continue
        if (
            spec.name == "day-of-week"
            and item.endswith("L")
            and "/" not in item
            and "-" not in item
        ):
            weekday = _value(item[:-1], spec, bad)
            last_weekdays.append(weekday % 7)
            continue
        listed.extend(_parse_item(item, spec, bad))
    seen: set[int] = set()
    for v in listed:
        if v in seen:
            raise bad(f"value {v} appears more than once")
        seen.add(v)
    if len(set(last_weekdays)) != len(last_weekdays):
        raise bad("a last-weekday item appears more than once")
    return _Parsed(
        listed=tuple(listed),
        last=last,
        last_weekdays=tuple(last_weekdays),
        wildcard=raw in ("*", "?"),
        raw=raw,
    )


def _parse_item(item: str, spec: _Field, bad: _BadFactory) -> list[int]:
    """Values of one list item: ``*``, ``?``, ``n``, ``a-b``, each optionally ``/step``."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
            raise bad(f"step {step_text!r} must be a whole number of at least 1")
        step = int(step_text)
    if base in ("*", "?"):
        if base == "?" and not spec.day_field:
            raise bad("'?' is only allowed in the day-of-month and day-of-week fields")
        low, high = spec.low, spec.high
    elif "-" in base:
        first, _, second = base.partition("-")
        if "-" in second:
            raise bad(f"range {base!r} has more than one '-'")
        low, high = _value(first, spec, bad), _value(second, spec, bad)
        if low > high:
            raise bad(f"range {base!r} runs backwards; cron ranges do not wrap")
    else:
        value = _value(base, spec, bad)
        if not slash:
            return [value % 7 if spec.name == "day-of-week" else value]
        low, high = value, spec.high
    values = list(range(low, high + 1, step))
    if spec.name == "day-of-week" and high == 7:
        if low != 0 and (7 - low) % step != 0:
            raise bad(
                f"cron-parser 4.9 adds Sunday to {item!r} and 5.x does not; "
                "list the weekdays instead"
            )
        if 0 not in values:
            values.insert(0, 0)  # cron-parser lists 7 as 0 first
    return values


def _value(token: str, spec: _Field, bad: _BadFactory) -> int:
    if _NUMBER.fullmatch(token):
        value = int(token)
    elif spec.names is not None and _NAME.fullmatch(token) and token.lower() in spec.names:
        value = spec.names[token.lower()]
    else:
        allowed = "a number" + (
            " or a name like " + next(iter(spec.names)).upper() if spec.names else ""
        )
        raise bad(f"{token!r} is not {allowed}")
    if not spec.low <= value <= spec.high:
        raise bad(f"{value} is outside {spec.low}-{spec.high}")
    return value


def _parse_nth(raw: str, bad: _BadFactory) -> _Parsed:
    weekday_text, _, nth_text = raw.partition("#")
    spec = _FIELDS[5]
    if any(c in raw for c in ",-/") or "#" in nth_text:
        raise bad("'#' takes one weekday and one number, like MON#2, with no list, range or step")
    if not _NUMBER.fullmatch(nth_text) or not 1 <= int(nth_text) <= 5:
        raise bad("the number after '#' must be 1 to 5")
    weekday = _value(weekday_text, spec, bad)
    return _Parsed(listed=(weekday % 7,), nth=int(nth_text), raw=raw)


def _assemble(
    text: str,
    sec: _Parsed,
    minute: _Parsed,
    hour: _Parsed,
    dom: _Parsed,
    month: _Parsed,
    dow: _Parsed,
) -> CronPattern:
    """Build the pattern; refuse what cron-parser 4.9 refuses late and what 4.9 and 5.x split on."""
    months = tuple(sorted(month.listed))
    days = sorted(dom.listed)
    if len(months) == 1:  # 4.9 refuses a first day the only month lacks, then drops the rest
        month_days = _TABLE_MONTH_DAYS[months[0] - 1]
        if days and days[0] > month_days:
            raise _bad(text, f"day {days[0]} never occurs in month {months[0]}")
        days = [d for d in days if d <= month_days]
    weekday_count = len(dow.listed) + len(dow.last_weekdays)  # how cron-parser 4.9 counts them
    any_weekday = weekday_count == 8
    if not dom.wildcard and (any_weekday or dow.nth) and not dow.wildcard:
        what = "'#'" if dow.nth else f"day-of-week {dow.raw!r}"
        raise _bad(
            text,
            f"cron-parser 4.9 and 5.x read {what} with day-of-month {dom.raw!r} differently; "
            "use '*' in the other day field (or list the days without '#')",
        )
    day_count = len(days) + (1 if dom.last else 0)
    shortest = min(_TABLE_MONTH_DAYS[m - 1] for m in months)
    if not dom.wildcard and not any_weekday and day_count >= shortest:
        raise _bad(
            text,
            f"day-of-month {dom.raw!r} covers a whole month, which cron-parser 4.9 reads as '*' "
            "and 5.x does not; write '*'",
        )
    never = not any(d <= _TABLE_MONTH_DAYS[m - 1] for d in days for m in months)
    if any_weekday and not dom.last and never:
        raise _bad(text, "the day-of-month and month fields never meet, so it never fires")
    return CronPattern(
        text=text,
        seconds=tuple(sorted(sec.listed)),
        minutes=tuple(sorted(minute.listed)),
        hours=tuple(sorted(hour.listed)),
        days=tuple(days),
        last_day=dom.last,
        months=months,
        weekdays=tuple(sorted({v % 7 for v in dow.listed})),
        last_weekdays=tuple(sorted(dow.last_weekdays)),
        nth=dow.nth,
        any_day=dom.wildcard,
        any_weekday=any_weekday,
    )


def _allowed_days(pattern: CronPattern, first_weekday: int, length: int) -> tuple[int, ...]:
    """Days of a month (whose 1st is Python weekday ``first_weekday``) the day fields allow.

    cron-parser's rule: day-of-month and day-of-week both restricted = either matches; an
    nth-weekday ('#') is checked on top.
    """
    out = []
    for day in range(1, length + 1):
        weekday = (first_weekday + day) % 7  # cron numbering: Sunday = 0
        dom_ok = day in pattern.days or (pattern.last_day and day == length)
        dow_ok = weekday in pattern.weekdays or (
            weekday in pattern.last_weekdays and day + 7 > length
        )
        if pattern.any_weekday:
            ok = dom_ok
        elif pattern.any_day:
            ok = dow_ok
        else:
            ok = dom_ok or dow_ok
        if ok and pattern.nth and (day + 6) // 7 != pattern.nth:
            ok = False
        if ok:
            out.append(day)
    return tuple(out)
