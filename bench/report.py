"""Turn the raw results of ``bench/run.py`` into bench/RESULTS.md (pure, apart from
``machine_info``)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.procstat import cpu_model, load_average, median, percentile, slope

LABELS = {
    "direct": "baseline: agent-direct, no screening",
    "native": "native AstDB blacklist (agent-native)",
    "agi": "outguard FastAGI (agent-agi)",
    "ari": "outguard ARI continue (agent)",
    "bridge": "outguard ARI bridge (agent-bridge)",
    "ari-sub": "outguard ARI continue, no AMI session (agent)",
}
BASE = "direct"


def machine_info() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            mem_kb = int(fh.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    asterisk = "?"
    try:
        from outguard.sandbox import CHROOT_MARKER, chroot_dir

        asterisk = (chroot_dir() / CHROOT_MARKER).read_text(encoding="utf-8").strip()
    except (OSError, ImportError):
        pass
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu_model(), "mem_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(), "python": sys.version.split()[0],
        "asterisk": asterisk, "load_avg_at_start": load_average(),
    }


# ---------------------------------------------------------------- formatting


def f(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def fr(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def spread(values: Sequence[float], digits: int = 0) -> str:
    if not values:
        return "n/a"
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------- aggregation


def steps_of(e2e: dict[str, Any], phase: str, variant: str | None = None,
             rep: int | None = None) -> list[dict[str, Any]]:
    return [s for s in e2e["steps"] if s["phase"] == phase
            and (variant is None or s["variant"] == variant) and (rep is None or s["rep"] == rep)]


def reps_of(e2e: dict[str, Any]) -> list[int]:
    return sorted({s["rep"] for s in e2e["steps"] if s["phase"] == "search"})


#: the stricter "sustained" criterion reported beside the brief's (< 1% failed calls):
#: a step whose post-dial delay p99 exceeds this did not sustain the rate either
PDD_LIMIT_MS = 500.0


def step_ok(step: dict[str, Any], pdd_limit: float | None = None) -> bool:
    if not step["passed"]:
        return False
    if pdd_limit is None:
        return True
    p99 = percentile(step["pdd_ms"], 99)
    return p99 is not None and p99 <= pdd_limit


def max_cps(e2e: dict[str, Any], variant: str, rep: int,
            pdd_limit: float | None = None) -> tuple[float | None, bool]:
    """The rate of the last passing step before the variant's first failing one in a
    repetition (None: the first step failed), and whether every step passed (the search
    was capped: the figure is a floor). With ``pdd_limit`` a step must also keep its
    post-dial delay p99 under that many ms."""
    steps = sorted(steps_of(e2e, "search", variant, rep), key=lambda s: s["rate"])
    top = None
    for s in steps:
        if not step_ok(s, pdd_limit):
            return top, False
        top = s["rate"]
    return top, bool(steps)


def per_call(step: dict[str, Any], what: str) -> float | None:
    if not step["completed"]:
        return None
    return step[f"{what}_cpu_s"] / step["completed"] * 1000


def common_rate(e2e: dict[str, Any], rep: int, variants: Sequence[str]) -> float | None:
    """The highest rate every variant passed in a repetition."""
    tops = [max_cps(e2e, v, rep)[0] for v in variants]
    return None if any(t is None for t in tops) else min(t for t in tops if t is not None)


def aggregate(e2e: dict[str, Any]) -> dict[str, dict[str, Any]]:
    variants = list(e2e["config"]["variants"])
    reps = reps_of(e2e)
    out: dict[str, dict[str, Any]] = {}
    commons = {r: common_rate(e2e, r, variants) for r in reps}
    for v in variants:
        a: dict[str, Any] = {}
        tops = {r: max_cps(e2e, v, r) for r in reps}
        strict = {r: max_cps(e2e, v, r, PDD_LIMIT_MS)[0] for r in reps}
        a["max_strict"] = strict
        a["max_strict_median"] = median([t for t in strict.values() if t is not None])
        strict_ratios = []
        for r in reps:
            base = max_cps(e2e, BASE, r, PDD_LIMIT_MS)[0]
            if strict[r] is not None and base:
                strict_ratios.append(strict[r] / base)
        a["max_strict_ratios"] = strict_ratios
        a["max_strict_ratio"] = median(strict_ratios)
        a["max"] = {r: t for r, (t, _) in tops.items()}
        a["capped"] = any(c for _, c in tops.values())
        a["max_median"] = median([t for t, _ in tops.values() if t is not None])
        ratios = []
        for r in reps:
            mine, base = tops[r][0], max_cps(e2e, BASE, r)[0]
            if mine is not None and base:
                ratios.append(mine / base)
        a["max_ratios"] = ratios
        a["max_ratio"] = median(ratios)
        moderate = steps_of(e2e, "moderate", v)
        pdd = [d for s in moderate for d in s["pdd_ms"]]
        a["pdd_mod"] = (percentile(pdd, 50), percentile(pdd, 99), len(pdd))
        a["pdd_mod_rep_p99"] = [percentile(s["pdd_ms"], 99) for s in moderate if s["pdd_ms"]]
        a["pdd_source"] = ", ".join(sorted({s["pdd_source"] for s in moderate})) or "n/a"
        near: list[float] = []
        near_rates = []
        for r in reps:
            top = tops[r][0]
            for s in steps_of(e2e, "search", v, r):
                if s["rate"] == top and s["passed"]:
                    near += s["pdd_ms"]
                    near_rates.append(top)
        a["pdd_near"] = (percentile(near, 50), percentile(near, 99), len(near))
        a["near_rates"] = near_rates
        for label, steps in (("mod", moderate), ("common", [
                s for r in reps for s in steps_of(e2e, "search", v, r)
                if commons[r] is not None and s["rate"] == commons[r]])):
            for what in ("asterisk", "outguard", "sipp"):
                a[f"cpu_{label}_{what}"] = median(
                    [x for s in steps if (x := per_call(s, what)) is not None])
            totals = {s["rep"]: (per_call(s, "asterisk") or 0) + (per_call(s, "outguard") or 0)
                      for s in steps if s["completed"]}
            a[f"cpu_{label}_pbx_by_rep"] = totals
        a["stasis"] = {ph: [x for s in steps_of(e2e, ph, v) for x in s["stasis_ms"]]
                       for ph in ("moderate", "search", "memory")}
        a["agi"] = {ph: [x for s in steps_of(e2e, ph, v) for x in s["agi_ms"]]
                    for ph in ("moderate", "search", "memory")}
        a["leaked"] = sum(s.get("leaked_channels", 0) for s in e2e["steps"] if s["variant"] == v)
        a["failed_steps"] = [(s["rep"], s["rate"], s["failed"], s["calls"], s["finals"])
                             for s in steps_of(e2e, "search", v) if not s["passed"]]
        out[v] = a
    base = out.get(BASE)
    for v, a in out.items():
        for label in ("mod", "common"):
            ratios = []
            if base is not None:
                for r, total in a[f"cpu_{label}_pbx_by_rep"].items():
                    b = base[f"cpu_{label}_pbx_by_rep"].get(r)
                    if b:
                        ratios.append(total / b)
            a[f"cpu_{label}_ratio"] = median(ratios)
        a["commons"] = commons
    return out


# ---------------------------------------------------------------- the report


def e2e_section(e2e: dict[str, Any]) -> list[str]:
    cfg = e2e["config"]
    agg = aggregate(e2e)
    base = agg.get(BASE, {})
    reps = reps_of(e2e)
    lines = ["## End to end on the sandbox Asterisk", ""]
    lines += [
        f"SIPp agent -> PJSIP -> outbound context -> SIPp carrier on 127.0.0.1; every call "
        f"dials an unlisted number (the allowed path), the carrier rings, answers and hangs up "
        f"after {cfg['hold_ms']} ms. Blacklist: {cfg['list_numbers']:,} numbers, the same in "
        f"outguard's store and in AstDB. {len(reps)} repetition(s), variants interleaved "
        f"(order rotated each repetition). Stepped search over "
        f"{', '.join(str(r) for r in cfg['rates'])} calls/s, each step "
        f"{cfg['step_seconds']:g} s of calls (at most {cfg['step_max_calls']:,}); a step "
        f"passes with < 1% failed calls and >= 90% of the rate offered; a variant stops at "
        f"its first failing step. Moderate rate: {cfg['moderate_rate']:g} calls/s x "
        f"{cfg['moderate_calls']} calls per variant per repetition. Ratios are to the "
        f"baseline of the same repetition (medians of the per-repetition ratios).", "",
        "### Summary (ratios to the baseline)", "",
    ]
    rows = []
    for v, a in agg.items():
        mx = a["max"]
        per_rep = "/".join("<" + str(cfg["rates"][0]) if mx[r] is None else f"{mx[r]:.0f}"
                           for r in reps)
        p50, p99, n = a["pdd_mod"]
        added = None if p99 is None or base.get("pdd_mod", (None, None))[1] is None \
            else p99 - base["pdd_mod"][1]
        added50 = None if p50 is None or base.get("pdd_mod", (None,))[0] is None \
            else p50 - base["pdd_mod"][0]
        n50, n99, _ = a["pdd_near"]
        strict_rep = "/".join("<" + str(cfg["rates"][0]) if a["max_strict"][r] is None
                              else f"{a['max_strict'][r]:.0f}" for r in reps)
        rows.append([
            LABELS.get(v, v),
            f"{f(a['max_median'], 0)}{'+' if a['capped'] else ''} ({per_rep})",
            f"{fr(a['max_ratio'])} ({spread(a['max_ratios'], 2)})",
            f"{f(a['max_strict_median'], 0)} ({strict_rep}); "
            f"{fr(a['max_strict_ratio'])} ({spread(a['max_strict_ratios'], 2)})",
            f"{f(p50)} / {f(p99)}",
            f"{f(added50, 2)} / {f(added, 2)}",
            f"{f(n50, 1)} / {f(n99, 1)}",
            f"{f(a['cpu_mod_asterisk'])} / {f(a['cpu_mod_outguard'])} / {f(a['cpu_mod_sipp'])}",
            fr(a["cpu_mod_ratio"]),
            f"{f(a['cpu_common_asterisk'])} / {f(a['cpu_common_outguard'])}",
            fr(a["cpu_common_ratio"]),
        ])
    lines += table([
        "variant", "max CPS median (per rep)", "max CPS ratio (spread)",
        f"max CPS with PDD p99 <= {PDD_LIMIT_MS:g} ms (per rep); ratio (spread)",
        f"PDD p50 / p99 ms @{cfg['moderate_rate']:g} cps",
        "added PDD p50 / p99 ms", "PDD p50 / p99 ms near max",
        f"CPU ms/call @{cfg['moderate_rate']:g} cps: Asterisk / outguard / SIPp",
        "(Asterisk+outguard) CPU ratio",
        "CPU ms/call @common rate: Asterisk / outguard", "ratio @common rate",
    ], rows)
    commons = next(iter(agg.values()))["commons"] if agg else {}
    lines += [
        "",
        "- max CPS: the last passing step before the first failing one (< 1% failed calls "
        "and >= 90% of the rate offered); `+` means a repetition passed every step (a floor). "
        f"The stricter column also fails a step whose post-dial delay p99 is above "
        f"{PDD_LIMIT_MS:g} ms: past the CPU limit Asterisk queues calls rather than failing "
        "them, so calls still complete, seconds late. PDD: INVITE sent -> first 180/183/200 received, from a "
        f"packet capture of the agent's leg on lo (source: "
        f"{', '.join(sorted({a['pdd_source'] for a in agg.values()}))}); pooled over the "
        "repetitions. 'Near max': the highest passing step of each repetition "
        "(rates: " + "; ".join(f"{v} {'/'.join(f'{x:.0f}' for x in a['near_rates'])}"
                               for v, a in agg.items()) + ").",
        "- CPU ms/call: utime+stime deltas from /proc/<pid>/stat (Asterisk, the outguard "
        "process(es) serving the variant) and wait4() rusage (both SIPp processes) over the "
        "step, divided by completed calls; medians over the repetitions. 'Common rate': the "
        "highest rate every variant passed in that repetition ("
        + ", ".join(f"rep {r}: {f(c, 0)}" for r, c in commons.items()) + " calls/s).",
    ]
    lines += ["", "### outguard's own handling latency", ""]
    rows = []
    for v, a in agg.items():
        for kind, label in (("stasis", "StasisStart -> continue/hangup answered"),
                            ("agi", "FastAGI accept -> verdict set")):
            for ph, xs in a[kind].items():
                if xs:
                    rows.append([LABELS.get(v, v), label, ph, f"{len(xs):,}",
                                 f(percentile(xs, 50), 2), f(percentile(xs, 99), 2),
                                 f(max(xs), 1)])
    lines += table(["variant", "measure", "phase", "calls", "p50 ms", "p99 ms", "max ms"], rows)
    lines += ["", "'search' pools every step of the stepped search (rates up to the "
              "variant's maximum: under load); 'memory' is the long run below."]
    rows = []
    for v in agg:
        for ph in ("moderate", "search"):
            steps = steps_of(e2e, ph, v)
            kinds = sorted({k for s in steps for k in s.get("requests_ms", {})})
            for kind in kinds:
                xs = [x for s in steps for x in s["requests_ms"].get(kind, [])]
                rows.append([LABELS.get(v, v), ph, kind, f"{len(xs):,}",
                             f(percentile(xs, 50)), f(percentile(xs, 99))])
    if rows:
        lines += ["", "ARI REST round trips as outguard sees them (request sent -> reply "
                  "read; the app sends the variables and the channel subscription together, "
                  "then continue):", ""]
        lines += table(["variant", "phase", "request", "count", "p50 ms", "p99 ms"], rows)
    rows = []
    for v in agg:
        steps = [s for s in e2e["steps"] if s["variant"] == v and s.get("events")]
        done = sum(s["completed"] for s in steps)
        if done:
            total: dict[str, int] = {}
            for s in steps:
                for k, n in s["events"].items():
                    total[k] = total.get(k, 0) + n
            rows.append([LABELS.get(v, v), f"{sum(total.values()) / done:.1f}",
                         ", ".join(f"{k} {n / done:.1f}" for k, n in sorted(total.items()))])
    if rows:
        lines += ["", "ARI events received per completed call:", ""]
        lines += table(["variant", "events/call", "by type"], rows)
    mem = e2e.get("memory") or {}
    if mem.get("samples"):
        pts = [(t, kb) for t, kb in mem["samples"]]
        half = [p for p in pts if p[0] >= pts[-1][0] / 2]
        s_all, s_half = slope(pts), slope(half)
        lines += ["", "### outguard memory over a long run", "",
                  f"{LABELS.get(mem['variant'], mem['variant'])} at {mem['rate']:g} calls/s "
                  f"for {mem['minutes']:g} min ({mem['completed']:,} of {mem['calls']:,} calls "
                  f"completed), cycling over {cfg['memory_callees']:,} callees; RSS of the "
                  f"outguard process from /proc/<pid>/status every 5 s ({len(pts)} samples).", ""]
        lines += table(["start MB", "end MB", "max MB", "slope, whole run", "slope, 2nd half"], [[
            f(pts[0][1] / 1024, 1), f(pts[-1][1] / 1024, 1),
            f(max(kb for _, kb in pts) / 1024, 1),
            f"{f(None if s_all is None else s_all * 60 / 1024, 3)} MB/min",
            f"{f(None if s_half is None else s_half * 60 / 1024, 3)} MB/min"]])
    lines += ["", "### Every step", ""]
    rows = []
    for s in e2e["steps"]:
        pdd = s["pdd_ms"]
        rows.append([
            s["phase"], str(s["rep"]), s["variant"], f"{s['rate']:g}", str(s["calls"]),
            "pass" if s["passed"] else "FAIL", str(s["failed"]),
            ",".join(f"{k}:{n}" for k, n in sorted(s["finals"].items())),
            f(s["offered_cps"], 1), f(percentile(pdd, 50)), f(percentile(pdd, 99)),
            f(per_call(s, "asterisk")), f(per_call(s, "outguard")), f(per_call(s, "sipp")),
            f"{s['steal']:.0%}", f"{s['busy']:.0%}", f"{s['drain_s']:.0f}",
            str(s.get("leaked_channels", 0)),
        ])
    lines += table(["phase", "rep", "variant", "rate", "calls", "result", "failed", "finals",
                    "offered cps", "PDD p50", "PDD p99", "ast ms/call", "og ms/call",
                    "sipp ms/call", "steal", "busy", "drain s", "left up"], rows)
    return lines


def targets_section(e2e: dict[str, Any]) -> list[str]:
    agg = aggregate(e2e)
    if BASE not in agg:
        return []
    lines = ["## Targets (ratios within this run)", ""]
    rows = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**missed**")

    def both(lenient: float | None, strict: float | None, need: float) -> str:
        return (f"{verdict(None if lenient is None else lenient >= need)}; with the PDD "
                f"bound {verdict(None if strict is None else strict >= need)}")

    if "ari" in agg:
        a = agg["ari"]
        r = a["max_ratio"]
        rs = a["max_strict_ratio"]
        rows.append(["ARI continue max CPS >= 0.9 x baseline",
                     f"{fr(r)} (with PDD p99 <= {PDD_LIMIT_MS:g} ms: {fr(rs)})",
                     both(r, rs, 0.9)])
        if "native" in agg:
            nat = [x / y for x, y in zip(
                [a["max"][k] or 0 for k in sorted(a["max"])],
                [agg["native"]["max"][k] or 1 for k in sorted(a["max"])])]
            rn = median(nat)
            nat_s = [x / y for x, y in zip(
                [a["max_strict"][k] or 0 for k in sorted(a["max_strict"])],
                [agg["native"]["max_strict"][k] or 1 for k in sorted(a["max_strict"])])]
            rows.append(["ARI continue max CPS >= native",
                         f"{fr(rn)} of native (with PDD p99 <= {PDD_LIMIT_MS:g} ms: "
                         f"{fr(median(nat_s))})",
                         both(rn, median(nat_s), 1.0)])
        p99, b99 = a["pdd_mod"][1], agg[BASE]["pdd_mod"][1]
        added = None if p99 is None or b99 is None else p99 - b99
        rows.append(["ARI continue added PDD p99 <= 2 ms at the moderate rate",
                     f(added, 2, " ms"), verdict(None if added is None else added <= 2.0)])
    if "agi" in agg:
        r = agg["agi"]["max_ratio"]
        rs = agg["agi"]["max_strict_ratio"]
        rows.append(["FastAGI max CPS >= 0.85 x baseline",
                     f"{fr(r)} (with PDD p99 <= {PDD_LIMIT_MS:g} ms: {fr(rs)})",
                     both(r, rs, 0.85)])
    mem = e2e.get("memory") or {}
    if mem.get("samples"):
        pts = mem["samples"]
        half = [p for p in pts if p[0] >= pts[-1][0] / 2]
        s = slope(half)
        grow = None if s is None else s * 60 / 1024
        rows.append([f"no memory growth over {mem['minutes']:g} min at {mem['rate']:g} cps",
                     f"{f(grow, 3)} MB/min (2nd half)",
                     verdict(None if grow is None else abs(grow) < 0.05)])
    lines += table(["target", "measured", "verdict"], rows)
    return lines


def write_report(results: dict[str, Any], out: Path) -> None:
    info = results["info"]
    m = info["machine"]
    git = info.get("git") or {}
    lines = [
        "# outguard benchmarks: results", "",
        f"- date: {info['started']} -> {info.get('finished', '?')} ({info.get('minutes', '?')} "
        f"min){' — QUICK smoke run, not the full sizes' if info.get('quick') else ''}",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gb']} GB RAM, Linux "
        f"{m['kernel']}, Python {m['python']}, {m['asterisk']}; load average at start "
        f"{m['load_avg_at_start']}",
    ]
    run_cpu = info.get("run_cpu")
    if run_cpu:
        lines.append(f"- whole run, from /proc/stat (tick-sampled: under-counts bursty load): CPU busy {run_cpu['busy']:.0%}, steal "
                     f"{run_cpu['steal']:.1%}, idle {run_cpu['idle']:.0%} (the machine is "
                     "shared: other engineers' test suites ran at the same time)")
    e2e = results.get("e2e")
    if e2e:
        steals = [s["steal"] for s in e2e["steps"]]
        busy = [s["busy"] for s in e2e["steps"]]
        lines.append(f"- per end-to-end step: steal {min(steals):.0%}-{max(steals):.0%} "
                     f"(median {median(steals):.0%}), machine busy {min(busy):.0%}-"
                     f"{max(busy):.0%} (median {median(busy):.0%})")
    if git:
        lines.append(f"- code: git {git.get('head', '?')} ({git.get('subject', '')})"
                     + (f" plus uncommitted changes in: {git['dirty']}" if git.get("dirty")
                        else ""))
    lines += ["", "Commands:", "", "```", f"{info['argv']}"]
    for part in ("engine", "store"):
        if part in results:
            lines.append("  " + " ".join(str(c) for c in results[part]["command"]))
    lines += ["```", ""]
    if e2e:
        lines += targets_section(e2e) + [""] + e2e_section(e2e) + [""]
        setup = e2e.get("setup", {})
        lines += ["### Set-up", "",
                  f"- outguard store: {setup.get('store')}; AstDB: {setup.get('astdb_keys')} "
                  f"keys written in {setup.get('astdb_s')} s; outguard start (snapshot "
                  f"built, ARI connected): ARI process {setup.get('outguard_ari_start_s')} s, "
                  f"FastAGI+AMI process {setup.get('outguard_agi_start_s')} s", ""]
    for part, title in (("engine", "Engine (bench/engine.py)"),
                        ("store", "Store (bench/store.py)")):
        if part in results:
            r = results[part]
            lines += [f"## {title}", "",
                      f"`{' '.join(str(c) for c in r['command'])}` — exit {r['returncode']}, "
                      f"{r['seconds']} s", "", "```", r["output"], "```", ""]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
