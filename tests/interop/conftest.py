"""Fixtures of the interop tests; `redis_url` and `redis_sync` come from tests/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .node_harness import NodeProcess, start_node


@pytest.fixture
def queue_name() -> str:
    """A fresh queue name per test, so leftovers of one test never meet another."""
    return f"interop-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def node() -> Iterator[Callable[[str, dict[str, Any]], NodeProcess]]:
    """Start Node scripts in the background; any still running at teardown are killed."""
    started: list[NodeProcess] = []

    def start(script: str, args: dict[str, Any]) -> NodeProcess:
        proc = start_node(script, args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
