#!/usr/bin/env python3
""""More like this": recommendations from examples a user liked (and disliked), kept to a category by a payload
filter. Runs against `quiver serve`; see README.md next to this file.

    python3 examples/recommend/more_like_this.py [--url http://127.0.0.1:6333]
"""

import argparse
import json
import os

import quiverdb

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "quiver-cli", "demo", "wordnet-demo.jsonl")


def load(db: quiverdb.Client, name: str):
    """The 2,000 shipped WordNet definitions, embedded by the server, with their topic and lemma as payload."""
    if db.has_collection(name):
        return db.collection(name)
    col = db.create_collection(name, embedding="all-MiniLM-L6-v2")
    rows = [json.loads(line) for line in open(CORPUS, encoding="utf-8")]
    col.upsert([r["id"] for r in rows], texts=[r["text"] for r in rows],
               payloads=[{"topic": r["topic"], "lemma": r["lemma"]} for r in rows], wait=True)
    col.create_index("topic", "keyword")  # filters on topic use the index instead of checking every point
    return col


def more_like_this(db, name, liked, disliked=(), topic=None, k=5):
    """Points like the `liked` ids and unlike the `disliked` ones, optionally only in `topic`."""
    body = {"query": {"recommend": {"positive": list(liked), "negative": list(disliked)}},
            "limit": k, "with_payload": ["lemma", "topic"]}
    if topic:
        body["filter"] = {"must": [{"key": "topic", "match": {"value": topic}}]}
    return db.request("POST", f"/collections/{name}/points/query", body)["points"]


def show(title, hits):
    print(title)
    for rank, h in enumerate(hits, 1):
        print(f"  {rank}. {h['score']:.3f}  [{h['payload']['topic']}] {h['payload']['lemma']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:6333")
    ap.add_argument("--collection", default="wordnet")
    a = ap.parse_args()
    db = quiverdb.Client(a.url)
    col = load(db, a.collection)
    print(f"{col.count()} points in {a.collection}")

    knife, scalpel, coffee_tree = 1880, 1097, 780
    hits = more_like_this(db, a.collection, [knife], topic="artifact")
    show("more like 'butcher knife', artifacts only:", hits)
    assert all(h["id"] != knife for h in hits), "the example itself is never recommended"
    assert all(h["payload"]["topic"] == "artifact" for h in hits), "the filter holds"

    hits = more_like_this(db, a.collection, [knife, scalpel], topic="artifact")
    show("more like 'butcher knife' and 'scalpel':", hits)

    hits = more_like_this(db, a.collection, [knife], disliked=[scalpel], topic="artifact")
    show("more like 'butcher knife', less like 'scalpel':", hits)
    assert all(h["id"] not in (knife, scalpel) for h in hits)

    hits = more_like_this(db, a.collection, [coffee_tree], topic="food")
    show("more like 'coffee' (the tree), but food:", hits)
    assert all(h["payload"]["topic"] == "food" for h in hits)


if __name__ == "__main__":
    main()
