"""dockyard's benchmark against Node BullMQ and the Python job queues, on one private Redis
(and, for workload P, one private PostgreSQL).

    python3 bench/run.py [--quick] [--systems a,b] [--workloads A,B] [--runs 3] [--jobs 20000]
    python3 bench/run.py --workloads P --runs 3     # the PostgreSQL queues alone

Any python3 >= 3.11 will do: the script makes ``bench/.venv`` (dockyard with its ``fast``
extra and every Python peer at a pinned version) and ``bench/node/node_modules`` (``npm ci``
of BullMQ 5.62.0 and 6.7.0 from the committed lock file), then re-runs itself inside the
venv. It starts one private ``redis-server`` (free loopback port, temp folder, no
persistence), runs every system on workloads A-E (see bench/README.md) in interleaved runs,
prints tables of medians with ratios to Node BullMQ 5.62.0 measured in the same run (P:
to Node BullMQ 6.7.0 on PostgreSQL; the server is dockyard.devserver.PostgresServer), and
writes every raw figure with versions and machine facts to ``bench/results/<UTC>.json``.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - this line must run on any python3
    sys.exit(f"bench/run.py needs Python 3.11 or newer, not {sys.version.split()[0]}")

import argparse
import contextlib
import ctypes
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pg_workload

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
PEERS = BENCH / "peers"
NODE = BENCH / "node"
RESULTS = BENCH / "results"

#: The Python peers, pinned to the versions of shared/peer-figures.md. A pin that cannot be
#: installed is replaced by the nearest lower version, else the newest (recorded in the JSON).
PINS = [
    "bullmq==3.4.4",
    "arq==0.25.0",
    "rq==3.0.0",
    "celery[redis]==5.7.0",
    "saq==0.26.4",
    "dramatiq[redis]==2.2.1",
    "procrastinate==3.10.0",
    "redis==8.1.0",
    "hiredis==3.5.0",
    "psutil==7.2.2",
]

# -- environment ---------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


def _require(tool: str, script: str) -> None:
    """Install ``tool`` with the project's script when we may (root), else say how."""
    if shutil.which(tool):
        return
    path = ROOT / "scripts" / script
    if os.geteuid() == 0 and path.exists():
        say(f"{tool} is missing: running scripts/{script}")
        subprocess.run(["bash", str(path)], check=True)
    if not shutil.which(tool):
        sys.exit(f"{tool} is needed: install it (e.g. `bash scripts/{script}` as root)")


def _pip_install(python: Path) -> dict[str, str]:
    """dockyard[fast,postgres] and the pins; returns {pin: what was installed instead}."""
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", f"{ROOT}[fast,postgres]"], check=True)
    if subprocess.run([*pip, *PINS]).returncode == 0:
        return {}
    substitutes: dict[str, str] = {}
    for pin in PINS:
        if subprocess.run([*pip, pin]).returncode == 0:
            continue
        name, version = pin.split("==")
        for alternative in (f"{name}<={version}", name):
            if subprocess.run([*pip, alternative]).returncode == 0:
                substitutes[pin] = alternative
                break
        else:
            substitutes[pin] = "not installed"
    return substitutes


