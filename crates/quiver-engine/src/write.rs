//! Write requests and how they resolve into self-contained [`Operation`]s.
//!
//! A [`WriteRequest`] says what a client asked for ("merge this payload into the points this filter admits"); an
//! [`Operation`] says what that means at one position of the log ("these full points"). [`resolve`] turns the first
//! into the second against a collection's state; [`crate::Collection::submit`] then logs and applies it, and
//! [`crate::Collection::plan_write`] returns it unlogged (the cluster mode appends it to a replicated log instead).

use quiver_index::prepare_query;

use crate::collection::{State, check_payload_size, find_live, matching_ids};
use crate::config::CollectionConfig;
use crate::error::{Error, Result};
use crate::filter::DEFAULT_MAX_FILTER_DEPTH;
use crate::id::PointId;
use crate::ops::{Operation, PointWrite};
use crate::payload::{self, Payload};
use crate::payload_index::FieldType;
use crate::types::{PointInput, Selector};

/// A write as a client asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteRequest {
    /// Insert or replace whole points (the batch is validated whole).
    Upsert(Vec<PointInput>),
    /// Delete the selected points (missing ids are ignored).
    Delete(Selector),
    /// Merge `payload` into the selected points' payloads (at the dotted `key` when given).
    SetPayload {
        /// Which points (missing ids are an error).
        selector: Selector,
        /// Keys to merge.
        payload: Payload,
        /// Dotted key to merge under.
        key: Option<String>,
    },
    /// Replace the selected points' payloads.
    OverwritePayload {
        /// Which points.
        selector: Selector,
        /// The new payload.
        payload: Payload,
    },
    /// Remove dotted keys from the selected points' payloads.
    DeletePayloadKeys {
        /// Which points.
        selector: Selector,
        /// Dotted keys.
        keys: Vec<String>,
    },
    /// Empty the selected points' payloads.
    ClearPayload(Selector),
    /// Index a payload field.
    CreateFieldIndex {
        /// Dotted key.
        key: String,
        /// Value type.
        ty: FieldType,
    },
    /// Stop indexing a payload field.
    DropFieldIndex {
        /// Dotted key.
        key: String,
    },
    /// The listed points as they are now, whole (vector, payload, creation time, expiry), as one upsert; ids not
    /// present are left out. Never submitted to the collection itself (it would change nothing): the cluster
    /// plans it on the shard a point leaves and appends the operation to the shard it moves to.
    Rewrite(Vec<PointId>),
}

/// A write resolved against a collection's state but not logged: see [`crate::Collection::plan_write`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWrite {
    /// The operation; `None` when the write would change nothing (a delete that matched no point).
    pub op: Option<Operation>,
    /// The collection's applied sequence number when it was resolved.
    pub at_seq: u64,
}

impl WriteRequest {
    /// The checks that need no state (an empty batch, a malformed key).
    pub(crate) fn check(&self) -> Result<()> {
        match self {
            WriteRequest::Upsert(points) if points.is_empty() => {
                Err(Error::invalid("points", "at least one point", "an empty batch"))
            }
            WriteRequest::CreateFieldIndex { key, .. } if key.is_empty() || key.split('.').any(str::is_empty) => {
                Err(Error::invalid("field_name", "a dotted key like `a.b`", format!("{key:?}")))
            }
            _ => Ok(()),
        }
    }
}

/// Validates and prepares points for `config` (vector dimension and finite values, normalised under cosine,
/// payload size, TTL → expiry at `now_ms`): the whole batch or an error naming the first bad point.
pub fn prepare_points(config: &CollectionConfig, points: &[PointInput], now_ms: u64) -> Result<Vec<PointWrite>> {
    if points.is_empty() {
        return Err(Error::invalid("points", "at least one point", "an empty batch"));
    }
    points.iter().map(|p| prepare_point(config, p, now_ms)).collect()
}

