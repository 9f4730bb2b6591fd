"""dockyard's benchmark against Node BullMQ and the Python queues, in one run on one Redis.

``make bench`` (or ``python3 bench/run.py``) sets up ``bench/.venv`` and ``bench/node``,
starts a private redis-server, runs every system on the workloads A-E (see README.md here),
prints a table of medians with ratios to Node BullMQ 5.62.0 measured in the same run, and
writes every raw figure to ``bench/results/<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
PEERS = BENCH / "peers"
PINS = [
    "bullmq==3.4.4",
    "arq==0.25.0",
    "rq==3.0.0",
    "celery[redis]==5.7.0",
    "saq==0.26.4",
    "dramatiq[redis]==2.2.1",
    "redis==8.1.0",
    "hiredis",
    "psutil",
    "uvloop",
    "orjson",
]


def ensure_environment() -> None:
    """Create bench/.venv with dockyard and the peers, npm ci bench/node; re-exec inside."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[fast]", *PINS], check=True)
        stamp.touch()
    modules = BENCH / "node" / "node_modules"
    if not modules.exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=BENCH / "node",
            check=True,
        )
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


# -- systems ------------------------------------------------------------------------------


def command(system: str, spec: dict[str, Any]) -> list[str]:
    """How to start a peer process for ``system`` with its JSON argument."""
    if system.startswith("bullmq-node-"):
        spec = {**spec, "bullmq": system.rsplit("-", 1)[1]}
        return ["node", str(BENCH / "node" / "bullmq_peer.mjs"), json.dumps(spec)]
    script = {
        "dockyard": "dockyard_peer.py",
        "bullmq-python": "bullmq_python.py",
        "arq": "arq_peer.py",
        "rq": "rq_peer.py",
        "celery": "celery_peer.py",
        "saq": "saq_peer.py",
        "dramatiq": "dramatiq_peer.py",
    }[system]
    return [sys.executable, str(PEERS / script), json.dumps(spec)]


SETTINGS = {
    "dockyard": "Worker(concurrency=100), uvloop, hiredis",
    "bullmq-node-5": "BullMQ 5.62.0 Worker concurrency 100 (ioredis)",
    "bullmq-node-6": "BullMQ 6.7.0 Worker concurrency 100 (ioredis)",
    "bullmq-python": "bullmq 3.4.4 Worker concurrency 100",
    "arq": "arq 0.25.0 max_jobs=100",
    "rq": "rq 3.0.0 SimpleWorker (no fork)",
    "celery": "celery 5.7.0 --pool=solo, Redis broker, no result backend (latency: Redis backend)",
    "saq": "saq 0.26.4 concurrency=100",
    "dramatiq": "dramatiq 2.2.1 --processes 1 --threads 8",
}