def _stamp(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def ensure_environment() -> None:
    """bench/.venv, bench/node/node_modules and redis-server; then re-exec in the venv."""
    _require("redis-server", "install-redis.sh")
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = hashlib.sha256(
        "\n".join(PINS).encode() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    if _stamp(stamp).get("hash") != wanted:
        say(f"setting up {VENV.relative_to(ROOT)} (pip install; once) ...")
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        substitutes = _pip_install(python)
        stamp.write_text(json.dumps({"hash": wanted, "substitutes": substitutes}))
    lock = NODE / "package-lock.json"
    node_stamp = NODE / "node_modules" / ".installed"
    lock_hash = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not node_stamp.exists() or node_stamp.read_text() != lock_hash:
        _require("npm", "install-node.sh")
        say("npm ci in bench/node (once) ...")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE, check=True
        )
        node_stamp.write_text(lock_hash)
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM when run.py dies (even by SIGKILL) - Linux only."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


# -- the private redis-server ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    if port == 6379:  # never the default port, whatever the kernel hands out
        return free_port()
    return port


class RedisServer:
    """Our own redis-server on a free loopback port; stopped by pid (and dies with us)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-bench-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary is not None
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.dir), "--maxclients", "10000"]
        argv += ["--logfile", str(self.dir / "redis.log")]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def __exit__(self, *_: object) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- systems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One worker setting of workload B: a label, the processes, extra peer arguments, N."""

    key: str
    label: str
    processes: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    jobs: int | None = None  # a fixed N for a very slow setting (rq's forking Worker)
    compare: str = ""  # the Node BullMQ 5.62.0 row its ratio is taken against (default: key)
    warm: bool = False  # start with the system's Lua scripts already cached in Redis


@dataclass(frozen=True)
class System:
    name: str
    title: str
    settings: str
    rows: tuple[Row, ...]
    bulk: bool = True  # has a bulk-enqueue API
    can_await: bool = True  # handlers can await (workload D)
    scale: float = 1.0  # share of --jobs used in B and D (slow peers)
    latency_jobs: int | None = None  # a fixed N for C (arq: its idle worker polls every 0.5 s)
    latency_extra: dict[str, Any] = field(default_factory=dict)
    rss: bool = False  # workload E (100,000 jobs)
    d_rows: tuple[Row, ...] = ()  # extra D settings (key, peer arguments, Node twin)
    bullmq_model: bool = False  # Lua scripts + blocking waits: round trips/job is meaningful

    def command(self, spec: dict[str, Any]) -> list[str]:
        if self.name.startswith("bullmq-node-"):
            spec = {**spec, "bullmq": self.name.rsplit("-", 1)[1]}
            return ["node", str(NODE / "bullmq_peer.mjs"), json.dumps(spec)]
        script = {"bullmq-python": "bullmq_python.py"}.get(self.name, f"{self.name}_peer.py")
        return [sys.executable, str(PEERS / script), json.dumps(spec)]


C100 = (Row("1 proc", "concurrency 100, 1 proc"), Row("2 procs", "concurrency 100, 2 procs", 2))
SYSTEMS = {
    s.name: s
    for s in [
        System(
            "dockyard",
            "dockyard (this tree)",
            "Worker(q, fn, url=..., concurrency=100), asyncio loop, orjson (the default "
            "install where orjson has wheels; uvloop row: the loop `dockyard worker` picks "
            "with the fast extra), hiredis",
            (
                *C100,
                Row(
                    "1 proc uvloop",
                    "concurrency 100, 1 proc, uvloop",
                    extra={"loop": "uvloop"},
                    compare="1 proc",
                ),
                Row(
                    "1 proc no orjson",
                    "concurrency 100, 1 proc, neither orjson nor uvloop installed",
                    extra={"plain": True},
                    compare="1 proc",
                ),
                Row(
                    "1 proc def",
                    "plain `def` handler, concurrency 100, 1 proc",
                    extra={"sync": True},
                    compare="1 proc",
                ),
                Row(
                    "1 proc def no orjson",
                    "plain `def` handler, concurrency 100, 1 proc, neither orjson nor uvloop",
                    extra={"sync": True, "plain": True},
                    compare="1 proc",
                ),
            ),
            rss=True,
            d_rows=(
                Row("def c10", "def, time.sleep 1 ms, c10", extra={"sync": True}, compare="c10"),
                Row("def c100", "def, time.sleep 1 ms, c100", extra={"sync": True}, compare="c100"),
            ),
            bullmq_model=True,
        ),
        System(
            "bullmq-node-5",
            "BullMQ (Node) 5.62.0",
            "new Worker(q, fn, {connection, concurrency: 100}); ioredis; Node 20",
            C100,
            rss=True,
            bullmq_model=True,
        ),
        System(
            "bullmq-node-6",
            "BullMQ (Node) 6.7.0",
            "new Worker(q, fn, {connection, concurrency: 100}); ioredis; Node 20",
            C100,
            rss=True,
            bullmq_model=True,
        ),
        System(
            "bullmq-python",
            "bullmq (Python) 3.4.4",
            'Worker(q, fn, {"concurrency": 100}), asyncio loop; latency: QueueEvents listener',
            C100,
            scale=0.25,
            bullmq_model=True,
        ),
        System(
            "arq",
            "arq 0.25.0",
            "Worker(max_jobs=100), default poll_delay 0.5 s; latency: poll result_info() / 5 ms",
            (Row("1 proc", "max_jobs 100, 1 proc"), Row("2 procs", "max_jobs 100, 2 procs", 2)),
            bulk=False,
            scale=0.25,
            latency_jobs=50,
            latency_extra={"warmup": 3},
        ),
        System(
            "rq",
            "rq 3.0.0",
            "SimpleWorker (no fork), or Worker (fork per job); latency: latest_result(timeout)",
            (
                Row("1 proc", "SimpleWorker, 1 proc"),
                Row("2 procs", "SimpleWorker, 2 procs", 2),
                Row(
                    "fork",
                    "Worker (fork per job), 1 proc",
                    extra={"worker": "fork"},
                    jobs=1000,
                    compare="1 proc",
                ),
            ),
            can_await=False,
            scale=0.1,
        ),
        System(
            "celery",
            "celery 5.7.0",
            "--pool=solo / --pool=prefork -c 2, --without-gossip/mingle/heartbeat, "
            "no result backend; latency: Redis result backend, AsyncResult.get()",
            (
                Row("1 proc", "--pool=solo, 1 proc"),
                Row(
                    "2 procs",
                    "--pool=prefork -c 2 (2 children)",
                    extra={"pool": "prefork", "pool_concurrency": 2},
                ),
            ),
            bulk=False,
            can_await=False,
            scale=0.25,
        ),
        System(
            "saq",
            "saq 0.26.4",
            "Worker(concurrency=100), pool max_connections=concurrency+50; "
            "latency: job.refresh(until_complete)",
            C100,
            bulk=False,
            scale=0.25,
        ),
        System(
            "dramatiq",
            "dramatiq 2.2.1",
            "Worker(broker, worker_threads=8) = --processes 1 --threads 8; "
            "latency: Results middleware, get_result(block=True)",
            (
                Row("1 proc", "--processes 1 --threads 8"),
                Row("2 procs", "--processes 2 --threads 8", 2),
            ),
            bulk=False,
            can_await=False,
            scale=0.25,
        ),
    ]
}
BASE = "bullmq-node-5"
QUICK_SYSTEMS = "dockyard,bullmq-node-5"

# -- processes -------------------------------------------------------------------------------


class Logs:
    """Every peer's stderr goes to one file per system under results/logs/<stamp>/."""

    def __init__(self, stamp: str) -> None:
        self.dir = RESULTS / "logs" / stamp
        self.dir.mkdir(parents=True, exist_ok=True)

    def file(self, system: str) -> IO[bytes]:
        return open(self.dir / f"{system}.log", "ab")

    def tail(self, system: str, size: int = 1500) -> str:
        path = self.dir / f"{system}.log"
        if not path.exists():
            return ""
        return path.read_bytes()[-size:].decode("utf-8", "replace")


LOGS: Logs


def run_once(system: Any, spec: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run a peer to its end; its last JSON stdout line is the result."""
    with LOGS.file(system.name) as err:
        err.write(f"\n=== {time.strftime('%H:%M:%S')} {spec}\n".encode())
        err.flush()
        try:
            proc = subprocess.run(
                system.command(spec),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=timeout,
                cwd=PEERS,
                preexec_fn=_die_with_parent,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{spec['role']} took over {timeout:.0f} s") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{spec['role']} failed (exit {proc.returncode}): ...{LOGS.tail(system.name)}"
        )
    return dict(json.loads(lines[-1]))


class Workers:
    """The worker processes of one system: started, ready, measured, killed (whole tree)."""

    def __init__(self, system: System, spec: dict[str, Any], processes: int) -> None:
        import psutil

        self.system = system
        self.spawned = time.time()
        self._err = LOGS.file(system.name)
        self._err.write(f"\n=== {time.strftime('%H:%M:%S')} x{processes} {spec}\n".encode())
        self._err.flush()
        self.procs = [
            subprocess.Popen(
                system.command(spec),
                stdout=subprocess.PIPE,
                stderr=self._err,
                cwd=PEERS,
                preexec_fn=_die_with_parent,
            )
            for _ in range(processes)
        ]
        self.ps = [psutil.Process(p.pid) for p in self.procs]
        ready = [threading.Event() for _ in self.procs]
        for proc, event in zip(self.procs, ready, strict=True):
            threading.Thread(target=self._read, args=(proc, event), daemon=True).start()
        deadline = time.monotonic() + 60
        for proc, event in zip(self.procs, ready, strict=True):
            while not event.wait(0.05):
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"worker not ready (exit {proc.poll()}): ...{LOGS.tail(system.name)}"
                    )

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        """Wait for the ``{"ready": true}`` line, then keep draining stdout."""
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b'{"ready"'):
                ready.set()

    def rss_mb(self) -> float:
        """Resident memory of the worker process trees (MB, summed)."""
        total = 0
        for p in self.ps:
            with contextlib.suppress(Exception):
                total += p.memory_info().rss
                for child in p.children(recursive=True):
                    with contextlib.suppress(Exception):
                        total += child.memory_info().rss
        return total / 2**20

    def cpu_s(self) -> float:
        """CPU seconds used so far by the worker process trees (reaped children included:
        rq's forking Worker runs each job in a child that is gone by the next sample)."""
        total = 0.0
        for p in self.ps:
            with contextlib.suppress(Exception):
                for q in [p, *p.children(recursive=True)]:
                    with contextlib.suppress(Exception):
                        t = q.cpu_times()
                        total += t.user + t.system + t.children_user + t.children_system
        return total

    def stop(self) -> None:
        """SIGKILL every process of the trees we started, by pid."""
        for p in self.ps:
            with contextlib.suppress(Exception):
                for child in p.children(recursive=True):
                    with contextlib.suppress(Exception):
                        child.kill()
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(10)
        self._err.close()


# -- measurements ----------------------------------------------------------------------------

#: Commands a client sends that never run inside a script: with EVAL/EVALSHA they are the
#: calls a BullMQ-model worker makes (script calls and blocking waits for work).
CLIENT_ONLY = {
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "blpop",
    "brpop",
    "blmpop",
    "brpoplpush",
    "blmove",
    "xread",
    "xreadgroup",
}
#: BullMQ's set of completed jobs (score: finishedOn, ms) in the bench queue.
COMPLETED = "bull:bench:completed"


def command_stats(client: Any) -> tuple[int, dict[str, int]]:
    """(total commands processed, calls per command) of the server now."""
    total = int(client.info("stats")["total_commands_processed"])
    calls = {
        k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()
    }
    return total, calls


def command_delta(
    before: tuple[int, dict[str, int]], after: tuple[int, dict[str, int]], own: int, n: int
) -> dict[str, Any]:
    """Commands per job between two snapshots, without the bench's own bookkeeping.

    ``calls_per_job``: script calls and blocking waits (commands that never run inside a
    script), i.e. the commands a BullMQ-model worker sends per job. ``all_commands_per_job``:
    every command the server executed, including those run by scripts, less our ``own``.
    """
    total = after[0] - before[0] - own
    diff = {k: v - before[1].get(k, 0) for k, v in after[1].items()}
    client_only = sum(v for k, v in diff.items() if k in CLIENT_ONLY)
    return {
        "calls_per_job": round(client_only / n, 3),
        "all_commands_per_job": round(total / n, 2),
        "by_command_per_job": {
            k: round(v / n, 3)
            for k, v in sorted(diff.items(), key=lambda kv: -kv[1])
            if v / n >= 0.005 and k not in ("info", "config|resetstat")
        },
    }


class Load:
    """CPU use while the workers ran: theirs, our redis-server's, and the rest's.

    other = all busy CPU time (``/proc/stat``, steal included) less that of the workers,
    our redis-server and this process, as a share of the machine's CPU capacity: the noise.
    """

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float, float]:
        with open("/proc/stat") as f:
            jiffies = [int(v) for v in f.readline().split()[1:9]]
        busy = (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")
        redis_cpu = 0.0
        with contextlib.suppress(Exception):
            import psutil

            times = psutil.Process(REDIS_PID).cpu_times()
            redis_cpu = times.user + times.system
        own = sum(os.times()[:2])
        return time.monotonic(), busy, self.workers.cpu_s(), redis_cpu, own

    def figures(self, n: int) -> dict[str, float]:
        end = self._sample()
        wall, busy, workers, redis_cpu, own = (e - s for e, s in zip(end, self.start, strict=True))
        other = busy - workers - redis_cpu - own
        return {
            "worker_cpu_us_per_job": round(workers / n * 1e6, 1),
            "redis_cpu_us_per_job": round(redis_cpu / n * 1e6, 1),
            "other_cpu_share": round(max(0.0, other) / (wall * (os.cpu_count() or 1)), 3)
            if wall > 0
            else 0.0,
        }


def reset(client: Any, scripts: bool = True) -> None:
    """An empty server, as a fresh one: no keys, and (unless told) no cached Lua scripts."""
    client.flushall()
    if scripts:
        client.script_flush()


def fill(client: Any, system: System, n: int, scripts: bool = True) -> None:
    reset(client, scripts)
    run_once(system, {"role": "fill", "redis": URL, "n": n})


def warm_up(client: Any, system: System, spec: dict[str, Any], n: int = 500) -> None:
    """Let the system's own worker run a few jobs, so that its Lua scripts are cached in
    Redis as on a server where workers already ran (FLUSHALL keeps them)."""
    fill(client, system, n)
    workers = Workers(system, {"role": "work", "redis": URL, **spec}, 1)
    try:
        deadline = time.monotonic() + 60
        while int(client.hget("bench:done", "count") or 0) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("warm-up jobs not done in time")
            time.sleep(0.05)
    finally:
        workers.stop()


def process(
    client: Any,
    system: System,
    n: int,
    processes: int,
    spec: dict[str, Any],
    rss_marks: tuple[float, ...] = (),
    warm: bool = False,
) -> dict[str, Any]:
    """n jobs already queued; start the workers; time first job start -> last job done.

    Redis starts empty, its script cache too (``warm``: scripts cached by a warm-up run).
    """
    if warm:
        warm_up(client, system, spec)
    fill(client, system, n, scripts=not warm)
    before = command_stats(client)
    workers = Workers(system, {"role": "work", "redis": URL, **spec}, processes)
    load = Load(workers)
    peak = 0.0
    polls = 0
    marks = sorted(int(n * f) for f in rss_marks)
    samples: list[dict[str, float]] = []
    try:
        deadline = time.monotonic() + 60 + n / 50
        while True:
            done = int(client.hget("bench:done", "count") or 0)
            polls += 1
            rss = workers.rss_mb()
            peak = max(peak, rss)
            while marks and done >= marks[0]:
                samples.append({"done": done, "rss_mb": round(rss, 1)})
                marks.pop(0)
            if done >= n:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done}/{n} jobs done in time")
            time.sleep(0.1)
        # The counter counts a job when its handler returns; its outcome is stored just
        # after. Let the last outcomes land before the command counts are read.
        stored_last = None
        if system.bullmq_model:
            settle = time.monotonic() + 10
            while client.zcard(COMPLETED) < n and time.monotonic() < settle:
                polls += 1
                time.sleep(0.02)
            polls += 2
            top = client.zrevrange(COMPLETED, 0, 0, withscores=True)
            stored_last = float(top[0][1]) if top else None
        else:
            time.sleep(0.3)
        after = command_stats(client)
        cpu = load.figures(n)
    finally:
        workers.stop()
    fields = {k.decode(): float(v) for k, v in client.hgetall("bench:done").items()}
    firsts = [v for k, v in fields.items() if k.startswith("first:")]
    lasts = [v for k, v in fields.items() if k.startswith("last:")]
    if not firsts or not lasts:
        raise RuntimeError(f"the counter wrote no first/last times: {sorted(fields)[:10]}")
    first, last = min(firsts), max(lasts)
    own = polls + int(fields.get("cmds", 0)) + 2  # our HGETs, the counters', INFO x2
    result: dict[str, Any] = {
        "jobs": n,
        "jobs_per_s": round(n / ((last - first) / 1000), 1),
    }
    if stored_last is not None:  # to the last outcome stored (BullMQ's finishedOn)
        result["jobs_per_s_stored"] = round(n / ((stored_last - first) / 1000), 1)
    result.update(
        {
            "peak_rss_mb": round(peak, 1),
            "spawn_to_done_s": round(last / 1000 - workers.spawned, 2),
            **cpu,
            **command_delta(before, after, own, n),
        }
    )
    if rss_marks:
        result["rss_samples"] = samples
    return result


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * p / 100))
    return round(ordered[rank - 1], 3)


