"""Drives `quiver serve`'s `/mcp` (MCP's streamable-HTTP transport) with the official MCP Python SDK.

    python3 tests/mcp/mcp_http_client.py URL FULL_KEY READ_ONLY_KEY

The server runs with both keys. Run by crates/quiver-cli/tests/it/mcp.rs; exits non-zero saying what differed.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.error
import urllib.request

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from mcp_stdio_client import check, error_text, payload


async def session(url: str, key: str | None):
    headers = {"api-key": key} if key else {}
    return create_mcp_http_client(headers=headers), f"{url}/mcp"


async def run(url: str, key: str | None, body):
    http, endpoint = await session(url, key)
    async with http:
        async with streamable_http_client(endpoint, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as s:
                await s.initialize()
                return await body(s)


async def main(url: str, full: str, read_only: str) -> None:
    async def writer(s):
        names = {t.name for t in (await s.list_tools()).tools}
        check("create_collection" in names and "search" in names, f"full key's tools {names}")
        payload(await s.call_tool("create_collection", {"collection": "v", "dimension": 2, "distance": "Euclid"}))
        payload(await s.call_tool("upsert_points", {"collection": "v", "points": [
            {"id": 1, "vector": [0, 0], "payload": {"tag": "a"}}, {"id": 2, "vector": [3, 4], "payload": {"tag": "b"}}]}))
        hits = payload(await s.call_tool("search", {"collection": "v", "vector": [3, 3], "limit": 1}))["hits"]
        check(hits[0]["id"] == 2, f"search {hits}")
        e = error_text(await s.call_tool("search", {"collection": "v", "vector": [1, 2, 3]}))
        check("expected 2" in e, f"bad vector: {e}")

    async def reader(s):
        names = {t.name for t in (await s.list_tools()).tools}
        check(names == {"list_collections", "collection_info", "search", "get_points", "count"}, f"read-only {names}")
        check(payload(await s.call_tool("count", {"collection": "v"}))["count"] == 2, "read-only count")
        e = error_text(await s.call_tool("delete_points", {"collection": "v", "ids": [1]}))
        check("read-only" in e, f"read-only delete: {e}")
        check(payload(await s.call_tool("count", {"collection": "v"}))["count"] == 2, "nothing deleted")

    await run(url, full, writer)
    await run(url, read_only, reader)
    # No key, or a wrong one: the transport itself is refused (401), as every route is; the SDK fails to connect.
    for key in (None, "wrong"):
        req = urllib.request.Request(f"{url}/mcp", data=b'{"jsonrpc":"2.0","id":1,"method":"ping"}', method="POST",
                                     headers={"content-type": "application/json", **({"api-key": key} if key else {})})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise SystemExit(f"FAILED: key {key!r} was let in")
        except urllib.error.HTTPError as e:
            check(e.code == 401, f"key {key!r}: HTTP {e.code}")
        try:
            await run(url, key, lambda s: s.list_tools())
        except BaseException:  # noqa: BLE001 - the SDK reports it in its own way, inside task groups
            pass
        else:
            raise SystemExit(f"FAILED: the SDK listed tools with key {key!r}")
    # GET (a server-initiated stream) is not offered.
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/mcp", headers={"api-key": full}), timeout=10)
        raise SystemExit("FAILED: GET /mcp answered 2xx")
    except urllib.error.HTTPError as e:
        check(e.code == 405, f"GET /mcp: HTTP {e.code}")
    print("ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
