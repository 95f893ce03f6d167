#!/usr/bin/env python3
"""Relevance of dense, BM25 and hybrid (RRF) retrieval on a labelled WordNet set, and their latency.

The set (`build`): every WordNet synset of the 100k benchmark base is a document, "lemmas: definition" with the
usage examples cut off; a query is the first usage example of a synset that has one, and its one relevant
document is that synset. 1,000 queries are drawn (seed 0). Example: query "The bicycle looped around the tree",
relevant document "loop: move in loops".

Another 1,000 queries (`tune.jsonl`) are kept apart to pick RRF's k and the candidates per list (`tune`), so the
test queries never tune anything.

`ingest` loads the documents into a running `quiver serve` (the server embeds them with all-MiniLM-L6-v2 and
indexes the text for BM25 with English stemming and stop words). `run` asks each query three ways over HTTP, one
at a time: dense (`{"text": q}`), BM25 (`{"bm25": …}`) and hybrid (RRF of the two, 50 candidates each), and prints
nDCG@10, recall@10 and MRR@10 with p50/p99 latencies. `tantivy` (optional, `pip install tantivy`) times BM25 in
process on the same documents and queries against QuiverDB's embedded engine (`quiverdb` package) opened on the
same data directory, for the "crate or our own index" question.

    python3 scripts/hybrid_relevance.py build --items /tmp/vdb-data/wordnet-minilm-100k/wordnet-minilm-100k_base_items.jsonl --out /tmp/vdb-data/wordnet-hybrid
    quiver serve --data-dir /tmp/hybrid-db &
    python3 scripts/hybrid_relevance.py ingest --set /tmp/vdb-data/wordnet-hybrid --url http://127.0.0.1:6333
    python3 scripts/hybrid_relevance.py tune --set /tmp/vdb-data/wordnet-hybrid --url http://127.0.0.1:6333
    python3 scripts/hybrid_relevance.py run --set /tmp/vdb-data/wordnet-hybrid --url http://127.0.0.1:6333 --candidates C --rrf-k K
    # stop the server, then:
    RAYON_NUM_THREADS=1 python3 scripts/hybrid_relevance.py inproc --set /tmp/vdb-data/wordnet-hybrid --db /tmp/hybrid-db
"""

import argparse
import json
import math
import random
import re
import statistics
import sys
import time
import urllib.request
from pathlib import Path

COLLECTION = "wordnet_hybrid"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EXAMPLE = re.compile(r'"([^"]+)"')


def strip_examples(text: str) -> str:
    """'lemmas: definition; "example"; "example"' -> 'lemmas: definition'."""
    cut = text.find('; "')
    if cut < 0:
        cut = text.find('"')
    return (text if cut < 0 else text[:cut]).strip().rstrip(";").strip()


