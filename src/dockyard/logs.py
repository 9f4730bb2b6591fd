"""Logging set-up for the ``dockyard`` command: plain text lines or JSON lines.

dockyard logs through the standard ``logging`` module under the ``dockyard`` logger; a
library user configures it as they like. The command line calls :func:`configure`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

#: Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_format = "text"


def configured_format() -> str:
    """The format :func:`configure` set last (``text`` or ``json``), for child processes."""
    return _format


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send dockyard's log lines to stderr at ``level``, as ``text`` or ``json`` lines."""
    global _format
    _format = "json" if fmt == "json" else "text"
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
                datefmt="%H:%M:%S",
            )
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("dockyard").setLevel(level.upper())
