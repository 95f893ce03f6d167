"""Type stubs of the compiled module (crates/quiver-python/src). Use the public API in `quiverdb` instead."""

from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

MAX_LIMIT: int

def search_param_names() -> List[str]: ...
def build_info() -> Dict[str, str]: ...

_Id = Union[int, str]
_RecordTuple = Tuple[_Id, Optional[Dict[str, Any]], Optional[npt.NDArray[np.float32]]]
_HitTuple = Tuple[_Id, float, Optional[Dict[str, Any]], Optional[npt.NDArray[np.float32]]]

class Database:
    def __init__(self, path: Union[str, PathLike[str]], models_dir: Optional[str] = None) -> None: ...
    def model_dim(self, name: str) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def create_collection(self, name: str, config: Dict[str, Any]) -> Collection: ...
    def collection(self, name: str) -> Collection: ...
    def list_collections(self) -> List[Dict[str, Any]]: ...
    def drop_collection(self, name: str) -> None: ...
    def close(self) -> None: ...
    def create_snapshot(self, collection: str) -> Dict[str, Any]: ...
    def list_snapshots(self, collection: str) -> List[Dict[str, Any]]: ...
    def snapshot_path(self, collection: str, name: str) -> str: ...
    def delete_snapshot(self, collection: str, name: str) -> None: ...
    def restore_snapshot(self, collection: str, path: Union[str, PathLike[str]]) -> Collection: ...

class Collection:
    @property
    def name(self) -> str: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def dimension(self) -> int: ...
    @property
    def applied_seq(self) -> int: ...
    def upsert(
        self,
        ids: Sequence[_Id],
        vectors: npt.NDArray[np.float32],
        payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
        ttl: Optional[int] = None,
    ) -> int: ...
    def upsert_named(
        self,
        ids: Sequence[_Id],
        named: Dict[str, npt.NDArray[np.float32]],
        sparse: Dict[str, Sequence[Any]],
        payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
        ttl: Optional[int] = None,
    ) -> int: ...
    def search(
        self,
        vector: Optional[npt.NDArray[np.float32]],
        k: int = 10,
        *,
        offset: int = 0,
        filter: Optional[Dict[str, Any]] = None,
        params: Optional[Dict[str, Any]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        score_threshold: Optional[float] = None,
        min_seq: Optional[int] = None,
        explain: bool = False,
        using: Optional[str] = None,
        sparse: Optional[Dict[str, Any]] = None,
    ) -> Tuple[List[_HitTuple], Optional[Dict[str, Any]]]: ...
    def search_batch(
        self,
        queries: npt.NDArray[np.float32],
        k: int = 10,
        *,
        filter: Optional[Dict[str, Any]] = None,
        params: Optional[Dict[str, Any]] = None,
        threads: Optional[int] = None,
    ) -> Tuple[Union[npt.NDArray[np.int64], List[List[Optional[_Id]]]], npt.NDArray[np.float32]]: ...
    def get(self, ids: Sequence[_Id], *, with_payload: bool = True, with_vector: bool = False) -> List[_RecordTuple]: ...
    def delete(self, ids: Optional[Sequence[_Id]] = None, *, filter: Optional[Dict[str, Any]] = None) -> int: ...
    def scroll(
        self,
        *,
        filter: Optional[Dict[str, Any]] = None,
        offset: Optional[_Id] = None,
        limit: int = 100,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Tuple[List[_RecordTuple], Optional[_Id]]: ...
    def count(self, filter: Optional[Dict[str, Any]] = None) -> int: ...
    def set_payload(
        self,
        payload: Dict[str, Any],
        ids: Optional[Sequence[_Id]] = None,
        *,
        filter: Optional[Dict[str, Any]] = None,
        key: Optional[str] = None,
    ) -> int: ...
    def overwrite_payload(
        self, payload: Dict[str, Any], ids: Optional[Sequence[_Id]] = None, *, filter: Optional[Dict[str, Any]] = None
    ) -> int: ...
    def delete_payload(
        self, keys: List[str], ids: Optional[Sequence[_Id]] = None, *, filter: Optional[Dict[str, Any]] = None
    ) -> int: ...
    def clear_payload(self, ids: Optional[Sequence[_Id]] = None, *, filter: Optional[Dict[str, Any]] = None) -> int: ...
    def create_index(self, field: str, field_type: str, *, stem: bool = False, stopwords: bool = False) -> int: ...
    def hybrid_search(
        self,
        key: str,
        text: str,
        vector: npt.NDArray[np.float32],
        k: int = 10,
        *,
        candidates: int = 50,
        fusion: str = "rrf",
        rrf_k: int = 60,
        weights: Optional[Tuple[float, float]] = None,
        filter: Optional[Dict[str, Any]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> List[_HitTuple]: ...
    def text_search(
        self,
        key: str,
        text: str,
        k: int = 10,
        *,
        offset: int = 0,
        filter: Optional[Dict[str, Any]] = None,
        with_payload: bool = True,
        with_vector: bool = False,
        score_threshold: Optional[float] = None,
        min_seq: Optional[int] = None,
    ) -> List[_HitTuple]: ...
    def drop_index(self, field: str) -> int: ...
    def info(self) -> Dict[str, Any]: ...
    def optimize(self) -> int: ...
    def calibrate(self) -> int: ...
    def embed(self, texts: List[str]) -> np.ndarray: ...
    def embed_images(self, images: List[bytes]) -> np.ndarray: ...
    def add_documents(
        self, documents: List[Tuple[str, str, Optional[Dict[str, Any]]]], max_tokens: Optional[int] = None,
        overlap_tokens: Optional[int] = None,
    ) -> Tuple[int, List[Tuple[str, int]]]: ...
    def delete_document(self, doc_id: str) -> int: ...
    def flush(self) -> None: ...
    def wait_for(self, seq: int, timeout: float = 10.0) -> None: ...
