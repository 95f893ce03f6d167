//! Qdrant's gRPC messages ↔ the REST API's JSON. Requests become the JSON body the REST route takes (so parsing,
//! limits and error messages are the REST ones); replies' JSON becomes the gRPC reply. A request field that has no
//! REST form here is refused with INVALID_ARGUMENT naming it, never dropped.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use tonic::Status;

use super::pb;

pub type Res<T> = Result<T, Status>;

/// Inserting an optional field into a REST body: absent stays absent.
pub trait Put {
    /// Inserts `key: v` when `v` is given.
    fn put<T: serde::Serialize>(&mut self, key: &str, v: Option<T>);
}

impl Put for Map<String, Value> {
    fn put<T: serde::Serialize>(&mut self, key: &str, v: Option<T>) {
        if let Some(v) = v {
            self.insert(key.to_owned(), json!(v));
        }
    }
}

/// `path.field`, or `field` at the top level.
fn at(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

/// INVALID_ARGUMENT for a field QuiverDB does not serve over gRPC.
pub fn unsupported(field: &str) -> Status {
    Status::invalid_argument(format!("{field} is not supported by QuiverDB's gRPC API (see docs/server.md#grpc)"))
}

fn refuse_if<T>(v: &Option<T>, field: &str) -> Res<()> {
    if v.is_some() { Err(unsupported(field)) } else { Ok(()) }
}

// ------------------------------------------------------------------------------------------- values and payloads

/// A payload value as JSON.
pub fn value_json(v: &pb::Value) -> Value {
    use pb::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        Some(Kind::IntegerValue(i)) => json!(i),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => payload_json(&s.fields),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_json).collect()),
    }
}

/// A payload map as a JSON object.
pub fn payload_json(m: &HashMap<String, pb::Value>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), value_json(v))).collect())
}

/// JSON as a payload value (integers that fit an i64 stay integers).
pub fn json_value(v: &Value) -> pb::Value {
    use pb::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(pb::ListValue { values: a.iter().map(json_value).collect() }),
        Value::Object(o) => Kind::StructValue(pb::Struct { fields: json_payload(o) }),
    };
    pb::Value { kind: Some(kind) }
}

/// A JSON object as a payload map.
pub fn json_payload(o: &Map<String, Value>) -> HashMap<String, pb::Value> {
    o.iter().map(|(k, v)| (k.clone(), json_value(v))).collect()
}

// ----------------------------------------------------------------------------------------------------- point ids

pub fn point_id_json(id: &pb::PointId, field: &str) -> Res<Value> {
    use pb::point_id::PointIdOptions;
    match &id.point_id_options {
        Some(PointIdOptions::Num(n)) => Ok(json!(n)),
        Some(PointIdOptions::Uuid(u)) => Ok(json!(u)),
        None => Err(Status::invalid_argument(format!("{field}: expected a point id (num or uuid), got neither"))),
    }
}

fn ids_json(ids: &[pb::PointId], field: &str) -> Res<Value> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| point_id_json(id, &format!("{field}[{i}]")))
        .collect::<Res<Vec<_>>>()
        .map(Value::Array)
}

pub fn json_point_id(v: &Value) -> pb::PointId {
    use pb::point_id::PointIdOptions;
    let id = match v {
        Value::Number(n) => PointIdOptions::Num(n.as_u64().unwrap_or(0)),
        Value::String(s) => PointIdOptions::Uuid(s.clone()),
        other => PointIdOptions::Uuid(other.to_string()),
    };
    pb::PointId { point_id_options: Some(id) }
}

// ------------------------------------------------------------------------------------------------------- filters

pub fn filter_json(f: &pb::Filter, path: &str) -> Res<Value> {
    let mut out = Map::new();
    for (name, conds) in [("should", &f.should), ("must", &f.must), ("must_not", &f.must_not)] {
        if !conds.is_empty() {
            let list = conds
                .iter()
                .enumerate()
                .map(|(i, c)| condition_json(c, &format!("{path}.{name}[{i}]")))
                .collect::<Res<Vec<_>>>()?;
            out.insert(name.to_owned(), Value::Array(list));
        }
    }
    if let Some(m) = &f.min_should {
        let list = m
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| condition_json(c, &format!("{path}.min_should.conditions[{i}]")))
            .collect::<Res<Vec<_>>>()?;
        out.insert("min_should".into(), json!({"conditions": list, "min_count": m.min_count}));
    }
    Ok(Value::Object(out))
}

fn condition_json(c: &pb::Condition, path: &str) -> Res<Value> {
    use pb::condition::ConditionOneOf as C;
    match &c.condition_one_of {
        Some(C::Field(f)) => field_condition_json(f, path),
        Some(C::IsEmpty(e)) => Ok(json!({"is_empty": {"key": e.key}})),
        Some(C::IsNull(e)) => Ok(json!({"is_null": {"key": e.key}})),
        Some(C::HasId(h)) => Ok(json!({"has_id": ids_json(&h.has_id, &format!("{path}.has_id"))?})),
        Some(C::Filter(f)) => filter_json(f, &format!("{path}.filter")),
        Some(C::Nested(n)) => {
            let f = n.filter.as_ref().map(|f| filter_json(f, &format!("{path}.nested.filter"))).transpose()?;
            Ok(json!({"nested": {"key": n.key, "filter": f.unwrap_or_else(|| json!({}))}}))
        }
        Some(C::HasVector(h)) => Ok(json!({"has_vector": h.has_vector})),
        Some(C::Slice(_)) => Err(unsupported(&format!("{path}.slice"))),
        None => Err(Status::invalid_argument(format!("{path}: expected a condition, got an empty one"))),
    }
}