def run_once(system: str, spec: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Run a peer to its end and return its JSON line."""
    proc = subprocess.run(
        command(system, spec), capture_output=True, text=True, timeout=timeout, cwd=PEERS
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{system} {spec['role']} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


class Workers:
    """Worker processes of one system, their readiness and their memory."""

    def __init__(self, system: str, spec: dict[str, Any], processes: int) -> None:
        import psutil

        self.procs = [
            subprocess.Popen(command(system, spec), stdout=subprocess.PIPE, text=True, cwd=PEERS)
            for _ in range(processes)
        ]
        self.ps = [psutil.Process(p.pid) for p in self.procs]
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{system} worker exited before it was ready")

    def rss_mb(self) -> float:
        """Resident memory of the worker process trees (MB)."""
        total = 0
        for p in self.ps:
            try:
                total += p.memory_info().rss
                total += sum(c.memory_info().rss for c in p.children(recursive=True))
            except Exception:
                pass
        return total / 2**20

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)


# -- workloads -----------------------------------------------------------------------------


def flush(client: Any) -> None:
    client.flushall()


def throughput(
    client: Any,
    system: str,
    n: int,
    processes: int,
    concurrency: int,
    sleep_ms: float,
    samples: list[float] | None = None,
) -> dict[str, Any]:
    """Pre-fill n jobs, start the workers, time first start → last done."""
    flush(client)
    run_once(system, {"role": "fill", "redis": URL, "n": n}, timeout=600)
    client.config_resetstat()
    spawned = time.time()
    workers = Workers(
        system,
        {"role": "work", "redis": URL, "concurrency": concurrency, "sleep_ms": sleep_ms},
        processes,
    )
    peak = 0.0
    marks = {int(n * f) for f in (0.02, 0.5, 0.99)} if samples is not None else set()
    try:
        deadline = time.time() + 120
        while True:
            done = int(client.hget("bench:done", "count") or 0)
            rss = workers.rss_mb()
            peak = max(peak, rss)
            if samples is not None and marks and done >= min(marks):
                samples.append(round(rss, 1))
                marks.discard(min(marks))
            if done >= n:
                break
            if time.time() > deadline:
                raise RuntimeError(f"{system}: only {done}/{n} jobs done in time")
            time.sleep(0.1)
    finally:
        workers.stop()
    fields = {k.decode(): float(v) for k, v in client.hgetall("bench:done").items()}
    last = max(v for k, v in fields.items() if k.startswith("last:"))
    seconds = (last - fields["first"]) / 1000
    stats = client.info("commandstats")
    trips = sum(
        stats.get(f"cmdstat_{c}", {}).get("calls", 0)
        for c in ("evalsha", "eval", "bzpopmin", "brpoplpush", "blmove")
    )
    return {
        "jobs_per_s": n / seconds,
        "peak_rss_mb": round(peak, 1),
        "spawn_to_done_s": round(last / 1000 - spawned, 2),
        "script_and_blocking_calls_per_job": round(trips / n, 3),
    }


def latency(client: Any, system: str, n: int) -> dict[str, Any]:
    """An idle worker; n jobs one at a time: enqueue→start and enqueue→producer knows."""
    flush(client)
    workers = Workers(system, {"role": "work", "redis": URL, "concurrency": 100, "sleep_ms": -1}, 1)
    try:
        out = run_once(system, {"role": "latency", "redis": URL, "n": n}, timeout=600)
    finally:
        workers.stop()
    return {
        "start_p50_ms": pct(out["start"], 50),
        "start_p99_ms": pct(out["start"], 99),
        "done_p50_ms": pct(out["done"], 50),
        "done_p99_ms": pct(out["done"], 99),
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 3)


#: Slow peers process fewer jobs in B and D (as peer-figures.md did for rq), so a full run
#: of 3 repetitions stays near 20 minutes; the figures are rates, so they stay comparable.
SCALE = {"rq": 0.1, "arq": 0.25, "celery": 0.25, "saq": 0.25, "dramatiq": 0.25}
#: arq's idle worker polls every 0.5 s: fewer sequential latency jobs (as peer-figures.md).
LATENCY_JOBS = {"arq": 50}
#: D's job awaits asyncio.sleep: only systems with async handlers (Node: a 1 ms timer).
ASYNC = {"dockyard", "bullmq-node-5", "bullmq-node-6", "bullmq-python", "arq", "saq"}
#: E's 100,000 jobs: dockyard against Node BullMQ.
MEMORY = {"dockyard", "bullmq-node-5", "bullmq-node-6"}


def applies(name: str, system: str) -> bool:
    """Whether workload ``name`` is measured for ``system`` (see the sets above)."""
    return (name != "D" or system in ASYNC) and (name != "E" or system in MEMORY)


def workload(client: Any, name: str, system: str, a: argparse.Namespace) -> dict[str, Any]:
    """One workload for one system, one run."""
    n = a.jobs
    if name in ("B", "D"):
        n = max(1000, int(n * SCALE.get(system, 1.0)))
    if name == "A":
        flush(client)
        one = run_once(system, {"role": "enqueue", "redis": URL, "n": n, "bulk": False})
        result = {"one_by_one_per_s": n / one["seconds"]}
        if system not in NO_BULK:
            flush(client)
            bulk = run_once(system, {"role": "enqueue", "redis": URL, "n": n, "bulk": True})
            result["bulk_per_s"] = n / bulk["seconds"]
        return result
    if name == "B":
        return {
            "jobs": n,
            "1 proc": throughput(client, system, n, 1, 100, 0),
            "2 procs": throughput(client, system, n, 2, 100, 0),
        }
    if name == "C":
        return latency(client, system, LATENCY_JOBS.get(system, a.latency_jobs))
    if name == "D":
        return {
            "jobs": n,
            "c100": throughput(client, system, n, 1, 100, 1),
            "c1000": throughput(client, system, n, 1, 1000, 1),
        }
    if name == "E":
        samples: list[float] = []
        result = throughput(client, system, a.rss_jobs, 1, 100, 0, samples)
        return {
            "rss_start_mid_end_mb": samples,
            "growth_mb": round(samples[-1] - samples[0], 1),
            "jobs_per_s": result["jobs_per_s"],
        }
    raise ValueError(name)


# -- the run -------------------------------------------------------------------------------

URL = ""
BASE = "bullmq-node-5"
#: Peers without a bulk-enqueue API (see peer-figures.md): no bulk figure for them.
NO_BULK = {"arq", "celery", "saq", "dramatiq"}


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = f.readline().split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(int(mem) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": subprocess.run(
            ["node", "--version"], capture_output=True, text=True
        ).stdout.strip(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for dist in (
        "dockyard",
        "bullmq",
        "arq",
        "rq",
        "celery",
        "saq",
        "dramatiq",
        "redis",
        "hiredis",
        "uvloop",
    ):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "not installed"
    for alias in ("bullmq5", "bullmq6"):
        pkg = BENCH / "node" / "node_modules" / alias / "package.json"
        out[f"node {alias}"] = json.loads(pkg.read_text())["version"] if pkg.exists() else "-"
    return out


def summarise(raw: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Median of the runs for every leaf figure, and ratios to Node BullMQ 5.62.0."""

    def med(runs: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in runs[0].items():
            if isinstance(value, dict):
                out[key] = med([r[key] for r in runs])
            elif isinstance(value, (int, float)):
                out[key] = round(statistics.median(r[key] for r in runs), 3)
            else:
                out[key] = value
        return out

    summary = {s: {w: med(runs) for w, runs in ws.items()} for s, ws in raw.items()}
    base = summary.get(BASE, {})
    for system, ws in summary.items():
        for w, figures in ws.items():
            if w in base and system != BASE:
                figures["ratio_to_node_5"] = ratios(figures, base[w])
    return summary


def ratios(figures: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in figures.items():
        ref = base.get(key)
        if isinstance(value, dict) and isinstance(ref, dict):
            out[key] = ratios(value, ref)
        elif key.endswith("per_s") and isinstance(ref, (int, float)) and ref:
            out[key] = round(value / ref, 2)
    return out


def print_table(summary: dict[str, Any]) -> None:
    rows = []
    for system, ws in summary.items():
        a, b, c = ws.get("A", {}), ws.get("B", {}), ws.get("C", {})
        d, e = ws.get("D", {}), ws.get("E", {})
        ra = a.get("ratio_to_node_5", {})
        rb = b.get("ratio_to_node_5", {}).get("1 proc", {})

        def f(v: Any, r: Any = None) -> str:
            if v is None:
                return "-"
            return f"{v:,.0f}" + (f" ({r:.2f}x)" if r else "")

        rows.append(
            [
                system,
                f(a.get("one_by_one_per_s"), ra.get("one_by_one_per_s")),
                f(a.get("bulk_per_s"), ra.get("bulk_per_s")),
                f(b.get("1 proc", {}).get("jobs_per_s"), rb.get("jobs_per_s")),
                f(b.get("2 procs", {}).get("jobs_per_s")),
                str(b.get("1 proc", {}).get("script_and_blocking_calls_per_job", "-")),
                "/".join(str(c.get(k, "-")) for k in ("start_p50_ms", "start_p99_ms")),
                "/".join(str(c.get(k, "-")) for k in ("done_p50_ms", "done_p99_ms")),
                f(d.get("c100", {}).get("jobs_per_s"))
                + " / "
                + f(d.get("c1000", {}).get("jobs_per_s")),
                str(e.get("growth_mb", "-")),
            ]
        )
    head = [
        "system",
        "A add/s",
        "A bulk/s",
        "B 1 proc/s",
        "B 2 procs/s",
        "calls/job",
        "C start p50/p99 ms",
        "C done p50/p99 ms",
        "D c100 / c1000 /s",
        "E RSS +MB",
    ]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))


def main() -> None:
    global URL
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--systems",
        default="dockyard,bullmq-node-5,bullmq-node-6,bullmq-python,arq,rq,celery,saq,dramatiq",
    )
    parser.add_argument("--workloads", default="A,B,C,D,E")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--latency-jobs", type=int, default=1_000)
    parser.add_argument("--rss-jobs", type=int, default=100_000)
    parser.add_argument(
        "--quick", action="store_true", help="1 run, 5,000 jobs, dockyard and Node 5.62.0 only"
    )
    a = parser.parse_args()
    if a.quick:
        a.runs, a.jobs, a.latency_jobs, a.rss_jobs = 1, 5_000, 200, 20_000
        if a.systems == parser.get_default("systems"):
            a.systems = "dockyard,bullmq-node-5"
    ensure_environment()
    sys.path.insert(0, str(ROOT / "src"))
    import redis
    from dockyard.devserver import RedisServer

    systems = [s for s in a.systems.split(",") if s]
    loads = [w for w in a.workloads.split(",") if w]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {s: {w: [] for w in loads} for s in systems}
    with RedisServer() as server:
        URL = server.url
        client = redis.Redis(port=server.port)
        for run in range(a.runs):
            for w in loads:
                for system in systems:  # interleaved: every system sees the same conditions
                    if not applies(w, system):
                        continue
                    try:
                        result = workload(client, w, system, a)
                    except Exception as exc:
                        result = {"error": str(exc)[-500:]}
                    raw[system][w].append(result)
                    print(f"run {run + 1} {w} {system}: {json.dumps(result)}", flush=True)
        redis_version = client.info("server")["redis_version"]
    ok = {
        s: {w: [r for r in runs if "error" not in r] for w, runs in ws.items()}
        for s, ws in raw.items()
    }
    summary = summarise({s: {w: r for w, r in ws.items() if r} for s, ws in ok.items()})
    print()
    print_table(summary)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = out / f"{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "when": stamp,
                "args": vars(a),
                "machine": {**machine(), "redis": redis_version},
                "versions": versions(),
                "settings": {s: SETTINGS[s] for s in systems},
                "summary": summary,
                "raw": raw,
            },
            indent=1,
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
