"""The API both ways (embedded and over HTTP against a real server): every test runs once per backend, so the
two cannot drift apart."""

from __future__ import annotations

import os
import pathlib
import uuid

import numpy as np
import pytest

import quiverdb

DIM = 16


def data(n=200, seed=7):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    payloads = [{"tag": ["red", "green", "blue"][i % 3], "i": i, "nested": {"even": i % 2 == 0}} for i in range(n)]
    return v, payloads


def brute_cosine(v, q, k, keep=None):
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    s = vn @ (q / np.linalg.norm(q))
    order = [i for i in np.argsort(-s, kind="stable") if keep is None or keep(i)]
    return order[:k], s


@pytest.fixture
def col(db, name):
    c = db.create_collection(name, dim=DIM)
    v, p = data()
    c.upsert(np.arange(len(v)), v, p)
    yield c
    db.drop_collection(name)


def test_create_list_get_drop(db, name):
    c = db.create_collection(name, dim=DIM, metric="dot", index={"kind": "hnsw", "params": {"m": 8}})
    assert c.dimension == DIM
    assert c.config["metric"] == "dot"
    assert name in db.list_collections()
    assert db.has_collection(name)
    assert db.collection(name).name == name
    with pytest.raises(quiverdb.AlreadyExists):
        db.create_collection(name, dim=DIM)
    db.drop_collection(name)
    assert name not in db.list_collections()
    with pytest.raises(quiverdb.NotFound):
        db.collection(name)


def test_bad_collection_configs_name_the_field(db, name):
    with pytest.raises(quiverdb.InvalidArgument, match="metric"):
        db.create_collection(name, dim=DIM, metric="manhattan")
    with pytest.raises(quiverdb.InvalidArgument, match="dim"):
        db.create_collection(name, dim=0)
    with pytest.raises(quiverdb.InvalidArgument, match="index"):
        db.create_collection(name, dim=DIM, index={"kind": "no-such-index"})
    with pytest.raises(ValueError):  # InvalidArgument is a ValueError
        db.create_collection(name, dim=DIM, index={"kind": "hnsw", "params": {"m": -3}})
    assert name not in db.list_collections()


def test_upsert_count_get_with_vectors(col):
    v, p = data()
    assert col.count() == len(col) == 200
    recs = col.get([5, 3, 100_000], with_vector=True)
    assert [r.id for r in recs] == [5, 3]
    assert recs[0].payload == p[5]
    assert recs[0].vector.dtype == np.float32
    unit = v[5] / np.linalg.norm(v[5])  # cosine stores normalised vectors
    np.testing.assert_allclose(recs[0].vector, unit, rtol=1e-5, atol=1e-6)
    one = col.get(7, with_payload=False)
    assert one.id == 7 and one.payload is None
    assert col.get(123456) is None
    # Upsert replaces: same id, new payload.
    col.upsert(5, v[5], {"tag": "new"})
    assert col.get(5).payload == {"tag": "new"}
    assert col.count() == 200


def test_search_matches_brute_force_and_filters(col):
    v, p = data()
    q = v[11] + 0.01
    want, scores = brute_cosine(v, q, 10)
    hits = col.search(q, k=10, params={"exact": True})
    assert [h.id for h in hits] == [int(i) for i in want]
    np.testing.assert_allclose([h.score for h in hits], scores[want], rtol=1e-4)
    assert hits[0].payload == p[want[0]]
    # The default index finds the stored point itself.
    assert col.search(v[42], k=1)[0].id == 42
    # A filter restricts the candidates.
    f = {"must": [{"key": "tag", "match": {"value": "blue"}}]}
    got = col.search(q, k=5, filter=f, params={"exact": True})
    want_blue, _ = brute_cosine(v, q, 5, keep=lambda i: p[i]["tag"] == "blue")
    assert [h.id for h in got] == [int(i) for i in want_blue]
    assert all(h.payload["tag"] == "blue" for h in got)
    nested = col.search(q, k=50, filter={"must": [{"key": "nested.even", "match": {"value": True}}]})
    assert nested and all(h.id % 2 == 0 for h in nested)
    rng = col.search(q, k=300, filter={"must": [{"key": "i", "range": {"gte": 190}}]})
    assert sorted(h.id for h in rng) == list(range(190, 200))
    # offset, score_threshold, with_payload / with_vector.
    page2 = col.search(q, k=5, offset=5, params={"exact": True})
    assert [h.id for h in page2] == [int(i) for i in brute_cosine(v, q, 10)[0][5:]]
    t = hits[3].score
    assert all(h.score >= t for h in col.search(q, k=10, score_threshold=t, params={"exact": True}))
    bare = col.search(q, k=2, with_payload=False, with_vector=True)
    assert bare[0].payload is None and bare[0].vector.shape == (DIM,)


