//! Python values ↔ the engine's types: JSON payloads and filters, point ids, and the one place where engine errors
//! become Python exceptions (the classes live in `quiverdb._errors`, shared with the HTTP client).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use quiver_engine::{Error, Payload, PointId};
use serde_json::{Map, Number, Value};

/// Deepest Python structure converted to JSON (a cycle or an absurd nesting is an error, not a stack overflow).
const MAX_DEPTH: usize = 64;

/// The `quiverdb._errors` class for an engine error.
fn class_name(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument { .. } | Error::InvalidPoint { .. } | Error::InvalidFilter { .. } => "InvalidArgument",
        Error::CollectionNotFound { .. } | Error::PointNotFound { .. } | Error::SnapshotNotFound { .. } => "NotFound",
        Error::CollectionExists { .. } => "AlreadyExists",
        Error::Corrupt { .. } | Error::InvalidSnapshot { .. } => "Corrupt",
        Error::Unavailable { .. } => "Unavailable",
        Error::Closed { .. } => "Closed",
        Error::Locked { .. } => "Locked",
        Error::NotYetApplied { .. } => "Timeout",
        Error::ChangesGone { .. } => "ChangesGone",
        e if e.is_corruption() => "Corrupt",
        e if e.is_user_error() => "InvalidArgument",
        _ => "QuiverError",
    }
}

