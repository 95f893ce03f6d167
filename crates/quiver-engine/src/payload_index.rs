//! Per-segment secondary indexes over payload fields, keyed by row offset (a point's position inside its
//! segment), and the filter evaluator that uses them.
//!
//! Each indexed field has one [`FieldType`] and maps the field's values of that type to the rows holding them
//! (Roaring bitmaps). Every row that holds a non-null value the index cannot represent (a number in a keyword
//! index, `3.5` in an integer index, a string that is no datetime in a datetime index, an object, ...) is kept
//! in a separate "other" bitmap, so the index knows exactly which rows it does not describe fully.
//!
//! [`PayloadIndex::evaluate`] returns exactly the rows for which [`Filter::matches`] holds. A field condition
//! is answered from the index when the index's type can answer it:
//!
//! | index    | answers                                                                                     |
//! |----------|---------------------------------------------------------------------------------------------|
//! | keyword  | `match.value` (string), `match.any` / `match.except` (strings)                              |
//! | integer  | `match.value` (integer), `match.any` / `match.except` (integers), numeric `range`           |
//! | float    | numeric `range`; `match.value` / `match.any` with integers (candidates, checked per row)    |
//! | bool     | `match.value` (bool)                                                                        |
//! | datetime | datetime `range`                                                                            |
//! | text     | `match.text`: the rows whose strings hold every term of the query (see [`crate::fulltext`])   |
//! | geo      | `geo_radius`, `geo_bounding_box`, `geo_polygon`: candidates by 1° cell, checked per row     |
//!
//! A text index changes what `match.text` means on its key: without one it is a substring test, with one it
//! is term matching, so the evaluator equals [`Filter::matches_with`] given the collection's text keys.
//!
//! The integer index holds the JSON numbers that are exactly an `i64` (`3` and `3.0`; see
//! [`crate::filter`] for the matching rules), so a numeric range over it also checks the rows of its "other"
//! bitmap (e.g. `3.5`) against the payload. Every other condition (`match.text`, `values_count`, `is_empty`,
//! `is_null`, a `range` on a keyword index, a condition on an unindexed key) is evaluated by reading the
//! payloads of the rows still possible; `has_id` uses [`RowSource::rows_of_ids`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::str::FromStr;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::datetime::parse_datetime;
use crate::error::{Error, Result};
use crate::filter::{
    AnyValues, Condition, FieldCondition, FieldPredicate, Filter, Match, MatchValue, Range, exact_i64,
};
use crate::fulltext::{Bm25Query, TextIndex, TextOptions, TextStats};
use crate::geo::{GeoIndex, GeoPoint};
use crate::id::PointId;
use crate::payload::{self, Payload};
use crate::payloads::PayloadRef;

/// The type of a payload index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Strings, matched exactly.
    Keyword,
    /// JSON numbers that are exactly a 64-bit signed integer (`3`, `3.0`).
    Integer,
    /// Any JSON number, as `f64`.
    Float,
    /// `true` / `false`.
    Bool,
    /// Strings that parse as RFC 3339 datetimes, as microseconds since the epoch.
    Datetime,
    /// Strings, analyzed into terms for full-text matching and BM25 ranking (see [`crate::fulltext`]).
    Text(TextOptions),
    /// Points `{"lon", "lat"}`, by 1° × 1° cell, for geo conditions (see [`crate::geo`]).
    Geo,
}

impl FieldType {
    /// All types (text with its default options).
    pub const ALL: [FieldType; 7] = [
        FieldType::Keyword,
        FieldType::Integer,
        FieldType::Float,
        FieldType::Bool,
        FieldType::Datetime,
        FieldType::Text(TextOptions { stem: false, stopwords: false }),
        FieldType::Geo,
    ];

    /// The lower-case name (`keyword`, `integer`, `float`, `bool`, `datetime`, `text`, `geo`).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Keyword => "keyword",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Datetime => "datetime",
            FieldType::Text(_) => "text",
            FieldType::Geo => "geo",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FieldType {
    type Err = Error;

    /// One of the lower-case names (ASCII case ignored).
    fn from_str(s: &str) -> Result<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            Error::invalid("field type", "one of keyword, integer, float, bool, datetime, text, geo", format!("{s:?}"))
        })
    }
}

/// A segment's rows, as the index and the evaluator see them.
pub trait RowSource {
    /// Number of rows; rows are `0..row_count()`.
    fn row_count(&self) -> u32;
    /// The id of the point in `row`.
    fn row_id(&self, row: u32) -> PointId;
    /// The payload of `row`; `None` when the row has none (treated as the empty object).
    fn row_payload(&self, row: u32) -> Option<PayloadRef<'_>>;
    /// The rows holding these ids.
    fn rows_of_ids(&self, ids: &[PointId]) -> RoaringBitmap;
}

/// Bounds on the number of rows a filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// At least this many rows match.
    pub min: u64,
    /// A guess.
    pub exp: u64,
    /// At most this many rows match.
    pub max: u64,
}

/// The result of [`PayloadIndex::evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Exactly the matching rows.
    pub rows: RoaringBitmap,
    /// Keys with at least one condition answered from an index (sorted).
    pub indexed_keys: Vec<String>,
    /// Keys with at least one condition evaluated by reading payloads (sorted). A key may be in both lists.
    pub unindexed_keys: Vec<String>,
}

/// The payload indexes of one segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayloadIndex {
    fields: BTreeMap<String, FieldIndex>,
}

/// An `f64` ordered by `total_cmp`, with `-0.0` stored as `0.0` (JSON numbers are never NaN).
#[derive(Debug, Clone, Copy)]
struct OrdF64(f64);

impl OrdF64 {
    fn new(x: f64) -> OrdF64 {
        OrdF64(x + 0.0) // -0.0 + 0.0 == +0.0
    }
}

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One field's index.
#[derive(Debug, Clone, PartialEq)]
struct FieldIndex {
    values: Values,
    /// Rows holding at least one non-null value this index cannot represent.
    other: RoaringBitmap,
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Keyword(HashMap<String, RoaringBitmap>),
    Integer(BTreeMap<i64, RoaringBitmap>),
    Float(BTreeMap<OrdF64, RoaringBitmap>),
    Bool { falses: RoaringBitmap, trues: RoaringBitmap },
    Datetime(BTreeMap<i64, RoaringBitmap>),
    Text(Box<TextIndex>),
    Geo(GeoIndex),
}

/// What an index says about a condition: the matching rows are `sure` plus those of `maybe` that the payload
/// check accepts.
struct Answer {
    sure: RoaringBitmap,
    maybe: RoaringBitmap,
}