def latency(client: Any, system: System, n: int) -> dict[str, Any]:
    """An idle worker (B's first setting); n jobs one at a time."""
    reset(client)
    row = system.rows[0]
    spec = {"role": "work", "redis": URL, "concurrency": 100, "sleep_ms": -1, **row.extra}
    workers = Workers(system, spec, 1)
    try:
        time.sleep(0.5)  # let the worker settle into its idle wait
        out = run_once(system, {"role": "latency", "redis": URL, "n": n, **system.latency_extra})
    finally:
        workers.stop()
    result: dict[str, Any] = {"jobs": n}
    for key in ("start", "done"):
        values = out[key]
        result[f"{key}_p50_ms"] = percentile(values, 50)
        result[f"{key}_p99_ms"] = percentile(values, 99)
        result[f"{key}_max_ms"] = round(max(values), 3)
        result[f"{key}_mean_ms"] = round(statistics.fmean(values), 3)
    if "missed" in out:
        result["missed_wakeups"] = out["missed"]
    return result


def enqueue(client: Any, system: System, n: int) -> dict[str, Any]:
    result: dict[str, Any] = {"jobs": n}
    for kind in ("one_by_one", "bulk"):
        if kind == "bulk" and not system.bulk:
            continue
        reset(client)
        before = command_stats(client)
        out = run_once(system, {"role": "enqueue", "redis": URL, "n": n, "bulk": kind == "bulk"})
        delta = command_delta(before, command_stats(client), 1, n)
        result[f"{kind}_per_s"] = round(n / out["seconds"], 1)
        result[f"{kind}_calls_per_job"] = delta["calls_per_job"]
    return result


