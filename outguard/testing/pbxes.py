"""The second sandbox PBX of a pair, for the two-PBX tests and the two-PBX benchmark."""

from __future__ import annotations

import dataclasses

from outguard import sandbox


def second_instance(name: str, primary_offset: int) -> sandbox.Instance:
    """The second PBX ``name`` beside a primary at ``primary_offset``: signalling ports at
    primary + 50 (offsets are multiples of 100), RTP at 40000 + 10 x primary (clear of
    every primary's 20000 + 10 x offset)."""
    inst = sandbox.new_instance(name, primary_offset + 50)
    rtp = 40000 + 10 * primary_offset
    return dataclasses.replace(
        inst, ports=dataclasses.replace(inst.ports, rtp_start=rtp, rtp_end=rtp + 999))
