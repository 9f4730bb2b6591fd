"""A dockyard worker as its own process, for tests that kill it: argv is one JSON object.

``{"redis", "queue", "concurrency", "lock_duration", "stalled_interval", "behaviour"}``;
prints ``ready`` when running and one ``active <id>`` line per job it starts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from dockyard import Job, Worker


async def main(args: dict[str, Any]) -> None:
    async def handle(job: Job) -> Any:
        print(f"active {job.id}", flush=True)
        if args.get("behaviour") == "hang":
            await asyncio.Event().wait()
        return {"ok": True}

    worker = Worker(
        args["queue"],
        handle,
        url=args["redis"],
        concurrency=args.get("concurrency", 1),
        lock_duration=args.get("lock_duration", 30.0),
        stalled_interval=args.get("stalled_interval", 30.0),
    )
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
