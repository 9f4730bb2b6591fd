"""``GET /metrics``: Prometheus' text format, read from the store on each scrape."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from ..backends.base import STATES
from ..errors import DockyardError
from .app import registry_of

router = APIRouter()
#: Completed jobs sampled per queue for the processing-time figures.
SAMPLE = 100


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> str:
    """Jobs per queue and state, paused queues, and how long recent jobs took to run."""
    registry = registry_of(request)
    lines = [
        "# HELP dockyard_jobs Jobs per queue and state now.",
        "# TYPE dockyard_jobs gauge",
    ]
    paused_lines = [
        "# HELP dockyard_queue_paused 1 while the queue is paused.",
        "# TYPE dockyard_queue_paused gauge",
    ]
    timing = [
        "# HELP dockyard_job_processing_seconds Run time of the last completed jobs "
        f"(up to {SAMPLE} per queue).",
        "# TYPE dockyard_job_processing_seconds summary",
    ]
    for name in await registry.names():
        try:
            queue = registry.queue(name)
        except DockyardError:
            continue  # a name this server cannot serve (made elsewhere): see GET /queues
        q = _label(name)
        counts = await queue.get_job_counts()
        for state in STATES:
            lines.append(f'dockyard_jobs{{queue="{q}",state="{state}"}} {counts[state]}')
        paused_lines.append(f'dockyard_queue_paused{{queue="{q}"}} {int(await queue.is_paused())}')
        took = sorted(
            j.finished_on - j.processed_on
            for j in await queue.get_jobs("completed", 0, SAMPLE - 1)
            if j.finished_on is not None and j.processed_on is not None
        )
        if took:
            for quantile in (0.5, 0.9, 0.99):
                value = took[min(len(took) - 1, int(quantile * len(took)))]
                timing.append(
                    f'dockyard_job_processing_seconds{{queue="{q}",quantile="{quantile}"}} '
                    f"{value:.6f}"
                )
            timing.append(f'dockyard_job_processing_seconds_sum{{queue="{q}"}} {sum(took):.6f}')
            timing.append(f'dockyard_job_processing_seconds_count{{queue="{q}"}} {len(took)}')
    return "\n".join([*lines, *paused_lines, *timing]) + "\n"