fn field_condition_json(f: &pb::FieldCondition, path: &str) -> Res<Value> {
    refuse_if(&f.geo_polygon, &format!("{path}.geo_polygon"))?;
    refuse_if(&f.datetime_range, &format!("{path}.datetime_range"))?;
    let mut out = Map::new();
    out.insert("key".into(), json!(f.key));
    if let Some(m) = &f.r#match {
        out.insert("match".into(), match_json(m, path)?);
    }
    if let Some(r) = &f.range {
        out.insert("range".into(), bounds(r.lt, r.gt, r.gte, r.lte));
    }
    if let Some(v) = &f.values_count {
        out.insert("values_count".into(), bounds(v.lt, v.gt, v.gte, v.lte));
    }
    let point = |p: &Option<pb::GeoPoint>| p.as_ref().map(|p| json!({"lon": p.lon, "lat": p.lat}));
    if let Some(b) = &f.geo_bounding_box {
        out.insert(
            "geo_bounding_box".into(),
            json!({"top_left": point(&b.top_left), "bottom_right": point(&b.bottom_right)}),
        );
    }
    if let Some(r) = &f.geo_radius {
        out.insert("geo_radius".into(), json!({"center": point(&r.center), "radius": r.radius}));
    }
    out.put("is_empty", f.is_empty);
    out.put("is_null", f.is_null);
    Ok(Value::Object(out))
}

fn bounds<T: serde::Serialize>(lt: Option<T>, gt: Option<T>, gte: Option<T>, lte: Option<T>) -> Value {
    let mut o = Map::new();
    for (k, v) in [("lt", lt), ("gt", gt), ("gte", gte), ("lte", lte)] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    Value::Object(o)
}

fn match_json(m: &pb::Match, path: &str) -> Res<Value> {
    use pb::r#match::MatchValue as M;
    Ok(match &m.match_value {
        Some(M::Keyword(s)) => json!({"value": s}),
        Some(M::Integer(i)) => json!({"value": i}),
        Some(M::Boolean(b)) => json!({"value": b}),
        Some(M::Text(s)) => json!({"text": s}),
        Some(M::Keywords(k)) => json!({"any": k.strings}),
        Some(M::Integers(k)) => json!({"any": k.integers}),
        Some(M::ExceptIntegers(k)) => json!({"except": k.integers}),
        Some(M::ExceptKeywords(k)) => json!({"except": k.strings}),
        Some(M::Phrase(s)) => json!({"phrase": s}),
        Some(M::TextAny(s)) => json!({"text_any": s}),
        Some(M::Prefix(_)) => return Err(unsupported(&format!("{path}.match.prefix"))),
        Some(M::Substring(_)) => return Err(unsupported(&format!("{path}.match.substring"))),
        None => return Err(Status::invalid_argument(format!("{path}.match: expected a value to match, got none"))),
    })
}