def applies(workload: str, system: Any) -> bool:
    """Workloads A-E are the Redis systems', P the PostgreSQL systems'."""
    if not isinstance(system, System):
        return workload == "P"
    if workload == "P":
        return False
    return (workload != "D" or system.can_await) and (workload != "E" or system.rss)


def jobs_for(system: System, a: argparse.Namespace) -> int:
    """N of B and D for this system (slow peers: a share of --jobs, at least 1,000)."""
    return max(1000, int(a.jobs * system.scale))


def workload(client: Any, name: str, system: Any, a: argparse.Namespace) -> dict[str, Any]:
    """One workload for one system, one run."""
    if name == "P":
        return pg_workload.measure(system, PG, a.pg_jobs, run_once)
    if name == "A":
        return enqueue(client, system, a.jobs)
    if name == "B":
        return {
            row.key: {
                "setting": row.label,
                **process(
                    client,
                    system,
                    row.jobs or jobs_for(system, a),
                    row.processes,
                    {"concurrency": 100, "sleep_ms": 0, **row.extra},
                    warm=row.warm,
                ),
            }
            for row in system.rows
        }
    if name == "C":
        return latency(client, system, system.latency_jobs or a.latency_jobs)
    if name == "D":
        n = jobs_for(system, a)
        result = {
            f"c{c}": process(client, system, n, 1, {"concurrency": c, "sleep_ms": 1})
            for c in (10, 100, 1000)
        }
        for row in system.d_rows:  # twin: the Node row of the same concurrency
            c = int(row.compare.removeprefix("c"))
            spec = {"concurrency": c, "sleep_ms": 1, **row.extra}
            result[row.key] = process(client, system, n, 1, spec)
        return result
    if name == "E":
        spec = {"concurrency": 100, "sleep_ms": 0}
        result = process(client, system, a.rss_jobs, 1, spec, (0.0, 0.5, 1.0))
        rss = [s["rss_mb"] for s in result.pop("rss_samples")]
        return {
            "jobs": a.rss_jobs,
            "rss_start_mb": rss[0],
            "rss_middle_mb": rss[1],
            "rss_end_mb": rss[2],
            "growth_mb": round(rss[2] - rss[0], 1),
            "peak_rss_mb": result["peak_rss_mb"],
            "jobs_per_s": result["jobs_per_s"],
            "other_cpu_share": result["other_cpu_share"],
        }
    raise ValueError(name)


