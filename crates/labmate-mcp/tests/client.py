"""Drives `labmate mcp` with the official Python MCP SDK, as an agent host
would: initialize, list the tools, call each one, and the error cases.

    python client.py stdio LABMATE_BIN LAB_FOLDER RUN_A RUN_B
    python client.py http BASE_URL,TOKEN LAB_FOLDER RUN_A RUN_B   (labmate serve's /mcp)

Prints one `ok CHECK` line per check; exits 1 with `FAIL CHECK: why` lines
when one fails. Run by crates/labmate-cli/tests/cli/mcp.rs.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

TOOLS = {"runs", "show_run", "status", "metrics", "logs", "events", "compare", "notebook", "notebook_check", "note",
         "launch", "stop", "wait", "review_request", "plot"}
BUDGET = 2000

failures = []


def check(name, ok, why=""):
    if ok:
        print("ok", name)
    else:
        print("FAIL %s: %s" % (name, why))
        failures.append(name)


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def checks(session, folder, run_a, run_b):
    init = await session.initialize()
    check("initialize names the server", init.server_info.name == "labmate", init.server_info)
    tools = (await session.list_tools()).tools
    names = {t.name for t in tools}
    check("the tools are listed", TOOLS <= names, sorted(names))
    for t in tools:
        check("%s has a description and a schema" % t.name, bool(t.description) and t.input_schema.get("type") == "object", t)
    check("no tool approves or rejects", not (names & {"approve", "reject", "decide"}), sorted(names))

    async def call(name, args=None):
        result = await session.call_tool(name, args or {})
        return result, text_of(result)

    listed = [str(r.uri) for r in (await session.list_resources()).resources]
    check("the notebook and the runs are resources", "labmate://notebook" in listed and "labmate://runs/%s" % run_a in listed, listed)
    read = await session.read_resource("labmate://runs/%s" % run_a)
    check("a run's resource is its summary", run_a in read.contents[0].text and "loss" in read.contents[0].text, read)
    try:
        await session.read_resource("labmate://nothing")
        check("an unknown resource is an error", False, "no error")
    except Exception as e:
        check("an unknown resource is an error", "labmate://notebook" in str(e), e)

    result, text = await call("runs", {})
    check("runs lists both runs", run_a in text and run_b in text and not result.is_error, text)
    check("runs is compact", len(text) <= BUDGET, len(text))
    check("runs has structured content", result.structured_content and result.structured_content["total"] == 2, result.structured_content)
    result, text = await call("runs", {"where": "config.lr >"})
    check("a bad where is a tool error with the column pointer", result.is_error and "^" in text, text)
    result, text = await call("runs", {"limit": 1})
    check("a cut table says how to ask for more", "1 more" in text, text)
    result, text = await call("runs", {"group_by": ["config.lr"]})
    check("runs groups", "config.lr=" in text and not result.is_error, text)

    result, text = await call("show_run", {"run": run_a})
    check("show_run shows the run", run_a in text and "loss" in text and not result.is_error, text)
    result, text = await call("show_run", {"run": "r-nosuchrun"})
    check("an unknown run is a tool error", result.is_error and "r-nosuchrun" in text, text)

    result, text = await call("status", {"runs": [run_a]})
    check("status of a run", run_a in text and not result.is_error, text)
    result, text = await call("metrics", {"run": run_a, "keys": ["loss"], "points": 10})
    points = result.structured_content.get("loss") if result.structured_content else None
    check("metrics downsampled", points is not None and len(points) <= 12 and not result.is_error, text)
    result, text = await call("metrics", {"run": run_a, "keys": ["loss"], "since_step": 45})
    check("metrics since a step", all(p["step"] > 45 for p in result.structured_content["loss"]), text)
    result, text = await call("metrics", {"run": run_a, "keys": ["nope"]})
    check("an unknown metric is a tool error naming the run's metrics", result.is_error and "loss" in text, text)
    result, text = await call("logs", {"run": run_a, "tail": 3})
    check("logs tail", "done" in text and len(text) <= BUDGET, text)
    result, text = await call("logs", {"run": run_a, "grep": "("})
    check("a bad grep is a tool error", result.is_error and "regular expression" in text, text)
    result, text = await call("events", {"run": run_a})
    check("events", not result.is_error, text)
    result = await session.call_tool("plot", {"runs": [run_a, run_b], "metric": ["loss"]})
    images = [c for c in result.content if getattr(c, "type", "") == "image"]
    check("plot returns a PNG image", images and images[0].mime_type == "image/png" and images[0].data[:8] == "iVBORw0K", result)
    result = await session.call_tool("plot", {"sides": ["config.lr=0.1", "config.lr=0.2"], "metric": ["loss"]})
    images = [c for c in result.content if getattr(c, "type", "") == "image"]
    check("plot draws sides as groups", images and not result.is_error, result)
    result = await session.call_tool("plot", {"runs": [run_a], "metric": []})
    check("a plot without a metric is a tool error", result.is_error, result)
    result, text = await call("compare", {"sides": [run_a, run_b], "metric": ["loss"]})
    check("compare gives a verdict", "vs A" in text and not result.is_error, text)

    result, text = await call("note", {"kind": "result", "text": "a ends at loss {{%s.metrics.loss.last}}" % run_a, "runs": [run_a]})
    check("note as the agent", "agent:claude-test" in text and "review" in text and not result.is_error, text)
    result, text = await call("note", {"kind": "result", "text": "{{r-nosuchrun.metrics.loss.last}}"})
    check("a bad reference is a tool error", result.is_error and "r-nosuchrun" in text, text)
    result, text = await call("notebook", {"kind": "result"})
    check("the notebook reads the entry back", "agent:claude-test" in text and not result.is_error, text)
    result, text = await call("notebook_check", {})
    check("notebook_check finds no mismatch", "0 mismatches" in text and not result.is_error, text)

    result, text = await call("launch", {"argv": ["python3", "train.py", "0.3"], "name": "c", "config": {"lr": 0.3}})
    run_c = (result.structured_content or {}).get("run")
    check("launch starts a run", run_c and "started" in text and not result.is_error, text)
    result, text = await call("wait", {"runs": [run_c], "timeout_s": 120})
    check("wait returns when it ends", "every run finished" in text and not result.is_error, text)
    result, text = await call("show_run", {"run": "c"})
    check("the launched run is the agent's, with its config", "\"lr\":0.3" in text, text)
    result, text = await call("launch", {"argv": ["python3", "train.py", "0.4"], "name": "big", "tags": ["big"]})
    held = (result.structured_content or {}).get("request")
    check("a launch the policy holds returns the request", held and "approval" in text and not result.is_error, text)
    print("held", held)
    result, text = await call("launch", {"argv": []})
    check("an empty argv is a tool error", result.is_error and "argv" in text, text)
    result, text = await call("stop", {"runs": [run_c], "reason": "enough"})
    check("stop says a run had ended", "already ended" in text and not result.is_error, text)
    result, text = await call("wait", {"runs": [run_a], "until": "loss <"})
    check("a bad until is a tool error", result.is_error, text)
    result, text = await call("review_request", {"note": "look at c's curve", "run": run_c})
    check("review_request opens an item", "review item" in text and not result.is_error, text)

    # A run that goes NaN once the file `go` exists, and lives until `end` does.
    with open(os.path.join(folder, "nan.py"), "w") as f:
        f.write("import os, time\nt_end = time.time() + 600\n"
                "print('##labmate {\"step\": 0, \"loss\": 1.0}', flush=True)\n"
                "while not os.path.exists('go') and time.time() < t_end:\n    time.sleep(0.05)\n"
                "print('##labmate {\"step\": 1, \"loss\": NaN}', flush=True)\n"
                "while not os.path.exists('end') and time.time() < t_end:\n    time.sleep(0.05)\n")
    result, text = await call("launch", {"argv": ["python3", "nan.py"], "name": "nan"})
    run_n = result.structured_content["run"]
    result, text = await call("wait", {"runs": [run_n], "until": "loss >= 0", "timeout_s": 60})
    check("wait until a condition holds", "condition holds" in text, text)
    beats = []

    async def on_progress(progress, total, message):
        beats.append(message)

    result = await session.call_tool("wait", {"runs": [run_n], "until": "loss < 0", "timeout_s": 8}, progress_callback=on_progress)
    text = text_of(result)
    check("a long wait reports progress and times out", beats and "timed out" in text, (beats, text))
    pending = asyncio.create_task(session.call_tool("wait", {"runs": [run_n], "timeout_s": 60}))
    await asyncio.sleep(0.5)
    open(os.path.join(folder, "go"), "w").close()
    text = text_of(await pending)
    check("wait returns on the alert (or on the stop it caused)", "alert" in text or "ended" in text, text)
    result, text = await call("stop", {"runs": [run_n], "reason": "it went NaN"})
    check("stop a run", ("asked to stop" in text or "already ended" in text) and not result.is_error, text)
    open(os.path.join(folder, "end"), "w").close()


async def main(how, where, folder, run_a, run_b):
    info = types.Implementation(name="claude-test", version="1")
    if how == "stdio":
        params = StdioServerParameters(command=where, args=["mcp"], cwd=folder, env={"PATH": "/usr/bin:/bin", "HOME": folder})
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, client_info=info) as session:
                await checks(session, folder, run_a, run_b)
    else:  # http: WHERE is BASE_URL,TOKEN of `labmate serve`
        base, token = where.split(",", 1)
        client = create_mcp_http_client(headers={"Authorization": "Bearer %s" % token})
        async with client:
            async with streamable_http_client(base + "/mcp", http_client=client) as streams:
                async with ClientSession(streams[0], streams[1], client_info=info) as session:
                    await checks(session, folder, run_a, run_b)
    if failures:
        print("%d checks failed" % len(failures))
        sys.exit(1)


asyncio.run(main(*sys.argv[1:6]))
