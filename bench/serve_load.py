"""Load test of `quiver serve` on loopback: HTTP ingest of a TEXMEX set, then search QPS and latency percentiles
with wrk at several concurrencies, recall of the HTTP answers against the ground truth, and the server's peak RSS.

    python3 bench/serve_load.py --quiver target/release/quiver --data /tmp/vdb-data/wordnet-minilm-100k \
        --concurrency 1 8 64 --duration 20

Needs `wrk` (apt-get install wrk) and numpy. Prints a Markdown report on stdout.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np


def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32)


def ivecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:]


def call(base, method, path, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class AnonPeak(threading.Thread):
    """Samples a process's anonymous resident memory (its heap) every 0.2 s, keeping the largest value (KiB)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid, "RssAnon"))
            except (OSError, ValueError):
                return
            self.done.wait(0.2)

    def stop(self):
        self.done.set()
        self.join()


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def start_server(quiver, data_dir):
    """Starts `quiver serve` on an ephemeral loopback port; returns (process, base URL, seconds until ready)."""
    t0 = time.time()
    proc = subprocess.Popen(
        [quiver, "serve", "--bind", "127.0.0.1:0", "--data-dir", data_dir],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "warn,quiver_server=info"},
    )
    addr = None
    for line in proc.stderr:
        m = re.search(r"listening addr=(\S+)", line)
        if m:
            addr = m.group(1)
            break
    base = f"http://{addr}"
    while True:
        try:
            urllib.request.urlopen(base + "/readyz").read()
            break
        except Exception:
            time.sleep(0.05)
    return proc, base, time.time() - t0


def http_recall(base, queries, gt, args):
    hits = 0
    for qi in range(min(len(queries), 1000)):
        r = call(base, "POST", "/collections/bench/points/search",
                 {"vector": queries[qi].tolist(), "limit": args.k, "params": {"hnsw_ef": args.ef}})["result"]
        hits += len(set(h["id"] for h in r) & set(int(x) for x in gt[qi][: args.k]))
    return hits / (min(len(queries), 1000) * args.k)