def test_batch_search_gives_numpy_arrays(col):
    v, _ = data()
    qs = v[:6] + 0.001
    res = col.search(qs, k=4, params={"exact": True})
    assert isinstance(res, quiverdb.BatchResult)
    assert res.ids.shape == (6, 4) and res.ids.dtype == np.int64
    assert res.scores.shape == (6, 4) and res.scores.dtype == np.float32
    for i in range(6):
        single = col.search(qs[i], k=4, params={"exact": True})
        assert res.ids[i].tolist() == [h.id for h in single]
        np.testing.assert_allclose(res.scores[i], [h.score for h in single], rtol=1e-5)
    # Fewer matches than k: -1 ids and NaN scores fill the rest.
    few = col.search(qs[:2], k=5, filter={"must": [{"key": "i", "range": {"lt": 3}}]}, threads=1)
    assert (few.ids[:, 3:] == -1).all() and np.isnan(few.scores[:, 3:]).all()
    assert set(few.ids[0, :3].tolist()) == {0, 1, 2}
    with pytest.raises(quiverdb.InvalidArgument, match="matrix"):
        col.search(qs, k=3, offset=2)


def test_uuid_ids(db, name):
    c = db.create_collection(name, dim=4)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    c.upsert(ids, np.eye(3, 4, dtype=np.float32))
    assert c.get(ids[1]).id == ids[1]
    res = c.search(np.eye(2, 4, dtype=np.float32), k=3)
    assert res.ids.dtype == object and res.ids[0, 0] == ids[0]
    with pytest.raises(quiverdb.InvalidArgument, match="ids"):
        c.upsert(["not-a-uuid"], np.ones((1, 4), np.float32))
    db.drop_collection(name)


def test_delete_by_ids_and_filter(col):
    col.delete([0, 1, 2], wait=True)
    assert col.count() == 197 and col.get([0, 1, 2]) == []
    red = {"must": [{"key": "tag", "match": {"value": "red"}}]}
    before = col.count(red)
    assert before > 0
    col.delete(filter=red)
    assert col.count(red) == 0 and col.count() == 197 - before
    with pytest.raises(quiverdb.InvalidArgument):
        col.delete()  # neither ids nor filter


def test_scroll_pages_cover_everything_once(col):
    seen, offset = [], None
    while True:
        page = col.scroll(limit=37, offset=offset, filter={"must_not": [{"key": "tag", "match": {"value": "red"}}]})
        seen += [r.id for r in page.points]
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert seen == [i for i in range(200) if i % 3 != 0]
    assert [r.id for r in col.iter_points(page_size=64)] == list(range(200))


def test_payload_updates(col):
    col.set_payload({"score": 5}, [1, 2], wait=True)
    assert col.get(1).payload["score"] == 5 and col.get(1).payload["tag"] == "green"
    col.set_payload({"deep": 1}, [1], key="nested")
    assert col.get(1).payload["nested"] == {"even": False, "deep": 1}
    col.overwrite_payload({"only": True}, [2])
    assert col.get(2).payload == {"only": True}
    col.delete_payload(["tag"], [3])
    assert "tag" not in col.get(3).payload
    col.clear_payload([4])
    assert col.get(4).payload == {}
    col.set_payload({"flag": "x"}, filter={"must": [{"key": "i", "range": {"gte": 198}}]})
    assert col.count({"must": [{"key": "flag", "match": {"value": "x"}}]}) == 2
    with pytest.raises(quiverdb.InvalidArgument, match="payload"):
        col.set_payload(["not", "a", "dict"], [1])


def test_payload_index_and_explain(col):
    v, _ = data()
    f = {"must": [{"key": "tag", "match": {"value": "green"}}]}
    plan = col.explain(v[0], k=5, filter=f)
    assert "tag" in plan["unindexed_keys"]
    assert plan["matched"] == col.count(f)
    col.create_index("tag", "keyword")
    plan = col.explain(v[0], k=5, filter=f)
    assert plan["unindexed_keys"] == []
    col.drop_index("tag")
    assert "tag" in col.explain(v[0], k=5, filter=f)["unindexed_keys"]
    with pytest.raises(quiverdb.InvalidArgument, match="keyword, integer"):
        col.create_index("i", "complex-number")


