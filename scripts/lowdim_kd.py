#!/usr/bin/env python3
"""lowdim_kd.py -- low-dimensional sets for the KD-tree comparison, and SciPy cKDTree timed on them.

Writes two TEXMEX sets (base/query fvecs, exact top-100 groundtruth ivecs, Euclidean distances fvecs) that
`quiver bench --metric euclidean --gt-metric euclidean` reads:
  OUT/pca8/pca8_*       the first 8 PCA components of the WordNet/MiniLM base and queries
  OUT/cloud3/cloud3_*   a 3-d point cloud: 100k points on a noisy torus, 2k queries from the same distribution
Then times scipy.spatial.cKDTree (exact, k=10, workers=1, leafsize=16) on each and prints JSON lines.

    OMP_NUM_THREADS=1 python3 scripts/lowdim_kd.py --data /tmp/vdb-data/wordnet-minilm-100k --out /tmp/vdb-lowdim
    OMP_NUM_THREADS=1 python3 scripts/lowdim_kd.py --data - --out /tmp/vdb-lowdim --time-only   # time only
"""
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse, glob, json, time
import numpy as np
from scipy.spatial import cKDTree


def read_vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def write_vecs(path, x):
    x = np.ascontiguousarray(x)
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = x.view(np.int32)
    out.tofile(path)


def write_set(root, name, base, query):
    base = base.astype(np.float32); query = query.astype(np.float32)
    os.makedirs(os.path.join(root, name), exist_ok=True)
    pre = os.path.join(root, name, name)
    write_vecs(pre + "_base.fvecs", base)
    write_vecs(pre + "_query.fvecs", query)
    tree = cKDTree(base.astype(np.float64), leafsize=16)
    dist, idx = tree.query(query.astype(np.float64), k=100, workers=-1)
    write_vecs(pre + "_groundtruth.ivecs", idx.astype(np.int32))
    write_vecs(pre + "_groundtruth_dist.fvecs", dist.astype(np.float32))


def time_ckdtree(name, base, query, runs=3):
    t0 = time.perf_counter(); tree = cKDTree(base, leafsize=16); build = time.perf_counter() - t0
    tree.query(query[:50], k=10, workers=1)
    best = None
    for _ in range(runs):
        t0 = time.perf_counter(); tree.query(query, k=10, workers=1); dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    print(json.dumps(dict(peer="scipy-ckdtree", set=name, n=len(base), d=base.shape[1], nq=len(query),
                          build_s=round(build, 3), qps=round(len(query) / best, 1), recall10=1.0)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--time-only", action="store_true", help="only time cKDTree on the sets already in --out")
    a = ap.parse_args()
    if a.time_only:
        for name in ("cloud3", "pca8"):
            pre = os.path.join(a.out, name, name)
            b = read_vecs(pre + "_base.fvecs", np.float32).astype(np.float64)
            q = read_vecs(pre + "_query.fvecs", np.float32)[: a.nq].astype(np.float64)
            time_ckdtree(name, b, q)
        return
    base = read_vecs(glob.glob(os.path.join(a.data, "*_base.fvecs"))[0], np.float32).astype(np.float64)
    query = read_vecs(glob.glob(os.path.join(a.data, "*_query.fvecs"))[0], np.float32)[: a.nq].astype(np.float64)
    mean = base.mean(axis=0)
    _, _, vt = np.linalg.svd(base[::10] - mean, full_matrices=False)
    p8 = lambda x: (x - mean) @ vt[:8].T
    sets = {"pca8": (p8(base), p8(query))}
    rng = np.random.default_rng(7)

    def torus(n):
        u, v = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 2 * np.pi, n)
        r = 1.0 + 0.3 * np.cos(v)
        pts = np.stack([r * np.cos(u), r * np.sin(u), 0.3 * np.sin(v)], axis=1)
        return pts + rng.normal(scale=0.02, size=pts.shape)

    sets["cloud3"] = (torus(len(base)), torus(a.nq))
    for name, (b, q) in sets.items():
        write_set(a.out, name, b, q)
        time_ckdtree(name, b.astype(np.float32).astype(np.float64), q.astype(np.float32).astype(np.float64))


if __name__ == "__main__":
    main()
