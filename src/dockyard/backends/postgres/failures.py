"""What a PostgreSQL error means for the caller: a refusal that retrying cannot fix (a
wrong password, a missing database, a missing privilege) gets its own typed error."""

from __future__ import annotations

import re

import psycopg

from ...errors import (
    BackendAuthError,
    BackendPermissionError,
    BackendRefusedError,
    InvalidJobError,
)

#: SQLSTATEs of refusals that retrying cannot fix, and what to change.
_REFUSALS = {
    "28P01": "the user or password is wrong",
    "28000": "the server refused this user (pg_hba.conf has no entry that lets it in)",
    "3D000": "the database does not exist; create it (createdb) or fix the URL's path",
    "42501": "the user lacks a privilege dockyard needs (CREATE on the database or schema)",
}


def refusal(exc: psycopg.Error, where: str) -> BackendRefusedError | None:
    """The typed error of a refusal that retrying cannot fix, or None."""
    state = exc.sqlstate
    text = str(exc).strip()
    if state is None:  # a refusal during the login carries no SQLSTATE in some versions
        if "password authentication failed" in text or ("password" in text and "supplied" in text):
            state = "28P01"
        elif "no pg_hba.conf entry" in text:
            state = "28000"
        elif re.search(r'database ".*" does not exist', text):
            state = "3D000"
    if state not in _REFUSALS:
        return None
    cls = {"28P01": BackendAuthError, "28000": BackendAuthError}.get(
        state, BackendPermissionError if state == "42501" else BackendRefusedError
    )
    return cls(f"{where} refused dockyard: {_REFUSALS[state]} ({text})")


def nul_refused() -> InvalidJobError:
    return InvalidJobError(
        "PostgreSQL refused text holding a NUL character ('\\x00'); remove it. Nothing was written."
    )