def test_bad_input_is_refused_and_changes_nothing(col):
    v, _ = data()
    n = col.count()
    seq = col.applied_seq
    cases = [
        (lambda: col.upsert([1000], np.ones((1, DIM + 1), np.float32)), "vector"),
        (lambda: col.upsert([1000, 1001], np.ones((1, DIM), np.float32)), "vectors"),
        (lambda: col.upsert([1000], np.full((1, DIM), np.nan, np.float32)), "vector"),
        (lambda: col.upsert([1000], v[:1], [{"x": float("inf")}]), "payload"),
        (lambda: col.upsert([1000], v[:1], ["not a dict"]), "payload"),
        (lambda: col.upsert([1000], v[:1], [{}, {}]), "payloads"),
        (lambda: col.upsert([-1], v[:1]), "id"),
        (lambda: col.upsert([1000], [["a"] * DIM]), "vectors"),
        (lambda: col.search(v[0][:3]), "vector"),
        (lambda: col.search(v[0], k=0), "limit"),
        (lambda: col.search(v[0], params={"eff": 10}), "eff"),
        (lambda: col.search(v[0], params={"ef": 0}), "ef"),
        (lambda: col.search(v[0], filter={"must": [{"key": "i", "range": {"gt": "x"}}]}), "filter"),
        (lambda: col.search(v[0], filter={"bogus": []}), "filter"),
        (lambda: col.scroll(limit=0), "limit"),
    ]
    for call, word in cases:
        with pytest.raises(quiverdb.InvalidArgument) as e:
            call()
            pytest.fail(f"no error for the case about {word!r}")
        assert word in str(e.value), (word, str(e.value))
    assert col.count() == n and col.applied_seq == seq


def test_ttl_points_exist_until_they_expire(db, name):
    c = db.create_collection(name, dim=4)
    c.upsert([1, 2], np.eye(2, 4, dtype=np.float32), ttl=3600)
    assert c.count() == 2  # an hour from now
    db.drop_collection(name)


def test_snapshot_and_restore(db, name):
    c = db.create_collection(name, dim=4)
    c.upsert([1, 2, 3], np.eye(3, 4, dtype=np.float32), [{"k": 1}, {"k": 2}, {"k": 3}])
    snap = db.create_snapshot(name)
    assert snap.name.startswith("snap-") and snap.size_bytes > 0
    assert snap.name in [s.name for s in db.list_snapshots(name)]
    c.delete([1, 2])
    assert c.count() == 1
    restored = db.restore_snapshot(name, snap.name)
    assert restored.count() == 3 and restored.get(2).payload == {"k": 2}
    db.delete_snapshot(name, snap.name)
    assert snap.name not in [s.name for s in db.list_snapshots(name)]
    with pytest.raises(quiverdb.NotFound):
        db.delete_snapshot(name, snap.name)
    db.drop_collection(name)


# CI fetches the model (scripts/get-embed-model.sh) and sets QUIVER_MODEL_DIR; without it these cannot run.
needs_model = pytest.mark.skipif(
    not os.environ.get("QUIVER_MODEL_DIR"), reason="QUIVER_MODEL_DIR not set (CI sets it: scripts/get-embed-model.sh)"
)


