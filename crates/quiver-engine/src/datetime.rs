//! Placeholder (replaced by the filter branch).
/// Parses a datetime into microseconds since the epoch.
pub fn parse_datetime(_s: &str) -> Option<i64> {
    None
}
