#!/usr/bin/env python3
"""QPS of every curve at recall@10 = 0.90 / 0.95 / 0.99, interpolated linearly between the two measured points
around each target, and QuiverDB's ratio to the best peer.

Usage: python3 scripts/qps_at_recall.py PEERS.json QUIVER_BENCH.txt [QUIVER_BENCH.txt ...]
  PEERS.json        written by ../shared/data/peers_bench.py --out
  QUIVER_BENCH.txt  the table printed by `quiver bench --index hnsw-sq8 --sweep ef=...` (one per pass)
"""
import json
import re
import sys


def curve_of_bench(path):
    rows = []
    for line in open(path):
        m = re.match(r"hnsw\s.*?\sef=(\d+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            rows.append((float(m.group(2)), float(m.group(3))))
    return rows


def at(curve, target):
    pts = sorted(curve)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    peers = json.load(open(sys.argv[1]))
    curves = {}
    for r in peers["rows"]:
        label = r["peer"] + (" " + r["params"].split()[-1] if r["peer"] == "glass" else "")
        curves.setdefault(label, []).append((r["recall10"], r["qps"]))
    ours = [f"QuiverDB ({p})" for p in sys.argv[2:]]
    for name, path in zip(ours, sys.argv[2:]):
        curves[name] = curve_of_bench(path)
    for target in (0.90, 0.95, 0.99):
        vals = {k: at(v, target) for k, v in curves.items()}
        peer_vals = [(v, k) for k, v in vals.items() if v and k not in ours]
        line = ", ".join(f"{k} {v:,.0f}" for k, v in vals.items() if v)
        if peer_vals:
            best, who = max(peer_vals)
            ratios = " / ".join(f"{vals[k] / best:.2f}x" for k in ours if vals[k])
            line += f" | best peer {who} {best:,.0f} | QuiverDB / best: {ratios}"
        print(f"recall {target:.2f}: {line}")


if __name__ == "__main__":
    main()
