"""Argument handling shared by the embedded engine and the HTTP client, so both accept (and refuse) the same
inputs with the same messages."""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._errors import InvalidArgument

METRICS = ("cosine", "dot", "euclidean")

# Options passed through to the collection config unchanged (the engine checks their values).
CONFIG_OPTIONS = ("durability", "tiering", "optimizer", "max_payload_bytes", "change_feed_bytes")


def collection_config(
    dim: Optional[int],
    metric: str,
    index: Union[None, str, Dict[str, Any]],
    embedding: Union[None, str, Dict[str, Any]],
    options: Dict[str, Any],
) -> Dict[str, Any]:
    """The engine's config dict (``dimension``, ``metric``, ``index``, ...) from ``create_collection``'s
    arguments."""
    cfg: Dict[str, Any] = {}
    if dim is not None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidArgument(f"invalid dim: expected a positive integer, got {dim!r}")
        cfg["dimension"] = int(dim)
    if not isinstance(metric, str) or metric.lower() not in METRICS:
        raise InvalidArgument(f"invalid metric: expected one of cosine, dot, euclidean, got {metric!r}")
    cfg["metric"] = metric.lower()
    if index is not None:
        if isinstance(index, str):
            cfg["index"] = {"kind": index}
        elif isinstance(index, dict):
            cfg["index"] = dict(index)
        else:
            raise InvalidArgument(
                f"invalid index: expected a kind name ('hnsw') or a dict "
                f"{{'kind': 'hnsw', 'params': {{...}}}}, got {type(index).__name__}"
            )
    if embedding is not None:
        if isinstance(embedding, str):
            cfg["embedding"] = {"model": embedding}
        elif isinstance(embedding, dict):
            cfg["embedding"] = dict(embedding)
        else:
            raise InvalidArgument(
                f"invalid embedding: expected a model name or {{'model': name}}, got {type(embedding).__name__}"
            )
    for k, v in options.items():
        cfg[k] = v
    return cfg


def named_spaces(vectors: Any, metric: str) -> List[Tuple[str, int, str]]:
    """``vectors={"title": 384, "body": {"dim": 768, "metric": "dot"}}`` as ``(name, dim, metric)`` in name
    order (the engine's order: the first is the collection's first vector)."""
    if not isinstance(vectors, dict) or not vectors:
        raise InvalidArgument(f"invalid vectors: expected a dict of named vectors {{name: dim}}, got {vectors!r}")
    out = []
    for name in sorted(vectors):
        v = vectors[name]
        spec = {"dim": v} if not isinstance(v, dict) else dict(v)
        unknown = set(spec) - {"dim", "metric"}
        if unknown:
            raise InvalidArgument(f"invalid vectors.{name}: expected dim and metric, got {sorted(unknown)}")
        dim, m = spec.get("dim"), spec.get("metric", metric)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidArgument(f"invalid vectors.{name}.dim: expected a positive integer, got {dim!r}")
        if not isinstance(m, str) or m.lower() not in METRICS:
            raise InvalidArgument(f"invalid vectors.{name}.metric: expected one of cosine, dot, euclidean, got {m!r}")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"invalid vectors: expected non-empty names, got {name!r}")
        out.append((name, int(dim), m.lower()))
    return out


def sparse_names(sparse_vectors: Any) -> List[str]:
    """``sparse_vectors=["terms"]`` (or a dict by name) as the list of names."""
    names = list(sparse_vectors) if isinstance(sparse_vectors, (list, tuple, dict)) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidArgument(f"invalid sparse_vectors: expected a list of names, got {sparse_vectors!r}")
    return names


def named_inputs(
    single: bool, n: int, vectors: Any, sparse: Any, payloads: Any, texts: Any, images: Any
) -> Tuple[Dict[str, np.ndarray], Dict[str, List[Any]], Optional[List[Any]]]:
    """An upsert's named vectors (name → n×dim matrix), sparse vectors (name → n entries) and payloads, checked."""
    if texts is not None or images is not None:
        raise InvalidArgument("invalid vectors: expected named or sparse vectors, or texts, or images")
    named = {str(k): matrix(v if not single else [v], f"vectors.{k}") for k, v in (vectors or {}).items()}
    sp = {str(k): ([v] if single else list(v)) for k, v in (sparse or {}).items()}
    pl = payload_list([payloads] if single and isinstance(payloads, dict) else payloads, n)
    return named, sp, pl


def sparse_query(query: Any) -> Optional[Dict[str, List[Any]]]:
    """A sparse query (``{"indices": [...], "values": [...]}``) as a JSON-able dict; None when ``query`` is not
    one."""
    if isinstance(query, dict) and set(query) == {"indices", "values"}:
        return {"indices": [int(i) for i in query["indices"]], "values": [float(v) for v in query["values"]]}
    return None


def is_scalar_id(ids: Any) -> bool:
    return isinstance(ids, (str, int, np.integer)) and not isinstance(ids, bool)


