//! `quiverdb._native`: the embedded engine for Python. Thin on purpose — argument checks that need Python live
//! in `quiverdb/_embedded.py`; everything here converts values, releases the GIL around engine calls
//! (`py.detach`), and maps engine errors onto `quiverdb._errors` (see [`convert`]).
//!
//! Lifetimes: a `Database` owns the engine database (and so the data directory's lock) until `close()`; a
//! `Collection` keeps its `Database` object alive but not the lock, so after `close()` its calls raise `Closed`
//! and the directory can be opened again in the same process.

mod collection;
mod convert;

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use quiver_engine::{CollectionConfig, Database};

use crate::collection::PyCollection;
use crate::convert::{engine_err, exception, to_json, to_py};

/// An open data directory (the embedded engine). Thread-safe; `close()` (or leaving a `with` block) releases it.
#[derive(Debug)]
#[pyclass(frozen, module = "quiverdb._native", name = "Database")]
pub struct PyDatabase {
    inner: Mutex<Option<Arc<Database>>>,
    path: PathBuf,
    /// Embedding models for collections that have one, found by name and loaded on first use.
    models: Arc<quiver_text::Models>,
}

impl PyDatabase {
    /// The engine database, or `Closed`.
    pub(crate) fn db(&self, py: Python<'_>) -> PyResult<Arc<Database>> {
        self.inner
            .lock()
            .clone()
            .ok_or_else(|| exception(py, "Closed", format!("the database at {} is closed", self.path.display())))
    }
}

fn collection_obj(db: &Bound<'_, PyDatabase>, c: quiver_engine::Collection) -> PyCollection {
    PyCollection::new(db.clone().unbind(), c, Arc::clone(&db.get().models))
}

#[pymethods]
impl PyDatabase {
    /// Opens (creating if needed) the data directory at `path`. Embedding models are looked up in `models_dir`
    /// (one sentence-transformers directory per model name), then where `quiver embed` finds the default model.
    #[new]
    #[pyo3(signature = (path, models_dir=None))]
    fn new(py: Python<'_>, path: PathBuf, models_dir: Option<PathBuf>) -> PyResult<Self> {
        let p = path.clone();
        let db = py.detach(move || Database::open(p)).map_err(|e| engine_err(py, e))?;
        let models = Arc::new(quiver_text::Models::new(models_dir));
        Ok(PyDatabase { inner: Mutex::new(Some(Arc::new(db))), path, models })
    }

    /// The vector length of embedding model `name` (loading it: the first call takes a moment).
    fn model_dim(&self, py: Python<'_>, name: String) -> PyResult<usize> {
        let models = Arc::clone(&self.models);
        py.detach(move || models.get(&name).map(|m| m.dim())).map_err(|e| crate::convert::text_err(py, e))
    }

    /// The data directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// True once `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().is_none()
    }

    /// Creates a collection from a config dict in the server's shape (`{"dimension": 384, "metric": "cosine",
    /// "index": {"kind": "hnsw", "params": {...}}, ...}`).
    fn create_collection(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        name: String,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<PyCollection> {
        let db = slf.get().db(py)?;
        let json = to_json(py, config, "config")?;
        let config: CollectionConfig = serde_json::from_value(json)
            .map_err(|e| exception(py, "InvalidArgument", format!("invalid collection config: {e}")))?;
        let c = py.detach(move || db.create_collection(&name, config)).map_err(|e| engine_err(py, e))?;
        Ok(collection_obj(slf, c))
    }

    /// An existing collection.
    fn collection(slf: &Bound<'_, Self>, py: Python<'_>, name: String) -> PyResult<PyCollection> {
        let db = slf.get().db(py)?;
        let c = db.collection(&name).map_err(|e| engine_err(py, e))?;
        Ok(collection_obj(slf, c))
    }

    /// `[{"name": ..., "unavailable": None | reason}, ...]`, by name.
    fn list_collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db(py)?;
        to_py(py, &db.list())
    }

    /// Drops a collection and its files.
    fn drop_collection(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let db = self.db(py)?;
        py.detach(move || db.drop_collection(&name)).map_err(|e| engine_err(py, e))
    }

    /// Syncs and closes every collection and releases the directory. Closing twice is a no-op.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(db) = self.inner.lock().take() else { return Ok(()) };
        py.detach(move || {
            let r = db.close();
            drop(db);
            r
        })
        .map_err(|e| engine_err(py, e))
    }

    /// Writes a snapshot archive of a collection; returns its info dict (`name`, `size_bytes`, `applied_seq`, ...).
    fn create_snapshot<'py>(&self, py: Python<'py>, collection: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db(py)?;
        let info = py.detach(move || db.create_snapshot(&collection)).map_err(|e| engine_err(py, e))?;
        to_py(py, &info)
    }

    /// The snapshots of a collection, oldest first.
    fn list_snapshots<'py>(&self, py: Python<'py>, collection: String) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db(py)?;
        let list = py.detach(move || db.list_snapshots(&collection)).map_err(|e| engine_err(py, e))?;
        to_py(py, &list)
    }

    /// The file of a snapshot (to copy elsewhere, or to pass to `restore_snapshot`).
    fn snapshot_path(&self, py: Python<'_>, collection: String, name: String) -> PyResult<PathBuf> {
        let db = self.db(py)?;
        db.snapshot_path(&collection, &name).map_err(|e| engine_err(py, e))
    }

    /// Deletes a snapshot archive.
    fn delete_snapshot(&self, py: Python<'_>, collection: String, name: String) -> PyResult<()> {
        let db = self.db(py)?;
        py.detach(move || db.delete_snapshot(&collection, &name)).map_err(|e| engine_err(py, e))
    }

    /// Replaces (or creates) `collection` with the contents of a snapshot archive; a damaged archive raises
    /// `Corrupt` and leaves the existing collection serving.
    fn restore_snapshot(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        collection: String,
        path: PathBuf,
    ) -> PyResult<PyCollection> {
        let db = slf.get().db(py)?;
        let c = py.detach(move || db.restore_snapshot(&collection, &path)).map_err(|e| engine_err(py, e))?;
        Ok(collection_obj(slf, c))
    }

    fn __repr__(&self) -> String {
        let state = if self.inner.lock().is_some() { "open" } else { "closed" };
        format!("quiverdb.Database({:?}, {state})", self.path.display().to_string())
    }
}

/// The names of the search parameters the engine takes in `params={...}` (`hnsw_ef` is accepted for `ef`).
#[pyfunction]
fn search_param_names<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, quiver_index::SearchParams::NAMES)
}

/// Build facts: `{"version": ..., "simd": ...}`.
#[pyfunction]
fn build_info<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item("profile", if cfg!(debug_assertions) { "debug" } else { "release" })?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDatabase>()?;
    m.add_class::<PyCollection>()?;
    m.add_function(wrap_pyfunction!(search_param_names, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    m.add("MAX_LIMIT", quiver_engine::collection::MAX_LIMIT)?;
    Ok(())
}
