//! quiver-embed's one integration-test binary.
//!
//! Tests that run the model find it as a user would (`QUIVER_MODEL_DIR`, else `~/.cache/quiver-models/...`) and
//! FAIL with instructions when it is missing: CI installs it (`.ci/run` → `scripts/get-embed-model.sh`), so a missing
//! model there is a broken install, not a reason to skip.

mod behaviour;
mod config;
mod images;
mod locate;
mod reference;

use std::path::PathBuf;
use std::sync::OnceLock;

use quiver_embed::{EmbedOptions, SentenceEmbedder};

/// The model directory the tests use; panics with instructions when there is none.
pub fn model_dir() -> PathBuf {
    match quiver_embed::find_model_dir(None) {
        Ok(dir) => dir,
        Err(e) => panic!(
            "quiver-embed's tests need all-MiniLM-L6-v2: run `bash scripts/get-embed-model.sh` (or set \
             QUIVER_MODEL_DIR). {e}"
        ),
    }
}

/// The f32 path: what the reference vectors are checked against (int8, the default on CPUs with a fast kernel,
/// has its own gate in `reference.rs`).
pub fn f32_options() -> EmbedOptions {
    EmbedOptions { int8: false, ..EmbedOptions::default() }
}

/// The model (f32), loaded once for the whole binary.
pub fn model() -> &'static SentenceEmbedder {
    static MODEL: OnceLock<SentenceEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = model_dir();
        SentenceEmbedder::load(&dir, &f32_options())
            .unwrap_or_else(|e| panic!("loading the model in {}: {e}", dir.display()))
    })
}

/// all-mpnet-base-v2 (f32), loaded once: from `QUIVER_MPNET_DIR`, else `~/.cache/quiver-models/all-mpnet-base-v2` (where
/// `bash scripts/get-embed-model.sh all-mpnet-base-v2` puts it and `.ci/run` installs it); panics with that
/// instruction when missing.
pub fn mpnet() -> &'static SentenceEmbedder {
    static MODEL: OnceLock<SentenceEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::var_os("QUIVER_MPNET_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/quiver-models/all-mpnet-base-v2")
        });
        SentenceEmbedder::load(&dir, &f32_options()).unwrap_or_else(|e| {
            panic!(
                "these tests need all-mpnet-base-v2 in {}: run `bash scripts/get-embed-model.sh all-mpnet-base-v2` \
                 (or set QUIVER_MPNET_DIR). {e}",
                dir.display()
            )
        })
    })
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}