/// `points` or `filter` of a points selector, as the REST body's fields.
pub fn selector_fields(s: Option<&pb::PointsSelector>, field: &str, body: &mut Map<String, Value>) -> Res<()> {
    use pb::points_selector::PointsSelectorOneOf as S;
    match s.and_then(|s| s.points_selector_one_of.as_ref()) {
        Some(S::Points(p)) => {
            body.insert("points".into(), ids_json(&p.ids, &format!("{field}.points.ids"))?);
        }
        Some(S::Filter(f)) => {
            body.insert("filter".into(), filter_json(f, &format!("{field}.filter"))?);
        }
        None => return Err(Status::invalid_argument(format!("{field}: expected point ids or a filter, got neither"))),
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------- selectors, params

pub fn with_payload_json(w: &pb::WithPayloadSelector) -> Option<Value> {
    use pb::with_payload_selector::SelectorOptions as S;
    Some(match w.selector_options.as_ref()? {
        S::Enable(b) => json!(b),
        S::Include(i) => json!({"include": i.fields}),
        S::Exclude(e) => json!({"exclude": e.fields}),
    })
}

pub fn with_vectors_json(w: &pb::WithVectorsSelector) -> Option<Value> {
    use pb::with_vectors_selector::SelectorOptions as S;
    Some(match w.selector_options.as_ref()? {
        S::Enable(b) => json!(b),
        S::Include(i) => json!(i.names),
    })
}

/// `with_payload` / `with_vector` of a read request, when given.
pub fn selectors(o: &mut Map<String, Value>, p: Option<&pb::WithPayloadSelector>, v: Option<&pb::WithVectorsSelector>) {
    if let Some(w) = p.and_then(with_payload_json) {
        o.insert("with_payload".into(), w);
    }
    if let Some(w) = v.and_then(with_vectors_json) {
        o.insert("with_vector".into(), w);
    }
}

pub fn params_json(p: &pb::SearchParams, path: &str) -> Res<Value> {
    refuse_if(&p.acorn, &format!("{path}.acorn"))?;
    refuse_if(&p.idf, &format!("{path}.idf"))?;
    let mut o = Map::new();
    o.put("hnsw_ef", p.hnsw_ef);
    o.put("exact", p.exact);
    o.put("indexed_only", p.indexed_only);
    if let Some(q) = &p.quantization {
        let mut qo = Map::new();
        for (k, v) in [
            ("ignore", q.ignore.map(|b| json!(b))),
            ("rescore", q.rescore.map(|b| json!(b))),
            ("oversampling", q.oversampling.map(|x| json!(x))),
        ] {
            if let Some(v) = v {
                qo.insert(k.into(), v);
            }
        }
        o.insert("quantization".into(), Value::Object(qo));
    }
    Ok(Value::Object(o))
}

// ------------------------------------------------------------------------------------------------------- vectors

/// The vector(s) of an upserted point.
pub fn vectors_json(v: &pb::Vectors, path: &str) -> Res<Value> {
    use pb::vectors::VectorsOptions as V;
    match &v.vectors_options {
        Some(V::Vector(v)) => vector_json(v, path),
        Some(V::Vectors(named)) => {
            let mut o = Map::new();
            for (name, v) in &named.vectors {
                o.insert(name.clone(), vector_json(v, &format!("{path}.{name}"))?);
            }
            Ok(Value::Object(o))
        }
        None => Err(Status::invalid_argument(format!("{path}: expected a vector, got none"))),
    }
}

fn sparse_json(s: &pb::SparseVector) -> Value {
    json!({"indices": s.indices, "values": s.values})
}

fn vector_json(v: &pb::Vector, path: &str) -> Res<Value> {
    use pb::vector::Vector as V;
    if let (None, Some(ix)) = (&v.vector, &v.indices) {
        // The older spelling of a sparse vector: `data` are the values, `indices` their indices.
        return Ok(json!({"indices": ix.data, "values": v.data}));
    }
    if v.vectors_count.is_some_and(|n| n > 1) {
        return Err(unsupported(&format!("{path}.vectors_count (multi-vectors)")));
    }
    match &v.vector {
        Some(V::Dense(d)) => Ok(json!(d.data)),
        None => Ok(json!(v.data)),
        Some(V::Sparse(s)) => Ok(sparse_json(s)),
        Some(V::MultiDense(_)) => Err(unsupported(&format!("{path}.multi_dense"))),
        Some(V::Document(_)) => Err(unsupported(&format!("{path}.document (use REST for text inference)"))),
        Some(V::Image(_)) => Err(unsupported(&format!("{path}.image"))),
        Some(V::Object(_)) => Err(unsupported(&format!("{path}.object"))),
    }
}

fn vector_input_json(v: &pb::VectorInput, path: &str) -> Res<Value> {
    use pb::vector_input::Variant as V;
    match &v.variant {
        Some(V::Id(id)) => point_id_json(id, &format!("{path}.id")),
        Some(V::Dense(d)) => Ok(json!(d.data)),
        Some(V::Sparse(s)) => Ok(sparse_json(s)),
        Some(V::MultiDense(_)) => Err(unsupported(&format!("{path}.multi_dense"))),
        Some(V::Document(_)) => Err(unsupported(&format!("{path}.document (use REST for text inference)"))),
        Some(V::Image(_)) => Err(unsupported(&format!("{path}.image"))),
        Some(V::Object(_)) => Err(unsupported(&format!("{path}.object"))),
        None => Err(Status::invalid_argument(format!("{path}: expected a vector or a point id, got none"))),
    }
}

/// A stored vector (REST JSON: an array, or an object of named arrays) as gRPC output.
pub fn vectors_output(v: &Value) -> Option<pb::VectorsOutput> {
    use pb::vectors_output::VectorsOptions as V;
    let floats = |a: &[Value]| a.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect::<Vec<f32>>();
    let dense = |v: &Value| {
        if let (Some(ix), Some(vals)) =
            (v.get("indices").and_then(Value::as_array), v.get("values").and_then(Value::as_array))
        {
            let indices = ix.iter().map(|x| x.as_u64().unwrap_or(0) as u32).collect();
            return Some(pb::VectorOutput {
                data: Vec::new(),
                vector: Some(pb::vector_output::Vector::Sparse(pb::SparseVector { values: floats(vals), indices })),
            });
        }
        v.as_array().map(|a| pb::VectorOutput {
            data: Vec::new(),
            vector: Some(pb::vector_output::Vector::Dense(pb::DenseVector { data: floats(a) })),
        })
    };
    let opt = match v {
        Value::Array(_) => V::Vector(dense(v)?),
        Value::Object(o) => V::Vectors(pb::NamedVectorsOutput {
            vectors: o.iter().filter_map(|(k, v)| Some((k.clone(), dense(v)?))).collect(),
        }),
        _ => return None,
    };
    Some(pb::VectorsOutput { vectors_options: Some(opt) })
}

// --------------------------------------------------------------------------------------------------------- query

pub fn order_by_body(o: &pb::OrderBy) -> Res<Value> {
    let mut m = Map::new();
    m.insert("key".into(), json!(o.key));
    if let Some(d) = o.direction {
        m.insert("direction".into(), json!(if d == 1 { "desc" } else { "asc" }));
    }
    if let Some(s) = o.start_from.as_ref().and_then(|s| s.value.as_ref()) {
        use pb::start_from::Value as S;
        let v = match s {
            S::Float(f) => json!(f),
            S::Integer(i) => json!(i),
            S::Datetime(d) => json!(d),
            S::Timestamp(_) => return Err(unsupported("order_by.start_from.timestamp (send datetime)")),
        };
        m.insert("start_from".into(), v);
    }
    Ok(Value::Object(m))
}

fn query_json(q: &pb::Query, path: &str) -> Res<Value> {
    use pb::query::Variant as Q;
    let list = |v: &[pb::VectorInput], name: &str| {
        v.iter()
            .enumerate()
            .map(|(i, x)| vector_input_json(x, &format!("{path}.recommend.{name}[{i}]")))
            .collect::<Res<Vec<_>>>()
    };
    match &q.variant {
        Some(Q::Nearest(v)) => vector_input_json(v, &format!("{path}.nearest")),
        Some(Q::Recommend(r)) => {
            let mut o = Map::new();
            o.insert("positive".into(), Value::Array(list(&r.positive, "positive")?));
            o.insert("negative".into(), Value::Array(list(&r.negative, "negative")?));
            if let Some(s) = r.strategy {
                let name = match s {
                    0 => "average_vector",
                    1 => "best_score",
                    2 => "sum_scores",
                    _ => return Err(Status::invalid_argument(format!("{path}.recommend.strategy: unknown value {s}"))),
                };
                o.insert("strategy".into(), json!(name));
            }
            Ok(json!({"recommend": o}))
        }
        Some(Q::OrderBy(o)) => Ok(json!({"order_by": order_by_body(o)?})),
        Some(Q::Fusion(f)) => match f {
            0 => Ok(json!({"fusion": "rrf"})),
            1 => Ok(json!({"fusion": "dbsf"})),
            _ => Err(Status::invalid_argument(format!("{path}.fusion: unknown value {f}"))),
        },
        Some(Q::Rrf(r)) => {
            let mut o = Map::new();
            o.put("k", r.k);
            if !r.weights.is_empty() {
                o.insert("weights".into(), json!(r.weights));
            }
            Ok(json!({"rrf": o}))
        }
        Some(Q::Discover(d)) => {
            let Some(target) = &d.target else {
                return Err(Status::invalid_argument(format!(
                    "{path}.discover.target: expected a vector input, got none"
                )));
            };
            let target = vector_input_json(target, &format!("{path}.discover.target"))?;
            let pairs = context_json(d.context.as_ref(), &format!("{path}.discover.context"))?;
            Ok(json!({"discover": {"target": target, "context": pairs}}))
        }
        Some(Q::Context(c)) => Ok(json!({"context": context_json(Some(c), &format!("{path}.context"))?})),
        Some(Q::Sample(_)) => Err(unsupported(&format!("{path}.sample"))),
        Some(Q::Formula(_)) => Err(unsupported(&format!("{path}.formula"))),
        Some(Q::NearestWithMmr(_)) => Err(unsupported(&format!("{path}.nearest_with_mmr"))),
        Some(Q::RelevanceFeedback(_)) => Err(unsupported(&format!("{path}.relevance_feedback"))),
        Some(Q::Text(_)) => Err(unsupported(&format!("{path}.text"))),
        None => Err(Status::invalid_argument(format!("{path}: expected a query, got an empty one"))),
    }
}

/// Context pairs as the REST form's list of `{"positive", "negative"}`.
fn context_json(c: Option<&pb::ContextInput>, path: &str) -> Res<Value> {
    let pairs = c.map(|c| c.pairs.as_slice()).unwrap_or_default();
    let mut out = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let side = |v: &Option<pb::VectorInput>, name: &str| match v {
            Some(v) => vector_input_json(v, &format!("{path}[{i}].{name}")),
            None => Err(Status::invalid_argument(format!("{path}[{i}].{name}: expected a vector input, got none"))),
        };
        out.push(json!({"positive": side(&p.positive, "positive")?, "negative": side(&p.negative, "negative")?}));
    }
    Ok(Value::Array(out))
}

/// `lookup_from` in the REST form.
fn lookup_json(l: &pb::LookupLocation, path: &str) -> Res<Value> {
    refuse_if(&l.shard_key_selector, &format!("{path}.shard_key_selector"))?;
    let mut o = Map::new();
    o.insert("collection".into(), json!(l.collection_name));
    if let Some(v) = &l.vector_name {
        o.insert("vector".into(), json!(v));
    }
    Ok(Value::Object(o))
}

fn prefetch_json(p: &pb::PrefetchQuery, path: &str) -> Res<Value> {
    let mut o = Map::new();
    if let Some(l) = &p.lookup_from {
        o.insert("lookup_from".into(), lookup_json(l, &format!("{path}.lookup_from"))?);
    }
    if !p.prefetch.is_empty() {
        let inner = p
            .prefetch
            .iter()
            .enumerate()
            .map(|(i, x)| prefetch_json(x, &format!("{path}.prefetch[{i}]")))
            .collect::<Res<Vec<_>>>()?;
        o.insert("prefetch".into(), Value::Array(inner));
    }
    if let Some(q) = &p.query {
        o.insert("query".into(), query_json(q, &format!("{path}.query"))?);
    }
    common_search_fields(&mut o, p.using.as_ref(), p.filter.as_ref(), p.params.as_ref(), p.score_threshold, path)?;
    o.put("limit", p.limit);
    Ok(Value::Object(o))
}

fn common_search_fields(
    o: &mut Map<String, Value>,
    using: Option<&String>,
    filter: Option<&pb::Filter>,
    params: Option<&pb::SearchParams>,
    score_threshold: Option<f32>,
    path: &str,
) -> Res<()> {
    o.put("using", using);
    if let Some(f) = filter {
        o.insert("filter".into(), filter_json(f, &at(path, "filter"))?);
    }
    if let Some(p) = params {
        o.insert("params".into(), params_json(p, &at(path, "params"))?);
    }
    o.put("score_threshold", score_threshold);
    Ok(())
}

fn prefetches(list: &[pb::PrefetchQuery], o: &mut Map<String, Value>) -> Res<()> {
    if !list.is_empty() {
        let v = list
            .iter()
            .enumerate()
            .map(|(i, p)| prefetch_json(p, &format!("prefetch[{i}]")))
            .collect::<Res<Vec<_>>>()?;
        o.insert("prefetch".into(), Value::Array(v));
    }
    Ok(())
}

/// The REST body of `POST /points/query`.
pub fn query_body(q: &pb::QueryPoints) -> Res<Value> {
    refuse_if(&q.shard_key_selector, "shard_key_selector")?;
    let mut o = Map::new();
    if let Some(l) = &q.lookup_from {
        o.insert("lookup_from".into(), lookup_json(l, "lookup_from")?);
    }
    prefetches(&q.prefetch, &mut o)?;
    if let Some(x) = &q.query {
        o.insert("query".into(), query_json(x, "query")?);
    }
    common_search_fields(&mut o, q.using.as_ref(), q.filter.as_ref(), q.params.as_ref(), q.score_threshold, "")?;
    o.put("limit", q.limit);
    o.put("offset", q.offset);
    selectors(&mut o, q.with_payload.as_ref(), q.with_vectors.as_ref());
    Ok(Value::Object(o))
}

/// The REST body of `POST /points/query/groups`.
pub fn query_groups_body(q: &pb::QueryPointGroups) -> Res<Value> {
    refuse_if(&q.shard_key_selector, "shard_key_selector")?;
    refuse_if(&q.with_lookup, "with_lookup")?;
    let mut o = Map::new();
    if let Some(l) = &q.lookup_from {
        o.insert("lookup_from".into(), lookup_json(l, "lookup_from")?);
    }
    prefetches(&q.prefetch, &mut o)?;
    if let Some(x) = &q.query {
        o.insert("query".into(), query_json(x, "query")?);
    }
    common_search_fields(&mut o, q.using.as_ref(), q.filter.as_ref(), q.params.as_ref(), q.score_threshold, "")?;
    o.insert("group_by".into(), json!(q.group_by));
    o.put("limit", q.limit);
    o.put("group_size", q.group_size);
    selectors(&mut o, q.with_payload.as_ref(), q.with_vectors.as_ref());
    Ok(Value::Object(o))
}

/// The REST body of `POST /points/search`.
pub fn search_body(s: &pb::SearchPoints) -> Res<Value> {
    refuse_if(&s.shard_key_selector, "shard_key_selector")?;
    let mut o = Map::new();
    let vector = match (&s.vector_name, &s.sparse_indices) {
        (Some(name), Some(ix)) => json!({"name": name, "vector": {"indices": ix.data, "values": s.vector}}),
        (None, Some(_)) => {
            return Err(Status::invalid_argument("sparse_indices: expected a vector_name (the sparse vector's)"));
        }
        (Some(name), None) => json!({"name": name, "vector": s.vector}),
        (None, None) => json!(s.vector),
    };
    o.insert("vector".into(), vector);
    common_search_fields(&mut o, None, s.filter.as_ref(), s.params.as_ref(), s.score_threshold, "")?;
    o.insert("limit".into(), json!(s.limit));
    o.put("offset", s.offset);
    selectors(&mut o, s.with_payload.as_ref(), s.with_vectors.as_ref());
    Ok(Value::Object(o))
}

// ------------------------------------------------------------------------------------------------------- replies

fn payload_of(v: &Value) -> HashMap<String, pb::Value> {
    v.get("payload").and_then(Value::as_object).map(json_payload).unwrap_or_default()
}

pub fn scored_point(v: &Value) -> pb::ScoredPoint {
    pb::ScoredPoint {
        id: Some(json_point_id(&v["id"])),
        payload: payload_of(v),
        score: v["score"].as_f64().unwrap_or(0.0) as f32,
        version: v["version"].as_u64().unwrap_or(0),
        vectors: v.get("vector").and_then(vectors_output),
    }
}

pub fn scored_points(v: &Value) -> Vec<pb::ScoredPoint> {
    v.as_array().map(|a| a.iter().map(scored_point).collect()).unwrap_or_default()
}

pub fn retrieved_point(v: &Value) -> pb::RetrievedPoint {
    pb::RetrievedPoint {
        id: Some(json_point_id(&v["id"])),
        payload: payload_of(v),
        vectors: v.get("vector").and_then(vectors_output),
        order_value: v.get("order_value").and_then(order_value),
    }
}

/// An ordered scroll's `order_value`: an integer or a float.
fn order_value(v: &Value) -> Option<pb::OrderValue> {
    use pb::order_value::Variant;
    let variant = match v.as_i64() {
        Some(i) => Variant::Int(i),
        None => Variant::Float(v.as_f64()?),
    };
    Some(pb::OrderValue { variant: Some(variant) })
}

pub fn update_result(v: &Value) -> pb::UpdateResult {
    pb::UpdateResult {
        operation_id: v["operation_id"].as_u64(),
        status: if v["status"] == "completed" { 2 } else { 1 },
    }
}

pub fn group_id(v: &Value) -> pb::GroupId {
    use pb::group_id::Kind;
    let kind = match v {
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Number(n) if n.as_u64().is_some() => Kind::UnsignedValue(n.as_u64().unwrap_or(0)),
        Value::Number(n) => Kind::IntegerValue(n.as_i64().unwrap_or(0)),
        other => Kind::StringValue(other.to_string()),
    };
    pb::GroupId { kind: Some(kind) }
}

// --------------------------------------------------------------------------------------------------- collections

const DISTANCES: [&str; 5] = ["", "Cosine", "Euclid", "Dot", "Manhattan"];

fn vector_params_json(p: &pb::VectorParams, path: &str) -> Res<Value> {
    refuse_if(&p.quantization_config, &format!("{path}.quantization_config"))?;
    refuse_if(&p.multivector_config, &format!("{path}.multivector_config"))?;
    let distance = DISTANCES.get(p.distance as usize).filter(|d| !d.is_empty()).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{path}.distance: expected Cosine, Euclid, Dot or Manhattan, got {}",
            p.distance
        ))
    })?;
    let mut o = Map::new();
    o.insert("size".into(), json!(p.size));
    o.insert("distance".into(), json!(distance));
    if let Some(h) = &p.hnsw_config {
        o.insert("hnsw_config".into(), hnsw_json(h));
    }
    o.put("on_disk", p.on_disk);
    Ok(Value::Object(o))
}

