//! The one error type of the crate. Every variant names the file or field at fault, so a message can be acted on
//! without a debugger; `is_user_error` tells a caller (the server) whether the request or the installation is to
//! blame.

use std::path::PathBuf;

/// Everything that can go wrong while finding, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// No model directory was given and none was found in the places searched.
    #[error(
        "no embedding model found; searched: {}.\n{}",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        crate::locate::HOW_TO_GET_THE_MODEL
    )]
    ModelNotFound { searched: Vec<PathBuf> },

    /// A directory was named (argument or `QUIVER_MODEL_DIR`) but a file the model needs is not in it.
    #[error("model directory {dir} has no {file}.\n{}", crate::locate::HOW_TO_GET_THE_MODEL)]
    MissingFile { dir: PathBuf, file: &'static str },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file could not be parsed or lacks a field the loader needs.
    #[error("bad {path}: {message}")]
    BadConfig { path: PathBuf, message: String },

    /// The model's configuration names an architecture this crate does not run.
    #[error("{path}: model_type {model_type:?} is not supported (supported: bert, mpnet, efficientnet_lite)")]
    UnsupportedModel { path: PathBuf, model_type: String },

    /// The configuration asks for something this crate does not implement (a pooling mode, an activation).
    #[error("{path}: {field} = {value} is not supported")]
    UnsupportedSetting { path: PathBuf, field: &'static str, value: String },

    /// `tokenizer.json` could not be loaded or a text could not be tokenised.
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    /// `model.safetensors` lacks a tensor or has one of the wrong shape.
    #[error("weights {path}: {message}")]
    Weights { path: PathBuf, message: String },

    /// The forward pass failed (a bug or an out-of-memory, not bad input).
    #[error("inference failed: {0}")]
    Inference(String),

    /// This build cannot run models (compiled without the cargo feature `candle`, i.e. `quiver` without `embed`).
    #[error(
        "this build of QuiverDB has no built-in embedding support; rebuild with the cargo feature `embed` (on by \
         default): cargo build --release -p quiver-cli"
    )]
    NotBuilt,

    /// An OpenAI-compatible embeddings endpoint could not be reached, refused the request or answered something
    /// unusable (the message says which; it never holds the API key).
    #[error("embedding endpoint {url}: {message}")]
    Remote { url: String, message: String },

    /// Image `index` of a call could not be decoded (empty, unknown format, truncated, too large); the message
    /// says which.
    #[error("bad image: {message}")]
    BadImage { index: usize, message: String },

    /// Text given to an image model, or an image to a text model.
    #[error("model {model} embeds {takes}, not {got}")]
    WrongInput { model: String, takes: crate::Modality, got: crate::Modality },

    /// An option passed by the caller is out of range.
    #[error("invalid option {name} = {value}: {reason}")]
    InvalidOption { name: &'static str, value: String, reason: &'static str },
}

impl EmbedError {
    /// True when the caller's input or configuration is at fault (a 4xx), false for an internal fault.
    pub fn is_user_error(&self) -> bool {
        match self {
            EmbedError::InvalidOption { .. } | EmbedError::BadImage { .. } | EmbedError::WrongInput { .. } => true,
            EmbedError::ModelNotFound { .. }
            | EmbedError::MissingFile { .. }
            | EmbedError::Io { .. }
            | EmbedError::BadConfig { .. }
            | EmbedError::UnsupportedModel { .. }
            | EmbedError::UnsupportedSetting { .. }
            | EmbedError::Tokenizer { .. }
            | EmbedError::Weights { .. }
            | EmbedError::Inference(_)
            | EmbedError::Remote { .. }
            | EmbedError::NotBuilt => false,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;