impl Answer {
    fn exact(sure: RoaringBitmap) -> Answer {
        Answer { sure, maybe: RoaringBitmap::new() }
    }
}

fn union<'a>(maps: impl IntoIterator<Item = &'a RoaringBitmap>) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for b in maps {
        out |= b;
    }
    out
}

/// Adds (`add`) or removes `row` under `key`, dropping emptied bitmaps.
fn update<K: Ord>(map: &mut BTreeMap<K, RoaringBitmap>, key: K, row: u32, add: bool) {
    if add {
        map.entry(key).or_default().insert(row);
    } else if let Some(b) = map.get_mut(&key) {
        b.remove(row);
        if b.is_empty() {
            map.remove(&key);
        }
    }
}

/// Keys of `map` within the (inclusive) interval `lo..=hi`, or none when it is empty.
fn range_of<K: Ord + Copy, V>(map: &BTreeMap<K, V>, lo: K, hi: K) -> impl Iterator<Item = (&K, &V)> {
    let r = if lo <= hi { Some(map.range((Bound::Included(lo), Bound::Included(hi)))) } else { None };
    r.into_iter().flatten()
}

impl FieldIndex {
    fn new(ty: FieldType) -> FieldIndex {
        let values = match ty {
            FieldType::Keyword => Values::Keyword(HashMap::new()),
            FieldType::Integer => Values::Integer(BTreeMap::new()),
            FieldType::Float => Values::Float(BTreeMap::new()),
            FieldType::Bool => Values::Bool { falses: RoaringBitmap::new(), trues: RoaringBitmap::new() },
            FieldType::Datetime => Values::Datetime(BTreeMap::new()),
            FieldType::Text(opts) => Values::Text(Box::new(TextIndex::new(opts))),
            FieldType::Geo => Values::Geo(GeoIndex::default()),
        };
        FieldIndex { values, other: RoaringBitmap::new() }
    }

    fn ty(&self) -> FieldType {
        match &self.values {
            Values::Keyword(_) => FieldType::Keyword,
            Values::Integer(_) => FieldType::Integer,
            Values::Float(_) => FieldType::Float,
            Values::Bool { .. } => FieldType::Bool,
            Values::Datetime(_) => FieldType::Datetime,
            Values::Text(t) => FieldType::Text(t.options()),
            Values::Geo(_) => FieldType::Geo,
        }
    }

    /// Indexes (`add`) or un-indexes the row's values at `key`.
    fn update(&mut self, key: &str, row: u32, payload: &Payload, add: bool) {
        if let Values::Text(t) = &mut self.values {
            // All the strings at the key, as one text; anything else non-null is "other".
            let values = payload::values_at(payload, key);
            let other = values.iter().any(|v| !v.is_null() && !v.is_string());
            if add {
                t.insert(row, values.iter().filter_map(|v| v.as_str()));
            } else {
                t.remove(row);
            }
            if other {
                if add {
                    self.other.insert(row)
                } else {
                    self.other.remove(row)
                };
            }
            return;
        }
        let mut other = false;
        for v in payload::values_at(payload, key) {
            if v.is_null() {
                continue;
            }
            let indexed = match &mut self.values {
                Values::Keyword(map) => match v.as_str() {
                    Some(s) if add => {
                        map.entry(s.to_owned()).or_default().insert(row);
                        true
                    }
                    Some(s) => {
                        let emptied = map.get_mut(s).is_some_and(|b| {
                            b.remove(row);
                            b.is_empty()
                        });
                        if emptied {
                            map.remove(s);
                        }
                        true
                    }
                    None => false,
                },
                Values::Integer(map) => exact_i64(v).map(|n| update(map, n, row, add)).is_some(),
                Values::Float(map) => v.as_f64().map(|x| update(map, OrdF64::new(x), row, add)).is_some(),
                Values::Bool { falses, trues } => match v.as_bool() {
                    Some(b) => {
                        let bm = if b { trues } else { falses };
                        if add {
                            bm.insert(row)
                        } else {
                            bm.remove(row)
                        };
                        true
                    }
                    None => false,
                },
                Values::Datetime(map) => {
                    v.as_str().and_then(parse_datetime).map(|t| update(map, t, row, add)).is_some()
                }
                Values::Geo(g) => GeoPoint::from_value(v).map(|p| g.update(p, row, add)).is_some(),
                Values::Text(_) => unreachable!("text indexes return above"),
            };
            other |= !indexed;
        }
        if other {
            if add {
                self.other.insert(row)
            } else {
                self.other.remove(row)
            };
        }
    }

