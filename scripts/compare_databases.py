#!/usr/bin/env python3
"""QuiverDB against the databases you know: the same data and the same filtered top-10 queries in

  quiver       QuiverDB embedded (`quiverdb.open`), default HNSW index, keyword payload indexes on the filtered keys
  quiver-flat  the same with `index="flat"` (exact scan)
  sqlite-vec   SQLite + the sqlite-vec extension: a `vec0` table with metadata columns (exact brute-force KNN)
  chroma       Chroma's embedded PersistentClient: documents + metadata + embeddings, cosine, default HNSW
  numpy        no database: one matrix product per query over a float32 array (exact, recall 1 by definition)

Each engine runs in its own process (this script re-invokes itself with --engine), so its peak RSS is its own.
Workloads: unfiltered top-10, a broad filter (pos = noun) and a narrow one (lexname = noun.food); the selectivity
of each is measured and printed. Ground truth is the exact filtered top-10 from numpy (cosine = dot on the unit
vectors); recall counts a hit when it passes the filter and scores at least the exact 10th (ties count).
Queries are sent one at a time from one Python thread after a warm-up; BLAS is held to one thread.

    python3 scripts/compare_databases.py --data /tmp/vdb-data/wordnet-minilm-100k --nq=1000 --out cmp.json

Needs: numpy, quiverdb, sqlite-vec (and an sqlite3 that can load extensions: the standard module, or
pysqlite3-binary where Python was built without it); chromadb is optional (skipped with a message).
"""

from __future__ import annotations

import argparse
import gc
import glob
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

# One thread for BLAS (numpy's matrix products) in this process and the engine processes it starts.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

K = 10
WARMUP = 10
ENGINES = ["quiver", "quiver-flat", "sqlite-vec", "chroma", "numpy"]
EXACT = {"quiver-flat", "sqlite-vec", "numpy"}
# (name, payload key, value): the same filters on every engine. None = unfiltered.
WORKLOADS = [("unfiltered", None, None), ("pos=noun", "pos", "noun"), ("lexname=noun.food", "lexname", "noun.food")]
SQLITE_VEC_HELP = ("sqlite-vec is required: python3 -m pip install sqlite-vec==0.1.9 "
                   "(and pysqlite3-binary==0.5.4.post2 where Python's sqlite3 cannot load extensions)")


# ---------------------------------------------------------------------------------------------------- the data
def one(pattern: str) -> str:
    found = glob.glob(pattern)
    if len(found) != 1:
        raise SystemExit(f"expected one file matching {pattern}, found {found}")
    return found[0]


def read_fvecs(path: str) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def read_items(path: str) -> list:
    keep = ("pos", "lexname", "n_words", "text")
    out = []
    with open(path) as f:
        for line in f:
            it = json.loads(line)
            out.append({k: it[k] for k in keep if k in it})
    return out


def load_data(data: str, nq: int):
    base = read_fvecs(one(os.path.join(data, "*_base.fvecs")))
    queries = read_fvecs(one(os.path.join(data, "*_query.fvecs")))[:nq]
    items = read_items(one(os.path.join(data, "*_base_items.jsonl")))
    if len(items) != len(base):
        raise SystemExit(f"{len(items)} items for {len(base)} base vectors")
    return base, queries, items


def masks(items: list) -> dict:
    """Workload name -> boolean mask of admitted rows (None = all)."""
    out = {}
    for name, key, value in WORKLOADS:
        out[name] = None if key is None else np.array([it.get(key) == value for it in items])
    return out


# -------------------------------------------------------------------------------------------- the engines
class Quiver:
    def __init__(self, workdir: str, index: str | None):
        import quiverdb
        self.quiverdb = quiverdb
        self.db = quiverdb.open(workdir)
        self.index = index

    def load(self, base, items):
        kw = {} if self.index is None else {"index": self.index}
        self.col = self.db.create_collection("wordnet", dim=base.shape[1], metric="cosine", **kw)
        # A keyword payload index on each filtered key, as a user who filters on them would make.
        self.col.create_index("pos", "keyword")
        self.col.create_index("lexname", "keyword")
        self.col.upsert(np.arange(len(base), dtype=np.uint64), base, items)
        self.col.optimize()  # seal and index the bulk load now (the background optimizer would do it too)

    def search(self, q, key, value):
        flt = None if key is None else {"must": [{"key": key, "match": {"value": value}}]}
        return [h.id for h in self.col.search(q, k=K, filter=flt, with_payload=False)]

    def info(self):
        i = self.col.info()
        return {"quiverdb_build": self.quiverdb._native.build_info(), "segments": i.get("segments"),
                "index": self.index or "hnsw (default)"}

    def close(self):
        self.db.close()


