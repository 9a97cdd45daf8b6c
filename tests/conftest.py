"""Fixtures shared by every test: the sandbox PBX and SIPp, for the integration tests.

The integration tests need a real Asterisk (the sandbox chroot) and SIPp. Locally, when
either is missing, they are skipped with the reason; in CI (``CI=true``) a missing piece
fails the run instead: CI never passes without having talked to a real PBX.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from outguard import sandbox
from outguard.testing import servers

# The demo uses offset 0. Several test runs can share a machine when each sets its own
# OUTGUARD_TEST_INSTANCE and OUTGUARD_TEST_OFFSET (e.g. 100, 200, ...).
TEST_INSTANCE = os.environ.get("OUTGUARD_TEST_INSTANCE", "test")
TEST_PORT_OFFSET = int(os.environ.get("OUTGUARD_TEST_OFFSET", "100"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"integration test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pbx() -> Iterator[sandbox.Sandbox]:
    """The sandbox Asterisk for this test session, started once and stopped at the end."""
    if os.geteuid() != 0:
        _unavailable("the sandbox PBX needs root (chroot)")
    if shutil.which("sipp") is None:
        _unavailable("SIPp is missing (apt-get install sip-tester)")
    if not sandbox.chroot_is_sound(sandbox.chroot_dir()):
        if shutil.which("debootstrap") is None:
            _unavailable("no sandbox chroot and no debootstrap to build one")
        sandbox.ensure_chroot()
    box = sandbox.Sandbox(sandbox.new_instance(TEST_INSTANCE, TEST_PORT_OFFSET))
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def clean_pbx(pbx: sandbox.Sandbox) -> Iterator[sandbox.Sandbox]:
    """The sandbox with no channel left over from an earlier test, before and after, and
    the globals outguard sets at connect empty (``OUTGUARD_PBX``)."""
    pbx.hangup_all()
    pbx.reset_globals()
    yield pbx
    pbx.hangup_all()
    pbx.reset_globals()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer]:
    """A redis-server of this test session on 127.0.0.1 (port 17000 + offset)."""
    try:
        servers.redis_binary()
    except servers.ServerUnavailable as exc:
        _unavailable(str(exc))
    server = servers.RedisServer(servers.REDIS_BASE_PORT + TEST_PORT_OFFSET, TEST_INSTANCE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[servers.PostgresServer]:
    """A PostgreSQL cluster of this test session on 127.0.0.1 (port 14000 + offset)."""
    try:
        servers.pg_bindir()
    except servers.ServerUnavailable as exc:
        _unavailable(str(exc))
    server = servers.PostgresServer(servers.PG_BASE_PORT + TEST_PORT_OFFSET, TEST_INSTANCE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _masking_setting_restored() -> Iterator[None]:
    """The masking setting is process-wide (one service per process); a test that starts a
    service with ``show_numbers = true`` must not leave numbers shown for the next test."""
    from outguard import privacy

    shown = privacy.showing_numbers()
    yield
    privacy.show_numbers(shown)
