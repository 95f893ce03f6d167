//! The filter language: JSON-shaped like Qdrant's REST filter.
//!
//! ```json
//! {"must": [cond, ...], "should": [cond, ...], "must_not": [cond, ...],
//!  "min_should": {"conditions": [cond, ...], "min_count": 2}}
//! ```
//!
//! Every clause is optional, and `must`, `should` and `must_not` also accept a single condition instead of a
//! list. A condition is one of
//!
//! * a field condition `{"key": "a.b", "match": {...}}`, `{"key": k, "range": {...}}`,
//!   `{"key": k, "values_count": {...}}` or a geo condition `geo_radius` / `geo_bounding_box` / `geo_polygon`
//!   (exactly one operator);
//! * `{"is_empty": {"key": k}}`, `{"is_null": {"key": k}}`, `{"has_id": [1, "uuid", ...]}`;
//! * a nested filter (an object with the filter's own keys; `{}` is the empty filter).
//!
//! # Semantics
//!
//! Keys are dotted paths into the payload; arrays met on the way are flattened (see [`crate::payload`]). A
//! field condition holds when **any** value found at its key satisfies it, so a missing key (or one holding
//! only `null` / `[]`) satisfies no `match` and no `range`.
//!
//! * `match.value`: a string equals a string value; a bool equals a bool value; an integer `n` equals a JSON
//!   number of the same mathematical value, so `3` matches `3` and `3.0` but not `3.5` (nor `"3"`). Floats
//!   are not accepted in `match` (use `range`).
//! * `match.any`: the value equals one of the listed strings, or one of the listed integers (same rules as
//!   `value`). The list is all strings or all integers; an empty list matches nothing.
//! * `match.except`: the key holds a non-null value that is not one of the listed values. Values of another
//!   type than the list's count as "not one of them" (`true` satisfies `except: ["red"]`). As in Qdrant, a
//!   point whose key is missing, `null` or `[]` does **not** match `except` (use `must_not` + `match.any` to
//!   include those). For arrays, one element outside the list is enough.
//! * `match.text`: a string value contains the text (case-sensitive substring).
//! * `range` with numeric bounds: a number value `v` with `v > gt`, `v >= gte`, `v < lt`, `v <= lte`,
//!   compared as `f64` (integers beyond 2^53 are rounded, as in Qdrant). Strings never match.
//! * `range` with string bounds (every present bound a string): a datetime range. The bounds are RFC 3339
//!   datetimes ([`crate::datetime::parse_datetime`]), parsed once when the filter is deserialized; string
//!   values of the payload that parse as datetimes are compared as instants (offsets honoured); other values
//!   never match.
//! * `values_count`: the number of non-null values at the key (arrays flattened; a missing key counts 0)
//!   satisfies the bounds. Unlike the other field conditions it can match a missing key (`lt: 1`).
//! * `geo_radius` (`{"center": {"lon", "lat"}, "radius": metres}`), `geo_bounding_box` (`{"top_left",
//!   "bottom_right"}`), `geo_polygon` (`{"exterior": {"points": [...]}, "interiors": [...]}`, closed rings): a
//!   value that is a point `{"lon": x, "lat": y}` lies inside the shape (see [`crate::geo`]); other values never
//!   match.
//! * `is_empty`: the key is missing, `null`, or holds no non-null value (`[]`, `[null]`).
//! * `is_null`: the key is present with the value `null` (not missing, not `[]`).
//! * `has_id`: the point's id is one of the listed ids.
//!
//! Clauses: every `must` condition holds; at least one `should` condition holds (when the list is not empty);
//! no `must_not` condition holds; at least `min_should.min_count` of its conditions hold (`min_count: 0`
//! always holds). The empty filter matches every point.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::datetime::parse_datetime;
use crate::error::{Error, Result};
use crate::geo::GeoShape;
use crate::id::PointId;
use crate::payload::{self, Payload};

/// The default limit on how deeply filters may nest (the top-level filter is depth 1).
pub const DEFAULT_MAX_FILTER_DEPTH: usize = 16;

/// A filter over points (see the module documentation for the JSON shape and the semantics).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    /// Conditions that must all hold.
    pub must: Vec<Condition>,
    /// Conditions of which at least one must hold, when there are any.
    pub should: Vec<Condition>,
    /// Conditions none of which may hold.
    pub must_not: Vec<Condition>,
    /// At least `min_count` of these conditions must hold.
    pub min_should: Option<MinShould>,
}

/// The `min_should` clause: at least `min_count` of `conditions` must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinShould {
    /// The conditions counted.
    pub conditions: Vec<Condition>,
    /// How many of them must hold at least.
    pub min_count: usize,
}

/// One condition of a filter clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A condition on the values at a payload key.
    Field(FieldCondition),
    /// The key is missing, `null` or holds no non-null value.
    IsEmpty {
        /// The payload key.
        key: String,
    },
    /// The key holds `null`.
    IsNull {
        /// The payload key.
        key: String,
    },
    /// The point's id is one of these.
    HasId(Vec<PointId>),
    /// A nested filter.
    Filter(Box<Filter>),
}

/// A condition on the values at one payload key.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCondition {
    /// The dotted payload key.
    pub key: String,
    /// What the values must satisfy.
    pub predicate: FieldPredicate,
}

/// What a [`FieldCondition`] tests.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldPredicate {
    /// `match`: equality-like tests on single values.
    Match(Match),
    /// `range`: numeric or datetime intervals.
    Range(Range),
    /// `values_count`: the number of non-null values at the key.
    ValuesCount(ValuesCount),
    /// `geo_radius`, `geo_bounding_box`, `geo_polygon`: a point value (`{"lon", "lat"}`) inside the shape.
    Geo(GeoShape),
}

/// The `match` operators.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// `{"value": v}`.
    Value(MatchValue),
    /// `{"any": [...]}`.
    Any(AnyValues),
    /// `{"except": [...]}`.
    Except(AnyValues),
    /// `{"text": "..."}`: substring of a string value.
    Text(String),
}

/// The value of `match.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchValue {
    /// A string (keyword).
    Keyword(String),
    /// An integer; matches numbers of the same value (`3.0` included).
    Integer(i64),
    /// A bool.
    Bool(bool),
}

/// The list of `match.any` / `match.except`: all strings or all integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyValues {
    /// Strings.
    Keywords(Vec<String>),
    /// Integers.
    Integers(Vec<i64>),
}

