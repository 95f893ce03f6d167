//! Documents: text split into chunks, one point per chunk (see [`crate::documents`]).

use axum::extract::{Path, State};
use quiver_embed::ChunkOptions;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{WriteParams, finish_write};
use crate::documents::{self, Document};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Reply, Started};
use crate::state::{AppState, abandon_guard, blocking};
use crate::wire::{DocumentsResult, Envelope, ErrorBody, UpdateResult, UpsertDocuments};

use super::CollectionPath;

/// Writes documents: each is split into chunks (sentence-aware, `chunking.max_tokens` with
/// `chunking.overlap_tokens` of overlap), the chunks are embedded with the collection's model and stored as points
/// with the metadata plus `doc_id`, `chunk_index`, `chunk_count` and `text`. Writing a document id again replaces
/// its chunks. The whole request is checked before anything is written.
#[utoipa::path(post, path = "/collections/{collection_name}/documents", tag = "documents",
    params(CollectionPath, WriteParams), request_body = UpsertDocuments,
    responses((status = 200, body = Envelope<DocumentsResult>), (status = "4XX", body = ErrorBody)))]
pub async fn upsert(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<UpsertDocuments>,
) -> ApiResult<Reply<DocumentsResult>> {
    let cfg = s.config();
    if body.documents.is_empty() || body.documents.len() > cfg.max_batch_points {
        return Err(ApiError::invalid(
            "documents",
            format!("1..={} documents", cfg.max_batch_points),
            body.documents.len(),
        ));
    }
    let c = body.chunking.unwrap_or_default();
    let options = ChunkOptions::from_parts(c.max_tokens, c.overlap_tokens);
    let docs: Vec<Document> = body
        .documents
        .into_iter()
        .map(|d| Document { id: d.id.into_string(), text: d.text, metadata: d.metadata.unwrap_or_default() })
        .collect();
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let state = s.clone();
    let (_guard, abandoned) = abandon_guard();
    let r = blocking(move || {
        let model = state.embedders().for_collection(&p.collection_name, &col)?;
        let (points, counts) = documents::document_points(model.as_ref(), &docs, &options)?;
        let max_chunks = state.config().max_batch_points;
        if points.len() > max_chunks {
            return Err(ApiError::invalid(
                "documents",
                format!("at most {max_chunks} chunks in one request (send fewer or shorter documents)"),
                format!("{} chunks", points.len()),
            ));
        }
        abandoned.check()?;
        let seq = documents::write_points(&col, points, &counts)?;
        let UpdateResult { operation_id, status, read_token } = finish_write(&col, seq, wait)?;
        Ok(DocumentsResult { operation_id, status, read_token, documents: documents::to_wire(&counts) })
    })
    .await?;
    Ok(Reply(r, t))
}

/// The collection and document in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DocumentPath {
    /// Collection name.
    pub collection_name: String,
    /// Document id.
    pub doc_id: String,
}

/// Deletes a document: every point whose `doc_id` is this id (none: nothing happens).
#[utoipa::path(delete, path = "/collections/{collection_name}/documents/{doc_id}", tag = "documents",
    params(DocumentPath, WriteParams),
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(p): Path<DocumentPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
) -> ApiResult<Reply<UpdateResult>> {
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = documents::delete_document(&col, &p.doc_id)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}
