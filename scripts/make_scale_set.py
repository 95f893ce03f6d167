#!/usr/bin/env python3
"""A large benchmark set (1M, 10M, … × 384) as hard for an ANN index as real MiniLM embeddings.

Uniform noise is useless for judging an index: real embeddings sit on a low-dimensional, clustered manifold. This
generator starts from the 117,659 real WordNet gloss embeddings shipped in `../shared/data/wordnet_minilm_all.f16.npy`
(all-MiniLM-L6-v2, unit norm) and draws every new vector from a Gaussian in the local tangent space of a real one:

    x = normalise(v_0 + (s / sqrt(k)) · Σ_j z_j (v_j − v_0)),   z_j ~ N(0, 1)

with v_0 a random real vector and v_1..v_k its k nearest real neighbours (defaults k = 40, s = 0.7): noise only
along the directions in which the real data spreads around v_0, at its local scale. Calibrated at 100k against the
real 100k set (hnswlib M=16, efC=100, one thread; see "Scale sets" in docs/benchmarks.md): recall@10 at ef 10/16/
32/64 within 0.005 of the real set's on four seeds, local intrinsic dimension within 5%. Recipes that mix a real
vector with its neighbours plus isotropic noise, or sample a k-means mixture, came out far easier (0.97–0.99 at ef 16
against the real 0.91). Queries (default 1,000) are drawn the same way with another seed: same distribution, not in
the base. Ground truth: the exact top-100 by cosine for every query, in float32 blocks (`--check` cross-checks 20
queries in float64).

Writes TEXMEX files next to each other, like `make_dataset.py`: NAME_base.fvecs, NAME_query.fvecs,
NAME_groundtruth.ivecs (top-100 ids), NAME_groundtruth_dist.fvecs (cosine distances), NAME_meta.json (how it was
made, and nearest-neighbour distance quantiles of the queries beside those of the real set, to compare difficulty).

    python3 scripts/make_scale_set.py --n 100000 --out /tmp/vdb-data/minilm-gen-100k   # the calibration size
    python3 scripts/make_scale_set.py --n 1000000 --out /tmp/vdb-data/minilm-gen-1m
    python3 scripts/make_scale_set.py --n 10000000 --out /tmp/vdb-data/minilm-gen-10m   # ~15 GB

The real vectors' 40 nearest neighbours are computed once (about 6 minutes on one core) and cached in
~/.cache/quiver-datasets.
"""
import argparse
import json
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "shared", "data", "wordnet_minilm_all.f16.npy")


def normalise(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def write_fvecs(path, x, mode="wb"):
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    rows = np.empty((n, d + 1), dtype=np.float32)
    rows[:, 0] = np.array([d], dtype=np.int32).view(np.float32)[0]
    rows[:, 1:] = x
    with open(path, mode) as f:
        rows.tofile(f)


def write_ivecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.int32)
    n, d = x.shape
    rows = np.empty((n, d + 1), dtype=np.int32)
    rows[:, 0] = d
    rows[:, 1:] = x
    rows.tofile(path)


def real_neighbours(real, k, block=1024):
    """The k nearest other real vectors of every real vector (exact cosine)."""
    out = np.empty((len(real), k), dtype=np.int32)
    for s in range(0, len(real), block):
        sims = real[s:s + block] @ real.T
        for i in range(sims.shape[0]):
            sims[i, s + i] = -np.inf
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        out[s:s + block] = np.take_along_axis(part, order, axis=1)
    return out


def generate(real, nbrs, n, rng, scale, k, chunk=50_000):
    """`n` new unit vectors, each from a Gaussian centred on a random real vector v_0 whose covariance is the
    (uncentred) second moment of v_0's offsets to its k nearest real neighbours, times scale²:
    x = normalise(v_0 + (scale/√k) Σ_j z_j (v_j − v_0)), computed as v_0 (1 − Σ z) + Σ z_j v_j."""
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for a in range(0, n, chunk):
        m = min(chunk, n - a)
        src = rng.integers(0, len(real), size=m)
        z = rng.standard_normal(size=(m, k), dtype=np.float32) * np.float32(scale / np.sqrt(k))
        x = real[src] * (1.0 - z.sum(axis=1, keepdims=True))
        for j in range(k):
            x += z[:, j:j + 1] * real[nbrs[src, j]]
        out[a:a + m] = normalise(x)
    return out