def wrk_rows(base, lua, args):
    rows = []
    for c in args.concurrency:
        out = subprocess.run(["wrk", "-t", str(min(c, 2)), "-c", str(c), "-d", f"{args.duration}s", "--timeout", "10s",
                              "-s", lua, base], capture_output=True, text=True).stdout
        m = re.search(r"JSON (\{.*\})", out)
        j = json.loads(m.group(1))
        rows.append((c, j["requests"] / j["secs"], j["p50"], j["p90"], j["p99"], j["errors"]))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", required=True)
    ap.add_argument("--data", required=True, help="dataset prefix directory (TEXMEX files inside)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--index", default=None,
                    help='the collection\'s index as JSON, e.g. \'{"kind": "hnsw", "params": {"quantization": "sq8"}}\' '
                         '(default: the server\'s, HNSW without quantization)')
    ap.add_argument("--query-cache", type=int, default=0,
                    help="create the collection with this many result-cache entries (0: none)")
    args = ap.parse_args()

    name = os.path.basename(args.data.rstrip("/"))
    base_v = fvecs(os.path.join(args.data, f"{name}_base.fvecs"))
    queries = fvecs(os.path.join(args.data, f"{name}_query.fvecs"))
    gt = ivecs(os.path.join(args.data, f"{name}_groundtruth.ivecs"))
    n, dim = base_v.shape
    tmp = tempfile.mkdtemp(prefix="quiver-load-")
    proc, base, _ = start_server(args.quiver, os.path.join(tmp, "data"))
    try:
        create = {"vectors": {"size": int(dim), "distance": "Cosine"}}
        if args.query_cache:
            create["query_cache_entries"] = args.query_cache
        if args.index:
            create["index"] = json.loads(args.index)
        call(base, "PUT", "/collections/bench", create)
        # The kernel keeps the peak of the whole resident set (VmHWM), which counts mapped file pages (reclaimable
        # page cache) beside the heap; the heap's own peak (RssAnon) is sampled.
        sampler = AnonPeak(proc.pid)
        sampler.start()
        # Ingest over HTTP with the product's own client (`quiver import`: batches, wait=true, retries), so the
        # figure is the server's, not a Python serializer's.
        t0 = time.time()
        subprocess.run([args.quiver, "import", "bench", os.path.join(args.data, f"{name}_base.fvecs"),
                        "--url", base, "--batch", str(args.batch), "--state", os.path.join(tmp, "import-state.json")], check=True, capture_output=True)
        ingest = time.time() - t0
        # Wait until everything but at most `exact_below` points is indexed (the optimizer seals the tail of the
        # load once writes stop for `seal_idle_secs`) and the optimizer is idle twice in a row.
        idle = 0
        while idle < 2:
            info = call(base, "GET", "/collections/bench")["result"]
            q = info["quiver"]
            exact = sum(sg["live"] for sg in q["segments"] if sg["index"] == "exact")
            done = info["points_count"] == n and exact <= q["config"]["optimizer"]["exact_below"] \
                and not q["optimizer"]["running"]
            idle = idle + 1 if done else 0
            time.sleep(0.5)
        indexed = time.time() - t0
        sampler.stop()
        recall = http_recall(base, queries, gt, args)
        # wrk: a Lua script rotating over the query bodies.
        lua = os.path.join(tmp, "search.lua")
        bodies = [json.dumps({"vector": [round(float(x), 6) for x in q], "limit": args.k,
                              "params": {"hnsw_ef": args.ef}}) for q in queries[:500]]
        with open(lua, "w") as f:
            f.write("local bodies = {\n")
            for b in bodies:
                f.write("[==[" + b + "]==],\n")
            f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n"
                    "  return wrk.format('POST', '/collections/bench/points/search', "
                    "{['Content-Type']='application/json'}, bodies[i])\nend\n"
                    "done = function(summary, latency, requests)\n"
                    "  io.write(string.format('JSON {\"requests\": %d, \"errors\": %d, \"secs\": %f, \"p50\": %f, "
                    "\"p90\": %f, \"p99\": %f}\\n', summary.requests, summary.errors.status + summary.errors.timeout, "
                    "summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, "
                    "latency:percentile(99) / 1e3))\nend\n")
        rows = wrk_rows(base, lua, args)
        peak = rss_kib(proc.pid, "VmHWM")
        now = rss_kib(proc.pid, "VmRSS")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    # The same data directory, opened by a fresh server: what a restart costs and holds.
    t0 = time.time()
    proc, base, _ = start_server(args.quiver, os.path.join(tmp, "data"))
    try:
        opened = time.time() - t0
        reopen_recall = http_recall(base, queries, gt, args)
        reopen_rows = wrk_rows(base, lua, args)
        reopen = {f: rss_kib(proc.pid, f) for f in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}
        info = call(base, "GET", "/collections/bench")["result"]["quiver"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    raw_mib = n * dim * 4 / 2**20
    cache = f", result cache of {args.query_cache} entries" if args.query_cache else ""
    index = f"index {args.index}" if args.index else "HNSW (defaults)"
    print(f"### `quiver serve` on loopback: {name}, {n} × {dim}, {index}, ef {args.ef}, k {args.k}{cache}\n")
    print(f"- HTTP ingest with `quiver import`, batches of {args.batch}, `wait=true`, fsync: **{n / ingest:,.0f} vectors/s** "
          f"({ingest:.1f} s); fully indexed after {indexed:.1f} s")
    print(f"- recall@{args.k} of the HTTP answers (1000 queries): **{recall:.3f}**")
    print(f"- peak RSS {peak / 1024:,.0f} MiB (now {now / 1024:,.0f} MiB) vs raw vectors {raw_mib:,.0f} MiB "
          f"= **{peak / 1024 / raw_mib:.2f}×**; peak heap (anonymous RSS, sampled every 0.2 s during ingest and "
          f"indexing) **{sampler.peak / 1024:,.0f} MiB** = {sampler.peak / 1024 / raw_mib:.2f}× the raw vectors\n")
    print("| concurrency | QPS | p50 ms | p90 ms | p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c, qps, p50, p90, p99, err in rows:
        print(f"| {c} | {qps:,.0f} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {err} |")
    mib = lambda kib: kib / 1024
    print(f"\n#### Reopened by a fresh server\n")
    print(f"- ready after {opened:.2f} s; recall@{args.k} {reopen_recall:.3f}")
    print(f"- RSS after the load: **{mib(reopen['VmRSS']):,.0f} MiB** = {mib(reopen['VmRSS']) / raw_mib:.2f}× the raw "
          f"vectors (heap/anonymous {mib(reopen['RssAnon']):,.0f} MiB, mapped file pages {mib(reopen['RssFile']):,.0f} MiB), "
          f"peak {mib(reopen['VmHWM']):,.0f} MiB; engine: heap {info['memory_bytes'] / 2**20:,.0f} MiB, "
          f"mapped vectors {info.get('mapped_bytes', 0) / 2**20:,.0f} MiB\n")
    print("| concurrency | QPS | p50 ms | p90 ms | p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c, qps, p50, p90, p99, err in reopen_rows:
        print(f"| {c} | {qps:,.0f} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {err} |")


if __name__ == "__main__":
    main()