    /// The index's answer to a predicate, or `None` when this index type cannot answer it.
    fn answer(&self, p: &FieldPredicate) -> Option<Answer> {
        let empty = RoaringBitmap::new();
        Some(match (&self.values, p) {
            (Values::Keyword(map), FieldPredicate::Match(m)) => match m {
                Match::Value(MatchValue::Keyword(s)) => Answer::exact(map.get(s).cloned().unwrap_or_default()),
                Match::Any(AnyValues::Keywords(l)) => Answer::exact(union(l.iter().filter_map(|s| map.get(s)))),
                Match::Except(AnyValues::Keywords(l)) => {
                    let l: HashSet<&str> = l.iter().map(String::as_str).collect();
                    let mut sure = union(map.iter().filter(|(k, _)| !l.contains(k.as_str())).map(|(_, b)| b));
                    sure |= &self.other; // a non-string value is "none of these strings"
                    Answer::exact(sure)
                }
                _ => return None,
            },
            (Values::Integer(map), FieldPredicate::Match(m)) => match m {
                Match::Value(MatchValue::Integer(n)) => Answer::exact(map.get(n).cloned().unwrap_or_default()),
                Match::Any(AnyValues::Integers(l)) => Answer::exact(union(l.iter().filter_map(|n| map.get(n)))),
                Match::Except(AnyValues::Integers(l)) => {
                    let l: HashSet<i64> = l.iter().copied().collect();
                    let mut sure = union(map.iter().filter(|(k, _)| !l.contains(k)).map(|(_, b)| b));
                    sure |= &self.other; // anything that is not an integer is "none of these integers"
                    Answer::exact(sure)
                }
                _ => return None,
            },
            (Values::Integer(map), FieldPredicate::Range(Range::Number(r))) => {
                // Values compare as f64; `k as f64` is monotone in k and off by at most 1024 from k (|k| < 2^63),
                // so a window widened by 2048 around the bounds holds every matching key, and each key is then
                // checked exactly as the payload check would.
                let lo = [r.gt, r.gte].into_iter().flatten().fold(f64::NEG_INFINITY, f64::max);
                let hi = [r.lt, r.lte].into_iter().flatten().fold(f64::INFINITY, f64::min);
                let lo = (lo.floor() as i64).saturating_sub(2048);
                let hi = (hi.ceil() as i64).saturating_add(2048);
                let sure = union(range_of(map, lo, hi).filter(|(k, _)| r.contains(**k as f64)).map(|(_, b)| b));
                // Rows with numbers that are no i64 (3.5, 2^64) are in `other`: check those against the payload.
                Answer { sure, maybe: self.other.clone() }
            }
            (Values::Float(map), FieldPredicate::Range(Range::Number(r))) => {
                let lo = [r.gt, r.gte].into_iter().flatten().fold(f64::NEG_INFINITY, f64::max);
                let hi = [r.lt, r.lte].into_iter().flatten().fold(f64::INFINITY, f64::min);
                let keys = range_of(map, OrdF64::new(lo), OrdF64::new(hi));
                Answer::exact(union(keys.filter(|(k, _)| r.contains(k.0)).map(|(_, b)| b)))
            }
            (Values::Float(map), FieldPredicate::Match(Match::Value(MatchValue::Integer(n)))) => {
                // Candidates: the float key equal to n as f64 (n's value, or one rounding to it).
                Answer { sure: empty, maybe: map.get(&OrdF64::new(*n as f64)).cloned().unwrap_or_default() }
            }
            (Values::Float(map), FieldPredicate::Match(Match::Any(AnyValues::Integers(l)))) => {
                Answer { sure: empty, maybe: union(l.iter().filter_map(|n| map.get(&OrdF64::new(*n as f64)))) }
            }
            (Values::Bool { falses, trues }, FieldPredicate::Match(Match::Value(MatchValue::Bool(b)))) => {
                Answer::exact(if *b { trues.clone() } else { falses.clone() })
            }
            (Values::Text(t), FieldPredicate::Match(Match::Text(q))) => Answer::exact(t.matching_all(q)),
            // Candidates from the cells the shape's bounds overlap, each checked against its payload.
            (Values::Geo(g), FieldPredicate::Geo(shape)) => Answer { sure: empty, maybe: g.candidates(shape) },
            (Values::Datetime(map), FieldPredicate::Range(Range::Datetime(r))) => match r.closed_interval() {
                Some((lo, hi)) => Answer::exact(union(range_of(map, lo, hi).map(|(_, b)| b))),
                None => Answer::exact(empty), // a bound that is no datetime matches nothing
            },
            _ => return None,
        })
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY: usize = 48; // map node / bucket overhead, roughly
        let maps = match &self.values {
            Values::Keyword(m) => m.iter().map(|(k, b)| ENTRY + k.capacity() + b.serialized_size()).sum(),
            Values::Integer(m) | Values::Datetime(m) => m.values().map(|b| ENTRY + 8 + b.serialized_size()).sum(),
            Values::Float(m) => m.values().map(|b| ENTRY + 8 + b.serialized_size()).sum(),
            Values::Bool { falses, trues } => falses.serialized_size() + trues.serialized_size(),
            Values::Text(t) => t.memory_bytes(),
            Values::Geo(g) => g.memory_bytes(),
        };
        std::mem::size_of::<FieldIndex>() + maps + self.other.serialized_size()
    }
}

impl PayloadIndex {
    /// An index with no fields.
    pub fn new() -> PayloadIndex {
        PayloadIndex::default()
    }

    /// Indexes `key` as `ty` over every row of `rows`, replacing any index the key had.
    pub fn add_field(&mut self, key: &str, ty: FieldType, rows: &dyn RowSource) {
        let mut index = FieldIndex::new(ty);
        for row in 0..rows.row_count() {
            if let Some(p) = rows.row_payload(row) {
                index.update(key, row, &p, true);
            }
        }
        self.fields.insert(key.to_owned(), index);
    }

    /// Drops the index of `key`; whether there was one.
    pub fn drop_field(&mut self, key: &str) -> bool {
        self.fields.remove(key).is_some()
    }

    /// The indexed keys and their types, sorted by key.
    pub fn fields(&self) -> Vec<(String, FieldType)> {
        self.fields.iter().map(|(k, f)| (k.clone(), f.ty())).collect()
    }

    /// The type `key` is indexed as, if it is.
    pub fn field_type(&self, key: &str) -> Option<FieldType> {
        self.fields.get(key).map(FieldIndex::ty)
    }

    /// Indexes the row's values for every indexed field. The row must not be indexed already (call
    /// [`PayloadIndex::remove`] with its previous payload first when it changes).
    pub fn insert(&mut self, row: u32, payload: &Payload) {
        for (key, index) in &mut self.fields {
            index.update(key, row, payload, true);
        }
    }

    /// Un-indexes the row; `payload` is the payload it was indexed with.
    pub fn remove(&mut self, row: u32, payload: &Payload) {
        for (key, index) in &mut self.fields {
            index.update(key, row, payload, false);
        }
    }

    /// Approximate heap bytes held by the indexes.
    pub fn memory_bytes(&self) -> usize {
        self.fields.iter().map(|(k, f)| k.capacity() + f.memory_bytes()).sum()
    }

    fn text_index(&self, key: &str) -> Option<&TextIndex> {
        match &self.fields.get(key)?.values {
            Values::Text(t) => Some(t),
            _ => None,
        }
    }

    /// This segment's BM25 figures for `q` over the text index of `key` (`None` when `key` has none), leaving
    /// out the `excluded` rows.
    pub fn text_stats(&self, key: &str, q: &Bm25Query, excluded: &RoaringBitmap) -> Option<TextStats> {
        Some(self.text_index(key)?.stats(q, excluded))
    }

    /// The `k` best BM25 scores among the rows of the text index of `key` that hold a query term, are in
    /// `allowed` (all rows when `None`) and are not `excluded`, as (row, score) best first; `weights` and `avgdl`
    /// from [`Bm25Query::weights`] over the whole collection's [`TextStats`].
    pub fn text_top(
        &self,
        key: &str,
        q: &Bm25Query,
        (weights, avgdl): (&[f32], f32),
        allowed: Option<&RoaringBitmap>,
        excluded: &RoaringBitmap,
        k: usize,
    ) -> Vec<(u32, f32)> {
        self.text_index(key).map(|t| t.top(q, weights, avgdl, allowed, excluded, k)).unwrap_or_default()
    }

    /// The index's answer to a field condition, when the key is indexed with a type that can answer it.
    fn answer(&self, c: &FieldCondition) -> Option<Answer> {
        self.fields.get(&c.key)?.answer(&c.predicate)
    }

