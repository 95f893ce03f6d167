//! `quiverdb._native.Collection`: one collection of the embedded engine. Rows of numpy arrays are copied into the
//! engine's types while the GIL is held (a memcpy per row), then every engine call runs with the GIL released.

use std::sync::Arc;
use std::time::Duration;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use quiver_engine::{
    Collection, FieldType, Fusion, PointId, PointInput, Ranking, Record, SearchRequest, Selector, Stage, TextOptions,
    TextSearchRequest,
};
use quiver_index::{Params, SearchParams};
use quiver_text::Models;
use rayon::prelude::*;
use serde_json::Value;

use crate::PyDatabase;
use crate::convert::{
    engine_err, exception, id_obj, invalid, payload_dict, text_err, to_filter, to_id, to_ids, to_json, to_payload,
    to_py,
};

/// A collection of the embedded engine (thread-safe: many threads may search while one writes).
#[derive(Debug)]
#[pyclass(frozen, module = "quiverdb._native", name = "Collection")]
pub struct PyCollection {
    /// Keeps the database object alive (not its lock: `Database.close()` still closes this collection).
    db: Py<PyDatabase>,
    inner: Collection,
    models: Arc<Models>,
}

impl PyCollection {
    pub(crate) fn new(db: Py<PyDatabase>, inner: Collection, models: Arc<Models>) -> Self {
        PyCollection { db, inner, models }
    }

    /// The collection's embedding model (loaded on first use; `InvalidArgument` when it has none).
    fn model(&self, py: Python<'_>, col: &Collection) -> PyResult<Arc<dyn quiver_embed::Embedder>> {
        let models = Arc::clone(&self.models);
        let name = col.name().to_owned();
        let config = col.config().clone();
        py.detach(move || models.for_config(&name, &config)).map_err(|e| text_err(py, e))
    }

    /// The collection, or `Closed` when its database was closed.
    fn col(&self, py: Python<'_>) -> PyResult<Collection> {
        self.db.get().db(py)?;
        Ok(self.inner.clone())
    }
}

/// `params={"ef": 128, "exact": True, ...}` → the engine's search parameters (unknown keys are an error).
fn search_params(py: Python<'_>, params: Option<&Bound<'_, PyAny>>) -> PyResult<SearchParams> {
    let Some(params) = params.filter(|p| !p.is_none()) else { return Ok(SearchParams::default()) };
    let Value::Object(map) = to_json(py, params, "params")? else {
        return Err(invalid(py, "params", "a dict such as {\"ef\": 128}", "another type"));
    };
    let mut p = Params::new();
    for (k, v) in map {
        let key = if k == "hnsw_ef" { "ef".to_owned() } else { k };
        let text = match v {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s,
            other => return Err(invalid(py, &format!("params.{key}"), "a number or a bool", other)),
        };
        if p.get(&key).is_some() {
            return Err(invalid(py, "params", "`ef` or `hnsw_ef`, not both", "both"));
        }
        p.set(&key, text);
    }
    SearchParams::from_params(p, "params", &SearchParams::NAMES)
        .map_err(|e| exception(py, "InvalidArgument", e.to_string()))
}

/// Exactly one of `ids` and `filter` → which points a write addresses.
fn selector(py: Python<'_>, ids: Option<&Bound<'_, PyAny>>, filter: Option<&Bound<'_, PyAny>>) -> PyResult<Selector> {
    let ids = ids.filter(|v| !v.is_none());
    let filter = to_filter(py, filter)?;
    match (ids, filter) {
        (Some(ids), None) => Ok(Selector::Ids(to_ids(py, ids, "ids")?)),
        (None, Some(f)) => Ok(Selector::Filter(f)),
        (Some(_), Some(_)) => Err(invalid(py, "ids", "ids or a filter, not both", "both")),
        (None, None) => Err(invalid(py, "ids", "a list of ids or a filter", "neither")),
    }
}