@needs_model
def test_texts_and_documents_through_the_collections_model(db, name):
    col = db.create_collection(name, embedding="all-MiniLM-L6-v2")
    assert col.dimension == 384
    col.upsert([1, 2, 3], texts=["a cat sleeps on the sofa", "stock markets fell sharply", "a kitten naps"],
               payloads=[{"k": "pet"}, {"k": "money"}, {"k": "pet"}])
    hits = col.search("sleeping cats", k=2)
    assert {h.id for h in hits} == {1, 3}
    assert hits[0].payload["text"] in ("a cat sleeps on the sofa", "a kitten naps")
    assert hits[0].payload["k"] == "pet"
    money = col.search("finance news", k=1, filter={"must": [{"key": "k", "match": {"value": "money"}}]})
    assert money[0].id == 2
    with pytest.raises(quiverdb.InvalidArgument, match="texts"):
        col.upsert([4, 5], texts=["only one"])
    with pytest.raises(quiverdb.InvalidArgument, match="vectors, texts or images"):
        col.upsert([4], np.zeros((1, 384), dtype=np.float32), texts=["both"])
    assert col.count() == 3

    docs = db.create_collection(name + "_docs", embedding="all-MiniLM-L6-v2")
    out = docs.add_documents([{"id": "intro", "text": "QuiverDB stores vectors. " * 200, "metadata": {"lang": "en"}},
                              {"id": 7, "text": "A short one."}], max_tokens=64, overlap_tokens=8)
    assert out[0]["id"] == "intro" and out[0]["chunks"] > 1
    assert out[1] == {"id": "7", "chunks": 1}
    assert docs.count() == out[0]["chunks"] + 1
    first = docs.scroll(filter={"must": [{"key": "doc_id", "match": {"value": "intro"}}]}, limit=1).points[0]
    assert first.payload["lang"] == "en" and first.payload["chunk_count"] == out[0]["chunks"]
    # Writing a document again replaces its chunks (a shorter text leaves none behind).
    again = docs.add_documents([{"id": "intro", "text": "Now short."}])
    assert again == [{"id": "intro", "chunks": 1}]
    assert docs.count() == 2
    with pytest.raises(quiverdb.InvalidArgument, match="metadata.doc_id"):
        docs.add_documents([{"id": "x", "text": "t", "metadata": {"doc_id": "clash"}}])
    docs.delete_document("intro")
    docs.delete_document(7)
    assert docs.count() == 0
    db.drop_collection(name)
    db.drop_collection(name + "_docs")


REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
IMAGES = REPO_ROOT / "crates" / "quiver-embed" / "testdata" / "images"


@needs_model
def test_images_through_the_collections_image_model(db, name):
    # EfficientNet-Lite0 from ~/.cache/quiver-models (scripts/get-embed-model.sh efficientnet-lite0; CI installs it).
    col = db.create_collection(name, embedding="efficientnet-lite0")
    assert col.dimension == 1280
    files = ["cat.jpg", "coffee.jpg", "astronaut.webp", "rocket.jpg"]
    col.upsert([1, 2, 3, 4], images=[(IMAGES / f).read_bytes() for f in files],
               payloads=[{"file": f} for f in files], wait=True)
    hits = col.search((IMAGES / "cat-mirrored.png").read_bytes(), k=2)
    assert hits[0].id == 1 and hits[0].payload["file"] == "cat.jpg"
    assert hits[0].score > hits[1].score + 0.1
    with pytest.raises(quiverdb.InvalidArgument, match="images"):
        col.upsert([5, 6], images=[(IMAGES / "cat.jpg").read_bytes()])
    with pytest.raises(quiverdb.InvalidArgument, match=r"images\[0\]|image"):
        col.upsert([5], images=[b"not an image"])
    with pytest.raises(quiverdb.InvalidArgument, match="vectors, texts or images"):
        col.upsert([5], texts=["a"], images=[b"x"])
    with pytest.raises(quiverdb.InvalidArgument, match="images"):
        col.search("a cat")
    assert col.count() == 4
    db.drop_collection(name)


def test_text_on_a_collection_without_a_model_is_refused(db, name):
    col = db.create_collection(name, dim=4)
    with pytest.raises(quiverdb.InvalidArgument, match="no embedding model"):
        col.search("a question")
    with pytest.raises(quiverdb.InvalidArgument, match="no embedding model"):
        col.upsert([1], texts=["hello"])
    assert col.count() == 0
    with pytest.raises(quiverdb.InvalidArgument, match="not installed"):
        db.create_collection(name + "_m", embedding="no-such-model")
    assert not db.has_collection(name + "_m")
    db.drop_collection(name)


def test_text_index_and_bm25_search(db, name):
    c = db.create_collection(name, dim=2)
    texts = ["Dogs are barking loudly at night", "a cat sleeps", "the dog barked", "hotdog stand"]
    c.upsert([1, 2, 3, 4], np.ones((4, 2), dtype=np.float32), [{"body": t, "n": i} for i, t in enumerate(texts)])
    with pytest.raises(quiverdb.InvalidArgument, match="stem"):
        c.create_index("n", "integer", stem=True)
    c.create_index("body", "text", stem=True, stopwords=True, wait=True)
    hits = c.text_search("body", "barking dog", 10)
    assert [h.id for h in hits] == [3, 1], hits
    assert hits[0].score > hits[1].score > 0 and hits[0].payload["body"] == "the dog barked"
    only = c.text_search("body", "dog", 10, filter={"must": [{"key": "n", "match": {"value": 0}}]})
    assert [h.id for h in only] == [1]
    # `match.text` on a text index: every word, stemmed (not the substring "hotdog").
    assert c.count({"must": [{"key": "body", "match": {"text": "DOGS bark"}}]}) == 2
    with pytest.raises(quiverdb.InvalidArgument, match="text index"):
        c.text_search("n", "dog")


