"""``python -m dockyard``: the same as the ``dockyard`` command."""

from .cli import run

raise SystemExit(run())
