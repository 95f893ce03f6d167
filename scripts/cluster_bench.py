#!/usr/bin/env python3
"""Cluster benchmarks over HTTP, beside a single node in the same run (docs/benchmarks.md, "Cluster").

Needs a running cluster (`quiver cluster up --nodes 3`) and a single-node server (`quiver serve --bind
127.0.0.1:6400 --data-dir /tmp/single`); uses only the standard library and numpy.

  python3 scripts/cluster_bench.py --data /tmp/vdb-data/wordnet-minilm-100k/wordnet-minilm-100k \
      --node http://127.0.0.1:6333 --single http://127.0.0.1:6400 centroid
  python3 scripts/cluster_bench.py --data …/wordnet-minilm-100k/wordnet-minilm-100k ... centroid-trained
  python3 scripts/cluster_bench.py --data …/wordnet-minilm-10k/wordnet-minilm-10k ... ingest
  python3 scripts/cluster_bench.py --data …/wordnet-minilm-10k/wordnet-minilm-10k ... search
  python3 scripts/cluster_bench.py --data …/wordnet-minilm-10k/wordnet-minilm-10k ... scale > scale.jsonl
  python3 scripts/cluster_bench.py --results scale.jsonl --out docs/cluster-scale.png plot

Every figure is printed as one JSON line; ratios (cluster / single node) are what to compare on a shared
2-core machine, where the cluster's 3 nodes and 3 NATS servers share the cores with the client.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.request

import numpy as np


def fvecs(path, limit=None):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    if limit:
        rows = rows[:limit]
    return np.ascontiguousarray(rows).view(np.float32)


def ivecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    k = int(raw[0])
    return raw.reshape(-1, k + 1)[:, 1:]


def call(url, method, path, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)["result"]


def drop(url, name):
    try:
        call(url, "DELETE", f"/collections/{name}")
    except Exception:
        pass


def ingest(url, name, base, batch, wait):
    t = time.perf_counter()
    for start in range(0, len(base), batch):
        pts = [{"id": int(i), "vector": base[i].tolist()} for i in range(start, min(start + batch, len(base)))]
        call(url, "PUT", f"/collections/{name}/points?wait={'true' if wait else 'false'}", {"points": pts})
    return time.perf_counter() - t


def wait_count(url, name, n, limit_s=900):
    t = time.perf_counter()
    while call(url, "POST", f"/collections/{name}/points/count", {})["count"] < n:
        if time.perf_counter() - t > limit_s:
            raise SystemExit(f"{name}: count did not reach {n}")
        time.sleep(0.5)


def run_queries(url, name, queries, gt, k, extra):
    lat, found = [], 0
    for q, truth in zip(queries, gt):
        body = {"vector": q.tolist(), "limit": k, **extra}
        t = time.perf_counter()
        hits = call(url, "POST", f"/collections/{name}/points/search", body)
        lat.append(time.perf_counter() - t)
        found += len({h["id"] for h in hits} & set(int(x) for x in truth[:k]))
    lat.sort()
    return {
        "recall": found / (k * len(queries)),
        "qps": len(queries) / sum(lat),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
    }


def kmeans(x, k, iters=20, seed=0):
    rng = np.random.default_rng(seed)
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iters):
        a = np.argmax(x @ c.T, axis=1)  # cosine: the vectors are unit length
        for j in range(k):
            m = x[a == j]
            if len(m):
                v = m.mean(axis=0)
                c[j] = v / np.linalg.norm(v)
    return c


def emit(**kw):
    print(json.dumps(kw), flush=True)


def centroid(a, base, queries, gt):
    k = 4
    sample = base[np.random.default_rng(1).choice(len(base), min(20000, len(base)), replace=False)]
    cents = kmeans(sample, k)
    name = "bench_centroid"
    drop(a.node, name)
    call(a.node, "PUT", f"/collections/{name}", {
        "vectors": {"size": base.shape[1], "distance": "Cosine"}, "shard_number": k, "replication_factor": 1,
        "sharding": {"method": "centroid", "centroids": cents.tolist()}})
    secs = ingest(a.node, name, base, a.batch, False)
    wait_count(a.node, name, len(base))
    emit(bench="centroid_ingest", n=len(base), secs=secs, points_per_s=len(base) / secs)
    time.sleep(a.settle)
    col = [c for c in call(a.node, "GET", "/cluster")["collections"] if c["name"] == name][0]
    sizes = [s["last_seq"] for s in col["shards"]]
    for sts in [1, 2, k]:
        r = run_queries(a.node, name, queries, gt, 10, {"shards_to_search": sts})
        emit(bench="centroid_search", shards=k, shards_to_search=sts, log_entries_per_shard=sizes, **r)


def centroid_trained(a, base, queries, gt):
    """Centroids trained by the cluster itself: created without any, trained once `train_after` points arrived
    (k-means over a 20,000-point sample), every point moved to its nearest centroid's shard while ingest goes on."""
    k = 4
    name = "bench_trained"
    drop(a.node, name)
    call(a.node, "PUT", f"/collections/{name}", {
        "vectors": {"size": base.shape[1], "distance": "Cosine"}, "shard_number": k, "replication_factor": 1,
        "sharding": {"method": "centroid", "train_after": a.train_after}})
    secs = ingest(a.node, name, base, a.batch, False)
    wait_count(a.node, name, len(base))
    emit(bench="trained_ingest", n=len(base), secs=secs, points_per_s=len(base) / secs)
    t = time.perf_counter()
    while True:
        sh = [c for c in call(a.node, "GET", "/cluster")["collections"] if c["name"] == name][0]["sharding"]
        if sh.get("epoch", 0) >= 1 and sh.get("placed") == sh.get("epoch"):
            break
        if time.perf_counter() - t > 1800:
            raise SystemExit("the points were not placed in 30 minutes")
        time.sleep(0.5)
    emit(bench="trained_placed_after_ingest", secs=time.perf_counter() - t, epoch=sh["epoch"])
    # A retrain on demand over the whole collection, timed: k-means over a fresh sample plus moving the points.
    t = time.perf_counter()
    r = call(a.node, "POST", f"/cluster/collections/{name}/train?wait=true", {}, timeout=3600)
    emit(bench="retrain", secs=time.perf_counter() - t, moved=r.get("moved"), n=len(base))
    emit(bench="trained_count", count=call(a.node, "POST", f"/collections/{name}/points/count", {})["count"])
    time.sleep(a.settle)  # the moved points' segments are indexed in the background
    for sts in [1, 2, k]:
        r = run_queries(a.node, name, queries, gt, 10, {"shards_to_search": sts})
        emit(bench="trained_search", shards=k, shards_to_search=sts, **r)