/// A `range` condition: numeric or datetime.
#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    /// Bounds are numbers.
    Number(NumberRange),
    /// Bounds are RFC 3339 datetime strings.
    Datetime(DatetimeRange),
}

/// Numeric range bounds (each optional; all present ones must hold).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NumberRange {
    /// Strictly greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Strictly less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

/// Datetime range bounds (each optional; all present ones must hold).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatetimeRange {
    /// Strictly after.
    pub gt: Option<DatetimeBound>,
    /// At or after.
    pub gte: Option<DatetimeBound>,
    /// Strictly before.
    pub lt: Option<DatetimeBound>,
    /// At or before.
    pub lte: Option<DatetimeBound>,
}

/// A datetime bound as written, with its instant parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatetimeBound {
    /// The string as given (kept for serialization and error messages).
    pub text: String,
    /// Microseconds since the epoch; `None` when `text` is not a datetime (the filter fails validation, and
    /// the condition matches nothing).
    pub micros: Option<i64>,
}

/// `values_count` bounds on the number of non-null values at a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesCount {
    /// Strictly more than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<u64>,
    /// At least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<u64>,
    /// Strictly fewer than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<u64>,
    /// At most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<u64>,
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------------

/// A JSON number as an `i64` when it has exactly that mathematical value (`3`, `3.0`, `-2`), else `None`
/// (fractions, integers beyond the `i64` range, non-numbers).
pub(crate) fn exact_i64(v: &Value) -> Option<i64> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return None; // above i64::MAX
    }
    let f = n.as_f64()?;
    // -2^63 is exactly representable; 2^63 is the first value out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

/// The text analysis of each key with a text index (`None` for the other keys).
pub type TextKeys<'a> = &'a dyn Fn(&str) -> Option<crate::fulltext::TextOptions>;

impl Filter {
    /// Whether the point (`id`, `payload`) satisfies the filter: the direct evaluator, reading the payload, for
    /// a collection without text indexes (`match.text` is a substring test).
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        self.matches_with(id, payload, &|_| None)
    }

    /// [`Filter::matches`] where `text(key)` gives the options of the keys with a text index: on those,
    /// `match.text` holds when the key's strings hold every term of the query text (see [`crate::fulltext`]).
    pub fn matches_with(&self, id: &PointId, payload: &Payload, text: TextKeys<'_>) -> bool {
        let m = |c: &Condition| c.matches_with(id, payload, text);
        self.must.iter().all(m)
            && !self.must_not.iter().any(m)
            && (self.should.is_empty() || self.should.iter().any(m))
            && self.min_should.as_ref().is_none_or(|ms| {
                ms.min_count == 0 || ms.conditions.iter().filter(|c| m(c)).take(ms.min_count).count() >= ms.min_count
            })
    }

    /// The payload keys the filter mentions (field conditions, `is_empty`, `is_null`, nested filters
    /// included), sorted, without duplicates.
    pub fn keys(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        self.collect_keys(&mut out);
        out.into_iter().collect()
    }

    fn collect_keys(&self, out: &mut BTreeSet<String>) {
        for c in self.conditions() {
            match c {
                Condition::Field(f) => {
                    out.insert(f.key.clone());
                }
                Condition::IsEmpty { key } | Condition::IsNull { key } => {
                    out.insert(key.clone());
                }
                Condition::HasId(_) => {}
                Condition::Filter(f) => f.collect_keys(out),
            }
        }
    }

    /// Every condition of every clause (not descending into nested filters).
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.must
            .iter()
            .chain(&self.should)
            .chain(&self.must_not)
            .chain(self.min_should.iter().flat_map(|m| m.conditions.iter()))
    }

    /// Whether the filter has no condition at all (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.conditions().next().is_none()
    }

    /// Checks what deserialization cannot: non-empty keys without empty path segments, ranges and
    /// `values_count` with at least one bound, finite numeric bounds, datetime bounds that parse, and nesting
    /// no deeper than `max_depth` (the top-level filter is depth 1). Errors are
    /// [`Error::InvalidFilter`] naming the place, e.g. `must[0].range.gte`.
    pub fn validate(&self, max_depth: usize) -> Result<()> {
        self.validate_at("", 1, max_depth)
    }

    fn validate_at(&self, path: &str, depth: usize, max_depth: usize) -> Result<()> {
        if depth > max_depth {
            let at = if path.is_empty() { "filter" } else { path };
            return Err(Error::filter(at, format!("filters nest deeper than the limit of {max_depth}")));
        }
        let join = |clause: &str, i: usize| {
            if path.is_empty() { format!("{clause}[{i}]") } else { format!("{path}.{clause}[{i}]") }
        };
        for (clause, list) in [("must", &self.must), ("should", &self.should), ("must_not", &self.must_not)] {
            for (i, c) in list.iter().enumerate() {
                c.validate_at(&join(clause, i), depth, max_depth)?;
            }
        }
        if let Some(ms) = &self.min_should {
            for (i, c) in ms.conditions.iter().enumerate() {
                c.validate_at(&join("min_should.conditions", i), depth, max_depth)?;
            }
        }
        Ok(())
    }
}

impl Condition {
    /// Whether the point satisfies this condition.
    pub fn matches(&self, id: &PointId, payload: &Payload) -> bool {
        self.matches_with(id, payload, &|_| None)
    }

    /// [`Condition::matches`] with text indexes; see [`Filter::matches_with`].
    pub fn matches_with(&self, id: &PointId, payload: &Payload, text: TextKeys<'_>) -> bool {
        match self {
            Condition::Field(f) => match (&f.predicate, text(&f.key)) {
                (FieldPredicate::Match(Match::Text(q)), Some(opts)) => {
                    let terms = crate::fulltext::Bm25Query::new(opts, q).terms;
                    let strings = payload::values_at(payload, &f.key);
                    let mut have = Vec::new();
                    for s in strings.iter().filter_map(|v| v.as_str()) {
                        have.extend(crate::fulltext::analyze(opts, s));
                    }
                    !terms.is_empty() && terms.iter().all(|t| have.contains(t))
                }
                _ => f.matches(payload),
            },
            Condition::IsEmpty { key } => payload::is_empty_at(payload, key),
            Condition::IsNull { key } => payload::is_null_at(payload, key),
            Condition::HasId(ids) => ids.contains(id),
            Condition::Filter(f) => f.matches_with(id, payload, text),
        }
    }

