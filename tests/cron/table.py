"""Read tests/cron/cron_table.json, written by make_table.mjs from the real cron-parser packages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).resolve().parent / "cron_table.json"


@dataclass(frozen=True, kw_only=True)
class Vector:
    """One BullMQ-style run: fires of ``pattern`` in ``tz``, each computed from the previous one."""

    pattern: str
    tz: str
    base: int
    fires: tuple[int, ...]


def load_table() -> dict[str, Any]:
    """The whole table as JSON."""
    table: dict[str, Any] = json.loads(TABLE_PATH.read_text())
    return table


def vectors(table: dict[str, Any]) -> list[Vector]:
    """The cron-parser 4.9.0 sequences of the table, decoded to absolute epoch ms."""
    out = []
    for pattern_index, zone_index, base, *encoded in table["cases"]:
        fires: list[int] = []
        if encoded:
            fires.append(encoded[0])
            for gap_seconds in encoded[1:]:
                fires.append(fires[-1] + round(gap_seconds * 1000))
        out.append(
            Vector(
                pattern=table["patterns"][pattern_index],
                tz=table["zones"][zone_index],
                base=base,
                fires=tuple(fires),
            )
        )
    return out
