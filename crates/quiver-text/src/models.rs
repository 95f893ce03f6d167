//! Embedding models by name, loaded once on first use and shared by every caller.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use quiver_embed::{EmbedError, EmbedOptions, Embedder};
use quiver_engine::{CollectionConfig, EmbeddingConfig};

use crate::{Result, TextError};

/// Wraps each model as it is loaded (the server counts what its models embed this way).
pub type Wrap = Box<dyn Fn(Arc<dyn Embedder>) -> Arc<dyn Embedder> + Send + Sync>;

/// The models this process can run, loaded lazily by name.
pub struct Models {
    models_dir: Option<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<dyn Embedder>>>,
    wrap: Option<Wrap>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("models_dir", &self.models_dir)
            .field("loaded", &self.loaded.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Models {
    /// Models are looked up in `models_dir/<name>` first (when set), then, for the default model, where
    /// [`quiver_embed::find_model_dir`] looks (`QUIVER_MODEL_DIR`, `~/.cache/quiver-models/…`, the Hugging Face
    /// cache, a pip-installed copy).
    pub fn new(models_dir: Option<PathBuf>) -> Self {
        Models { models_dir, loaded: Mutex::new(HashMap::new()), wrap: None }
    }

    /// Passes every model through `wrap` once, when it is loaded.
    pub fn with_wrapper(mut self, wrap: Wrap) -> Self {
        self.wrap = Some(wrap);
        self
    }

    /// The models directory, when one was given.
    pub fn models_dir(&self) -> Option<&Path> {
        self.models_dir.as_deref()
    }

    /// The directory of model `name`: `models_dir/<name>`, `models_dir/<model>`, `~/.cache/quiver-models/<model>`,
    /// `QUIVER_MODEL_DIR` when its last part is `<model>`, and for the default model wherever
    /// [`quiver_embed::find_model_dir`] looks. `owner/model` is looked up as `model` (the Hugging Face repository
    /// name's last part), matching case-insensitively for the default model.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, EmbedError> {
        let short = short_name(name);
        let mut searched = Vec::new();
        if let Some(root) = &self.models_dir {
            for candidate in [root.join(name), root.join(short)] {
                if candidate.is_dir() {
                    return Ok(candidate);
                }
                searched.push(candidate);
            }
        }
        // QuiverDB's own model cache, where scripts/get-embed-model.sh puts each model it knows.
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            let candidate = PathBuf::from(home).join(".cache/quiver-models").join(short);
            if quiver_embed::locate::check_model_dir(&candidate).is_ok() {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
        if let Some(dir) = std::env::var_os(quiver_embed::MODEL_DIR_ENV).map(PathBuf::from)
            && dir.file_name().is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(short))
        {
            return Ok(dir);
        }
        if same_model(name, quiver_embed::DEFAULT_MODEL) {
            return quiver_embed::find_model_dir(None);
        }
        Err(EmbedError::ModelNotFound { searched })
    }

    /// The names of the models that can be loaded: each model directory under the models directory and under
    /// `~/.cache/quiver-models`, and the default model when it is found; sorted, without duplicates.
    pub fn installed(&self) -> Vec<String> {
        let mut roots: Vec<PathBuf> = self.models_dir.iter().cloned().collect();
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            roots.push(PathBuf::from(home).join(".cache/quiver-models"));
        }
        let mut names: Vec<String> = roots
            .iter()
            .filter_map(|root| std::fs::read_dir(root).ok())
            .flatten()
            .flatten()
            .filter(|e| quiver_embed::locate::check_model_dir(&e.path()).is_ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        let default = short_name(quiver_embed::DEFAULT_MODEL);
        if !names.iter().any(|n| n.eq_ignore_ascii_case(default)) && self.resolve(quiver_embed::DEFAULT_MODEL).is_ok() {
            names.push(default.to_string());
        }
        names.sort();
        names.dedup();
        names
    }

    /// Model `name`, loaded on first use (blocking). Two names of one directory (`all-MiniLM-L6-v2`,
    /// `sentence-transformers/all-MiniLM-L6-v2`) share one loaded model.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Embedder>> {
        let mut loaded = self.loaded.lock();
        if let Some(m) = loaded.get(name) {
            return Ok(Arc::clone(m));
        }
        // Held while loading: a second caller for the same model waits instead of loading it twice.
        let dir = self.resolve(name).map_err(|e| TextError::model(name, e))?;
        let key = dir_key(&dir);
        if let Some(m) = loaded.get(&key).cloned() {
            loaded.insert(name.to_string(), Arc::clone(&m));
            return Ok(m);
        }
        let options = EmbedOptions { name: Some(name.to_string()), ..EmbedOptions::default() };
        let mut model = quiver_embed::load_model(&dir, &options).map_err(|e| TextError::model(name, e))?;
        if let Some(wrap) = &self.wrap {
            model = wrap(model);
        }
        loaded.insert(name.to_string(), Arc::clone(&model));
        loaded.insert(key, Arc::clone(&model));
        Ok(model)
    }

