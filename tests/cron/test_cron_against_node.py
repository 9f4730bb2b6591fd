"""dockyard.cron against cron-parser run freshly in Node, on random patterns, zones and bases.

Beyond the committed table: Hypothesis draws a few dozen cases per run; Node answers with the
cron-parser copies of BullMQ 5.62 (4.9.0) and 6.7 (5.10.3). A pattern dockyard accepts must be
accepted by both and give cron-parser 4.9.0's sequence; one either refuses, dockyard refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dockyard.cron import CronPattern
from dockyard.errors import InvalidOptionError

from .node_cron import evaluate
from .strategies import ZONES, cron_patterns
from .table import load_table

CHANGES: dict[str, list[int]] = load_table()["changes"]
STEPS = 3


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    tz = draw(st.sampled_from(ZONES))
    near = CHANGES.get(tz) or [1_767_225_600_000]  # 2026-01-01 for zones without changes
    base = draw(
        st.one_of(
            st.integers(1_735_689_600_000, 1_861_920_000_000),  # 2025 .. 2029
            st.builds(
                lambda t, d: t + d,
                st.sampled_from(near),
                st.integers(-30 * 3_600_000, 3 * 3_600_000),
            ),
        )
    )
    return {"pattern": draw(cron_patterns), "tz": tz, "base": base}


def _accepts(pattern: str) -> bool:
    try:
        CronPattern.parse(pattern)
    except InvalidOptionError:
        return False
    return True


def _replay(case: dict[str, Any]) -> list[int]:
    parsed = CronPattern.parse(case["pattern"])
    out: list[int] = []
    current = case["base"]
    for _ in range(STEPS):
        nxt = parsed.next_after(current, tz=case["tz"])
        if nxt is None:
            break
        out.append(nxt)
        current = nxt
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@pytest.mark.interop
@settings(
    max_examples=2,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    accepted=st.lists(cases().filter(lambda c: _accepts(c["pattern"])), min_size=16, max_size=16),
    anything=st.lists(cases(), min_size=8, max_size=8),
)
def test_random_patterns_give_cron_parser_4_9_sequences(
    accepted: list[dict[str, Any]], anything: list[dict[str, Any]]
) -> None:
    batch = accepted + anything
    requests = [
        {**case, "steps": STEPS if _accepts(case["pattern"]) else 0, "v5_steps": 0}
        for case in batch
    ]
    problems = []
    for case, answer in zip(batch, evaluate(requests), strict=True):
        v4, v5 = answer["v4"], answer["v5"]
        label = f"{case['pattern']!r} in {case['tz']} from {_iso(case['base'])}"
        if not _accepts(case["pattern"]):
            continue
        if not (v4["ok"] and v5["ok"]):
            problems.append(f"{label}: dockyard accepts, cron-parser refuses: {v4} {v5}")
            continue
        got = _replay(case)
        if got != v4["seq"]:
            problems.append(
                f"{label}: want {[_iso(x) for x in v4['seq']]}, got {[_iso(x) for x in got]}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.interop
@settings(max_examples=1, phases=[Phase.explicit, Phase.generate])
@given(patterns=st.lists(cron_patterns, min_size=40, max_size=40))
def test_patterns_either_cron_parser_refuses_are_refused(patterns: list[str]) -> None:
    requests = [{"pattern": p, "tz": "UTC", "base": 0, "steps": 0} for p in patterns]
    for pattern, answer in zip(patterns, evaluate(requests), strict=True):
        if not (answer["v4"]["ok"] and answer["v5"]["ok"]):
            assert not _accepts(pattern), (pattern, answer)
