"""The HTTP client: the same calls as the embedded engine, against a running ``quiver serve``.

Moving from embedded to server is one line — ``quiverdb.open(path)`` becomes ``quiverdb.Client(url)`` — and the
collections answer the same methods with the same values and exceptions. The client uses only the standard
library (``http.client``), keeps one keep-alive connection per thread, and is safe to share among threads.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import urllib.parse
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._common import (
    CollectionBase,
    image_list,
    is_image,
    one_input,
    Progress,
    check_batch_size,
    chunks,
    collection_config,
    id_list,
    is_scalar_id,
    matrix,
    named_inputs,
    named_spaces,
    payload_list,
    query_vector,
    sparse_names,
    sparse_query,
)
from ._errors import Closed, InvalidArgument, Unavailable, from_status
from ._types import BatchResult, Hit, PointId, Record, ScrollPage, Snapshot

_DISTANCE = {"cosine": "Cosine", "dot": "Dot", "euclidean": "Euclid"}
_SHARDING_OPTIONS = ("shard_number", "replication_factor", "sharding", "hnsw_config")


def _jsonable(v: Any, field: str = "value") -> Any:
    """numpy scalars and arrays inside payloads and filters as plain JSON values; a NaN or an infinity (which
    JSON cannot carry) is refused naming where it is, as the embedded engine does."""
    if isinstance(v, dict):
        return {k: _jsonable(x, f"{field}.{k}") for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, f"{field}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist(), field)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if f != f or f in (float("inf"), float("-inf")):
            raise InvalidArgument(f"invalid {field}: expected a finite number (JSON has no NaN or infinity), got {f}")
        return f
    return v


def _vec(v: Any) -> Any:
    """A vector as read: a numpy array; named vectors a dict of them (sparse ones stay dicts)."""
    if v is None:
        return None
    if isinstance(v, dict):
        return {k: x if isinstance(x, dict) else np.asarray(x, dtype=np.float32) for k, x in v.items()}
    return np.asarray(v, dtype=np.float32)


def _record(r: Dict[str, Any]) -> Record:
    return Record(r["id"], r.get("payload"), _vec(r.get("vector")))


def _hit(h: Dict[str, Any]) -> Hit:
    return Hit(h["id"], float(h["score"]), h.get("payload"), _vec(h.get("vector")))


def _selector(ids: Any, filter: Optional[Dict]) -> Dict[str, Any]:
    if ids is not None and filter is not None:
        raise InvalidArgument("invalid ids: expected ids or a filter, not both, got both")
    if ids is None and filter is None:
        raise InvalidArgument("invalid ids: expected a list of ids or a filter, got neither")
    if filter is not None:
        return {"filter": _jsonable(filter, "filter")}
    return {"points": [ids] if is_scalar_id(ids) else id_list(ids)}


def _finite(q: np.ndarray) -> None:
    if not np.isfinite(q).all():
        raise InvalidArgument("invalid vector: expected finite numbers, got NaN or infinity")


def _params(params: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if params is None:
        return None
    if not isinstance(params, dict):
        raise InvalidArgument(f"invalid params: expected a dict such as {{'ef': 128}}, got {type(params).__name__}")
    return _jsonable(params, "params")


class Client:
    """A QuiverDB server: ``Client("http://127.0.0.1:6333", api_key=...)``.

    ``api_key`` defaults to the ``QUIVER_API_KEY`` environment variable. ``timeout`` is per request, seconds."""

    def __init__(self, url: str = "http://127.0.0.1:6333", *, api_key: Optional[str] = None, timeout: float = 60.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise InvalidArgument(f"invalid url: expected http://host:port or https://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port or (443 if self._https else 80)
        self._base = u.path.rstrip("/")
        self._timeout = timeout
        key = api_key if api_key is not None else os.environ.get("QUIVER_API_KEY")
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        if key:
            self._headers["api-key"] = key
        self._local = threading.local()
        self._closed = False

    # --- transport ---------------------------------------------------------------------------------------------

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            c = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = c
        return c

    def _drop_conn(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None) -> Any:
        """One API call: the reply's ``result``; an error reply raises the matching :class:`QuiverError`."""
        if self._closed:
            raise Closed(f"the client for {self.url} is closed")
        target = self._base + path
        if query:
            target += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        try:
            data = None if body is None else json.dumps(body, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"invalid request: expected JSON data, got {e}") from None
        # A kept-alive connection the server closed meanwhile fails on first use: retry once on a fresh one
        # (only when nothing of the reply was read, so a write is never sent twice after being answered).
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, target, body=data, headers=self._headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self._drop_conn()
                if attempt == 1:
                    raise Unavailable(f"{method} {self.url}{path}: {e}") from None
            except OSError as e:
                self._drop_conn()
                raise Unavailable(f"{method} {self.url}{path}: {e}") from None
        if resp.getheader("connection", "").lower() == "close":
            self._drop_conn()
        ctype = resp.getheader("content-type", "")
        if resp.status >= 400:
            message = raw.decode(errors="replace")
            if "json" in ctype:
                try:
                    doc = json.loads(raw)
                    message = doc.get("status", {}).get("error", message) if isinstance(doc, dict) else message
                except ValueError:
                    pass
            raise from_status(resp.status, message)
        if "json" not in ctype:
            return raw
        doc = json.loads(raw)
        return doc.get("result") if isinstance(doc, dict) and "result" in doc else doc

    def close(self) -> None:
        """Closes this thread's connection; later calls raise ``Closed``."""
        self._drop_conn()
        self._closed = True

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"quiverdb.Client({self.url!r})"

    # --- collections -------------------------------------------------------------------------------------------

    def create_collection(
        self,
        name: str,
        dim: Optional[int] = None,
        *,
        metric: str = "cosine",
        index: Union[None, str, Dict[str, Any]] = None,
        embedding: Union[None, str, Dict[str, Any]] = None,
        vectors: Optional[Dict[str, Any]] = None,
        sparse_vectors: Optional[Sequence[str]] = None,
        **options: Any,
    ) -> "RemoteCollection":
        """As :meth:`quiverdb.Database.create_collection`; ``dim`` may be left out with an ``embedding`` model
        (the model's dimension). Cluster options (``shard_number``, ``replication_factor``, ``sharding``) are
        passed to the server."""
        passthrough = {k: options.pop(k) for k in list(options) if k in _SHARDING_OPTIONS}
        cfg = collection_config(dim, metric, index, embedding, options)
        body: Dict[str, Any] = {}
        if vectors is not None:
            if dim is not None or embedding is not None:
                raise InvalidArgument("invalid vectors: expected dim and embedding to be left out with named vectors")
            body["vectors"] = {n: {"size": d, "distance": _DISTANCE[m]} for n, d, m in named_spaces(vectors, metric)}
            cfg.pop("metric", None)
        if sparse_vectors is not None:
            body["sparse_vectors"] = {n: {} for n in sparse_names(sparse_vectors)}
        if vectors is None and "dimension" in cfg:
            body["vectors"] = {"size": cfg.pop("dimension"), "distance": _DISTANCE[cfg.pop("metric")]}
        elif vectors is None and cfg.get("metric", "cosine") != "cosine":
            raise InvalidArgument("invalid metric: a collection sized by its embedding model uses cosine")
        else:
            cfg.pop("metric", None)
        body.update(cfg)
        body.update(passthrough)
        self.request("PUT", f"/collections/{_seg(name)}", _jsonable(body))
        return self.collection(name)

    def collection(self, name: str) -> "RemoteCollection":
        """An existing collection (``NotFound`` if there is none)."""
        info = self.request("GET", f"/collections/{_seg(name)}")
        return RemoteCollection(self, name, info)

    get_collection = collection

    def has_collection(self, name: str) -> bool:
        return bool(self.request("GET", f"/collections/{_seg(name)}/exists")["exists"])

    def list_collections(self) -> List[str]:
        return sorted(c["name"] for c in self.request("GET", "/collections")["collections"])

    def drop_collection(self, name: str) -> None:
        self.request("DELETE", f"/collections/{_seg(name)}")

    # --- snapshots ---------------------------------------------------------------------------------------------

    def create_snapshot(self, collection: str) -> Snapshot:
        return _snapshot(self.request("POST", f"/collections/{_seg(collection)}/snapshots"))

    def list_snapshots(self, collection: str) -> List[Snapshot]:
        return [_snapshot(s) for s in self.request("GET", f"/collections/{_seg(collection)}/snapshots")]

    def download_snapshot(self, collection: str, name: str, path: Union[str, os.PathLike]) -> str:
        """Saves a snapshot archive to ``path``."""
        raw = self.request("GET", f"/collections/{_seg(collection)}/snapshots/{_seg(name)}")
        with open(path, "wb") as f:
            f.write(raw if isinstance(raw, bytes) else json.dumps(raw).encode())
        return os.fspath(path)

    def delete_snapshot(self, collection: str, name: str) -> None:
        self.request("DELETE", f"/collections/{_seg(collection)}/snapshots/{_seg(name)}")

    def restore_snapshot(self, collection: str, snapshot: str) -> "RemoteCollection":
        """Replaces ``collection`` from one of its snapshots on the server (by name)."""
        self.request("PUT", f"/collections/{_seg(collection)}/snapshots/recover", {"location": snapshot})
        return self.collection(collection)