def sqlite_module():
    """The sqlite3 module to use: the standard one when it can load extensions, else pysqlite3."""
    import sqlite3
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        import pysqlite3.dbapi2 as sqlite3b  # ships its own SQLite with extension loading
        return sqlite3b
    except ImportError:
        raise SystemExit("this Python's sqlite3 module cannot load extensions (built without "
                         "--enable-loadable-sqlite-extensions); " + SQLITE_VEC_HELP)


class SqliteVec:
    def __init__(self, workdir: str):
        try:
            import sqlite_vec
        except ImportError:
            raise SystemExit(SQLITE_VEC_HELP)
        self.sqlite3 = sqlite_module()
        self.path = os.path.join(workdir, "wordnet.db")
        self.db = self.sqlite3.connect(self.path)
        self.db.enable_load_extension(True)
        self.db.load_extension(sqlite_vec.loadable_path())
        self.db.enable_load_extension(False)
        self.version = self.db.execute("select vec_version()").fetchone()[0]

    def load(self, base, items):
        dim = base.shape[1]
        # Metadata columns (sqlite-vec >= 0.1.6) can be constrained inside the KNN query itself; `+text` is an
        # auxiliary column (stored, returned, not filterable).
        self.db.execute(f"""CREATE VIRTUAL TABLE items USING vec0(
                              id INTEGER PRIMARY KEY,
                              embedding float[{dim}] distance_metric=cosine,
                              pos TEXT, lexname TEXT, n_words INTEGER,
                              +text TEXT)""")
        rows = ((i, base[i].tobytes(), it.get("pos"), it.get("lexname"), it.get("n_words"), it.get("text"))
                for i, it in enumerate(items))
        with self.db:  # one transaction
            self.db.executemany("INSERT INTO items(id, embedding, pos, lexname, n_words, text) "
                                "VALUES (?, ?, ?, ?, ?, ?)", rows)

    def search(self, q, key, value):
        if key is None:
            cur = self.db.execute("SELECT id, distance FROM items WHERE embedding MATCH ? AND k = ?",
                                  (q.tobytes(), K))
        else:  # key is one of our two fixed column names, never user input
            cur = self.db.execute(f"SELECT id, distance FROM items WHERE embedding MATCH ? AND k = ? AND {key} = ?",
                                  (q.tobytes(), K, value))
        return [r[0] for r in cur.fetchall()]

    def info(self):
        return {"sqlite": self.sqlite3.sqlite_version, "sqlite_module": self.sqlite3.__name__,
                "sqlite_vec": self.version}

    def close(self):
        self.db.close()


class Chroma:
    def __init__(self, workdir: str):
        import chromadb
        from chromadb.config import Settings
        self.chromadb = chromadb
        self.client = chromadb.PersistentClient(path=workdir, settings=Settings(anonymized_telemetry=False))

    def load(self, base, items):
        # Cosine space, every other HNSW setting at Chroma's default; no embedding function (we bring vectors).
        self.col = self.client.create_collection("wordnet", configuration={"hnsw": {"space": "cosine"}},
                                                 embedding_function=None)
        step = self.client.get_max_batch_size()
        has_text = "text" in items[0]
        for a in range(0, len(base), step):
            b = min(a + step, len(base))
            meta = [{k: v for k, v in it.items() if k != "text"} for it in items[a:b]]
            self.col.add(ids=[str(i) for i in range(a, b)], embeddings=base[a:b], metadatas=meta,
                         documents=[it["text"] for it in items[a:b]] if has_text else None)

    def search(self, q, key, value):
        where = None if key is None else {key: {"$eq": value}}
        r = self.col.query(query_embeddings=q[None, :], n_results=K, where=where, include=["distances"])
        return [int(i) for i in r["ids"][0]]

    def info(self):
        return {"chromadb": self.chromadb.__version__, "hnsw": dict(self.col.configuration.get("hnsw") or {})}

    def close(self):
        pass


class Numpy:
    def __init__(self, workdir: str):
        pass

    def load(self, base, items):
        self.base = base
        self.masks = masks(items)
        self.keys = {(key, value): self.masks[name] for name, key, value in WORKLOADS}

    def search(self, q, key, value):
        s = self.base @ q
        m = self.keys[(key, value)]
        if m is not None:
            s[~m] = -np.inf
        top = np.argpartition(-s, K)[:K]
        return top[np.argsort(-s[top])].tolist()

    def info(self):
        return {"numpy": np.__version__}

    def close(self):
        pass