    /// Bounds on the number of the `rows` rows matching `filter`, from the indexes alone (no payload is
    /// read). Conditions an index answers exactly get exact counts; others get `0..=rows`.
    pub fn estimate(&self, filter: &Filter, rows: u32) -> Estimate {
        let e = self.estimate_filter(filter, u64::from(rows));
        Estimate { min: e.min, exp: e.exp.clamp(e.min, e.max), max: e.max }
    }

    fn estimate_filter(&self, f: &Filter, n: u64) -> Estimate {
        let mut parts: Vec<Estimate> = f.must.iter().map(|c| self.estimate_condition(c, n)).collect();
        for c in &f.must_not {
            let e = self.estimate_condition(c, n);
            parts.push(Estimate { min: n - e.max, exp: n - e.exp, max: n - e.min });
        }
        if !f.should.is_empty() {
            let es: Vec<Estimate> = f.should.iter().map(|c| self.estimate_condition(c, n)).collect();
            parts.push(any_of(&es, n));
        }
        if let Some(ms) = &f.min_should {
            let es: Vec<Estimate> = ms.conditions.iter().map(|c| self.estimate_condition(c, n)).collect();
            parts.push(at_least(&es, ms.min_count, n));
        }
        all_of(&parts, n)
    }

    fn estimate_condition(&self, c: &Condition, n: u64) -> Estimate {
        let unknown = Estimate { min: 0, exp: n / 2, max: n };
        match c {
            Condition::Field(fc) => match self.answer(fc) {
                Some(a) => {
                    let min = a.sure.len().min(n);
                    let max = (a.sure.len() + a.maybe.difference_len(&a.sure)).min(n);
                    Estimate { min, exp: min + (max - min) / 2, max }
                }
                None => unknown,
            },
            Condition::IsEmpty { .. } | Condition::IsNull { .. } => unknown,
            Condition::HasId(ids) => {
                let distinct = ids.iter().collect::<BTreeSet<_>>().len() as u64;
                let max = distinct.min(n);
                Estimate { min: 0, exp: max, max }
            }
            Condition::Filter(f) => self.estimate_filter(f, n),
        }
    }

    /// The rows of `rows` matching `filter`: exactly those for which [`Filter::matches`] holds, using the
    /// indexes where they answer a condition and the payloads of the remaining candidate rows elsewhere.
    pub fn evaluate(&self, filter: &Filter, rows: &dyn RowSource) -> Evaluation {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..rows.row_count());
        let empty = Payload::new();
        let ev = Evaluator { index: self, rows, empty: &empty };
        let matched = ev.filter(filter, all);
        let (mut indexed, mut unindexed) = (BTreeSet::new(), BTreeSet::new());
        self.classify(filter, &mut indexed, &mut unindexed);
        Evaluation {
            rows: matched,
            indexed_keys: indexed.into_iter().collect(),
            unindexed_keys: unindexed.into_iter().collect(),
        }
    }

    fn classify(&self, f: &Filter, indexed: &mut BTreeSet<String>, unindexed: &mut BTreeSet<String>) {
        for c in f.conditions() {
            match c {
                Condition::Field(fc) => {
                    let answers = self.fields.get(&fc.key).is_some_and(|i| i.answer_kind(&fc.predicate));
                    if answers {
                        indexed.insert(fc.key.clone())
                    } else {
                        unindexed.insert(fc.key.clone())
                    };
                }
                Condition::IsEmpty { key } | Condition::IsNull { key } => {
                    unindexed.insert(key.clone());
                }
                Condition::HasId(_) => {}
                Condition::Filter(f) => self.classify(f, indexed, unindexed),
            }
        }
    }
}

impl FieldIndex {
    /// Whether [`FieldIndex::answer`] answers this predicate (without computing the answer).
    fn answer_kind(&self, p: &FieldPredicate) -> bool {
        matches!(
            (&self.values, p),
            (
                Values::Keyword(_),
                FieldPredicate::Match(
                    Match::Value(MatchValue::Keyword(_))
                        | Match::Any(AnyValues::Keywords(_))
                        | Match::Except(AnyValues::Keywords(_))
                )
            ) | (
                Values::Integer(_),
                FieldPredicate::Match(
                    Match::Value(MatchValue::Integer(_))
                        | Match::Any(AnyValues::Integers(_))
                        | Match::Except(AnyValues::Integers(_))
                ) | FieldPredicate::Range(Range::Number(_))
            ) | (
                Values::Float(_),
                FieldPredicate::Range(Range::Number(_))
                    | FieldPredicate::Match(Match::Value(MatchValue::Integer(_)) | Match::Any(AnyValues::Integers(_)))
            ) | (Values::Bool { .. }, FieldPredicate::Match(Match::Value(MatchValue::Bool(_))))
                | (Values::Datetime(_), FieldPredicate::Range(Range::Datetime(_)))
                | (Values::Text(_), FieldPredicate::Match(Match::Text(_)))
                | (Values::Geo(_), FieldPredicate::Geo(_))
        )
    }
}

/// AND of independent-ish parts: inclusion–exclusion lower bound, smallest upper bound, product of fractions.
fn all_of(parts: &[Estimate], n: u64) -> Estimate {
    if n == 0 {
        return Estimate { min: 0, exp: 0, max: 0 };
    }
    if parts.is_empty() {
        return Estimate { min: n, exp: n, max: n };
    }
    let k = parts.len() as u64;
    let sum_min: u64 = parts.iter().map(|e| e.min).sum();
    let min = sum_min.saturating_sub(k.saturating_sub(1) * n);
    let max = parts.iter().map(|e| e.max).min().unwrap_or(n);
    let frac: f64 = parts.iter().map(|e| e.exp as f64 / n as f64).product();
    Estimate { min, exp: ((frac * n as f64).round() as u64).clamp(min, max), max }
}

/// OR: the largest lower bound, the sum of upper bounds, 1 - product of misses.
fn any_of(parts: &[Estimate], n: u64) -> Estimate {
    if n == 0 {
        return Estimate { min: 0, exp: 0, max: 0 };
    }
    let min = parts.iter().map(|e| e.min).max().unwrap_or(0);
    let max = parts.iter().map(|e| e.max).sum::<u64>().min(n);
    let miss: f64 = parts.iter().map(|e| 1.0 - e.exp as f64 / n as f64).product();
    Estimate { min, exp: (((1.0 - miss) * n as f64).round() as u64).clamp(min, max), max }
}

