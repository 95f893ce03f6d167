"""The values QuiverDB returns. Tuples with names: cheap to build, unpack like tuples, print readably."""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Union

import numpy as np

PointId = Union[int, str]
"""A point id: an unsigned 64-bit integer or a UUID string."""

Payload = Dict[str, Any]
"""A point's metadata: a JSON object."""


class Hit(NamedTuple):
    """One search result. ``score``: cosine similarity or inner product (higher is closer), or Euclidean
    distance (lower is closer), by the collection's metric."""

    id: PointId
    score: float
    payload: Optional[Payload] = None
    vector: Optional[np.ndarray] = None


class Record(NamedTuple):
    """A stored point. ``vector`` is as stored (normalised under cosine) when asked for."""

    id: PointId
    payload: Optional[Payload] = None
    vector: Optional[np.ndarray] = None


class ScrollPage(NamedTuple):
    """One page of a scroll; pass ``next_offset`` as ``offset`` for the next page (``None`` at the end)."""

    points: List[Record]
    next_offset: Optional[PointId]


class BatchResult(NamedTuple):
    """The answer to a matrix of queries: ``ids`` (n×k, int64, -1 past the last hit; an object array when some
    id is a UUID) and ``scores`` (n×k, float32, NaN past the last hit)."""

    ids: np.ndarray
    scores: np.ndarray


class Snapshot(NamedTuple):
    """A snapshot archive of a collection."""

    name: str
    size_bytes: int
    created_unix_ms: int


__all__ = ["PointId", "Payload", "Hit", "Record", "ScrollPage", "BatchResult", "Snapshot"]
