"""Fixtures of the tests that hold for both embedded stores (SQLite and memory)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dockyard.backends import open_backend
from dockyard.backends.base import Backend
from dockyard.backends.memory import reset


@pytest.fixture(params=["sqlite", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store of each embedded kind (memory on the system clock)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db"
        return
    url = f"memory://e-{uuid.uuid4().hex}"
    yield url
    reset(url)


@pytest.fixture
async def backend(url: str) -> AsyncIterator[Backend]:
    backend = open_backend(url, "q")
    yield backend
    await backend.close()


@pytest.fixture(params=["sqlite", "memory"])
def manual_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store of each embedded kind, memory on a manual clock (time moves only when
    a test advances it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db"
        return
    url = f"memory://flows-{uuid.uuid4().hex}?clock=manual"
    yield url
    reset(url)
