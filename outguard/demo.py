"""The embedded default: the sandbox PBX, an SQLite store with a demo call centre, the demo
policy, and a SIPp carrier that answers every call the policy lets through."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from outguard.config import AgiConfig, AmiConfig, ApiConfig, AriConfig, Settings
from outguard.errors import Conflict
from outguard.sandbox import Instance, cache_dir
from outguard.store.sqlite import SQLiteStore

logger = logging.getLogger(__name__)

TENANT = "demo"
CALLER_ID = "+861088886666"
#: agent endpoints of the sandbox and the accounts they map to
AGENTS = {"agent": "seat-01", "agent-bridge": "seat-02", "agent-agi": "seat-03"}
DNC = ["+8613900139000", "+8613900139001", "+8613900139002"]
DNC_WHY = "asked not to be called"
BLACKLIST = ["+8613700137000"]
BLACKLIST_WHY = "fraud reports"
#: a seat suspended for 30 days when the demo call centre is created: its calls are refused
SUSPENDED_SEAT = "seat-09"
SUSPENDED_WHY = "complaints from called people (demo)"


def traps() -> list[str]:
    """What the demo refuses on purpose and why, for the banner (one line each)."""
    return [
        *(f"  {n:<16} on the do-not-call list \"dnc\" ({DNC_WHY}): dnc_listed, SIP 403"
          for n in DNC),
        *(f"  {n:<16} on the \"blacklist\" ({BLACKLIST_WHY}): blacklisted, SIP 403"
          for n in BLACKLIST),
        f"  {SUSPENDED_SEAT:<16} a seat suspended for 30 days ({SUSPENDED_WHY}): "
        "account_suspended, every call from it",
    ]


def reset(path: str) -> list[Path]:
    """Delete the demo store, its WAL, spool and kept admin token (the next start seeds a
    fresh demo call centre). Returns what was removed."""
    import shutil

    store = Path(path)
    removed = []
    for p in (store, Path(f"{store}-wal"), Path(f"{store}-shm"), Path(f"{store}.spool"),
              store.with_name("admin-token")):
        if p.is_dir():
            shutil.rmtree(p)
            removed.append(p)
        elif p.exists():
            p.unlink()
            removed.append(p)
    return removed


def demo_settings(inst: Instance, db: Path | None = None) -> Settings:
    ports = inst.ports
    return Settings(
        store=str(db or cache_dir() / "demo" / "outguard.db"),
        policy="",  # the embedded demo policy (rules/presets/demo.toml)
        default_tenant=TENANT,
        ari=(AriConfig(url=inst.ari_url, user=inst.ari_user, app=inst.app,
                       password_env="OUTGUARD_ARI_PASSWORD"),),
        agi=AgiConfig(port=ports.agi),
        ami=(AmiConfig(port=ports.ami, user=inst.ami_user,
                       password_env="OUTGUARD_AMI_PASSWORD"),),
        api=ApiConfig(port=8470 + (ports.sip - 5160)),
    )


def seed(path: str) -> bool:
    """Create the demo call centre once (tenant, seats, a verified caller ID, lists).
    Returns False when it was there already."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with SQLiteStore(path) as store:
        try:
            store.create_tenant(TENANT, "Demo call centre 演示呼叫中心", actor="demo")
        except Conflict:
            return False
        for endpoint, account in AGENTS.items():
            store.create_account(account, TENANT, kind="agent", name=f"Seat on {endpoint}",
                                 actor="demo")
            store.add_account_mapping("endpoint", endpoint, account, actor="demo")
        store.create_account(SUSPENDED_SEAT, TENANT, kind="agent",
                             name="Suspended seat (demo)", actor="demo")
        store.create_suspension("account", SUSPENDED_SEAT, reason=SUSPENDED_WHY,
                                created_by="demo",
                                ends_at=datetime.now(UTC) + timedelta(days=30))
        store.upsert_caller_id(
            CALLER_ID, TENANT, type="fixed", verification="verified",
            verified_until=datetime.now(UTC) + timedelta(days=365), actor="demo",
        )
        store.create_list("dnc", "dnc", description="do-not-call (demo)", actor="demo")
        store.add_entries("dnc", DNC, source="demo", reason=DNC_WHY, actor="demo")
        store.create_list("blacklist", "blacklist", description="never call (demo)",
                          actor="demo")
        store.add_entries("blacklist", BLACKLIST, source="demo", reason=BLACKLIST_WHY,
                          actor="demo")
        store.create_list("consent", "consent", description="recorded consent (demo)",
                          actor="demo")
        store.flush()
    logger.info("seeded the demo call centre into %s", path)
    return True
