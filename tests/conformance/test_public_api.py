"""The public surface is ``dockyard.__all__``: sorted, complete, importable."""

from __future__ import annotations

import dockyard


def test_all_is_sorted() -> None:
    assert dockyard.__all__ == sorted(dockyard.__all__)


def test_every_public_name_is_listed_and_importable() -> None:
    public = {name for name in vars(dockyard) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(dockyard, name)).__name__ == "module"}
    assert set(dockyard.__all__) == public - modules
    for name in dockyard.__all__:
        assert getattr(dockyard, name) is not None


def test_the_design_names_are_exported() -> None:
    for name in ("Queue", "Worker", "Job", "Backoff", "UnrecoverableError", "JobFailed"):
        assert name in dockyard.__all__
