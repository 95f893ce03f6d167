#!/usr/bin/env python3
"""Builds testdata/wordnet-minilm-3k: the small real set the tests run on, on any clone.

Source: the 10k set that ../shared/data/make_dataset.py writes (WordNet 3.0 glosses embedded with
all-MiniLM-L6-v2, 384-d, unit norm). This keeps its first 3,000 base vectors and first 200 queries and recomputes
the exact top-100 ground truth against that smaller base (inner product in float64; distance = 1 - dot, the cosine
distance). Item tags (pos, lexname, n_words) are kept for filter tests; the gloss text is dropped to stay small.

Usage: python3 testdata/make_testdata.py [--src ../shared/data/wordnet-minilm-10k] [--out testdata]
"""
import argparse
import json
from pathlib import Path

import numpy as np

N_BASE, N_QUERY, K = 3000, 200, 100


def read_vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def write_vecs(path, a):
    a = np.ascontiguousarray(a)
    n, d = a.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = a.view(np.int32)
    out.tofile(path)


def main():
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(here.parent.parent / "shared/data/wordnet-minilm-10k"))
    ap.add_argument("--out", default=str(here))
    args = ap.parse_args()
    src = Path(args.src)
    name = "wordnet-minilm-3k"
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)

    base = read_vecs(src / "wordnet-minilm-10k_base.fvecs", np.float32)[:N_BASE]
    query = read_vecs(src / "wordnet-minilm-10k_query.fvecs", np.float32)[:N_QUERY]
    sims = query.astype(np.float64) @ base.astype(np.float64).T
    # Sort by similarity descending, ties by id ascending (lexsort's last key is the primary one).
    order = np.array([np.lexsort((np.arange(N_BASE), -row))[:K] for row in sims], dtype=np.int32)
    dist = (1.0 - np.take_along_axis(sims, order, axis=1)).astype(np.float32)

    write_vecs(out / f"{name}_base.fvecs", base)
    write_vecs(out / f"{name}_query.fvecs", query)
    write_vecs(out / f"{name}_groundtruth.ivecs", order)
    write_vecs(out / f"{name}_groundtruth_dist.fvecs", dist)
    for kind, n in (("base", N_BASE), ("query", N_QUERY)):
        with open(src / f"wordnet-minilm-10k_{kind}_items.jsonl") as f, open(out / f"{name}_{kind}_items.jsonl", "w") as g:
            for i, line in enumerate(f):
                if i >= n:
                    break
                it = json.loads(line)
                g.write(json.dumps({k: it[k] for k in ("id", "pos", "lexname", "n_words")}) + "\n")
    meta = {
        "name": name, "dims": 384, "n_base": N_BASE, "n_query": N_QUERY, "k_groundtruth": K,
        "metric": "cosine (unit-norm vectors)", "groundtruth_distance": "cosine distance = 1 - dot (float64, stored f32)",
        "source": "first rows of wordnet-minilm-10k from ../shared/data/make_dataset.py; see testdata/README.md",
    }
    (out / f"{name}_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