def build(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs, candidates = [], []
    with open(args.items, encoding="utf-8") as f:
        for line in f:
            it = json.loads(line)
            docs.append({"id": it["id"], "text": strip_examples(it["text"]), "pos": it["pos"]})
            examples = [e.strip() for e in EXAMPLE.findall(it["text"]) if len(e.split()) >= 3]
            if examples:
                candidates.append({"query": examples[0], "relevant": it["id"]})
    random.Random(0).shuffle(candidates)
    queries = candidates[: args.queries]
    tune = candidates[args.queries : 2 * args.queries]
    with open(out / "docs.jsonl", "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    for name, qs in (("queries.jsonl", queries), ("tune.jsonl", tune)):
        with open(out / name, "w", encoding="utf-8") as f:
            for i, q in enumerate(qs):
                f.write(json.dumps({"qid": i, **q}) + "\n")
    print(f"{len(docs)} documents, {len(candidates)} synsets with an example, {len(queries)} test queries and "
          f"{len(tune)} other ones for tuning -> {out}")


def call(url: str, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, method=method, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["result"]


def load(path: Path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def ingest(args) -> None:
    s = Path(args.set)
    docs = load(s / "docs.jsonl")
    try:
        call(args.url, "DELETE", f"/collections/{COLLECTION}")
    except Exception:
        pass
    call(args.url, "PUT", f"/collections/{COLLECTION}", {"embedding": {"model": MODEL}})
    schema = {"type": "text", "tokenizer": "word", "lowercase": True,
              "stemmer": {"type": "snowball", "language": "english"}, "stopwords": "english"}
    call(args.url, "PUT", f"/collections/{COLLECTION}/index?wait=true", {"field_name": "text", "field_schema": schema})
    t0 = time.time()
    for i in range(0, len(docs), args.batch):
        batch = docs[i : i + args.batch]
        points = [{"id": d["id"], "text": d["text"], "payload": {"pos": d["pos"]}} for d in batch]
        call(args.url, "PUT", f"/collections/{COLLECTION}/points?wait=true", {"points": points})
        if (i // args.batch) % 40 == 0:
            print(f"  {i + len(batch)} / {len(docs)} in {time.time() - t0:.0f} s", flush=True)
    print(f"ingested {len(docs)} documents in {time.time() - t0:.0f} s")


def metrics(ranked, relevant):
    """nDCG@10, recall@10 and reciprocal rank@10 of one query with one relevant document."""
    for rank, pid in enumerate(ranked[:10], start=1):
        if pid == relevant:
            return 1.0 / math.log2(rank + 1), 1.0, 1.0 / rank
    return 0.0, 0.0, 0.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def hybrid_body(q: str, fusion, candidates: int):
    return {"prefetch": [{"query": {"bm25": {"key": "text", "text": q}}, "limit": candidates},
                         {"query": {"text": q}, "limit": candidates}],
            "query": fusion, "limit": 10}


def ndcg(url: str, queries, make) -> float:
    out = []
    for q in queries:
        pts = call(url, "POST", f"/collections/{COLLECTION}/points/query", make(q["query"]))["points"]
        out.append(metrics([p["id"] for p in pts], q["relevant"])[0])
    return statistics.mean(out)


def tune(args) -> None:
    """Picks RRF's k and the candidates per list on the tuning queries (never the test queries)."""
    queries = load(Path(args.set) / "tune.jsonl")[: args.nq]
    best = None
    print("| candidates | rrf k | nDCG@10 (tuning queries) |\n|---|---|---|")
    for cand in (20, 50, 100):
        for k in (1, 2, 5, 10, 20, 60):
            v = ndcg(args.url, queries, lambda q: hybrid_body(q, {"rrf": {"k": k}}, cand))
            print(f"| {cand} | {k} | {v:.3f} |", flush=True)
            if best is None or v > best[0]:
                best = (v, cand, k)
    print(f"best: --candidates {best[1]} --rrf-k {best[2]} (nDCG@10 {best[0]:.3f} on the tuning queries)")


def tune_weights(args) -> None:
    """Picks RRF weights (BM25, dense) at k = 60 on the tuning queries, then scores the pick on the test queries."""
    tune_q = load(Path(args.set) / "tune.jsonl")[: args.nq]
    test_q = load(Path(args.set) / "queries.jsonl")[: args.nq]
    body = lambda w: lambda q: hybrid_body(q, {"rrf": {"k": 60, "weights": list(w)}}, 50)  # noqa: E731
    print("| weights (bm25, dense), rrf k = 60, 50 candidates | nDCG@10 tuning |\n|---|---|")
    best = None
    for w in [(1, 1), (1.5, 1), (2, 1), (3, 1), (5, 1)]:
        v = ndcg(args.url, tune_q, body(w))
        print(f"| {w} | {v:.3f} |", flush=True)
        if best is None or v > best[0]:
            best = (v, w)
    print(f"best on tuning: {best[1]}; nDCG@10 on the test queries: {ndcg(args.url, test_q, body(best[1])):.3f}")


def run(args) -> None:
    queries = load(Path(args.set) / "queries.jsonl")[: args.nq]
    c = args.candidates
    bodies = {
        "dense": lambda q: {"query": {"text": q}, "limit": 10},
        "bm25": lambda q: {"query": {"bm25": {"key": "text", "text": q}}, "limit": 10},
        "hybrid rrf (k = 60, the default)": lambda q: hybrid_body(q, {"fusion": "rrf"}, c),
        f"hybrid rrf (k = {args.rrf_k}, tuned)": lambda q: hybrid_body(q, {"rrf": {"k": args.rrf_k}}, c),
        "hybrid dbsf": lambda q: hybrid_body(q, {"fusion": "dbsf"}, c),
    }
    # Warm-up (model load, page cache).
    for make in bodies.values():
        for q in queries[:20]:
            call(args.url, "POST", f"/collections/{COLLECTION}/points/query", make(q["query"]))
    rows = []
    for name, make in bodies.items():
        nd, rc, rr, lat = [], [], [], []
        for q in queries:
            t = time.perf_counter()
            pts = call(args.url, "POST", f"/collections/{COLLECTION}/points/query", make(q["query"]))["points"]
            lat.append((time.perf_counter() - t) * 1000)
            m = metrics([p["id"] for p in pts], q["relevant"])
            nd.append(m[0]); rc.append(m[1]); rr.append(m[2])
        rows.append((name, statistics.mean(nd), statistics.mean(rc), statistics.mean(rr), pct(lat, 50), pct(lat, 99)))
    print(f"{len(queries)} queries, one at a time over HTTP (latency includes embedding the query for dense/hybrid)")
    print(f"| retrieval | nDCG@10 | recall@10 | MRR@10 | p50 ms | p99 ms |")
    print(f"|---|---|---|---|---|---|")
    for name, nd, rc, rr, p50, p99 in rows:
        print(f"| {name} | {nd:.3f} | {rc:.3f} | {rr:.3f} | {p50:.2f} | {p99:.2f} |")


def inproc(args) -> None:
    """BM25 in process: QuiverDB's embedded engine vs tantivy (same documents, same analysis, same queries). Run
    with RAYON_NUM_THREADS=1 for one thread (QuiverDB scores segments in parallel otherwise)."""
    queries = [q["query"] for q in load(Path(args.set) / "queries.jsonl")[: args.nq]]
    docs = load(Path(args.set) / "docs.jsonl")
    results = {}

    import quiverdb

    db = quiverdb.open(args.db)
    col = db.collection(COLLECTION)
    for q in queries[:50]:
        col.text_search("text", q, 10, with_payload=False)
    lat, got = [], []
    for q in queries:
        t = time.perf_counter()
        hits = col.text_search("text", q, 10, with_payload=False)
        lat.append((time.perf_counter() - t) * 1e3)
        got.append([h[0] for h in hits])
    results["quiverdb"] = (lat, got)
    db.close()

    try:
        import tantivy
    except ImportError:
        print("tantivy not installed (pip install tantivy): QuiverDB only")
        tantivy = None
    if tantivy is not None:
        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("id", stored=True, indexed=True, fast=True)
        sb.add_text_field("text", stored=False, tokenizer_name="en_stop_stem")
        schema = sb.build()
        index = tantivy.Index(schema)
        # The same analysis as the QuiverDB index: words, lower case, English stop words, English stemmer.
        analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                    .filter(tantivy.Filter.lowercase())
                    .filter(tantivy.Filter.stopword("english"))
                    .filter(tantivy.Filter.stemmer("english"))
                    .build())
        index.register_tokenizer("en_stop_stem", analyzer)
        w = index.writer(heap_size=256_000_000, num_threads=1)
        t0 = time.time()
        for d in docs:
            w.add_document(tantivy.Document(id=d["id"], text=d["text"]))
        w.commit()
        w.wait_merging_threads()
        index.reload()
        print(f"tantivy: indexed {len(docs)} documents in {time.time() - t0:.1f} s")
        searcher = index.searcher()
        def search(q):
            parsed = index.parse_query(re.sub(r"[^\w\s]", " ", q), ["text"])
            return [searcher.doc(a)["id"][0] for _, a in searcher.search(parsed, 10).hits]
        for q in queries[:50]:
            search(q)
        lat, got = [], []
        for q in queries:
            t = time.perf_counter()
            ids = search(q)
            lat.append((time.perf_counter() - t) * 1e3)
            got.append(ids)
        results["tantivy"] = (lat, got)
    rel = [q["relevant"] for q in load(Path(args.set) / "queries.jsonl")[: args.nq]]
    print(f"BM25 in process, one thread, {len(queries)} queries over {len(docs)} documents")
    print("| engine | nDCG@10 | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, (lat, got) in results.items():
        nd = statistics.mean(metrics(g, r)[0] for g, r in zip(got, rel))
        print(f"| {name} | {nd:.3f} | {pct(lat, 50):.3f} | {pct(lat, 99):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--items", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--queries", type=int, default=1000)
    i = sub.add_parser("ingest")
    i.add_argument("--set", required=True)
    i.add_argument("--url", default="http://127.0.0.1:6333")
    i.add_argument("--batch", type=int, default=256)
    r = sub.add_parser("run")
    r.add_argument("--set", required=True)
    r.add_argument("--url", default="http://127.0.0.1:6333")
    r.add_argument("--nq", type=int, default=1000)
    r.add_argument("--candidates", type=int, default=50)
    r.add_argument("--rrf-k", type=int, default=60)
    t = sub.add_parser("tune")
    t.add_argument("--set", required=True)
    t.add_argument("--url", default="http://127.0.0.1:6333")
    t.add_argument("--nq", type=int, default=1000)
    tw = sub.add_parser("tune-weights")
    tw.add_argument("--set", required=True)
    tw.add_argument("--url", default="http://127.0.0.1:6333")
    tw.add_argument("--nq", type=int, default=1000)
    p = sub.add_parser("inproc")
    p.add_argument("--set", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--nq", type=int, default=1000)
    args = ap.parse_args()
    {"build": build, "ingest": ingest, "tune": tune, "tune-weights": tune_weights, "run": run,
     "inproc": inproc}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
