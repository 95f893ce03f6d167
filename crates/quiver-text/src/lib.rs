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

use quiver_embed::{EmbedError, Embedder};
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
    let inputs = texts.into_iter().map(|(i, t)| (i, String::new(), Content::Text(t))).collect();
    fill(model, points, inputs)
}

/// What a model embeds for a point or a query: a text, or an encoded image (JPEG, PNG, WebP, GIF, BMP).
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A text.
    Text(String),
    /// The bytes of an image file.
    Image(Vec<u8>),
}

/// What images are, for error messages.
pub const IMAGE_EXPECTED: &str = "a JPEG, PNG, WebP, GIF or BMP image";

/// Embeds one text or image (blocking); `field` names it in errors.
pub fn embed_content(model: &dyn Embedder, content: &Content, field: &str) -> Result<Vec<f32>> {
    let vectors = match content {
        Content::Text(t) => model.embed(&[t.as_str()]),
        Content::Image(bytes) => model.embed_images(&[bytes.as_slice()]),
    };
    let mut vectors = vectors.map_err(|e| content_error(model, e, |_| field.to_string()))?;
    vectors.pop().ok_or_else(|| TextError::Internal("the model returned no vector".into()))
}

/// Embeds encoded images with `model` (blocking): one vector each; an image that cannot be decoded is a
/// [`TextError::InvalidArgument`] naming `{field}[i]`.
pub fn embed_images(model: &dyn Embedder, images: &[&[u8]], field: &str) -> Result<Vec<Vec<f32>>> {
    model.embed_images(images).map_err(|e| content_error(model, e, |k| format!("{field}[{k}]")))
}

/// Embeds `inputs` (`(point index, field for errors, content)`) with `model` into those points' vectors — texts in
/// one call, images in another — and keeps each text in its point's payload under [`TEXT_KEY`] (replacing a
/// `text` key sent in the payload). An image that cannot be decoded, or content of the kind the model does not
/// take, is a [`TextError::InvalidArgument`] naming its field. Blocking.
pub fn fill(model: &dyn Embedder, points: &mut [PointInput], inputs: Vec<(usize, String, Content)>) -> Result<()> {
    fill_into(model, points, inputs, None)
}

/// [`fill`] into the named vector `vector` of each point (`None`: its unnamed vector). Texts embedded into a named
/// vector are not copied into the payload (several vectors may each have their own).
pub fn fill_into(
    model: &dyn Embedder,
    points: &mut [PointInput],
    inputs: Vec<(usize, String, Content)>,
    vector: Option<&str>,
) -> Result<()> {
    let set = |p: &mut PointInput, v: Vec<f32>| match vector {
        Some(name) => {
            p.named.insert(name.to_owned(), v);
        }
        None => p.vector = v,
    };
    if let Some((i, _, _)) = inputs.iter().find(|(i, _, _)| *i >= points.len()) {
        return Err(TextError::Internal(format!("content for point {i} of {}", points.len())));
    }
    let (mut texts, mut images) = (Vec::new(), Vec::new());
    for (i, field, content) in inputs {
        match content {
            Content::Text(t) => texts.push((i, field, t)),
            Content::Image(b) => images.push((i, field, b)),
        }
    }
    if !texts.is_empty() {
        let refs: Vec<&str> = texts.iter().map(|(_, _, t)| t.as_str()).collect();
        let vectors = model.embed(&refs).map_err(|e| content_error(model, e, |k| texts[k].1.clone()))?;
        for ((i, _, t), v) in texts.into_iter().zip(vectors) {
            let p = &mut points[i];
            set(p, v);
            if vector.is_none() {
                p.payload.get_or_insert_with(Default::default).insert(TEXT_KEY.to_string(), t.into());
            }
        }
    }
    if !images.is_empty() {
        let refs: Vec<&[u8]> = images.iter().map(|(_, _, b)| b.as_slice()).collect();
        let vectors = model.embed_images(&refs).map_err(|e| content_error(model, e, |k| images[k].1.clone()))?;
        for ((i, _, _), v) in images.iter().zip(vectors) {
            set(&mut points[*i], v);
        }
    }
    Ok(())
}

/// A model's refusal of one input, naming the input's field (`field_of(k)` for input `k` of the call).
fn content_error(model: &dyn Embedder, e: EmbedError, field_of: impl Fn(usize) -> String) -> TextError {
    let name = |f: String| if f.is_empty() { "input".to_string() } else { f };
    match e {
        EmbedError::BadImage { index, message } => TextError::invalid(name(field_of(index)), IMAGE_EXPECTED, message),
        EmbedError::WrongInput { model: m, takes, got } => TextError::invalid(
            name(field_of(0)),
            format!("{takes}: the collection's model {m} embeds {takes}"),
            got.to_string(),
        ),
        e => TextError::model(model.model_name(), e),
    }
}
