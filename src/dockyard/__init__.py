"""dockyard: a durable job queue and worker system, wire-compatible with BullMQ on Redis."""

from .backoff import Backoff
from .errors import (
    BackendError,
    BackendFullError,
    BackendRefusedError,
    BackendUnavailableError,
    DelayedError,
    DockyardError,
    FailedChildrenError,
    InvalidJobError,
    InvalidOptionError,
    JobFailed,
    JobLockedError,
    JobNotFoundError,
    JobStateError,
    LockLostError,
    NotSupportedError,
    PendingChildrenError,
    RateLimitError,
    UnrecoverableError,
    WaitingChildrenError,
)
from .events import QueueEvent, QueueEvents
from .flow import FlowProducer, JobNode
from .job import Job
from .options import JobOptions, KeepJobs
from .queue import Queue
from .worker import Worker, WorkerSettings

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BackendFullError",
    "BackendRefusedError",
    "BackendUnavailableError",
    "Backoff",
    "DelayedError",
    "DockyardError",
    "FailedChildrenError",
    "FlowProducer",
    "InvalidJobError",
    "InvalidOptionError",
    "Job",
    "JobFailed",
    "JobLockedError",
    "JobNode",
    "JobNotFoundError",
    "JobOptions",
    "JobStateError",
    "KeepJobs",
    "LockLostError",
    "NotSupportedError",
    "PendingChildrenError",
    "Queue",
    "QueueEvent",
    "QueueEvents",
    "RateLimitError",
    "UnrecoverableError",
    "WaitingChildrenError",
    "Worker",
    "WorkerSettings",
]
