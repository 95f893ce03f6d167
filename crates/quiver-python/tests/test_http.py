"""What only the HTTP client does: API keys, text and documents embedded by the server's model, errors from
the server's status codes."""

from __future__ import annotations


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


