"""dockyard: a durable job queue and worker system, wire-compatible with BullMQ on Redis."""

from .backoff import Backoff
from .errors import (
    BackendAuthError,
    BackendError,
    BackendFullError,
    BackendPermissionError,
    BackendRefusedError,
    BackendTLSError,
    BackendUnavailableError,
    BackendVersionError,
    ClusterSlotError,
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
    SchemaVersionError,
    UnrecoverableError,
    WaitingChildrenError,
)
from .events import QueueEvent, QueueEvents
from .flow import FlowProducer, JobNode
from .job import Job
from .options import JobOptions, KeepJobs
from .queue import Queue
from .schedulers import JobScheduler
from .worker import Worker, WorkerSettings

__version__ = "0.1.0"

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendFullError",
    "BackendPermissionError",
    "BackendRefusedError",
    "BackendTLSError",
    "BackendUnavailableError",
    "BackendVersionError",
    "Backoff",
    "ClusterSlotError",
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
    "JobScheduler",
    "JobStateError",
    "KeepJobs",
    "LockLostError",
    "NotSupportedError",
    "PendingChildrenError",
    "Queue",
    "QueueEvent",
    "QueueEvents",
    "RateLimitError",
    "SchemaVersionError",
    "UnrecoverableError",
    "WaitingChildrenError",
    "Worker",
    "WorkerSettings",
]
