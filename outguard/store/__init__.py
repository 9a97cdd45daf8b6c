"""The durable store: parties, lists, enforcement records and the call log.

``SQLiteStore`` is the embedded default; ``AsyncStore`` wraps a store for the event loop;
``Store`` (a Protocol) is what callers code against.
"""

from pathlib import Path
from typing import Any

from outguard.store.aio import AsyncStore
from outguard.store.base import (
    Account, AccountMapping, Appeal, AppealState, AuditRecord, CallerId, CallRecord, LoggedCall,
    Complaint, Entry, ImportProgress, ImportResult, ListRecord, NewToken, Store, Suspension,
    Tenant, User, match_account,
)
from outguard.store.sqlite import SQLiteStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


def open_store(target: str | Path, **options: Any) -> SQLiteStore:
    """The store the ``store`` setting names: a PostgreSQL URL, else an SQLite file path.

    PostgreSQL needs the ``cluster`` extra (psycopg); SQLite needs nothing more.
    """
    if is_postgres_url(str(target)):
        try:
            from outguard.store.postgres import PostgresStore
        except ImportError as exc:
            from outguard.errors import StoreError

            raise StoreError(
                "store is a PostgreSQL URL but psycopg is not installed"
                " (pip install 'outguard[cluster]')"
            ) from exc
        return PostgresStore(str(target), **options)
    return SQLiteStore(target, **options)

__all__ = [
    "Account", "AccountMapping", "Appeal", "AppealState", "AsyncStore", "AuditRecord",
    "CallRecord", "LoggedCall", "CallerId", "Complaint", "Entry", "ImportProgress",
    "ImportResult", "ListRecord", "NewToken", "SQLiteStore", "Store", "Suspension", "Tenant",
    "User", "is_postgres_url", "match_account", "open_store",
]
