"""Interop tests: Node.js BullMQ (5.x and 6.x) and the Python `bullmq` package with dockyard."""