def test_hybrid_search_fuses_keywords_and_vectors(db, name):
    c = db.create_collection(name, dim=2, metric="euclidean")
    rows = [(1, [9.0, 9.0], "dog dog dog"), (2, [8.0, 8.0], "a cat"), (3, [0.1, 0.0], "a dog"), (4, [0.0, 0.3], "fox")]
    c.upsert([r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float32), [{"t": r[2]} for r in rows])
    c.create_index("t", "text", wait=True)
    for fusion in ("rrf", "dbsf"):
        hits = c.hybrid_search("t", "dog", 2, vector=[0.0, 0.0], candidates=3, fusion=fusion)
        assert [h.id for h in hits][0] == 3, (fusion, hits)
        assert hits[0].payload == {"t": "a dog"}
    only = c.hybrid_search("t", "dog", 5, vector=[0.0, 0.0], filter={"must": [{"has_id": [1, 2]}]})
    assert {h.id for h in only} <= {1, 2} and 1 in {h.id for h in only}
    # Weights: all on the vector list gives the vector ranking.
    hits = c.hybrid_search("t", "dog", 4, vector=[9.0, 9.0], candidates=4, weights=(0.0, 1.0))
    assert [h.id for h in hits] == [1, 2, 4, 3], hits
    with pytest.raises(quiverdb.InvalidArgument, match="fusion"):
        c.hybrid_search("t", "dog", vector=[0.0, 0.0], fusion="max")
    with pytest.raises(quiverdb.InvalidArgument, match="weights"):
        c.hybrid_search("t", "dog", vector=[0.0, 0.0], weights=(1.0, -1.0))


def test_a_409_that_is_not_an_existing_collection_is_a_conflict():
    from quiverdb._errors import from_status

    assert isinstance(from_status(409, 'collection "a" already exists'), quiverdb.AlreadyExists)
    e = from_status(409, "invalid min_seq: expected a sequence number a write to this collection returned (at most 3), got 9")
    assert isinstance(e, quiverdb.Conflict) and isinstance(e, ValueError) and e.status == 409


def test_named_and_sparse_vectors(db, name):
    c = db.create_collection(name, vectors={"title": 2, "body": {"dim": 3, "metric": "dot"}},
                             sparse_vectors=["terms"])
    ids = [1, 2, 3]
    titles = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    bodies = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float32)
    terms = [{"indices": [7, 1], "values": [1.0, 0.5]}, None, ([7], [2.0])]
    c.upsert(ids, {"title": titles, "body": bodies}, [{"n": i} for i in ids], sparse={"terms": terms}, wait=True)
    hits = c.search(np.array([0, 1, 0], dtype=np.float32), 1, using="body")
    assert hits[0].id == 2 and abs(hits[0].score - 2.0) < 1e-5
    hits = c.search(np.array([0.1, 1.0], dtype=np.float32), 1, using="title")
    assert hits[0].id == 2
    hits = c.search({"indices": [7], "values": [1.0]}, 5, using="terms", with_vector=True)
    assert [h.id for h in hits] == [3, 1] and abs(hits[0].score - 2.0) < 1e-5
    assert hits[1].vector["terms"] == {"indices": [1, 7], "values": [0.5, 1.0]}
    assert sorted(hits[1].vector) == ["body", "terms", "title"]
    np.testing.assert_allclose(hits[1].vector["body"], [1, 0, 0])
    with pytest.raises(quiverdb.InvalidArgument, match="using"):
        c.search(np.array([1, 0], dtype=np.float32), 1)
    with pytest.raises(quiverdb.InvalidArgument, match="vector.nope"):
        c.upsert([9], {"nope": np.ones((1, 2), dtype=np.float32)})
    with pytest.raises(quiverdb.InvalidArgument, match="terms"):
        c.upsert([9], {"title": np.ones((1, 2), dtype=np.float32)}, sparse={"terms": [([1, 1], [1.0, 2.0])]})
    assert c.count() == 3
    db.drop_collection(name)