fn prepare_point(cfg: &CollectionConfig, p: &PointInput, now: u64) -> Result<PointWrite> {
    let bad =
        |field: &str, reason: String| Error::InvalidPoint { point: p.id.to_string(), field: field.to_owned(), reason };
    let prepare = |metric, dim, v: &[f32], field: &str| {
        prepare_query(metric, dim, v).map_err(|e| match e {
            quiver_index::Error::DimensionMismatch { expected, got } => {
                bad(field, format!("expected {expected} numbers, got {got}"))
            }
            quiver_index::Error::NonFinite { position, value } => {
                bad(&format!("{field}[{position}]"), format!("expected a finite number, got {value}"))
            }
            other => bad(field, other.to_string()),
        })
    };
    let (vector, more) = if cfg.sparse_only {
        if !p.vector.is_empty() || !p.named.is_empty() {
            return Err(bad(
                "vector",
                format!(
                    "only sparse vectors {:?} (the collection has no dense vector), got a dense vector",
                    cfg.sparse_vectors.keys().collect::<Vec<_>>()
                ),
            ));
        }
        // The placeholder every row of such a collection keeps (never returned or searched).
        (vec![0.0], Vec::new())
    } else if cfg.is_named() {
        if !p.vector.is_empty() {
            return Err(bad(
                "vector",
                format!(
                    "named vectors {:?} (the collection has no unnamed vector), got an unnamed vector",
                    cfg.vector_names()
                ),
            ));
        }
        let spaces = cfg.spaces();
        if let Some(name) = p.named.keys().find(|n| !spaces.iter().any(|s| s.name == n.as_str())) {
            return Err(bad(
                &format!("vector.{name}"),
                format!("one of the collection's vectors {:?}, got {name:?}", cfg.vector_names()),
            ));
        }
        let mut prepared = Vec::with_capacity(spaces.len());
        for s in &spaces {
            prepared.push(match p.named.get(s.name) {
                Some(v) => prepare(s.metric, s.dimension, v, &format!("vector.{}", s.name))?,
                None => Vec::new(),
            });
        }
        let first = prepared.remove(0);
        (first, prepared)
    } else {
        if let Some(name) = p.named.keys().next() {
            return Err(bad(
                &format!("vector.{name}"),
                format!("an unnamed vector (the collection has no named vectors), got the named vector {name:?}"),
            ));
        }
        (prepare(cfg.metric, cfg.dimension, &p.vector, "vector")?, Vec::new())
    };
    if let Some(name) = p.sparse.keys().find(|n| cfg.sparse_of(n).is_none()) {
        let known: Vec<&String> = cfg.sparse_vectors.keys().collect();
        return Err(bad(
            &format!("vector.{name}"),
            format!("one of the collection's sparse vectors {known:?}, got {name:?}"),
        ));
    }
    let mut sparse = Vec::with_capacity(cfg.sparse_vectors.len());
    for name in cfg.sparse_vectors.keys() {
        sparse.push(match p.sparse.get(name) {
            Some(v) => v.prepared(&format!("vector.{name}")).map_err(|(field, reason)| bad(&field, reason))?,
            None => crate::sparse::SparseVector::default(),
        });
    }
    let payload = p.payload.clone().unwrap_or_default();
    check_payload_size(&p.id, &payload, cfg.max_payload_bytes)?;
    let expires_ms = match p.ttl_secs {
        None => 0,
        Some(0) => return Err(bad("ttl_secs", "expected at least 1 second, got 0".into())),
        Some(t) => now.saturating_add(t.saturating_mul(1000)),
    };
    Ok(PointWrite { id: p.id, vector, more, sparse, payload, created_ms: now, expires_ms })
}

/// Checks a prepared point against `cfg`'s vector spaces: how many vectors and of what lengths (a point of a
/// collection with named vectors may lack any of them), and with `values` also that every number is finite and
/// every sparse vector's indices increase — for an operation from another log, which `prepare_points` did not
/// check here. Applying this collection's own prepared operations needs only the shapes.
pub(crate) fn check_write(cfg: &CollectionConfig, p: &PointWrite, values: bool) -> Result<()> {
    let bad = |field: String, reason: String| Error::InvalidPoint { point: p.id.to_string(), field, reason };
    let named = cfg.is_named();
    if p.more.len() + 1 != cfg.space_count() {
        return Err(bad("vector".into(), format!("expected {} vectors, got {}", cfg.space_count(), p.more.len() + 1)));
    }
    for (s, v) in std::iter::once(&p.vector).chain(&p.more).enumerate() {
        if v.is_empty() && named {
            continue;
        }
        let Some(space) = cfg.space(s) else { continue };
        let field = || if named { format!("vector.{}", space.name) } else { "vector".to_owned() };
        if v.len() != space.dimension {
            return Err(bad(field(), format!("expected {} numbers, got {}", space.dimension, v.len())));
        }
        if values && let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("{}[{i}]", field()), format!("expected a finite number, got {}", v[i])));
        }
    }
    if p.sparse.len() != cfg.sparse_vectors.len() {
        return Err(bad(
            "vector".into(),
            format!("expected {} sparse vectors, got {}", cfg.sparse_vectors.len(), p.sparse.len()),
        ));
    }
    for (v, name) in p.sparse.iter().zip(cfg.sparse_vectors.keys()) {
        let ok = v.indices.len() == v.values.len()
            && (!values || v.indices.windows(2).all(|w| w[0] < w[1]) && v.values.iter().all(|x| x.is_finite()));
        if !ok {
            return Err(bad(format!("vector.{name}"), "expected increasing indices with one finite value each".into()));
        }
    }
    Ok(())
}

