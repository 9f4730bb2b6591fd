"""The app's registry of open queues."""

from __future__ import annotations

from dockyard.web.app import MAX_OPEN_QUEUES, Registry


async def test_open_queues_are_capped_least_recently_used_first() -> None:
    registry = Registry("memory://registry-cap", "bull", None)
    first = registry.queue("q0")
    for i in range(1, MAX_OPEN_QUEUES + 40):
        registry.queue(f"q{i}")
        registry.queue("q0")  # kept in use: never the one closed
    assert len(registry.queues) == MAX_OPEN_QUEUES
    assert registry.queue("q0") is first
    assert "q1" not in registry.queues and f"q{MAX_OPEN_QUEUES + 39}" in registry.queues
    await registry.close()
    assert registry.queues == {} and not registry._closing
