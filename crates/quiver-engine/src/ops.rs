//! Numbered operations: every write to a collection is one [`Operation`] with a sequence number, logged before it
//! is applied. Operations are *self-contained*: a payload update is logged as the full resulting point, a delete by
//! filter as the ids it resolved to. Applying one twice, or on top of a state that already holds its effect, gives
//! the same state — which is what makes replay after a checkpoint (and a replicated log later) safe.

use std::path::Path;

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::fulltext::TextOptions;
use crate::id::PointId;
use crate::payload::Payload;
use crate::payload_index::FieldType;

/// Format version of an encoded operation (its first byte).
pub const OP_VERSION: u8 = 1;

/// One point as written: id, prepared vectors (normalised under cosine), payload, times.
#[derive(Debug, Clone, PartialEq)]
pub struct PointWrite {
    /// The id.
    pub id: PointId,
    /// The vector of space 0 (the collection's only vector, or its first named one), already validated and
    /// prepared for the metric. Empty: the point has none (named vectors only).
    pub vector: Vec<f32>,
    /// The vectors of the other named spaces, in space order (empty: the collection has one vector space); an
    /// empty entry: the point has no vector in that space.
    pub more: Vec<Vec<f32>>,
    /// The sparse vectors, one per sparse vector of the collection in name order (empty: it has none); an empty
    /// entry: the point has none there.
    pub sparse: Vec<crate::sparse::SparseVector>,
    /// The payload (an empty object when none).
    pub payload: Payload,
    /// When the point was first written (unix ms); kept across payload updates. The tier policy ages by it.
    pub created_ms: u64,
    /// When the point expires (unix ms); 0 = never.
    pub expires_ms: u64,
}

/// A write.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Insert or replace whole points.
    Upsert(Vec<PointWrite>),
    /// Remove points (missing ids are ignored).
    Delete(Vec<PointId>),
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
}

fn field_type_code(t: FieldType) -> u8 {
    match t {
        FieldType::Keyword => 1,
        FieldType::Integer => 2,
        FieldType::Float => 3,
        FieldType::Bool => 4,
        FieldType::Datetime => 5,
        FieldType::Text(_) => 6,
        FieldType::Geo => 7,
    }
}

pub(crate) fn field_type_from_code(c: u8) -> Option<FieldType> {
    Some(match c {
        1 => FieldType::Keyword,
        2 => FieldType::Integer,
        3 => FieldType::Float,
        4 => FieldType::Bool,
        5 => FieldType::Datetime,
        6 => FieldType::Text(TextOptions::default()),
        7 => FieldType::Geo,
        _ => return None,
    })
}

/// A type code, then for text its option flags.
pub(crate) fn write_field_type(w: &mut Writer, t: FieldType) {
    w.u8(field_type_code(t));
    if let FieldType::Text(o) = t {
        w.u8(o.flags());
    }
}

pub(crate) fn read_field_type(r: &mut Reader<'_>) -> Result<FieldType> {
    let c = r.u8("field type")?;
    match field_type_from_code(c) {
        Some(FieldType::Text(_)) => {
            let f = r.u8("text options")?;
            let o = TextOptions::from_flags(f).ok_or_else(|| r.corrupt(format!("unknown text options {f}")))?;
            Ok(FieldType::Text(o))
        }
        Some(t) => Ok(t),
        None => Err(r.corrupt(format!("unknown field type {c}"))),
    }
}

pub(crate) fn write_payload(w: &mut Writer, p: &Payload) {
    // Serialising a map of JSON values cannot fail.
    let json = serde_json::to_vec(p).unwrap_or_default();
    w.bytes(&json);
}

pub(crate) fn read_payload(r: &mut Reader<'_>) -> Result<Payload> {
    let b = r.bytes("payload")?;
    serde_json::from_slice(b).map_err(|e| r.corrupt(format!("payload: {e}")))
}