# -- summary and tables ----------------------------------------------------------------------


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max over runs for every numeric leaf (other leaves: the first)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = summarise([r[key] for r in runs if isinstance(r.get(key), dict)])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            out[key] = {
                "median": round(statistics.median(values), 3),
                "min": min(values),
                "max": max(values),
                "runs": len(values),
            }
        else:
            out[key] = value
    return out


def add_ratios(summary: dict[str, Any], base: dict[str, Any]) -> None:
    """``ratio_to_node_5`` beside each median: this system's / Node BullMQ 5.62.0's."""
    for key, value in summary.items():
        ref = base.get(key) if isinstance(base, dict) else None
        if not isinstance(value, dict) or key == "by_command_per_job":
            continue
        if "median" in value:
            if isinstance(ref, dict) and ref.get("median"):
                value["ratio_to_node_5"] = round(value["median"] / ref["median"], 2)
        elif isinstance(ref, dict):
            add_ratios(value, ref)


def cell(summary: dict[str, Any], *path: str, ratio: bool = True, digits: int = 0) -> str:
    """``median (min-max) **ratio x**`` of one figure, or ``-``."""
    node: Any = summary
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return "-"
        node = node[part]
    if not isinstance(node, dict) or "median" not in node:
        return "-"
    text = f"{node['median']:,.{digits}f}"
    if node["runs"] > 1:
        text += f" ({node['min']:,.{digits}f}-{node['max']:,.{digits}f})"
    if ratio and "ratio_to_node_5" in node:
        text += f" **{node['ratio_to_node_5']:.2f}x**"
    return text


