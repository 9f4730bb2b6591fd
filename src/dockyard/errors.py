"""The exception tree of dockyard.

Everything dockyard raises derives from :class:`DockyardError`::

    DockyardError
    ├── InvalidJobError          bad job input, refused before anything is written
    ├── InvalidOptionError       a bad option value or an unknown option
    │   └── ClusterSlotError     on Redis Cluster, a queue's (or a flow's) keys span slots
    ├── JobNotFoundError         the job does not exist (any more)
    ├── LockLostError            the job's lock is gone or belongs to another worker
    ├── JobStateError            the job is not in the state the operation needs
    │   ├── JobLockedError       a worker holds the job's lock, so it cannot be changed now
    │   ├── PendingChildrenError a parent cannot complete: children still pending
    │   └── FailedChildrenError  a parent cannot complete: a child failed (fail_parent_on_failure)
    ├── BackendUnavailableError  the store cannot be reached, after retries
    ├── BackendError             the store answered with an error dockyard did not expect
    │   ├── BackendFullError     the store is full (Redis at maxmemory, a full disk)
    │   └── BackendRefusedError  the store refuses us for a reason retrying cannot fix
    │       ├── BackendAuthError        wrong password, unknown or disabled user
    │       ├── BackendPermissionError  the ACL user lacks a command or key permission
    │       ├── BackendTLSError         the certificate check failed (either side)
    │       ├── BackendVersionError     the server is older than dockyard needs
    │       └── SchemaVersionError      the tables were written by a newer dockyard
    ├── NotSupportedError        a backend cannot do this (SchemaVersionError too)
    └── JobFailed                raised by ``Job.wait_until_finished``; carries the reason

Handlers raise these to steer their own job; they are not errors of dockyard's:

    UnrecoverableError   fail the job now, with no further attempts
    DelayedError         the handler moved its job to delayed; do nothing more
    RateLimitError       the handler hit a rate limit; put the job back to wait
    WaitingChildrenError the handler moved its job to waiting-children; do nothing more

Negative return codes of the Redis scripts map through :class:`ScriptCode` and
:func:`error_for_code` to one of the classes above.
"""

from __future__ import annotations

from enum import IntEnum


class DockyardError(Exception):
    """Root of every error dockyard raises; catch it to handle them all."""


class InvalidJobError(DockyardError, ValueError):
    """The job's name, data or id is not acceptable; fix the input, nothing was written."""


class InvalidOptionError(DockyardError, ValueError):
    """An option has a bad value or is unknown; fix the call, nothing was written."""


class ClusterSlotError(InvalidOptionError):
    """On Redis Cluster, a queue's keys (or a flow's queues) would hash to several slots,
    which the scripts cannot work on at once; put one hash tag in the prefix, e.g.
    ``prefix="{bull}"``, or in the queue name, e.g. ``"{emails}"``. Nothing was written."""


class JobNotFoundError(DockyardError, LookupError):
    """The job does not exist (it was removed or never added); check the id and queue."""


class LockLostError(DockyardError):
    """The job's lock expired or belongs to another worker; the job was taken over, leave it."""


class JobStateError(DockyardError):
    """The job is not in the state this operation needs (e.g. not active); re-read its state."""


class JobLockedError(JobStateError):
    """A worker is running the job (it holds its lock); wait until it finishes, then retry."""


class BackendUnavailableError(DockyardError, ConnectionError):
    """The store could not be reached, even after retries; check that it runs and is reachable."""


class BackendError(DockyardError):
    """The store refused a command with an error of its own (the message is the store's);
    check the store's health and logs, and report it if it persists."""


class BackendRefusedError(BackendError):
    """The store refused us for a reason that retrying cannot fix (a login, a permission, a
    certificate, a database number out of range, a server too old); the message says what
    to change in the URL or on the server. Never retried: raised at once."""


class BackendAuthError(BackendRefusedError):
    """The store refused the login (Redis: wrong password, unknown or disabled ACL user, a
    password the server does not want, or none where it needs one; PostgreSQL: wrong user
    or password, or no pg_hba.conf entry for us); fix the URL's user and password."""


class BackendPermissionError(BackendRefusedError):
    """The Redis ACL user may not run a command or touch a key that dockyard needs (NOPERM);
    the message names them: grant them (README "Production Redis" lists each role's ACL)."""


class BackendTLSError(BackendRefusedError):
    """The TLS handshake failed for good: the server's certificate is not trusted (give
    ``ssl_ca_certs``), names another host, or the server wants a client certificate
    (``ssl_certfile``/``ssl_keyfile``) or refused ours; fix the URL's TLS options."""


class BackendVersionError(BackendRefusedError):
    """The Redis server is older than dockyard needs (the message names both versions);
    upgrade the server."""


class BackendFullError(BackendError):
    """Redis is out of memory (maxmemory reached with the noeviction policy), or the SQLite
    file's disk is full, and writes are refused (nothing was written); free memory, raise
    maxmemory or remove finished jobs (clean, retention)."""


