"""The seed's loop as a scripted agent, through `labmate mcp`: launch a
run, wait for it, compare it with the lab's baseline, and note the result
citing live values, in 4 tool calls whose text adds up to at most 2,000
characters.

    python loop.py LABMATE_BIN LAB_FOLDER

Prints `calls N chars M` and the note's id; exits 1 when a step fails.
"""

import asyncio
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def main(binary, folder):
    params = StdioServerParameters(command=binary, args=["mcp"], cwd=folder, env={"PATH": "/usr/bin:/bin", "HOME": folder})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, client_info=types.Implementation(name="loop", version="1")) as session:
            await session.initialize()
            calls, chars = 0, 0

            async def call(name, args):
                nonlocal calls, chars
                result = await session.call_tool(name, args)
                text = text_of(result)
                calls += 1
                chars += len(text)
                print("--- %s (%d chars)\n%s" % (name, len(text), text))
                if result.is_error:
                    sys.exit("%s failed: %s" % (name, text))
                return result

            launched = await call("launch", {"argv": ["python3", "train.py", "0.05"], "name": "try-lr0.05", "config": {"lr": 0.05}})
            run = launched.structured_content["run"]
            await call("wait", {"runs": [run], "timeout_s": 120})
            await call("compare", {"sides": [run], "metric": ["loss"]})
            noted = await call("note", {
                "kind": "result",
                "text": "lr 0.05 ends at loss {{%s.metrics.loss.last}} against the baseline's {{group:name=base .metrics.loss.last.mean}}" % run,
                "runs": [run],
            })
            print("calls %d chars %d" % (calls, chars))
            print("note %s" % noted.structured_content["id"])


asyncio.run(main(*sys.argv[1:3]))
