//! HTTP handlers, one module per resource. Each handler parses (caps checked), runs the engine call on the
//! blocking pool, and wraps the answer in the envelope.

pub mod changes;
pub mod cluster;
pub mod collections;
pub mod documents;
pub mod embeddings;
pub mod map;
pub mod points;
pub mod search;
pub mod service;
pub mod snapshots;
mod stages;

use quiver_engine::{Collection, DurabilityConfig};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::wire::{UpdateResult, UpdateStatus};

/// The collection in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CollectionPath {
    /// Collection name (1-64 of `A-Z a-z 0-9 _ -`).
    pub collection_name: String,
}

/// Query parameters of writes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// `true`: reply once the operation is applied and durable (under `durability: none`, the WAL is synced
    /// first). `false` (default): reply once applied; durable as the collection's durability setting says.
    pub wait: Option<bool>,
    /// Accepted for compatibility, no effect (one node).
    pub ordering: Option<String>,
}

/// Makes a write durable when `wait` asks for it and says which status it reached.
pub fn finish_write(col: &Collection, seq: u64, wait: bool) -> ApiResult<UpdateResult> {
    let durable = !matches!(col.config().durability, DurabilityConfig::None);
    if wait && !durable {
        col.flush()?;
    }
    let status = if wait || durable { UpdateStatus::Completed } else { UpdateStatus::Acknowledged };
    Ok(UpdateResult { operation_id: seq, status, read_token: Some(format!("0:{seq}")) })
}
