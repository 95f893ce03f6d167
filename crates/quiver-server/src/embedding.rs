//! Text in the API: collections that name an embedding model (`"embedding": {"model": …}` in their config) take
//! `text` where a vector would go — in upserts, searches, queries and documents — and the server embeds it
//! in-process with [`quiver_embed`].
//!
//! Models are found by name ([`Embedders::resolve`]) and loaded once, on first use, then shared by every request.
//! Embedding is CPU work: callers run it inside [`crate::state::blocking`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use parking_lot::Mutex;
use quiver_embed::{EmbedError, EmbedOptions, Embedder};
use quiver_engine::Collection;

use crate::error::{ApiError, ApiResult};

/// The models this server can run, loaded lazily by name.
#[derive(Debug)]
pub struct Embedders {
    models_dir: Option<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<dyn Embedder>>>,
    stats: Arc<EmbedStats>,
}

/// Texts embedded and time spent, per model, for `/metrics`.
#[derive(Debug, Default)]
pub struct EmbedStats {
    per_model: Mutex<std::collections::BTreeMap<String, (u64, f64)>>,
}

impl EmbedStats {
    fn record(&self, model: &str, texts: usize, secs: f64) {
        let mut m = self.per_model.lock();
        let e = m.entry(model.to_string()).or_default();
        e.0 += texts as u64;
        e.1 += secs;
    }

    /// Appends the Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let m = self.per_model.lock();
        out.push_str("# HELP quiver_embedded_texts_total Texts embedded by the built-in models, by model.\n");
        out.push_str("# TYPE quiver_embedded_texts_total counter\n");
        for (model, (n, _)) in m.iter() {
            let _ = writeln!(out, "quiver_embedded_texts_total{{model=\"{}\"}} {n}", crate::metrics::escape(model));
        }
        out.push_str("# HELP quiver_embedding_seconds_total Time spent embedding, by model.\n");
        out.push_str("# TYPE quiver_embedding_seconds_total counter\n");
        for (model, (_, secs)) in m.iter() {
            let _ =
                writeln!(out, "quiver_embedding_seconds_total{{model=\"{}\"}} {secs}", crate::metrics::escape(model));
        }
    }
}

/// A model that counts what it embeds into [`EmbedStats`].
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn Embedder>,
    stats: Arc<EmbedStats>,
}

impl Embedder for Counted {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }

    fn count_tokens(&self, text: &str) -> quiver_embed::Result<usize> {
        self.inner.count_tokens(text)
    }

    fn embed_flat(&self, texts: &[&str]) -> quiver_embed::Result<Vec<f32>> {
        let started = std::time::Instant::now();
        let out = self.inner.embed_flat(texts)?;
        self.stats.record(self.inner.model_name(), texts.len(), started.elapsed().as_secs_f64());
        Ok(out)
    }
}

impl Embedders {
    /// Models are looked up in `models_dir/<name>` first (when set), then, for the default model, where
    /// [`quiver_embed::find_model_dir`] looks (`QUIVER_MODEL_DIR`, `~/.cache/quiver-models/…`, the Hugging Face
    /// cache, a pip-installed copy).
    pub fn new(models_dir: Option<PathBuf>) -> Self {
        Embedders { models_dir, loaded: Mutex::new(HashMap::new()), stats: Arc::default() }
    }

    /// Logs, once at startup, whether text can be embedded and where the default model is: a missing model is a
    /// warning an operator sees before the first text request fails.
    pub fn log_status(&self) {
        if !quiver_embed::CAN_RUN_MODELS {
            tracing::info!("built without embedding support: collections with an embedding model answer 501 to text");
            return;
        }
        match self.resolve(quiver_embed::DEFAULT_MODEL) {
            Ok(dir) => tracing::info!(
                model = short_name(quiver_embed::DEFAULT_MODEL),
                dir = %dir.display(),
                models_dir = ?self.models_dir,
                "text embedding available (models load on first use)"
            ),
            Err(_) => tracing::warn!(
                models_dir = ?self.models_dir,
                "the default embedding model {} was not found: text requests will fail until it is installed \
                 (bash scripts/get-embed-model.sh, or --models-dir)",
                short_name(quiver_embed::DEFAULT_MODEL)
            ),
        }
    }

    /// What the models have embedded so far.
    pub fn stats(&self) -> &EmbedStats {
        &self.stats
    }

    /// The directory of model `name`. `owner/model` is looked up as `model` (the Hugging Face repository name's
    /// last part), matching case-insensitively for the default model.
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

    /// Model `name`, loaded on first use (blocking: call from a blocking task). Two names of one directory
    /// (`all-MiniLM-L6-v2`, `sentence-transformers/all-MiniLM-L6-v2`) share one loaded model.
    pub fn get(&self, name: &str) -> ApiResult<Arc<dyn Embedder>> {
        let mut loaded = self.loaded.lock();
        if let Some(m) = loaded.get(name) {
            return Ok(Arc::clone(m));
        }
        // Held while loading: a second request for the same model waits instead of loading it twice.
        let dir = self.resolve(name).map_err(|e| model_error(name, e))?;
        let key = dir_key(&dir);
        if let Some(m) = loaded.get(&key).cloned() {
            loaded.insert(name.to_string(), Arc::clone(&m));
            return Ok(m);
        }
        let options = EmbedOptions { name: Some(name.to_string()), ..EmbedOptions::default() };
        let model = quiver_embed::load_model(&dir, &options).map_err(|e| model_error(name, e))?;
        let model: Arc<dyn Embedder> = Arc::new(Counted { inner: model, stats: Arc::clone(&self.stats) });
        tracing::info!(model = name, dir = %dir.display(), dim = model.dim(), "embedding model loaded");
        loaded.insert(name.to_string(), Arc::clone(&model));
        loaded.insert(key, Arc::clone(&model));
        Ok(model)
    }

