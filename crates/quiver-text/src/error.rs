//! What can go wrong turning text into points.

use quiver_embed::EmbedError;

/// An error of this crate. [`TextError::is_user_error`] says whether the caller is at fault.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// Bad input, naming the field.
    #[error("invalid {field}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The field (`documents[2].id`).
        field: String,
        /// What it should have been.
        expected: String,
        /// What it was.
        got: String,
    },
    /// The request cannot work as asked (a collection without a model sent text, a bad chunking, a model whose
    /// vectors do not fit the collection).
    #[error("{0}")]
    BadRequest(String),
    /// The model is not installed where models are looked for.
    #[error(
        "embedding model {name:?} is not installed here (put its sentence-transformers directory under the models \
         directory as {short:?}, or in ~/.cache/quiver-models; scripts/get-embed-model.sh fetches the default model \
         {default}; `scripts/get-embed-model.sh all-mpnet-base-v2` and `… efficientnet-lite0` fetch those)"
    )]
    ModelNotInstalled {
        /// The name asked for.
        name: String,
        /// The directory name looked for.
        short: String,
        /// The default model's name.
        default: String,
    },
    /// This build cannot run models (quiver-embed without its `candle` feature).
    #[error("{0}")]
    NotBuilt(EmbedError),
    /// The model failed (bad files, inference): not the caller's fault.
    #[error("embedding model {name:?}: {source}")]
    Model {
        /// The model.
        name: String,
        /// What failed.
        source: EmbedError,
    },
    /// An OpenAI-compatible embeddings endpoint a collection names failed (unreachable, refused, a bad answer):
    /// neither the caller's input nor this server is at fault.
    #[error("{0}")]
    Upstream(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] quiver_engine::Error),
    /// A bug: an invariant of this crate broke.
    #[error("internal: {0}")]
    Internal(String),
}

impl TextError {
    /// True when the caller's input or configuration is at fault.
    pub fn is_user_error(&self) -> bool {
        match self {
            TextError::InvalidArgument { .. } | TextError::BadRequest(_) | TextError::ModelNotInstalled { .. } => true,
            TextError::Engine(e) => e.is_user_error(),
            TextError::NotBuilt(_) | TextError::Model { .. } | TextError::Upstream(_) | TextError::Internal(_) => false,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        TextError::InvalidArgument { field: field.into(), expected: expected.into(), got: got.into() }
    }

    /// A model failure under `name`: a missing model names where it goes; the rest keep their cause.
    pub fn model(name: &str, e: EmbedError) -> Self {
        match e {
            EmbedError::ModelNotFound { .. } | EmbedError::MissingFile { .. } => TextError::ModelNotInstalled {
                name: name.to_owned(),
                short: crate::models::short_name(name).to_owned(),
                default: crate::models::short_name(quiver_embed::DEFAULT_MODEL).to_owned(),
            },
            EmbedError::NotBuilt => TextError::NotBuilt(e),
            EmbedError::Remote { .. } => TextError::Upstream(e.to_string()),
            e if e.is_user_error() => TextError::BadRequest(e.to_string()),
            e => TextError::Model { name: name.to_owned(), source: e },
        }
    }
}

/// Result alias.
pub type Result<T, E = TextError> = std::result::Result<T, E>;
