"""Post-dial delay from a packet capture: INVITE sent -> first 180/183/200 received.

SIPp's own clock ticks come in ~4 ms steps on this kind of machine, so the benchmark
captures the agent's SIP leg on ``lo`` (``dumpcap -i lo -P -f "udp port AGENT"``, classic
pcap with microsecond or nanosecond timestamps) and reads it here. Pure code: no capture,
no subprocess; ``tshark -r FILE`` can be used to check a capture by hand.

Handles the link types a Linux ``lo`` capture comes in (Ethernet, Linux cooked v1/v2, BSD
null, raw IP), IPv4 and IPv6, UDP only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
#: link type -> bytes of link header before the IP header (None: read the ethertype)
_LINK_HEADER = {1: 14, 113: 16, 276: 20, 0: 4, 101: 0, 228: 0, 229: 0}


class PcapError(ValueError):
    """Not a classic pcap file, or a link type this reader does not know."""


@dataclass(frozen=True, slots=True)
class Packet:
    ts: float  # seconds since the epoch, microsecond (or better) resolution
    src_port: int
    dst_port: int
    payload: bytes


def read_packets(path: str | Path) -> Iterator[Packet]:
    """UDP packets of a classic pcap file; a truncated last record is ignored."""
    with open(path, "rb") as fh:
        head = fh.read(24)
        if len(head) < 24:
            return
        magic = _MAGIC.get(head[:4])
        if magic is None:
            raise PcapError(f"{path}: not a classic pcap file (pcapng? capture with -P)")
        order, unit = magic
        linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
        if linktype not in _LINK_HEADER:
            raise PcapError(f"{path}: link type {linktype} not supported")
        record = struct.Struct(order + "IIII")
        while True:
            rh = fh.read(16)
            if len(rh) < 16:
                return
            sec, frac, incl, _orig = record.unpack(rh)
            data = fh.read(incl)
            if len(data) < incl:
                return
            packet = _udp(data, linktype, sec + frac * unit)
            if packet is not None:
                yield packet


def _udp(data: bytes, linktype: int, ts: float) -> Packet | None:
    off = _LINK_HEADER[linktype]
    if linktype == 1 and len(data) >= 14:
        ethertype = struct.unpack("!H", data[12:14])[0]
        if ethertype == 0x8100:  # one VLAN tag
            off = 18
    if len(data) < off + 1:
        return None
    version = data[off] >> 4
    if version == 4:
        ihl = (data[off] & 0x0F) * 4
        if data[off + 9] != 17:
            return None
        frag = struct.unpack("!H", data[off + 6:off + 8])[0]
        if frag & 0x1FFF:  # a later fragment: no UDP header
            return None
        udp = off + ihl
    elif version == 6:
        if len(data) < off + 40 or data[off + 6] != 17:
            return None
        udp = off + 40
    else:
        return None
    if len(data) < udp + 8:
        return None
    sport, dport = struct.unpack("!HH", data[udp:udp + 4])
    return Packet(ts, sport, dport, data[udp + 8:])


@dataclass(frozen=True, slots=True)
class SipMessage:
    ts: float
    call_id: str
    method: str  # request method, or "" for a response
    status: int  # response status, or 0 for a request
    cseq_method: str


def parse_sip(packet: Packet) -> SipMessage | None:
    """The first line, Call-ID and CSeq method of one SIP message (None if not SIP)."""
    head = packet.payload.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    first = lines[0].decode("latin-1", "replace").split()
    if len(first) < 2:
        return None
    if first[0] == "SIP/2.0":
        if not first[1].isdigit():
            return None
        method, status = "", int(first[1])
    elif len(first) >= 3 and first[2] == "SIP/2.0":
        method, status = first[0], 0
    else:
        return None
    call_id = cseq_method = ""
    for raw in lines[1:]:
        name, sep, value = raw.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key in (b"call-id", b"i"):
            call_id = value.strip().decode("latin-1")
        elif key == b"cseq":
            parts = value.split()
            cseq_method = parts[1].decode("latin-1") if len(parts) > 1 else ""
    if not call_id:
        return None
    return SipMessage(packet.ts, call_id, method, status, cseq_method)


@dataclass(slots=True)
class CallTimes:
    invite: float | None = None  # first INVITE seen (retransmissions ignored)
    alerted: float | None = None  # first 180/183/200 to the INVITE
    final: int | None = None  # first final status to the INVITE


@dataclass
class PddReport:
    """Per call: INVITE -> first 180/183/200, in seconds, plus what the leg saw."""

    calls: dict[str, CallTimes] = field(default_factory=dict)

    @property
    def delays(self) -> list[float]:
        return [c.alerted - c.invite for c in self.calls.values()
                if c.invite is not None and c.alerted is not None]

    @property
    def invites(self) -> list[float]:
        return sorted(c.invite for c in self.calls.values() if c.invite is not None)

    def finals(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for c in self.calls.values():
            if c.final is not None:
                out[c.final] = out.get(c.final, 0) + 1
        return out

    def offered_rate(self) -> float | None:
        """Calls per second between the first and the last new INVITE."""
        times = self.invites
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])


def post_dial_delays(messages: Iterator[SipMessage] | list[SipMessage]) -> PddReport:
    """Fold SIP messages (in capture order) into per-call INVITE/alerting times."""
    report = PddReport()
    for msg in messages:
        call = report.calls.get(msg.call_id)
        if msg.method == "INVITE":
            if call is None:
                call = report.calls[msg.call_id] = CallTimes()
            if call.invite is None:
                call.invite = msg.ts
            continue
        if call is None or msg.status == 0 or msg.cseq_method != "INVITE":
            continue
        if msg.status in (180, 183, 200) and call.alerted is None:
            call.alerted = msg.ts
        if msg.status >= 200 and call.final is None:
            call.final = msg.status
    return report


def pdd_from_pcap(path: str | Path, agent_port: int) -> PddReport:
    """Post-dial delay of every call the agent at ``agent_port`` placed in a capture:
    INVITEs sent from that port, responses sent to it."""

    def messages() -> Iterator[SipMessage]:
        for packet in read_packets(path):
            msg = parse_sip(packet)
            if msg is None:
                continue
            if msg.method and packet.src_port != agent_port:
                continue
            if not msg.method and packet.dst_port != agent_port:
                continue
            yield msg

    return post_dial_delays(messages())