class NotSupportedError(DockyardError):
    """This backend cannot do what was asked; use a backend that can (the message names both)."""


class SchemaVersionError(BackendRefusedError, NotSupportedError):
    """The store's tables were written by a newer dockyard (the message names both schema
    versions); upgrade dockyard. Nothing was changed."""


class JobFailed(DockyardError):
    """The awaited job failed; ``reason`` holds its failure reason."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class UnrecoverableError(Exception):
    """Raise from a handler to fail the job at once, with no further attempts."""


class DelayedError(Exception):
    """Raise from a handler after moving its own job to delayed; the worker does nothing more."""


class RateLimitError(Exception):
    """Raise from a handler that hit a rate limit; the job goes back to wait untouched."""


class ScriptCode(IntEnum):
    """Negative return codes shared by the Redis scripts (BullMQ's numbering)."""

    JOB_MISSING = -1
    LOCK_MISSING = -2
    NOT_IN_STATE = -3
    PENDING_DEPENDENCIES = -4
    PARENT_MISSING = -5
    LOCK_MISMATCH = -6
    OTHER_PARENT = -7
    SCHEDULER_JOB = -8
    FAILED_CHILDREN = -9


#: What each operation needs, for the text of a NOT_IN_STATE refusal (field report #25).
_NEEDED_STATE = {
    "move": "active (a worker must hold it)",
    "promote": "delayed",
    "change_delay": "delayed",
    "change_priority": "waiting or prioritized",
    "retry": "completed or failed",
    "remove": "removable (it is locked by a worker)",
    "update_progress": "active",
    "log": "active",
}


def error_for_code(code: int, job_id: str, operation: str) -> DockyardError:
    """Build the exception for a script's negative return ``code`` on ``job_id``."""
    try:
        kind = ScriptCode(code)
    except ValueError:
        return DockyardError(f"{operation} on job {job_id} failed with unknown code {code}")
    if kind is ScriptCode.JOB_MISSING:
        return JobNotFoundError(f"{operation}: job {job_id} does not exist")
    if kind is ScriptCode.LOCK_MISSING:
        return LockLostError(
            f"{operation}: the lock of job {job_id} is missing (it expired and the job may "
            "have been recovered as stalled); the result was not stored"
        )
    if kind is ScriptCode.LOCK_MISMATCH:
        return LockLostError(
            f"{operation}: job {job_id} is locked by another worker; the result was not stored"
        )
    if kind is ScriptCode.NOT_IN_STATE:
        needed = _NEEDED_STATE.get(operation.split(" ")[0], "the state this operation needs")
        return JobStateError(
            f"{operation}: job {job_id} is not {needed}; read its state with get_state()"
        )
    if kind is ScriptCode.PENDING_DEPENDENCIES:
        if operation == "remove":
            return pending_children_error(job_id)
        return PendingChildrenError(f"{operation}: job {job_id} still has pending children")
    if kind is ScriptCode.PARENT_MISSING:
        return JobNotFoundError(f"{operation}: the parent of job {job_id} does not exist")
    if kind is ScriptCode.OTHER_PARENT:
        return InvalidJobError(f"{operation}: job {job_id} already exists with another parent")
    if kind is ScriptCode.SCHEDULER_JOB:
        return scheduler_job_error(job_id, operation)
    return FailedChildrenError(
        f"{operation}: job {job_id} cannot complete: a child failed with fail_parent_on_failure"
    )


def scheduler_job_error(job_id: str, operation: str = "remove") -> JobStateError:
    """The refusal to remove (or drop) the iteration a job scheduler will advance from."""
    scheduler = job_id.split(":")[1] if job_id.count(":") >= 2 else "?"
    return JobStateError(
        f"{operation}: job {job_id} is the current iteration of job scheduler {scheduler!r}, "
        "which makes its next iteration from it; remove the scheduler instead "
        f"(remove_job_scheduler({scheduler!r}))"
    )


# -- flows (parent/child jobs) ------------------------------------------------------------


class PendingChildrenError(JobStateError):
    """The job has children that have not finished, so it cannot complete yet; wait for
    them (``Job.move_to_waiting_children``) or fail the job."""


class FailedChildrenError(JobStateError):
    """A child of the job failed with fail_parent_on_failure, so the job cannot complete;
    it can only fail (a worker fails it with no further attempts)."""


def pending_children_error(job_id: str) -> PendingChildrenError:
    """The refusal to remove a parent whose children are pending."""
    return PendingChildrenError(
        f"remove: job {job_id} is a parent with children still pending, which would run "
        "for a parent that is gone; remove the children first (or let them finish)"
    )


class WaitingChildrenError(Exception):
    """Raise from a handler after ``await job.move_to_waiting_children()`` returned True:
    the job now waits for its children; the worker does nothing more with it."""