/// A read's vectors: the unnamed vector as a numpy array; named and sparse vectors as a dict by name (numpy
/// arrays, and `{"indices": [...], "values": [...]}` for sparse ones; the unnamed vector under `""`).
fn vector_obj<'py>(
    py: Python<'py>,
    v: Option<Vec<f32>>,
    named: Option<std::collections::BTreeMap<String, Vec<f32>>>,
    sparse: Option<std::collections::BTreeMap<String, quiver_engine::SparseVector>>,
) -> PyResult<Bound<'py, PyAny>> {
    if named.is_none() && sparse.is_none() {
        return Ok(match v {
            Some(v) => PyArray1::from_vec(py, v).into_any(),
            None => py.None().into_bound(py),
        });
    }
    let d = PyDict::new(py);
    if let Some(v) = v {
        d.set_item("", PyArray1::from_vec(py, v))?;
    }
    for (k, v) in named.into_iter().flatten() {
        d.set_item(k, PyArray1::from_vec(py, v))?;
    }
    for (k, v) in sparse.into_iter().flatten() {
        let s = PyDict::new(py);
        s.set_item("indices", v.indices)?;
        s.set_item("values", v.values)?;
        d.set_item(k, s)?;
    }
    Ok(d.into_any())
}

/// A sparse vector from `{"indices": [...], "values": [...]}` or an `(indices, values)` pair; `field` names it.
fn to_sparse(py: Python<'_>, v: &Bound<'_, PyAny>, field: &str) -> PyResult<quiver_engine::SparseVector> {
    let (indices, values) = if let Ok(d) = v.cast::<PyDict>() {
        match (d.get_item("indices")?, d.get_item("values")?) {
            (Some(i), Some(x)) => (i, x),
            _ => return Err(invalid(py, field, "{\"indices\": [...], \"values\": [...]}", "a dict without both")),
        }
    } else if let Ok((i, x)) = v.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() {
        (i, x)
    } else {
        return Err(invalid(
            py,
            field,
            "a sparse vector {\"indices\", \"values\"} or an (indices, values) pair",
            v.get_type().name()?,
        ));
    };
    let indices: Vec<u32> = indices
        .extract()
        .map_err(|_| invalid(py, &format!("{field}.indices"), "a list of non-negative integers", "other values"))?;
    let values: Vec<f32> =
        values.extract().map_err(|_| invalid(py, &format!("{field}.values"), "a list of numbers", "other values"))?;
    Ok(quiver_engine::SparseVector { indices, values })
}

/// Hits as a list of `(id, score, payload, vector)` tuples.
fn hit_list(py: Python<'_>, hits: Vec<quiver_engine::ScoredPoint>) -> PyResult<Bound<'_, PyList>> {
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let id = id_obj(py, &h.id)?;
        let score = h.score.into_pyobject(py)?.into_any();
        let payload = payload_obj(py, h.payload)?;
        let vector = vector_obj(py, h.vector, h.vectors, h.sparse)?;
        out.push(PyTuple::new(py, [id, score, payload, vector])?);
    }
    PyList::new(py, out)
}

fn payload_obj<'py>(py: Python<'py>, p: Option<quiver_engine::Payload>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match p {
        Some(p) => payload_dict(py, &p)?.into_any(),
        None => py.None().into_bound(py),
    })
}

/// A record as `(id, payload | None, vector | None)`.
fn record_obj<'py>(py: Python<'py>, r: Record) -> PyResult<Bound<'py, PyTuple>> {
    let id = id_obj(py, &r.id)?;
    let payload = payload_obj(py, r.payload)?;
    PyTuple::new(py, [id, payload, vector_obj(py, r.vector, r.vectors, r.sparse)?])
}

