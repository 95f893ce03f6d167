//! QuiverDB's embeddable database engine: collections of points (id, vector, JSON payload) over a data directory,
//! payload indexes and filters, a query planner, segments, a background optimizer and the time-tiered hybrid index.
//!
//! ```
//! use quiver_engine::{CollectionConfig, Database, PointInput, SearchRequest};
//! # fn main() -> quiver_engine::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(dir.path())?;
//! let c = db.create_collection("docs", CollectionConfig::new(3, quiver_index::Metric::Cosine))?;
//! c.upsert(vec![PointInput::new(1, vec![1.0, 0.0, 0.0]), PointInput::new(2, vec![0.0, 1.0, 0.0])])?;
//! let hits = c.search(&SearchRequest::new(vec![0.9, 0.1, 0.0], 1))?.hits;
//! assert_eq!(hits[0].id, 1u64.into());
//! # Ok(()) }
//! ```
//!
//! # Code map
//!
//! | module | what |
//! |---|---|
//! | [`database`] | the catalog: a directory of collections (locked while open), create/drop atomically, unavailable collections reported |
//! | [`collection`] | write path (validate → operation → WAL → apply), read paths (get, search, scroll, count), recovery |
//! | [`optimizer`] | purge expired, seal, migrate to the cold tier, vacuum, merge — all one crash-safe rewrite |
//! | [`snapshot`] | consistent archives of a collection under `<root>/snapshots/`, crash-safe restore over a collection |
//! | [`budget`] | a collection's memory estimated from its configuration and size; the database's memory budget |
//! | [`cache`] | the optional result cache of repeated searches, keyed by the request, valid at one sequence number |
//! | [`map`] | an even sample of a collection and its 2-D map (PCA or UMAP), coloured and labelled from payloads |
//! | [`payloads`] | a segment's payloads: on the heap, or a sealed file's chunks through a small cache |
//! | [`segment`] | growing and sealed segments, the per-segment planner, the segment file's blocks |
//! | `mapped` | a sealed segment's vectors read in place from the memory-mapped file (the crate's one `unsafe impl`) |
//! | [`ops`] | numbered, self-contained operations and their bytes |
//! | [`write`] | write requests and how they resolve into operations (also unlogged, for the cluster's replicated log) |
//! | [`feed`] | the change feed: a byte-bounded ring of recent operations, listeners |
//! | [`sparse`] | sparse vectors: validation, a segment's rows and inverted index, exact dot-product search |
//! | [`filter`], [`payload_index`], [`payload`], [`datetime`] | the filter language, payload indexes, dotted keys |
//! | [`config`] | collection configuration and its validation |
//! | [`types`] | request and response types |
//! | [`clock`] | wall clock behind a trait (tests move time) |

pub mod budget;
pub mod cache;
pub mod clock;
mod codec;
pub mod collection;
pub mod config;
pub mod database;
pub mod datetime;
pub mod error;
pub mod explore;
pub mod feed;
pub mod filter;
pub mod fulltext;
pub mod geo;
pub mod id;
pub mod map;
#[allow(unsafe_code)]
mod mapped;
pub mod ops;
pub mod optimizer;
pub mod payload;
pub mod payload_index;
pub mod payloads;
pub mod query;
pub mod recall;
pub mod segment;
pub mod snapshot;
pub mod sparse;
pub mod types;
pub mod write;

pub use clock::{Clock, ManualClock, SystemClock};
pub use collection::Collection;
pub use config::{CollectionConfig, DurabilityConfig, EmbeddingConfig, IndexConfig, OptimizerConfig, TieringConfig};
pub use database::{CollectionStatus, Database};
pub use error::{Error, Result};
pub use explore::{ExampleQuery, ExampleSearch};
pub use feed::{CLOSED_SEQ, Change, Listener};
pub use filter::Filter;
pub use fulltext::{TextOptions, TextStats};
pub use id::PointId;
pub use payload::Payload;
pub use payload_index::FieldType;
pub use query::{Fusion, OrderedRecord, Ranking, Stage, TextSearchRequest};
pub use snapshot::SnapshotInfo;
pub use sparse::SparseVector;
pub use types::{
    CollectionInfo, Explain, OptimizerInfo, PointInput, Record, ScoredPoint, ScrollPage, SearchRequest, SearchResponse,
    SegmentInfo, Selector, VectorIndexInfo,
};
pub use write::{PlannedWrite, WriteRequest, prepare_points};
