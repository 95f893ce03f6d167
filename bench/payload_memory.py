#!/usr/bin/env python3
"""Memory of a collection with real payloads, written by one server and reopened by another.

Ingests the WordNet set's vectors with each item's record as the payload (synset, part of speech, lexicographer
file, lemmas, gloss text: ~240 bytes of JSON a point) over HTTP, waits until indexed, restarts the server on the same
data directory and reports its resident memory split into anonymous (heap) and mapped file pages, the engine's own
figures, and a search with payloads. Usage:

    python3 bench/payload_memory.py --quiver target/release/quiver --data /tmp/vdb-data/wordnet-minilm-100k
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_load import call, fvecs, rss_kib, start_server  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()
    name = os.path.basename(args.data.rstrip("/"))
    base = fvecs(os.path.join(args.data, f"{name}_base.fvecs"))
    with open(os.path.join(args.data, f"{name}_base_items.jsonl")) as f:
        items = [json.loads(line) for line in f]
    n, dim = base.shape
    assert len(items) == n
    data_dir = os.path.join(tempfile.mkdtemp(prefix="quiver-payload-mem-"), "data")
    proc, url, _ = start_server(args.quiver, data_dir)
    try:
        call(url, "PUT", "/collections/wn", {"vectors": {"size": int(dim), "distance": "Cosine"}})
        t0 = time.time()
        for s in range(0, n, args.batch):
            pts = [{"id": i, "vector": [round(float(x), 6) for x in base[i]],
                    "payload": {k: v for k, v in items[i].items() if k != "id"}} for i in range(s, min(n, s + args.batch))]
            call(url, "PUT", "/collections/wn/points?wait=true", {"points": pts})
        ingest = time.time() - t0
        while True:
            q = call(url, "GET", "/collections/wn")["result"]["quiver"]
            exact = sum(sg["live"] for sg in q["segments"] if sg["index"] == "exact")
            if exact <= q["config"]["optimizer"]["exact_below"] and not q["optimizer"]["running"]:
                break
            time.sleep(0.5)
        peak = rss_kib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    t0 = time.time()
    proc, url, _ = start_server(args.quiver, data_dir)
    try:
        opened = time.time() - t0
        hits = call(url, "POST", "/collections/wn/points/search",
                    {"vector": base[123].tolist(), "limit": 10, "with_payload": True})["result"]
        assert hits[0]["id"] == 123 and hits[0]["payload"]["text"] == items[123]["text"], hits[0]
        t1 = time.time()
        for i in range(200):
            call(url, "POST", "/collections/wn/points/search",
                 {"vector": base[i * 37].tolist(), "limit": 10, "with_payload": True})
        per_search_ms = (time.time() - t1) / 200 * 1000
        rss = {f: rss_kib(proc.pid, f) / 1024 for f in ("VmRSS", "RssAnon", "RssFile")}
        q = call(url, "GET", "/collections/wn")["result"]["quiver"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    payload_json = sum(len(json.dumps({k: v for k, v in it.items() if k != "id"})) for it in items) / 2**20
    print(f"### {name}: {n} × {dim} with payloads ({payload_json:.0f} MiB of JSON), HNSW defaults\n")
    print(f"- ingest over HTTP (batches of {args.batch}, wait=true): {ingest:.1f} s; peak RSS while writing and indexing "
          f"{peak / 1024:.0f} MiB")
    print(f"- reopened: ready after {opened:.2f} s; after 200 searches returning payloads ({per_search_ms:.2f} ms each, "
          f"one Python client): RSS {rss['VmRSS']:.0f} MiB = anonymous {rss['RssAnon']:.0f} MiB + mapped file pages "
          f"{rss['RssFile']:.0f} MiB")
    print(f"- engine: heap {q['memory_bytes'] / 2**20:.0f} MiB, mapped vectors {q['mapped_bytes'] / 2**20:.0f} MiB, "
          f"estimate {q['estimated_memory']['heap_bytes'] / 2**20:.0f} MiB heap, disk {q['disk_bytes'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
