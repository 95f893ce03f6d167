#!/usr/bin/env python3
"""The Python package's benchmark: ingest from numpy, one-thread search QPS and recall@10 at several `ef`, and batch
search on N threads — with the embedded engine (`quiverdb.open`). Run it beside `quiver bench` on the same files and
settings (the goal: Python within 10% of `quiver bench`'s QPS).

    python3 scripts/python_bench.py --data ../shared/data/wordnet-minilm-100k --ef 32,64,128 --out /tmp/py.json

Needs the wheel installed (a release build for real figures: `maturin build --release -m crates/quiver-python/Cargo.toml`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import tempfile
import time

import numpy as np

import quiverdb


def read_vecs(path: str, dtype) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def one(pattern: str) -> str:
    found = glob.glob(pattern)
    if len(found) != 1:
        raise SystemExit(f"expected one file matching {pattern}, found {found}")
    return found[0]


def timed_run(search, queries: np.ndarray, gt: np.ndarray, k: int, ef: int) -> dict:
    """One pass of single-query calls `search(q) -> ids`: recall@k, QPS, p50/p99 latency."""
    search(queries[0])  # warm
    lat, found = [], []
    for q in queries:
        s = time.perf_counter()
        found.append(search(q))
        lat.append(time.perf_counter() - s)
    recall = float(np.mean([len(set(f) & set(g.tolist())) / k for f, g in zip(found, gt)]))
    return {"ef": ef, "recall": recall, "qps_1thread": len(queries) / sum(lat),
            "p50_ms": 1000 * float(np.median(lat)), "p99_ms": 1000 * float(np.percentile(lat, 99))}


def finish(out: dict, path) -> None:
    """Adds the process's peak RSS, prints the summary, writes the JSON."""
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}))
    if path:
        with open(path, "w") as f:
            json.dump(out, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory with *_base.fvecs, *_query.fvecs, *_groundtruth.ivecs")
    ap.add_argument("--ef", default="32,64,128,256")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2, help="threads for the batch search")
    ap.add_argument("--index", default='{"kind": "hnsw"}', help="index config as JSON")
    ap.add_argument("--metric", default="cosine")
    ap.add_argument("--single", action="store_true",
                    help="one segment (seal_points above n), as engine-bench's single-segment curve and quiver bench")
    ap.add_argument("--out")
    a = ap.parse_args()

    base = read_vecs(one(os.path.join(a.data, "*_base.fvecs")), np.float32)
    queries = read_vecs(one(os.path.join(a.data, "*_query.fvecs")), np.float32)[: a.nq]
    gt = read_vecs(one(os.path.join(a.data, "*_groundtruth.ivecs")), np.int32)[: a.nq, : a.k]
    out = {"data": a.data, "n": len(base), "dim": base.shape[1], "nq": len(queries), "k": a.k,
           "build": quiverdb._native.build_info(), "runs": []}
    with tempfile.TemporaryDirectory() as d, quiverdb.open(d) as db:
        extra = {"optimizer": {"seal_points": len(base) + 1}} if a.single else {}
        col = db.create_collection("bench", dim=base.shape[1], metric=a.metric, index=json.loads(a.index),
                                   durability="none", **extra)
        t = time.perf_counter()
        col.upsert(np.arange(len(base)), base, batch_size=10_000)
        out["ingest_s"] = time.perf_counter() - t
        # Seal and index everything before timing searches (the optimizer does it in the background otherwise).
        t = time.perf_counter()
        col.optimize()
        out["index_s"] = time.perf_counter() - t
        out["segments"] = sum(1 for s in col.info()["segments"] if s["rows"] > 0)
        for ef in [int(x) for x in a.ef.split(",")]:
            params = {"ef": ef}
            run = timed_run(lambda q: [h.id for h in col.search(q, k=a.k, params=params, with_payload=False)],
                            queries, gt, a.k, ef)
            s = time.perf_counter()
            col.search(queries, k=a.k, params=params, threads=a.threads)
            batch_s = time.perf_counter() - s
            run[f"batch_qps_{a.threads}threads"] = len(queries) / batch_s
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
    finish(out, a.out)


if __name__ == "__main__":
    main()
