"""Shares of a py-spy profile of the outguard process, by where the time goes.

    py-spy record --subprocesses --threads -r 200 --format raw -o prof.txt -- \\
        .venv/bin/python -m bench.run --quick --skip engine,store --variants direct,ari ...
    python3 bench/pyspy_shares.py prof.txt

Start-up frames and idle waits are left out; each on-CPU sample of a bench.outguard_proc
process is counted once, under the first matching category.
"""

import collections, re, sys
IDLE_LEAF = ("EpollSelector.select", "Writer._loop (outguard/store/writer.py:242)", "_worker (", "Condition.wait", "Event.wait", "SimpleQueue", "Queue.get")
STARTUP = ("exec_module", "_find_and_load", "_make_ssl_context", "_process_class", "dataclass", "sre_compile", "_compile (re", "_adjust_thread_count", "<module>", "warm_numbers", "build_snapshot", "replay", "restore", "migrat", "_compile (", "load_policy", "run_until_complete (asyncio/base_events.py:6", "main (bench/outguard_proc")
cats = collections.Counter(); tot = idle = start = 0
def cat(stack):
    s = stack
    if "writer.py" in s and "Writer._" in s: return "call-log writer thread: SQLite batches"
    if "enqueue_" in s or "record_decision" in s or "record_outcome" in s: return "call log: enqueue rows (event loop)"
    if "client_ws" in s or "_websocket" in s or "json/" in s: return "ARI events: WebSocket read + JSON decode"
    if "ari_app/client.py" in s or "aiohttp/client" in s or "http_writer" in s or "client_reqrep" in s or "client_proto" in s: return "ARI REST request: aiohttp client send/receive"
    if "rules/" in s: return "decision: rules/ (normalise, classify, decide)"
    if "agi/" in s: return "AMI: read, parse, outcome"
    if "_websocket" in s or "client_ws" in s or "json" in s: return "ARI events: WebSocket read + JSON decode"
    if "outguard/enforcement" in s: return "risk figures (enforcement)"
    if "outguard/api/metrics" in s or "probes.py" in s or "latency.py" in s: return "metrics, probes, latency recorders"
    if re.search(r"outguard/(service|live|events|callevents|callfacts|screening|logsafe|privacy)\.py", s) or "ari_app/app.py" in s: return "screener bookkeeping: live registry, events, facts, decision log"
    if "logging/" in s: return "logging"
    if "asyncio/" in s or "selectors" in s: return "asyncio loop and sockets"
    return "other"
for line in open(sys.argv[1]):
    head, _, rest = line.partition(";thread")
    if "bench.outguard_proc" not in head: continue
    stack, _, n = line.rstrip().rpartition(" "); n = int(n); stack = "thread" + stack.partition(";thread")[2]
    leaf = stack.split(";")[-1]
    if leaf.startswith("thread ("): continue  # native frames only
    if any(leaf.startswith(x) for x in IDLE_LEAF): idle += n; continue
    if any(x in stack for x in STARTUP) and "_run_once" not in stack: start += n; continue
    tot += n; cats[cat(stack)] += n
print("on-CPU samples", tot, "idle", idle, "startup", start)
for k, v in cats.most_common(): print(f"{v/tot*100:5.1f}% {v:5d} {k}")
