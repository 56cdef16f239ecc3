"""How soon an MCP `wait` returns after a run's loss goes NaN: REPEAT runs,
each launched through `launch`, then a `wait` is open when the run is told
(by a file) to log NaN; the time from telling it to the wait's answer.

    python alert.py LABMATE_BIN LAB_FOLDER [REPEAT]

Prints a markdown table row. The lab's default rules alert on NaN.
"""

import asyncio
import os
import statistics
import sys
import time

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

SCRIPT = """import os, sys, time
go = sys.argv[1]
t_end = time.time() + 300
print('##labmate {"step": 0, "loss": 1.0}', flush=True)
while not os.path.exists(go) and time.time() < t_end:
    time.sleep(0.01)
print('##labmate {"step": 1, "loss": NaN}', flush=True)
time.sleep(30)
"""


async def main(binary, folder, repeat):
    with open(os.path.join(folder, "nan_bench.py"), "w") as f:
        f.write(SCRIPT)
    params = StdioServerParameters(command=binary, args=["mcp"], cwd=folder)
    times = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, client_info=types.Implementation(name="bench", version="1")) as s:
            await s.initialize()
            for i in range(repeat):
                go = os.path.join(folder, "go-%d" % i)
                launched = await s.call_tool("launch", {"argv": ["python3", "nan_bench.py", go], "name": "nan-%d" % i})
                run = launched.structured_content["run"]
                await s.call_tool("wait", {"runs": [run], "until": "loss >= 0", "timeout_s": 60})
                pending = asyncio.create_task(s.call_tool("wait", {"runs": [run], "timeout_s": 60}))
                await asyncio.sleep(1.0)
                t = time.time()
                open(go, "w").close()
                result = await pending
                times.append(time.time() - t)
                text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                assert "alert" in text or "ended" in text, text
                await s.call_tool("stop", {"runs": [run], "reason": "benchmark done"})
    times.sort()
    print("| MCP `wait` returns after a NaN alert | median %.0f ms, worst %.0f ms of %d | < 1 s |"
          % (statistics.median(times) * 1e3, times[-1] * 1e3, len(times)))


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5))