/// A Python exception of class `name` (from `quiverdb._errors`) carrying `message`.
pub fn exception(py: Python<'_>, name: &str, message: String) -> PyErr {
    let made =
        py.import("quiverdb._errors").and_then(|m| m.getattr(name)).and_then(|cls| cls.call1((message.clone(),)));
    match made {
        Ok(err) => PyErr::from_value(err),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

/// An engine error as the matching Python exception, its message the engine's (which names the field).
pub fn engine_err(py: Python<'_>, e: Error) -> PyErr {
    exception(py, class_name(&e), e.to_string())
}

/// A text/documents error as a `quiverdb` exception: the caller's fault is `InvalidArgument`, a build without
/// models `Unsupported`, engine errors as [`engine_err`].
pub fn text_err(py: Python<'_>, e: quiver_text::TextError) -> PyErr {
    use quiver_text::TextError as T;
    match e {
        T::Engine(inner) => engine_err(py, inner),
        T::NotBuilt(_) => exception(py, "Unsupported", e.to_string()),
        e if e.is_user_error() => exception(py, "InvalidArgument", e.to_string()),
        e => exception(py, "QuiverError", e.to_string()),
    }
}

/// `InvalidArgument("invalid {field}: expected {expected}, got {got}")`, the engine's wording.
pub fn invalid(py: Python<'_>, field: &str, expected: &str, got: impl std::fmt::Display) -> PyErr {
    exception(py, "InvalidArgument", format!("invalid {field}: expected {expected}, got {got}"))
}

/// A short description of a Python value for error messages: its type and, when short, its repr.
fn describe(v: &Bound<'_, PyAny>) -> String {
    let ty = v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_owned());
    match v.repr() {
        Ok(r) if r.to_string().len() <= 40 => format!("{ty} {r}"),
        _ => ty,
    }
}

/// A Python value (dict, list, tuple, str, int, float, bool, None) as JSON; `field` names it in errors.
pub fn to_json(py: Python<'_>, v: &Bound<'_, PyAny>, field: &str) -> PyResult<Value> {
    to_json_at(py, v, field, 0)
}

fn to_json_at(py: Python<'_>, v: &Bound<'_, PyAny>, field: &str, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(invalid(py, field, &format!("at most {MAX_DEPTH} levels of nesting"), "deeper"));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(v.extract::<bool>()?));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(n) = v.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = v.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(invalid(py, field, "an integer that fits in 64 bits", describe(v)));
    }
    if v.is_instance_of::<PyFloat>() {
        let f = v.extract::<f64>()?;
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| invalid(py, field, "a finite number (JSON has no NaN or infinity)", f));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut out = Map::with_capacity(d.len());
        for (k, val) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(invalid(py, field, "an object with string keys", format!("key {}", describe(&k))));
            };
            let key = key.to_cow()?.into_owned();
            let sub = format!("{field}.{key}");
            let val = to_json_at(py, &val, &sub, depth + 1)?;
            out.insert(key, val);
        }
        return Ok(Value::Object(out));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in v.try_iter()?.enumerate() {
            out.push(to_json_at(py, &item?, &format!("{field}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    // numpy scalars and other numbers: anything with `__index__` is an integer, with `__float__` a float.
    if v.hasattr("__index__")? {
        let n = v.call_method0("__index__")?;
        return to_json_at(py, &n, field, depth);
    }
    if v.hasattr("__float__")? && !v.hasattr("__len__")? {
        let f = v.call_method0("__float__")?;
        return to_json_at(py, &f, field, depth);
    }
    Err(invalid(py, field, "JSON data (dict, list, str, int, float, bool or None)", describe(v)))
}

/// A payload: a dict (None: no payload).
pub fn to_payload(py: Python<'_>, v: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Payload>> {
    if v.is_none() {
        return Ok(None);
    }
    match to_json(py, v, field)? {
        Value::Object(m) => Ok(Some(m)),
        other => Err(invalid(py, field, "a dict (the point's payload)", json_kind(&other))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

/// JSON as Python objects (objects → dict, arrays → list).
pub fn from_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for x in a {
                list.append(from_json(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => payload_dict(py, m)?.into_any(),
    })
}

/// A payload as a dict.
pub fn payload_dict<'py>(py: Python<'py>, m: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, x) in m {
        d.set_item(k, from_json(py, x)?)?;
    }
    Ok(d)
}

/// A point id: a non-negative int (numpy integers too) or a UUID string.
pub fn to_id(py: Python<'_>, v: &Bound<'_, PyAny>, field: &str) -> PyResult<PointId> {
    if let Ok(s) = v.cast::<PyString>() {
        return PointId::parse_uuid(&s.to_cow()?).map_err(|_| {
            invalid(py, field, "an unsigned integer or a UUID string", format!("{:?}", s.to_string_lossy()))
        });
    }
    if !v.is_instance_of::<PyBool>() && v.hasattr("__index__")? {
        let n = v.call_method0("__index__")?;
        if let Ok(u) = n.extract::<u64>() {
            return Ok(PointId::Num(u));
        }
    }
    Err(invalid(py, field, "an unsigned 64-bit integer or a UUID string", describe(v)))
}

/// A list of ids (any iterable of ids, or a numpy integer array).
pub fn to_ids(py: Python<'_>, v: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<PointId>> {
    if v.is_instance_of::<PyString>() {
        return Err(invalid(py, field, "a list of ids", "a single string"));
    }
    let mut out = Vec::new();
    for (i, item) in v.try_iter()?.enumerate() {
        out.push(to_id(py, &item?, &format!("{field}[{i}]"))?);
    }
    Ok(out)
}

/// A point id as Python: int or the hyphenated UUID string.
pub fn id_obj<'py>(py: Python<'py>, id: &PointId) -> PyResult<Bound<'py, PyAny>> {
    Ok(match id {
        PointId::Num(n) => n.into_pyobject(py)?.into_any(),
        PointId::Uuid(_) => PyString::new(py, &id.to_string()).into_any(),
    })
}

/// A filter in Qdrant's JSON shape (`{"must": [{"key": "tag", "match": {"value": "a"}}]}`); None: no filter.
pub fn to_filter(py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<quiver_engine::Filter>> {
    let Some(v) = v.filter(|v| !v.is_none()) else { return Ok(None) };
    let json = to_json(py, v, "filter")?;
    serde_json::from_value(json).map(Some).map_err(|e| exception(py, "InvalidArgument", format!("invalid filter: {e}")))
}

/// Any serialisable engine value (info, plans) as Python data.
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(v).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    from_json(py, &json)
}
