//! Text in the API: collections that name an embedding model (`"embedding": {"model": …}` in their config) take
//! `text` where a vector would go — in upserts, searches, queries and documents — and the server embeds it
//! in-process with [`quiver_embed`].
//!
//! Models are found by name ([`quiver_text::Models`]) and loaded once, on first use, then shared by every request.
//! Embedding is CPU work: callers run it inside [`crate::state::blocking`].

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use quiver_embed::Embedder;
use quiver_engine::Collection;
use quiver_text::Models;

use crate::error::{ApiError, ApiResult};

/// The models this server can run ([`quiver_text::Models`]), each counted into [`EmbedStats`] for `/metrics`.
#[derive(Debug)]
pub struct Embedders {
    models: Models,
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
        out.push_str(
            "# HELP quiver_embedded_texts_total Texts and images embedded by the built-in models, by model.\n",
        );
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

    fn modality(&self) -> quiver_embed::Modality {
        self.inner.modality()
    }

    fn embed_images_flat(&self, images: &[&[u8]]) -> quiver_embed::Result<Vec<f32>> {
        let started = std::time::Instant::now();
        let out = self.inner.embed_images_flat(images)?;
        self.stats.record(self.inner.model_name(), images.len(), started.elapsed().as_secs_f64());
        Ok(out)
    }
}

impl Embedders {
    /// Models are looked up as [`quiver_text::Models`] does: `models_dir/<name>` first (when set), then, for the
    /// default model, where [`quiver_embed::find_model_dir`] looks.
    pub fn new(models_dir: Option<PathBuf>) -> Self {
        let stats: Arc<EmbedStats> = Arc::default();
        let counting = Arc::clone(&stats);
        let models = Models::new(models_dir).with_wrapper(Box::new(move |inner| {
            tracing::info!(model = inner.model_name(), dim = inner.dim(), "embedding model loaded");
            Arc::new(Counted { inner, stats: Arc::clone(&counting) }) as Arc<dyn Embedder>
        }));
        Embedders { models, stats }
    }

    /// Logs, once at startup, whether text can be embedded and where the default model is: a missing model is a
    /// warning an operator sees before the first text request fails.
    pub fn log_status(&self) {
        if !quiver_embed::CAN_RUN_MODELS {
            tracing::info!("built without embedding support: collections with an embedding model answer 501 to text");
            return;
        }
        let default = quiver_text::models::short_name(quiver_embed::DEFAULT_MODEL);
        match self.models.resolve(quiver_embed::DEFAULT_MODEL) {
            Ok(dir) => tracing::info!(
                model = default,
                dir = %dir.display(),
                models_dir = ?self.models.models_dir(),
                "text embedding available (models load on first use)"
            ),
            Err(_) => tracing::warn!(
                models_dir = ?self.models.models_dir(),
                "the default embedding model {default} was not found: text requests will fail until it is installed \
                 (bash scripts/get-embed-model.sh, or --models-dir)",
            ),
        }
    }

    /// What the models have embedded so far.
    pub fn stats(&self) -> &EmbedStats {
        &self.stats
    }

    /// The models underneath.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// Model `name`, loaded on first use (blocking: call from a blocking task).
    pub fn get(&self, name: &str) -> ApiResult<Arc<dyn Embedder>> {
        Ok(self.models.get(name)?)
    }

    /// The model an `embedding` setting names: built in, or an OpenAI-compatible endpoint (blocking).
    pub fn for_embedding(&self, embedding: &quiver_engine::EmbeddingConfig) -> ApiResult<Arc<dyn Embedder>> {
        Ok(self.models.for_embedding(embedding)?)
    }

    /// The model of collection `col` (400 when it has none), checked against the collection's dimension.
    pub fn for_collection(&self, name: &str, col: &Collection) -> ApiResult<Arc<dyn Embedder>> {
        self.for_config(name, col.config())
    }

