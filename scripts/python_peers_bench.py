#!/usr/bin/env python3
"""The embedded peers of the Python package, on the workload of scripts/python_bench.py: ingest the base vectors
from numpy, build the index, then one-thread search QPS, p50/p99 and recall@10 over a sweep of the search knob.
One engine per process (run it once per engine) so each process's peak RSS is that engine's.

    python3 scripts/python_peers_bench.py --engine lancedb --data /tmp/vdb-data/wordnet-minilm-100k --out /tmp/lance.json
    python3 scripts/python_peers_bench.py --engine chroma  --data /tmp/vdb-data/wordnet-minilm-100k --out /tmp/chroma.json

Engines: `lancedb` (IVF_HNSW_SQ, m=16, ef_construction=200; `ef` swept, `nprobes` fixed) and `chroma`
(PersistentClient, HNSW m=16, ef_construction=200; one `--ef` per run: its ef_search is fixed at creation). Needs `pip install lancedb chromadb`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from python_bench import finish, one, read_vecs, timed_run


def lancedb_engine(d: str, base: np.ndarray, a):
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(d)
    dim = base.shape[1]
    t = time.perf_counter()
    tbl = None
    for start in range(0, len(base), 10_000):
        chunk = base[start:start + 10_000]
        vec = pa.FixedSizeListArray.from_arrays(pa.array(chunk.ravel(), type=pa.float32()), dim)
        batch = pa.table({"id": pa.array(np.arange(start, start + len(chunk)), type=pa.int64()), "vector": vec})
        if tbl is None:
            tbl = db.create_table("bench", data=batch)
        else:
            tbl.add(batch)
    ingest = time.perf_counter() - t
    from lancedb.index import IvfHnswSq

    t = time.perf_counter()
    tbl.create_index("vector", config=IvfHnswSq(distance_type="cosine", m=16, ef_construction=200))
    index = time.perf_counter() - t

    def search(q, ef):
        qb = tbl.search(q).distance_type("cosine").limit(a.k).nprobes(a.nprobes).ef(ef).select(["id"])
        if hasattr(qb, "disable_scoring_autoprojection"):
            qb = qb.disable_scoring_autoprojection()
        res = qb.to_arrow()
        return res.column("id").to_pylist()

    return ingest, index, search, {"index": "IVF_HNSW_SQ", "m": 16, "ef_construction": 200, "nprobes": a.nprobes}


def chroma_engine(d: str, base: np.ndarray, a):
    import chromadb

    client = chromadb.PersistentClient(path=d)
    # ef_search is fixed when the collection is made (`modify` does not change it for an existing HNSW index in
    # chromadb 1.5: the recall does not move), so Chroma runs one ef per process.
    efs = [int(x) for x in a.ef.split(",")]
    if len(efs) != 1:
        raise SystemExit("chroma: give one --ef per run (its ef_search is set when the collection is created)")
    hnsw = {"space": "cosine", "max_neighbors": 16, "ef_construction": 200, "ef_search": efs[0]}
    col = client.create_collection("bench", configuration={"hnsw": hnsw})
    step = min(5_000, client.get_max_batch_size())
    t = time.perf_counter()
    for start in range(0, len(base), step):
        chunk = base[start:start + step]
        col.add(ids=[str(i) for i in range(start, start + len(chunk))], embeddings=chunk)
    ingest = time.perf_counter() - t  # Chroma builds its HNSW graph while adding

    def search(q, ef):
        res = col.query(query_embeddings=[q], n_results=a.k, include=[])
        return [int(x) for x in res["ids"][0]]

    return ingest, 0.0, search, {"index": "hnsw", "m": 16, "ef_construction": 200}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True, choices=["lancedb", "chroma"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--nprobes", type=int, default=20, help="LanceDB: IVF partitions probed")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--out")
    a = ap.parse_args()

    base = read_vecs(one(os.path.join(a.data, "*_base.fvecs")), np.float32)
    queries = read_vecs(one(os.path.join(a.data, "*_query.fvecs")), np.float32)[: a.nq]
    gt = read_vecs(one(os.path.join(a.data, "*_groundtruth.ivecs")), np.int32)[: a.nq, : a.k]
    engine = {"lancedb": lancedb_engine, "chroma": chroma_engine}[a.engine]
    out = {"engine": a.engine, "data": a.data, "n": len(base), "dim": base.shape[1], "nq": len(queries), "k": a.k,
           "runs": []}
    with tempfile.TemporaryDirectory() as d:
        ingest, index, search, settings = engine(d, base, a)
        out.update(ingest_s=ingest, index_s=index, settings=settings)
        for ef in [int(x) for x in a.ef.split(",")]:
            run = timed_run(lambda q: search(q, ef), queries, gt, a.k, ef)
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
    finish(out, a.out)

if __name__ == "__main__":
    main()
