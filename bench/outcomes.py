"""How should the end of a continue-mode call reach outguard? Measure the options.

Each option is a way for Asterisk to tell outguard the answer time, duration and Q.850
hangup cause of a call outguard let through, without a per-channel ARI subscription. For
each option the sandbox's unscreened agent context is rewritten (``dialplan reload``), an
AMI client subscribes the way that option needs, and SIPp places calls through Asterisk
to the SIPp carrier. Measured per completed call: Asterisk CPU (utime+stime from
/proc/<pid>/stat), AMI events that reached the client, and events carrying an outcome.
Options run interleaved, rotated each repetition, against a "none" variant (no AMI client,
no handler) as the floor.

    .venv/bin/python -m bench.outcomes --calls 600 --rate 60 --reps 3

Options:
  none         no outcome at all (the floor)
  ami-idle     an AMI client connected with the handler's filter, but no handler: what
               an AMI session costs Asterisk by itself (it formats every event once)
  handler      a hangup handler's UserEvent (dialplan/outguard.conf [outguard-ended]);
               AMI filtered to that UserEvent
  ami-events   AMI call events filtered to Newstate|DialEnd|Hangup (what the FastAGI
               tracker read before)
  cdr          Cdr events over AMI (cdr_manager); no Q.850 cause in them
  handler-quiet  the handler, with the manager events outguard never reads disabled
               globally (the disabledevents of dialplan/samples/manager.conf): what the
               AMI session's cost is made of; only for a PBX with no other AMI client
  all          an AMI client that reads every event: which events a call brings
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from agi.ami import AmiClient
from bench.procstat import cpu_share, read_cpu_times, read_pid_cpu
from outguard import sandbox
from outguard.testing import sipp

PLAIN = "exten => _[+0-9].,1,Goto(outguard-dial,${EXTEN},1)"
HANDLER = ("exten => _[+0-9].,1,Set(CHANNEL(hangup_handler_push)=outguard-ended,s,1)\n"
           " same => n,Goto(outguard-dial,${EXTEN},1)")


def quiet_events() -> tuple[str, ...]:
    """The events dialplan/samples/manager.conf suggests a PBX with no other AMI client
    disables (its commented ``disabledevents`` line): what ``handler-quiet`` measures."""
    sample = Path(__file__).resolve().parents[1] / "dialplan/samples/manager.conf"
    for line in sample.read_text(encoding="utf-8").splitlines():
        if line.startswith(";disabledevents = "):
            return tuple(line.split("=", 1)[1].strip().split(","))
    raise RuntimeError(f"{sample}: no ;disabledevents line")


@dataclass(frozen=True)
class Option:
    name: str
    dialplan: str
    events: str | None  # AMI event classes; None: no AMI client
    filters: tuple[str, ...]
    outcome: re.Pattern[str]  # which received events carry an outcome
    disabled: tuple[str, ...] = ()  # manager.conf [general] disabledevents


OPTIONS = {
    o.name: o for o in (
        Option("none", PLAIN, None, (), re.compile("^$")),
        Option("ami-idle", PLAIN, "user", (r"UserEvent: OutguardEnded",),
               re.compile("^UserEvent$")),
        Option("handler", HANDLER, "user", (r"UserEvent: OutguardEnded",),
               re.compile("^UserEvent$")),
        Option("ami-events", PLAIN, "call",
               (r"^Event: (Newstate|DialEnd|Hangup)[[:space:]]",),
               re.compile("^(Newstate|DialEnd|Hangup)$")),
        Option("cdr", PLAIN, "cdr", (r"^Event: Cdr[[:space:]]",), re.compile("^Cdr$")),
        Option("handler-quiet", HANDLER, "user", (r"UserEvent: OutguardEnded",),
               re.compile("^UserEvent$"), quiet_events()),
        Option("all", HANDLER, "on", (), re.compile("^UserEvent$")),
    )
}


@dataclass
class Sample:
    option: str
    calls: int
    asterisk_ms_per_call: float
    events_per_call: float
    outcome_events_per_call: float
    busy_share: float
    steal_share: float
    kinds: dict[str, int] = field(default_factory=dict)


def set_agent_context(box: sandbox.Sandbox, dialplan: str) -> None:
    etc = sandbox.chroot_dir() / sandbox._inside(box.inst.name)["etc"].lstrip("/")
    path = etc / "extensions.conf"
    text = path.read_text(encoding="utf-8")
    start = text.index("[from-agent-direct]")
    end = text.index("\n\n", start)
    path.write_text(text[:start] + "[from-agent-direct]\n" + dialplan + text[end:],
                    encoding="utf-8")
    box.cli("dialplan reload")


def set_disabled_events(box: sandbox.Sandbox, events: tuple[str, ...]) -> None:
    etc = sandbox.chroot_dir() / sandbox._inside(box.inst.name)["etc"].lstrip("/")
    path = etc / "manager.conf"
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n")
             if not ln.startswith("disabledevents")]
    # a reload keeps the old list when the option is gone: always name one (a placeholder
    # no event has when nothing is to be disabled)
    lines.insert(lines.index("[general]") + 1,
                 "disabledevents = " + ",".join(events or ("OutguardNoSuchEvent",)))
    path.write_text("\n".join(lines), encoding="utf-8")
    box.cli("manager reload")


async def one(box: sandbox.Sandbox, option: Option, calls: int, rate: float) -> Sample:
    set_agent_context(box, option.dialplan)
    set_disabled_events(box, option.disabled)
    inst = box.inst
    kinds: dict[str, int] = {}

    def seen(event: object) -> None:
        kind = str(getattr(event, "get")("Event", ""))
        kinds[kind] = kinds.get(kind, 0) + 1

    client: AmiClient | None = None
    task: asyncio.Task[None] | None = None
    if option.events is not None:
        client = AmiClient("127.0.0.1", inst.ports.ami, inst.ami_user, inst.ami_password,
                           events=option.events, filters=option.filters, on_event=seen)
        task = asyncio.get_running_loop().create_task(client.run())
        deadline = time.monotonic() + 10
        while not client.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    pid = box.pid()
    assert pid is not None
    kinds.clear()
    with sipp.Carrier(inst, hold_ms=200):
        before, machine = read_pid_cpu(pid), read_cpu_times()
        run = await asyncio.to_thread(sipp.place_calls, inst, "13800138000",
                                      from_user="agent-direct", count=calls, rate=rate,
                                      timeout_s=calls / rate + 30)
        await asyncio.sleep(1.0)  # the last hangups' events
        after, machine_after = read_pid_cpu(pid), read_cpu_times()
    if client is not None and task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
    done = sum(1 for f in run.finals() if f == 200)
    assert before is not None and after is not None
    cpu_ms = (after.seconds() - before.seconds()) * 1000
    total = sum(kinds.values())
    outcome = sum(n for k, n in kinds.items() if option.outcome.match(k))
    share = cpu_share(machine, machine_after)
    return Sample(option.name, done, cpu_ms / max(done, 1), total / max(done, 1),
                  outcome / max(done, 1), share.busy, share.steal, kinds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rate", type=float, default=60.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--instance", default=os.environ.get("OUTGUARD_TEST_INSTANCE", "bench"))
    parser.add_argument("--offset", type=int,
                        default=int(os.environ.get("OUTGUARD_TEST_OFFSET", "0")))
    args = parser.parse_args()
    names = args.options.split(",")
    box = sandbox.up(args.instance, args.offset)
    samples: list[Sample] = []
    try:
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                sample = await one(box, OPTIONS[name], args.calls, args.rate)
                samples.append(sample)
                print(f"rep {rep + 1} {name}: {sample.calls} calls, Asterisk "
                      f"{sample.asterisk_ms_per_call:.2f} ms/call, "
                      f"{sample.events_per_call:.2f} events/call {sample.kinds}, "
                      f"machine busy {sample.busy_share:.0%} steal {sample.steal_share:.0%}", flush=True)
    finally:
        box.stop()
    print("\n| option | Asterisk CPU ms/call (median; per rep) | AMI events/call | "
          "outcome events/call |\n|---|---|---|---|")
    for name in names:
        mine = [s for s in samples if s.option == name]
        cpu = [s.asterisk_ms_per_call for s in mine]
        print(f"| {name} | {statistics.median(cpu):.2f} ({'/'.join(f'{c:.2f}' for c in cpu)})"
              f" | {statistics.median(s.events_per_call for s in mine):.2f}"
              f" | {statistics.median(s.outcome_events_per_call for s in mine):.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
