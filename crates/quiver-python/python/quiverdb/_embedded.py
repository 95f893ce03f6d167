"""The embedded engine: a data directory opened in this process (``quiverdb.open(path)``)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
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
from ._errors import InvalidArgument
from ._types import BatchResult, Hit, PointId, Record, ScrollPage, Snapshot



class Collection(CollectionBase):
    """A collection of an embedded :class:`Database`. Safe to use from many threads at once."""

    def __init__(self, native: "_native.Collection") -> None:
        self._c = native

    # --- facts -------------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection's name."""
        return self._c.name

    @property
    def dimension(self) -> int:
        """The vector length."""
        return self._c.dimension

    @property
    def config(self) -> Dict[str, Any]:
        """The collection's configuration (dimension, metric, index, durability, ...)."""
        return self._c.config

    def info(self) -> Dict[str, Any]:
        """Points, segments, indexes, memory and disk use, optimizer state."""
        return self._c.info()

    def __repr__(self) -> str:
        return f"quiverdb.Collection({self.name!r}, dimension={self.dimension})"

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
        batch_size: int = 10_000,
        progress: bool = False,
        wait: bool = False,
        sparse: Optional[Dict[str, Sequence[Any]]] = None,
    ) -> int:
        """Inserts or replaces points; returns the last operation's sequence number.

        ``vectors`` is an n×dim array (float32 C-contiguous arrays are read without a conversion copy); one id
        with a 1-D vector upserts one point. Or ``texts`` (one string per id) for a collection created with an
        ``embedding`` model: each is embedded in this process and kept in its payload under ``"text"``. Or
        ``images`` (one image file's bytes per id: JPEG, PNG, WebP, GIF or BMP) for a collection created with an
        image model (``embedding="efficientnet-lite0"``).
        ``payloads``: one dict (or None) per id. ``ttl``: seconds until the points expire. Large inputs are
        written ``batch_size`` rows per operation (each one atomic); ``progress=True`` shows a progress bar.

        Named vectors: ``vectors={"title": matrix, "body": matrix}`` (one row per id each). Sparse vectors:
        ``sparse={"terms": [{"indices": [...], "values": [...]}, None, ...]}`` (one per id; None: none)."""
        single = is_scalar_id(ids)
        idl = [ids] if single else id_list(ids)
        if isinstance(vectors, dict) or sparse is not None:
            named, sp, pl = named_inputs(single, len(idl), vectors, sparse, payloads, texts, images)
            check_batch_size(batch_size)
            seq = self._c.applied_seq
            for a, b in chunks(len(idl), batch_size):
                seq = self._c.upsert_named(
                    idl[a:b],
                    {k: np.ascontiguousarray(m[a:b]) for k, m in named.items()},
                    {k: v[a:b] for k, v in sp.items()},
                    None if pl is None else pl[a:b],
                    ttl,
                )
            return self._done(seq, wait)
        if single and payloads is not None and isinstance(payloads, dict):
            payloads = [payloads]
        if single and isinstance(texts, str):
            texts = [texts]
        if single and is_image(images):
            images = [images]  # type: ignore[list-item]
        kind = one_input(vectors, texts, images)
        m = matrix(vectors) if vectors is not None else None
        tl = _text_list(texts) if texts is not None else None
        il = image_list(images) if images is not None else None
        n = m.shape[0] if m is not None else len(tl if tl is not None else il)  # type: ignore[arg-type]
        if n != len(idl):
            what = kind if m is None else "rows"
            raise InvalidArgument(f"invalid {kind}: expected {len(idl)} {what} (one per id), got {n} {what}")
        pl = payload_list(payloads, len(idl))
        check_batch_size(batch_size)
        bar = Progress(len(idl), progress)
        seq = self._c.applied_seq
        try:
            for a, b in chunks(len(idl), batch_size):
                part = None if pl is None else pl[a:b]
                if il is not None:
                    rows = self._c.embed_images(il[a:b])
                elif tl is None:
                    rows = m[a:b]  # type: ignore[index]
                else:
                    rows = self._c.embed(tl[a:b])
                    part = [dict(p or {}, text=t) for p, t in zip(part or [None] * (b - a), tl[a:b])]
                seq = self._c.upsert(idl[a:b], rows, part, ttl)
                bar.update(b - a)
        finally:
            bar.close()
        return self._done(seq, wait)

    def add_documents(
        self,
        documents: Sequence[Dict[str, Any]],
        *,
        max_tokens: Optional[int] = None,
        overlap_tokens: Optional[int] = None,
        wait: bool = False,
    ) -> List[Dict[str, Any]]:
        """Splits documents (``{"id": ..., "text": ..., "metadata": {...}}``) into chunks of at most
        ``max_tokens`` tokens (default 200, ``overlap_tokens`` repeated, default 32), embeds them with the
        collection's model and stores each chunk as a point (payload: the metadata plus ``doc_id``,
        ``chunk_index``, ``chunk_count``, ``text``). Writing a document id again replaces its chunks. Returns
        ``[{"id": ..., "chunks": n}, ...]``, as the server does."""
        docs = []
        for i, d in enumerate(documents):
            if not isinstance(d, dict):
                raise InvalidArgument(f"invalid documents[{i}]: expected a dict with id and text, got {type(d).__name__}")
            extra = set(d) - {"id", "text", "metadata"}
            if extra:
                raise InvalidArgument(f"invalid documents[{i}]: expected the keys id, text, metadata, got {sorted(extra)}")
            doc_id = d.get("id")
            if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or (isinstance(doc_id, int) and doc_id < 0):
                raise InvalidArgument(f"invalid documents[{i}].id: expected a string or an unsigned integer, got {doc_id!r}")
            text = d.get("text")
            if not isinstance(text, str):
                raise InvalidArgument(f"invalid documents[{i}].text: expected a string, got {type(text).__name__}")
            docs.append((str(doc_id), text, d.get("metadata")))
        seq, counts = self._c.add_documents(docs, max_tokens, overlap_tokens)
        self._done(seq, wait)
        return [{"id": i, "chunks": n} for i, n in counts]

    def delete_document(self, doc_id: Union[str, int], *, wait: bool = False) -> int:
        """Deletes every chunk of a document; returns the operation's sequence number."""
        return self._done(self._c.delete_document(str(doc_id)), wait)

    def _done(self, seq: int, wait: bool) -> int:
        if wait:
            self._c.flush()
        return seq

    def delete(
        self, ids: Optional[Union[PointId, Sequence[PointId]]] = None, *, filter: Optional[Dict] = None,
        wait: bool = False,
    ) -> int:
        """Deletes points by ids or by filter (exactly one); returns the operation's sequence number.
        ``wait=True`` (every write takes it): durable when this returns, whatever the durability setting."""
        return self._done(self._c.delete(_ids_or_none(ids), filter=filter), wait)

    def set_payload(
        self,
        payload: Dict[str, Any],
        ids: Optional[Sequence[PointId]] = None,
        *,
        filter: Optional[Dict] = None,
        key: Optional[str] = None,
        wait: bool = False,
    ) -> int:
        """Merges ``payload`` into the points' payloads (under the dotted ``key`` when given)."""
        return self._done(self._c.set_payload(payload, _ids_or_none(ids), filter=filter, key=key), wait)

    def overwrite_payload(
        self, payload: Dict[str, Any], ids: Optional[Sequence[PointId]] = None, *, filter: Optional[Dict] = None,
        wait: bool = False,
    ) -> int:
        """Replaces the points' payloads with ``payload``."""
        return self._done(self._c.overwrite_payload(payload, _ids_or_none(ids), filter=filter), wait)

    def delete_payload(
        self, keys: Sequence[str], ids: Optional[Sequence[PointId]] = None, *, filter: Optional[Dict] = None,
        wait: bool = False,
    ) -> int:
        """Removes these (dotted) keys from the points' payloads."""
        if isinstance(keys, str):
            keys = [keys]
        return self._done(self._c.delete_payload(list(keys), _ids_or_none(ids), filter=filter), wait)

    def clear_payload(
        self, ids: Optional[Sequence[PointId]] = None, *, filter: Optional[Dict] = None, wait: bool = False
    ) -> int:
        """Empties the points' payloads."""
        return self._done(self._c.clear_payload(_ids_or_none(ids), filter=filter), wait)

    def create_index(
        self, field: str, type: str = "keyword", *, stem: bool = False, stopwords: bool = False, wait: bool = False
    ) -> int:
        """Indexes a payload field (``keyword``, ``integer``, ``float``, ``bool``, ``datetime``, ``text``) for
        fast filters. A ``text`` index splits strings into lower-case words, optionally English-``stem``\ med and
        without English ``stopwords``; it answers ``match: {"text": ...}`` (every word) and :meth:`text_search`."""
        return self._done(self._c.create_index(field, type, stem=stem, stopwords=stopwords), wait)

    def drop_index(self, field: str, *, wait: bool = False) -> int:
        """Drops a payload field's index."""
        return self._done(self._c.drop_index(field), wait)

    def optimize(self) -> int:
        """Seals the growing segment and runs the optimizer until nothing is left to do (every point in an indexed
        segment, small segments merged), with the GIL released; returns the jobs run. The background optimizer
        gets there by itself over time; call this before timing searches or after a bulk load."""
        return self._c.optimize()

    def calibrate(self) -> int:
        """Measures each indexed segment's recall at every search width now, on the recent queries (at least 50
        recorded since a target was first asked for), for searches with ``params={"target_recall": 0.95}`` or a
        collection created with ``target_recall=``; returns the calibrations made. The background optimizer does
        this by itself; ``info()["segments"][i]["recall"]`` and ``info()["estimated_recall"]`` report it."""
        return self._c.calibrate()

    def flush(self) -> None:
        """Makes every applied write durable (a WAL fsync), whatever the durability setting."""
        self._c.flush()

    # --- reads -------------------------------------------------------------------------------------------------

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
        """The ``k`` nearest points to ``query``.

        A vector gives a list of :class:`Hit` (best first). A matrix (one query per row) gives a
        :class:`BatchResult` of numpy arrays, searched on ``threads`` threads (default: all cores).
        ``filter`` is a Qdrant-shaped filter (``{"must": [{"key": "tag", "match": {"value": "a"}}]}``);
        ``params`` are index settings (``ef``, ``nprobe``, ``rerank``, ``exact``, ...). A string is a text
        query, embedded by the collection's model; ``bytes`` an image query (an image file), embedded by the
        collection's image model. ``using`` names the vector searched (named or sparse vectors); a sparse query is
        ``{"indices": [...], "values": [...]}``."""
        sq = sparse_query(query)
        if sq is not None:
            hits, _ = self._c.search(None, k, offset=offset, filter=filter, params=params, with_payload=with_payload,
                                     with_vector=with_vector, score_threshold=score_threshold, min_seq=min_seq,
                                     using=using, sparse=sq)
            return [Hit(*h) for h in hits]
        if isinstance(query, str):
            query = self._c.embed([query])[0]
        elif is_image(query):
            query = self._c.embed_images([bytes(query)])[0]
        q, batch = query_vector(query)
        if batch:
            if offset or score_threshold is not None or with_vector or min_seq is not None or using is not None:
                raise InvalidArgument(
                    "invalid query: a matrix of queries takes k, filter, params and threads only "
                    "(search one vector for offset, score_threshold, with_vector, min_seq or using)"
                )
            ids, scores = self._c.search_batch(q, k, filter=filter, params=params, threads=threads)
            if isinstance(ids, list):
                arr = np.empty((len(ids), k), dtype=object)
                for i, row in enumerate(ids):
                    arr[i, :] = row
                ids = arr
            return BatchResult(ids, scores)
        hits, _ = self._c.search(
            q,
            k,
            offset=offset,
            filter=filter,
            params=params,
            with_payload=with_payload,
            with_vector=with_vector,
            score_threshold=score_threshold,
            min_seq=min_seq,
            using=using,
        )
        return [Hit(*h) for h in hits]

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
        """The ``k`` best BM25 matches of ``text`` in payload key ``key``, which needs a ``text`` index (best
        first; scores use the whole collection's word statistics, whatever the filter)."""
        hits = self._c.text_search(
            key,
            text,
            k,
            offset=offset,
            filter=filter,
            with_payload=with_payload,
            with_vector=with_vector,
            score_threshold=score_threshold,
            min_seq=min_seq,
        )
        return [Hit(*h) for h in hits]

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
        """Keywords and meaning together: the ``candidates`` best BM25 matches of ``text`` in the text-indexed
        payload key ``key`` and the ``candidates`` nearest points to ``vector`` (by default ``text`` embedded by
        the collection's model), fused by ``fusion`` (``"rrf"`` with constant ``rrf_k``, or ``"dbsf"``); the
        ``k`` best, best first. ``weights`` = (keywords, vector) scales each list's share (default equal). A small
        ``rrf_k`` (1-5), ``"dbsf"`` or a larger weight for the stronger list suits a pair where one list is much
        stronger (see docs/benchmarks.md, hybrid retrieval)."""
        if vector is None:
            vector = self._c.embed([text])[0]
        q, batch = query_vector(vector)
        if batch:
            raise InvalidArgument("invalid vector: expected one vector, got a matrix")
        hits = self._c.hybrid_search(
            key, text, q, k, candidates=candidates, fusion=fusion, rrf_k=rrf_k, weights=weights, filter=filter,
            with_payload=with_payload, with_vector=with_vector,
        )
        return [Hit(*h) for h in hits]

    def explain(
        self, query: Any, k: int = 10, *, filter: Optional[Dict] = None, params: Optional[Dict[str, Any]] = None
    ) -> Dict[str, Any]:
        """How a search would be answered: per segment, exact scan or index, estimated and real filter counts."""
        if isinstance(query, str):
            query = self._c.embed([query])[0]
        q, batch = query_vector(query)
        if batch:
            raise InvalidArgument("invalid query: explain takes one vector, got a matrix")
        _, plan = self._c.search(q, k, filter=filter, params=params, with_payload=False, explain=True)
        return plan

    def get(
        self, ids: Union[PointId, Sequence[PointId]], *, with_payload: bool = True, with_vector: bool = False
    ) -> Union[List[Record], Optional[Record]]:
        """The points with these ids that exist, in the order asked. One id gives a :class:`Record` or None."""
        single = is_scalar_id(ids)
        recs = self._c.get([ids] if single else id_list(ids), with_payload=with_payload, with_vector=with_vector)
        out = [Record(*r) for r in recs]
        if single:
            return out[0] if out else None
        return out

    def scroll(
        self,
        *,
        filter: Optional[Dict] = None,
        offset: Optional[PointId] = None,
        limit: int = 100,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> ScrollPage:
        """One page of points in id order, from ``offset`` (inclusive)."""
        points, nxt = self._c.scroll(
            filter=filter, offset=offset, limit=limit, with_payload=with_payload, with_vector=with_vector
        )
        return ScrollPage([Record(*r) for r in points], nxt)

    def count(self, filter: Optional[Dict] = None) -> int:
        """How many points the filter admits (all points without one)."""
        return self._c.count(filter)

    @property
    def applied_seq(self) -> int:
        """The highest applied operation's sequence number."""
        return self._c.applied_seq

    def wait_for(self, seq: int, timeout: float = 10.0) -> None:
        """Waits until operation ``seq`` is applied."""
        self._c.wait_for(seq, timeout)


def _text_list(texts: Any) -> List[str]:
    if isinstance(texts, (str, bytes)):
        raise InvalidArgument("invalid texts: expected a list of strings (one per id), got a single string")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidArgument(f"invalid texts[{i}]: expected a string, got {type(t).__name__}")
    return out


def _ids_or_none(ids: Any) -> Optional[List[Any]]:
    if ids is None:
        return None
    if is_scalar_id(ids):
        return [ids]
    return id_list(ids)


class Database:
    """A data directory opened by this process. Use it in a ``with`` block, or call :meth:`close`.

    Only one process may open a directory at a time (``Locked`` otherwise); within a process, share one
    ``Database`` among threads."""

    def __init__(self, path: Union[str, os.PathLike], *, models_dir: Optional[Union[str, os.PathLike]] = None) -> None:
        self._db = _native.Database(os.fspath(path), None if models_dir is None else os.fspath(models_dir))

    @property
    def path(self) -> str:
        return str(self._db.path)

    @property
    def closed(self) -> bool:
        return self._db.closed

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"quiverdb.Database({self.path!r}{', closed' if self.closed else ''})"

    def close(self) -> None:
        """Syncs and closes every collection and releases the directory (closing twice is harmless)."""
        self._db.close()

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
    ) -> Collection:
        """Creates a collection of ``dim``-dimensional vectors.

        ``metric``: ``cosine`` (default), ``dot`` or ``euclidean``. ``index``: a kind (``"hnsw"`` — the default
        —, ``"ivf"``, ``"kd-tree"``, ``"lsh"``, ``"kd-lsh"``, ``"flat"``) or ``{"kind": ..., "params": {...}}``
        (e.g. ``{"kind": "hnsw", "params": {"m": 16, "quantization": "sq8"}}``). ``embedding``: a model name
        (``"all-MiniLM-L6-v2"``): the collection then takes texts, and ``dim`` may be left out. Other options:
        ``durability``, ``tiering``, ``optimizer``, ``max_payload_bytes``, ``change_feed_bytes``, ``target_recall``
        (the recall@10 searches aim for when they name no ``ef``).

        Named vectors: ``vectors={"title": 384, "body": {"dim": 768, "metric": "dot"}}`` instead of ``dim`` (each
        searched by name: ``search(q, using="title")``). Sparse vectors: ``sparse_vectors=["terms"]``."""
        cfg = collection_config(dim, metric, index, embedding, options)
        if vectors is not None:
            if dim is not None or embedding is not None:
                raise InvalidArgument("invalid vectors: expected dim and embedding to be left out with named vectors")
            spaces = named_spaces(vectors, metric)
            (first, d0, m0), rest = spaces[0], spaces[1:]
            cfg.update(dimension=d0, metric=m0, vector_name=first)
            if rest:
                cfg["more_vectors"] = {n: {"dimension": d, "metric": m, **({"index": cfg["index"]} if "index" in cfg else {})}
                                       for n, d, m in rest}
        if sparse_vectors is not None:
            cfg["sparse_vectors"] = {n: {} for n in sparse_names(sparse_vectors)}
        if "embedding" in cfg:
            model = cfg["embedding"].get("model")
            if not isinstance(model, str):
                raise InvalidArgument(f"invalid embedding.model: expected a model name, got {model!r}")
            model_dim = self._db.model_dim(model)
            if cfg.setdefault("dimension", model_dim) != model_dim:
                raise InvalidArgument(f"invalid dim: expected {model_dim} (the embedding model {model}'s), "
                                      f"got {cfg['dimension']}")
        if "dimension" not in cfg:
            raise InvalidArgument("invalid dim: expected the vector length (a positive integer), got None")
        return Collection(self._db.create_collection(name, cfg))

    def collection(self, name: str) -> Collection:
        """An existing collection (``NotFound`` if there is none)."""
        return Collection(self._db.collection(name))

    get_collection = collection

    def has_collection(self, name: str) -> bool:
        return name in self.list_collections()

    def list_collections(self) -> List[str]:
        """The collections' names, sorted."""
        return [c["name"] for c in self._db.list_collections()]

    def drop_collection(self, name: str) -> None:
        """Deletes a collection and its files."""
        self._db.drop_collection(name)

    # --- snapshots ---------------------------------------------------------------------------------------------

    def create_snapshot(self, collection: str) -> Snapshot:
        """Writes a consistent archive of the collection (under the data directory)."""
        return _snapshot(self._db.create_snapshot(collection))

    def list_snapshots(self, collection: str) -> List[Snapshot]:
        return [_snapshot(s) for s in self._db.list_snapshots(collection)]

    def snapshot_path(self, collection: str, name: str) -> str:
        """The archive's file (copy it to back up the collection)."""
        return str(self._db.snapshot_path(collection, name))

    def delete_snapshot(self, collection: str, name: str) -> None:
        self._db.delete_snapshot(collection, name)

    def restore_snapshot(self, collection: str, snapshot: Union[str, os.PathLike]) -> Collection:
        """Replaces (or creates) ``collection`` from a snapshot: one of its own (by name) or an archive file
        (a path). A damaged archive raises ``Corrupt`` and leaves the collection as it was."""
        path = os.fspath(snapshot)
        if os.sep not in path and not os.path.exists(path):
            path = self.snapshot_path(collection, path)
        return Collection(self._db.restore_snapshot(collection, path))


def _snapshot(d: Dict[str, Any]) -> Snapshot:
    return Snapshot(d["name"], int(d["size_bytes"]), int(d["created_unix_ms"]))


def open(  # noqa: A001 - the natural name
    path: Union[str, os.PathLike] = "./quiver-data", *, models_dir: Optional[Union[str, os.PathLike]] = None
) -> Database:
    """Opens (creating if needed) the data directory at ``path``. Collections created with an ``embedding``
    model take text; the model is looked up in ``models_dir/<name>`` (one sentence-transformers directory per
    model), then where ``quiver embed`` finds the default all-MiniLM-L6-v2 (``QUIVER_MODEL_DIR``,
    ``~/.cache/quiver-models``, the Hugging Face cache), and loaded on first use."""
    return Database(path, models_dir=models_dir)
