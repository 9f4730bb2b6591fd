"""The Redis backend: BullMQ's data model, our own Lua scripts."""

from .backend import RedisBackend

__all__ = ["RedisBackend"]
