"""Drives agent-mesh's /mcp endpoint with the official `mcp` Python SDK.

Usage: python3 tests/mcp_client.py <mcp_url> <api_key> <mode>

<mode> is the SDK's connect mode: `legacy` (the 2025-11-25 initialize handshake
and its MCP-Session-Id session) or `auto` (server/discover, then the stateless
2026-07-28 revision). Prints one `KEY=VALUE` line per check (values JSON-encoded)
for the Rust test (tests/mcp_server.rs) to assert on; exits non-zero if the SDK
raises where it should not.
"""

import json
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def say(key, value):
    print(f"{key}={json.dumps(value)}", flush=True)


def connect(url, key, mode, statuses=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    if statuses is not None:
        # The SDK reports a refused request without its HTTP status; record it here.
        async def record(response):
            statuses.append(response.status_code)

        http.event_hooks["response"].append(record)
    return Client(streamable_http_client(url, http_client=http), mode=mode)


async def main():
    url, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    base = url.rsplit("/mcp", 1)[0]

    async with connect(url, key, mode) as client:
        tools = await client.list_tools()
        say(
            "tools",
            {
                t.name: {
                    "input_required": t.input_schema.get("required"),
                    "has_output_schema": t.output_schema is not None,
                    "has_description": bool(t.description),
                }
                for t in tools.tools
            },
        )

        progress = []

        async def on_progress(value, total, message):
            progress.append([value, total, message])

        result = await client.call_tool(
            "run_team",
            {"task": "Name three prime numbers", "agents": ["researcher"]},
            progress_callback=on_progress,
        )
        say("progress", progress)
        say("is_error", result.is_error)
        say("text", result.content[0].text)
        say("structured", result.structured_content)

        run_id = result.structured_content["run_id"]
        got = await client.call_tool("get_run", {"run_id": run_id})
        say("get_run", {"is_error": got.is_error, "structured": got.structured_content,
                        "text": got.content[0].text})

        bad = await client.call_tool("run_team", {"task": 5})
        say("bad_argument", {"is_error": bad.is_error, "text": bad.content[0].text})

        # Cancel mid-run: leave the call once the team's plan is reported.
        planned = anyio.Event()

        async def on_plan(value, total, message):
            planned.set()

        task = "Count slowly to a thousand, cancel me"
        async with anyio.create_task_group() as tg:

            async def call():
                await client.call_tool(
                    "run_team",
                    {"task": task, "agents": ["researcher", "analyst"]},
                    progress_callback=on_plan,
                )

            scope = anyio.CancelScope()

            async def cancellable():
                with scope:
                    await call()

            tg.start_soon(cancellable)
            with anyio.fail_after(30):
                await planned.wait()
            scope.cancel()

        # The run ends `cancelled` (seen through the plain JSON API).
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            with anyio.fail_after(30):
                while True:
                    runs = (await http.get(f"{base}/api/runs")).json()
                    mine = [r for r in runs if r["task"] == task]
                    if mine and mine[0]["status"] != "running":
                        break
                    await anyio.sleep(0.05)
        say("cancelled_run", {"id": mine[0]["id"], "status": mine[0]["status"]})

    statuses = []
    try:
        async with connect(url, "not-the-key", mode, statuses) as client:
            await client.list_tools()
        say("wrong_key", {"accepted": True, "statuses": statuses})
    except Exception as e:  # the SDK wraps the refusal in task-group exception groups
        errors = [f"{type(x).__name__}: {x}" for x in leaves(e)]
        say("wrong_key", {"errors": errors, "statuses": statuses})


def leaves(e):
    if isinstance(e, BaseExceptionGroup):
        return [leaf for sub in e.exceptions for leaf in leaves(sub)]
    return [e]


anyio.run(main)
