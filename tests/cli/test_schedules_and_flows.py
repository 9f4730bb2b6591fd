"""``dockyard flow``, ``schedules`` and ``schedule add|remove``: real commands on a real
redis-server; flows made by FlowProducer, schedulers by the command and the Queue API."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

from dockyard import Queue

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


def test_flow_shows_a_lone_job_on_the_embedded_store(tmp_path: Path) -> None:
    """SQLite keeps flows too: a job without parent or children is a tree of one."""
    url = f"sqlite:///{tmp_path}/flows.db"
    assert dockyard("add", "renders", "x", "--job-id", "j1", "--url", url).returncode == 0
    shown = dockyard("flow", "renders", "j1", "--url", url, "--json")
    assert shown.returncode == 0, shown.stderr
    tree = json.loads(shown.stdout)
    assert (tree["id"], tree["queue"], tree["state"], tree["children"]) == (
        "j1",
        "renders",
        "waiting",
        [],
    )


def _upsert_every(url: str, queue: str, scheduler_id: str, every: float) -> None:
    async def upsert() -> None:
        async with Queue(queue, url=url) as q:
            await q.upsert_job_scheduler(scheduler_id, every=every,
                                         template={"name": "tick", "data": {"n": 1}})  # fmt: skip

    asyncio.run(upsert())


def test_schedule_add_then_list_and_remove(redis_url: str) -> None:
    added = dockyard("schedule", "add", "mail", "digest", "--cron", "0 9 * * 1", "--tz",
                     "Europe/Paris", "--limit", "5", "--name", "send [b]digest[/b]", "--data",
                     '{"to": "all"}', "--opts", '{"attempts": 3}', "--url", redis_url,
                     "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    entry = json.loads(added.stdout)
    assert entry["job_id"].startswith("repeat:digest:")
    assert (entry["pattern"], entry["tz"], entry["limit"], entry["iterations"]) == (
        "0 9 * * 1", "Europe/Paris", 5, 1)  # fmt: skip
    assert entry["template"]["data"] == {"to": "all"}
    assert entry["template"]["opts"]["attempts"] == 3
    assert entry["next_run"] > time.time()
    _upsert_every(redis_url, "other", "tick", 60)

    listed = json.loads(dockyard("schedules", "--url", redis_url, "--json").stdout)
    assert sorted((s["queue"], s["id"]) for s in listed) == [("mail", "digest"),
                                                             ("other", "tick")]  # fmt: skip
    table = dockyard("schedules", "mail", "other", "--url", redis_url)
    assert table.returncode == 0, table.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")]
            for line in table.stdout.splitlines() if line.count("│") == 6}  # fmt: skip
    assert rows["digest"][0] == "mail" and rows["digest"][2:4] == ["0 9 * * 1", "Europe/Paris"]
    assert "UTC (in " in rows["digest"][4] and rows["digest"][5:] == ["1", "5"]
    assert rows["tick"][2:4] == ["every 60s", "-"] and rows["tick"][6] == "-"

    removed = dockyard("schedule", "remove", "mail", "digest", "--url", redis_url)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == "removed scheduler digest of mail"
    again = dockyard("schedule", "remove", "mail", "digest", "--url", redis_url)
    assert again.returncode == 1
    assert again.stderr.splitlines()[-1] == "error: no scheduler digest in queue mail"
    left = json.loads(dockyard("schedules", "--url", redis_url, "--json").stdout)
    assert [s["id"] for s in left] == ["tick"]


def test_schedule_add_refuses_bad_input_and_writes_nothing(redis_url: str) -> None:
    bad = [
        ("--every", "5", "--cron", "* * * * *"),  # both
        (),  # neither
        ("--cron", "not a pattern"),
        ("--every", "0"),
        ("--every", "5", "--tz", "Europe/Paris"),  # tz is for patterns
        ("--cron", "* * * * *", "--tz", "Mars/Olympus"),
        ("--every", "5", "--data", "{not json"),
        ("--every", "5", "--opts", "[1, 2]"),
        ("--every", "5", "--opts", '{"job_id": "mine"}'),
        ("--every", "5", "--start", "next tuesday"),
        ("--every", "5", "--limit", "-1"),
    ]
    for args in bad:
        shown = dockyard("schedule", "add", "mail", "s1", *args, "--url", redis_url)
        assert shown.returncode == 2, (args, shown.stderr)
        last = shown.stderr.splitlines()[-1]
        assert last.startswith("error: ") and "Traceback" not in shown.stderr, args
    assert json.loads(dockyard("schedules", "mail", "--url", redis_url, "--json").stdout) == []


def test_schedule_start_takes_an_iso_date_time(redis_url: str) -> None:
    added = dockyard("schedule", "add", "mail", "later", "--every", "60", "--start",
                     "2031-01-02T03:04:05+00:00", "--url", redis_url, "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    entry = json.loads(added.stdout)
    start = 1925089445.0  # 2031-01-02 03:04:05 UTC
    assert entry["start"] == start and entry["next_run"] >= start


def test_schedules_work_on_the_embedded_store_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    added = dockyard("schedule", "add", "mail", "tick", "--every", "5", "--url", url, "--json")
    assert added.returncode == 0, added.stderr
    listed = json.loads(dockyard("schedules", "mail", "--url", url, "--json").stdout)
    assert [entry["id"] for entry in listed] == ["tick"]
    assert dockyard("schedule", "remove", "mail", "tick", "--url", url).returncode == 0
    assert json.loads(dockyard("schedules", "mail", "--url", url, "--json").stdout) == []


def test_schedules_of_an_unreachable_store_exit_3() -> None:
    shown = dockyard("schedules", "mail", "--url", _closed_port_url())
    assert shown.returncode == 3
    assert shown.stderr.splitlines()[-1].startswith("error: cannot reach")
