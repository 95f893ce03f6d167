//! Placeholder (replaced by the filter branch).
use crate::filter::Filter;
use crate::{Payload, PointId};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
/// Field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Strings.
    Keyword,
    /// Integers.
    Integer,
    /// Floats.
    Float,
    /// Booleans.
    Bool,
    /// Datetimes.
    Datetime,
}
/// Rows.
pub trait RowSource {
    /// Count.
    fn row_count(&self) -> u32;
    /// Id.
    fn row_id(&self, row: u32) -> PointId;
    /// Payload.
    fn row_payload(&self, row: u32) -> Option<&Payload>;
    /// Rows of ids.
    fn rows_of_ids(&self, ids: &[PointId]) -> RoaringBitmap;
}
/// Estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Min.
    pub min: u64,
    /// Expected.
    pub exp: u64,
    /// Max.
    pub max: u64,
}
/// Evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Rows.
    pub rows: RoaringBitmap,
    /// Indexed keys.
    pub indexed_keys: Vec<String>,
    /// Unindexed keys.
    pub unindexed_keys: Vec<String>,
}
/// Index.
#[derive(Debug, Clone, Default)]
pub struct PayloadIndex {
    fields: Vec<(String, FieldType)>,
}
impl PayloadIndex {
    /// Adds.
    pub fn add_field(&mut self, key: &str, ty: FieldType, _rows: &dyn RowSource) {
        self.fields.push((key.to_owned(), ty));
    }
    /// Drops.
    pub fn drop_field(&mut self, key: &str) -> bool {
        let n = self.fields.len();
        self.fields.retain(|(k, _)| k != key);
        n != self.fields.len()
    }
    /// Fields.
    pub fn fields(&self) -> Vec<(String, FieldType)> {
        self.fields.clone()
    }
    /// Insert.
    pub fn insert(&mut self, _row: u32, _payload: &Payload) {}
    /// Remove.
    pub fn remove(&mut self, _row: u32, _payload: &Payload) {}
    /// Memory.
    pub fn memory_bytes(&self) -> usize {
        0
    }
    /// Estimate.
    pub fn estimate(&self, _filter: &Filter, rows: u32) -> Estimate {
        Estimate { min: 0, exp: u64::from(rows) / 2, max: u64::from(rows) }
    }
    /// Evaluate.
    pub fn evaluate(&self, filter: &Filter, rows: &dyn RowSource) -> Evaluation {
        let mut out = RoaringBitmap::new();
        for r in 0..rows.row_count() {
            let empty = Payload::new();
            if filter.matches(&rows.row_id(r), rows.row_payload(r).unwrap_or(&empty)) {
                out.insert(r);
            }
        }
        Evaluation { rows: out, indexed_keys: Vec::new(), unindexed_keys: filter.keys() }
    }
}
