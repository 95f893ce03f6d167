"""What only the HTTP client does: API keys, text and documents embedded by the server's model, errors from
the server's status codes."""

from __future__ import annotations

import os

import numpy as np
import pytest

import quiverdb
from conftest import Server


def test_api_keys(tmp_path):
    srv = Server(tmp_path / "data", "--api-key", "secret-full", "--read-only-api-key", "secret-read")
    try:
        with pytest.raises(quiverdb.Unauthorized) as e:
            quiverdb.Client(srv.url).list_collections()
        assert e.value.status == 401
        full = quiverdb.Client(srv.url, api_key="secret-full")
        col = full.create_collection("k", dim=3)
        col.upsert([1], np.ones((1, 3), np.float32))
        ro = quiverdb.Client(srv.url, api_key="secret-read")
        rcol = ro.collection("k")
        assert rcol.count() == 1 and rcol.search([1, 1, 1], k=1)[0].id == 1
        with pytest.raises(PermissionError):
            rcol.upsert([2], np.ones((1, 3), np.float32))
        assert rcol.count() == 1
    finally:
        srv.stop()


def test_a_stopped_server_is_unavailable(tmp_path):
    srv = Server(tmp_path / "data")
    c = quiverdb.Client(srv.url, timeout=5)
    assert c.list_collections() == []
    srv.stop()
    with pytest.raises(quiverdb.Unavailable):
        c.list_collections()
    with pytest.raises(quiverdb.InvalidArgument, match="url"):
        quiverdb.Client("ftp://x")


needs_model = pytest.mark.skipif(
    not os.environ.get("QUIVER_MODEL_DIR"), reason="QUIVER_MODEL_DIR not set (CI sets it: scripts/get-embed-model.sh)"
)


@needs_model
def test_texts_and_documents_through_the_servers_model(server, name):
    c = quiverdb.Client(server.url)
    col = c.create_collection(name, embedding="all-MiniLM-L6-v2")
    assert col.dimension == 384
    col.upsert([1, 2, 3], texts=["a cat sleeps on the sofa", "stock markets fell sharply", "a kitten naps"],
               payloads=[{"k": "pet"}, {"k": "money"}, {"k": "pet"}])
    hits = col.search("sleeping cats", k=2)
    assert {h.id for h in hits} == {1, 3}
    assert hits[0].payload["text"] in ("a cat sleeps on the sofa", "a kitten naps")
    money = col.search("finance news", k=1, filter={"must": [{"key": "k", "match": {"value": "money"}}]})
    assert money[0].id == 2
    docs = c.create_collection(name + "_docs", embedding="all-MiniLM-L6-v2")
    out = docs.add_documents([{"id": "intro", "text": "QuiverDB stores vectors. " * 200, "metadata": {"lang": "en"}}],
                             max_tokens=64, overlap_tokens=8)
    assert out[0]["chunks"] > 1
    n = docs.count()
    assert n == out[0]["chunks"]
    docs.delete_document("intro")
    assert docs.count() == 0
    c.drop_collection(name)
    c.drop_collection(name + "_docs")
