"""Drives the MCP tools `labmate serve` mounts at /mcp, with the official
Python MCP SDK over streamable HTTP, with the server's token as a Bearer
header: every tool is there and answers, as the client agent. (Without the
token nothing answers: the Rust side of the test asks that itself.)

    python http_client.py BASE_URL TOKEN RUN
"""

import asyncio
import sys

from mcp import ClientSession, types
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

failures = []


def check(name, ok, why=""):
    print(("ok %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    if not ok:
        failures.append(name)


async def main(base, token, run):
    client = create_mcp_http_client(headers={"Authorization": "Bearer %s" % token})
    async with client:
        async with streamable_http_client(base + "/mcp", http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write, client_info=types.Implementation(name="http-test", version="1")) as s:
                init = await s.initialize()
                check("initialize over HTTP", init.server_info.name == "labmate", init)
                names = {t.name for t in (await s.list_tools()).tools}
                check("the tools over HTTP", {"runs", "show_run", "launch", "wait"} <= names, sorted(names))
                result = await s.call_tool("show_run", {"run": run})
                text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                check("show_run over HTTP", run in text and not result.is_error, text)
                result = await s.call_tool("note", {"kind": "observation", "text": "seen over HTTP"})
                text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                check("a note over HTTP is the client agent's", "agent:http-test" in text, text)
    if failures:
        sys.exit(1)


asyncio.run(main(*sys.argv[1:4]))