def id_list(ids: Any, field: str = "ids") -> List[Any]:
    """Ids as a list of Python ints and strings (numpy integer arrays included)."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise InvalidArgument(f"invalid {field}: expected a 1-D array of ids, got a {ids.ndim}-D array")
        if ids.dtype.kind in "iu":
            return ids.tolist()
        return list(ids)
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidArgument(f"invalid {field}: expected a list of ids, got {type(ids).__name__}")
    out = []
    for x in ids:
        out.append(int(x) if isinstance(x, np.integer) else x)
    return out


def matrix(vectors: Any, field: str = "vectors") -> np.ndarray:
    """A C-contiguous float32 matrix (no copy when it already is one); a 1-D vector becomes one row."""
    try:
        a = np.asarray(vectors)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"invalid {field}: expected a 2-D array of numbers, got {e}") from None
    if a.dtype == object or a.dtype.kind not in "fiub":
        raise InvalidArgument(f"invalid {field}: expected numbers, got an array of {a.dtype}")
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise InvalidArgument(f"invalid {field}: expected a 2-D array (one row per point), got {a.ndim}-D")
    return np.ascontiguousarray(a, dtype=np.float32)


def query_vector(v: Any) -> Tuple[np.ndarray, bool]:
    """The query as float32: ``(array, is_batch)``."""
    try:
        a = np.asarray(v)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"invalid query: expected a vector or a matrix of numbers, got {e}") from None
    if a.dtype == object or a.dtype.kind not in "fiub":
        raise InvalidArgument(f"invalid query: expected numbers, got an array of {a.dtype}")
    if a.ndim not in (1, 2):
        raise InvalidArgument(f"invalid query: expected a vector or a matrix, got a {a.ndim}-D array")
    return np.ascontiguousarray(a, dtype=np.float32), a.ndim == 2


def image_list(images: Any) -> List[bytes]:
    """Images as a list of bytes (each an encoded JPEG, PNG, WebP, GIF or BMP file)."""
    if isinstance(images, (bytes, bytearray, memoryview)):
        raise InvalidArgument("invalid images: expected a list of images (one bytes object per id), got one bytes")
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"invalid images[{i}]: expected the bytes of an image file, got {type(im).__name__}")
        out.append(bytes(im))
    return out


def one_input(vectors: Any, texts: Any, images: Any) -> str:
    """Which of ``vectors``, ``texts`` and ``images`` an upsert was given; exactly one must be."""
    given = [k for k, v in (("vectors", vectors), ("texts", texts), ("images", images)) if v is not None]
    if len(given) != 1:
        raise InvalidArgument("invalid vectors: expected vectors, texts or images (one of them), got "
                              + (" and ".join(given) if given else "neither"))
    return given[0]


def is_image(query: Any) -> bool:
    """A query given as an image file's bytes."""
    return isinstance(query, (bytes, bytearray, memoryview))


def payload_list(payloads: Optional[Sequence[Any]], n: int) -> Optional[List[Any]]:
    if payloads is None:
        return None
    if isinstance(payloads, dict):
        raise InvalidArgument("invalid payloads: expected a list of dicts (one per id), got one dict")
    out = list(payloads)
    if len(out) != n:
        raise InvalidArgument(f"invalid payloads: expected {n} payloads (one per id), got {len(out)}")
    return out


def check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"invalid batch_size: expected a positive integer, got {batch_size!r}")


def chunks(n: int, size: int) -> Iterator[Tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


class CollectionBase:
    """What both collection classes (embedded and remote) derive the same way from their ``scroll`` and
    ``count``."""

    def __len__(self) -> int:
        return self.count()  # type: ignore[attr-defined]

    def iter_points(
        self, *, filter: Optional[Dict] = None, page_size: int = 1000, with_payload: bool = True,
        with_vector: bool = False,
    ) -> Iterator[Any]:
        """Every point the filter admits, in id order, a page at a time."""
        offset = None
        while True:
            page = self.scroll(  # type: ignore[attr-defined]
                filter=filter, offset=offset, limit=page_size, with_payload=with_payload, with_vector=with_vector
            )
            yield from page.points
            if page.next_offset is None:
                return
            offset = page.next_offset


class Progress:
    """A progress bar on stderr for long ingests (``progress=True``); tqdm's when it is installed."""

    def __init__(self, total: int, enabled: bool, what: str = "points") -> None:
        self.total, self.done, self.enabled, self.what = total, 0, enabled, what
        self.start = time.monotonic()
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm  # type: ignore[import-not-found]

                self._bar = tqdm(total=total, unit=" " + what)
            except ImportError:
                pass

    def update(self, k: int) -> None:
        if not self.enabled:
            return
        self.done += k
        if self._bar is not None:
            self._bar.update(k)
            return
        el = time.monotonic() - self.start
        rate = self.done / el if el > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(1, self.total))
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.what} ({rate:,.0f}/s)"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()
