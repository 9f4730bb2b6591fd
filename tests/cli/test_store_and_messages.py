"""The command's store and its words: one default store for every command and the library,
a line naming the store, one-line errors that fit their cause, and output that is never cut
(field report #13, #19, #20, #22, #25)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import redis
from dockyard import Job, Queue
from dockyard.backends import DEFAULT_URL
from dockyard.cli import main
from dockyard.cliout import UserError
from dockyard.devserver import RedisServer
from dockyard.durations import MAX_SECONDS
from dockyard.options import MAX_PRIORITY
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
README_EXAMPLE = """
import asyncio
from dockyard import Job, Queue, Worker

URL = "sqlite:///jobs.db"

async def send(job: Job) -> dict:
    await job.log("sending")
    return {"ok": True}

async def main() -> None:
    async with Queue("emails", url=URL) as queue:
        job = await queue.add("send", {"to": "a@b.c"})
        async with Worker("emails", send, url=URL):
            print(await job.wait_until_finished(timeout=10))

asyncio.run(main())
"""


def _env(extra: dict[str, str] | None, columns: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKYARD_URL", "COLUMNS")}
    if columns:
        env["COLUMNS"] = "200"
    return {**env, **(extra or {})}


def dockyard(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, columns: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dockyard ARGS`` in ``cwd``, without any DOCKYARD_URL of ours."""
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=_env(env, columns),
    )  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- one default store (#20) -------------------------------------------------------------


async def _library_default_sees_the_job_and_adds_one() -> None:
    async with Queue("emails") as queue:  # no url: the default store
        assert await queue.get_job_counts("waiting") == {"waiting": 1}
        await queue.add("send", {"to": "b@c.d"})


def test_add_the_library_and_serve_share_one_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Field report #20: `dockyard add`, Queue() and `dockyard serve`, all without a URL,
    look at the same store: ./dockyard.db."""
    added = dockyard("add", "emails", "send", "--data", '{"to": "a@b.c"}', cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert DEFAULT_URL == "sqlite:///dockyard.db" and (tmp_path / "dockyard.db").exists()
    assert f"store: {DEFAULT_URL} ({tmp_path / 'dockyard.db'}), the default" in added.stderr

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKYARD_URL", raising=False)
    asyncio.run(_library_default_sees_the_job_and_adds_one())

    stats = json.loads(dockyard("stats", "--json", cwd=tmp_path).stdout)
    assert stats["emails"]["waiting"] == 2

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(port)],
        cwd=tmp_path, env=_env(None, True), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{port}/api/v1"

        def up() -> bool:
            try:
                return httpx.get(api + "/queues", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=20, what="dockyard serve answering")
        listed = httpx.get(api + "/queues", timeout=5).json()
        assert "emails" in json.dumps(listed)
        job = httpx.get(api + "/queues/emails/jobs/2", timeout=5).json()
        assert job["data"] == {"to": "b@c.d"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.stderr is not None
    assert "store: sqlite:///dockyard.db" in proc.stderr.read()


def test_each_command_names_its_store_and_why_but_json_stays_pure(tmp_path: Path) -> None:
    """Field report #20: one line on stderr says which store, and where the URL came from;
    with --json, stdout is JSON alone and no store line is printed."""
    url = f"sqlite:///{tmp_path}/given.db"
    given = dockyard("add", "q", "x", "--url", url)
    assert given.returncode == 0 and f"store: {url} (from --url)" in given.stderr
    from_env = dockyard("stats", env={"DOCKYARD_URL": url})
    assert f"store: {url} (from DOCKYARD_URL)" in from_env.stderr
    for args in (("add", "q", "y"), ("stats",), ("jobs", "q"), ("job", "q", "1"), ("pause", "q"),
                 ("resume", "q"), ("drain", "q"), ("clean", "q"), ("retry", "q")):  # fmt: skip
        plain = dockyard(*args, "--url", url)
        assert plain.returncode == 0, (args, plain.stderr)
        assert plain.stderr.splitlines()[0].startswith("store: "), args
        quiet = dockyard(*args, "--url", url, "--json")
        assert quiet.returncode == 0, (args, quiet.stderr)
        json.loads(quiet.stdout)  # nothing but JSON on stdout
        assert "store:" not in quiet.stderr, args


def test_a_password_in_the_url_is_not_printed(tmp_path: Path) -> None:
    """Field report #20: the store line names the store, never its password."""
    done = dockyard("stats", "q", "--url", "redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in done.stderr and "redis://:***@127.0.0.1:1/0" in done.stderr


def test_the_demo_runs_on_the_default_store_and_its_jobs_stay(tmp_path: Path) -> None:
    """Field report #20 and #25: `dockyard stats` after `dockyard demo` shows the demo's
    jobs; a second run starts from an empty demo queue; job 2 is marked lifo; a clean exit
    leaves no -wal or -shm file."""
    for _ in range(2):
        demo = dockyard("demo", cwd=tmp_path)
        assert demo.returncode == 0, demo.stderr
        stats = json.loads(dockyard("stats", "--json", cwd=tmp_path).stdout)
        counts = stats["dockyard-demo"]
        assert (counts["completed"], counts["failed"], counts["waiting"]) == (6, 2, 0)
    row = next(line for line in demo.stdout.splitlines() if line.split()[:2] == ["2", "email"])
    assert "lifo" in row
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dockyard.db"]


def test_a_clean_exit_of_the_readme_example_leaves_no_wal_or_shm(tmp_path: Path) -> None:
    """Field report #25: after the SQLite example closes its queue and worker, only
    jobs.db remains (the last connection to close removes -wal and -shm)."""
    done = subprocess.run([sys.executable, "-c", README_EXAMPLE], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "{'ok': True}" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.db"]


def test_a_worker_names_its_store(tmp_path: Path) -> None:
    """Field report #20: `dockyard worker` logs the store it works on, once."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "worker", "tests.cli.handlers:record", "--queue", "q"],
        cwd=ROOT, env=_env({"DOCKYARD_URL": f"sqlite:///{tmp_path}/w.db",
                            "DOCKYARD_TEST_LOG": str(tmp_path / "log")}, True),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("worker on queue" in line for line in lines), timeout=20,
                   what="the worker to start")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    reader.join(5)
    named = [line for line in lines if "store: " in line]
    assert len(named) == 1 and f"sqlite:///{tmp_path}/w.db (from DOCKYARD_URL)" in named[0]


# -- options (#19) ------------------------------------------------------------------------


def test_attempts_zero_is_refused_not_turned_into_one(tmp_path: Path) -> None:
    """Field report #19: --attempts 0 was dropped as if not given (0 == False) and the job
    got 1 attempt; it is a usage error and adds nothing."""
    url = f"sqlite:///{tmp_path}/a.db"
    done = dockyard("add", "q", "x", "--attempts", "0", "--url", url)
    assert done.returncode == 2
    assert error_lines(done.stderr) == ["error: attempts must be a whole number >= 1, got 0"]
    assert json.loads(dockyard("stats", "--url", url, "--json").stdout) == {}
    zero_delay = dockyard("add", "q", "x", "--delay", "0", "--priority", "0", "--url", url)
    assert zero_delay.returncode == 0, zero_delay.stderr  # 0 is valid for these two


def test_help_gives_the_ranges_the_options_accept(tmp_path: Path) -> None:
    """Field report #19: --priority's help said 2097152, which is refused."""
    shown = dockyard("add", "--help")
    assert f"{MAX_PRIORITY} (lowest)" in shown.stdout and "2097152" not in shown.stdout
    assert "1 or more" in shown.stdout
    url = f"sqlite:///{tmp_path}/p.db"
    assert dockyard("add", "q", "x", "--priority", str(MAX_PRIORITY), "--url", url).returncode == 0
    over = dockyard("add", "q", "x", "--priority", str(MAX_PRIORITY + 1), "--url", url)
    assert over.returncode == 2 and "priority" in over.stderr


# -- error lines (#13, #22) --------------------------------------------------------------


def test_nothing_listening_asks_is_it_running_once_on_one_short_line() -> None:
    """Field report #22: the unreachable message asked "is it running?" twice and wrapped
    onto three lines at 80 columns."""
    done = dockyard("stats", "q", "--url", "redis://127.0.0.1:1/0", columns=False)
    assert done.returncode == 3
    (line,) = error_lines(done.stderr)
    assert line == "error: cannot reach redis://127.0.0.1:1/0: connection refused; is it running?"
    assert len(line) <= 80 and done.stderr.lower().count("running") == 1
    assert done.stderr.splitlines() == [done.stderr.splitlines()[0], line]  # no log lines


def test_an_sqlite_file_that_cannot_be_opened_is_not_asked_if_it_runs() -> None:
    """Field report #22: `sqlite:////proc/x.db` said "is it running?"."""
    done = dockyard("stats", "q", "--url", "sqlite:////proc/dockyard-x.db", columns=False)
    assert done.returncode == 3
    (line,) = error_lines(done.stderr)
    assert "sqlite:////proc/dockyard-x.db" in line and "running" not in done.stderr.lower()


def test_a_redis_db_number_out_of_range_says_so(redis_url: str) -> None:
    """Field report #22: `redis://.../99` said "ERR DB index is out of range. Is it running"."""
    done = dockyard("stats", "q", "--url", redis_url.rsplit("/", 1)[0] + "/99")
    assert done.returncode == 3
    (line,) = error_lines(done.stderr)
    assert "DB index is out of range" in line and "running" not in done.stderr.lower()


def test_a_full_redis_is_one_line_not_a_traceback() -> None:
    """Field report #13: `dockyard add` on a Redis at maxmemory (noeviction) printed a full
    traceback; it prints one line and exits 1, with --json too."""
    args = ("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    with RedisServer(extra_args=args) as server:
        client = redis.Redis(port=server.port)
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            for i in range(10_000):
                client.set(f"fill:{i}", b"x" * 10_000)
        client.close()
        for extra in ((), ("--json",)):
            done = dockyard("add", "q", "x", "--url", server.url, *extra)
            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr and done.stdout == ""
            (line,) = error_lines(done.stderr)
            assert "memory" in line.lower()


def test_stats_watch_shows_disconnected_and_keeps_going(
    fresh_redis_server: RedisServer,
) -> None:
    """Field report #22: `stats --watch` exited rc 3 three seconds into an outage, after a
    log line landed in the table; it shows "disconnected", goes on, and recovers."""
    server = fresh_redis_server
    assert dockyard("add", "w", "x", "--url", server.url).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "stats", "w", "--watch", "--interval", "0.2",
         "--url", server.url],
        env=_env(None, False), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()

    def titles() -> list[str]:
        return [line for line in list(lines) if "dockyard queues" in line]

    try:
        wait_until(lambda: any(line.startswith(" w ") for line in list(lines)), timeout=20,
                   what="a table with queue w")  # fmt: skip
        server.stop()
        wait_until(lambda: any("disconnected" in t for t in titles()), timeout=30,
                   what="the watch to show disconnected")  # fmt: skip
        assert proc.poll() is None
        outage = len(titles())
        server.start()
        wait_until(lambda: "disconnected" not in titles()[-1] and len(titles()) > outage,
                   timeout=30, what="the watch to show counts again")  # fmt: skip
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
    assert code == 130
    reader.join(5)
    caption = next(line for line in lines if "retrying" in line)
    assert "connection refused" in caption or "lost" in caption
    assert proc.stderr is not None
    stderr = proc.stderr.read().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("store: "), stderr  # no log lines


# -- output (#25 and markup) -------------------------------------------------------------


def test_tables_are_not_cut_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    """Field report #25: piped tables were cut at 80 columns ("prioriti…")."""
    url = f"sqlite:///{tmp_path}/t.db"
    long_name = "a-queue-with-a-rather-long-name-" * 3
    assert dockyard("add", long_name, "x", "--url", url).returncode == 0
    shown = dockyard("stats", "--url", url, columns=False)
    assert shown.returncode == 0, shown.stderr
    for header in ("waiting", "prioritized", "completed", "failed", "paused"):
        assert header in shown.stdout
    assert long_name in shown.stdout and "…" not in shown.stdout


def test_square_brackets_in_names_and_messages_survive(tmp_path: Path) -> None:
    """rich's markup ate `[web]` from `pip install 'dockyard[web]'`: names, data and error
    messages are printed as they are."""
    url = f"sqlite:///{tmp_path}/m.db"
    added = dockyard("add", "q", "send[web]", "--data", '{"tag": "[bold]x[/bold]"}', "--url", url)
    assert added.returncode == 0 and "added job 1 (send[web]) to q" in added.stdout
    listed = dockyard("jobs", "q", "--url", url)
    assert "send[web]" in listed.stdout
    shown = dockyard("job", "q", "1", "--url", url)
    assert "send[web]" in shown.stdout and "[bold]x[/bold]" in shown.stdout
    missing = dockyard("job", "q", "no[pe]", "--url", url)
    assert error_lines(missing.stderr) == ["error: no job no[pe] in queue q"]


def test_an_error_message_keeps_its_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """The `serve` hint `pip install 'dockyard[web]'` reaches the user whole."""
    UserError("the web app needs its extra: pip install 'dockyard[web]'").show()
    assert capsys.readouterr().err.endswith("pip install 'dockyard[web]'\n")


# -- user input, generated (#19) ---------------------------------------------------------

_NUMBERS = st.one_of(st.integers(-3, 3), st.integers(-(10**12), 10**12))
_SECONDS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, MAX_SECONDS + 5)
)


async def _jobs_of(url: str) -> list[Job]:
    async with Queue("q", url=url) as queue:
        return await queue.get_jobs(["waiting", "delayed", "prioritized"])


@settings(max_examples=80)
@given(attempts=_NUMBERS, priority=st.one_of(_NUMBERS, st.integers(MAX_PRIORITY - 2,
       MAX_PRIORITY + 2)), delay=_SECONDS)  # fmt: skip
def test_add_takes_exactly_the_numbers_the_library_takes(
    attempts: int, priority: int, delay: float
) -> None:
    """Field report #19: every --attempts / --priority / --delay the library accepts is
    stored as given (0 is not dropped); any other is a usage error that adds nothing."""
    url = "memory://cli-numbers"
    before = len(asyncio.run(_jobs_of(url)))
    done = CliRunner().invoke(main, ["add", "q", "x", "--attempts", str(attempts),
                                     "--priority", str(priority), "--delay", repr(delay),
                                     "--url", url, "--json"])  # fmt: skip
    valid = (
        attempts >= 1
        and 0 <= priority <= MAX_PRIORITY
        and math.isfinite(delay)
        and 0 <= delay <= MAX_SECONDS
    )
    jobs = asyncio.run(_jobs_of(url))
    if not valid:
        assert done.exit_code == 2, done.output
        assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
        assert len(jobs) == before
        return
    assert done.exit_code == 0, done.output
    job_id = json.loads(done.stdout)["id"]
    (job,) = [j for j in jobs if j.id == job_id]
    assert (job.opts.attempts, job.opts.priority) == (attempts, priority)
    assert abs(job.opts.delay - delay) <= 0.001