fn records_list<'py>(py: Python<'py>, records: Vec<Record>) -> PyResult<Bound<'py, PyList>> {
    let items = records.into_iter().map(|r| record_obj(py, r)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

#[pymethods]
impl PyCollection {
    /// The collection's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The collection's config as a dict (the server's shape).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.inner.config())
    }

    /// The vector length.
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.config().dimension
    }

    /// The highest applied operation's sequence number.
    #[getter]
    fn applied_seq(&self) -> u64 {
        self.inner.applied_seq()
    }

    /// Inserts or replaces points: `ids` (n), `vectors` (an n×dim float32 array), `payloads` (n dicts, or None),
    /// `ttl` (seconds, for every point, or None). Returns the operation's sequence number.
    #[pyo3(signature = (ids, vectors, payloads=None, ttl=None))]
    fn upsert(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: PyReadonlyArray2<'_, f32>,
        payloads: Option<&Bound<'_, PyAny>>,
        ttl: Option<u64>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let ids = to_ids(py, ids, "ids")?;
        let view = vectors.as_array();
        let rows = view.nrows();
        if rows != ids.len() {
            return Err(invalid(py, "vectors", &format!("{} rows (one per id)", ids.len()), format!("{rows} rows")));
        }
        let payloads: Vec<Option<quiver_engine::Payload>> = match payloads.filter(|p| !p.is_none()) {
            None => vec![None; rows],
            Some(p) => {
                let mut out = Vec::with_capacity(rows);
                for (i, item) in p.try_iter()?.enumerate() {
                    out.push(to_payload(py, &item?, &format!("payloads[{i}]"))?);
                }
                if out.len() != rows {
                    return Err(invalid(
                        py,
                        "payloads",
                        &format!("{rows} payloads (one per id)"),
                        format!("{} payloads", out.len()),
                    ));
                }
                out
            }
        };
        let mut points = Vec::with_capacity(rows);
        for ((id, row), payload) in ids.into_iter().zip(view.rows()).zip(payloads) {
            points.push(PointInput { payload, ttl_secs: ttl, ..PointInput::new(id, row.to_vec()) });
        }
        py.detach(move || col.upsert(points)).map_err(|e| engine_err(py, e))
    }

    /// Inserts or replaces points with named and sparse vectors: `ids` (n), `named` (name → an n×dim float32
    /// array; the name `""` is the unnamed vector), `sparse` (name → n sparse vectors, each a dict, a pair or
    /// None), `payloads`, `ttl`. Returns the operation's sequence number.
    #[pyo3(signature = (ids, named, sparse, payloads=None, ttl=None))]
    fn upsert_named(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        named: &Bound<'_, PyDict>,
        sparse: &Bound<'_, PyDict>,
        payloads: Option<&Bound<'_, PyAny>>,
        ttl: Option<u64>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let ids = to_ids(py, ids, "ids")?;
        let n = ids.len();
        let mut points: Vec<PointInput> = ids.into_iter().map(|id| PointInput::named(id, [])).collect();
        for (k, v) in named.iter() {
            let name: String = k.extract()?;
            let field = format!("vectors.{name}");
            let m: PyReadonlyArray2<'_, f32> =
                v.extract().map_err(|_| invalid(py, &field, "an n×dim float32 array", "another value"))?;
            let view = m.as_array();
            if view.nrows() != n {
                return Err(invalid(py, &field, &format!("{n} rows (one per id)"), format!("{} rows", view.nrows())));
            }
            for (p, row) in points.iter_mut().zip(view.rows()) {
                if name.is_empty() {
                    p.vector = row.to_vec();
                } else {
                    p.named.insert(name.clone(), row.to_vec());
                }
            }
        }
        for (k, v) in sparse.iter() {
            let name: String = k.extract()?;
            let list: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
            if list.len() != n {
                return Err(invalid(
                    py,
                    &format!("sparse.{name}"),
                    &format!("{n} sparse vectors (one per id)"),
                    list.len(),
                ));
            }
            for (i, (p, item)) in points.iter_mut().zip(list).enumerate() {
                if !item.is_none() {
                    p.sparse.insert(name.clone(), to_sparse(py, &item, &format!("sparse.{name}[{i}]"))?);
                }
            }
        }
        if let Some(p) = payloads.filter(|p| !p.is_none()) {
            let mut i = 0;
            for item in p.try_iter()? {
                let item = item?;
                if i < n {
                    points[i].payload = to_payload(py, &item, &format!("payloads[{i}]"))?;
                }
                i += 1;
            }
            if i != n {
                return Err(invalid(py, "payloads", &format!("{n} payloads (one per id)"), format!("{i} payloads")));
            }
        }
        for p in &mut points {
            p.ttl_secs = ttl;
        }
        py.detach(move || col.upsert(points)).map_err(|e| engine_err(py, e))
    }

    /// The nearest points to one query vector: `([(id, score, payload, vector), ...], explain | None)`.
    #[pyo3(signature = (vector, k=10, *, offset=0, filter=None, params=None, with_payload=true, with_vector=false,
                        score_threshold=None, min_seq=None, explain=false, using=None, sparse=None))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        vector: Option<PyReadonlyArray1<'_, f32>>,
        k: usize,
        offset: usize,
        filter: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        with_payload: bool,
        with_vector: bool,
        score_threshold: Option<f32>,
        min_seq: Option<u64>,
        explain: bool,
        using: Option<String>,
        sparse: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
        let col = self.col(py)?;
        let sparse = match sparse.filter(|s| !s.is_none()) {
            Some(s) => Some(to_sparse(py, s, "query")?),
            None => None,
        };
        let req = SearchRequest {
            vector: vector.map(|v| v.as_array().to_vec()).unwrap_or_default(),
            using,
            sparse,
            limit: k,
            offset,
            filter: to_filter(py, filter)?,
            params: search_params(py, params)?,
            with_payload,
            with_vector,
            score_threshold,
            explain,
            min_seq,
        };
        let resp = py.detach(move || col.search(&req)).map_err(|e| engine_err(py, e))?;
        let hits = hit_list(py, resp.hits)?;
        let plan = match resp.explain {
            Some(e) => to_py(py, &e)?,
            None => py.None().into_bound(py),
        };
        Ok((hits, plan))
    }

    /// Many queries (an n×dim float32 array) on `threads` threads (None: all cores): `(ids, scores)` where
    /// `scores` is an n×k float32 array (NaN past the last hit) and `ids` an n×k int64 array (-1 past the last
    /// hit) — or, when some id is a UUID or above 2^63-1, a list of lists (None past the last hit).
    #[pyo3(signature = (queries, k=10, *, filter=None, params=None, threads=None))]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'_, f32>,
        k: usize,
        filter: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray2<f32>>)> {
        let col = self.col(py)?;
        let filter = to_filter(py, filter)?;
        let params = search_params(py, params)?;
        if threads == Some(0) {
            return Err(invalid(py, "threads", "at least 1 (or None: all cores)", 0));
        }
        let view = queries.as_array();
        let n = view.nrows();
        let qs: Vec<Vec<f32>> = view.rows().into_iter().map(|r| r.to_vec()).collect();
        let run = move || -> quiver_engine::Result<Vec<Vec<(PointId, f32)>>> {
            // Each query vector moves into its request (no copy); the filter is cloned per request.
            let one = |vector: Vec<f32>| {
                let req = SearchRequest {
                    vector,
                    using: None,
                    sparse: None,
                    limit: k,
                    offset: 0,
                    filter: filter.clone(),
                    params: params.clone(),
                    with_payload: false,
                    with_vector: false,
                    score_threshold: None,
                    explain: false,
                    min_seq: None,
                };
                col.search(&req).map(|r| r.hits.into_iter().map(|h| (h.id, h.score)).collect::<Vec<_>>())
            };
            match threads {
                None => qs.into_par_iter().map(one).collect(),
                Some(1) => qs.into_iter().map(one).collect(),
                Some(t) => {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build().map_err(|e| {
                        quiver_engine::Error::InvalidArgument {
                            field: "threads".into(),
                            expected: "a thread count the system can start".into(),
                            got: e.to_string(),
                        }
                    })?;
                    pool.install(|| qs.into_par_iter().map(one).collect())
                }
            }
        };
        let results = py.detach(run).map_err(|e| engine_err(py, e))?;
        let mut scores = vec![f32::NAN; n * k];
        let numeric = results.iter().flatten().all(|(id, _)| matches!(id, PointId::Num(v) if *v <= i64::MAX as u64));
        let mut ids_num = vec![-1i64; n * k];
        for (i, hits) in results.iter().enumerate() {
            for (j, (id, score)) in hits.iter().enumerate() {
                scores[i * k + j] = *score;
                if let PointId::Num(v) = id {
                    ids_num[i * k + j] = *v as i64;
                }
            }
        }
        let scores = PyArray1::from_vec(py, scores).reshape([n, k])?;
        let ids: Bound<'py, PyAny> = if numeric {
            PyArray1::from_vec(py, ids_num).reshape([n, k])?.into_any()
        } else {
            let rows = PyList::empty(py);
            for hits in &results {
                let row = PyList::empty(py);
                for (id, _) in hits {
                    row.append(id_obj(py, id)?)?;
                }
                for _ in hits.len()..k {
                    row.append(py.None())?;
                }
                rows.append(row)?;
            }
            rows.into_any()
        };
        Ok((ids, scores))
    }

    /// The points with these ids that exist, in the order asked: `[(id, payload, vector), ...]`.
    #[pyo3(signature = (ids, *, with_payload=true, with_vector=false))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'_, PyAny>,
        with_payload: bool,
        with_vector: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let col = self.col(py)?;
        let ids = to_ids(py, ids, "ids")?;
        let recs = py.detach(move || col.get(&ids, with_payload, with_vector)).map_err(|e| engine_err(py, e))?;
        records_list(py, recs)
    }

    /// Deletes points by ids or by filter; returns the operation's sequence number.
    #[pyo3(signature = (ids=None, *, filter=None))]
    fn delete(
        &self,
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let sel = selector(py, ids, filter)?;
        py.detach(move || col.delete(sel)).map_err(|e| engine_err(py, e))
    }

    /// One page of points in id order: `([(id, payload, vector), ...], next_offset | None)`.
    #[pyo3(signature = (*, filter=None, offset=None, limit=100, with_payload=true, with_vector=false))]
    fn scroll<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'_, PyAny>>,
        offset: Option<&Bound<'_, PyAny>>,
        limit: usize,
        with_payload: bool,
        with_vector: bool,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
        let col = self.col(py)?;
        let filter = to_filter(py, filter)?;
        let offset = match offset.filter(|o| !o.is_none()) {
            Some(o) => Some(to_id(py, o, "offset")?),
            None => None,
        };
        let page = py
            .detach(move || col.scroll(filter.as_ref(), offset, limit, with_payload, with_vector))
            .map_err(|e| engine_err(py, e))?;
        let next = match page.next_offset {
            Some(id) => id_obj(py, &id)?,
            None => py.None().into_bound(py),
        };
        Ok((records_list(py, page.points)?, next))
    }

    /// How many points the filter admits (all live points without one).
    #[pyo3(signature = (filter=None))]
    fn count(&self, py: Python<'_>, filter: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let col = self.col(py)?;
        let filter = to_filter(py, filter)?;
        py.detach(move || col.count(filter.as_ref())).map_err(|e| engine_err(py, e))
    }

    /// Merges `payload` into the payloads of the points (at `key`, a nested object, when given).
    #[pyo3(signature = (payload, ids=None, *, filter=None, key=None))]
    fn set_payload(
        &self,
        py: Python<'_>,
        payload: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        key: Option<String>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let payload = to_payload(py, payload, "payload")?.unwrap_or_default();
        let sel = selector(py, ids, filter)?;
        py.detach(move || col.set_payload(sel, payload, key.as_deref())).map_err(|e| engine_err(py, e))
    }

    /// Replaces the payloads of the points with `payload`.
    #[pyo3(signature = (payload, ids=None, *, filter=None))]
    fn overwrite_payload(
        &self,
        py: Python<'_>,
        payload: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let payload = to_payload(py, payload, "payload")?.unwrap_or_default();
        let sel = selector(py, ids, filter)?;
        py.detach(move || col.overwrite_payload(sel, payload)).map_err(|e| engine_err(py, e))
    }

    /// Removes these payload keys from the points.
    #[pyo3(signature = (keys, ids=None, *, filter=None))]
    fn delete_payload(
        &self,
        py: Python<'_>,
        keys: Vec<String>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let sel = selector(py, ids, filter)?;
        py.detach(move || col.delete_payload_keys(sel, &keys)).map_err(|e| engine_err(py, e))
    }

    /// Empties the payloads of the points.
    #[pyo3(signature = (ids=None, *, filter=None))]
    fn clear_payload(
        &self,
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let sel = selector(py, ids, filter)?;
        py.detach(move || col.clear_payload(sel)).map_err(|e| engine_err(py, e))
    }

    /// Indexes a payload field (`keyword`, `integer`, `float`, `bool`, `datetime`, `text`) for fast filters;
    /// `text` takes English `stem`ming and `stopwords` removal.
    #[pyo3(signature = (field, field_type, *, stem=false, stopwords=false))]
    fn create_index(
        &self,
        py: Python<'_>,
        field: String,
        field_type: String,
        stem: bool,
        stopwords: bool,
    ) -> PyResult<u64> {
        let col = self.col(py)?;
        let ty = match field_type.parse().map_err(|e| engine_err(py, e))? {
            FieldType::Text(_) => FieldType::Text(TextOptions { stem, stopwords }),
            _ if stem || stopwords => {
                let e = quiver_engine::Error::InvalidArgument {
                    field: "stem/stopwords".into(),
                    expected: "only with type text".into(),
                    got: format!("{field_type:?}"),
                };
                return Err(engine_err(py, e));
            }
            other => other,
        };
        py.detach(move || col.create_field_index(&field, ty)).map_err(|e| engine_err(py, e))
    }

    /// Hybrid search: BM25 on `text` in `key` and the nearest points to `vector`, `candidates` of each, fused
    /// (`fusion` is `rrf` or `dbsf`; `rrf_k` is RRF's constant): `[(id, score, payload, vector), ...]`.
    #[pyo3(signature = (key, text, vector, k=10, *, candidates=50, fusion="rrf", rrf_k=60, weights=None, filter=None,
                        with_payload=true, with_vector=false))]
    #[allow(clippy::too_many_arguments)]
    fn hybrid_search<'py>(
        &self,
        py: Python<'py>,
        key: String,
        text: String,
        vector: PyReadonlyArray1<'_, f32>,
        k: usize,
        candidates: usize,
        fusion: &str,
        rrf_k: u32,
        weights: Option<(f32, f32)>,
        filter: Option<&Bound<'_, PyAny>>,
        with_payload: bool,
        with_vector: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let col = self.col(py)?;
        let method = match fusion {
            "rrf" => Fusion::Rrf { k: rrf_k },
            "dbsf" => Fusion::Dbsf,
            other => {
                let e = quiver_engine::Error::InvalidArgument {
                    field: "fusion".into(),
                    expected: "rrf or dbsf".into(),
                    got: format!("{other:?}"),
                };
                return Err(engine_err(py, e));
            }
        };
        let weights = weights.map(|(b, d)| vec![b, d]).unwrap_or_default();
        let filter = to_filter(py, filter)?;
        let mut dense = SearchRequest::new(vector.as_array().to_vec(), candidates);
        dense.filter = filter.clone();
        let bm25 = TextSearchRequest { filter, ..TextSearchRequest::new(key, text, candidates) };
        let stage = Stage {
            prefetch: vec![Stage::new(Ranking::Text(bm25)), Stage::new(Ranking::Nearest(dense))],
            ranking: Ranking::Fusion {
                method,
                weights,
                limit: k,
                offset: 0,
                score_threshold: None,
                with_payload,
                with_vector,
            },
        };
        let found = py.detach(move || col.query(&stage)).map_err(|e| engine_err(py, e))?;
        hit_list(py, found)
    }

    /// The `k` best BM25 matches of `text` in the text-indexed payload key `key`: `[(id, score, payload,
    /// vector), ...]`.
    #[pyo3(signature = (key, text, k=10, *, offset=0, filter=None, with_payload=true, with_vector=false,
                        score_threshold=None, min_seq=None))]
    #[allow(clippy::too_many_arguments)]
    fn text_search<'py>(
        &self,
        py: Python<'py>,
        key: String,
        text: String,
        k: usize,
        offset: usize,
        filter: Option<&Bound<'_, PyAny>>,
        with_payload: bool,
        with_vector: bool,
        score_threshold: Option<f32>,
        min_seq: Option<u64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let col = self.col(py)?;
        let req = TextSearchRequest {
            key,
            text,
            limit: k,
            offset,
            filter: to_filter(py, filter)?,
            with_payload,
            with_vector,
            score_threshold,
            min_seq,
            stats: None,
        };
        let found = py.detach(move || col.text_search(&req)).map_err(|e| engine_err(py, e))?;
        hit_list(py, found)
    }

    /// Drops a payload field's index.
    fn drop_index(&self, py: Python<'_>, field: String) -> PyResult<u64> {
        let col = self.col(py)?;
        py.detach(move || col.drop_field_index(&field)).map_err(|e| engine_err(py, e))
    }

    /// Points, segments, indexes, memory and disk use, optimizer state (a dict).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let col = self.col(py)?;
        let info = py.detach(move || col.info()).map_err(|e| engine_err(py, e))?;
        to_py(py, &info)
    }

    /// Embeds `texts` with the collection's model: an n×dim float32 array (the GIL released while the model runs).
    fn embed<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let col = self.col(py)?;
        let model = self.model(py, &col)?;
        let dim = model.dim();
        let n = texts.len();
        let flat = py
            .detach(move || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                model.embed_flat(&refs).map_err(|e| quiver_text::TextError::model(model.model_name(), e))
            })
            .map_err(|e| text_err(py, e))?;
        let arr = numpy::ndarray::Array2::from_shape_vec((n, dim), flat)
            .map_err(|e| exception(py, "QuiverError", format!("embedding: {e}")))?;
        Ok(PyArray2::from_owned_array(py, arr))
    }

    /// Embeds encoded images (JPEG, PNG, WebP, GIF, BMP bytes) with the collection's image model: an n×dim float32
    /// array (the GIL released while the model runs).
    fn embed_images<'py>(&self, py: Python<'py>, images: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let col = self.col(py)?;
        let model = self.model(py, &col)?;
        let dim = model.dim();
        let n = images.len();
        let vectors = py
            .detach(move || {
                let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
                quiver_text::embed_images(model.as_ref(), &refs, "images")
            })
            .map_err(|e| text_err(py, e))?;
        let arr = numpy::ndarray::Array2::from_shape_vec((n, dim), vectors.into_iter().flatten().collect())
            .map_err(|e| exception(py, "QuiverError", format!("embedding: {e}")))?;
        Ok(PyArray2::from_owned_array(py, arr))
    }

    /// Writes documents `[(id, text, metadata | None), ...]`: each is cut into chunks embedded by the collection's
    /// model (replacing the document's earlier chunks). Returns `(seq, [(id, chunks), ...])`.
    #[pyo3(signature = (documents, max_tokens=None, overlap_tokens=None))]
    fn add_documents(
        &self,
        py: Python<'_>,
        documents: &Bound<'_, PyAny>,
        max_tokens: Option<usize>,
        overlap_tokens: Option<usize>,
    ) -> PyResult<(u64, Vec<(String, usize)>)> {
        use quiver_text::documents::{self, Document};
        let col = self.col(py)?;
        let mut docs = Vec::new();
        for (i, item) in documents.try_iter()?.enumerate() {
            let (id, text, metadata): (String, String, Option<Bound<'_, PyAny>>) = item?.extract()?;
            let metadata = match metadata.filter(|m| !m.is_none()) {
                None => quiver_engine::Payload::new(),
                Some(m) => to_payload(py, &m, &format!("documents[{i}].metadata"))?.unwrap_or_default(),
            };
            docs.push(Document { id, text, metadata });
        }
        let options = quiver_embed::ChunkOptions::from_parts(max_tokens, overlap_tokens);
        let model = self.model(py, &col)?;
        py.detach(move || -> quiver_text::Result<(u64, Vec<(String, usize)>)> {
            let (points, counts) = documents::document_points(model.as_ref(), &docs, &options)?;
            let seq = documents::write_points(&col, points, &counts)?;
            Ok((seq, counts.into_iter().map(|c| (c.id, c.chunks)).collect()))
        })
        .map_err(|e| text_err(py, e))
    }

    /// Deletes every chunk of document `doc_id`; the operation's sequence number.
    fn delete_document(&self, py: Python<'_>, doc_id: String) -> PyResult<u64> {
        let col = self.col(py)?;
        py.detach(move || quiver_text::documents::delete_document(&col, &doc_id)).map_err(|e| text_err(py, e))
    }

    /// Seals the growing segment and runs the optimizer until it has nothing left to do (indexes built, small
    /// segments merged); returns the jobs run. The background optimizer does the same over time.
    fn optimize(&self, py: Python<'_>) -> PyResult<usize> {
        let col = self.col(py)?;
        py.detach(move || -> quiver_engine::Result<usize> {
            let sealed = usize::from(col.seal()?);
            let mut ran = 0;
            loop {
                let n = col.optimize()?;
                if n == 0 {
                    return Ok(sealed + ran);
                }
                ran += n;
            }
        })
        .map_err(|e| engine_err(py, e))
    }

    /// Measures the recall of every indexed segment now (for `target_recall`); returns the calibrations made.
    fn calibrate(&self, py: Python<'_>) -> PyResult<usize> {
        let col = self.col(py)?;
        py.detach(move || col.calibrate()).map_err(|e| engine_err(py, e))
    }

    /// Makes every applied operation durable (a WAL fsync).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let col = self.col(py)?;
        py.detach(move || col.flush()).map_err(|e| engine_err(py, e))
    }

    /// Waits until the operation `seq` is applied (read-your-writes after a write from another handle).
    #[pyo3(signature = (seq, timeout=10.0))]
    fn wait_for(&self, py: Python<'_>, seq: u64, timeout: f64) -> PyResult<()> {
        let col = self.col(py)?;
        if !(timeout.is_finite() && timeout >= 0.0) {
            return Err(invalid(py, "timeout", "a non-negative number of seconds", timeout));
        }
        let t = Duration::from_secs_f64(timeout);
        py.detach(move || col.wait_for(seq, t)).map_err(|e| engine_err(py, e))
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!("quiverdb.Collection({:?}, dimension={})", self.inner.name(), c.dimension)
    }
}