def ingest_bench(a, base, _q, _gt):
    n = len(base)
    drop(a.single, "bench_single")
    call(a.single, "PUT", "/collections/bench_single", {"vectors": {"size": base.shape[1], "distance": "Cosine"}})
    secs = ingest(a.single, "bench_single", base, a.batch, True)
    single = n / secs
    emit(bench="ingest", target="single node (fsync)", n=n, points_per_s=single, ratio=1.0)
    for rf in [1, 3]:
        name = f"bench_r{rf}"
        drop(a.node, name)
        call(a.node, "PUT", f"/collections/{name}", {
            "vectors": {"size": base.shape[1], "distance": "Cosine"}, "shard_number": 3, "replication_factor": rf})
        secs = ingest(a.node, name, base, a.batch, True)
        emit(bench="ingest", target=f"cluster 3 shards R{rf} (wait=true)", n=n, points_per_s=n / secs,
             ratio=(n / secs) / single)
        drop(a.node, name)
    drop(a.single, "bench_single")


def search_bench(a, base, queries, gt):
    drop(a.single, "bench_single")
    call(a.single, "PUT", "/collections/bench_single", {"vectors": {"size": base.shape[1], "distance": "Cosine"}})
    ingest(a.single, "bench_single", base, a.batch, True)
    time.sleep(a.settle)
    single = run_queries(a.single, "bench_single", queries, gt, 10, {})
    emit(bench="search", target="single node", **single, qps_ratio=1.0)
    for shards in [1, 2, 4]:
        name = f"bench_s{shards}"
        drop(a.node, name)
        call(a.node, "PUT", f"/collections/{name}", {
            "vectors": {"size": base.shape[1], "distance": "Cosine"}, "shard_number": shards, "replication_factor": 1})
        ingest(a.node, name, base, a.batch, True)
        time.sleep(a.settle)
        r = run_queries(a.node, name, queries, gt, 10, {})
        emit(bench="search", target=f"cluster {shards} shards", **r, qps_ratio=r["qps"] / single["qps"])
        drop(a.node, name)
    drop(a.single, "bench_single")


