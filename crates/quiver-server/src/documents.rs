//! Documents: a text split into chunks, each chunk a point — [`quiver_text::documents`], with its errors as API
//! errors. See that module for the rules (chunk ids, payload keys, replacing and deleting).

pub use quiver_text::documents::*;

/// Chunk counts in the reply's shape.
pub fn to_wire(counts: &[DocumentChunks]) -> Vec<crate::wire::DocumentChunks> {
    counts.iter().map(|c| crate::wire::DocumentChunks { id: c.id.clone(), chunks: c.chunks }).collect()
}