def _seg(s: str) -> str:
    if not isinstance(s, str):
        raise InvalidArgument(f"invalid name: expected a string, got {type(s).__name__}")
    return urllib.parse.quote(s, safe="")


def _snapshot(d: Dict[str, Any]) -> Snapshot:
    t = d.get("creation_time") or ""
    try:
        ms = int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        ms = 0
    return Snapshot(d["name"], int(d["size"]), ms)


class RemoteCollection(CollectionBase):
    """A collection on a server: the same methods as the embedded :class:`quiverdb.Collection`."""

    def __init__(self, client: Client, name: str, info: Dict[str, Any]) -> None:
        self._client = client
        self.name = name
        self._config = info.get("quiver", {}).get("config", {})

    def _post(self, path: str, body: Any, method: str = "POST", wait: bool = False) -> Any:
        q = {"wait": "true"} if wait else None
        return self._client.request(method, f"/collections/{_seg(self.name)}{path}", body, q)

    @property
    def dimension(self) -> int:
        return int(self._config["dimension"])

    @property
    def config(self) -> Dict[str, Any]:
        return dict(self._config)

    def info(self) -> Dict[str, Any]:
        """The engine's report (points, segments, memory, disk, optimizer), as the embedded ``info()``."""
        return self._client.request("GET", f"/collections/{_seg(self.name)}")["quiver"]

    def __repr__(self) -> str:
        return f"quiverdb.RemoteCollection({self.name!r} at {self._client.url})"

    # --- writes ------------------------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Union[PointId, Sequence[PointId], np.ndarray],
        vectors: Any = None,
        payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
        *,
        texts: Optional[Sequence[str]] = None,
        images: Optional[Sequence[bytes]] = None,
        ttl: Optional[int] = None,
        batch_size: int = 1_000,
        progress: bool = False,
        wait: bool = False,
        sparse: Optional[Dict[str, Sequence[Any]]] = None,
    ) -> int:
        """As the embedded ``upsert``; ``texts`` or ``images`` (one per id, instead of vectors) are embedded by
        the collection's model on the server. ``wait=True``: the write is durable when this returns."""
        single = is_scalar_id(ids)
        idl = [ids] if single else id_list(ids)
        if isinstance(vectors, dict) or sparse is not None:
            named, sp, pl = named_inputs(single, len(idl), vectors, sparse, payloads, texts, images)
            check_batch_size(batch_size)
            seq = 0
            for a, b in chunks(len(idl), batch_size):
                rows = []
                for i in range(a, b):
                    vec: Dict[str, Any] = {k: m[i].tolist() for k, m in named.items()}
                    for k, v in sp.items():
                        if v[i] is not None:
                            q = sparse_query(v[i] if isinstance(v[i], dict) else {"indices": v[i][0], "values": v[i][1]})
                            vec[k] = q
                    p: Dict[str, Any] = {"id": idl[i], "vector": vec}
                    if ttl is not None:
                        p["ttl_secs"] = ttl
                    if pl is not None and pl[i] is not None:
                        p["payload"] = _jsonable(pl[i], f"payloads[{i}]")
                    rows.append(p)
                seq = self._post("/points", {"points": rows}, "PUT", wait)["operation_id"]
            return seq
        if single and isinstance(payloads, dict):
            payloads = [payloads]
        if single and isinstance(texts, str):
            texts = [texts]
        if single and is_image(images):
            images = [images]  # type: ignore[list-item]
        kind = one_input(vectors, texts, images)
        m = matrix(vectors) if vectors is not None else None
        if m is not None and not np.isfinite(m).all():
            row = int(np.argwhere(~np.isfinite(m))[0][0])
            raise InvalidArgument(f"invalid vectors[{row}]: expected finite numbers, got {m[row].tolist()[:4]}...")
        tl = list(texts) if texts is not None else None
        il = [base64.b64encode(b).decode("ascii") for b in image_list(images)] if images is not None else None
        n = m.shape[0] if m is not None else len(tl if tl is not None else il)  # type: ignore[arg-type]
        if n != len(idl):
            what = kind if m is None else "rows"
            raise InvalidArgument(f"invalid {kind}: expected {len(idl)} {what} (one per id), got {n} {what}")
        pl = payload_list(payloads, len(idl))
        check_batch_size(batch_size)
        bar = Progress(len(idl), progress)
        seq = 0
        try:
            for a, b in chunks(len(idl), batch_size):
                if ttl is None:
                    batch: Dict[str, Any] = {"ids": idl[a:b]}
                    if m is not None:
                        batch["vectors"] = m[a:b].tolist()
                    elif il is not None:
                        batch["images"] = il[a:b]
                    else:
                        batch["texts"] = tl[a:b]  # type: ignore[index]
                    if pl is not None:
                        batch["payloads"] = [_jsonable(x, f"payloads[{a + i}]") for i, x in enumerate(pl[a:b])]
                    body: Dict[str, Any] = {"batch": batch}
                else:
                    rows = []
                    for i in range(a, b):
                        p: Dict[str, Any] = {"id": idl[i], "ttl_secs": ttl}
                        if m is not None:
                            p["vector"] = m[i].tolist()
                        elif il is not None:
                            p["image"] = il[i]
                        else:
                            p["text"] = tl[i]  # type: ignore[index]
                        if pl is not None and pl[i] is not None:
                            p["payload"] = _jsonable(pl[i], f"payloads[{i}]")
                        rows.append(p)
                    body = {"points": rows}
                seq = self._post("/points", body, "PUT", wait)["operation_id"]
                bar.update(b - a)
        finally:
            bar.close()
        return seq

    def add_documents(
        self,
        documents: Sequence[Dict[str, Any]],
        *,
        max_tokens: Optional[int] = None,
        overlap_tokens: Optional[int] = None,
        wait: bool = False,
    ) -> List[Dict[str, Any]]:
        """Splits documents (``{"id": ..., "text": ..., "metadata": {...}}``) into chunks, embeds and stores them
        (writing a document id again replaces it). Returns the chunks per document."""
        body: Dict[str, Any] = {"documents": _jsonable(list(documents), "documents")}
        chunking = {k: v for k, v in (("max_tokens", max_tokens), ("overlap_tokens", overlap_tokens)) if v is not None}
        if chunking:
            body["chunking"] = chunking
        return self._post("/documents", body, wait=wait)["documents"]

    def delete_document(self, doc_id: Union[str, int], *, wait: bool = False) -> int:
        """Deletes every chunk of a document."""
        return self._post(f"/documents/{_seg(str(doc_id))}", None, "DELETE", wait)["operation_id"]

    def delete(self, ids: Any = None, *, filter: Optional[Dict] = None, wait: bool = False) -> int:
        return self._post("/points/delete", _selector(ids, filter), wait=wait)["operation_id"]

    def set_payload(
        self, payload: Dict[str, Any], ids: Any = None, *, filter: Optional[Dict] = None,
        key: Optional[str] = None, wait: bool = False,
    ) -> int:
        body = {"payload": _jsonable(payload, "payload"), **_selector(ids, filter)}
        if key is not None:
            body["key"] = key
        return self._post("/points/payload", body, wait=wait)["operation_id"]

    def overwrite_payload(
        self, payload: Dict[str, Any], ids: Any = None, *, filter: Optional[Dict] = None, wait: bool = False
    ) -> int:
        body = {"payload": _jsonable(payload, "payload"), **_selector(ids, filter)}
        return self._post("/points/payload", body, "PUT", wait)["operation_id"]

    def delete_payload(
        self, keys: Sequence[str], ids: Any = None, *, filter: Optional[Dict] = None, wait: bool = False
    ) -> int:
        keys = [keys] if isinstance(keys, str) else list(keys)
        body = {"keys": keys, **_selector(ids, filter)}
        return self._post("/points/payload/delete", body, wait=wait)["operation_id"]

    def clear_payload(self, ids: Any = None, *, filter: Optional[Dict] = None, wait: bool = False) -> int:
        return self._post("/points/payload/clear", _selector(ids, filter), wait=wait)["operation_id"]

    def create_index(
        self, field: str, type: str = "keyword", *, stem: bool = False, stopwords: bool = False, wait: bool = False
    ) -> int:
        schema: Any = type
        if type == "text":
            schema = {"type": "text"}
            if stem:
                schema["stemmer"] = {"type": "snowball", "language": "english"}
            if stopwords:
                schema["stopwords"] = "english"
        elif stem or stopwords:
            raise InvalidArgument(f"invalid stem/stopwords: expected only with type text, got {type!r}")
        return self._post("/index", {"field_name": field, "field_schema": schema}, "PUT", wait)["operation_id"]

    def drop_index(self, field: str, *, wait: bool = False) -> int:
        return self._post(f"/index/{_seg(field)}", None, "DELETE", wait)["operation_id"]

    # --- reads -------------------------------------------------------------------------------------------------

    def text_search(
        self,
        key: str,
        text: str,
        k: int = 10,
        *,
        filter: Optional[Dict] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        score_threshold: Optional[float] = None,
        offset: int = 0,
        min_seq: Optional[int] = None,
    ) -> List[Hit]:
        """As the embedded ``text_search`` (a ``bm25`` query)."""
        body = self._query_body({"bm25": {"key": key, "text": text}}, k, filter, None, with_payload, with_vector,
                                score_threshold, offset, min_seq)
        return [_hit(h) for h in self._post("/points/query", body)["points"]]

    def hybrid_search(
        self,
        key: str,
        text: str,
        k: int = 10,
        *,
        vector: Any = None,
        candidates: int = 50,
        fusion: str = "rrf",
        rrf_k: int = 60,
        weights: Optional[Tuple[float, float]] = None,
        filter: Optional[Dict] = None,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> List[Hit]:
        """As the embedded ``hybrid_search`` (prefetch + fusion); without ``vector`` the server embeds ``text``."""
        if fusion not in ("rrf", "dbsf"):
            raise InvalidArgument(f"invalid fusion: expected rrf or dbsf, got {fusion!r}")
        if vector is None:
            dense: Any = {"text": text}
        else:
            q, batch = query_vector(vector)
            if batch:
                raise InvalidArgument("invalid vector: expected one vector, got a matrix")
            _finite(q)
            dense = q.tolist()
        prefetch = [{"query": {"bm25": {"key": key, "text": text}}, "limit": candidates},
                    {"query": dense, "limit": candidates}]
        if filter is not None:
            f = _jsonable(filter, "filter")
            for p in prefetch:
                p["filter"] = f
        body: Dict[str, Any] = {
            "prefetch": prefetch,
            "query": {"rrf": {"k": rrf_k, **({"weights": list(weights)} if weights else {})}} if fusion == "rrf"
            else {"fusion": "dbsf"},
            "limit": k, "with_payload": with_payload, "with_vector": with_vector,
        }
        return [_hit(h) for h in self._post("/points/query", body)["points"]]

    def _query_body(self, query: Any, k: int, filter, params, with_payload, with_vector, score_threshold,
                    offset, min_seq, explain=False) -> Dict[str, Any]:
        body: Dict[str, Any] = {"limit": k, "with_payload": with_payload, "with_vector": with_vector}
        if isinstance(query, str):
            body["query"] = {"text": query}
        elif is_image(query):
            body["query"] = {"image": base64.b64encode(bytes(query)).decode("ascii")}
        else:
            body["query"] = query
        for name, v in (("filter", _jsonable(filter, "filter") if filter is not None else None), ("params", _params(params)),
                        ("score_threshold", score_threshold), ("min_seq", min_seq)):
            if v is not None:
                body[name] = v
        if offset:
            body["offset"] = offset
        if explain:
            body["explain"] = True
        return body

    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: Optional[Dict] = None,
        params: Optional[Dict[str, Any]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        score_threshold: Optional[float] = None,
        offset: int = 0,
        min_seq: Optional[int] = None,
        threads: Optional[int] = None,
        using: Optional[str] = None,
    ) -> Union[List[Hit], BatchResult]:
        """As the embedded ``search``; a string is a text query and ``bytes`` an image query, embedded by the
        collection's model on the server. A matrix is sent as one batch request (``threads`` is the server's
        business and is ignored)."""
        sq = sparse_query(query)
        if isinstance(query, str) or is_image(query) or sq is not None:
            body = self._query_body(sq or query, k, filter, params, with_payload, with_vector, score_threshold,
                                    offset, min_seq)
            if using is not None:
                body["using"] = using
            return [_hit(h) for h in self._post("/points/query", body)["points"]]
        q, batch = query_vector(query)
        _finite(q)
        if not batch:
            body = self._query_body(q.tolist(), k, filter, params, with_payload, with_vector, score_threshold,
                                    offset, min_seq)
            if using is not None:
                body["using"] = using
            return [_hit(h) for h in self._post("/points/query", body)["points"]]
        if offset or score_threshold is not None or with_vector or min_seq is not None or using is not None:
            raise InvalidArgument(
                "invalid query: a matrix of queries takes k, filter, params and threads only "
                "(search one vector for offset, score_threshold, with_vector or min_seq)"
            )
        searches = [self._query_body(row, k, filter, params, False, False, None, 0, None) for row in q.tolist()]
        results = self._post("/points/query/batch", {"searches": searches})
        n = len(results)
        scores = np.full((n, k), np.nan, dtype=np.float32)
        all_ids = [[h["id"] for h in r["points"]] for r in results]
        numeric = all(isinstance(i, int) and 0 <= i < 2**63 for row in all_ids for i in row)
        ids = np.full((n, k), -1, dtype=np.int64) if numeric else np.full((n, k), None, dtype=object)
        for i, r in enumerate(results):
            for j, h in enumerate(r["points"][:k]):
                scores[i, j] = h["score"]
                ids[i, j] = h["id"]
        return BatchResult(ids, scores)

    def explain(self, query: Any, k: int = 10, *, filter: Optional[Dict] = None,
                params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        if not isinstance(query, str):
            q, batch = query_vector(query)
            if batch:
                raise InvalidArgument("invalid query: explain takes one vector, got a matrix")
            _finite(q)
            query = q.tolist()
        body = self._query_body(query, k, filter, params, False, False, None, 0, None, explain=True)
        return self._post("/points/query", body)["explain"]

    def get(self, ids: Any, *, with_payload: bool = True, with_vector: bool = False):
        single = is_scalar_id(ids)
        idl = [ids] if single else id_list(ids)
        recs = [_record(r) for r in self._post("/points", {"ids": idl, "with_payload": with_payload,
                                                             "with_vector": with_vector})]
        if single:
            return recs[0] if recs else None
        return recs

    def scroll(self, *, filter: Optional[Dict] = None, offset: Optional[PointId] = None, limit: int = 100,
               with_payload: bool = True, with_vector: bool = False) -> ScrollPage:
        body: Dict[str, Any] = {"limit": limit, "with_payload": with_payload, "with_vector": with_vector}
        if filter is not None:
            body["filter"] = _jsonable(filter, "filter")
        if offset is not None:
            body["offset"] = int(offset) if isinstance(offset, np.integer) else offset
        page = self._post("/points/scroll", body)
        return ScrollPage([_record(r) for r in page["points"]], page.get("next_page_offset"))

    def count(self, filter: Optional[Dict] = None) -> int:
        body = {} if filter is None else {"filter": _jsonable(filter, "filter")}
        return int(self._post("/points/count", body)["count"])

    @property
    def applied_seq(self) -> int:
        return int(self.info()["applied_seq"])


__all__ = ["Client", "RemoteCollection"]
