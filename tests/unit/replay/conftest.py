"""Replay runs over both store engines: the store fixtures of tests/unit/store."""

from tests.unit.store.conftest import db_path, open_store_at, store_target

__all__ = ["db_path", "open_store_at", "store_target"]
