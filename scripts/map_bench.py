#!/usr/bin/env python3
"""Time and faithfulness of `GET /collections/{c}/map` on real embeddings.

Loads the first N vectors of a TEXMEX set (with their WordNet lexname as payload) into a fresh `quiver serve`,
asks for the map by UMAP and by PCA, and reports the server's time and the kNN overlap: for Q random sampled points,
the share of each one's k nearest neighbours in the full space (cosine, exact) that are also among its k nearest
on the map (1.0 is perfect; a random layout scores about k/N).

    cargo build --release -p quiver-cli
    python3 scripts/map_bench.py --data /tmp/vdb-data/wordnet-minilm-100k/wordnet-minilm-100k --n 50000
"""
import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import numpy as np


def fvecs(path, n):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:n, 1:].view(np.float32).copy()


def http(url, method="GET", body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())["result"]


def overlap(x, coords, k, queries, rng):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    picks = rng.choice(len(x), size=min(queries, len(x)), replace=False)
    hits = 0
    for q in picks:
        full = 1.0 - x @ x[q]
        full[q] = np.inf
        flat = ((coords - coords[q]) ** 2).sum(axis=1)
        flat[q] = np.inf
        a = set(np.argpartition(full, k)[:k])
        b = set(np.argpartition(flat, k)[:k])
        hits += len(a & b)
    return hits / (len(picks) * k)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="path prefix of NAME_base.fvecs and NAME_base_items.jsonl")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--binary", default=os.path.expanduser("~/.cache/quiver-target/release/quiver"))
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--umap-learn", action="store_true",
                    help="also lay out the same points with umap-learn (pip install umap-learn), both cores")
    ap.add_argument("--out", help="append the JSON result line to this file")
    a = ap.parse_args()
    x = fvecs(a.data + "_base.fvecs", a.n)
    tags = []
    with open(a.data + "_base_items.jsonl") as f:
        for line in f:
            if len(tags) == len(x):
                break
            tags.append(json.loads(line).get("lexname", ""))
    d = tempfile.mkdtemp(prefix="quiver-map-bench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([a.binary, "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", d],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        http(url + "/collections/m", "PUT", {"vectors": {"size": int(x.shape[1]), "distance": "Cosine"}})
        for i in range(0, len(x), 2000):
            pts = [{"id": i + j, "vector": v.tolist(), "payload": {"lexname": tags[i + j]}} for j, v in enumerate(x[i:i + 2000])]
            http(url + "/collections/m/points?wait=true", "PUT", {"points": pts})
        # Let the optimizer finish (sealing and indexing what was just written) so the map is timed alone.
        for _ in range(1200):
            info = http(url + "/collections/m")
            if info["status"] == "green" and info["indexed_vectors_count"] >= info["points_count"]:
                break
            time.sleep(0.5)
        rng = np.random.default_rng(7)
        rows = []
        for method in ("umap", "pca"):
            t = time.time()
            m = http(url + f"/collections/m/map?sample={a.n}&method={method}&color_by=lexname")
            wall = time.time() - t
            coords = np.array([[p["x"], p["y"]] for p in m["points"]], dtype=np.float64)
            ids = np.array([p["id"] for p in m["points"]])
            row = {"method": method, "n": len(ids), "dim": int(x.shape[1]), "server_ms": m["took_ms"],
                   "wall_s": round(wall, 2),
                   "knn_overlap_10": round(overlap(x[ids], coords, 10, a.queries, rng), 3),
                   "knn_overlap_100": round(overlap(x[ids], coords, 100, a.queries, rng), 3),
                   "random_10": round(10 / len(ids), 5),
                   "explained_variance": m["explained_variance"]}
            print(json.dumps(row), flush=True)
            rows.append(row)
        if a.umap_learn:
            import umap
            sample = x[ids]
            # numba compiles on the first call: warm up on a small set so the timing is the layout's.
            umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", n_jobs=2).fit_transform(sample[:2000])
            t = time.time()
            coords = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", n_jobs=2).fit_transform(sample)
            took = time.time() - t
            row = {"method": "umap-learn " + umap.__version__, "n": len(ids), "dim": int(x.shape[1]),
                   "server_ms": None, "wall_s": round(took, 2),
                   "knn_overlap_10": round(overlap(sample, coords, 10, a.queries, rng), 3),
                   "knn_overlap_100": round(overlap(sample, coords, 100, a.queries, rng), 3),
                   "random_10": round(10 / len(ids), 5)}
            print(json.dumps(row), flush=True)
            rows.append(row)
        if a.out:
            with open(a.out, "a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
