"""CPU per timed await: asyncio.wait_for vs asyncio.timeout (why the product uses only the
latter; see tests/unit/test_cancellation.py for the other reason).

    .venv/bin/python bench/timed_await.py
"""

import asyncio, time, statistics
async def ready() -> int:
    return 1
async def main():
    async def via_wait_for():
        return await asyncio.wait_for(ready(), 5)
    async def via_timeout():
        async with asyncio.timeout(5):
            return await ready()
    res = {"wait_for": [], "timeout": []}
    n = 20000
    for rep in range(5):
        for name, fn in (("wait_for", via_wait_for), ("timeout", via_timeout)):
            t = time.process_time()
            for _ in range(n):
                await fn()
            res[name].append((time.process_time() - t) / n * 1e6)
    for k, v in res.items():
        print(k, "median us per timed await: %.2f" % statistics.median(v), [round(x, 2) for x in v])
asyncio.run(main())
