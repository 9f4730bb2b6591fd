"""The ``dockyard`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="dockyard", description="dockyard job queue")
    parser.add_argument(
        "--url", default=os.environ.get("DOCKYARD_URL"), help="backend URL (default: $DOCKYARD_URL)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="a short end-to-end run on a private store")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        from .demo import main as demo

        return demo(args.url)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
