"""A dockyard worker in its own process, for tests that signal or kill it.

argv[1] is JSON: ``{"redis", "queue", "concurrency", "lock_duration", "stalled_interval",
"log"}``. Each job sleeps ``data["sleep"]`` seconds; its id is appended to the file ``log``
when it starts (``start <id>``) and ends (``end <id>``). Prints ``ready`` once running; the
worker's own log goes to stdout too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from dockyard import Job, Worker


async def main(args: dict[str, Any]) -> None:
    def note(text: str) -> None:
        with open(args["log"], "a") as log:
            log.write(text + "\n")

    async def handle(job: Job) -> str:
        note(f"start {job.id}")
        await asyncio.sleep(job.data.get("sleep", 0))
        note(f"end {job.id}")
        return "ok"

    worker = Worker(
        args["queue"],
        handle,
        url=args["redis"],
        concurrency=args.get("concurrency", 1),
        lock_duration=args.get("lock_duration", 30.0),
        stalled_interval=args.get("stalled_interval", 30.0),
    )
    runner = asyncio.create_task(worker.run())
    await asyncio.sleep(0)
    print("ready", flush=True)
    await runner


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    asyncio.run(main(json.loads(sys.argv[1])))
