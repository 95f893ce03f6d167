"""Per-collection access tokens from clients no one here wrote: tokens signed by PyJWT (not QuiverDB's own code)
and used through the real `qdrant-client`, against a running `quiver serve --api-key K --jwt-rbac`.

Usage: python3 jwt_access_compat.py http://127.0.0.1:PORT API_KEY [CLI_TOKEN [GRPC_PORT]]
CLI_TOKEN, when given, is a token `quiver token --write notes` made; it must work the same way. With GRPC_PORT the
same checks run again over gRPC.
Run by crates/quiver-cli/tests/it/serve.rs; needs `pip install -r requirements-test.txt`.
Exits non-zero with the failing check's message on any mismatch.
"""

import sys
import time
import warnings

import jwt
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse


GRPC_PORT: int | None = None


def client(url: str, key: str) -> QdrantClient:
    with warnings.catch_warnings():
        # An incompatible-version warning is a failure; the plain-HTTP key warning is expected on loopback.
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*insecure connection.*")
        return QdrantClient(url=url, api_key=key, prefer_grpc=GRPC_PORT is not None, grpc_port=GRPC_PORT or 6334,
                            timeout=30, https=False)


def status_of(call) -> int:
    import grpc

    try:
        call()
    except UnexpectedResponse as e:
        return e.status_code
    except grpc.RpcError as e:
        return {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}.get(e.code(), 500)
    return 200


def main(url: str, api_key: str, cli_token: str | None) -> None:
    admin = client(url, api_key)
    for name in ["notes", "secrets"]:
        if admin.collection_exists(name):
            admin.delete_collection(name)
        admin.create_collection(name, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
        admin.upsert(name, points=[models.PointStruct(id=1, vector=[1.0, 0.0, 0.0], payload={"c": name})], wait=True)

    now = int(time.time())
    notes_rw = jwt.encode({"access": [{"collection": "notes", "access": "rw"}], "exp": now + 600}, api_key, "HS256")
    notes_r = jwt.encode({"access": [{"collection": "notes", "access": "r"}], "exp": now + 600}, api_key, "HS256")
    expired = jwt.encode({"access": "m", "exp": now - 60}, api_key, "HS256")
    forged = jwt.encode({"access": "m"}, "not-the-server-key", "HS256")

    writers = [("PyJWT rw token", notes_rw)]
    if cli_token:
        writers.append(("quiver token --write notes", cli_token))
    for who, tok in writers:
        c = client(url, tok)
        names = [x.name for x in c.get_collections().collections]
        assert names == ["notes"], f"{who} lists {names}"
        res = c.upsert("notes", points=[models.PointStruct(id=2, vector=[0.0, 1.0, 0.0])], wait=True)
        assert res.status == models.UpdateStatus.COMPLETED, res
        hits = c.query_points("notes", query=[1.0, 0.0, 0.0], limit=5).points
        assert [h.id for h in hits][:1] == [1], hits
        s = status_of(lambda: c.upsert("secrets", points=[models.PointStruct(id=9, vector=[1.0, 1.0, 0.0])], wait=True))
        assert s == 403, f"{who} wrote secrets: {s}"
        s = status_of(lambda: c.query_points("secrets", query=[1.0, 0.0, 0.0], limit=5))
        assert s == 403, f"{who} read secrets: {s}"
        s = status_of(lambda: c.delete_collection("notes"))
        assert s == 403, f"{who} deleted a collection: {s}"

    r = client(url, notes_r)
    assert r.count("notes").count == 2
    s = status_of(lambda: r.delete("notes", points_selector=models.PointIdsList(points=[1]), wait=True))
    assert s == 403, f"a read token deleted points: {s}"

    for who, tok in [("an expired token", expired), ("a token signed with another key", forged)]:
        s = status_of(lambda: client(url, tok).get_collections())
        assert s == 401, f"{who}: {s}"

    assert admin.count("secrets").count == 1, "secrets changed"
    assert admin.count("notes").count == 2
    print("jwt access compat: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    if len(sys.argv) > 4:
        GRPC_PORT = int(sys.argv[4])
        main(sys.argv[1], sys.argv[2], sys.argv[3])
