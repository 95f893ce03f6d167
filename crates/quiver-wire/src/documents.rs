//! Documents: texts cut into chunks by the server, and what a write of them answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Payload, UpdateStatus};

/// A document id: a string, or an unsigned integer (stored as its decimal string).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DocIdInput {
    /// `"manual/intro.md"`
    Text(String),
    /// `42`
    Num(u64),
}

impl DocIdInput {
    /// The id as stored in `doc_id`.
    pub fn into_string(self) -> String {
        match self {
            DocIdInput::Text(s) => s,
            DocIdInput::Num(n) => n.to_string(),
        }
    }
}

/// One document of `POST /collections/{collection_name}/documents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The document's id; writing the same id again replaces the document.
    pub id: DocIdInput,
    /// The text, split into chunks.
    pub text: String,
    /// Copied into every chunk's payload (may not use `doc_id`, `chunk_index`, `chunk_count`, `text`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Payload>,
}

/// How documents are cut into chunks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkingParams {
    /// Most tokens per chunk (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Tokens repeated from the previous chunk (default 32; smaller than `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_tokens: Option<usize>,
}

/// `POST /collections/{collection_name}/documents`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertDocuments {
    /// The documents.
    pub documents: Vec<DocumentInput>,
    /// Chunk sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunking: Option<ChunkingParams>,
}

/// The answer to a documents write.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentsResult {
    /// Sequence number of the last operation of the write.
    pub operation_id: u64,
    /// As for points.
    pub status: UpdateStatus,
    /// As for points: pass it as `read_token` to read this write through any node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
    /// Chunks per document, in request order.
    pub documents: Vec<DocumentChunks>,
}

/// How many chunks a written document got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentChunks {
    /// The document id.
    pub id: String,
    /// Chunks written (0 for a text with nothing but whitespace: the document then has no points).
    pub chunks: usize,
}
