"""What the embedded stores (SQLite, memory) share about flows: the errors of a refused
transition, worded as on Redis so every store answers alike."""

from __future__ import annotations

from ..errors import DockyardError, PendingChildrenError, ScriptCode, error_for_code


def refusal(code: int, job_id: str, operation: str, pending: int) -> DockyardError:
    """The error of a negative code; a completion refused for pending children says how
    many are pending."""
    if code != ScriptCode.PENDING_DEPENDENCIES:
        return error_for_code(code, job_id, operation)
    return PendingChildrenError(
        f"{operation}: job {job_id} still has {pending} pending children; a parent "
        "completes only after all of them (use Job.move_to_waiting_children to wait)"
    )