def widen(x, seed=7):
    """768-d vectors with exactly the neighbours of the 384-d ones: x -> [x, Qx] / sqrt(2) with Q a random
    orthogonal matrix, so cosine similarities (and the ground truth) are unchanged and each vector costs 768-d."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((x.shape[1], x.shape[1])))
    return np.ascontiguousarray(np.hstack([x, x @ q.T]) / np.sqrt(2.0), dtype=np.float32)


def scale_bench(a, base, queries, gt):
    """Search QPS and p99 through one node by shard count (1, 2, 4, 8) and embedding size (384, 768), with a
    single node beside it; one JSON line per point of the plot (`plot` draws them)."""
    for dim in [384, 768]:
        b, q = (base, queries) if dim == 384 else (widen(base), widen(queries))
        drop(a.single, "bench_single")
        call(a.single, "PUT", "/collections/bench_single", {"vectors": {"size": dim, "distance": "Cosine"}})
        ingest(a.single, "bench_single", b, a.batch, True)
        time.sleep(a.settle)
        single = run_queries(a.single, "bench_single", q, gt, 10, {})
        emit(bench="scale", dim=dim, target="single", shards=0, **single)
        drop(a.single, "bench_single")
        for shards in [1, 2, 4, 8]:
            name = f"bench_scale_{dim}_{shards}"
            drop(a.node, name)
            call(a.node, "PUT", f"/collections/{name}", {
                "vectors": {"size": dim, "distance": "Cosine"}, "shard_number": shards, "replication_factor": 1})
            ingest(a.node, name, b, a.batch, True)
            time.sleep(a.settle)
            r = run_queries(a.node, name, q, gt, 10, {})
            emit(bench="scale", dim=dim, target="cluster", shards=shards, **r, qps_ratio=r["qps"] / single["qps"])
            drop(a.node, name)


def plot(results, out):
    """Draws the `scale` lines of a results file: QPS and p99 by shard count, one line per embedding size, the
    single node as a dashed line of the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(results) if line.strip().startswith("{")]
    rows = [r for r in rows if r.get("bench") == "scale"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax, label in [("qps", axes[0], "queries/s (one client thread)"), ("p99_ms", axes[1], "p99 latency (ms)")]:
        for dim, colour in [(384, "tab:blue"), (768, "tab:orange")]:
            pts = sorted((r["shards"], r[key]) for r in rows if r["dim"] == dim and r["target"] == "cluster")
            single = [r[key] for r in rows if r["dim"] == dim and r["target"] == "single"]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colour, label=f"cluster, {dim}-d")
            if single:
                ax.axhline(single[0], color=colour, linestyle="--", label=f"single node, {dim}-d")
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8])
        ax.set_xticklabels(["1", "2", "4", "8"])
        ax.set_xlabel("shards (R1, 3 nodes, one 2-vCPU machine)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("QuiverDB cluster on loopback: search through one node, 10k WordNet/MiniLM points, k=10")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset prefix DIR/NAME (every benchmark but plot)")
    p.add_argument("--node", default="http://127.0.0.1:6333", help="a cluster node")
    p.add_argument("--single", default="http://127.0.0.1:6400", help="a single-node server")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--limit", type=int, default=None, help="use only the first N base vectors")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--settle", type=float, default=20.0, help="seconds for background index builds")
    p.add_argument("--train-after", type=int, default=20000, help="centroid-trained: train_after")
    p.add_argument("--results", help="plot: the JSON lines to draw")
    p.add_argument("--out", help="plot: the PNG to write")
    p.add_argument("what", choices=["centroid", "centroid-trained", "ingest", "search", "scale", "plot"])
    a = p.parse_args()
    if a.what == "plot":
        return plot(a.results, a.out)
    base = fvecs(a.data + "_base.fvecs", a.limit)
    queries = fvecs(a.data + "_query.fvecs")[: a.queries]
    gt = ivecs(a.data + "_groundtruth.ivecs")[: a.queries]
    if a.limit:
        # Ground truth over the first N points: exact, with numpy.
        gt = np.argsort(-(queries @ base.T), axis=1)[:, :100]
    {"centroid": centroid, "centroid-trained": centroid_trained, "ingest": ingest_bench, "search": search_bench,
     "scale": scale_bench}[a.what](a, base, queries, gt)


if __name__ == "__main__":
    sys.exit(main())
