"""The durable store: parties, lists, enforcement records and the call log.

``SQLiteStore`` is the embedded default; ``AsyncStore`` wraps a store for the event loop;
``Store`` (a Protocol) is what callers code against.
"""

from outguard.store.aio import AsyncStore
from outguard.store.base import (
    Account, AccountMapping, Appeal, AppealState, AuditRecord, CallerId, CallRecord, LoggedCall,
    Complaint, Entry, ImportProgress, ImportResult, ListRecord, NewToken, Store, Suspension,
    Tenant, User, match_account,
)
from outguard.store.sqlite import SQLiteStore

__all__ = [
    "Account", "AccountMapping", "Appeal", "AppealState", "AsyncStore", "AuditRecord",
    "CallRecord", "LoggedCall", "CallerId", "Complaint", "Entry", "ImportProgress",
    "ImportResult", "ListRecord", "NewToken", "SQLiteStore", "Store", "Suspension", "Tenant",
    "User", "match_account",
]
