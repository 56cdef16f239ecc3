"""Each MCP tool's latency through the official Python SDK, on a lab (the
demo's): the median and worst of CALLS calls after one warm-up call, over
one stdio session, as an agent host would call them.

    python latency.py LABMATE_BIN LAB_FOLDER [CALLS]

Prints markdown table rows. Tools that change the lab (launch, stop, note,
review_request) and wait are left out: their cost is the launch or the wait.
"""

import asyncio
import statistics
import sys
import time

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client


async def main(binary, folder, calls):
    params = StdioServerParameters(command=binary, args=["mcp"], cwd=folder)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, client_info=types.Implementation(name="bench", version="1")) as s:
            await s.initialize()
            runs = (await s.call_tool("runs", {"limit": 50})).structured_content["runs"]
            healthy = [r for r in runs if r["status"] == "finished"]
            a, b = healthy[0]["id"], healthy[1]["id"]
            cases = [
                ("runs", {}),
                ("runs", {"group_by": ["config.lr"]}),
                ("show_run", {"run": a}),
                ("status", {"runs": [a]}),
                ("metrics", {"run": a}),
                ("logs", {"run": a}),
                ("events", {}),
                ("compare", {"sides": [a, b]}),
                ("notebook", {}),
                ("notebook_check", {}),
            ]
            print("| tool | arguments | median ms | worst ms | characters |")
            print("|---|---|---:|---:|---:|")
            for name, args in cases:
                await s.call_tool(name, args)
                times, size = [], 0
                for _ in range(calls):
                    t = time.perf_counter()
                    result = await s.call_tool(name, args)
                    times.append((time.perf_counter() - t) * 1e3)
                    size = sum(len(c.text) for c in result.content if getattr(c, "type", "") == "text")
                shown = ", ".join("%s=%s" % (k, "..." if isinstance(v, str) and v.startswith("r-") else v) for k, v in args.items())
                print("| `%s` | %s | %.1f | %.1f | %d |" % (name, shown or "-", statistics.median(times), max(times), size))


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20))
