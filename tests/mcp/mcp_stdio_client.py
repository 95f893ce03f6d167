"""Drives `quiver mcp` with the official MCP Python SDK (`mcp` from PyPI) as the client, over stdio.

    python3 tests/mcp/mcp_stdio_client.py QUIVER_BIN DATA_DIR

Run by the CLI's integration tests (crates/quiver-cli/tests/it/mcp.rs). Exits non-zero, saying what differed, when
anything is not as expected. Needs the embedding model (scripts/get-embed-model.sh) for the text tools.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def payload(result) -> object:
    """The tool result's JSON (its structured content, checked against its text)."""
    check(not result.is_error, f"tool error: {result.content}")
    text = json.loads(result.content[0].text)
    structured = result.structured_content["result"]
    check(text == structured, f"text and structured content differ: {text} vs {structured}")
    return structured


def error_text(result) -> str:
    check(result.is_error, f"expected an error, got {result.content}")
    return result.content[0].text


async def main(binary: str, data: str) -> None:
    params = StdioServerParameters(command=binary, args=["mcp", "--data", data])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            check(init.server_info.name == "quiverdb", f"server name {init.server_info.name}")
            tools = {t.name: t for t in (await s.list_tools()).tools}
            for name in ["list_collections", "collection_info", "create_collection", "add_texts", "add_documents",
                         "upsert_points", "search", "get_points", "delete_points", "count"]:
                check(name in tools, f"tool {name} listed")
            check(tools["search"].input_schema["required"] == ["collection"], "search's schema")

            info = payload(await s.call_tool("create_collection", {"collection": "notes", "model": "all-MiniLM-L6-v2"}))
            check(info["dimension"] == 384 and info["embedding_model"] == "all-MiniLM-L6-v2", f"created {info}")
            added = payload(await s.call_tool("add_texts", {
                "collection": "notes",
                "texts": ["a cat sleeps on the sofa", "stock markets fell sharply", "a kitten naps in the sun"],
                "payloads": [{"kind": "pet"}, {"kind": "money"}, {"kind": "pet"}],
            }))
            check(added["added"] == 3 and len(added["ids"]) == 3, f"added {added}")
            # The same text again is the same point.
            again = payload(await s.call_tool("add_texts", {"collection": "notes", "texts": ["a cat sleeps on the sofa"],
                                                            "payloads": [{"kind": "pet"}]}))
            check(again["ids"][0] == added["ids"][0], "a text's id is stable")
            check(payload(await s.call_tool("count", {"collection": "notes"}))["count"] == 3, "count after re-adding")

            hits = payload(await s.call_tool("search", {"collection": "notes", "text": "sleeping cats", "limit": 2}))["hits"]
            check({h["payload"]["kind"] for h in hits} == {"pet"}, f"text search {hits}")
            filtered = payload(await s.call_tool("search", {
                "collection": "notes", "text": "sleeping cats", "limit": 3,
                "filter": {"must": [{"key": "kind", "match": {"value": "money"}}]}, "explain": True,
            }))
            check([h["payload"]["text"] for h in filtered["hits"]] == ["stock markets fell sharply"], f"filtered {filtered}")
            check("explain" in filtered, "explain returned")
            like = payload(await s.call_tool("search", {"collection": "notes", "like_id": hits[0]["id"], "limit": 1}))
            check(len(like["hits"]) == 1 and like["hits"][0]["id"] != hits[0]["id"], f"like_id {like}")

            docs = payload(await s.call_tool("add_documents", {
                "collection": "notes", "documents": [{"id": "guide", "text": "QuiverDB stores vectors. " * 100}],
                "max_tokens": 64, "overlap_tokens": 8}))
            check(docs["documents"][0]["chunks"] > 1, f"documents {docs}")

            payload(await s.call_tool("create_collection", {"collection": "raw", "dimension": 3, "distance": "Euclid"}))
            payload(await s.call_tool("upsert_points", {"collection": "raw", "points": [
                {"id": 1, "vector": [0, 0, 0], "payload": {"tag": "a"}}, {"id": 2, "vector": [5, 0, 0]}]}))
            near = payload(await s.call_tool("search", {"collection": "raw", "vector": [4, 0, 0], "limit": 1}))
            check(near["hits"][0]["id"] == 2, f"vector search {near}")
            got = payload(await s.call_tool("get_points", {"collection": "raw", "ids": [1, 9]}))
            check(len(got) == 1 and got[0]["payload"] == {"tag": "a"}, f"get {got}")
            left = payload(await s.call_tool("delete_points", {"collection": "raw", "ids": [1]}))
            check(left["points_left"] == 1, f"delete {left}")
            names = payload(await s.call_tool("list_collections", {}))
            check(sorted(names) == ["notes", "raw"], f"collections {names}")

            # Bad arguments: clear errors, nothing written.
            e = error_text(await s.call_tool("search", {"collection": "raw", "vector": [1, 2]}))
            check("expected 3" in e and "2" in e, f"dimension error: {e}")
            e = error_text(await s.call_tool("search", {"collection": "raw", "text": "x", "vector": [1, 2, 3]}))
            check("one of text, vector or like_id" in e, f"two queries: {e}")
            e = error_text(await s.call_tool("count", {"collection": "nope"}))
            check("does not exist" in e and "404" in e, f"missing collection: {e}")
            e = error_text(await s.call_tool("add_texts", {"collection": "raw", "texts": ["no model here"]}))
            check("no embedding model" in e, f"text into a vector collection: {e}")
            e = error_text(await s.call_tool("count", {"collection": "raw", "filtre": {}}))
            check("unknown argument" in e and "filtre" in e, f"misspelt argument: {e}")
            check(payload(await s.call_tool("count", {"collection": "raw"}))["count"] == 1, "nothing written by errors")

            resources = (await s.list_resources()).resources
            check(sorted(r.name for r in resources) == ["notes", "raw"], f"resources {resources}")
            body = (await s.read_resource("quiver://collections/raw")).contents[0].text
            check(json.loads(body)["points"] == 1, f"resource body {body}")

    # Read-only: write tools are not listed, and calling one is refused.
    params = StdioServerParameters(command=binary, args=["mcp", "--data", data, "--read-only"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            check(names == {"list_collections", "collection_info", "search", "get_points", "count"}, f"read-only {names}")
            e = error_text(await s.call_tool("delete_points", {"collection": "raw", "ids": [2]}))
            check("read-only" in e, f"read-only write: {e}")
            check(payload(await s.call_tool("count", {"collection": "raw"}))["count"] == 1, "read-only wrote nothing")
    print("ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
