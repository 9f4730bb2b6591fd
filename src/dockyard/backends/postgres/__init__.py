"""The PostgreSQL backend (``postgresql://user:pass@host/db?schema=dockyard``); see backend.py.

Needs the ``postgres`` extra (psycopg 3): ``pip install 'dockyard[postgres]'``.
"""

from .backend import PostgresBackend, parse_url

__all__ = ["PostgresBackend", "parse_url"]