def make_engine(name: str, workdir: str):
    if name == "quiver":
        return Quiver(workdir, None)
    if name == "quiver-flat":
        return Quiver(workdir, "flat")
    if name == "sqlite-vec":
        return SqliteVec(workdir)
    if name == "chroma":
        return Chroma(workdir)
    if name == "numpy":
        return Numpy(workdir)
    raise SystemExit(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")


# ---------------------------------------------------------------------------------------- one engine's run
def proc_status_mb(field: str) -> float | None:
    """VmHWM (peak) or VmRSS (now) of this process in MB. Unlike ru_maxrss, VmHWM starts afresh at exec, so a
    child does not inherit the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    hwm = proc_status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    now = proc_status_mb("VmRSS")
    return now if now is not None else peak_rss_mb()


def disk_usage(path: str) -> tuple[int, int]:
    """(bytes allocated on disk, apparent bytes) of every file under path."""
    alloc = size = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except FileNotFoundError:
                continue
            alloc += st.st_blocks * 512
            size += st.st_size
    return alloc, size


def run_engine(a) -> None:
    base, queries, items = load_data(a.data, a.nq)
    gc.collect()
    rss_data = rss_now_mb()  # the process with the data in numpy arrays and dicts, before any engine
    workdir = tempfile.mkdtemp(prefix=f"cmp-{a.engine}-", dir=a.workdir)
    try:
        eng = make_engine(a.engine, workdir)
        t0 = time.perf_counter()
        eng.load(base, items)
        eng.search(queries[0], None, None)  # answerable: the load ends when the first query returns
        load_s = time.perf_counter() - t0
        disk_alloc, disk_size = disk_usage(workdir)
        out = {"engine": a.engine, "load_s": load_s, "disk_bytes": disk_alloc, "disk_apparent_bytes": disk_size,
               "info": eng.info(), "workloads": {}}
        for name, key, value in WORKLOADS:
            for q in queries[:WARMUP]:
                eng.search(q, key, value)
            lat, found = [], []
            c0 = time.process_time()
            for q in queries:
                s = time.perf_counter()
                ids = eng.search(q, key, value)
                lat.append(time.perf_counter() - s)
                found.append(ids)
            cpu = time.process_time() - c0
            lat = np.array(lat)
            out["workloads"][name] = {"p50_ms": 1000 * float(np.percentile(lat, 50)),
                                      "p99_ms": 1000 * float(np.percentile(lat, 99)),
                                      "qps": len(lat) / float(lat.sum()),
                                      "cpu_ms_per_query": 1000 * cpu / len(lat), "ids": found}
        eng.close()
        if a.engine == "numpy":
            out["disk_bytes"] = out["disk_apparent_bytes"] = None
        out["peak_rss_mb"] = peak_rss_mb()
        out["rss_before_engine_mb"] = rss_data
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with open(a.child_out, "w") as f:
        json.dump(out, f)


# ------------------------------------------------------------------------------------- the parent process
def exact_truth(base, queries, mask):
    """Exact top-K ids and the K-th score per query, over the admitted rows."""
    tops, kths = [], []
    for a in range(0, len(queries), 100):  # 100 queries at a time: bounded memory
        scores = queries[a:a + 100] @ base.T
        if mask is not None:
            scores[:, ~mask] = -np.inf
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        top = np.take_along_axis(top, order, 1)
        tops.append(top)
        kths.append(np.take_along_axis(scores, top, 1)[:, -1])
    return np.concatenate(tops), np.concatenate(kths)


def recall(found, base, queries, mask, kth) -> float:
    """Tie-aware recall@K: a returned id counts when it passes the filter and scores at least the exact K-th."""
    total = 0
    for qi, ids in enumerate(found):
        ids = [i for i in dict.fromkeys(ids) if 0 <= i < len(base)][:K]
        if not ids:
            continue
        ok = np.ones(len(ids), bool) if mask is None else mask[ids]
        s = base[ids] @ queries[qi]
        total += int(np.sum(ok & (s >= kth[qi] - 1e-5)))
    return total / (K * len(found))


def check_required() -> None:
    if importlib.util.find_spec("quiverdb") is None:
        raise SystemExit("quiverdb is required: build and install the wheel (see docs/python.md)")
    if importlib.util.find_spec("sqlite_vec") is None:
        raise SystemExit(SQLITE_VEC_HELP)
    sqlite_module()


def machine() -> dict:
    m = {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as f:
            m["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
        with open("/proc/meminfo") as f:
            m["ram_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return m


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory with NAME_base.fvecs, NAME_query.fvecs, "
                                                  "NAME_base_items.jsonl")
    ap.add_argument("--nq", type=int, default=1000, help="number of queries (default 1000)")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from {','.join(ENGINES)}")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--workdir", help="where the engines' databases are made (default: the system temp dir)")
    ap.add_argument("--engine", help=argparse.SUPPRESS)     # child mode: run one engine
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.engine:
        return run_engine(a)

    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ENGINES:
            raise SystemExit(f"unknown engine {e!r}; expected one of {', '.join(ENGINES)}")
    if any(e in ("quiver", "quiver-flat", "sqlite-vec") for e in engines):
        check_required()
    t_start = time.perf_counter()
    base, queries, items = load_data(a.data, a.nq)
    ms = masks(items)
    print(f"data: {a.data}: {len(base):,} x {base.shape[1]} base vectors, {len(queries)} queries, top-{K}",
          file=sys.stderr)
    truth, selectivity = {}, {}
    for name, key, value in WORKLOADS:
        truth[name] = exact_truth(base, queries, ms[name])
        selectivity[name] = 1.0 if ms[name] is None else float(ms[name].mean())
        print(f"  {name}: selectivity {100 * selectivity[name]:.2f}% "
              f"({int(round(selectivity[name] * len(base))):,} rows)", file=sys.stderr)

    results, skipped = [], {}
    for e in engines:
        if e == "chroma" and importlib.util.find_spec("chromadb") is None:
            skipped[e] = "chromadb is not installed (python3 -m pip install chromadb==1.5.9); skipped"
            print(f"skip {e}: {skipped[e]}", file=sys.stderr)
            continue
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            child_out = tf.name
        cmd = [sys.executable, os.path.abspath(__file__), "--engine", e, "--data", a.data, "--nq", str(a.nq),
               "--child-out", child_out] + (["--workdir", a.workdir] if a.workdir else [])
        t = time.perf_counter()
        p = subprocess.run(cmd)
        if p.returncode != 0:
            os.unlink(child_out)
            raise SystemExit(f"engine {e} failed (exit {p.returncode})")
        with open(child_out) as f:
            r = json.load(f)
        os.unlink(child_out)
        for name, key, value in WORKLOADS:
            w = r["workloads"][name]
            w["recall"] = recall(w.pop("ids"), base, queries, ms[name], truth[name][1])
        print(f"  {e}: done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        # The exact engines must agree with the exact truth: if one does not, the comparison itself is broken.
        if e in EXACT:
            low = {n: w["recall"] for n, w in r["workloads"].items() if w["recall"] < 0.999}
            if low:
                raise SystemExit(f"engine {e} is exact but its recall@{K} was {low}: the comparison is broken")
        results.append(r)

    out = {"data": os.path.abspath(a.data), "n": len(base), "dim": int(base.shape[1]), "nq": len(queries),
           "k": K, "warmup": WARMUP, "workloads": {n: {"key": k, "value": v, "selectivity": selectivity[n]}
                                                   for n, k, v in WORKLOADS},
           "machine": machine(), "argv": sys.argv, "engines": results, "skipped": skipped,
           "total_s": time.perf_counter() - t_start}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)

    print(f"{len(base):,} × {base.shape[1]} vectors, {len(queries)} queries, top-{K}, one query at a time "
          f"({out['machine'].get('cpu')}, {out['machine']['nproc']} cores)\n")
    print("| engine | filter (selectivity) | recall@10 | p50 ms | p99 ms | QPS | CPU ms/query |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for r in results:
        for name, _, _ in WORKLOADS:
            w = r["workloads"][name]
            print(f"| {r['engine']} | {name} ({100 * selectivity[name]:.1f}%) | {w['recall']:.3f} | "
                  f"{w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['qps']:,.0f} | {w['cpu_ms_per_query']:.2f} |")
    print("\n| engine | load s (insert + index, to first answer) | peak RSS MB | peak RSS over the data MB "
          "| disk MB |")
    print("|---|--:|--:|--:|--:|")
    for r in results:
        disk = None if r["disk_bytes"] is None else r["disk_bytes"] / 2**20
        print(f"| {r['engine']} | {r['load_s']:.2f} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_rss_mb'] - r['rss_before_engine_mb']:.0f} | {fmt(disk, '.1f')} |")
    for e, why in skipped.items():
        print(f"\n{e}: {why}")


if __name__ == "__main__":
    main()