def table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"
        for row in [head, ["-" * w for w in widths], *rows]
    )


def report(summary: dict[str, Any], errors: list[str]) -> str:
    """The tables, in Markdown: median (min-max) of the runs and **ratio to Node 5.62.0**."""
    out: list[str] = []
    has = {w: [s for s in summary if w in summary[s]] for w in "ABCDE"}

    def title(name: str) -> str:
        return SYSTEMS[name].title

    def trips(name: str, *path: str) -> str:
        if not SYSTEMS[name].bullmq_model:
            return "-"
        return cell(summary[name], *path, ratio=False, digits=2)

    if has["A"]:
        rows = [
            [
                title(s),
                cell(summary[s], "A", "one_by_one_per_s"),
                cell(summary[s], "A", "bulk_per_s"),
                trips(s, "A", "one_by_one_calls_per_job"),
            ]
            for s in has["A"]
        ]
        head = ["system", "one by one (await each)", "bulk, batches of 1,000", "calls/job"]
        out += ["### A. Enqueue (jobs/s)", "", table(head, rows), ""]
    if has["B"]:
        rows = []
        for s in has["B"]:
            for key, fig in summary[s]["B"].items():
                rows.append(
                    [
                        title(s),
                        str(fig.get("setting", key)),
                        f"{fig['jobs']['median']:,.0f}",
                        cell(fig, "jobs_per_s"),
                        cell(fig, "jobs_per_s_stored"),
                        cell(fig, "peak_rss_mb", ratio=False),
                        cell(fig, "spawn_to_done_s", ratio=False, digits=1),
                        trips(s, "B", key, "calls_per_job"),
                        cell(fig, "all_commands_per_job", ratio=False, digits=1),
                        cell(fig, "worker_cpu_us_per_job", ratio=False, digits=1),
                        cell(fig, "redis_cpu_us_per_job", ratio=False, digits=1),
                    ]
                )
        head = ["system", "worker setting", "N", "jobs/s", "to last stored", "peak RSS MB"]
        head += ["spawn->done s", "round trips/job", "Redis cmds/job"]
        head += ["worker CPU µs/job", "Redis CPU µs/job"]
        out += [
            "### B. Process queued no-op jobs",
            "",
            table(head, rows),
            "",
            "jobs/s: first job start -> last handler return, as counted in the worker. "
            "to last stored: -> the last finishedOn in the completed set (BullMQ-model "
            "systems). round trips/job: EVALSHA/EVAL and blocking waits (BZPOPMIN, BLMOVE, "
            "...) sent per processed job, from INFO commandstats. Redis cmds/job: every "
            "command the server ran per job, including those inside scripts. CPU µs/job: "
            "CPU time of the worker process(es) and of redis-server over the run, per job "
            "(steadier than jobs/s on a shared machine).",
            "",
        ]
    if has["C"]:
        rows = [
            [
                title(s),
                f"{summary[s]['C']['jobs']['median']:,.0f}",
                cell(summary[s], "C", "start_p50_ms", digits=2),
                cell(summary[s], "C", "start_p99_ms", digits=2),
                cell(summary[s], "C", "done_p50_ms", digits=2),
                cell(summary[s], "C", "done_p99_ms", digits=2),
            ]
            for s in has["C"]
        ]
        head = ["system", "jobs", "enqueue->start p50", "p99"]
        head += ["enqueue->producer knows done p50", "p99"]
        out += ["### C. Latency, idle worker, sequential jobs (ms)", "", table(head, rows), ""]
    if has["D"]:
        rows = [
            [
                title(s),
                f"{summary[s]['D']['c100']['jobs']['median']:,.0f}",
                cell(summary[s], "D", "c10", "jobs_per_s"),
                cell(summary[s], "D", "c100", "jobs_per_s"),
                cell(summary[s], "D", "c1000", "jobs_per_s"),
                cell(summary[s], "D", "c1000", "peak_rss_mb", ratio=False),
            ]
            for s in has["D"]
        ]
        for s in has["D"]:
            for row in SYSTEMS[s].d_rows:  # plain `def` handlers that block for 1 ms
                c = row.compare
                cells = [
                    cell(summary[s], "D", row.key, "jobs_per_s") if k == c else "-"
                    for k in ("c10", "c100", "c1000")
                ]
                rows.append([f"{title(s)}, {row.label}", "", *cells, "-"])
        head = ["system", "N", "concurrency 10", "concurrency 100", "concurrency 1,000"]
        head += ["peak RSS MB (c1000)"]
        out += [
            "### D. Jobs that await asyncio.sleep(0.001) (Node: a 1 ms timer), jobs/s",
            "",
            table(head, rows),
            "",
            "The `def` rows block for 1 ms (time.sleep) in a plain handler, i.e. in the "
            "worker's threads; their ratio is to Node's 1 ms timer at the same concurrency.",
            "",
        ]
    if has["E"]:
        rows = [
            [
                title(s),
                f"{summary[s]['E']['jobs']['median']:,.0f}",
                " / ".join(
                    cell(summary[s], "E", k, ratio=False)
                    for k in ("rss_start_mb", "rss_middle_mb", "rss_end_mb")
                ),
                cell(summary[s], "E", "growth_mb", ratio=False, digits=1),
                cell(summary[s], "E", "jobs_per_s"),
            ]
            for s in has["E"]
        ]
        head = ["system", "jobs", "RSS start / middle / end", "growth", "jobs/s"]
        out += ["### E. Worker RSS across a long run (MB)", "", table(head, rows), ""]
    if errors:
        out += ["### Errors", "", *[f"- {e}" for e in errors], ""]
    return "\n".join(out)


