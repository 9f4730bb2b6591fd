"""The flow part of the Backend protocol: parents, children and their bookkeeping.

Every store keeps a parent's children the way BullMQ does on Redis, and names a child by
its full key ``<prefix>:<queue>:<id>`` everywhere (values, dependencies, failures), so the
readers answer alike on every store. A backend exposes these operations as its ``flows``
attribute. The parent side of a child's completion or final failure is part of the
store's ``finish`` (one transition), not a method here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .base import NewJob

#: What a child's final failure does to its parent (BullMQ's flags, stored as given):
#: fpof fail the parent, cpof release it at once, idof ignore the failure (recorded),
#: rdof remove the dependency (recorded nowhere); None: the parent keeps waiting.
FailurePolicy = Literal["fpof", "cpof", "idof", "rdof"]


@dataclass(frozen=True, slots=True)
class FlowNode:
    """One job of a flow, ready to store; a tree is a sequence of these, each parent before
    its descendants (depth-first), every ``job.job_id`` set by the producer."""

    #: The job's queue (same prefix as the backend that stores the flow).
    queue: str
    job: NewJob
    #: The parent's id and queue name; None for a root that attaches to no parent.
    parent_id: str | None = None
    parent_queue: str | None = None
    on_failure: FailurePolicy | None = None
    #: True: the job waits in ``waiting-children`` until its children are done.
    has_children: bool = False


class FlowStore(Protocol):
    """Flow operations of one store (``backend.flows``)."""

    async def add_flow(self, nodes: Sequence[FlowNode]) -> list[str]:
        """Store a whole tree at once (all or nothing where the store allows); the ids in
        ``nodes`` order. A parent named by a root that does not exist: JobNotFoundError."""

    async def move_to_waiting_children(
        self, job_id: str, token: str, child_key: str | None, now_ms: int
    ) -> bool:
        """True: the active job now waits for its pending children (or ``child_key``);
        False: nothing is pending, the job stays active and locked."""

    async def remove_child_dependency(self, job_id: str) -> bool:
        """Detach the job from its parent (BullMQ's removeChildDependency): True if it was
        a pending dependency (a parent left with none goes to the end of wait, its delay
        and priority not applied), False if it had no parent or was not pending (nothing
        changes then). JobNotFoundError when the job or its parent does not exist."""

    async def children_values(self, job_id: str) -> dict[str, Any]:
        """``{child key: return value}`` of the children that completed."""

    async def ignored_failures(self, job_id: str) -> dict[str, str]:
        """``{child key: reason}`` of children failed with cpof/idof."""

    async def dependencies(self, job_id: str) -> dict[str, Any]:
        """``processed`` {key: value}, ``unprocessed`` [keys], ``failed`` [keys of fpof
        failures], ``ignored`` {key: reason}."""

    async def dependencies_count(self, job_id: str) -> dict[str, int]:
        """How many children are processed, unprocessed, ignored and failed."""