    fn validate_at(&self, path: &str, depth: usize, max_depth: usize) -> Result<()> {
        match self {
            Condition::Field(f) => {
                validate_key(&f.key, &format!("{path}.key"))?;
                match &f.predicate {
                    FieldPredicate::Match(_) => Ok(()),
                    FieldPredicate::Range(Range::Number(r)) => {
                        let bounds = [("gt", r.gt), ("gte", r.gte), ("lt", r.lt), ("lte", r.lte)];
                        if bounds.iter().all(|(_, b)| b.is_none()) {
                            return Err(no_bound(&format!("{path}.range")));
                        }
                        for (name, b) in bounds {
                            if b.is_some_and(|b| !b.is_finite()) {
                                return Err(Error::filter(
                                    format!("{path}.range.{name}"),
                                    "bound must be a finite number",
                                ));
                            }
                        }
                        Ok(())
                    }
                    FieldPredicate::Range(Range::Datetime(r)) => {
                        let bounds = [("gt", &r.gt), ("gte", &r.gte), ("lt", &r.lt), ("lte", &r.lte)];
                        if bounds.iter().all(|(_, b)| b.is_none()) {
                            return Err(no_bound(&format!("{path}.range")));
                        }
                        for (name, b) in bounds {
                            if let Some(b) = b
                                && b.micros.is_none()
                            {
                                return Err(Error::filter(
                                    format!("{path}.range.{name}"),
                                    format!("{:?} is not an RFC 3339 datetime (e.g. 2024-01-31T12:00:00Z)", b.text),
                                ));
                            }
                        }
                        Ok(())
                    }
                    FieldPredicate::ValuesCount(v) => {
                        if [v.gt, v.gte, v.lt, v.lte].iter().all(Option::is_none) {
                            return Err(no_bound(&format!("{path}.values_count")));
                        }
                        Ok(())
                    }
                    FieldPredicate::Geo(g) => g.validate().map_err(|e| Error::filter(path, e)),
                }
            }
            Condition::IsEmpty { key } => validate_key(key, &format!("{path}.is_empty.key")),
            Condition::IsNull { key } => validate_key(key, &format!("{path}.is_null.key")),
            Condition::HasId(_) => Ok(()),
            Condition::Filter(f) => f.validate_at(path, depth + 1, max_depth),
        }
    }
}

fn no_bound(path: &str) -> Error {
    Error::filter(path, "needs at least one of gt, gte, lt, lte")
}

/// Whether `key` is a usable dotted payload key: not empty, no empty segment, no segment that is only `[]`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && !key.split('.').any(|p| p.strip_suffix("[]").unwrap_or(p).is_empty())
}

fn validate_key(key: &str, path: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::filter(path, "key must not be empty"));
    }
    if key.split('.').any(|p| p.strip_suffix("[]").unwrap_or(p).is_empty()) {
        return Err(Error::filter(path, format!("key {key:?} has an empty path segment")));
    }
    Ok(())
}

impl FieldCondition {
    /// Whether the payload's values at `key` satisfy the predicate.
    pub fn matches(&self, payload: &Payload) -> bool {
        let values = payload::values_at(payload, &self.key);
        match &self.predicate {
            FieldPredicate::Match(m) => values.iter().any(|v| m.matches_value(v)),
            FieldPredicate::Range(r) => values.iter().any(|v| r.matches_value(v)),
            FieldPredicate::ValuesCount(c) => c.contains(values.iter().filter(|v| !v.is_null()).count() as u64),
            FieldPredicate::Geo(g) => g.matches_values(&values),
        }
    }
}

impl Match {
    /// Whether one (already flattened) payload value satisfies the operator.
    pub fn matches_value(&self, v: &Value) -> bool {
        match self {
            Match::Value(MatchValue::Keyword(s)) => v.as_str() == Some(s.as_str()),
            Match::Value(MatchValue::Integer(n)) => exact_i64(v) == Some(*n),
            Match::Value(MatchValue::Bool(b)) => v.as_bool() == Some(*b),
            Match::Any(list) => list.contains_value(v),
            Match::Except(list) => !v.is_null() && !list.contains_value(v),
            Match::Text(t) => v.as_str().is_some_and(|s| s.contains(t.as_str())),
        }
    }
}

impl AnyValues {
    /// Whether `v` equals one of the listed values (strings to strings, integers to numbers of that value).
    pub fn contains_value(&self, v: &Value) -> bool {
        match self {
            AnyValues::Keywords(l) => v.as_str().is_some_and(|s| l.iter().any(|k| k == s)),
            AnyValues::Integers(l) => exact_i64(v).is_some_and(|n| l.contains(&n)),
        }
    }

