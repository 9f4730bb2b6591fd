"""The embedded SQLite backend (``sqlite:///path/to/jobs.db``); see backend.py."""

from .backend import SqliteBackend, parse_url

__all__ = ["SqliteBackend", "parse_url"]