    /// The model of collection `col` (400 when it has none), checked against the collection's dimension.
    pub fn for_collection(&self, name: &str, col: &Collection) -> ApiResult<Arc<dyn Embedder>> {
        self.for_config(name, col.config())
    }

    /// The model a collection configured as `config` names (400 when none), checked against its dimension.
    pub fn for_config(&self, name: &str, config: &quiver_engine::CollectionConfig) -> ApiResult<Arc<dyn Embedder>> {
        let Some(embedding) = &config.embedding else {
            return Err(ApiError::bad_request(format!(
                "collection {name:?} has no embedding model, so it takes vectors, not text; create it with \
                 \"embedding\": {{\"model\": \"{}\"}} to send text",
                quiver_embed::DEFAULT_MODEL
            )));
        };
        let model = self.get(&embedding.model)?;
        check_dimension(&embedding.model, model.dim(), config.dimension)?;
        Ok(model)
    }
}

/// The cache key of a model directory (its canonical path; a prefix no model name can have).
fn dir_key(dir: &std::path::Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("dir:{}", canonical.display())
}

/// 400 when a model's vectors do not fit the collection.
pub fn check_dimension(model: &str, model_dim: usize, collection_dim: usize) -> ApiResult<()> {
    if model_dim != collection_dim {
        return Err(ApiError::bad_request(format!(
            "embedding model {model:?} makes {model_dim}-dimensional vectors but the collection's vectors have \
             {collection_dim} dimensions"
        )));
    }
    Ok(())
}

/// Embeds `texts` (blocking).
pub fn embed(model: &dyn Embedder, texts: &[&str]) -> ApiResult<Vec<Vec<f32>>> {
    model.embed(texts).map_err(|e| model_error(model.model_name(), e))
}

/// An embedding failure as an API error: a model this server lacks is a 400 naming it and saying where it goes
/// (no server paths); a build without model support is a 501; anything else is internal.
fn model_error(name: &str, e: EmbedError) -> ApiError {
    match e {
        EmbedError::ModelNotFound { .. } | EmbedError::MissingFile { .. } => ApiError::bad_request(format!(
            "embedding model {name:?} is not installed on this server (put its sentence-transformers directory \
             under the server's models directory, --models-dir, as {:?}; the default model {} is fetched by \
             scripts/get-embed-model.sh)",
            short_name(name),
            short_name(quiver_embed::DEFAULT_MODEL)
        )),
        EmbedError::NotBuilt => ApiError::new(StatusCode::NOT_IMPLEMENTED, e.to_string()),
        e if e.is_user_error() => ApiError::bad_request(e.to_string()),
        e => ApiError::internal(format!("embedding model {name:?}: {e}")),
    }
}

/// True when `asked` (a model a client named) is `configured` (the collection's): equal, or the same name once an
/// `owner/` prefix is dropped, ignoring case.
pub fn same_model(asked: &str, configured: &str) -> bool {
    asked == configured || short_name(asked).eq_ignore_ascii_case(short_name(configured))
}

/// A model name without its `owner/` prefix.
fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// 400 when a client named a model other than the collection's.
pub fn check_named_model(asked: Option<&str>, configured: &str, field: &str) -> ApiResult<()> {
    match asked {
        Some(a) if !same_model(a, configured) => Err(ApiError::invalid(
            format!("{field}.model"),
            format!("the collection's embedding model {configured:?} (or absent)"),
            format!("{a:?}"),
        )),
        _ => Ok(()),
    }
}

/// Embeds the texts of an upsert into their points' vectors and keeps each text in its point's payload under
/// `text` (replacing a `text` key sent in the payload). Blocking.
pub fn resolve_upsert(
    embedders: &Embedders,
    name: &str,
    config: &quiver_engine::CollectionConfig,
    up: crate::convert::Upsert,
) -> ApiResult<Vec<quiver_engine::PointInput>> {
    let crate::convert::Upsert { mut points, texts } = up;
    if texts.is_empty() {
        return Ok(points);
    }
    let model = embedders.for_config(name, config)?;
    for t in &texts {
        check_named_model(t.model.as_deref(), model.model_name(), &t.field)?;
    }
    fill_texts(model.as_ref(), &mut points, texts.into_iter().map(|t| (t.index, t.text)).collect())?;
    Ok(points)
}

/// Embeds `texts` (`(point index, text)`) with `model` in one call into those points' vectors, and keeps each text
/// in its point's payload under [`TEXT_KEY`] (replacing a `text` key sent in the payload). Blocking.
pub fn fill_texts(
    model: &dyn Embedder,
    points: &mut [quiver_engine::PointInput],
    texts: Vec<(usize, String)>,
) -> ApiResult<()> {
    let refs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = embed(model, &refs)?;
    for ((i, t), v) in texts.into_iter().zip(vectors) {
        let p = &mut points[i];
        p.vector = v;
        p.payload.get_or_insert_with(Default::default).insert(TEXT_KEY.to_string(), t.into());
    }
    Ok(())
}

/// The payload key that holds a point's text.
pub const TEXT_KEY: &str = "text";
