//! Text over QuiverDB's engine. Collections that name an embedding model (`embedding: {model: …}` in their
//! config) take text where a vector would go; this crate is the one place that turns it into points, for every
//! front end — the HTTP server, `quiver import` on a data directory, the Python package:
//!
//! - [`Models`] finds models by name (a models directory, then where [`quiver_embed::find_model_dir`] looks) and
//!   loads each once, on first use; a collection may instead name an OpenAI-compatible endpoint
//!   ([`remote::RemoteEmbedder`]);
//! - [`embed`] and [`fill_texts`] turn texts into vectors (each text kept in its point's payload under
//!   [`TEXT_KEY`]);
//! - [`documents`] cuts documents into chunk points with stable ids, writes them (replacing a document's earlier
//!   chunks) and deletes them.
//!
//! Embedding is CPU work and blocks: async callers run it on a blocking thread.

pub mod documents;
mod error;
pub mod models;
pub mod remote;

use quiver_embed::Embedder;
use quiver_engine::PointInput;

pub use error::{Result, TextError};
pub use models::{Models, check_dimension, check_named_model, same_model};

/// The payload key that holds a point's text.
pub const TEXT_KEY: &str = "text";

/// Embeds `texts` (blocking): one vector per text.
pub fn embed(model: &dyn Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    model.embed(texts).map_err(|e| TextError::model(model.model_name(), e))
}

/// Embeds `texts` (`(point index, text)`) with `model` in one call into those points' vectors, and keeps each text
/// in its point's payload under [`TEXT_KEY`] (replacing a `text` key sent in the payload). Blocking.
pub fn fill_texts(model: &dyn Embedder, points: &mut [PointInput], texts: Vec<(usize, String)>) -> Result<()> {
    if let Some((i, _)) = texts.iter().find(|(i, _)| *i >= points.len()) {
        return Err(TextError::Internal(format!("text for point {i} of {}", points.len())));
    }
    let refs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = embed(model, &refs)?;
    for ((i, t), v) in texts.into_iter().zip(vectors) {
        let p = &mut points[i];
        p.vector = v;
        p.payload.get_or_insert_with(Default::default).insert(TEXT_KEY.to_string(), t.into());
    }
    Ok(())
}
