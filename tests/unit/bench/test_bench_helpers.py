"""The benchmark's pure helpers: the PCAP post-dial-delay parser, the /proc parsers and
the statistics. (The benchmark itself is not part of the test run: bench/README.md.)"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bench.pcap import PcapError, parse_sip, pdd_from_pcap, read_packets
from bench.procstat import (
    CpuTimes,
    cpu_share,
    median,
    parse_pid_stat,
    parse_proc_stat,
    parse_status_kb,
    percentile,
    slope,
)

AGENT, PBX = 5770, 5760


def sip(first: str, call_id: str, cseq: str) -> bytes:
    return (f"{first}\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()


def udp_frame(src: int, dst: int, payload: bytes, link: int) -> bytes:
    udp = struct.pack("!HHHH", src, dst, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01") + udp
    if link == 1:  # Ethernet, as dumpcap writes for lo
        return b"\x00" * 12 + b"\x08\x00" + ip
    if link == 113:  # Linux cooked v1
        return b"\x00" * 14 + b"\x08\x00" + ip
    return ip  # raw IP (101)


def write_pcap(path: Path, packets: list[tuple[float, int, int, bytes]], link: int = 1,
               nanos: bool = False) -> Path:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, link)]
    for ts, src, dst, payload in packets:
        frame = udp_frame(src, dst, payload, link)
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanos else 1e6))
        out.append(struct.pack("<IIII", sec, frac, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def call(call_id: str, t0: float, ring_after: float | None, final: int,
         final_after: float) -> list[tuple[float, int, int, bytes]]:
    packets = [(t0, AGENT, PBX, sip("INVITE sip:13800000000@127.0.0.1 SIP/2.0", call_id,
                                    "1 INVITE")),
               (t0 + 0.0002, PBX, AGENT, sip("SIP/2.0 100 Trying", call_id, "1 INVITE"))]
    if ring_after is not None:
        packets.append((t0 + ring_after, PBX, AGENT,
                        sip("SIP/2.0 180 Ringing", call_id, "1 INVITE")))
    packets.append((t0 + final_after, PBX, AGENT,
                    sip(f"SIP/2.0 {final} X", call_id, "1 INVITE")))
    return packets


@pytest.mark.parametrize("link", [1, 113, 101])
def test_post_dial_delay_is_invite_to_first_ringing_or_answer(tmp_path: Path, link: int) -> None:
    packets = (call("a@x", 100.0, 0.002125, 200, 0.003)
               + call("b@x", 100.5, None, 200, 0.0041)  # no 180: the 200 counts
               + call("c@x", 101.0, None, 403, 0.001))  # refused: no post-dial delay
    pcap = write_pcap(tmp_path / "x.pcap", sorted(packets), link=link)
    report = pdd_from_pcap(pcap, AGENT)
    assert sorted(round(d * 1e6) for d in report.delays) == [2125, 4100]
    assert report.finals() == {200: 2, 403: 1}
    assert report.offered_rate() == pytest.approx(2.0)


def test_retransmitted_invite_and_bye_responses_do_not_count(tmp_path: Path) -> None:
    packets = call("a@x", 10.0, 0.0030, 200, 0.0040)
    packets.insert(1, (10.0005, AGENT, PBX, sip("INVITE sip:1@h SIP/2.0", "a@x", "1 INVITE")))
    packets.append((10.5, AGENT, PBX, sip("BYE sip:1@h SIP/2.0", "a@x", "2 BYE")))
    packets.append((10.501, PBX, AGENT, sip("SIP/2.0 200 OK", "a@x", "2 BYE")))
    report = pdd_from_pcap(write_pcap(tmp_path / "r.pcap", packets, nanos=True), AGENT)
    assert [round(d * 1e6) for d in report.delays] == [3000]


def test_messages_of_other_legs_are_ignored(tmp_path: Path) -> None:
    carrier = [(5.0, PBX, 5780, sip("INVITE sip:1@h SIP/2.0", "leg2", "1 INVITE")),
               (5.001, 5780, PBX, sip("SIP/2.0 180 Ringing", "leg2", "1 INVITE"))]
    report = pdd_from_pcap(write_pcap(tmp_path / "o.pcap", carrier), AGENT)
    assert report.delays == []


def test_compact_call_id_header_is_read() -> None:
    from bench.pcap import Packet

    msg = parse_sip(Packet(1.0, AGENT, PBX, b"INVITE sip:1@h SIP/2.0\r\ni: abc\r\n"
                                            b"CSeq: 1 INVITE\r\n\r\n"))
    assert msg is not None and (msg.call_id, msg.method) == ("abc", "INVITE")
    assert parse_sip(Packet(1.0, 1, 2, b"\x80\x00rtp")) is None


def test_pcapng_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)
    with pytest.raises(PcapError, match="capture with -P"):
        list(read_packets(path))


def test_truncated_capture_keeps_the_whole_records(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "t.pcap", call("a@x", 1.0, 0.002, 200, 0.003))
    data = pcap.read_bytes()
    pcap.write_bytes(data[:-10])
    assert len(list(read_packets(pcap))) == 3


# ---------------------------------------------------------------- CPU accounting


def test_pid_stat_counts_from_the_last_parenthesis() -> None:
    # a command name with spaces and a ')' must not shift the fields
    fields = ["S"] + [str(i) for i in range(4, 53)]
    fields[14 - 3], fields[15 - 3] = "250", "50"  # utime, stime
    fields[16 - 3], fields[17 - 3] = "7", "3"  # cutime, cstime
    fields[24 - 3] = "1234"  # rss pages
    cpu = parse_pid_stat("4242 (we ird) name) " + " ".join(fields))
    assert (cpu.own_ticks, cpu.children_ticks, cpu.rss_pages) == (300, 10, 1234)


def test_proc_stat_share_separates_steal() -> None:
    before = parse_proc_stat("cpu  100 0 100 700 0 0 0 100 0 0\ncpu0 1 2 3\n")
    after = parse_proc_stat("cpu  200 0 200 800 0 0 0 200 0 0\n")
    share = cpu_share(before, after)
    assert (share.busy, share.steal, share.idle) == (0.5, 0.25, 0.25)
    assert cpu_share(before, before) == cpu_share(CpuTimes(0, 0, 0, 0, 0, 0, 0, 0),
                                                  CpuTimes(0, 0, 0, 0, 0, 0, 0, 0))


def test_status_rss() -> None:
    text = "Name:\tpython\nVmPeak:\t  9000 kB\nVmRSS:\t   81234 kB\n"
    assert parse_status_kb(text, "VmRSS") == 81234
    assert parse_status_kb(text, "VmSwap") is None


# ---------------------------------------------------------------- statistics


def test_percentiles_median_and_slope() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) is None
    assert median([3.0, 1.0, 2.0, 10.0]) == 2.5
    assert slope([(0.0, 10.0), (60.0, 10.0), (120.0, 10.0)]) == 0.0
    assert slope([(0.0, 0.0), (1.0, 2.0), (2.0, 4.0)]) == pytest.approx(2.0)
    assert slope([(1.0, 5.0)]) is None


def test_the_copy_is_given_the_report_path_without_the_callers_own_out() -> None:
    from bench.run import strip_option

    argv = ["--quick", "--out", "a.md", "--reps", "2", "--out=b.md", "--outx", "1"]
    assert strip_option(argv, "--out") == ["--quick", "--reps", "2", "--outx", "1"]
