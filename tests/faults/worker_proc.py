"""A dockyard worker in a process of its own, for tests that signal or kill it.

Usage: ``python worker_proc.py URL QUEUE LOG [OPTIONS_JSON]``

- ``OPTIONS_JSON`` holds Worker keyword options (``concurrency``, ``lock_duration``,
  ``stalled_interval``, ``max_stalled_count``, ...) and optionally ``"sleep"``: when given,
  every job sleeps that long instead of its own ``data["sleep"]`` (so a rescuing worker can
  finish quickly jobs that were slow for the worker it replaces).
- The handler is ``async``: it appends ``start <id>`` to the file LOG, sleeps
  ``data["sleep"]`` seconds (default 0), appends ``end <id>`` and returns ``"ok"``.
- Prints ``ready`` once ``Worker.run()`` is going (its signal handlers are installed);
  the worker's own log lines (``dockyard.*`` at INFO) go to stdout as well.
- SIGTERM/SIGINT are the worker's own: graceful on the first, immediate on the second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from dockyard import Job, Worker


async def main(url: str, queue: str, log_path: str, options: dict[str, Any]) -> None:
    sleep_override = options.pop("sleep", None)

    def note(text: str) -> None:
        with open(log_path, "a") as log:
            log.write(text + "\n")

    async def handle(job: Job) -> str:
        note(f"start {job.id}")
        data = job.data if isinstance(job.data, dict) else {}
        await asyncio.sleep(sleep_override if sleep_override is not None else data.get("sleep", 0))
        note(f"end {job.id}")
        return "ok"

    worker = Worker(queue, handle, url=url, **options)
    runner = asyncio.create_task(worker.run())
    # One step of run() installs its SIGTERM/SIGINT handlers before its first await.
    await asyncio.sleep(0)
    print("ready", flush=True)
    await runner


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s"
    )
    url, queue, log_path = sys.argv[1:4]
    opts = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    asyncio.run(main(url, queue, log_path, opts))
