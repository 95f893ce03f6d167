#!/usr/bin/env python3
"""The official `openai` Python client (from PyPI, unchanged) against `quiver serve`'s OpenAI-compatible embeddings
API. Exits non-zero on the first mismatch.

    python3 tests/compat/openai_embeddings_compat.py http://127.0.0.1:6333 [API_KEY]

Needs all-MiniLM-L6-v2 and all-mpnet-base-v2 installed where the server looks (scripts/get-embed-model.sh).
"""
import math
import sys

import openai
from openai import OpenAI


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def main():
    url = sys.argv[1].rstrip("/")
    key = sys.argv[2] if len(sys.argv) > 2 else "unused"
    client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)
    texts = ["A cat sleeps on the warm mat.", "A kitten naps on a rug.", "Interest rates rose sharply today."]

    # The client's default asks for base64 and decodes it itself.
    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    assert r.object == "list" and r.model == "all-MiniLM-L6-v2", r
    assert [d.index for d in r.data] == [0, 1, 2], r.data
    vecs = [d.embedding for d in r.data]
    assert all(len(v) == 384 for v in vecs), [len(v) for v in vecs]
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-4 for v in vecs), "not unit norm"
    assert cosine(vecs[0], vecs[1]) > cosine(vecs[0], vecs[2]) + 0.2, "similar texts are not closer"
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens, r.usage

    # Floats asked for explicitly: the same numbers.
    f = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0], encoding_format="float")
    assert len(f.data) == 1 and max(abs(a - b) for a, b in zip(f.data[0].embedding, vecs[0])) < 1e-6

    # A second model, 768-d.
    m = client.embeddings.create(model="all-mpnet-base-v2", input=texts[:2])
    assert len(m.data[0].embedding) == 768, len(m.data[0].embedding)
    assert cosine(m.data[0].embedding, m.data[1].embedding) > 0.5

    ids = [x.id for x in client.models.list()]
    assert "all-MiniLM-L6-v2" in ids and "all-mpnet-base-v2" in ids, ids

    # Errors reach the client as its own exception types, with the server's message.
    try:
        client.embeddings.create(model="text-embedding-3-small", input="x")
        raise AssertionError("an uninstalled model was accepted")
    except openai.NotFoundError as e:
        assert e.code == "model_not_found" and "not installed" in e.message, e
    try:
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[[101, 2023, 102]])
        raise AssertionError("token ids were accepted")
    except openai.BadRequestError as e:
        assert "token ids are not accepted" in e.message, e
    try:
        client.embeddings.create(model="all-MiniLM-L6-v2", input="x", dimensions=64)
        raise AssertionError("dimensions=64 was accepted")
    except openai.BadRequestError as e:
        assert e.param == "dimensions", e
    if key != "unused":
        bad = OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        try:
            bad.embeddings.create(model="all-MiniLM-L6-v2", input="x")
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError:
            pass
    print(f"openai {openai.__version__}: embeddings, models and errors OK")


if __name__ == "__main__":
    main()
