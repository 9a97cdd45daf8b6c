"""Tenants, accounts, the channel->account map, caller IDs, users and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from outguard.errors import AuthFailed, Conflict, InvalidInput, NotFound
from outguard.store.audit import write_audit
from outguard.store.base import (
    ACCOUNT_KINDS, MATCH_KINDS, ROLES, VERIFICATIONS, Account, AccountMapping, CallerId,
    NewToken, Tenant, User, match_account, to_dt, to_ts,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
STATES = ("active", "disabled")
TOKEN_PREFIX = "og"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of {', '.join(allowed)}, not {value!r}",
                           field=what, value=value)


def _tenant(row: Any) -> Tenant:
    return Tenant(row["id"], row["name"], row["state"], json.loads(row["settings"] or "{}"),
                  to_dt(row["created_at"]))


def _account(row: Any) -> Account:
    return Account(row["id"], row["tenant_id"], row["kind"], row["name"] or "", row["state"],
                   to_dt(row["created_at"]))


def _caller_id(row: Any) -> CallerId:
    return CallerId(row["e164"], row["tenant_id"], row["type"], row["verification"],
                    to_dt(row["verified_until"]), row["state"], to_dt(row["created_at"]))


def _user(row: Any) -> User:
    return User(row["id"], row["name"], row["role"], bool(row["disabled"]),
                to_dt(row["created_at"]))


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


def _fetch(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchone()
    finally:
        conn.row_factory = None


class PartiesMixin:
    if TYPE_CHECKING:
        def _write(self, job: Callable[[sqlite3.Connection], T], *, changes_data: bool = False) -> T: ...
        def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]: ...
        def _one(self, sql: str, params: tuple[Any, ...], kind: str, key: object) -> sqlite3.Row: ...

    # -- tenants -------------------------------------------------------------------------

    def create_tenant(self, id: str, name: str, *, settings: dict[str, Any] | None = None,
                      actor: str = "system") -> Tenant:
        tenant = Tenant(id, name, "active", dict(settings or {}), to_dt(time.time()))

        def job(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO tenants (id, name, state, settings, created_at) VALUES (?, ?, ?, ?, ?)",
                    (id, name, "active", json.dumps(tenant.settings), to_ts(tenant.created_at)),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"tenant {id!r} already exists", kind="tenant", key=id) from exc
            write_audit(conn, actor, "tenant.create", party_kind="tenant", party_key=id,
                        after=asdict(tenant))

        self._write(job, changes_data=True)
        return tenant

    def get_tenant(self, id: str) -> Tenant:
        return _tenant(self._one("SELECT * FROM tenants WHERE id = ?", (id,), "tenant", id))

    def list_tenants(self) -> list[Tenant]:
        return [_tenant(r) for r in self._query("SELECT * FROM tenants ORDER BY id")]

    def set_tenant_state(self, id: str, state: str, *, actor: str = "system") -> Tenant:
        _check(state, STATES, "state")
        self._set_state("tenants", "id", "tenant", id, state, actor)
        return self.get_tenant(id)

    def _set_state(self, table: str, pk: str, kind: str, key: str, state: str, actor: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute(f"SELECT state FROM {table} WHERE {pk} = ?", (key,)).fetchone()
            if row is None:
                raise NotFound(kind, key)
            conn.execute(f"UPDATE {table} SET state = ? WHERE {pk} = ?", (state, key))
            write_audit(conn, actor, f"{kind}.state", party_kind=kind, party_key=key,
                        before={"state": row[0]}, after={"state": state})

        self._write(job, changes_data=True)

    # -- accounts ------------------------------------------------------------------------

    def create_account(self, id: str, tenant_id: str, *, kind: str = "agent", name: str = "",
                       actor: str = "system") -> Account:
        _check(kind, ACCOUNT_KINDS, "account kind")
        account = Account(id, tenant_id, kind, name, "active", to_dt(time.time()))

        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
                raise NotFound("tenant", tenant_id)
            try:
                conn.execute(
                    "INSERT INTO accounts (id, tenant_id, kind, name, state, created_at)"
                    " VALUES (?, ?, ?, ?, 'active', ?)",
                    (id, tenant_id, kind, name, to_ts(account.created_at)),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"account {id!r} already exists", kind="account", key=id) from exc
            write_audit(conn, actor, "account.create", party_kind="account", party_key=id,
                        after=asdict(account))

        self._write(job, changes_data=True)
        return account

    def get_account(self, id: str) -> Account:
        return _account(self._one("SELECT * FROM accounts WHERE id = ?", (id,), "account", id))

    def list_accounts(self, tenant_id: str | None = None) -> list[Account]:
        if tenant_id is None:
            rows = self._query("SELECT * FROM accounts ORDER BY id")
        else:
            rows = self._query("SELECT * FROM accounts WHERE tenant_id = ? ORDER BY id", (tenant_id,))
        return [_account(r) for r in rows]

    def set_account_state(self, id: str, state: str, *, actor: str = "system") -> Account:
        _check(state, STATES, "state")
        self._set_state("accounts", "id", "account", id, state, actor)
        return self.get_account(id)

    # -- channel -> account map ----------------------------------------------------------

    def add_account_mapping(self, match_kind: str, pattern: str, account_id: str, *,
                            priority: int = 0, actor: str = "system") -> AccountMapping:
        _check(match_kind, MATCH_KINDS, "match kind")
        if not pattern:
            raise InvalidInput("an account mapping needs a pattern", field="pattern")

        def job(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
                raise NotFound("account", account_id)
            try:
                cur = conn.execute(
                    "INSERT INTO account_map (match_kind, pattern, account_id, priority)"
                    " VALUES (?, ?, ?, ?)", (match_kind, pattern, account_id, priority),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"{match_kind} {pattern!r} is already mapped",
                               match_kind=match_kind, pattern=pattern) from exc
            write_audit(conn, actor, "account_map.add", party_kind="account",
                        party_key=account_id,
                        after={"match_kind": match_kind, "pattern": pattern, "priority": priority})
            return int(cur.lastrowid or 0)

        mapping_id = self._write(job, changes_data=True)
        return AccountMapping(mapping_id, match_kind, pattern, account_id, priority)

    def remove_account_mapping(self, mapping_id: int, *, actor: str = "system") -> None:
        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT match_kind, pattern, account_id FROM account_map"
                               " WHERE id = ?", (mapping_id,)).fetchone()
            if row is None:
                raise NotFound("account mapping", mapping_id)
            conn.execute("DELETE FROM account_map WHERE id = ?", (mapping_id,))
            write_audit(conn, actor, "account_map.remove", party_kind="account",
                        party_key=row[2], before={"match_kind": row[0], "pattern": row[1]})

        self._write(job, changes_data=True)

    def list_account_mappings(self) -> list[AccountMapping]:
        return [
            AccountMapping(r["id"], r["match_kind"], r["pattern"], r["account_id"], r["priority"])
            for r in self._query("SELECT * FROM account_map ORDER BY id")
        ]

    def resolve_account(self, *, endpoint: str = "", channel: str = "",
                        callerid: str = "") -> str | None:
        """The mapped account (reads the table; the hot path uses the snapshot instead)."""
        return match_account(self.list_account_mappings(), endpoint=endpoint,
                             channel=channel, callerid=callerid)

    # -- caller IDs ----------------------------------------------------------------------

    def upsert_caller_id(self, e164: str, tenant_id: str, *, type: str = "unknown",
                         verification: str = "missing", verified_until: datetime | None = None,
                         state: str = "active", actor: str = "system") -> CallerId:
        _check(verification, VERIFICATIONS, "verification")
        _check(state, STATES, "state")
        now = time.time()

        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
                raise NotFound("tenant", tenant_id)
            before = _fetch(conn, "SELECT * FROM caller_ids WHERE e164 = ?", (e164,))
            conn.execute(
                "INSERT INTO caller_ids (e164, tenant_id, type, verification, verified_until,"
                " state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (e164) DO UPDATE SET tenant_id = excluded.tenant_id,"
                " type = excluded.type, verification = excluded.verification,"
                " verified_until = excluded.verified_until, state = excluded.state",
                (e164, tenant_id, type, verification, to_ts(verified_until), state, now),
            )
            after = _fetch(conn, "SELECT * FROM caller_ids WHERE e164 = ?", (e164,))
            write_audit(conn, actor, "caller_id.upsert", party_kind="caller_id", party_key=e164,
                        before=None if before is None else dict(before), after=dict(after))

        self._write(job, changes_data=True)
        return self.get_caller_id(e164)

    def get_caller_id(self, e164: str) -> CallerId:
        return _caller_id(self._one("SELECT * FROM caller_ids WHERE e164 = ?", (e164,),
                                    "caller ID", e164))

    def list_caller_ids(self, tenant_id: str | None = None) -> list[CallerId]:
        if tenant_id is None:
            rows = self._query("SELECT * FROM caller_ids ORDER BY e164")
        else:
            rows = self._query("SELECT * FROM caller_ids WHERE tenant_id = ? ORDER BY e164",
                               (tenant_id,))
        return [_caller_id(r) for r in rows]

    # -- users and tokens ----------------------------------------------------------------

    def create_user(self, name: str, role: str, *, actor: str = "system") -> User:
        _check(role, ROLES, "role")
        now = time.time()

        def job(conn: sqlite3.Connection) -> int:
            try:
                cur = conn.execute("INSERT INTO users (name, role, disabled, created_at)"
                                   " VALUES (?, ?, 0, ?)", (name, role, now))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"user {name!r} already exists", kind="user", key=name) from exc
            write_audit(conn, actor, "user.create", after={"name": name, "role": role})
            return int(cur.lastrowid or 0)

        return User(self._write(job), name, role, False, to_dt(now))

    def get_user(self, name: str) -> User:
        return _user(self._one("SELECT * FROM users WHERE name = ?", (name,), "user", name))

    def list_users(self) -> list[User]:
        return [_user(r) for r in self._query("SELECT * FROM users ORDER BY name")]

    def set_user_disabled(self, name: str, disabled: bool, *, actor: str = "system") -> User:
        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("UPDATE users SET disabled = ? WHERE name = ?",
                            (int(disabled), name)).rowcount == 0:
                raise NotFound("user", name)
            write_audit(conn, actor, "user.disable" if disabled else "user.enable",
                        after={"name": name})

        self._write(job)
        return self.get_user(name)

    def create_token(self, user_name: str, *, label: str = "", actor: str = "system") -> NewToken:
        """A new API token for the user; the returned ``token`` is the only copy."""
        user = self.get_user(user_name)
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        digest = hash_secret(secret, salt)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO tokens (id, user_id, salt, hash, label, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (token_id, user.id, salt, digest, label, time.time()),
            )
            write_audit(conn, actor, "token.create",
                        after={"user": user_name, "token_id": token_id, "label": label})

        self._write(job)
        return NewToken(token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}", user)

    def revoke_token(self, token_id: str, *, actor: str = "system") -> None:
        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                            (time.time(), token_id)).rowcount == 0:
                raise NotFound("token", token_id)
            write_audit(conn, actor, "token.revoke", after={"token_id": token_id})

        self._write(job)

    def verify_token(self, token: str) -> User:
        """The user a presented token belongs to; AuthFailed if unknown/revoked/wrong."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
            raise AuthFailed("malformed token")
        rows = self._query(
            "SELECT t.salt, t.hash, t.revoked_at, u.* FROM tokens t JOIN users u"
            " ON u.id = t.user_id WHERE t.id = ?", (parts[1],),
        )
        if not rows:
            hash_secret(parts[2], b"0" * 16)  # same cost whether or not the id exists
            raise AuthFailed("unknown token")
        row = rows[0]
        if not hmac.compare_digest(hash_secret(parts[2], row["salt"]), row["hash"]):
            raise AuthFailed("token does not match")
        if row["revoked_at"] is not None or row["disabled"]:
            raise AuthFailed("token revoked or user disabled")
        return _user(row)