    /// The model of the named vector `using` (`None`: the unnamed vector) of collection `col` (400 when it has
    /// none, or no such vector).
    pub fn for_vector(&self, name: &str, col: &Collection, using: Option<&str>) -> ApiResult<Arc<dyn Embedder>> {
        self.for_using(name, col.config(), using)
    }

    /// [`Self::for_vector`] by the collection's configuration (a cluster's receiving node has no local copy).
    pub fn for_using(
        &self,
        name: &str,
        cfg: &quiver_engine::CollectionConfig,
        using: Option<&str>,
    ) -> ApiResult<Arc<dyn Embedder>> {
        Ok(self.models.for_space(name, cfg, cfg.space_of(using, "using")?)?)
    }

    /// Loads the model of every named vector of `config` that has one, checking its vector size (blocking).
    pub fn check_spaces(&self, name: &str, config: &quiver_engine::CollectionConfig) -> ApiResult<()> {
        if config.is_named() {
            for (i, s) in config.spaces().iter().enumerate() {
                if s.embedding.is_some() {
                    self.models.for_space(name, config, i)?;
                }
            }
        }
        Ok(())
    }

    /// The model a collection configured as `config` names (400 when none), checked against its dimension.
    pub fn for_config(&self, name: &str, config: &quiver_engine::CollectionConfig) -> ApiResult<Arc<dyn Embedder>> {
        Ok(self.models.for_config(name, config)?)
    }
}

/// 400 when a model's vectors do not fit the collection.
pub fn check_dimension(model: &str, model_dim: usize, collection_dim: usize) -> ApiResult<()> {
    Ok(quiver_text::check_dimension(model, model_dim, collection_dim)?)
}

/// Embeds `texts` (blocking).
pub fn embed(model: &dyn Embedder, texts: &[&str]) -> ApiResult<Vec<Vec<f32>>> {
    Ok(quiver_text::embed(model, texts)?)
}

/// 400 when a client named a model other than the collection's.
pub fn check_named_model(asked: Option<&str>, configured: &str, field: &str) -> ApiResult<()> {
    Ok(quiver_text::check_named_model(asked, configured, field)?)
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
    // One model call per vector the texts and images go to.
    let mut by_vector: std::collections::BTreeMap<Option<String>, Vec<crate::convert::PendingText>> =
        Default::default();
    for t in texts {
        by_vector.entry(t.vector.clone()).or_default().push(t);
    }
    for (vector, texts) in by_vector {
        let space = match &vector {
            Some(v) => config.space_of(Some(v), &texts[0].field)?,
            None if config.is_named() => {
                return Err(ApiError::invalid(
                    texts[0].field.clone(),
                    format!(
                        "named vectors {:?}: give {{\"vector\": {{\"<name>\": {{\"text\": …}}}}}}",
                        config.vector_names()
                    ),
                    "a text or image for no vector in particular",
                ));
            }
            None => 0,
        };
        let model = embedders.models.for_space(name, config, space)?;
        for t in &texts {
            check_named_model(t.model.as_deref(), model.model_name(), &t.field)?;
        }
        let inputs = texts.into_iter().map(|t| (t.index, t.field, t.content)).collect();
        quiver_text::fill_into(model.as_ref(), &mut points, inputs, vector.as_deref())?;
    }
    Ok(points)
}

/// Embeds one text or image (blocking); `field` names it in errors.
pub fn embed_content(model: &dyn Embedder, content: &quiver_text::Content, field: &str) -> ApiResult<Vec<f32>> {
    Ok(quiver_text::embed_content(model, content, field)?)
}

/// Embeds `texts` (`(point index, text)`) into those points' vectors, keeping each text in its payload. Blocking.
pub fn fill_texts(
    model: &dyn Embedder,
    points: &mut [quiver_engine::PointInput],
    texts: Vec<(usize, String)>,
) -> ApiResult<()> {
    Ok(quiver_text::fill_texts(model, points, texts)?)
}

pub use quiver_text::TEXT_KEY;
