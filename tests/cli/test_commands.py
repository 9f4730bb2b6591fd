"""The ``dockyard`` command: each command's output, --json, exit codes and error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard import Queue

ROOT = Path(__file__).resolve().parents[2]


def dockyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dockyard ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def test_add_then_read_it_back_as_json(url: str) -> None:
    added = dockyard("add", "emails", "send", "--data", '{"to": "a@b.c"}', "--attempts", "3",
                     "--url", url, "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    job_id = json.loads(added.stdout)["id"]
    shown = dockyard("job", "emails", job_id, "--url", url, "--json")
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    assert (job["name"], job["state"], job["data"]) == ("send", "waiting", {"to": "a@b.c"})
    listed = json.loads(dockyard("jobs", "emails", "--url", url, "--json").stdout)
    assert [j["id"] for j in listed] == [job_id]
    stats = json.loads(dockyard("stats", "--url", url, "--json").stdout)
    assert stats["emails"]["waiting"] == 1 and stats["emails"]["is_paused"] is False


def test_stats_prints_a_table_of_every_queue(url: str) -> None:
    dockyard("add", "a", "x", "--url", url)
    dockyard("add", "b", "y", "--url", url, "--delay", "60")
    shown = dockyard("stats", "--url", url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.split("│")[0].strip() == "a" for line in lines if "│" in line)
    assert any("b" in line and "1" in line for line in lines)


def test_bulk_add_from_a_file_of_json_lines(url: str, tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps({"data": {"i": i}}) for i in range(2500)) + "\n")
    added = dockyard("add", "bulk", "n", "--file", str(path), "--url", url, "--json")
    assert added.returncode == 0, added.stderr
    assert len(json.loads(added.stdout)["ids"]) == 2500


def test_pause_resume_drain_clean_and_retry(url: str) -> None:
    assert dockyard("pause", "q", "--url", url).returncode == 0
    stats = json.loads(dockyard("stats", "q", "--url", url, "--json").stdout)
    assert stats["q"]["is_paused"] is True
    assert dockyard("resume", "q", "--url", url).returncode == 0
    for _ in range(3):
        dockyard("add", "q", "x", "--url", url)
    drained = dockyard("drain", "q", "--url", url, "--json")
    assert json.loads(drained.stdout) == {"removed": 3}
    cleaned = dockyard("clean", "q", "--state", "completed", "--url", url, "--json")
    assert json.loads(cleaned.stdout) == {"removed": []}
    retried = dockyard("retry", "q", "--url", url, "--json")
    assert json.loads(retried.stdout) == {"moved": 0}


async def test_retry_moves_failed_jobs_back(url: str) -> None:
    async def boom(job: object) -> None:
        raise RuntimeError("no")

    from dockyard import Worker

    async with Queue("q", url=url) as queue:
        jobs = [await queue.add("x", {}) for _ in range(3)]
        async with Worker("q", boom, url=url):
            for job in jobs:
                await _wait_failed(job)
    retried = dockyard("retry", "q", "--url", url, "--json")
    assert json.loads(retried.stdout) == {"moved": 3}
    async with Queue("q", url=url) as queue:
        assert (await queue.get_job_counts("waiting", "failed")) == {"waiting": 3, "failed": 0}


async def _wait_failed(job: object) -> None:
    from dockyard import JobFailed

    with pytest.raises(JobFailed):
        await job.wait_until_finished(timeout=10)  # type: ignore[attr-defined]


def test_bad_json_data_is_a_usage_error_and_adds_nothing(url: str) -> None:
    done = dockyard("add", "q", "x", "--data", "{nope", "--url", url)
    assert done.returncode == 2
    assert "--data is not valid JSON" in done.stderr and "Traceback" not in done.stderr
    stats = json.loads(dockyard("stats", "--url", url, "--json").stdout)
    assert stats == {}


def test_an_unreachable_redis_says_so_with_exit_code_3() -> None:
    done = dockyard("stats", "q", "--url", "redis://127.0.0.1:1/0")
    assert done.returncode == 3
    assert "cannot reach redis://127.0.0.1:1/0: connection refused; is it running?" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_job_is_exit_code_1(url: str) -> None:
    done = dockyard("job", "q", "404", "--url", url)
    assert done.returncode == 1 and "no job 404 in queue q" in done.stderr


def test_a_bad_handler_name_is_a_usage_error(url: str) -> None:
    for target in ("nocolon", "tests.cli.handlers:missing", "no.such.module:x"):
        done = dockyard("worker", target, "--queue", "q", "--url", url)
        assert done.returncode == 2, (target, done.stderr)
        assert "Traceback" not in done.stderr


def test_an_invalid_option_value_is_refused(url: str) -> None:
    done = dockyard("add", "q", "x", "--priority", "-4", "--url", url)
    assert done.returncode == 2 and "priority" in done.stderr
    assert json.loads(dockyard("stats", "--url", url, "--json").stdout) == {}


async def test_retry_from_dlq_redrives_dead_letters(url: str) -> None:
    from dockyard import JobFailed, Worker

    async def boom(job: object) -> None:
        raise RuntimeError("no")

    async with Queue("q", url=url) as queue:
        job = await queue.add("x", {"k": 1}, dead_letter_queue="dead")
        async with Worker("q", boom, url=url):
            with pytest.raises(JobFailed):
                await job.wait_until_finished(timeout=10)
    done = dockyard("retry", "dead", "--from-dlq", "--url", url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"moved": 1}
    async with Queue("q", url=url) as queue:
        assert [j.data for j in await queue.get_jobs("waiting")] == [{"k": 1}]
