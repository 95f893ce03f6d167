//! Documents: a text split into chunks, each chunk a point.
//!
//! A document `{"id", "text", "metadata"}` is cut by [`quiver_embed::chunk_text`] (sentence-aware, a token budget
//! with overlap) into chunks; chunk `i` becomes the point with id [`chunk_id`]`(doc_id, i)` (a UUID derived from
//! both, so writing a document again replaces its chunks in place) and payload = the document's metadata plus
//! `doc_id`, `chunk_index`, `chunk_count` and `text` (the chunk's text). Writing a document upserts its chunks, then
//! deletes any chunk left from a longer earlier version (`chunk_index >= chunk_count`); deleting a document deletes
//! every point whose `doc_id` is its id. The first write indexes `doc_id` as a keyword, so both stay cheap.
//!
//! Used by the HTTP routes (`/collections/{c}/documents`), by `quiver import` on a local data directory and by the
//! Python package's embedded collections.

use quiver_embed::{ChunkOptions, Embedder};
use quiver_engine::{Collection, FieldType, Filter, Payload, PointId, PointInput, Selector};
use serde_json::{Value, json};

use crate::{Result, TEXT_KEY, TextError};

/// Payload key: the document a chunk belongs to (its id as a string).
pub const DOC_ID_KEY: &str = "doc_id";
/// Payload key: the chunk's position in its document, from 0.
pub const CHUNK_INDEX_KEY: &str = "chunk_index";
/// Payload key: how many chunks the document has.
pub const CHUNK_COUNT_KEY: &str = "chunk_count";
/// Keys a document's metadata may not use.
pub const RESERVED_KEYS: [&str; 4] = [DOC_ID_KEY, CHUNK_INDEX_KEY, CHUNK_COUNT_KEY, TEXT_KEY];
/// Longest document id, bytes.
pub const MAX_DOC_ID_LEN: usize = 512;

/// One document to write.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its id (a string; numbers are written as strings by the caller).
    pub id: String,
    /// Its text.
    pub text: String,
    /// Copied into every chunk's payload.
    pub metadata: Payload,
}

/// How many chunks a written document got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChunks {
    /// The document id.
    pub id: String,
    /// Chunks written (0 for a text with nothing but whitespace: the document then has no points).
    pub chunks: usize,
}

