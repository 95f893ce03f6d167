//! QuiverDB's embeddable database engine: collections of points (id, vector, JSON payload) over a data directory,
//! payload indexes and filters, a query planner, segments, a background optimizer and the time-tiered hybrid index.

pub mod datetime;
pub mod error;
pub mod filter;
pub mod id;
pub mod payload;
pub mod payload_index;

pub use error::{Error, Result};
pub use id::PointId;
pub use payload::Payload;
