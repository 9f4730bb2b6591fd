"""What the stores share about flows: the errors of a refused transition or flow, worded
alike on every store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import (
    DockyardError,
    InvalidJobError,
    JobNotFoundError,
    PendingChildrenError,
    ScriptCode,
    error_for_code,
)

if TYPE_CHECKING:
    from .flowstore import FlowNode


def refusal(code: int, job_id: str, operation: str, pending: int) -> DockyardError:
    """The error of a negative code; a completion refused for pending children says how
    many are pending."""
    if code != ScriptCode.PENDING_DEPENDENCIES:
        return error_for_code(code, job_id, operation)
    return PendingChildrenError(
        f"{operation}: job {job_id} still has {pending} pending children; a parent "
        "completes only after all of them (use Job.move_to_waiting_children to wait)"
    )


def flow_refused(code: int, node: FlowNode) -> DockyardError:
    """The error that refuses a whole flow because of ``node``: its parent is missing (-5)
    or its id is another live parent's child (-7)."""
    job_id = node.job.job_id
    if code == ScriptCode.PARENT_MISSING:
        return JobNotFoundError(
            f"add flow: the parent {node.parent_id} (queue {node.parent_queue or node.queue!r})"
            f" of job {job_id} does not exist; nothing was added"
        )
    if code == ScriptCode.OTHER_PARENT:
        return InvalidJobError(
            f"add flow: job {job_id} already exists in queue {node.queue!r} as the child of "
            "another parent; nothing was added (give it another job_id)"
        )
    return error_for_code(code, str(job_id), "add flow")