    /// Number of listed values.
    pub fn len(&self) -> usize {
        match self {
            AnyValues::Keywords(l) => l.len(),
            AnyValues::Integers(l) => l.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Range {
    /// Whether one payload value lies in the range (numbers for a numeric range, datetime strings for a
    /// datetime range).
    pub fn matches_value(&self, v: &Value) -> bool {
        match self {
            Range::Number(r) => v.as_f64().is_some_and(|x| r.contains(x)),
            Range::Datetime(r) => v.as_str().and_then(parse_datetime).is_some_and(|t| r.contains(t)),
        }
    }
}

impl NumberRange {
    /// Whether `x` satisfies every present bound.
    pub fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

impl DatetimeRange {
    /// Whether the instant `t` (microseconds) satisfies every present bound; false when a bound did not parse.
    pub fn contains(&self, t: i64) -> bool {
        let ok = |b: &Option<DatetimeBound>, f: fn(i64, i64) -> bool| match b {
            None => true,
            Some(DatetimeBound { micros: Some(m), .. }) => f(t, *m),
            Some(DatetimeBound { micros: None, .. }) => false,
        };
        ok(&self.gt, |t, m| t > m)
            && ok(&self.gte, |t, m| t >= m)
            && ok(&self.lt, |t, m| t < m)
            && ok(&self.lte, |t, m| t <= m)
    }

    /// The present bounds as one closed interval `(lower, upper)` of instants (empty when lower > upper);
    /// `None` when a bound did not parse or a strict bound leaves no instant (`gt` the largest one).
    pub fn closed_interval(&self) -> Option<(i64, i64)> {
        let mut lo = i64::MIN;
        let mut hi = i64::MAX;
        for (b, strict, lower) in
            [(&self.gt, true, true), (&self.gte, false, true), (&self.lt, true, false), (&self.lte, false, false)]
        {
            let Some(b) = b else { continue };
            let m = b.micros?;
            if lower {
                lo = lo.max(if strict { m.checked_add(1)? } else { m });
            } else {
                hi = hi.min(if strict { m.checked_sub(1)? } else { m });
            }
        }
        Some((lo, hi))
    }
}

impl DatetimeBound {
    /// A bound from its text, parsed now.
    pub fn new(text: impl Into<String>) -> DatetimeBound {
        let text = text.into();
        let micros = parse_datetime(&text);
        DatetimeBound { text, micros }
    }
}

impl ValuesCount {
    /// Whether a count satisfies every present bound.
    pub fn contains(&self, n: u64) -> bool {
        self.gt.is_none_or(|b| n > b)
            && self.gte.is_none_or(|b| n >= b)
            && self.lt.is_none_or(|b| n < b)
            && self.lte.is_none_or(|b| n <= b)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------------------

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (name, list) in [("must", &self.must), ("should", &self.should), ("must_not", &self.must_not)] {
            if !list.is_empty() {
                m.serialize_entry(name, list)?;
            }
        }
        if let Some(ms) = &self.min_should {
            m.serialize_entry("min_should", ms)?;
        }
        m.end()
    }
}

/// `{"key": k}`, the argument of `is_empty` and `is_null`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyArg {
    key: String,
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Condition::Field(f) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("key", &f.key)?;
                match &f.predicate {
                    FieldPredicate::Match(x) => m.serialize_entry("match", x)?,
                    FieldPredicate::Range(x) => m.serialize_entry("range", x)?,
                    FieldPredicate::ValuesCount(x) => m.serialize_entry("values_count", x)?,
                    FieldPredicate::Geo(GeoShape::Radius(x)) => m.serialize_entry("geo_radius", x)?,
                    FieldPredicate::Geo(GeoShape::BoundingBox(x)) => m.serialize_entry("geo_bounding_box", x)?,
                    FieldPredicate::Geo(GeoShape::Polygon(x)) => m.serialize_entry("geo_polygon", x)?,
                }
                m.end()
            }
            Condition::IsEmpty { key } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("is_empty", &KeyArg { key: key.clone() })?;
                m.end()
            }
            Condition::IsNull { key } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("is_null", &KeyArg { key: key.clone() })?;
                m.end()
            }
            Condition::HasId(ids) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("has_id", ids)?;
                m.end()
            }
            Condition::Filter(f) => f.serialize(s),
        }
    }
}

impl Serialize for Match {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Match::Value(MatchValue::Keyword(v)) => m.serialize_entry("value", v)?,
            Match::Value(MatchValue::Integer(v)) => m.serialize_entry("value", v)?,
            Match::Value(MatchValue::Bool(v)) => m.serialize_entry("value", v)?,
            Match::Any(l) => m.serialize_entry("any", l)?,
            Match::Except(l) => m.serialize_entry("except", l)?,
            Match::Text(t) => m.serialize_entry("text", t)?,
        }
        m.end()
    }
}

impl Serialize for AnyValues {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            AnyValues::Keywords(l) => l.serialize(s),
            AnyValues::Integers(l) => l.serialize(s),
        }
    }
}

/// A numeric bound, written as an integer when it is one (so `{"gte": 10}` round-trips textually).
struct NumBound(f64);