    /// The model a collection configured as `config` names (an error naming the fix when it has none), checked
    /// against the collection's dimension. `name` is the collection's, for messages.
    pub fn for_config(&self, name: &str, config: &CollectionConfig) -> Result<Arc<dyn Embedder>> {
        self.for_space(name, config, 0)
    }

    /// The model of vector space `space` of a collection configured as `config` (0: its only vector, or its first
    /// named one), checked against that vector's dimension.
    pub fn for_space(&self, name: &str, config: &CollectionConfig, space: usize) -> Result<Arc<dyn Embedder>> {
        let spaces = config.spaces();
        let Some(s) = spaces.get(space) else {
            return Err(TextError::Internal(format!("vector space {space} of {}", spaces.len())));
        };
        let Some(embedding) = s.embedding else {
            if config.is_named() {
                return Err(TextError::BadRequest(format!(
                    "vector {:?} of collection {name:?} has no embedding model, so it takes numbers, not text or \
                     images; give it one with \"embedding\": {{\"model\": \"{}\"}} in its `vectors` entry",
                    s.name,
                    quiver_embed::DEFAULT_MODEL
                )));
            }
            return Err(TextError::BadRequest(format!(
                "collection {name:?} has no embedding model, so it takes vectors, not text; create it with \
                 \"embedding\": {{\"model\": \"{}\"}} to send text",
                quiver_embed::DEFAULT_MODEL
            )));
        };
        let model = self.for_embedding(embedding)?;
        check_dimension(&embedding.model, model.dim(), s.dimension)?;
        Ok(model)
    }

    /// The model an `embedding` setting names: the built-in model `model`, or — with a `url` — the
    /// OpenAI-compatible endpoint's model (connected once, on first use; see [`crate::remote`]). Blocking.
    pub fn for_embedding(&self, embedding: &EmbeddingConfig) -> Result<Arc<dyn Embedder>> {
        let Some(url) = &embedding.url else { return self.get(&embedding.model) };
        // A prefix no model name or directory key can have; the key variable's name, not its value.
        let key = format!("remote:{url}\n{}\n{}", embedding.model, embedding.api_key_env.as_deref().unwrap_or(""));
        if let Some(m) = self.loaded.lock().get(&key) {
            return Ok(Arc::clone(m));
        }
        // Connected without the lock: a slow endpoint must not hold up other models.
        let remote =
            crate::remote::RemoteEmbedder::connect(embedding).map_err(|e| TextError::model(&embedding.model, e))?;
        let mut model: Arc<dyn Embedder> = Arc::new(remote);
        if let Some(wrap) = &self.wrap {
            model = wrap(model);
        }
        Ok(Arc::clone(self.loaded.lock().entry(key).or_insert(model)))
    }
}

/// The cache key of a model directory (its canonical path; a prefix no model name can have).
fn dir_key(dir: &Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("dir:{}", canonical.display())
}

/// An error when a model's vectors do not fit the collection.
pub fn check_dimension(model: &str, model_dim: usize, collection_dim: usize) -> Result<()> {
    if model_dim != collection_dim {
        return Err(TextError::BadRequest(format!(
            "embedding model {model:?} makes {model_dim}-dimensional vectors but the collection's vectors have \
             {collection_dim} dimensions"
        )));
    }
    Ok(())
}

/// True when `asked` (a model a client named) is `configured` (the collection's): equal, or the same name once an
/// `owner/` prefix is dropped, ignoring case.
pub fn same_model(asked: &str, configured: &str) -> bool {
    asked == configured || short_name(asked).eq_ignore_ascii_case(short_name(configured))
}

/// A model name without its `owner/` prefix.
pub fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// An error when a client named a model other than the collection's; `field` is where it named it.
pub fn check_named_model(asked: Option<&str>, configured: &str, field: &str) -> Result<()> {
    match asked {
        Some(a) if !same_model(a, configured) => Err(TextError::invalid(
            format!("{field}.model"),
            format!("the collection's embedding model {configured:?} (or absent)"),
            format!("{a:?}"),
        )),
        _ => Ok(()),
    }
}
