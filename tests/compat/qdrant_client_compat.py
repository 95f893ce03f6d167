"""Drives a running QuiverDB server with the real `qdrant-client` package (REST), checking that the common
operations behave as Qdrant users expect. Usage: python3 qdrant_client_compat.py http://127.0.0.1:PORT [SHARDS REPLICAS]
       python3 qdrant_client_compat.py http://127.0.0.1:PORT --grpc-port GRPC_PORT   (the same checks over gRPC)

Run by crates/quiver-cli/tests/it/serve.rs against the real binary; needs `pip install qdrant-client==1.20.0`.
Exits non-zero with the failing check's message on any mismatch.
"""

import json
import math
import sys
import urllib.request
import uuid
import warnings

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse


def status_of(e: Exception) -> int:
    """The HTTP status of a failed call: REST's as is, gRPC's code mapped back as QuiverDB maps statuses to codes."""
    if isinstance(e, UnexpectedResponse):
        return e.status_code
    import grpc

    if isinstance(e, grpc.RpcError):
        codes = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
                 grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}
        return codes.get(e.code(), 500)
    raise e


def main(url: str, shards: int = 1, replicas: int = 1, grpc_port: int | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an incompatible-version warning is a failure
        client = QdrantClient(url=url, prefer_grpc=grpc_port is not None, grpc_port=grpc_port or 6334, timeout=30)
    name = "compat"
    if client.collection_exists(name):
        client.delete_collection(name)
    sharding = {"shard_number": shards, "replication_factor": replicas} if shards > 1 or replicas > 1 else {}
    assert client.create_collection(
        name, vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE), **sharding
    )
    assert client.collection_exists(name)
    assert name in [c.name for c in client.get_collections().collections]

    colours = ["red", "green", "blue"]
    points = []
    for i in range(30):
        a = i / 30.0
        points.append(
            models.PointStruct(
                id=i,
                vector=[1.0, a, 0.5 * a, 0.1],
                payload={"colour": colours[i % 3], "n": i, "meta": {"even": i % 2 == 0}},
            )
        )
    u = str(uuid.UUID(int=12345))
    points.append(models.PointStruct(id=u, vector=[0.0, 0.0, 1.0, 0.0], payload={"colour": "none"}))
    res = client.upsert(name, points=points, wait=True)
    assert res.status == models.UpdateStatus.COMPLETED, res
    assert res.operation_id is not None and res.operation_id >= 1, res

    info = client.get_collection(name)
    assert info.points_count == 31, info
    assert info.config.params.vectors.size == 4, info.config.params
    assert info.config.params.vectors.distance == models.Distance.COSINE

    client.create_payload_index(name, field_name="colour", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    client.create_payload_index(name, field_name="n", field_schema=models.PayloadSchemaType.INTEGER, wait=True)
    assert "colour" in client.get_collection(name).payload_schema

    # Query (nearest) with and without filters.
    q = client.query_points(name, query=[1.0, 0.0, 0.0, 0.1], limit=5, with_payload=True)
    assert len(q.points) == 5 and q.points[0].id == 0, q
    assert all(q.points[i].score >= q.points[i + 1].score for i in range(4)), q
    red = models.Filter(must=[models.FieldCondition(key="colour", match=models.MatchValue(value="red"))])
    q = client.query_points(name, query=[1.0, 0.0, 0.0, 0.1], query_filter=red, limit=50, with_payload=True)
    assert len(q.points) == 10 and all(p.payload["colour"] == "red" for p in q.points), q
    rng = models.Filter(
        must=[models.FieldCondition(key="n", range=models.Range(gte=10, lt=20))],
        must_not=[models.FieldCondition(key="meta.even", match=models.MatchValue(value=True))],
    )
    q = client.query_points(name, query=[1.0, 0.0, 0.0, 0.1], query_filter=rng, limit=50)
    assert sorted(p.id for p in q.points) == [11, 13, 15, 17, 19], q
    anyf = models.Filter(should=[models.FieldCondition(key="colour", match=models.MatchAny(any=["green", "none"]))])
    q = client.query_points(name, query=[0.0, 0.0, 1.0, 0.0], query_filter=anyf, limit=3)
    assert q.points[0].id == u, q
    # Query by a stored point's id: the point itself is not returned.
    q = client.query_points(name, query=5, limit=3)
    assert 5 not in [p.id for p in q.points] and len(q.points) == 3, q
    # Batch query.
    batch = client.query_batch_points(
        name,
        requests=[
            models.QueryRequest(query=[1.0, 0.0, 0.0, 0.1], limit=1),
            models.QueryRequest(query=[0.0, 0.0, 1.0, 0.0], limit=1, filter=anyf),
        ],
    )
    assert batch[0].points[0].id == 0 and batch[1].points[0].id == u, batch
    # Score threshold.
    q = client.query_points(name, query=[1.0, 0.0, 0.0, 0.1], limit=30, score_threshold=0.99)
    assert 0 < len(q.points) < 30 and all(p.score >= 0.99 for p in q.points), q

    # Grouped queries: the best 2 colours, 2 hits each; by a stored point's id, filtered.
    g = client.query_points_groups(name, group_by="colour", query=[1.0, 0.0, 0.0, 0.1], limit=2, group_size=2)
    assert len(g.groups) == 2 and all(len(x.hits) == 2 for x in g.groups), g
    assert g.groups[0].id == "red" and g.groups[0].hits[0].id == 0, g
    g = client.query_points_groups(name, group_by="colour", query=5, limit=3, group_size=1, query_filter=red)
    assert [x.id for x in g.groups] == ["red"] and g.groups[0].hits[0].id != 5, g

    # Retrieve.
    recs = client.retrieve(name, ids=[1, 2, u, 999], with_vectors=True)
    assert sorted(str(r.id) for r in recs) == sorted(["1", "2", u]), recs
    r1 = next(r for r in recs if r.id == 1)
    assert r1.payload["colour"] == "green" and len(r1.vector) == 4
    assert math.isclose(sum(x * x for x in r1.vector), 1.0, rel_tol=1e-4), "cosine vectors are stored normalised"

    # Scroll through everything, page by page.
    seen, offset = [], None
    while True:
        page, offset = client.scroll(name, limit=7, offset=offset, with_payload=False)
        seen += [p.id for p in page]
        if offset is None:
            break
    assert len(seen) == 31 and len(set(map(str, seen))) == 31, seen
    page, _ = client.scroll(name, scroll_filter=red, limit=100)
    assert len(page) == 10

    # Count.
    assert client.count(name, exact=True).count == 31
    assert client.count(name, count_filter=red).count == 10

    # Payload updates.
    client.set_payload(name, payload={"tag": "x"}, points=[1, 2], wait=True)
    client.overwrite_payload(name, payload={"only": 1}, points=[3], wait=True)
    client.delete_payload(name, keys=["n"], points=[4], wait=True)
    client.clear_payload(name, points_selector=models.PointIdsList(points=[6]), wait=True)
    got = {r.id: r.payload for r in client.retrieve(name, ids=[1, 3, 4, 6])}
    assert got[1]["tag"] == "x" and got[3] == {"only": 1} and "n" not in got[4] and got[6] == {}, got

    # Delete by ids and by filter.
    client.delete(name, points_selector=models.PointIdsList(points=[0, 1]), wait=True)
    client.delete(name, points_selector=models.FilterSelector(filter=red), wait=True)
    left = client.count(name).count
    # Red were 0, 3, …, 27 (10); 0 went by id, 3 and 6 lost their colour above: 7 went by filter.
    assert left == 31 - 2 - 7, left

    # Errors surface as the client's exceptions with the server's message.
    try:
        client.upsert(name, points=[models.PointStruct(id=100, vector=[1.0, 0.0], payload={})], wait=True)
        raise AssertionError("wrong dimension accepted")
    except Exception as e:
        assert status_of(e) == 400 and "vector" in str(e), e
    try:
        client.query_points("no_such_collection", query=[1.0, 0.0, 0.0, 0.0], limit=1)
        raise AssertionError("unknown collection accepted")
    except Exception as e:
        assert status_of(e) == 404, e
    assert client.count(name).count == left

    assert client.delete_collection(name)
    assert not client.collection_exists(name)
    print("qdrant-client compatibility: all checks passed")


def text(url: str) -> None:
    """Qdrant's inference objects (`models.Document`, sent as-is with `cloud_inference=True`) against a collection
    with a built-in embedding model. The collection is made over plain HTTP: `embedding` is QuiverDB's field."""
    body = json.dumps({"embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2"}}).encode()
    req = urllib.request.Request(f"{url}/collections/texts", method="PUT", data=body,
                                 headers={"content-type": "application/json"})
    assert json.load(urllib.request.urlopen(req))["result"] is True
    client = QdrantClient(url=url, prefer_grpc=False, timeout=60, cloud_inference=True)
    model = "sentence-transformers/all-MiniLM-L6-v2"
    docs = ["The cat curled up on the mat.", "Stock markets fell as rates rose.", "Bake the cake for forty minutes."]
    res = client.upsert("texts", wait=True, points=[
        models.PointStruct(id=i, vector=models.Document(text=t, model=model), payload={"n": i}) for i, t in enumerate(docs)
    ])
    assert res.status == models.UpdateStatus.COMPLETED, res
    for query, want in [("a kitten asleep on a rug", 0), ("the economy and share prices", 1), ("baking a dessert", 2)]:
        q = client.query_points("texts", query=models.Document(text=query, model=model), limit=1, with_payload=True)
        assert q.points[0].id == want, (query, q)
        assert q.points[0].payload == {"n": want, "text": docs[want]}, q
    try:
        client.query_points("texts", query=models.Document(text="x", model="some/other-model"), limit=1)
        raise AssertionError("another model should be refused")
    except UnexpectedResponse as e:
        assert e.status_code == 400 and "query.model" in str(e.content), e


