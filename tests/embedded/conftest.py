"""Fixtures of the tests run on both embedded stores (SQLite file, memory on a virtual clock)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dockyard.backends.memory import reset


@pytest.fixture(params=["sqlite", "memory"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty store of each embedded kind in turn (memory: on a manual clock)."""
    if request.param == "sqlite":
        tmp = request.getfixturevalue("tmp_path")
        yield f"sqlite:///{tmp}/jobs.db"
        return
    url = f"memory://flows-{uuid.uuid4().hex}?clock=manual"
    yield url
    reset(url)
