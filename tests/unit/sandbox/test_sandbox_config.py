from __future__ import annotations

import re
from pathlib import Path

import pytest

from outguard import sandbox


def test_every_template_placeholder_has_a_value(tmp_path: Path) -> None:
    root = tmp_path / "chroot"
    (root / "etc/asterisk").mkdir(parents=True)
    (root / "etc/asterisk/asterisk.conf").write_text("astmoddir => /usr/lib/mods\n")
    etc = sandbox.write_config(root, sandbox.new_instance("t", 0))
    written = {p.name: p.read_text() for p in etc.iterdir()}
    assert "outguard.conf" in written and "pjsip.conf" in written
    for name, text in written.items():
        assert not re.search(r"\{\{\w+\}\}", text), name
    assert "astmoddir => /usr/lib/mods" in written["asterisk.conf"]
    assert "bind = 127.0.0.1:5160" in written["pjsip.conf"]


def test_unknown_placeholder_is_an_error_not_left_in_place() -> None:
    with pytest.raises(sandbox.SandboxError, match="nope"):
        sandbox.render("x {{nope}}", {})


def test_shifted_ports_move_together_and_do_not_overlap() -> None:
    a, b = sandbox.Ports(), sandbox.Ports().shifted(100)
    assert b.sip == a.sip + 100 and b.http == a.http + 100
    assert b.rtp_start == a.rtp_end + 1
    assert not {a.sip, a.http, a.ami, a.agi, a.carrier, a.agent} & {
        b.sip, b.http, b.ami, b.agi, b.carrier, b.agent}


def test_instances_get_their_own_secrets() -> None:
    one, two = sandbox.new_instance("x"), sandbox.new_instance("x")
    assert one.ari_password != two.ari_password and len(one.ari_password) == 24


def test_instance_round_trips_through_its_state_file_form() -> None:
    inst = sandbox.new_instance("rt", 300)
    assert sandbox.Instance.from_json(inst.to_json()) == inst


def test_nothing_is_mounted_under_a_fresh_directory(tmp_path: Path) -> None:
    assert sandbox.mounts_under(tmp_path) == []
    assert sandbox.mounts_under(Path("/")) != []
