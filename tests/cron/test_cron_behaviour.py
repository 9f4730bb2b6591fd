"""dockyard.cron behaviours a scheduler relies on, with the vectors of the flows/schedulers spec.

The DST vectors are bullmq-flows-schedulers.md B.5 (verified on cron-parser 4.9.0 and 5.10.3);
croniter's defaults get each of them wrong, which is why dockyard has its own engine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dockyard.cron import CronPattern, parse_cron, validate_timezone
from dockyard.errors import InvalidOptionError


def ms(text: str) -> int:
    """Epoch ms of an ISO time (with its offset)."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def fires(pattern: str, base: str, count: int, tz: str | None = None) -> list[str]:
    """``count`` fires from ``base``, each from the previous one, as UTC ISO strings."""
    parsed = CronPattern.parse(pattern)
    out = []
    current = ms(base)
    for _ in range(count):
        nxt = parsed.next_after(current, tz=tz)
        assert nxt is not None
        out.append(datetime.fromtimestamp(nxt / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        current = nxt
    return out


def test_six_fields_read_seconds_first() -> None:
    assert fires("0 15 3 * * *", "2025-01-01T00:00:00+00:00", 1) == ["2025-01-01T03:15:00Z"]


def test_day_of_month_and_day_of_week_both_restricted_fire_on_either() -> None:
    # 2025-01-03 is a Friday, before the 13th.
    assert fires("0 0 13 * 5", "2025-01-01T00:00:00+00:00", 3) == [
        "2025-01-03T00:00:00Z",
        "2025-01-10T00:00:00Z",
        "2025-01-13T00:00:00Z",
    ]


def test_next_is_strictly_after_the_base_and_truncated_to_the_second() -> None:
    every_minute = "0 * * * * *"
    assert fires(every_minute, "2025-01-01T12:00:00.000+00:00", 1) == ["2025-01-01T12:01:00Z"]
    assert fires(every_minute, "2025-01-01T11:59:59.500+00:00", 1) == ["2025-01-01T12:00:00Z"]
    assert fires("* * * * * *", "2025-01-01T11:59:59.500+00:00", 1) == ["2025-01-01T12:00:00Z"]


def test_autumn_fall_back_fires_a_daily_time_once() -> None:
    assert fires("30 1 * * *", "2025-11-01T12:00:00+00:00", 2, "America/New_York") == [
        "2025-11-02T05:30:00Z",
        "2025-11-03T06:30:00Z",
    ]


def test_autumn_fall_back_runs_the_repeated_hour_twice_for_minute_patterns() -> None:
    assert fires("*/30 * * * *", "2025-11-02T04:50:00+00:00", 5, "America/New_York") == [
        "2025-11-02T05:00:00Z",
        "2025-11-02T05:30:00Z",
        "2025-11-02T06:00:00Z",
        "2025-11-02T06:30:00Z",
        "2025-11-02T07:00:00Z",
    ]


def test_spring_forward_moves_a_nonexistent_time_one_hour_later_once() -> None:
    # 02:30 does not exist in Rome on 2025-03-30: it fires at 03:30 CEST (01:30Z).
    assert fires("30 2 * * *", "2025-03-29T12:00:00+00:00", 2, "Europe/Rome") == [
        "2025-03-30T01:30:00Z",
        "2025-03-31T00:30:00Z",
    ]
    assert fires("0 */1 * * *", "2025-03-30T00:10:00+00:00", 3, "Europe/Berlin") == [
        "2025-03-30T01:00:00Z",
        "2025-03-30T02:00:00Z",
        "2025-03-30T03:00:00Z",
    ]


def test_a_daily_9am_paris_schedule_fires_365_times_in_2026_at_9_local() -> None:
    paris = ZoneInfo("Europe/Paris")
    parsed = CronPattern.parse("0 9 * * *")
    current = ms("2026-01-01T00:00:00+01:00") - 1
    days = []
    while True:
        nxt = parsed.next_after(current, tz="Europe/Paris")
        assert nxt is not None
        local = datetime.fromtimestamp(nxt / 1000, paris)
        if local.year > 2026:
            break
        assert (local.hour, local.minute, local.second, local.microsecond) == (9, 0, 0, 0)
        days.append(local.date())
        current = nxt
    assert len(days) == 365
    assert days == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]


@pytest.mark.parametrize(
    ("pattern", "want"),
    [
        ("0 12 L * *", "2026-02-28T12:00:00Z"),  # last day of February
        ("0 12 * * 5L", "2026-02-27T12:00:00Z"),  # last Friday
        ("0 12 * * FRIL", "2026-02-27T12:00:00Z"),
        ("0 12 * * 1#2", "2026-02-09T12:00:00Z"),  # second Monday
        ("0 12 * * mon#2", "2026-02-09T12:00:00Z"),
        ("0 12 * * 0", "2026-02-01T12:00:00Z"),  # Sunday, twice spelled
        ("0 12 * * 7", "2026-02-01T12:00:00Z"),
        ("0 12 * feb SUN", "2026-02-01T12:00:00Z"),
        ("0 12 ? * sun", "2026-02-01T12:00:00Z"),
        ("0 12 * * mon-fri", "2026-02-02T12:00:00Z"),
        ("0 1-10/4 12 2 * *", "2026-02-02T12:01:00Z"),
        ("@yearly", "2027-01-01T00:00:00Z"),
        ("@monthly", "2026-02-01T00:00:00Z"),
        ("@weekly", "2026-02-01T00:00:00Z"),
        ("@daily", "2026-02-01T00:00:00Z"),
        ("@hourly", "2026-01-31T13:00:00Z"),
    ],
)
def test_special_characters_names_and_macros(pattern: str, want: str) -> None:
    assert fires(pattern, "2026-01-31T12:00:00+00:00", 1) == [want]


def test_leap_day_pattern_waits_for_the_next_leap_year() -> None:
    assert fires("0 0 29 2 *", "2025-03-01T00:00:00+00:00", 2) == [
        "2028-02-29T00:00:00Z",
        "2032-02-29T00:00:00Z",
    ]


def test_no_time_zone_means_utc() -> None:
    parsed = parse_cron("0 9 * * *")
    base = ms("2026-07-01T00:00:00+00:00")
    assert (
        parsed.next_after(base)
        == parsed.next_after(base, tz="UTC")
        == ms("2026-07-01T09:00:00+00:00")
    )


def test_end_ms_is_inclusive_and_none_past_it() -> None:
    parsed = parse_cron("0 9 * * *")
    base = ms("2026-07-01T00:00:00+00:00")
    fire = ms("2026-07-01T09:00:00+00:00")
    assert parsed.next_after(base, end_ms=fire) == fire
    assert parsed.next_after(base, end_ms=fire - 1) is None


def test_parse_returns_a_frozen_equal_value() -> None:
    a, b = parse_cron("0 9 * * 1-5"), parse_cron("0 9 * * MON-FRI")
    assert a.hours == b.hours == (9,) and a.weekdays == b.weekdays == (1, 2, 3, 4, 5)
    with pytest.raises(AttributeError):
        a.hours = (10,)  # type: ignore[misc]


@pytest.mark.parametrize("bad", [1.5, "12", True, None])
def test_next_after_refuses_a_base_that_is_not_int_ms(bad: object) -> None:
    with pytest.raises(InvalidOptionError, match="after_ms"):
        parse_cron("* * * * *").next_after(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 10**20])
def test_next_after_refuses_a_base_out_of_range(bad: int) -> None:
    with pytest.raises(InvalidOptionError, match="after_ms"):
        parse_cron("* * * * *").next_after(bad)


def test_next_after_refuses_a_bad_end() -> None:
    with pytest.raises(InvalidOptionError, match="end_ms"):
        parse_cron("* * * * *").next_after(0, end_ms="soon")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tz",
    [
        "Mars/Olympus",
        "europe/paris",
        "",
        "America",
        "../etc/passwd",
        "/etc/localtime",
        "right/UTC",
        "posix/Europe/Paris",
        "localtime",
        "Europe/Paris\x00",
    ],
)
def test_unknown_time_zones_are_refused_with_a_clear_error(tz: str) -> None:
    with pytest.raises(InvalidOptionError, match="time zone"):
        validate_timezone(tz)
    with pytest.raises(InvalidOptionError, match="time zone"):
        parse_cron("* * * * *").next_after(0, tz=tz)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "Pacific/Chatham", "Etc/GMT+5"])
def test_known_time_zones_pass(tz: str) -> None:
    assert validate_timezone(tz) == tz