/// The point id of chunk `index` of document `doc_id`: a version-8 UUID from a 128-bit FNV-1a hash of both, stable
/// across versions and machines.
pub fn chunk_id(doc_id: &str, index: usize) -> PointId {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    let len = (doc_id.len() as u64).to_le_bytes();
    let idx = (index as u64).to_le_bytes();
    // The id's length first, so ("ab", 1) and ("a", …) can never feed the same bytes.
    for b in len.iter().chain(doc_id.as_bytes()).chain(idx.iter()) {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    // RFC 9562 layout: version 8 in bits 48..52 (from the top), variant 0b10 in bits 64..66.
    let h = (h & !(0xF_u128 << 76)) | (0x8_u128 << 76);
    let h = (h & !(0x3_u128 << 62)) | (0x2_u128 << 62);
    PointId::Uuid(h)
}

/// The point id of a file imported whole (an image) at `path` (relative to the folder imported, `/`-separated):
/// [`chunk_id`] with an index no chunk has, so importing the folder again replaces each file's point in place.
pub fn file_id(path: &str) -> PointId {
    chunk_id(path, usize::MAX)
}

/// Checks a document id and its metadata; `at` names the document in errors (`documents[2]`).
pub fn check_document(doc: &Document, at: &str) -> Result<()> {
    if doc.id.is_empty() || doc.id.len() > MAX_DOC_ID_LEN {
        return Err(TextError::invalid(
            format!("{at}.id"),
            format!("1..={MAX_DOC_ID_LEN} bytes"),
            format!("{} bytes", doc.id.len()),
        ));
    }
    if let Some(k) = RESERVED_KEYS.iter().find(|k| doc.metadata.contains_key(**k)) {
        return Err(TextError::invalid(
            format!("{at}.metadata.{k}"),
            format!("no key among {RESERVED_KEYS:?} (QuiverDB sets them on each chunk)"),
            format!("{k:?}"),
        ));
    }
    Ok(())
}

/// Splits and embeds `docs` (blocking): the chunk points, and each document's chunk count. Every document is
/// checked before any work is done.
pub fn document_points(
    model: &dyn Embedder,
    docs: &[Document],
    options: &ChunkOptions,
) -> Result<(Vec<PointInput>, Vec<DocumentChunks>)> {
    options.validate().map_err(|e| TextError::BadRequest(format!("invalid chunking: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for (i, d) in docs.iter().enumerate() {
        check_document(d, &format!("documents[{i}]"))?;
        if !seen.insert(d.id.as_str()) {
            return Err(TextError::invalid(format!("documents[{i}].id"), "ids unique within a request", &d.id));
        }
    }
    let mut token_error = None;
    let mut chunks = Vec::with_capacity(docs.len());
    for d in docs {
        let mut count = |s: &str| match model.count_tokens(s) {
            Ok(n) => n,
            Err(e) => {
                token_error.get_or_insert(e);
                0
            }
        };
        let c = quiver_embed::chunk_text(&d.text, options, &mut count)
            .map_err(|e| TextError::BadRequest(format!("invalid chunking: {e}")))?;
        chunks.push(c);
    }
    if let Some(e) = token_error {
        return Err(TextError::model(model.model_name(), e));
    }
    let texts: Vec<&str> = chunks.iter().flatten().map(|c| c.text.as_str()).collect();
    let mut vectors = crate::embed(model, &texts)?.into_iter();

    let mut points = Vec::with_capacity(texts.len());
    let mut counts = Vec::with_capacity(docs.len());
    for (d, cs) in docs.iter().zip(&chunks) {
        let n = cs.len();
        for c in cs {
            let mut payload = d.metadata.clone();
            payload.insert(DOC_ID_KEY.into(), Value::String(d.id.clone()));
            payload.insert(CHUNK_INDEX_KEY.into(), json!(c.index));
            payload.insert(CHUNK_COUNT_KEY.into(), json!(n));
            payload.insert(TEXT_KEY.into(), Value::String(c.text.clone()));
            let vector = vectors.next().ok_or_else(|| TextError::Internal("fewer vectors than chunks".into()))?;
            points.push(PointInput { payload: Some(payload), ..PointInput::new(chunk_id(&d.id, c.index), vector) });
        }
        counts.push(DocumentChunks { id: d.id.clone(), chunks: n });
    }
    Ok((points, counts))
}

/// Points of document `doc_id`.
pub fn document_filter(doc_id: &str) -> Result<Filter> {
    parse_filter(document_filter_json(doc_id))
}

/// [`document_filter`] in the wire form.
pub fn document_filter_json(doc_id: &str) -> Value {
    json!({"must": [{"key": DOC_ID_KEY, "match": {"value": doc_id}}]})
}

/// Chunks left over from longer earlier versions of the documents just written.
pub fn stale_filter(counts: &[DocumentChunks]) -> Result<Filter> {
    parse_filter(stale_filter_json(counts))
}

/// [`stale_filter`] in the wire form.
pub fn stale_filter_json(counts: &[DocumentChunks]) -> Value {
    let should: Vec<Value> = counts
        .iter()
        .map(|c| {
            json!({"must": [
                {"key": DOC_ID_KEY, "match": {"value": c.id}},
                {"key": CHUNK_INDEX_KEY, "range": {"gte": c.chunks}},
            ]})
        })
        .collect();
    json!({ "should": should })
}

fn parse_filter(v: Value) -> Result<Filter> {
    serde_json::from_value(v).map_err(|e| TextError::Internal(format!("building a document filter: {e}")))
}

/// Makes sure `doc_id` is indexed (a no-op once it is).
pub fn ensure_doc_index(col: &Collection) -> Result<()> {
    let indexed = col.payload_indexes().iter().any(|(k, _)| k == DOC_ID_KEY);
    if !indexed {
        col.create_field_index(DOC_ID_KEY, FieldType::Keyword)?;
    }
    Ok(())
}

/// Writes already-embedded documents (blocking): upserts the chunks, then deletes leftovers of earlier versions.
/// Returns the sequence number of the last operation.
pub fn write_points(col: &Collection, points: Vec<PointInput>, counts: &[DocumentChunks]) -> Result<u64> {
    ensure_doc_index(col)?;
    let mut seq = col.applied_seq();
    if !points.is_empty() {
        seq = col.upsert(points)?;
    }
    if !counts.is_empty() {
        seq = seq.max(col.delete(Selector::Filter(stale_filter(counts)?))?);
    }
    Ok(seq)
}

/// Deletes every chunk of document `doc_id` (blocking); the operation's sequence number.
pub fn delete_document(col: &Collection, doc_id: &str) -> Result<u64> {
    Ok(col.delete(Selector::Filter(document_filter(doc_id)?))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ids_are_stable_distinct_uuids() {
        let a = chunk_id("doc-1", 0);
        assert_eq!(a, chunk_id("doc-1", 0));
        assert_ne!(a, chunk_id("doc-1", 1));
        assert_ne!(a, chunk_id("doc-2", 0));
        // Length-prefixed: moving bytes between the id and the index changes the hash input.
        assert_ne!(chunk_id("a", 0x62), chunk_id("ab", 0));
        let PointId::Uuid(u) = a else { panic!("expected a UUID, got {a:?}") };
        assert_eq!((u >> 76) & 0xF, 8, "version 8");
        assert_eq!((u >> 62) & 0x3, 2, "RFC 9562 variant");
        let mut all: Vec<PointId> = (0..1000).map(|i| chunk_id(&format!("d{}", i % 37), i)).collect();
        all.sort_by_key(|p| format!("{p:?}"));
        all.dedup();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn reserved_metadata_keys_and_bad_ids_are_refused() {
        let mut doc = Document { id: "x".into(), text: "t".into(), metadata: Payload::new() };
        assert!(check_document(&doc, "documents[0]").is_ok());
        doc.metadata.insert("chunk_index".into(), json!(3));
        let e = check_document(&doc, "documents[0]").expect_err("reserved");
        assert!(e.to_string().contains("documents[0].metadata.chunk_index"), "{e}");
        doc.metadata.clear();
        doc.id = String::new();
        let e = check_document(&doc, "documents[1]").expect_err("empty id");
        assert!(e.to_string().contains("documents[1].id"), "{e}");
        doc.id = "é".repeat(MAX_DOC_ID_LEN);
        assert!(check_document(&doc, "d").is_err());
    }

    #[test]
    fn filters_parse() {
        assert!(document_filter("a \"quoted\" id").is_ok());
        let counts = vec![DocumentChunks { id: "a".into(), chunks: 2 }, DocumentChunks { id: "b".into(), chunks: 0 }];
        assert!(stale_filter(&counts).is_ok());
    }
}