# -- facts -----------------------------------------------------------------------------------


def machine(client: Any) -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": node,
        "redis": client.info("server")["redis_version"],
        "loadavg_at_start": os.getloadavg(),
    }


def source_state() -> str:
    """dockyard's commit and a hash of uncommitted changes under src/ (to see the code
    under test change during a run: the bench imports the working tree)."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True)
        diff = subprocess.run([*git, "diff", "HEAD", "--", "src"], capture_output=True)
    except OSError:
        return "unknown"
    dirty = hashlib.sha256(diff.stdout).hexdigest()[:8] if diff.stdout.strip() else "clean"
    return f"{head.stdout.decode().strip()}+{dirty}"


def versions() -> dict[str, Any]:
    from importlib.metadata import version

    out: dict[str, Any] = {}
    dists = ["dockyard", "bullmq", "arq", "rq", "celery", "kombu", "saq", "dramatiq"]
    for dist in [*dists, "procrastinate", "psycopg", "redis", "hiredis", "uvloop", "orjson"]:
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "not installed"
    for alias in ("bullmq5", "bullmq6", "ioredis", "pg"):
        pkg = NODE / "node_modules" / alias / "package.json"
        out[f"npm {alias}"] = json.loads(pkg.read_text())["version"] if pkg.exists() else "-"
    out["pin_substitutes"] = _stamp(VENV / ".installed").get("substitutes", {})
    return out


# -- the run ---------------------------------------------------------------------------------

URL = ""
REDIS_PID = 0
PG: Any = None  # the private PostgreSQL server of workload P


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C: cleanup runs, the server is stopped."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    every = [*SYSTEMS, *pg_workload.PG_SYSTEMS]
    parser.add_argument(
        "--systems",
        default=",".join(every),
        help=f"comma-separated; default all: {','.join(every)} (the last three: workload P)",
    )
    parser.add_argument(
        "--workloads", default="A,B,C,D,E,P", help="default A,B,C,D,E,P (P: PostgreSQL)"
    )
    parser.add_argument("--runs", type=int, default=3, help="default 3")
    parser.add_argument("--jobs", type=int, default=20_000, help="N of A, B, D (default 20000)")
    parser.add_argument("--latency-jobs", type=int, default=1_000, help="N of C (default 1000)")
    parser.add_argument("--rss-jobs", type=int, default=100_000, help="N of E (default 100000)")
    parser.add_argument("--pg-jobs", type=int, default=10_000, help="N of P (default 10000)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"1 run, 5,000 jobs (C: 200, E: 20,000); systems {QUICK_SYSTEMS} unless given",
    )
    parser.add_argument("--out", type=Path, help="the JSON file (default results/<UTC>.json)")
    a = parser.parse_args()
    if a.quick:  # smaller defaults; flags given explicitly win
        quick = {"runs": 1, "jobs": 5_000, "latency_jobs": 200, "rss_jobs": 20_000}
        quick["workloads"] = "A,B,C,D,E"
        quick["systems"] = QUICK_SYSTEMS
        for key, value in quick.items():
            if getattr(a, key) == parser.get_default(key):
                setattr(a, key, value)
    unknown = [s for s in a.systems.split(",") if s and s not in every]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; choose from {', '.join(every)}")
    bad = [w for w in a.workloads.split(",") if w and w not in "ABCDEP"]
    if bad:
        parser.error(f"unknown workload(s) {bad}; choose from A,B,C,D,E,P")
    return a


def _leaves(tree: Any, key: str) -> Iterator[float]:
    """Every number stored under ``key`` anywhere in ``tree``."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key and isinstance(v, (int, float)):
                yield float(v)
            else:
                yield from _leaves(v, key)
    elif isinstance(tree, list):
        for item in tree:
            yield from _leaves(item, key)