impl Serialize for NumBound {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if self.0.fract() == 0.0 && self.0.abs() <= EXACT && !(self.0 == 0.0 && self.0.is_sign_negative()) {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl Serialize for Range {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Range::Number(r) => {
                for (name, b) in [("gt", r.gt), ("gte", r.gte), ("lt", r.lt), ("lte", r.lte)] {
                    if let Some(b) = b {
                        m.serialize_entry(name, &NumBound(b))?;
                    }
                }
            }
            Range::Datetime(r) => {
                for (name, b) in [("gt", &r.gt), ("gte", &r.gte), ("lt", &r.lt), ("lte", &r.lte)] {
                    if let Some(b) = b {
                        m.serialize_entry(name, &b.text)?;
                    }
                }
            }
        }
        m.end()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Deserialization
// ---------------------------------------------------------------------------------------------------------

const FILTER_KEYS: [&str; 4] = ["must", "should", "must_not", "min_should"];

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Filter, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(map) => filter_from_map(map).map_err(de::Error::custom),
            other => Err(de::Error::custom(format!("expected a filter object, got {}", kind(&other)))),
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Condition, D::Error> {
        condition_from_value(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Match {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Match, D::Error> {
        match_from_value(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Range, D::Error> {
        range_from_value(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// A short description of a JSON value's type, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn filter_from_map(map: Map<String, Value>) -> std::result::Result<Filter, String> {
    let mut f = Filter::default();
    for (k, v) in map {
        match k.as_str() {
            "must" => f.must = clause_from_value(v, "must")?,
            "should" => f.should = clause_from_value(v, "should")?,
            "must_not" => f.must_not = clause_from_value(v, "must_not")?,
            "min_should" => {
                f.min_should = match v {
                    Value::Null => None,
                    v => Some(serde_json::from_value(v).map_err(|e| format!("min_should: {e}"))?),
                }
            }
            other => {
                return Err(format!(
                    "unknown filter clause `{other}`; expected one of must, should, must_not, min_should"
                ));
            }
        }
    }
    Ok(f)
}

/// A clause's value: a list of conditions, a single condition, or `null` (no conditions).
fn clause_from_value(v: Value, clause: &str) -> std::result::Result<Vec<Condition>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, c)| condition_from_value(c).map_err(|e| format!("{clause}[{i}]: {e}")))
            .collect(),
        Value::Object(_) => Ok(vec![condition_from_value(v).map_err(|e| format!("{clause}: {e}"))?]),
        other => Err(format!("{clause}: expected a condition or a list of conditions, got {}", kind(&other))),
    }
}

fn condition_from_value(v: Value) -> std::result::Result<Condition, String> {
    let Value::Object(mut map) = v else {
        return Err(format!("expected a condition object, got {}", kind(&v)));
    };
    if map.contains_key("key") {
        const OPS: [&str; 6] = ["match", "range", "values_count", "geo_radius", "geo_bounding_box", "geo_polygon"];
        let ops: Vec<&str> = OPS.into_iter().filter(|op| map.contains_key(*op)).collect();
        if let Some(extra) = map.keys().find(|k| k.as_str() != "key" && !OPS.contains(&k.as_str())) {
            return Err(format!(
                "unknown field `{extra}` in a field condition; expected `key` with one of match, range, \
                 values_count, geo_radius, geo_bounding_box, geo_polygon"
            ));
        }
        let key = match map.remove("key") {
            Some(Value::String(k)) => k,
            Some(other) => return Err(format!("`key` must be a string, got {}", kind(&other))),
            None => String::new(),
        };
        let predicate = match ops.as_slice() {
            [] => {
                return Err(format!(
                    "field condition on {key:?} needs one of match, range, values_count, geo_radius, \
                     geo_bounding_box, geo_polygon"
                ));
            }
            ["match"] => FieldPredicate::Match(
                match_from_value(map.remove("match").unwrap_or_default()).map_err(|e| format!("match: {e}"))?,
            ),
            ["range"] => FieldPredicate::Range(
                range_from_value(map.remove("range").unwrap_or_default()).map_err(|e| format!("range: {e}"))?,
            ),
            ["values_count"] => FieldPredicate::ValuesCount(
                serde_json::from_value(map.remove("values_count").unwrap_or_default())
                    .map_err(|e| format!("values_count: {e}"))?,
            ),
            [op @ ("geo_radius" | "geo_bounding_box" | "geo_polygon")] => {
                let arg = map.remove(*op).unwrap_or_default();
                let err = |e: serde_json::Error| format!("{op}: {e}");
                FieldPredicate::Geo(match *op {
                    "geo_radius" => GeoShape::Radius(serde_json::from_value(arg).map_err(err)?),
                    "geo_bounding_box" => GeoShape::BoundingBox(serde_json::from_value(arg).map_err(err)?),
                    _ => GeoShape::Polygon(serde_json::from_value(arg).map_err(err)?),
                })
            }
            many => {
                return Err(format!(
                    "field condition on {key:?} has {}; use one operator per condition",
                    many.join(" and ")
                ));
            }
        };
        return Ok(Condition::Field(FieldCondition { key, predicate }));
    }
    for (name, single) in [("is_empty", true), ("is_null", true), ("has_id", false)] {
        let Some(arg) = map.remove(name) else { continue };
        if let Some(extra) = map.keys().next() {
            return Err(format!("`{name}` cannot be combined with `{extra}` in one condition"));
        }
        if single {
            let KeyArg { key } = serde_json::from_value(arg).map_err(|e| format!("{name}: {e}"))?;
            return Ok(if name == "is_empty" { Condition::IsEmpty { key } } else { Condition::IsNull { key } });
        }
        let ids: Vec<PointId> = serde_json::from_value(arg).map_err(|e| format!("has_id: {e}"))?;
        return Ok(Condition::HasId(ids));
    }
    if let Some(extra) = map.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown condition field `{extra}`; expected key, is_empty, is_null, has_id or a nested filter \
             (must, should, must_not, min_should)"
        ));
    }
    Ok(Condition::Filter(Box::new(filter_from_map(map)?)))
}

fn match_from_value(v: Value) -> std::result::Result<Match, String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object with one of value, any, except, text; got {}", kind(&v)));
    };
    if map.len() != 1 {
        let names: Vec<&str> = map.keys().map(String::as_str).collect();
        return Err(format!("expected exactly one of value, any, except, text; got [{}]", names.join(", ")));
    }
    let Some((op, arg)) = map.into_iter().next() else {
        return Err("expected exactly one of value, any, except, text".to_owned());
    };
    match op.as_str() {
        "value" => Ok(Match::Value(match arg {
            Value::String(s) => MatchValue::Keyword(s),
            Value::Bool(b) => MatchValue::Bool(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => MatchValue::Integer(i),
                None => {
                    return Err(format!(
                        "value: {n} is not a 64-bit signed integer; match takes strings, integers or bools \
                         (use range for floats)"
                    ));
                }
            },
            other => return Err(format!("value: expected a string, an integer or a bool, got {}", kind(&other))),
        })),
        "any" => any_values(arg, "any").map(Match::Any),
        "except" => any_values(arg, "except").map(Match::Except),
        "text" => match arg {
            Value::String(s) => Ok(Match::Text(s)),
            other => Err(format!("text: expected a string, got {}", kind(&other))),
        },
        other => Err(format!("unknown match operator `{other}`; expected one of value, any, except, text")),
    }
}

fn any_values(v: Value, op: &str) -> std::result::Result<AnyValues, String> {
    let Value::Array(items) = v else {
        return Err(format!("{op}: expected a list of strings or of integers, got {}", kind(&v)));
    };
    let mixed = || format!("{op}: the list must hold only strings or only integers");
    if items.first().is_none_or(Value::is_string) {
        items
            .into_iter()
            .map(|x| if let Value::String(s) = x { Ok(s) } else { Err(mixed()) })
            .collect::<std::result::Result<_, _>>()
            .map(AnyValues::Keywords)
    } else {
        items
            .iter()
            .map(|x| match x {
                Value::Number(n) => n.as_i64().ok_or_else(|| format!("{op}: {n} is not a 64-bit signed integer")),
                _ => Err(mixed()),
            })
            .collect::<std::result::Result<_, _>>()
            .map(AnyValues::Integers)
    }
}

fn range_from_value(v: Value) -> std::result::Result<Range, String> {
    let Value::Object(map) = v else {
        return Err(format!("expected an object with gt, gte, lt, lte; got {}", kind(&v)));
    };
    let mut bounds: [Option<Value>; 4] = Default::default();
    const NAMES: [&str; 4] = ["gt", "gte", "lt", "lte"];
    for (k, v) in map {
        let Some(i) = NAMES.iter().position(|n| *n == k) else {
            return Err(format!("unknown range bound `{k}`; expected gt, gte, lt, lte"));
        };
        if !v.is_null() {
            bounds[i] = Some(v);
        }
    }
    let datetime = bounds.iter().flatten().any(Value::is_string);
    if datetime {
        let mut r = DatetimeRange::default();
        let slots = [&mut r.gt, &mut r.gte, &mut r.lt, &mut r.lte];
        for ((slot, b), name) in slots.into_iter().zip(bounds).zip(NAMES) {
            *slot = match b {
                None => None,
                Some(Value::String(s)) => Some(DatetimeBound::new(s)),
                Some(other) => {
                    return Err(format!(
                        "{name}: a datetime range needs every bound to be a datetime string, got {}",
                        kind(&other)
                    ));
                }
            };
        }
        Ok(Range::Datetime(r))
    } else {
        let mut r = NumberRange::default();
        let slots = [&mut r.gt, &mut r.gte, &mut r.lt, &mut r.lte];
        for ((slot, b), name) in slots.into_iter().zip(bounds).zip(NAMES) {
            *slot = match b {
                None => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(other) => {
                    return Err(format!("{name}: expected a number or a datetime string, got {}", kind(&other)));
                }
            };
        }
        Ok(Range::Number(r))
    }
}

