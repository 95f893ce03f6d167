//! Placeholder (replaced by the filter branch).
use crate::{Payload, PointId};
use serde::{Deserialize, Serialize};
/// Default depth limit.
pub const DEFAULT_MAX_FILTER_DEPTH: usize = 16;
/// A filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {}
impl Filter {
    /// Validates.
    pub fn validate(&self, _max_depth: usize) -> crate::Result<()> {
        Ok(())
    }
    /// Direct evaluation.
    pub fn matches(&self, _id: &PointId, _payload: &Payload) -> bool {
        true
    }
    /// Keys.
    pub fn keys(&self) -> Vec<String> {
        Vec::new()
    }
}