def hybrid(url: str, cluster: bool = False, grpc_port: int | None = None) -> None:
    """A full-text index with Qdrant's text settings, `MatchText` on it, prefetch + fusion queries, geo filters,
    recommend (every strategy), discovery and context queries, ordered scrolls and lookup_from."""
    client = QdrantClient(url=url, prefer_grpc=grpc_port is not None, grpc_port=grpc_port or 6334, timeout=30)
    name = "hybrid"
    if client.collection_exists(name):
        client.delete_collection(name)
    sharding = {"shard_number": 2} if cluster else {}
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID),
                             **sharding)
    rows = [
        (1, [9.0, 9.0], "Dogs are barking at the mailman"),
        (2, [8.0, 8.0], "A cat sleeps"),
        (3, [0.1, 0.0], "the dog barked"),
        (4, [0.0, 0.3], "foxes run"),
        (5, [5.0, 5.0], "hotdog stand"),
    ]
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=i, vector=v, payload={"body": t, "n": i}) for i, v, t in rows
    ])
    client.create_payload_index(name, field_name="body", wait=True, field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True,
        stemmer=models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH),
        stopwords=models.Language.ENGLISH,
    ))
    schema = client.get_collection(name).payload_schema["body"]
    assert schema.data_type == models.PayloadSchemaType.TEXT, schema
    assert schema.params.stemmer.language == models.SnowballLanguage.ENGLISH, schema
    # Terms, stemmed: "barking dogs" matches 1 and 3, not the substring "hotdog".
    text_filter = models.Filter(must=[models.FieldCondition(key="body", match=models.MatchText(text="barking dogs"))])
    page, _ = client.scroll(name, scroll_filter=text_filter, limit=10)
    assert sorted(p.id for p in page) == [1, 3], page
    # Fusion of two nearest lists: 3 is near the first query, 1 near the second; 5 is second in both.
    prefetch = [
        models.Prefetch(query=[0.0, 0.0], limit=3),
        models.Prefetch(query=[9.0, 9.0], limit=3),
    ]
    for fusion in [models.FusionQuery(fusion=models.Fusion.RRF), models.FusionQuery(fusion=models.Fusion.DBSF),
                   models.RrfQuery(rrf=models.Rrf(k=10))]:
        q = client.query_points(name, prefetch=prefetch, query=fusion, limit=6, with_payload=True)
        ids = [p.id for p in q.points]
        assert set(ids) == {1, 2, 3, 4, 5}, (fusion, q)
        assert ids[0] == 5 or fusion.__class__ is models.FusionQuery and fusion.fusion == models.Fusion.DBSF, (fusion, ids)
        assert all(q.points[i].score >= q.points[i + 1].score for i in range(len(ids) - 1)), q
        assert q.points[0].payload["body"], q
    # Weighted RRF: all weight on the second list gives its order.
    q = client.query_points(name, prefetch=prefetch, query=models.RrfQuery(rrf=models.Rrf(k=60, weights=[0.0, 1.0])),
                            limit=3)
    assert [p.id for p in q.points] == [1, 2, 5], q
    # The top-level filter applies to every prefetch; a nearest query re-ranks only what the prefetch found.
    q = client.query_points(name, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF),
                            query_filter=text_filter, limit=5)
    assert sorted(p.id for p in q.points) == [1, 3], q
    q = client.query_points(name, prefetch=models.Prefetch(query=[0.0, 0.0], limit=2), query=[9.0, 9.0], limit=5)
    assert [p.id for p in q.points] == [4, 3], q
    # Recommend: near 2·(positive) − (negative), the examples left out (in a cluster the examples are looked up
    # on whichever shard holds them).
    rec = models.RecommendQuery(recommend=models.RecommendInput(positive=[3], negative=[1]))
    q = client.query_points(name, query=rec, limit=2)
    assert [p.id for p in q.points] == [4, 5], q
    # The other strategies score every candidate against each example: 4 is near the positive; 5 and 2 are
    # nearer the negative, 2 most.
    for strategy in [models.RecommendStrategy.BEST_SCORE, models.RecommendStrategy.SUM_SCORES]:
        rec = models.RecommendQuery(recommend=models.RecommendInput(positive=[3], negative=[1], strategy=strategy))
        q = client.query_points(name, query=rec, limit=3)
        assert [p.id for p in q.points] == [4, 5, 2], (strategy, q)
        assert q.points[0].score > q.points[1].score > q.points[2].score, (strategy, q)
    # Discovery: 4 is the only candidate on the positive side of (3 over 2), so it comes first whatever the
    # target; then 1, nearest the target [9, 9].
    disc = models.DiscoverQuery(discover=models.DiscoverInput(
        target=[9.0, 9.0], context=[models.ContextPair(positive=3, negative=2)]))
    q = client.query_points(name, query=disc, limit=3)
    assert [p.id for p in q.points] == [4, 1, 5], q
    assert 1.0 < q.points[0].score < 2.0 and q.points[2].score < 0, q
    # Context alone: 1 and 2 are on the positive side of (5 over 3), score 0; 4 strays.
    ctx = models.ContextQuery(context=[models.ContextPair(positive=5, negative=3)])
    q = client.query_points(name, query=ctx, limit=3)
    assert [p.id for p in q.points] == [1, 2, 4] and q.points[0].score == 0 and q.points[2].score < 0, q
    # Scroll ordered by a payload value (in a cluster, the shards' pages merged by it).
    client.create_payload_index(name, field_name="n", field_schema=models.PayloadSchemaType.INTEGER, wait=True)
    page, nxt = client.scroll(name, order_by=models.OrderBy(key="n", direction=models.Direction.DESC), limit=3)
    assert [p.id for p in page] == [5, 4, 3] and nxt is None, (page, nxt)
    assert [p.order_value for p in page] == [5, 4, 3], page
    page, _ = client.scroll(name, order_by=models.OrderBy(key="n", start_from=2), limit=2)
    assert [p.id for p in page] == [2, 3], page
    # lookup_from: the query's id names a point of another collection (not left out of this one's answer).
    other = "hybrid_lookup"
    if client.collection_exists(other):
        client.delete_collection(other)
    client.create_collection(other, vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID),
                             **sharding)
    client.upsert(other, wait=True, points=[models.PointStruct(id=3, vector=[8.9, 8.9])])
    q = client.query_points(name, query=3, lookup_from=models.LookupLocation(collection=other), limit=2)
    assert [p.id for p in q.points] == [1, 2], q
    rec = models.RecommendQuery(recommend=models.RecommendInput(positive=[3]))
    q = client.query_points(name, prefetch=models.Prefetch(query=rec, lookup_from=models.LookupLocation(collection=other),
                                                          limit=2), query=[0.0, 0.0], limit=2)
    assert [p.id for p in q.points] == [2, 1], q
    client.delete_collection(other)
    # BM25 (QuiverDB's query shape) fused with a nearest list, over plain HTTP.
    body = {"prefetch": [{"query": {"bm25": {"key": "body", "text": "dog barks"}}, "limit": 5},
                         {"query": [0.0, 0.0], "limit": 5}],
            "query": {"fusion": "rrf"}, "limit": 3}
    req = urllib.request.Request(f"{url}/collections/{name}/points/query", method="POST",
                                 data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    points = json.load(urllib.request.urlopen(req))["result"]["points"]
    assert points[0]["id"] == 3, points
    # Geo: a geo index and a radius filter (Qdrant's models).
    client.set_payload(name, payload={"loc": {"lon": 13.40, "lat": 52.52}}, points=[1], wait=True)
    client.set_payload(name, payload={"loc": {"lon": 2.35, "lat": 48.86}}, points=[2], wait=True)
    client.create_payload_index(name, field_name="loc", field_schema=models.PayloadSchemaType.GEO, wait=True)
    near_berlin = models.Filter(must=[models.FieldCondition(
        key="loc", geo_radius=models.GeoRadius(center=models.GeoPoint(lon=13.0, lat=52.0), radius=100_000.0))])
    page, _ = client.scroll(name, scroll_filter=near_berlin, limit=10)
    assert [p.id for p in page] == [1], page
    box = models.Filter(must=[models.FieldCondition(key="loc", geo_bounding_box=models.GeoBoundingBox(
        top_left=models.GeoPoint(lon=0.0, lat=55.0), bottom_right=models.GeoPoint(lon=20.0, lat=45.0)))])
    assert client.count(name, count_filter=box).count == 2
    # Bad fusion input is a 400 naming the field.
    try:
        client.query_points(name, query=models.FusionQuery(fusion=models.Fusion.RRF), limit=3)
        raise AssertionError("fusion without prefetch accepted")
    except Exception as e:
        assert status_of(e) == 400 and "prefetch" in (str(e.content) if hasattr(e, "content") else str(e)), e
    client.delete_collection(name)
    print("qdrant-client hybrid checks: all passed")


def named(url: str, grpc_port: int | None = None, cluster: bool = False) -> None:
    """Named vectors as qdrant-client writes them: a collection of two vectors, points with both or one, searches
    and queries with `using`, reads of the named vectors, a fusion of the two vectors' lists, recommend (in a
    cluster, over 3 shards)."""
    client = QdrantClient(url=url, prefer_grpc=grpc_port is not None, grpc_port=grpc_port or 6334, timeout=30)
    name = "named"
    sharding = {"shard_number": 3} if cluster else {}
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(name, **sharding, vectors_config={
        "title": models.VectorParams(size=2, distance=models.Distance.EUCLID),
        "body": models.VectorParams(size=3, distance=models.Distance.COSINE),
    })
    params = client.get_collection(name).config.params.vectors
    assert set(params) == {"title", "body"} and params["body"].size == 3, params
    assert params["title"].distance == models.Distance.EUCLID, params
    points = [models.PointStruct(id=i, vector={"title": [float(i), 0.0], "body": [1.0, float(i), 0.0]},
                                 payload={"i": i}) for i in range(8)]
    points += [models.PointStruct(id=i, vector={"title": [float(i), 0.0]}) for i in range(8, 11)]
    client.upsert(name, points=points, wait=True)
    # Column-wise upload of named vectors.
    client.upsert(name, wait=True, points=models.Batch(ids=[20, 21], vectors={"title": [[20.0, 0.0], [21.0, 0.0]]}))
    assert client.count(name).count == 13
    q = client.query_points(name, query=[9.2, 0.0], using="title", limit=3)
    assert [p.id for p in q.points] == [9, 10, 8], q
    q = client.query_points(name, query=[1.0, 6.0, 0.0], using="body", limit=20)
    assert q.points[0].id == 6 and all(p.id < 8 for p in q.points) and len(q.points) == 8, q
    got = client.retrieve(name, ids=[3, 9], with_vectors=True)
    by_id = {p.id: p.vector for p in got}
    assert set(by_id[3]) == {"title", "body"} and by_id[9] == {"title": [9.0, 0.0]}, by_id
    got = client.retrieve(name, ids=[3], with_vectors=["title"])
    assert got[0].vector == {"title": [3.0, 0.0]}, got
    fused = client.query_points(name, prefetch=[models.Prefetch(query=[5.0, 0.0], using="title", limit=4),
                                                models.Prefetch(query=[1.0, 5.0, 0.0], using="body", limit=4)],
                                query=models.FusionQuery(fusion=models.Fusion.RRF), limit=2, with_vectors=["title"])
    assert fused.points[0].id == 5 and fused.points[0].vector == {"title": [5.0, 0.0]}, fused
    rec = client.query_points(name, query=models.RecommendQuery(recommend=models.RecommendInput(positive=[2, 4])),
                              using="title", limit=1)
    assert [p.id for p in rec.points] == [3], rec
    # A query by a stored point takes its vector of the same name, and leaves the point out.
    q = client.query_points(name, query=9, using="title", limit=2)
    assert sorted(p.id for p in q.points) == [8, 10], q
    # Point 9 has no "body" vector.
    for bad in [dict(query=[1.0, 0.0], using="nope"), dict(query=[1.0, 0.0]), dict(query=9, using="body")]:
        try:
            client.query_points(name, limit=1, **bad)
            raise AssertionError(f"accepted {bad}")
        except AssertionError:
            raise
        except Exception as e:
            assert status_of(e) == 400, e
    client.delete_collection(name)
    sparse(client, sharding)
    print("qdrant-client named and sparse vector checks: all passed")


def sparse(client: QdrantClient, sharding: dict) -> None:
    """Sparse vectors beside a dense one: the hybrid layout fastembed users create."""
    name = "sparse"
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(name, **sharding,
                             vectors_config={"dense": models.VectorParams(size=2, distance=models.Distance.DOT)},
                             sparse_vectors_config={"terms": models.SparseVectorParams()})
    assert "terms" in client.get_collection(name).config.params.sparse_vectors
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=i, vector={"dense": [1.0, float(i)],
                                         "terms": models.SparseVector(indices=[i, 100], values=[2.0, 0.5 * i])})
        for i in range(6)
    ])
    q = client.query_points(name, query=models.SparseVector(indices=[3, 100], values=[1.0, 1.0]), using="terms",
                            limit=2, with_vectors=True)
    assert [p.id for p in q.points] == [3, 5], q
    assert list(q.points[0].vector["terms"].indices) == [3, 100], q.points[0].vector
    assert list(q.points[0].vector["dense"]) == [1.0, 3.0], q.points[0].vector
    # Column-wise too.
    client.upsert(name, wait=True, points=models.Batch(ids=[7], vectors={
        "dense": [[1.0, 0.0]], "terms": [models.SparseVector(indices=[3], values=[9.0])]}))
    q = client.query_points(name, query=models.SparseVector(indices=[3], values=[1.0]), using="terms", limit=1)
    assert [p.id for p in q.points] == [7], q
    fused = client.query_points(name, prefetch=[
        models.Prefetch(query=[0.0, 1.0], using="dense", limit=3),
        models.Prefetch(query=models.SparseVector(indices=[4], values=[1.0]), using="terms", limit=3),
    ], query=models.FusionQuery(fusion=models.Fusion.RRF), limit=1)
    assert [p.id for p in fused.points] == [4], fused
    client.delete_collection(name)
    # Sparse vectors only (no dense vector), as for BM25 or SPLADE alone.
    name = "sparse_only"
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(name, vectors_config={}, **sharding,
                             sparse_vectors_config={"text": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    params = client.get_collection(name).config.params
    assert not params.vectors and "text" in params.sparse_vectors, params
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=i, vector={"text": models.SparseVector(indices=[i % 3, 10 + i], values=[1.0, 1.0])},
                           payload={"i": i})
        for i in range(9)
    ])
    q = client.query_points(name, query=models.SparseVector(indices=[13, 1], values=[1.0, 0.1]), using="text",
                            limit=4, with_vectors=True)
    assert q.points[0].id == 3 and len(q.points) == 4, q
    assert list(q.points[0].vector["text"].indices) == [0, 13], q.points[0].vector
    page, _ = client.scroll(name, limit=20, with_vectors=True)
    assert len(page) == 9 and set(page[0].vector) == {"text"}, page
    # No dense vector to query by or to write.
    for bad in [lambda: client.query_points(name, query=[1.0], limit=1),
                lambda: client.upsert(name, points=[models.PointStruct(id=99, vector=[1.0])], wait=True)]:
        try:
            bad()
            raise AssertionError("accepted a dense vector in a collection of sparse vectors only")
        except AssertionError:
            raise
        except Exception as e:
            assert status_of(e) == 400, e
    assert client.count(name).count == 9
    client.delete_collection(name)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--grpc-port":
        main(sys.argv[1], grpc_port=int(sys.argv[3]))
        hybrid(sys.argv[1], grpc_port=int(sys.argv[3]))
        named(sys.argv[1], grpc_port=int(sys.argv[3]))
        sys.exit(0)
    # Optional: shard_number and replication_factor of the collection (a cluster node takes both).
    main(sys.argv[1], *(int(x) for x in sys.argv[2:4]))
    text(sys.argv[1])
    hybrid(sys.argv[1], cluster=len(sys.argv) > 2)
    named(sys.argv[1], cluster=len(sys.argv) > 2)
