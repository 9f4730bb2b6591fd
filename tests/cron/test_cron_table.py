"""dockyard.cron against the committed cron-parser table (tests/cron/make_table.mjs made it).

Every sequence is replayed the way a BullMQ worker advances a scheduler: each next time from the
previous one. The table holds cron-parser 4.9.0's answers (BullMQ 5.62); where 5.10.3 (BullMQ 6.7)
answers otherwise it is listed under "differences" and dockyard follows 4.9.0.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.cron import CronPattern
from dockyard.errors import InvalidOptionError

from .table import Vector, load_table, vectors

TABLE = load_table()
BY_ZONE: dict[str, list[Vector]] = defaultdict(list)
for _vector in vectors(TABLE):
    BY_ZONE[_vector.tz].append(_vector)


def _iso(ms: int | None) -> str:
    return "none" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def replay(pattern: str, tz: str, base: int, steps: int, end: int | None = None) -> list[int]:
    """Up to ``steps`` fires, each computed from the previous one, stopping at the first None."""
    parsed = CronPattern.parse(pattern)
    out: list[int] = []
    current = base
    for _ in range(steps):
        nxt = parsed.next_after(current, tz=tz, end_ms=end)
        if nxt is None:
            break
        out.append(nxt)
        current = nxt
    return out


def test_the_table_comes_from_the_cron_parser_versions_bullmq_uses() -> None:
    assert TABLE["cron_parser"] == {"bullmq5": "4.9.0", "bullmq6": "5.10.3"}
    assert sum(len(v) for v in BY_ZONE.values()) > 3000
    assert set(BY_ZONE) == set(TABLE["zones"])


@pytest.mark.parametrize("tz", sorted(BY_ZONE))
def test_next_after_reproduces_every_cron_parser_sequence(tz: str) -> None:
    wrong = []
    for vector in BY_ZONE[tz]:
        got = replay(vector.pattern, tz, vector.base, len(vector.fires))
        if tuple(got) != vector.fires:
            wrong.append(
                f"{vector.pattern!r} from {_iso(vector.base)}: "
                f"want {[_iso(f) for f in vector.fires]}, got {[_iso(g) for g in got]}"
            )
    assert not wrong, f"{len(wrong)} of {len(BY_ZONE[tz])} sequences differ:\n" + "\n".join(
        wrong[:20]
    )


def test_where_the_two_cron_parsers_differ_dockyard_follows_4_9() -> None:
    differences: list[dict[str, Any]] = TABLE["differences"]
    # Only the zones whose clock change is not one whole hour at a whole hour split them.
    assert {d["tz"] for d in differences} <= {"Australia/Lord_Howe", "Pacific/Chatham"}
    for d in differences:
        got = replay(d["pattern"], d["tz"], d["base"], len(d["v4"]))
        assert got == d["v4"], (d["pattern"], d["tz"], _iso(d["base"]))
        assert got != d["v5"]


@pytest.mark.parametrize("case", TABLE["bounded"], ids=lambda c: f"{c['pattern']}@{c['end']}")
def test_end_ms_stops_where_cron_parser_end_date_stops(case: dict[str, Any]) -> None:
    got = replay(case["pattern"], case["tz"], case["base"], 6, end=case["end"])
    assert got == case["v4"] == case["v5"]
    assert all(fire <= case["end"] for fire in got)


# Patterns both cron-parsers accept that dockyard refuses on purpose (see dockyard.cron).
REFUSED_BY_DOCKYARD_ONLY = {
    "": "empty: cron-parser reads it as every minute",
    "5": "fewer than 5 fields",
    "0 9 * *": "fewer than 5 fields",
    "0 0 5L * *": "'5L' in day-of-month means 'L'",
    "*-5 * * * *": "cron-parser reads '*-5' as '*'",
    "1-2-3 * * * *": "cron-parser reads '1-2-3' as '1-2'",
    "0 0 * 1JAN *": "cron-parser reads '1JAN' as 11",
    "0 0 * * 12L": "cron-parser reads '12L' as the last Monday",
    "0 0 * * *#2": "'#' without a weekday",
    "0 0 1-31 * 1": "4.9 reads 1-31 as '*' (Mondays only), 5.x as a restriction (every day)",
    "0 0 15 * 1-7": "4.9 reads 1-7 as '*' (the 15th only), 5.x as every day",
    "0 0 * * 1-7/4": "4.9 adds Sunday, 5.x does not",
    "0 0 * * 2-7/2": "4.9 adds Sunday, 5.x does not",
    "0 0 1 * 5#3": "4.9: the third Friday only; 5.x: the 1st or the third Friday",
}


def _accepted(pattern: str) -> bool:
    try:
        CronPattern.parse(pattern)
    except InvalidOptionError:
        return False
    return True


def test_dockyard_refuses_every_pattern_either_cron_parser_refuses() -> None:
    probes = TABLE["parse_probes"]
    for probe in probes:
        if probe["v4"] != "ok" or probe["v5"] != "ok":
            assert not _accepted(probe["pattern"]), probe
    both = {p["pattern"] for p in probes if p["v4"] == "ok" and p["v5"] == "ok"}
    refused = {p for p in both if not _accepted(p)}
    assert refused == set(REFUSED_BY_DOCKYARD_ONLY)
    assert both - refused == {
        "0 0 * * MON#2",
        "0 0 ? * ?",
        "0 0 * * MONL",
        "0 0 L,15 * *",
        "0 0 * * 0-7",
        "0 0 * * */1",
        "0\t0 * * *",
    }