impl Operation {
    /// The operation's bytes (`docs/format.md`, "Operation").
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(OP_VERSION);
        match self {
            Operation::Upsert(points) => {
                // Tag 5 carries named vectors; tag 1 (one vector per point) keeps the bytes of an unnamed
                // collection's log as they always were.
                let named = points.iter().any(|p| !p.more.is_empty() || p.vector.is_empty() || !p.sparse.is_empty());
                w.u8(if named { 5 } else { 1 });
                w.u64(points.len() as u64);
                for p in points {
                    w.id(&p.id);
                    w.u64(p.created_ms);
                    w.u64(p.expires_ms);
                    w.f32s(&p.vector);
                    if named {
                        w.u64(p.more.len() as u64);
                        for v in &p.more {
                            w.f32s(v);
                        }
                        w.u64(p.sparse.len() as u64);
                        for v in &p.sparse {
                            v.encode(&mut w);
                        }
                    }
                    write_payload(&mut w, &p.payload);
                }
            }
            Operation::Delete(ids) => {
                w.u8(2);
                w.u64(ids.len() as u64);
                for id in ids {
                    w.id(id);
                }
            }
            Operation::CreateFieldIndex { key, ty } => {
                w.u8(3);
                w.str(key);
                write_field_type(&mut w, *ty);
            }
            Operation::DropFieldIndex { key } => {
                w.u8(4);
                w.str(key);
            }
        }
        w.buf
    }

    /// Decodes [`Operation::encode`]'s bytes; `file` and `offset` only name the place in errors.
    pub fn decode(bytes: &[u8], file: &Path, offset: u64) -> Result<Operation> {
        let mut r = Reader::new(bytes, file, offset);
        let v = r.u8("operation version")?;
        if v != OP_VERSION {
            return Err(r.corrupt(format!("operation version {v}, this build reads {OP_VERSION}")));
        }
        let op = match r.u8("operation tag")? {
            tag @ (1 | 5) => {
                let n = r.len(9 + 16 + 8, "upsert count")?;
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.id("point id")?;
                    let created_ms = r.u64("created")?;
                    let expires_ms = r.u64("expires")?;
                    let vector = r.f32s("vector")?;
                    let (mut more, mut sparse) = (Vec::new(), Vec::new());
                    if tag == 5 {
                        let m = r.len(8, "named vector count")?;
                        for _ in 0..m {
                            more.push(r.f32s("named vector")?);
                        }
                        let m = r.len(8, "sparse vector count")?;
                        for _ in 0..m {
                            sparse.push(crate::sparse::SparseVector::decode(&mut r, "sparse vector")?);
                        }
                    }
                    let payload = read_payload(&mut r)?;
                    points.push(PointWrite { id, vector, more, sparse, payload, created_ms, expires_ms });
                }
                Operation::Upsert(points)
            }
            2 => {
                let n = r.len(9, "delete count")?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(r.id("point id")?);
                }
                Operation::Delete(ids)
            }
            3 => {
                let key = r.string("field key")?;
                let ty = read_field_type(&mut r)?;
                Operation::CreateFieldIndex { key, ty }
            }
            4 => Operation::DropFieldIndex { key: r.string("field key")? },
            t => return Err(r.corrupt(format!("unknown operation tag {t}"))),
        };
        if !r.is_empty() {
            return Err(r.corrupt("trailing bytes after the operation"));
        }
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn operations_round_trip() {
        let ops = vec![
            Operation::Upsert(vec![PointWrite {
                id: PointId::Uuid(7 << 100),
                vector: vec![0.5, -1.0, 3.25],
                more: Vec::new(),
                sparse: Vec::new(),
                payload: json!({"a": [1, "x"], "b": {"c": null}}).as_object().unwrap().clone(),
                created_ms: 1_700_000_000_000,
                expires_ms: 0,
            }]),
            Operation::Upsert(vec![
                PointWrite {
                    id: PointId::Num(9),
                    vector: Vec::new(),
                    more: vec![vec![1.0, 2.0], Vec::new()],
                    sparse: vec![crate::sparse::SparseVector { indices: vec![3, 9], values: vec![0.5, -1.0] }],
                    payload: Payload::new(),
                    created_ms: 3,
                    expires_ms: 4,
                },
                PointWrite {
                    id: PointId::Num(10),
                    vector: vec![0.25],
                    more: vec![Vec::new(), vec![7.0]],
                    sparse: vec![crate::sparse::SparseVector::default()],
                    payload: Payload::new(),
                    created_ms: 3,
                    expires_ms: 0,
                },
            ]),
            Operation::Delete(vec![PointId::Num(1), PointId::Num(u64::MAX)]),
            Operation::CreateFieldIndex { key: "a.b".into(), ty: FieldType::Datetime },
            Operation::CreateFieldIndex {
                key: "body".into(),
                ty: FieldType::Text(TextOptions { stem: true, stopwords: false }),
            },
            Operation::DropFieldIndex { key: "a".into() },
        ];
        for op in ops {
            let b = op.encode();
            assert_eq!(Operation::decode(&b, Path::new("x"), 0).unwrap(), op);
        }
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Operation::decode(&bytes, Path::new("x"), 0);
        }

        #[test]
        fn truncated_operations_are_errors(cut in 0usize..60) {
            let op = Operation::Upsert(vec![PointWrite {
                id: PointId::Num(3), vector: vec![1.0; 4], more: vec![vec![2.0; 3]],
                sparse: vec![crate::sparse::SparseVector { indices: vec![1], values: vec![2.0] }], payload: Payload::new(),
                created_ms: 5, expires_ms: 6,
            }]);
            let b = op.encode();
            prop_assume!(cut < b.len());
            prop_assert!(Operation::decode(&b[..cut], Path::new("x"), 0).is_err());
        }
    }
}