def top_k(queries, base_chunks, k):
    """Exact top-k by cosine (unit vectors: largest dot product) over base chunks: (ids, distances)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    offset = 0
    for chunk in base_chunks:
        sims = queries @ chunk.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(sims, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + offset], axis=1)
        keep = np.argpartition(-cand_s, k, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, keep, axis=1)
        best_i = np.take_along_axis(cand_i, keep, axis=1)
        offset += len(chunk)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1), 1.0 - np.take_along_axis(best_s, order, axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="base vectors")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--out", required=True, help="directory; files are named after it")
    ap.add_argument("--source", default=SOURCE)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=40, help="real neighbours spanning each point's tangent space")
    ap.add_argument("--scale", type=float, default=0.7, help="spread along the tangent space (calibrated: 0.7)")
    ap.add_argument("--chunk", type=int, default=500_000, help="vectors generated (and kept in memory) at a time")
    ap.add_argument("--check", action="store_true", help="cross-check the first 20 queries' top-10 in float64")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    name = os.path.basename(os.path.normpath(a.out))
    prefix = os.path.join(a.out, name)
    t0 = time.time()
    real = normalise(np.load(a.source).astype(np.float32))
    cache = os.path.join(os.path.expanduser("~/.cache/quiver-datasets"), f"real-neighbours-{len(real)}x{a.k}.npy")
    if os.path.exists(cache):
        nbrs = np.load(cache)
    else:
        print(f"{len(real)} real vectors; finding each one's {a.k} nearest real neighbours (once, cached)…", flush=True)
        nbrs = real_neighbours(real, a.k)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.save(cache, nbrs)
        print(f"  {time.time() - t0:.0f} s", flush=True)
    rng = np.random.default_rng(a.seed)
    queries = generate(real, nbrs, a.queries, np.random.default_rng(a.seed + 1_000_003), a.scale, a.k)
    write_fvecs(prefix + "_query.fvecs", queries)
    base_path = prefix + "_base.fvecs"
    open(base_path, "wb").close()
    best_s = np.full((len(queries), 100), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 100), dtype=np.int64)
    done = 0
    while done < a.n:
        m = min(a.chunk, a.n - done)
        x = generate(real, nbrs, m, rng, a.scale, a.k)
        write_fvecs(base_path, x, "ab")
        # Fold this chunk into the running top-100.
        ids, dist = top_k(queries, [x[i:i + 100_000] for i in range(0, m, 100_000)], 100)
        cand_s = np.concatenate([best_s, 1.0 - dist], axis=1)
        cand_i = np.concatenate([best_i, ids + done], axis=1)
        keep = np.argsort(-cand_s, axis=1, kind="stable")[:, :100]
        best_s = np.take_along_axis(cand_s, keep, axis=1)
        best_i = np.take_along_axis(cand_i, keep, axis=1)
        done += m
        print(f"  {done:,} / {a.n:,} vectors, {time.time() - t0:.0f} s", flush=True)
    write_ivecs(prefix + "_groundtruth.ivecs", best_i)
    write_fvecs(prefix + "_groundtruth_dist.fvecs", 1.0 - best_s)
    if a.check:
        base = np.fromfile(base_path, dtype=np.float32).reshape(-1, 385)[:, 1:]
        q = queries[:20].astype(np.float64)
        sims = q @ base.T.astype(np.float64)
        for i in range(20):
            top = np.argsort(-sims[i], kind="stable")[:10]
            # Tie-aware: the 10th true similarity bounds what the ground truth may hold.
            assert set(best_i[i, :10]) == set(top) or np.isclose(sims[i, best_i[i, 9]], sims[i, top[9]], atol=1e-6), i
        print("ground truth cross-checked in float64 for 20 queries", flush=True)
    # Difficulty beside the real set: distances to the 1st and 10th neighbour of each query.
    real_q = real[rng.choice(len(real), size=min(1000, len(real)), replace=False)]
    _, real_d = top_k(real_q, [real[i:i + 100_000] for i in range(0, len(real), 100_000)], 11)
    meta = {
        "name": name, "n": a.n, "dim": int(real.shape[1]), "queries": a.queries, "metric": "cosine",
        "source": os.path.basename(a.source), "source_vectors": len(real), "seed": a.seed, "k": a.k,
        "scale": a.scale,
        "recipe": "x = normalise(v_0 + (scale/sqrt(k)) sum_j z_j (v_j - v_0)): v_0 a random real vector, v_1..v_k "
                  "its k nearest real neighbours, z_j ~ N(0, 1)",
        "query_nn_distance_quantiles": {
            "generated_1st": np.quantile(1.0 - best_s[:, 0], [0.1, 0.5, 0.9]).round(4).tolist(),
            "generated_10th": np.quantile(1.0 - best_s[:, 9], [0.1, 0.5, 0.9]).round(4).tolist(),
            # The real set's own points as queries (their nearest is themselves: skip it).
            "real_117k_1st": np.quantile(real_d[:, 1], [0.1, 0.5, 0.9]).round(4).tolist(),
            "real_117k_10th": np.quantile(real_d[:, 10], [0.1, 0.5, 0.9]).round(4).tolist(),
        },
        "seconds": round(time.time() - t0, 1),
    }
    with open(prefix + "_meta.json", "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