fn hnsw_json(h: &pb::HnswConfigDiff) -> Value {
    let mut o = Map::new();
    for (k, v) in [
        ("m", h.m),
        ("ef_construct", h.ef_construct),
        ("full_scan_threshold", h.full_scan_threshold),
        ("max_indexing_threads", h.max_indexing_threads),
        ("payload_m", h.payload_m),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    o.put("on_disk", h.on_disk);
    Value::Object(o)
}

/// The REST body of `PUT /collections/{name}`.
pub fn create_body(c: &pb::CreateCollection) -> Res<Value> {
    refuse_if(&c.quantization_config, "quantization_config")?;
    refuse_if(&c.strict_mode_config, "strict_mode_config")?;
    refuse_if(&c.payload, "payload")?;
    refuse_if(&c.id_tracker, "id_tracker")?;
    let mut o = Map::new();
    use pb::vectors_config::Config;
    match c.vectors_config.as_ref().and_then(|v| v.config.as_ref()) {
        Some(Config::Params(p)) => {
            o.insert("vectors".into(), vector_params_json(p, "vectors_config.params")?);
        }
        Some(Config::ParamsMap(m)) => {
            let mut named = Map::new();
            for (k, p) in &m.map {
                named.insert(k.clone(), vector_params_json(p, &format!("vectors_config.params_map.{k}"))?);
            }
            o.insert("vectors".into(), Value::Object(named));
        }
        None => {}
    }
    if let Some(sv) = &c.sparse_vectors_config {
        let mut m = Map::new();
        for (name, p) in &sv.map {
            let mut params = Map::new();
            // The index settings have no effect (every sparse search is exact); the modifier is checked by REST.
            if let Some(modifier) = p.modifier {
                params.insert("modifier".into(), json!(if modifier == 1 { "idf" } else { "none" }));
            }
            m.insert(name.clone(), Value::Object(params));
        }
        o.insert("sparse_vectors".into(), Value::Object(m));
    }
    if let Some(h) = &c.hnsw_config {
        o.insert("hnsw_config".into(), hnsw_json(h));
    }
    o.put("shard_number", c.shard_number);
    o.put("replication_factor", c.replication_factor);
    o.put("on_disk_payload", c.on_disk_payload);
    if !c.metadata.is_empty() {
        o.insert("metadata".into(), payload_json(&c.metadata));
    }
    Ok(Value::Object(o))
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn vectors_config_of(v: &Value) -> Option<pb::VectorsConfig> {
    use pb::vectors_config::Config;
    let params = |p: &Value| -> Option<pb::VectorParams> {
        let d = p.get("distance")?.as_str()?;
        Some(pb::VectorParams {
            size: u64_at(p, "size")?,
            distance: DISTANCES.iter().position(|x| *x == d).unwrap_or(0) as i32,
            on_disk: p.get("on_disk").and_then(Value::as_bool),
            ..Default::default()
        })
    };
    let config = if v.get("size").is_some() {
        Config::Params(params(v)?)
    } else {
        Config::ParamsMap(pb::VectorParamsMap {
            map: v.as_object()?.iter().filter_map(|(k, p)| Some((k.clone(), params(p)?))).collect(),
        })
    };
    Some(pb::VectorsConfig { config: Some(config) })
}

const SCHEMA_TYPES: [&str; 9] = ["", "keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"];

/// A collection's REST info as gRPC's.
pub fn collection_info(v: &Value) -> pb::CollectionInfo {
    let cfg = &v["config"];
    let h = &cfg["hnsw_config"];
    let opt = &cfg["optimizer_config"];
    let wal = &cfg["wal_config"];
    let params = &cfg["params"];
    pb::CollectionInfo {
        status: match v["status"].as_str() {
            Some("green") => 1,
            Some("yellow") => 2,
            Some("red") => 3,
            Some("grey") => 4,
            _ => 0,
        },
        optimizer_status: Some(match &v["optimizer_status"] {
            Value::Object(o) if o.contains_key("error") => {
                pb::OptimizerStatus { ok: false, error: o["error"].as_str().unwrap_or_default().to_owned() }
            }
            _ => pb::OptimizerStatus { ok: true, error: String::new() },
        }),
        segments_count: u64_at(v, "segments_count").unwrap_or(0),
        config: Some(pb::CollectionConfig {
            params: Some(pb::CollectionParams {
                shard_number: u64_at(params, "shard_number").unwrap_or(1) as u32,
                on_disk_payload: params["on_disk_payload"].as_bool().unwrap_or(false),
                vectors_config: params.get("vectors").and_then(vectors_config_of),
                sparse_vectors_config: params
                    .get("sparse_vectors")
                    .and_then(Value::as_object)
                    .filter(|m| !m.is_empty())
                    .map(|m| pb::SparseVectorConfig {
                        map: m
                            .iter()
                            .map(|(k, v)| {
                                let idf = v.get("modifier").and_then(Value::as_str) == Some("idf");
                                (k.clone(), pb::SparseVectorParams { index: None, modifier: idf.then_some(1) })
                            })
                            .collect(),
                    }),
                replication_factor: u64_at(params, "replication_factor").map(|n| n as u32),
                write_consistency_factor: u64_at(params, "write_consistency_factor").map(|n| n as u32),
            }),
            hnsw_config: Some(pb::HnswConfigDiff {
                m: u64_at(h, "m"),
                ef_construct: u64_at(h, "ef_construct"),
                full_scan_threshold: u64_at(h, "full_scan_threshold"),
                max_indexing_threads: u64_at(h, "max_indexing_threads"),
                on_disk: h["on_disk"].as_bool(),
                payload_m: u64_at(h, "payload_m"),
                ..Default::default()
            }),
            optimizer_config: Some(pb::OptimizersConfigDiff {
                deleted_threshold: opt["deleted_threshold"].as_f64(),
                vacuum_min_vector_number: u64_at(opt, "vacuum_min_vector_number"),
                default_segment_number: u64_at(opt, "default_segment_number"),
                max_segment_size: u64_at(opt, "max_segment_size"),
                memmap_threshold: u64_at(opt, "memmap_threshold"),
                indexing_threshold: u64_at(opt, "indexing_threshold"),
                flush_interval_sec: u64_at(opt, "flush_interval_sec"),
                deprecated_max_optimization_threads: u64_at(opt, "max_optimization_threads"),
                ..Default::default()
            }),
            wal_config: Some(pb::WalConfigDiff {
                wal_capacity_mb: u64_at(wal, "wal_capacity_mb"),
                wal_segments_ahead: u64_at(wal, "wal_segments_ahead"),
                wal_retain_closed: u64_at(wal, "wal_retain_closed"),
            }),
        }),
        payload_schema: v["payload_schema"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, s)| {
                        let t = s["data_type"].as_str().unwrap_or("");
                        let info = pb::PayloadSchemaInfo {
                            data_type: SCHEMA_TYPES.iter().position(|x| *x == t).unwrap_or(0) as i32,
                            params: s.get("params").and_then(text_params_out),
                            points: u64_at(s, "points"),
                        };
                        (k.clone(), info)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        points_count: u64_at(v, "points_count"),
        indexed_vectors_count: u64_at(v, "indexed_vectors_count"),
    }
}

const TOKENIZERS: [&str; 6] = ["", "prefix", "whitespace", "word", "multilingual", "code"];

/// The REST `field_schema` of a gRPC field type and its index parameters (a text index's settings become REST's;
/// the other kinds' settings are accepted and ignored, as over REST).
pub fn field_schema(t: Option<i32>, params: Option<&pb::PayloadIndexParams>) -> Res<Value> {
    const TYPES: [&str; 8] = ["keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"];
    let t = t.unwrap_or(0);
    let name = usize::try_from(t)
        .ok()
        .and_then(|i| TYPES.get(i))
        .ok_or_else(|| Status::invalid_argument(format!("field_type: expected 0 to 7 (Keyword to Uuid), got {t}")))?;
    use pb::payload_index_params::IndexParams;
    let Some(IndexParams::TextIndexParams(p)) = params.and_then(|p| p.index_params.as_ref()) else {
        return Ok(json!(name));
    };
    if *name != "text" {
        return Err(Status::invalid_argument(format!("field_index_params: text index parameters for a {name} field")));
    }
    let at = "field_index_params.text_index_params";
    if p.ascii_folding == Some(true) {
        return Err(unsupported(&format!("{at}.ascii_folding")));
    }
    if p.nested.is_some() {
        return Err(unsupported(&format!("{at}.nested")));
    }
    let mut o = Map::new();
    o.insert("type".into(), json!("text"));
    if p.tokenizer != 0 {
        let name = TOKENIZERS
            .get(p.tokenizer as usize)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Status::invalid_argument(format!("{at}.tokenizer: expected 1 to 5, got {}", p.tokenizer)))?;
        o.insert("tokenizer".into(), json!(name));
    }
    o.put("lowercase", p.lowercase);
    for (k, v) in [("min_token_len", p.min_token_len), ("max_token_len", p.max_token_len)] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    o.put("phrase_matching", p.phrase_matching);
    if let Some(sw) = &p.stopwords {
        if !sw.custom.is_empty() {
            return Err(unsupported(&format!("{at}.stopwords.custom")));
        }
        o.insert("stopwords".into(), json!({"languages": sw.languages}));
    }
    if let Some(pb::stemming_algorithm::StemmingParams::Snowball(sb)) =
        p.stemmer.as_ref().and_then(|s| s.stemming_params.as_ref())
    {
        o.insert("stemmer".into(), json!({"type": "snowball", "language": sb.language}));
    }
    Ok(Value::Object(o))
}

/// A text index's REST parameters (`payload_schema.<key>.params`) as gRPC's.
fn text_params_out(p: &Value) -> Option<pb::PayloadIndexParams> {
    if p.get("type").and_then(Value::as_str) != Some("text") {
        return None;
    }
    let languages = match p.get("stopwords") {
        Some(Value::String(l)) => Some(vec![l.clone()]),
        Some(Value::Object(m)) => m
            .get("languages")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => None,
    };
    let stemmer =
        p.get("stemmer").and_then(|s| s.get("language")).and_then(Value::as_str).map(|l| pb::StemmingAlgorithm {
            stemming_params: Some(pb::stemming_algorithm::StemmingParams::Snowball(pb::SnowballParams {
                language: l.to_owned(),
            })),
        });
    let tokenizer = p.get("tokenizer").and_then(Value::as_str).and_then(|t| TOKENIZERS.iter().position(|x| *x == t));
    Some(pb::PayloadIndexParams {
        index_params: Some(pb::payload_index_params::IndexParams::TextIndexParams(pb::TextIndexParams {
            tokenizer: tokenizer.unwrap_or(3) as i32,
            lowercase: p.get("lowercase").and_then(Value::as_bool).or(Some(true)),
            stopwords: languages.map(|languages| pb::StopwordsSet { languages, custom: Vec::new() }),
            stemmer,
            ..Default::default()
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, m: pb::r#match::MatchValue) -> pb::Condition {
        pb::Condition {
            condition_one_of: Some(pb::condition::ConditionOneOf::Field(pb::FieldCondition {
                key: key.into(),
                r#match: Some(pb::Match { match_value: Some(m) }),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn filters_become_the_rest_shape() {
        use pb::r#match::MatchValue as M;
        let f = pb::Filter {
            must: vec![field("colour", M::Keyword("red".into()))],
            must_not: vec![field("n", M::Integers(pb::RepeatedIntegers { integers: vec![1, 2] }))],
            should: vec![pb::Condition {
                condition_one_of: Some(pb::condition::ConditionOneOf::HasId(pb::HasIdCondition {
                    has_id: vec![json_point_id(&json!(7)), json_point_id(&json!("a-uuid"))],
                })),
            }],
            min_should: None,
        };
        assert_eq!(
            filter_json(&f, "filter").unwrap(),
            json!({
                "must": [{"key": "colour", "match": {"value": "red"}}],
                "must_not": [{"key": "n", "match": {"any": [1, 2]}}],
                "should": [{"has_id": [7, "a-uuid"]}],
            })
        );
    }

    #[test]
    fn fields_without_a_rest_form_are_refused_by_name() {
        let polygon = pb::Filter {
            must: vec![pb::Condition {
                condition_one_of: Some(pb::condition::ConditionOneOf::Field(pb::FieldCondition {
                    key: "loc".into(),
                    geo_polygon: Some(pb::Unsupported {}),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        let e = filter_json(&polygon, "filter").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("filter.must[0].geo_polygon"), "{}", e.message());
        let q = pb::QueryPoints {
            query: Some(pb::Query { variant: Some(pb::query::Variant::Formula(pb::Unsupported {})) }),
            ..Default::default()
        };
        assert!(query_body(&q).unwrap_err().message().contains("query.formula"));
        // A discovery without its target, or a context pair without a side, is named too.
        let discover = pb::DiscoverInput { target: None, context: Some(pb::ContextInput { pairs: vec![] }) };
        let q = pb::QueryPoints {
            query: Some(pb::Query { variant: Some(pb::query::Variant::Discover(discover)) }),
            ..Default::default()
        };
        assert!(query_body(&q).unwrap_err().message().contains("query.discover.target"));
        let pair = pb::ContextInputPair { positive: None, negative: None };
        let q = pb::QueryPoints {
            query: Some(pb::Query {
                variant: Some(pb::query::Variant::Context(pb::ContextInput { pairs: vec![pair] })),
            }),
            ..Default::default()
        };
        assert!(query_body(&q).unwrap_err().message().contains("query.context[0].positive"));
        let empty = pb::Filter { must: vec![pb::Condition { condition_one_of: None }], ..Default::default() };
        assert!(filter_json(&empty, "filter").unwrap_err().message().contains("filter.must[0]"));
        let q = pb::QueryPoints { filter: Some(empty), ..Default::default() };
        assert!(query_body(&q).unwrap_err().message().starts_with("filter.must[0]"), "top-level paths start bare");
        assert!(field_schema(Some(9), None).is_err());
        assert_eq!(field_schema(None, None).unwrap(), json!("keyword"));
    }

    #[test]
    fn payload_values_round_trip() {
        let v = json!({"a": 1, "b": 2.5, "c": "x", "d": [true, null], "e": {"f": -3}});
        let back = payload_json(&json_payload(v.as_object().unwrap()));
        assert_eq!(back, v);
    }
}
