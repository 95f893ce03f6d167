"""QuiverDB for Python: an embedded vector database, and a client for ``quiver serve``.

    import numpy as np, quiverdb

    with quiverdb.open("./data") as db:                      # or: quiverdb.Client("http://127.0.0.1:6333")
        col = db.create_collection("docs", dim=384)
        col.upsert([1, 2], np.random.rand(2, 384).astype("float32"), [{"tag": "a"}, {"tag": "b"}])
        hits = col.search(np.random.rand(384), k=5, filter={"must": [{"key": "tag", "match": {"value": "a"}}]})

See docs/python.md for the walk-through.
"""

from ._client import Client, RemoteCollection
from ._embedded import Collection, Database, open
from . import _errors
from ._errors import *  # noqa: F403 - the exception classes, listed in _errors.__all__
from ._types import BatchResult, Hit, Record, ScrollPage, Snapshot

__version__ = "0.1.0"

__all__ = [
    "open",
    "Database",
    "Collection",
    "Client",
    "RemoteCollection",
    "Hit",
    "Record",
    "ScrollPage",
    "BatchResult",
    "Snapshot",
] + _errors.__all__
