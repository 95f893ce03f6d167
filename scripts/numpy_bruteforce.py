#!/usr/bin/env python3
"""Exact top-k by numpy brute force (`xq @ xb.T` + argpartition), one BLAS thread: the reference point for
`quiver bench --index flat --batch`. Writes a peers-format JSON (same shape as shared/data/peers_bench.py --out)
so `quiver bench --plot --peers` can overlay it.

Usage: python3 scripts/numpy_bruteforce.py --data /tmp/vdb-data/wordnet-minilm-100k [--nq 2000] [--k 10]
           [--chunk 256] [--out numpy.json]
"""
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def read_vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def search(xb, xq, k, chunk):
    out = np.empty((len(xq), k), dtype=np.int64)
    for s in range(0, len(xq), chunk):
        sims = xq[s:s + chunk] @ xb.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[s:s + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    xb = read_vecs(glob.glob(os.path.join(args.data, "*_base.fvecs"))[0], np.float32)
    xq = read_vecs(glob.glob(os.path.join(args.data, "*_query.fvecs"))[0], np.float32)[: args.nq]
    gt = read_vecs(glob.glob(os.path.join(args.data, "*_groundtruth.ivecs"))[0], np.int32)[: args.nq]
    try:
        from threadpoolctl import threadpool_info
        blas = [(i.get("internal_api"), i.get("num_threads"), i.get("architecture")) for i in threadpool_info()]
    except ImportError:
        blas = "threadpoolctl not installed"
    search(xb, xq[:50], args.k, args.chunk)  # warm-up
    qps_runs = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ids = search(xb, xq, args.k, args.chunk)
        qps_runs.append(len(xq) / (time.perf_counter() - t0))
    qps = float(np.median(qps_runs))
    hits = sum(len(set(ids[i, :args.k].tolist()) & set(gt[i, :args.k].tolist())) for i in range(len(xq)))
    recall = hits / (args.k * len(xq))
    print(f"numpy brute force n={len(xb)} d={xb.shape[1]} nq={len(xq)} k={args.k} chunk={args.chunk} "
          f"QPS median {qps:.1f} (runs {[round(q, 1) for q in qps_runs]}) recall@{args.k} {recall:.4f} blas={blas}")
    if args.out:
        row = dict(peer="numpy-bruteforce", params=f"matmul+argpartition chunk={args.chunk}", build_s=0.0,
                   mem_mb=None, search="-", qps=round(qps, 1), recall10=round(recall, 4))
        with open(args.out, "w") as f:
            json.dump(dict(data=args.data, n=len(xb), d=int(xb.shape[1]), nq=len(xq), threads=1, rows=[row]), f, indent=1)


if __name__ == "__main__":
    main()
