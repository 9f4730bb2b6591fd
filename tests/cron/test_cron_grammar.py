"""Parsing cron patterns: bad input gets an InvalidOptionError naming the field and the reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.cron import CronPattern, validate_timezone
from dockyard.errors import InvalidOptionError

from .strategies import ZONES, cron_patterns, junk_patterns


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("0 9 * *", "expected 5 fields"),
        ("* * * * * * *", "got 7"),
        ("", "got 0"),
        ("@midnight", "unknown macro"),
        ("@annually", "unknown macro"),
        ("60 * * * *", "minute field '60': 60 is outside 0-59"),
        ("0 24 * * *", "hour field '24': 24 is outside 0-23"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("H * * * *", "hashed values"),
        ("? * * * *", "'?' is only allowed"),
        ("0 0 * MON *", "month field 'MON'"),
        ("0 0 * * JAN", "day-of-week field 'JAN'"),
        ("0 0 * * L", "'L' follows one weekday"),
        ("0 0 L-5 * *", "'L' (the last day) stands alone"),
        ("0 0 * * 1#6", "1 to 5"),
        ("0 0 * * 1,2#2", "'#' takes one weekday"),
        ("0 0 * * 0,7", "0 and 7 are both Sunday"),
        ("0 0-23,5 * * *", "value 5 appears more than once"),
        ("0 0 30 2 *", "day 30 never occurs in month 2"),
        ("0 0 31 4,6 *", "never fires"),
        ("0 0 1 * 5#3", "read '#' with day-of-month '1' differently"),
        ("0 0 1-31 * 1", "covers a whole month"),
        ("0 0 * * 2-7/2", "adds Sunday"),
        ("0 0 * * *", None),
    ],
)
def test_bad_patterns_name_the_field_and_the_reason(pattern: str, message: str | None) -> None:
    if message is None:
        CronPattern.parse(pattern)
        return
    with pytest.raises(InvalidOptionError, match="invalid cron pattern") as info:
        CronPattern.parse(pattern)
    assert message in str(info.value)


def test_a_non_string_pattern_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="string"):
        CronPattern.parse(5)  # type: ignore[arg-type]


def test_an_overlong_pattern_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="longer than 1024"):
        CronPattern.parse("0," * 600 + "1 * * * *")


def _parse_or_refuse(text: str) -> CronPattern | None:
    try:
        return CronPattern.parse(text)
    except InvalidOptionError:
        return None


@settings(max_examples=300)
@given(text=junk_patterns)
def test_random_text_parses_or_raises_invalid_option_error(text: str) -> None:
    _parse_or_refuse(text)


@settings(max_examples=300)
@given(
    text=cron_patterns,
    base=st.integers(1_700_000_000_000, 1_900_000_000_000),
    tz=st.sampled_from([None, *ZONES]),
)
def test_a_parsed_pattern_always_answers_a_time_after_the_base(
    text: str, base: int, tz: str | None
) -> None:
    parsed = _parse_or_refuse(text)
    if parsed is None:
        return
    nxt = parsed.next_after(base, tz=tz)
    assert nxt is not None  # every accepted pattern fires within 400 years
    assert nxt > base and nxt % 1000 == 0


@settings(max_examples=200)
@given(tz=st.one_of(st.text(max_size=30), st.sampled_from(ZONES)))
def test_random_time_zones_validate_or_raise_invalid_option_error(tz: str) -> None:
    try:
        assert validate_timezone(tz) == tz
    except InvalidOptionError:
        assert tz not in ZONES