/// The operation `req` means against `st` at time `now` (`None`: nothing to do).
pub(crate) fn resolve(cfg: &CollectionConfig, st: &State, now: u64, req: WriteRequest) -> Result<Option<Operation>> {
    match req {
        WriteRequest::Upsert(points) => Ok(Some(Operation::Upsert(prepare_points(cfg, &points, now)?))),
        WriteRequest::Delete(selector) => {
            let ids = match selector {
                Selector::Ids(ids) => ids,
                Selector::Filter(f) => {
                    f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
                    matching_ids(st, &f, now)?
                }
            };
            Ok((!ids.is_empty()).then_some(Operation::Delete(ids)))
        }
        WriteRequest::SetPayload { selector, payload, key } => {
            update_payloads(cfg, st, now, selector, |p| match &key {
                Some(k) => {
                    let mut target =
                        payload::values_at(p, k).first().and_then(|v| v.as_object().cloned()).unwrap_or_default();
                    for (kk, vv) in &payload {
                        target.insert(kk.clone(), vv.clone());
                    }
                    payload::set_at(p, k, serde_json::Value::Object(target));
                }
                None => {
                    for (k, v) in &payload {
                        p.insert(k.clone(), v.clone());
                    }
                }
            })
        }
        WriteRequest::OverwritePayload { selector, payload } => {
            update_payloads(cfg, st, now, selector, |p| *p = payload.clone())
        }
        WriteRequest::DeletePayloadKeys { selector, keys } => update_payloads(cfg, st, now, selector, |p| {
            for k in &keys {
                payload::remove_at(p, k);
            }
        }),
        WriteRequest::ClearPayload(selector) => update_payloads(cfg, st, now, selector, |p| p.clear()),
        WriteRequest::CreateFieldIndex { key, ty } => {
            let same = st.fields.iter().any(|(k, t)| *k == key && *t == ty);
            Ok((!same).then_some(Operation::CreateFieldIndex { key, ty }))
        }
        WriteRequest::Rewrite(ids) => {
            let writes: Vec<PointWrite> = ids.iter().filter_map(|id| find_live(st, id, now)).collect();
            Ok((!writes.is_empty()).then_some(Operation::Upsert(writes)))
        }
        WriteRequest::DropFieldIndex { key } => {
            if !st.fields.iter().any(|(k, _)| *k == key) {
                return Err(Error::invalid("field_name", "an indexed field", format!("{key:?}")));
            }
            Ok(Some(Operation::DropFieldIndex { key }))
        }
    }
}

/// Applies `edit` to the payload of every selected point (as one upsert of the full points).
fn update_payloads(
    cfg: &CollectionConfig,
    st: &State,
    now: u64,
    selector: Selector,
    edit: impl Fn(&mut Payload),
) -> Result<Option<Operation>> {
    let targets = match selector {
        Selector::Ids(ids) => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                match find_live(st, &id, now) {
                    Some(p) => out.push(p),
                    None => return Err(Error::PointNotFound { id: id.to_string() }),
                }
            }
            out
        }
        Selector::Filter(f) => {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
            matching_ids(st, &f, now)?.iter().filter_map(|id| find_live(st, id, now)).collect()
        }
    };
    let mut writes = Vec::with_capacity(targets.len());
    for mut p in targets {
        edit(&mut p.payload);
        check_payload_size(&p.id, &p.payload, cfg.max_payload_bytes)?;
        writes.push(p);
    }
    Ok((!writes.is_empty()).then_some(Operation::Upsert(writes)))
}