impl fmt::Display for Filter {
    /// The filter as compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    fn p(v: Value) -> Payload {
        v.as_object().unwrap().clone()
    }

    fn parse_err(v: Value) -> String {
        serde_json::from_value::<Filter>(v).unwrap_err().to_string()
    }

    /// Whether the filter matches the payload (id 1).
    fn m(filter: Value, payload: Value) -> bool {
        let filter = f(filter);
        filter.validate(DEFAULT_MAX_FILTER_DEPTH).unwrap();
        filter.matches(&PointId::Num(1), &p(payload))
    }

    fn cond(c: Value) -> Value {
        json!({"must": [c]})
    }

    #[test]
    fn qdrant_shapes_round_trip() {
        let shapes = [
            json!({}),
            json!({"must": [{"key": "city", "match": {"value": "London"}}]}),
            json!({"must": [{"key": "n", "match": {"value": 3}}, {"key": "b", "match": {"value": true}}]}),
            json!({"should": [{"key": "c", "match": {"any": ["a", "b"]}}, {"key": "c", "match": {"any": [1, 2]}}]}),
            json!({"must_not": [{"key": "c", "match": {"except": ["a"]}}, {"key": "t", "match": {"text": "ab"}}]}),
            json!({"must": [{"key": "price", "range": {"gt": 1.5, "lte": 10}}]}),
            json!({"must": [{"key": "at", "range": {"gte": "2024-01-01T00:00:00Z", "lt": "2024-02-01"}}]}),
            json!({"must": [{"key": "tags", "values_count": {"gte": 2}}]}),
            json!({"must": [{"is_empty": {"key": "a"}}, {"is_null": {"key": "b.c"}}]}),
            json!({"must": [{"has_id": [1, "550e8400-e29b-41d4-a716-446655440000"]}]}),
            json!({"must": [{"should": [{"key": "a", "match": {"value": 1}}], "must_not": [{"has_id": [2]}]}, {}]}),
            json!({"min_should": {"conditions": [{"key": "a", "match": {"value": 1}}, {"is_empty": {"key": "x"}}], "min_count": 1}}),
        ];
        for shape in shapes {
            let filter = f(shape.clone());
            filter.validate(DEFAULT_MAX_FILTER_DEPTH).unwrap();
            assert_eq!(serde_json::to_value(&filter).unwrap(), shape, "{shape}");
            let again: Filter = serde_json::from_str(&filter.to_string()).unwrap();
            assert_eq!(again, filter);
        }
    }

    #[test]
    fn single_condition_clauses_and_nulls() {
        let single = f(json!({"must": {"key": "a", "match": {"value": "x"}}, "should": null}));
        let list = f(json!({"must": [{"key": "a", "match": {"value": "x"}}]}));
        assert_eq!(single, list);
        let Condition::Field(fc) = &list.must[0] else { panic!() };
        assert_eq!(fc.predicate, FieldPredicate::Match(Match::Value(MatchValue::Keyword("x".into()))));
        // A range bound given as null is absent.
        let r = f(cond(json!({"key": "a", "range": {"gt": null, "lt": 3}})));
        assert_eq!(serde_json::to_value(&r).unwrap(), cond(json!({"key": "a", "range": {"lt": 3}})));
    }

    #[test]
    fn bad_shapes_are_deserialization_errors() {
        let cases = [
            (json!({"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]}), "exactly one of"),
            (json!({"must": [{"key": "a", "match": {"value": 1.5}}]}), "use range for floats"),
            (json!({"must": [{"key": "a", "match": {"value": null}}]}), "value: expected"),
            (json!({"must": [{"key": "a", "match": {"any": ["a", 1]}}]}), "only strings or only integers"),
            (json!({"must": [{"key": "a", "match": {"any": [1, "a"]}}]}), "only strings or only integers"),
            (json!({"must": [{"key": "a", "match": {"any": [1.5]}}]}), "not a 64-bit signed integer"),
            (json!({"must": [{"key": "a", "match": {"like": "x"}}]}), "unknown match operator"),
            (json!({"must": [{"key": "a", "match": {"text": 3}}]}), "text: expected a string"),
            (json!({"must": [{"key": "a"}]}), "needs one of match"),
            (json!({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}), "match and range"),
            (json!({"must": [{"key": "a", "match": {"value": 1}, "foo": 1}]}), "unknown field `foo`"),
            (json!({"must": [{"key": 3, "match": {"value": 1}}]}), "`key` must be a string"),
            (json!({"must": [{"key": "a", "range": {"eq": 1}}]}), "unknown range bound `eq`"),
            (json!({"must": [{"key": "a", "range": {"gt": "2024-01-01", "lt": 5}}]}), "lt: a datetime range"),
            (json!({"must": [{"key": "a", "range": {"gt": true}}]}), "gt: expected a number"),
            (json!({"must": [{"key": "a", "values_count": {"gt": -1}}]}), "values_count"),
            (json!({"must": [{"is_empty": {"key": "a"}, "is_null": {"key": "a"}}]}), "cannot be combined"),
            (json!({"must": [{"is_empty": {"field": "a"}}]}), "unknown field `field`"),
            (json!({"must": [{"has_id": [-1]}]}), "negative"),
            (json!({"must": [{"has_id": ["nope"]}]}), "has_id"),
            (json!({"must": [{"bogus": 1}]}), "unknown condition field `bogus`"),
            (json!({"must": [3]}), "expected a condition object"),
            (json!({"must": "a"}), "expected a condition or a list"),
            (json!({"mustnt": []}), "unknown filter clause `mustnt`"),
            (json!({"min_should": {"conditions": [], "min_count": 1, "x": 1}}), "min_should"),
            (json!({"must": [{"should": [{"key": "a", "match": {"vale": 1}}]}]}), "must[0]: should[0]: match"),
            (json!([]), "expected a filter object"),
        ];
        for (bad, needle) in cases {
            let err = parse_err(bad.clone());
            assert!(err.contains(needle), "{bad}: {err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn validation_errors_name_the_path() {
        let cases = [
            (json!({"must": [{"key": "a", "range": {"gte": "yesterday"}}]}), "must[0].range.gte"),
            (json!({"should": [{"is_empty": {"key": "x"}}, {"key": "a", "range": {}}]}), "should[1].range"),
            (json!({"must_not": [{"key": "", "match": {"value": 1}}]}), "must_not[0].key"),
            (json!({"must": [{"key": "a..b", "match": {"value": 1}}]}), "must[0].key"),
            (json!({"must": [{"is_null": {"key": ""}}]}), "must[0].is_null.key"),
            (json!({"must": [{"key": "a", "values_count": {}}]}), "must[0].values_count"),
            (
                json!({"must": [{"must_not": [{"key": "a", "range": {"lt": "2024-13-01"}}]}]}),
                "must[0].must_not[0].range.lt",
            ),
            (
                json!({"min_should": {"conditions": [{"key": "a", "range": {"gt": "x"}}], "min_count": 1}}),
                "min_should.conditions[0].range.gt",
            ),
        ];
        for (bad, path) in cases {
            let filter = f(bad.clone());
            match filter.validate(DEFAULT_MAX_FILTER_DEPTH) {
                Err(Error::InvalidFilter { path: got, .. }) => assert_eq!(got, path, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let mut nf = Filter {
            must: vec![Condition::Field(FieldCondition {
                key: "a".into(),
                predicate: FieldPredicate::Range(Range::Number(NumberRange {
                    gt: Some(f64::NAN),
                    ..Default::default()
                })),
            })],
            ..Default::default()
        };
        assert!(matches!(nf.validate(4), Err(Error::InvalidFilter { path, .. }) if path == "must[0].range.gt"));
        // Depth: the top level is 1.
        for _ in 0..3 {
            nf = Filter { should: vec![Condition::Filter(Box::new(nf))], ..Default::default() };
        }
        nf.must.clear();
        let mut inner = &mut nf;
        while let Some(Condition::Filter(next)) = inner.should.first_mut() {
            inner = next;
        }
        inner.must.clear();
        assert!(nf.validate(4).is_ok());
        let err = nf.validate(3).unwrap_err();
        assert!(matches!(&err, Error::InvalidFilter { path, .. } if path == "should[0].should[0].should[0]"), "{err}");
        assert!(err.is_user_error());
        assert!(matches!(Filter::default().validate(0), Err(Error::InvalidFilter { path, .. }) if path == "filter"));
    }

    #[test]
    fn match_value_semantics() {
        let by = |v: Value| cond(json!({"key": "a", "match": {"value": v}}));
        assert!(m(by(json!("x")), json!({"a": "x"})));
        assert!(!m(by(json!("x")), json!({"a": "X"})));
        assert!(m(by(json!("x")), json!({"a": ["y", "x"]})));
        assert!(!m(by(json!("x")), json!({"a": null})));
        assert!(!m(by(json!("x")), json!({})));
        assert!(m(by(json!(3)), json!({"a": 3})));
        assert!(m(by(json!(3)), json!({"a": 3.0})), "an integer matches an equal float");
        assert!(!m(by(json!(3)), json!({"a": 3.5})));
        assert!(!m(by(json!(3)), json!({"a": "3"})));
        assert!(!m(by(json!(-1)), json!({"a": u64::MAX})));
        assert!(m(by(json!(i64::MIN)), json!({"a": -9_223_372_036_854_775_808.0})));
        assert!(m(by(json!(true)), json!({"a": [false, true]})));
        assert!(!m(by(json!(true)), json!({"a": 1})));
        // Nested keys, arrays of objects.
        let nested = cond(json!({"key": "a.b", "match": {"value": 2}}));
        assert!(m(nested.clone(), json!({"a": {"b": 2}})));
        assert!(m(nested.clone(), json!({"a": [{"b": 1}, {"b": [5, 2]}]})));
        assert!(!m(nested, json!({"a": {"c": 2}})));
    }

    #[test]
    fn any_except_and_text_semantics() {
        let any = cond(json!({"key": "a", "match": {"any": ["x", "y"]}}));
        assert!(m(any.clone(), json!({"a": "y"})));
        assert!(m(any.clone(), json!({"a": ["z", "x"]})));
        assert!(!m(any.clone(), json!({"a": "z"})));
        assert!(!m(any, json!({})));
        assert!(m(cond(json!({"key": "a", "match": {"any": [1, 2]}})), json!({"a": 2.0})));
        assert!(!m(cond(json!({"key": "a", "match": {"any": []}})), json!({"a": "x"})));

        let except = cond(json!({"key": "a", "match": {"except": ["x", "y"]}}));
        assert!(m(except.clone(), json!({"a": "z"})));
        assert!(!m(except.clone(), json!({"a": "x"})));
        assert!(m(except.clone(), json!({"a": ["x", "z"]})), "one element outside the list is enough");
        assert!(!m(except.clone(), json!({"a": ["x", "y"]})));
        assert!(m(except.clone(), json!({"a": true})), "another type is none of the strings");
        assert!(m(except.clone(), json!({"a": 1})));
        assert!(!m(except.clone(), json!({})), "a missing key does not match except");
        assert!(!m(except.clone(), json!({"a": null})));
        assert!(!m(except.clone(), json!({"a": []})));
        assert!(!m(except, json!({"a": [null]})));
        let except_int = cond(json!({"key": "a", "match": {"except": [3]}}));
        assert!(!m(except_int.clone(), json!({"a": 3.0})));
        assert!(m(except_int.clone(), json!({"a": 3.5})));
        assert!(m(except_int.clone(), json!({"a": "3"})));
        assert!(m(cond(json!({"key": "a", "match": {"except": []}})), json!({"a": 0})));

        let text = cond(json!({"key": "a", "match": {"text": "ell"}}));
        assert!(m(text.clone(), json!({"a": "hello"})));
        assert!(m(text.clone(), json!({"a": ["x", "bell"]})));
        assert!(!m(text.clone(), json!({"a": "HELLO"})));
        assert!(!m(text, json!({"a": 7})));
    }

    #[test]
    fn range_semantics() {
        let r = cond(json!({"key": "a", "range": {"gt": 1, "lte": 3.5}}));
        assert!(!m(r.clone(), json!({"a": 1})));
        assert!(m(r.clone(), json!({"a": 1.01})));
        assert!(m(r.clone(), json!({"a": 3.5})));
        assert!(!m(r.clone(), json!({"a": 3.6})));
        assert!(m(r.clone(), json!({"a": [0, 9, 2]})));
        assert!(!m(r.clone(), json!({"a": "2"})));
        assert!(!m(r, json!({})));
        assert!(m(cond(json!({"key": "a", "range": {"gte": 0}})), json!({"a": -0.0})));

        let dt = cond(json!({"key": "t", "range": {"gte": "2024-01-01T00:00:00Z", "lt": "2024-01-02"}}));
        assert!(m(dt.clone(), json!({"t": "2024-01-01"})));
        assert!(m(dt.clone(), json!({"t": "2024-01-01T23:59:59.999999Z"})));
        assert!(!m(dt.clone(), json!({"t": "2024-01-02T00:00:00Z"})));
        // 2024-01-02T00:30+01:00 is 2024-01-01T23:30Z.
        assert!(m(dt.clone(), json!({"t": "2024-01-02T00:30:00+01:00"})));
        // 2023-12-31T23:30-01:00 is 2024-01-01T00:30Z; 22:30-01:00 is still 2023.
        assert!(m(dt.clone(), json!({"t": "2023-12-31T23:30:00-01:00"})));
        assert!(!m(dt.clone(), json!({"t": "2023-12-31T22:30:00-01:00"})));
        assert!(m(dt.clone(), json!({"t": ["nope", "2024-01-01 12:00"]})));
        assert!(!m(dt.clone(), json!({"t": "nope"})));
        assert!(!m(dt.clone(), json!({"t": 1_704_067_200})));
        assert!(!m(dt, json!({})));
        // Bounds are parsed once, at deserialization; one that does not parse matches nothing.
        let bad = f(cond(json!({"key": "t", "range": {"gt": "nope"}})));
        let Condition::Field(FieldCondition { predicate: FieldPredicate::Range(Range::Datetime(r)), .. }) =
            &bad.must[0]
        else {
            panic!()
        };
        assert_eq!(r.gt, Some(DatetimeBound { text: "nope".into(), micros: None }));
        assert!(!bad.matches(&PointId::Num(1), &p(json!({"t": "2024-01-01"}))));
    }

    #[test]
    fn values_count_is_empty_is_null_has_id() {
        let vc = |b: Value| cond(json!({"key": "a", "values_count": b}));
        assert!(m(vc(json!({"gte": 2})), json!({"a": [1, 2]})));
        assert!(!m(vc(json!({"gte": 2})), json!({"a": [1, null]})));
        assert!(m(vc(json!({"lt": 1})), json!({})), "a missing key has 0 values");
        assert!(m(vc(json!({"lte": 1, "gt": 0})), json!({"a": "x"})));

        let empty = cond(json!({"is_empty": {"key": "a"}}));
        for (payload, want) in [
            (json!({}), true),
            (json!({"a": null}), true),
            (json!({"a": []}), true),
            (json!({"a": [null]}), true),
            (json!({"a": 0}), false),
            (json!({"a": ""}), false),
            (json!({"a": {}}), false),
        ] {
            assert_eq!(m(empty.clone(), payload.clone()), want, "is_empty {payload}");
        }
        let null = cond(json!({"is_null": {"key": "a"}}));
        for (payload, want) in
            [(json!({}), false), (json!({"a": null}), true), (json!({"a": []}), false), (json!({"a": 1}), false)]
        {
            assert_eq!(m(null.clone(), payload.clone()), want, "is_null {payload}");
        }
        assert!(m(cond(json!({"is_null": {"key": "a.b"}})), json!({"a": {"b": null}})));

        let ids = f(cond(json!({"has_id": [7, "550e8400-e29b-41d4-a716-446655440000"]})));
        assert!(ids.matches(&PointId::Num(7), &Payload::new()));
        assert!(ids.matches(&PointId::Uuid(0x550e8400_e29b_41d4_a716_446655440000), &Payload::new()));
        assert!(!ids.matches(&PointId::Num(8), &Payload::new()));
    }

    #[test]
    fn clauses_combine() {
        let a1 = json!({"key": "a", "match": {"value": 1}});
        let b1 = json!({"key": "b", "match": {"value": 1}});
        let c1 = json!({"key": "c", "match": {"value": 1}});
        let pl = json!({"a": 1, "b": 2, "c": 1});
        assert!(m(json!({}), pl.clone()));
        assert!(m(json!({"must": [a1, c1]}), pl.clone()));
        assert!(!m(json!({"must": [a1, b1]}), pl.clone()));
        assert!(m(json!({"should": [b1, c1]}), pl.clone()));
        assert!(!m(json!({"should": [b1]}), pl.clone()));
        assert!(m(json!({"should": []}), pl.clone()), "an empty should does not constrain");
        assert!(!m(json!({"must_not": [b1, c1]}), pl.clone()));
        assert!(m(json!({"must_not": [b1]}), pl.clone()));
        let ms = |k: usize| json!({"min_should": {"conditions": [a1, b1, c1], "min_count": k}});
        assert!(m(ms(0), pl.clone()));
        assert!(m(ms(2), pl.clone()));
        assert!(!m(ms(3), pl.clone()));
        assert!(!m(ms(4), pl.clone()));
        assert!(m(json!({"must": [{"should": [b1, {"must_not": [b1]}]}]}), pl.clone()));
        assert!(!m(json!({"must": [{"must": [b1]}]}), pl));
    }

    #[test]
    fn keys_lists_every_mentioned_key() {
        let filter = f(json!({
            "must": [{"key": "b", "match": {"value": 1}}, {"has_id": [1]}],
            "should": [{"must_not": [{"is_null": {"key": "a.x"}}, {"key": "b", "range": {"gt": 1}}]}],
            "min_should": {"conditions": [{"is_empty": {"key": "c"}}], "min_count": 1}
        }));
        assert_eq!(filter.keys(), vec!["a.x", "b", "c"]);
        assert!(Filter::default().keys().is_empty());
    }
}
