"""The private PostgreSQL server of the tests: :class:`dockyard.devserver.PostgresServer`
(``initdb`` + ``pg_ctl`` on a free loopback port, as ``postgres`` when root); never the
machine's own server on 5432. The bench starts the same class.
"""

from __future__ import annotations

from dockyard.devserver import PG_DATABASE as DATABASE
from dockyard.devserver import PG_PASSWORD as PASSWORD
from dockyard.devserver import PG_USER as USER
from dockyard.devserver import PostgresServer

__all__ = ["DATABASE", "PASSWORD", "USER", "PostgresServer"]
