"""``dockyard flow``, ``schedules`` and ``schedule add|remove``: real commands on a real
redis-server; flows made by FlowProducer, schedulers by the command and the Queue API."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from ..flowtrees import ROOT_NAME, build
from .test_commands import dockyard


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_flow_prints_the_tree_with_each_jobs_state(redis_url: str) -> None:
    build(redis_url)
    shown = dockyard("flow", "renders", "r1", "--url", redis_url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    # The root's name is shown as given, not read as rich markup.
    assert lines[0] == f"{ROOT_NAME} renders:r1 waiting-children"
    assert any(line.endswith("frame frames:f1 completed") for line in lines)
    f2 = next(i for i, line in enumerate(lines) if "frames:f2" in line)
    assert lines[f2].endswith("waiting-children")
    assert lines[f2 + 1].endswith("asset assets:a1 waiting")
    assert lines[f2 + 1].index("asset") > lines[f2].index("frame")  # one level deeper
    assert shown.stderr.splitlines() == [f"store: {redis_url} (from --url)"]


def test_flow_json_has_states_children_and_the_parent(redis_url: str) -> None:
    build(redis_url)
    shown = dockyard("flow", "frames", "f2", "--url", redis_url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    assert json.loads(shown.stdout) == {
        "id": "f2", "queue": "frames", "name": "frame", "state": "waiting-children",
        "parent": {"id": "r1", "queue": "renders"},
        "children": [{"id": "a1", "queue": "assets", "name": "asset", "state": "waiting",
                      "children": []}],
    }  # fmt: skip
    root = json.loads(dockyard("flow", "renders", "r1", "--depth", "1", "--url", redis_url,
                               "--json").stdout)  # fmt: skip
    assert (root["state"], root["children"], root["parent"]) == ("waiting-children", [], None)


def test_flow_errors_are_one_line_with_their_exit_code(redis_url: str, tmp_path: Path) -> None:
    missing = dockyard("flow", "renders", "nope", "--url", redis_url)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.splitlines()[-1] == "error: no job nope in queue renders"
    assert dockyard("flow", "renders", "r1", "--depth", "0", "--url", redis_url).returncode == 2
    reserved = dockyard("flow", "renders", "meta", "--url", redis_url)
    assert reserved.returncode == 2 and "Traceback" not in reserved.stderr
    down = dockyard("flow", "renders", "r1", "--url", _closed_port_url())
    assert down.returncode == 3 and down.stderr.splitlines()[-1].startswith("error: cannot reach")


def test_flow_on_a_store_without_flows_says_so(tmp_path: Path) -> None:
    """SQLite keeps no flows yet: a clear line, exit 1, not a traceback."""
    url = f"sqlite:///{tmp_path}/flows.db"
    assert dockyard("add", "renders", "x", "--job-id", "j1", "--url", url).returncode == 0
    shown = dockyard("flow", "renders", "j1", "--url", url)
    assert shown.returncode == 1, shown.stderr
    assert shown.stderr.splitlines()[-1] == (
        "error: flows (parent/child jobs) are not available on the sqlite store yet; use a "
        "Redis store (redis://...)"
    )
