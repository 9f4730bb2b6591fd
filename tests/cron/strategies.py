"""Hypothesis strategies for cron patterns: mostly well-formed, sometimes not, and raw junk."""

from __future__ import annotations

from hypothesis import strategies as st

MONTHS = ["JAN", "feb", "Mar", "APR", "may", "JUN", "jul", "AUG", "sep", "OCT", "nov", "DEC"]
WEEKDAYS = ["SUN", "mon", "Tue", "WED", "thu", "FRI", "sat"]

ZONES = [
    "UTC",
    "Europe/Paris",
    "Europe/Rome",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
]


def _number(low: int, high: int, names: list[str] | None) -> st.SearchStrategy[str]:
    plain = st.integers(low, high).map(str)
    return plain if names is None else st.one_of(plain, st.sampled_from(names))


def _item(low: int, high: int, names: list[str] | None) -> st.SearchStrategy[str]:
    value = _number(low, high, names)
    step = st.integers(1, high - low + 2).map(str)
    bounds = st.tuples(st.integers(low, high), st.integers(low, high)).map(sorted)
    return st.one_of(
        st.just("*"),
        value,
        st.builds(lambda s: f"*/{s}", step),
        st.builds(lambda v, s: f"{v}/{s}", value, step),
        bounds.map(lambda b: f"{b[0]}-{b[1]}"),
        st.builds(lambda b, s: f"{b[0]}-{b[1]}/{s}", bounds, step),
    )


def field(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    """Mostly one item, else a list of 2-3 (duplicates and odd ranges happen on purpose)."""
    item = _item(low, high, names)
    return st.one_of(item, item, st.lists(item, min_size=2, max_size=3).map(",".join))


def day_of_month() -> st.SearchStrategy[str]:
    return st.one_of(
        field(1, 31),
        st.sampled_from(["*", "?", "L", "1,L", "L,15"]),
        st.sampled_from(["*", "?"]),
    )


def day_of_week() -> st.SearchStrategy[str]:
    weekday = st.one_of(st.integers(0, 7).map(str), st.sampled_from(WEEKDAYS))
    return st.one_of(
        field(0, 7, WEEKDAYS),
        st.sampled_from(["*", "?"]),
        st.builds(lambda w, n: f"{w}#{n}", weekday, st.integers(1, 5)),
        st.builds(lambda w: f"{w}L", weekday),
        st.builds(lambda a, b: f"{a}L,{b}", weekday, weekday),
    )


_SECONDS = st.one_of(field(0, 59), st.just("0"))
_MINUTES = field(0, 59)
_HOURS = st.one_of(field(0, 23), st.sampled_from(["*", "1", "2", "3", "1-3", "0,2"]))
_DAYS = st.one_of(day_of_month(), st.just("*"))
_MONTHS = st.one_of(field(1, 12, MONTHS), st.just("*"), st.just("*"))
_WEEKDAYS = st.one_of(day_of_week(), st.just("*"), st.just("*"))

cron_patterns = st.builds(
    lambda sec, six, fields: " ".join([sec, *fields] if six else fields),
    _SECONDS,
    st.booleans(),
    st.tuples(_MINUTES, _HOURS, _DAYS, _MONTHS, _WEEKDAYS),
)
"""A 5- or 6-field pattern; many are valid, some break a rule cron-parser checks."""


CRON_ALPHABET = "0123456789*/,-?#LHWl@ \tJANFEBMONSUNjanmon"

junk_patterns = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=CRON_ALPHABET, max_size=40),
    st.lists(st.text(alphabet="0123456789*/,-?#LH", max_size=6), min_size=0, max_size=8).map(
        " ".join
    ),
)