/// At least `k` of the `m` parts. A row counted by at least `k` conditions contributes at least `k` to the sum
/// of the conditions' counts, and any other row at most `k - 1`, which bounds the count both ways.
fn at_least(parts: &[Estimate], k: usize, n: u64) -> Estimate {
    let m = parts.len();
    if k == 0 {
        return Estimate { min: n, exp: n, max: n };
    }
    if k > m || n == 0 {
        return Estimate { min: 0, exp: 0, max: 0 };
    }
    let (k, m) = (k as u64, m as u64);
    let sum_max: u64 = parts.iter().map(|e| e.max).sum();
    let sum_min: u64 = parts.iter().map(|e| e.min).sum();
    let max = (sum_max / k).min(n);
    let min = sum_min.saturating_sub(n * (k - 1)).div_ceil(m - k + 1).min(max);
    Estimate { min, exp: min + (max - min) / 2, max }
}

/// Evaluates filters over candidate rows: every method returns the subset of its candidates that matches.
struct Evaluator<'a> {
    index: &'a PayloadIndex,
    rows: &'a dyn RowSource,
    empty: &'a Payload,
}

impl Evaluator<'_> {
    fn payload(&self, row: u32) -> PayloadRef<'_> {
        self.rows.row_payload(row).unwrap_or(PayloadRef::Borrowed(self.empty))
    }

    fn scan(&self, cand: &RoaringBitmap, pred: impl Fn(&PointId, &Payload) -> bool) -> RoaringBitmap {
        cand.iter().filter(|&r| pred(&self.rows.row_id(r), &self.payload(r))).collect()
    }

    /// Cheap conditions first: ids, then index answers, nested filters, payload scans.
    fn cost(&self, c: &Condition) -> u8 {
        match c {
            Condition::HasId(_) => 0,
            Condition::Field(fc) if self.index.fields.get(&fc.key).is_some_and(|i| i.answer_kind(&fc.predicate)) => 1,
            Condition::Filter(_) => 2,
            _ => 3,
        }
    }

    fn filter(&self, f: &Filter, cand: RoaringBitmap) -> RoaringBitmap {
        let mut cur = cand;
        let mut must: Vec<&Condition> = f.must.iter().collect();
        must.sort_by_key(|c| self.cost(c));
        for c in must {
            if cur.is_empty() {
                return cur;
            }
            cur = self.condition(c, &cur);
        }
        for c in &f.must_not {
            if cur.is_empty() {
                return cur;
            }
            cur -= self.condition(c, &cur);
        }
        if !f.should.is_empty() {
            let mut hit = RoaringBitmap::new();
            let mut rest = cur;
            let mut should: Vec<&Condition> = f.should.iter().collect();
            should.sort_by_key(|c| self.cost(c));
            for c in should {
                if rest.is_empty() {
                    break;
                }
                let m = self.condition(c, &rest);
                rest -= &m;
                hit |= m;
            }
            cur = hit;
        }
        if let Some(ms) = &f.min_should
            && ms.min_count > 0
        {
            // at_least[j]: candidates satisfying at least j of the conditions seen so far.
            let k = ms.min_count;
            if k > ms.conditions.len() {
                return RoaringBitmap::new();
            }
            let mut at_least = vec![RoaringBitmap::new(); k + 1];
            at_least[0] = cur;
            for c in &ms.conditions {
                let m = self.condition(c, &at_least[0]);
                for j in (1..=k).rev() {
                    let grown = &at_least[j - 1] & &m;
                    at_least[j] |= grown;
                }
            }
            cur = at_least.pop().unwrap_or_default();
        }
        cur
    }

    fn condition(&self, c: &Condition, cand: &RoaringBitmap) -> RoaringBitmap {
        match c {
            Condition::Field(fc) => {
                let answer = self.index.answer(fc);
                // `classify` and `cost` rely on `answer_kind` telling which predicates `answer` serves.
                debug_assert_eq!(answer.is_some(), self.cost(c) == 1, "{:?}", fc.predicate);
                self.field(fc, answer, cand)
            }
            Condition::IsEmpty { key } => self.scan(cand, |_, p| payload::is_empty_at(p, key)),
            Condition::IsNull { key } => self.scan(cand, |_, p| payload::is_null_at(p, key)),
            Condition::HasId(ids) => &self.rows.rows_of_ids(ids) & cand,
            Condition::Filter(f) => self.filter(f, cand.clone()),
        }
    }

    /// A field condition over the candidates: from the index's answer when there is one (checking its `maybe`
    /// rows against the payload), else by reading every candidate's payload.
    fn field(&self, fc: &FieldCondition, answer: Option<Answer>, cand: &RoaringBitmap) -> RoaringBitmap {
        let Some(a) = answer else { return self.scan(cand, |_, p| fc.matches(p)) };
        let mut out = &a.sure & cand;
        let maybe = &(&a.maybe & cand) - &out;
        for r in &maybe {
            if fc.matches(&self.payload(r)) {
                out.insert(r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::{Value, json};

    use crate::filter::DEFAULT_MAX_FILTER_DEPTH;

    struct Rows {
        ids: Vec<PointId>,
        payloads: Vec<Option<Payload>>,
    }

    impl Rows {
        fn new(payloads: Vec<Option<Payload>>) -> Rows {
            Rows { ids: (0..payloads.len() as u64).map(|i| PointId::Num(i * 3)).collect(), payloads }
        }

        fn from_json(values: &[Value]) -> Rows {
            Rows::new(values.iter().map(|v| v.as_object().cloned()).collect())
        }

        fn naive(&self, f: &Filter) -> RoaringBitmap {
            let empty = Payload::new();
            (0..self.row_count())
                .filter(|&r| f.matches(&self.row_id(r), self.row_payload(r).as_deref().unwrap_or(&empty)))
                .collect()
        }
    }

    impl RowSource for Rows {
        fn row_count(&self) -> u32 {
            self.payloads.len() as u32
        }
        fn row_id(&self, row: u32) -> PointId {
            self.ids[row as usize]
        }
        fn row_payload(&self, row: u32) -> Option<PayloadRef<'_>> {
            self.payloads[row as usize].as_ref().map(PayloadRef::Borrowed)
        }
        fn rows_of_ids(&self, ids: &[PointId]) -> RoaringBitmap {
            (0..self.row_count()).filter(|&r| ids.contains(&self.ids[r as usize])).collect()
        }
    }

    fn f(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    fn bm(rows: &[u32]) -> RoaringBitmap {
        rows.iter().copied().collect()
    }

    fn sample_rows() -> Rows {
        Rows::from_json(&[
            json!({"city": "Paris", "n": 1, "price": 1.5, "ok": true, "at": "2024-01-01T10:00:00Z"}),
            json!({"city": ["Berlin", "Paris"], "n": 2.0, "price": 3, "ok": false, "at": "2024-01-02"}),
            json!({"city": 7, "n": 2.5, "price": "cheap", "ok": "yes", "at": "soon"}),
            json!({"city": null, "n": [3, "x"], "at": "2024-01-01T23:30:00-01:00"}),
            json!({}),
            Value::Null,
        ])
    }

    fn index_all(rows: &Rows, types: &[(&str, FieldType)]) -> PayloadIndex {
        let mut index = PayloadIndex::new();
        for (k, t) in types {
            index.add_field(k, *t, rows);
        }
        index
    }

    fn check(index: &PayloadIndex, rows: &Rows, filter: Value, want: &[u32]) -> Evaluation {
        let filter = f(filter);
        let ev = index.evaluate(&filter, rows);
        assert_eq!(ev.rows, rows.naive(&filter), "{filter}");
        assert_eq!(ev.rows, bm(want), "{filter}");
        let est = index.estimate(&filter, rows.row_count());
        let n = ev.rows.len();
        assert!(est.min <= n && n <= est.max && est.min <= est.exp && est.exp <= est.max, "{filter}: {est:?}");
        ev
    }

    #[test]
    fn field_types_parse_and_serialize() {
        for t in FieldType::ALL {
            assert_eq!(t.name().parse::<FieldType>().unwrap(), t);
            assert_eq!(serde_json::from_value::<FieldType>(serde_json::to_value(t).unwrap()).unwrap(), t);
        }
        for t in &FieldType::ALL[..5] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.name()));
        }
        let english = FieldType::Text(TextOptions { stem: true, stopwords: true });
        assert_eq!(serde_json::to_value(english).unwrap(), json!({"text": {"stem": true, "stopwords": true}}));
        assert_eq!(
            serde_json::from_value::<FieldType>(json!({"text": {"stem": true, "stopwords": true}})).unwrap(),
            english
        );
        assert_eq!("Keyword".parse::<FieldType>().unwrap(), FieldType::Keyword);
        assert!("geopoint".parse::<FieldType>().is_err());
    }

    #[test]
    fn indexed_conditions_are_answered_from_the_index() {
        let rows = sample_rows();
        let index = index_all(
            &rows,
            &[
                ("city", FieldType::Keyword),
                ("n", FieldType::Integer),
                ("price", FieldType::Float),
                ("ok", FieldType::Bool),
                ("at", FieldType::Datetime),
            ],
        );
        let ev = check(&index, &rows, json!({"must": {"key": "city", "match": {"value": "Paris"}}}), &[0, 1]);
        assert_eq!((ev.indexed_keys, ev.unindexed_keys), (vec!["city".to_owned()], vec![]));
        check(&index, &rows, json!({"must": {"key": "city", "match": {"any": ["Berlin", "Rome"]}}}), &[1]);
        // except: the row holding 7 matches (not a string), null / missing / no payload do not.
        check(&index, &rows, json!({"must": {"key": "city", "match": {"except": ["Paris"]}}}), &[1, 2]);
        check(&index, &rows, json!({"must_not": {"key": "city", "match": {"any": ["Paris"]}}}), &[2, 3, 4, 5]);
        check(&index, &rows, json!({"must": {"key": "n", "match": {"value": 2}}}), &[1]);
        check(&index, &rows, json!({"must": {"key": "n", "match": {"except": [1, 2]}}}), &[2, 3]);
        // 2.5 is not in the integer index: the range checks it from the payload.
        let ev = check(&index, &rows, json!({"must": {"key": "n", "range": {"gt": 1, "lt": 3}}}), &[1, 2]);
        assert_eq!(ev.indexed_keys, vec!["n"]);
        check(&index, &rows, json!({"must": {"key": "price", "range": {"gte": 1.5, "lte": 3}}}), &[0, 1]);
        check(&index, &rows, json!({"must": {"key": "price", "match": {"value": 3}}}), &[1]);
        check(&index, &rows, json!({"must": {"key": "ok", "match": {"value": false}}}), &[1]);
        // 2024-01-01T23:30-01:00 is 2024-01-02T00:30Z.
        check(&index, &rows, json!({"must": {"key": "at", "range": {"gte": "2024-01-02T00:00:00Z"}}}), &[1, 3]);
        check(&index, &rows, json!({"must": {"key": "at", "range": {"lt": "2024-01-02T00:00:00+01:00"}}}), &[0]);
    }

    #[test]
    fn conditions_an_index_cannot_answer_are_scanned() {
        let rows = sample_rows();
        let index = index_all(&rows, &[("city", FieldType::Keyword), ("n", FieldType::Bool)]);
        let ev = check(&index, &rows, json!({"must": {"key": "city", "match": {"text": "ari"}}}), &[0, 1]);
        assert_eq!((ev.indexed_keys, ev.unindexed_keys), (vec![], vec!["city".to_owned()]));
        let ev = check(&index, &rows, json!({"must": {"key": "n", "range": {"gte": 2}}}), &[1, 2, 3]);
        assert_eq!(ev.unindexed_keys, vec!["n"]);
        let ev = check(
            &index,
            &rows,
            json!({"must": [{"key": "city", "match": {"value": "Paris"}}, {"is_empty": {"key": "zz"}}],
                   "should": [{"has_id": [3, 6]}, {"key": "other", "match": {"value": 1}}]}),
            &[1],
        );
        assert_eq!(ev.indexed_keys, vec!["city"]);
        assert_eq!(ev.unindexed_keys, vec!["other", "zz"]);
        check(&index, &rows, json!({}), &[0, 1, 2, 3, 4, 5]);
        check(&index, &rows, json!({"must": {"is_null": {"key": "city"}}}), &[3]);
        check(
            &index,
            &rows,
            json!({"min_should": {"conditions": [
                {"key": "city", "match": {"value": "Paris"}}, {"has_id": [3, 6]}, {"is_empty": {"key": "at"}}
            ], "min_count": 2}}),
            &[1],
        );
    }

    #[test]
    fn estimates_of_indexed_conditions_are_exact() {
        let rows = sample_rows();
        let index = index_all(&rows, &[("city", FieldType::Keyword)]);
        let paris = f(json!({"must": {"key": "city", "match": {"value": "Paris"}}}));
        assert_eq!(index.estimate(&paris, 6), Estimate { min: 2, exp: 2, max: 2 });
        let not_paris = f(json!({"must_not": {"key": "city", "match": {"value": "Paris"}}}));
        assert_eq!(index.estimate(&not_paris, 6), Estimate { min: 4, exp: 4, max: 4 });
        let unknown = f(json!({"must": {"key": "n", "match": {"value": 1}}}));
        let e = index.estimate(&unknown, 6);
        assert_eq!((e.min, e.max), (0, 6));
        assert_eq!(index.estimate(&Filter::default(), 6), Estimate { min: 6, exp: 6, max: 6 });
        assert_eq!(index.estimate(&paris, 0), Estimate { min: 0, exp: 0, max: 0 });
    }

    #[test]
    fn integer_ranges_compare_like_f64_beyond_2_pow_53() {
        // Near 2^62 consecutive f64 values are 1024 apart: 2^62 + 1 and 2^62 + 500 round to 2^62, 2^62 + 600
        // rounds up to 2^62 + 1024. The index must agree with the payload check, which compares as f64.
        let p62 = 1i64 << 62;
        let rows = Rows::from_json(&[
            json!({"n": p62 + 1}),
            json!({"n": p62 + 500}),
            json!({"n": p62 + 600}),
            json!({"n": p62 - 500}),
            json!({"n": i64::MAX}),
            json!({"n": i64::MIN}),
            json!({"n": u64::MAX}),
        ]);
        let index = index_all(&rows, &[("n", FieldType::Integer)]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"lte": p62}}}), &[0, 1, 3, 5]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"gt": p62}}}), &[2, 4, 6]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"gte": p62, "lt": p62}}}), &[]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"gte": 1e300}}}), &[]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"lte": -1e300}}}), &[]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"gte": 9.3e18}}}), &[6]);
        check(&index, &rows, json!({"must": {"key": "n", "match": {"value": p62 + 1}}}), &[0]);
        let index = index_all(&rows, &[("n", FieldType::Float)]);
        check(&index, &rows, json!({"must": {"key": "n", "range": {"lte": p62}}}), &[0, 1, 3, 5]);
        check(&index, &rows, json!({"must": {"key": "n", "match": {"value": p62 + 1}}}), &[0]);
        check(&index, &rows, json!({"must": {"key": "n", "match": {"any": [i64::MAX, 5]}}}), &[4]);
    }

    #[test]
    fn fields_drop_and_memory() {
        let rows = sample_rows();
        let mut index = index_all(&rows, &[("n", FieldType::Integer), ("city", FieldType::Keyword)]);
        assert_eq!(index.fields(), vec![("city".to_owned(), FieldType::Keyword), ("n".to_owned(), FieldType::Integer)]);
        assert!(index.memory_bytes() > 0);
        index.add_field("n", FieldType::Float, &rows);
        assert_eq!(index.field_type("n"), Some(FieldType::Float));
        assert!(index.drop_field("n"));
        assert!(!index.drop_field("n"));
        assert_eq!(index.fields().len(), 1);
    }

    // ----- random payloads and filters -----

    const KEYS: [&str; 6] = ["a", "b", "c.d", "e", "c", "zz"];
    const STRINGS: [&str; 12] = [
        "x",
        "y",
        "xy",
        "x Y",
        "y x x",
        "",
        "2024-01-01",
        "2024-01-01T12:00:00+02:00",
        "2024-01-02T00:00:00Z",
        "2023-12-31T23:30:00-01:00",
        "2024-01-01 10:00",
        "nope",
    ];
    const DATES: [&str; 5] =
        ["2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01T23:00:00+01:00", "2024-01-02", "1970-01-01"];
    const BOUNDS: [f64; 8] = [-2.0, -0.5, 0.0, 1.0, 2.0, 2.5, 3.0, 1e19];

    /// `x` to 1e-6 (so a filter's JSON round trip is exact).
    fn r6(x: f64) -> f64 {
        (x * 1e6).round() / 1e6
    }

    /// A point near (10°, 50°), sometimes across the antimeridian, sometimes out of range.
    fn geo_point(r: &mut ChaCha8Rng) -> Value {
        match r.random_range(0..8) {
            0 => json!({"lon": r6(r.random_range(178.0..=180.0)), "lat": r6(r.random_range(-1.0..1.0))}),
            1 => json!({"lon": 200.0, "lat": 0.0}),
            _ => json!({"lon": r6(10.0 + r.random_range(-3.0..3.0)), "lat": r6(50.0 + r.random_range(-3.0..3.0))}),
        }
    }

    fn scalar(r: &mut ChaCha8Rng) -> Value {
        match r.random_range(0..13) {
            12 => geo_point(r),
            0..=2 => json!(r.random_range(-3i64..=3)),
            3 => json!([0.5, -1.5, 2.0, 3.0, -0.0, 2.5][r.random_range(0..6)]),
            4 => [json!(u64::MAX), json!(i64::MIN), json!(1e19)][r.random_range(0..3)].clone(),
            5..=7 => json!(STRINGS[r.random_range(0..STRINGS.len())]),
            8 => json!(r.random_bool(0.5)),
            9 => Value::Null,
            10 => json!({}),
            _ => json!([[1]]),
        }
    }

    fn value(r: &mut ChaCha8Rng) -> Value {
        if r.random_bool(0.25) {
            Value::Array((0..r.random_range(0..4)).map(|_| scalar(r)).collect())
        } else {
            scalar(r)
        }
    }

    fn payload(r: &mut ChaCha8Rng) -> Option<Payload> {
        if r.random_bool(0.08) {
            return None;
        }
        let mut p = Payload::new();
        for k in ["a", "b", "e"] {
            if r.random_bool(0.75) {
                p.insert(k.to_owned(), value(r));
            }
        }
        match r.random_range(0..4) {
            0 => {}
            1 => {
                p.insert("c".to_owned(), json!({"d": value(r)}));
            }
            2 => {
                p.insert("c".to_owned(), json!([{"d": value(r)}, {"d": value(r)}, {"x": 1}]));
            }
            _ => {
                p.insert("c".to_owned(), value(r));
            }
        }
        Some(p)
    }

    fn pick<T: Clone>(r: &mut ChaCha8Rng, xs: &[T]) -> T {
        xs[r.random_range(0..xs.len())].clone()
    }

    fn bounds(r: &mut ChaCha8Rng, mut make: impl FnMut(&mut ChaCha8Rng) -> Value) -> Value {
        let mut m = serde_json::Map::new();
        for name in ["gt", "gte", "lt", "lte"] {
            if r.random_bool(0.4) {
                m.insert(name.to_owned(), make(r));
            }
        }
        if m.is_empty() {
            m.insert(pick(r, &["gt", "gte", "lt", "lte"]).to_owned(), make(r));
        }
        Value::Object(m)
    }

    fn list(r: &mut ChaCha8Rng) -> Value {
        let n = r.random_range(0..4);
        if r.random_bool(0.5) {
            Value::Array((0..n).map(|_| json!(pick(r, &STRINGS))).collect())
        } else {
            Value::Array((0..n).map(|_| json!(r.random_range(-3i64..=3))).collect())
        }
    }

    fn condition(r: &mut ChaCha8Rng, depth: usize, rows: u64) -> Value {
        let key = pick(r, &KEYS);
        let top = if depth < 3 { 14 } else { 13 };
        match r.random_range(0..top) {
            13 => filter(r, depth + 1, rows),
            0 => json!({"key": key, "match": {"value": pick(r, &STRINGS)}}),
            1 => json!({"key": key, "match": {"value": r.random_range(-3i64..=3)}}),
            2 => json!({"key": key, "match": {"value": r.random_bool(0.5)}}),
            3 => json!({"key": key, "match": {"any": list(r)}}),
            4 => json!({"key": key, "match": {"except": list(r)}}),
            5 => json!({"key": key, "match": {"text": pick(r, &["x", "y", "", "2024", "x y", "X"])}}),
            6 | 7 => json!({"key": key, "range": bounds(r, |r| json!(pick(r, &BOUNDS)))}),
            8 => json!({"key": key, "range": bounds(r, |r| json!(pick(r, &DATES)))}),
            9 => json!({"key": key, "values_count": bounds(r, |r| json!(r.random_range(0u64..3)))}),
            10 => json!({pick(r, &["is_empty", "is_null"]): {"key": key}}),
            11 => {
                json!({"has_id": (0..r.random_range(0..4)).map(|_| r.random_range(0..rows * 3 + 2)).collect::<Vec<_>>()})
            }
            12 if r.random_bool(0.5) => {
                let c = geo_point(r);
                let c = if c["lon"] == json!(200.0) { json!({"lon": 10.0, "lat": 50.0}) } else { c };
                json!({"key": key, "geo_radius": {"center": c, "radius": r6(r.random_range(0.0..400_000.0))}})
            }
            12 => {
                let (lon, lat) = (r6(r.random_range(5.0..179.0)), r6(r.random_range(45.0..55.0)));
                let (w, h) = (r6(r.random_range(0.0..8.0)), r6(r.random_range(0.0..6.0)));
                let east = r6(if lon + w > 180.0 { lon + w - 360.0 } else { lon + w });
                json!({"key": key, "geo_bounding_box": {"top_left": {"lon": lon, "lat": lat},
                    "bottom_right": {"lon": east, "lat": r6(lat - h)}}})
            }
            _ => unreachable!(),
        }
    }

    fn filter(r: &mut ChaCha8Rng, depth: usize, rows: u64) -> Value {
        let mut m = serde_json::Map::new();
        for (clause, max) in [("must", 3), ("should", 3), ("must_not", 2)] {
            let n = r.random_range(0..=max);
            if n > 0 {
                m.insert(clause.to_owned(), (0..n).map(|_| condition(r, depth, rows)).collect());
            }
        }
        if r.random_bool(0.25) {
            let n = r.random_range(0..4);
            let conditions: Vec<Value> = (0..n).map(|_| condition(r, depth, rows)).collect();
            m.insert("min_should".to_owned(), json!({"conditions": conditions, "min_count": r.random_range(0..4)}));
        }
        Value::Object(m)
    }

    fn random_fields(r: &mut ChaCha8Rng) -> Vec<(&'static str, FieldType)> {
        let mut out = Vec::new();
        for k in KEYS {
            if r.random_bool(0.6) {
                out.push((k, pick(r, &FieldType::ALL)));
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn evaluate_equals_the_direct_evaluator(seed in any::<u64>()) {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let n = r.random_range(0..40);
            let rows = Rows::new((0..n).map(|_| payload(&mut r)).collect());
            let index = index_all(&rows, &random_fields(&mut r));
            for _ in 0..8 {
                let json = filter(&mut r, 1, u64::from(n));
                let filter: Filter = serde_json::from_value(json.clone()).unwrap();
                prop_assert!(filter.validate(DEFAULT_MAX_FILTER_DEPTH).is_ok(), "{}", json);
                let again: Filter = serde_json::from_str(&filter.to_string()).unwrap();
                prop_assert_eq!(&again, &filter);

                // On text-indexed keys `match.text` means "every term" (Filter::matches_with).
                let text = |k: &str| match index.field_type(k) {
                    Some(FieldType::Text(o)) => Some(o),
                    _ => None,
                };
                let empty = Payload::new();
                let want: RoaringBitmap = (0..rows.row_count())
                    .filter(|&r| filter.matches_with(&rows.row_id(r), rows.row_payload(r).as_deref().unwrap_or(&empty), &text))
                    .collect();
                let ev = index.evaluate(&filter, &rows);
                prop_assert_eq!(&ev.rows, &want, "filter {} index {:?}", json, index.fields());
                let est = index.estimate(&filter, n);
                let count = want.len();
                prop_assert!(est.min <= count && count <= est.max && est.min <= est.exp && est.exp <= est.max,
                    "filter {} estimate {:?} count {}", json, est, count);
                let mut keys = ev.indexed_keys.clone();
                keys.extend(ev.unindexed_keys.iter().cloned());
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys, filter.keys());
            }
        }

        #[test]
        fn insert_and_remove_equal_a_rebuild(seed in any::<u64>()) {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let n = r.random_range(0..30);
            let mut payloads: Vec<Payload> = (0..n).map(|_| payload(&mut r).unwrap_or_default()).collect();
            let fields = random_fields(&mut r);
            let mut index = index_all(&Rows::new(Vec::new()), &fields);
            for (row, p) in payloads.iter().enumerate() {
                index.insert(row as u32, p);
            }
            for _ in 0..n {
                let row = r.random_range(0..n);
                let new = payload(&mut r).unwrap_or_default();
                index.remove(row, &payloads[row as usize]);
                index.insert(row, &new);
                payloads[row as usize] = new;
            }
            let rows = Rows::new(payloads.into_iter().map(Some).collect());
            let rebuilt = index_all(&rows, &fields);
            prop_assert_eq!(&index, &rebuilt);
            // Removing every row leaves empty field indexes.
            for row in 0..n {
                index.remove(row, &rows.row_payload(row).unwrap());
            }
            prop_assert_eq!(index, index_all(&Rows::new(Vec::new()), &fields));
        }
    }
}
