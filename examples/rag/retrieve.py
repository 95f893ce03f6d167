#!/usr/bin/env python3
"""Retrieval for an LLM app: documents -> chunks -> grouped search -> the context (and prompt) to pass on.
Runs against `quiver serve`; see README.md next to this file.

    python3 examples/rag/retrieve.py "How many vacation days can I carry over?"
"""

import argparse
import glob
import os

import quiverdb

HANDBOOK = os.path.join(os.path.dirname(__file__), "handbook")


def load(db: quiverdb.Client, name: str):
    """Every handbook page as a document: the server cuts it into chunks, embeds and stores them."""
    if not db.has_collection(name):
        db.create_collection(name, embedding="all-MiniLM-L6-v2")
    col = db.collection(name)
    docs = [{"id": os.path.basename(p), "text": open(p, encoding="utf-8").read(), "metadata": {"source": "handbook"}}
            for p in sorted(glob.glob(os.path.join(HANDBOOK, "*.md")))]
    # Small chunks (about a paragraph) so the context holds only what answers the question. Writing a document
    # id again replaces its chunks, so running this twice changes nothing.
    written = col.add_documents(docs, max_tokens=64, overlap_tokens=8, wait=True)
    return col, written


def retrieve(db: quiverdb.Client, name: str, question: str, docs: int = 2, chunks_per_doc: int = 2):
    """The best `docs` documents for the question, each with its best `chunks_per_doc` chunks."""
    body = {"text": question, "group_by": "doc_id", "limit": docs, "group_size": chunks_per_doc,
            "with_payload": ["doc_id", "chunk_index", "text"]}
    return db.request("POST", f"/collections/{name}/points/search/groups", body)["groups"]


def context(groups) -> str:
    """The chunks as numbered, cited passages, in each document's own order so the text reads naturally."""
    parts = []
    for g in groups:
        for h in sorted(g["hits"], key=lambda h: h["payload"]["chunk_index"]):
            parts.append(f"[{len(parts) + 1}] ({g['id']}, part {h['payload']['chunk_index'] + 1})\n"
                         f"{h['payload']['text'].strip()}")
    return "\n\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("question")
    ap.add_argument("--url", default="http://127.0.0.1:6333")
    ap.add_argument("--collection", default="handbook")
    ap.add_argument("--expect", help="fail unless this document comes first (used by the doc test)")
    a = ap.parse_args()
    db = quiverdb.Client(a.url)
    _, written = load(db, a.collection)
    print("indexed:", ", ".join(f"{d['id']} ({d['chunks']} chunks)" for d in written))
    groups = retrieve(db, a.collection, a.question)
    print("best documents:", ", ".join(f"{g['id']} ({g['hits'][0]['score']:.3f})" for g in groups))
    prompt = ("Answer the question using only the passages below, and cite them by number. If they do not contain "
              f"the answer, say so.\n\nPassages:\n{context(groups)}\n\nQuestion: {a.question}")
    print("\n--- prompt for the LLM ---\n" + prompt)
    if a.expect and groups[0]["id"] != a.expect:
        raise SystemExit(f"expected {a.expect} first, got {[g['id'] for g in groups]}")
    if os.environ.get("OPENAI_API_KEY"):
        from openai import OpenAI  # pip install openai

        reply = OpenAI().chat.completions.create(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
                                                 messages=[{"role": "user", "content": prompt}])
        print("\n--- answer ---\n" + reply.choices[0].message.content)


if __name__ == "__main__":
    main()
