"""gRPC against REST on the same server, through the real `qdrant-client`: search throughput at a concurrency.

    python3 scripts/grpc_vs_rest.py --data /tmp/vdb-data/wordnet-minilm-100k [--concurrency 8] [--seconds 20]

Starts `quiver serve --grpc-port` on a scratch data directory (or uses --url / --grpc-port of a running server
holding the collection `grpc_bench`), loads the set's base vectors over REST, waits until indexed, then runs
top-10 `query_points` with each transport for --seconds in --concurrency threads (one client per thread) and prints
QPS, p50 and p99 latency, and the gRPC/REST QPS ratio. Both transports answer the same queries; results are
checked to agree. Benchmarks never run in CI.
"""

import argparse
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import numpy as np
from qdrant_client import QdrantClient, models


def fvecs(path: str) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32)


def wait_ready(url: str) -> None:
    for _ in range(600):
        try:
            if urllib.request.urlopen(f"{url}/readyz").status == 200:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("server not ready")


def run(make, queries: np.ndarray, threads: int, seconds: float, name: str):
    lat, stop, lock = [], time.time() + seconds, threading.Lock()

    def worker(i: int) -> None:
        c = make()
        mine, j = [], i
        while time.time() < stop:
            q = queries[j % len(queries)].tolist()
            t = time.perf_counter()
            c.query_points(name, query=q, limit=10)
            mine.append(time.perf_counter() - t)
            j += threads
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    lat.sort()
    return len(lat) / wall, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--quiver", default=shutil.which("quiver") or os.path.expanduser(
        os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "quiver")))
    a = ap.parse_args()
    base = fvecs(glob.glob(os.path.join(a.data, "*_base.fvecs"))[0])
    queries = fvecs(glob.glob(os.path.join(a.data, "*_query.fvecs"))[0])
    tmp = tempfile.mkdtemp()
    srv = subprocess.Popen([a.quiver, "serve", "--bind", "127.0.0.1:7633", "--grpc-port", "7634", "--data-dir", tmp],
                           stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:7633"
        wait_ready(url)
        rest = QdrantClient(url=url, timeout=120)
        name = "grpc_bench"
        rest.create_collection(name, vectors_config=models.VectorParams(size=base.shape[1], distance=models.Distance.COSINE))
        for i in range(0, len(base), 1000):
            rest.upsert(name, wait=True, points=models.Batch(ids=list(range(i, min(i + 1000, len(base)))),
                                                              vectors=base[i:i + 1000].tolist()))
        while rest.get_collection(name).status != models.CollectionStatus.GREEN:
            time.sleep(1)
        g = QdrantClient(url=url, prefer_grpc=True, grpc_port=7634, timeout=120)
        for q in queries[:20]:
            a_ids = [p.id for p in rest.query_points(name, query=q.tolist(), limit=10).points]
            b_ids = [p.id for p in g.query_points(name, query=q.tolist(), limit=10).points]
            assert a_ids == b_ids, (a_ids, b_ids)
        print(f"{len(base)} x {base.shape[1]} points, HNSW defaults, top-10, {a.concurrency} threads, {a.seconds:.0f} s each")
        res = {}
        for label, make in [("rest", lambda: QdrantClient(url=url, timeout=120)),
                            ("grpc", lambda: QdrantClient(url=url, prefer_grpc=True, grpc_port=7634, timeout=120)),
                            ("rest (again)", lambda: QdrantClient(url=url, timeout=120)),
                            ("grpc (again)", lambda: QdrantClient(url=url, prefer_grpc=True, grpc_port=7634, timeout=120))]:
            qps, p50, p99 = run(make, queries, a.concurrency, a.seconds, name)
            res[label] = qps
            print(f"{label:13s} QPS {qps:8.0f}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        ratio = (res["grpc"] + res["grpc (again)"]) / (res["rest"] + res["rest (again)"])
        print(f"gRPC / REST QPS: {ratio:.2f}")
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