def brief(result: dict[str, Any]) -> str:
    """A short progress line of one result."""
    if "error" in result:
        return "ERROR " + result["error"][:300].replace("\n", " ")
    parts = []
    for key, value in result.items():
        if isinstance(value, dict):
            keep = ("jobs_per_s", "peak_rss_mb", "calls_per_job", "other_cpu_share")
            inner = ", ".join(f"{k}={v}" for k, v in value.items() if k in keep)
            parts.append(f"{key}: {inner}")
        elif key.endswith(("per_s", "p50_ms", "p99_ms", "_mb", "per_job", "wakeups")):
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def main() -> None:
    global URL, LOGS, REDIS_PID, PG
    a = parse_args()  # before the set-up: --help and bad flags answer at once
    ensure_environment()
    import redis

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    LOGS = Logs(stamp)
    names = [s for s in a.systems.split(",") if s]
    loads = [w for w in a.workloads.split(",") if w]
    every: dict[str, Any] = {**SYSTEMS, **pg_workload.PG_SYSTEMS}
    systems = [every[s] for s in names if any(applies(w, every[s]) for w in loads)]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {w: [] for w in loads if applies(w, s)} for s in systems
    }
    errors: list[str] = []
    source_at_start = source_state()
    t0 = time.monotonic()
    say(
        f"dockyard bench: {len(systems)} systems, workloads {','.join(loads)}, {a.runs} run(s), "
        f"N={a.jobs:,} (P: {a.pg_jobs:,}); peer logs in {LOGS.dir.relative_to(ROOT)}"
    )
    with terminate_on_signals(), RedisServer() as server, contextlib.ExitStack() as stack:
        if any(applies("P", s) for s in systems) and "P" in loads:
            from dockyard.devserver import PostgresServer

            PG = stack.enter_context(PostgresServer())
            say(f"PostgreSQL on 127.0.0.1:{PG.port} (private, fsync off) for workload P")
        URL = server.url
        REDIS_PID = server.process.pid if server.process else 0
        client = redis.Redis(port=server.port)
        facts = machine(client)
        say(f"redis-server {facts['redis']} on 127.0.0.1:{server.port} (private, no persistence)")
        for run in range(a.runs):
            # Interleaved: every system meets the same conditions; the order turns each run.
            order = systems[run % len(systems) :] + systems[: run % len(systems)]
            for w in loads:
                for system in order:
                    if not applies(w, system):
                        continue
                    try:
                        result = workload(client, w, system, a)
                    except Exception as exc:
                        result = {"error": str(exc)[-1500:]}
                        errors.append(f"run {run + 1} {w} {system.name}: {str(exc)[:300]}")
                    raw[system.name][w].append(result)
                    say(
                        f"[{time.monotonic() - t0:5.0f}s] run {run + 1}/{a.runs} {w} "
                        f"{system.name}: {brief(result)}"
                    )
        facts["loadavg_at_end"] = os.getloadavg()
    summary: dict[str, Any] = {}
    for name, ws in raw.items():
        ok = {w: [r for r in runs if "error" not in r] for w, runs in ws.items()}
        summary[name] = {w: summarise(runs) for w, runs in ok.items() if runs}
    if BASE in summary:
        base = summary[BASE]
        for name, ws in summary.items():
            if name == BASE:
                continue
            add_ratios(ws, base)
            if name not in SYSTEMS:
                continue
            for row in SYSTEMS[name].rows:  # B rows without a twin at Node: their stated twin
                if row.compare and row.key in ws.get("B", {}):
                    add_ratios(ws["B"][row.key], base.get("B", {}).get(row.compare, {}))
            for row in SYSTEMS[name].d_rows:
                if row.key in ws.get("D", {}):
                    add_ratios(ws["D"][row.key], base.get("D", {}).get(row.compare, {}))
    notes = [f"Median (min-max) of {a.runs} run(s)."]
    if any(isinstance(s, System) for s in systems):
        notes[0] += (
            " **ratio** = this system / Node BullMQ 5.62.0 in the same run (throughput: "
            "higher is better; latency and memory: lower is better)."
        )
    pg_workload.add_ratios(summary)
    scaled = [
        s
        for s in systems
        if isinstance(s, System) and s.scale < 1 and any(w in loads for w in "BD")
    ]
    if scaled:
        notes.append(
            "Fewer jobs for slow peers in B and D: "
            + ", ".join(f"{s.name} {jobs_for(s, a):,}" for s in scaled)
            + (" (rq's forking Worker: 1,000)" if any(s.name == "rq" for s in scaled) else "")
            + "; the figures are rates."
        )
    source_at_end = source_state()
    if source_at_end != source_at_start:
        notes.append(
            f"WARNING: dockyard's source changed during the run ({source_at_start} -> "
            f"{source_at_end}): its figures mix two versions."
        )
    shares = sorted(_leaves(raw, "other_cpu_share"))
    if shares:
        notes.append(
            f"Other processes on this machine took {statistics.median(shares):.0%} of its CPU "
            f"(median; max {shares[-1]:.0%}) while workers ran: the noise of this run."
        )
    text = "\n".join(notes) + "\n\n" + report(summary, errors)
    text += pg_workload.report(summary, table)
    say("")
    say(text)
    path = a.out or RESULTS / f"{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "when": stamp,
        "wall_s": round(time.monotonic() - t0),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
        "machine": facts,
        "versions": {
            **versions(),
            "dockyard_source_at_start": source_at_start,
            "dockyard_source_at_end": source_at_end,
        },
        "settings": {s.name: s.settings for s in systems},
        "rows": {s.name: {r.key: r.label for r in s.rows} for s in systems if s.name in SYSTEMS},
        "summary": summary,
        "raw": raw,
        "errors": errors,
        "table_md": text,
    }
    path.write_text(json.dumps(document, indent=1))
    say(f"wrote {path} ({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as exc:
        sys.exit(f"interrupted ({exc or 'SIGINT'}); the private redis-server was stopped")
