"""Key names of one queue in BullMQ's layout: ``<prefix>:<queue>:<suffix>``."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InvalidOptionError
from ...options import check_text

#: Characters a queue name may hold besides letters and digits: what URLs carry as one
#: path segment, without glob characters (``*?[]\\``) or ``/`` (field report #16).
NAME_PUNCTUATION = frozenset("-_.{}@+=~!$&'(),;")


def validate_queue_name(name: object, prefix: object) -> None:
    """Refuse queue names and prefixes BullMQ cannot key (empty, or a queue name with ':'),
    and names the HTTP API could not route (``/``, spaces, control characters, a leading
    ``.``)."""
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(f"a queue name must be a non-empty string, got {name!r}")
    if not isinstance(prefix, str) or not prefix:
        raise InvalidOptionError(f"prefix must be a non-empty string, got {prefix!r}")
    for text, what in ((name, "the queue name"), (prefix, "the prefix")):
        try:
            check_text(text, what)
        except ValueError as exc:  # the same rule, but an option's error
            raise InvalidOptionError(str(exc)) from None
    if ":" in name:
        raise InvalidOptionError(
            f"queue name {name!r} contains ':', which BullMQ uses as the key separator; "
            "use '-' or '.' instead"
        )
    bad = sorted({c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)})
    if bad or name.startswith("."):
        what = f"contains {''.join(bad)!r}" if bad else "starts with '.'"
        raise InvalidOptionError(
            f"queue name {name!r} {what}; use letters, digits and -_.{{}}@+=~!$&'(),; "
            "(not starting with '.')"
        )


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Every key of one queue; user braces (hash tags) in prefix or name are kept as given."""

    prefix: str
    name: str

    @property
    def base(self) -> str:
        """``P:N``: the qualified queue name."""
        return f"{self.prefix}:{self.name}"

    @property
    def job_prefix(self) -> str:
        """``P:N:`` — a job's key is this plus its id."""
        return f"{self.prefix}:{self.name}:"

    def key(self, suffix: str) -> str:
        """``P:N:<suffix>`` for a queue key or a job id."""
        return f"{self.prefix}:{self.name}:{suffix}"

    def job(self, job_id: str) -> str:
        """The job's hash key."""
        return f"{self.prefix}:{self.name}:{job_id}"

    def many(self, *suffixes: str) -> tuple[str, ...]:
        """Several keys at once, in order (the KEYS list of a script)."""
        base = self.job_prefix
        return tuple(base + s for s in suffixes)
