"""Ask the real cron-parser packages (via tests/cron/make_table.mjs eval) about ad-hoc cases."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "make_table.mjs"
NODE_MODULES = HERE.parent / "interop" / "node_modules"


class NodeCronError(RuntimeError):
    """Node or the BullMQ packages are missing, or the script failed."""


def evaluate(cases: list[dict[str, Any]], timeout: float = 300.0) -> list[dict[str, Any]]:
    """One result per case: {"v4": {"ok", "seq"|"error"}, "v5": {...}} (see make_table.mjs)."""
    node = shutil.which("node")
    if node is None:
        raise NodeCronError("`node` is not on PATH: run `make node` (it installs Node.js 20+)")
    for alias in ("bullmq5", "bullmq6"):
        if not (NODE_MODULES / alias / "package.json").is_file():
            raise NodeCronError(f"{alias} is not installed in {NODE_MODULES}: run `make node`")
    proc = subprocess.run(
        [node, str(SCRIPT), "eval"],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise NodeCronError(f"make_table.mjs eval failed ({proc.returncode}):\n{proc.stderr}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results
