#!/usr/bin/env python3
"""Near-duplicate detection: embed every text, look up each one's nearest neighbours above a similarity threshold,
and join the pairs into groups. Runs on the embedded engine (no server); see README.md next to this file.

    python3 examples/dedup/dedup.py examples/dedup/reviews.jsonl [--threshold 0.85] [--data ./dedup-data]
"""

import argparse
import json

import quiverdb


def groups_of(pairs, ids):
    """Connected components of the duplicate pairs (union-find): a~b and b~c put a, b, c in one group."""
    parent = {i: i for i in ids}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    out = {}
    for i in ids:
        out.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in out.values() if len(g) > 1), key=lambda g: g[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("input", help="JSONL lines with id and text")
    ap.add_argument("--threshold", type=float, default=0.85, help="cosine similarity that counts as a duplicate")
    ap.add_argument("--data", default="./dedup-data", help="the data directory (made if missing)")
    ap.add_argument("--expect", help="fail unless the groups are exactly these, e.g. '1,2;3,4,5'")
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.input, encoding="utf-8") if line.strip()]
    text = {r["id"]: r["text"] for r in rows}

    with quiverdb.open(a.data) as db:
        if db.has_collection("texts"):
            db.drop_collection("texts")
        col = db.create_collection("texts", embedding="all-MiniLM-L6-v2", index="flat")
        col.upsert([r["id"] for r in rows], texts=[r["text"] for r in rows])
        pairs = set()
        for r in rows:
            # The text itself comes back first (similarity 1); everything else above the threshold is a duplicate.
            for hit in col.search(r["text"], k=5, score_threshold=a.threshold, with_payload=False):
                if hit.id != r["id"]:
                    pairs.add(tuple(sorted((r["id"], hit.id))))
        found = groups_of(pairs, [r["id"] for r in rows])

    print(f"{len(rows)} texts, {len(found)} groups of near-duplicates at similarity >= {a.threshold}:")
    for g in found:
        print("  " + " | ".join(f"{i}: {text[i][:48]}" for i in g))
    keep = sorted({g[0] for g in found} | {r["id"] for r in rows if not any(r["id"] in g for g in found)})
    print(f"keep {len(keep)} texts (the first of each group and every unique one)")
    if a.expect is not None:
        want = [sorted(int(x) for x in g.split(",")) for g in a.expect.split(";") if g]
        if found != want:
            raise SystemExit(f"expected groups {want}, found {found}")


if __name__ == "__main__":
    main()
