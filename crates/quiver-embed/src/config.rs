//! The model directory's configuration files, read into the few numbers the loader needs.
//!
//! - `config.json` (Hugging Face): architecture and sizes — required.
//! - `sentence_bert_config.json`: `max_seq_length` — optional.
//! - `1_Pooling/config.json` (or the directory `modules.json` names for the Pooling module): mean / CLS — optional,
//!   mean when absent.
//! - `modules.json`: whether a `Normalize` module follows pooling — optional, no normalisation when absent (a plain
//!   Hugging Face model).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{EmbedError, Result};

/// The encoder hyper-parameters the forward pass needs (BERT, or MPNet: the same layers with relative position
/// buckets added to the attention scores).
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Which encoder family the weights are for.
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    pub hidden_act: Activation,
}

/// The encoder families the forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// BERT (`model_type: "bert"`): absolute position and token-type embeddings.
    Bert,
    /// MPNet (`model_type: "mpnet"`, e.g. all-mpnet-base-v2): absolute positions counted from `pad_token_id + 1`,
    /// no token types, and a learned bias per attention head and relative-position bucket added to every layer's
    /// attention scores.
    MpNet {
        /// Buckets of relative positions (`relative_attention_num_buckets`, 32 in every released checkpoint).
        relative_buckets: usize,
    },
}

impl BertConfig {
    /// The position-embedding row of a text's first token: 0 for BERT, `pad_token_id + 1` for MPNet (whose
    /// positions are counted past the padding id, as RoBERTa's are).
    pub fn position_offset(&self) -> usize {
        match self.architecture {
            Architecture::Bert => 0,
            Architecture::MpNet { .. } => self.pad_token_id as usize + 1,
        }
    }

    /// The most tokens a text may have (special tokens included): the position rows left after the offset.
    pub fn max_sequence(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
    }
}

/// The feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (with erf), what BERT's `"gelu"` means.
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    Relu,
}

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the token vectors under the attention mask (padding excluded).
    Mean,
    /// The vector of the first token (`[CLS]`).
    Cls,
}

/// Everything read from a model directory, apart from the tokenizer and weights.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub dir: PathBuf,
    pub bert: BertConfig,
    pub pooling: Pooling,
    pub normalize: bool,
    /// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are truncated.
    pub max_tokens: usize,
}

#[derive(Deserialize)]
struct RawBert {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: u32,
    #[serde(default = "default_act")]
    hidden_act: String,
    position_embedding_type: Option<String>,
    relative_attention_num_buckets: Option<usize>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".to_string()
}

#[derive(Deserialize)]
struct RawPooling {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize)]
struct RawModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawSentenceBert {
    max_seq_length: Option<usize>,
}

impl ModelConfig {
    /// Reads the configuration files of the model directory `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let bert = parse_bert(&config_path, &read_json(&config_path)?)?;

        // modules.json: the Pooling module's directory and whether Normalize follows.
        let modules_path = dir.join("modules.json");
        let mut pooling_dir = dir.join("1_Pooling");
        let mut normalize = false;
        if modules_path.is_file() {
            let modules: Vec<RawModule> = from_value(&modules_path, read_json(&modules_path)?)?;
            for m in &modules {
                if m.kind.ends_with(".Pooling") {
                    pooling_dir = dir.join(&m.path);
                } else if m.kind.ends_with(".Normalize") {
                    normalize = true;
                } else if !m.kind.ends_with(".Transformer") {
                    return Err(EmbedError::UnsupportedSetting {
                        path: modules_path.clone(),
                        field: "type",
                        value: m.kind.clone(),
                    });
                }
            }
        }

        let pooling_path = pooling_dir.join("config.json");
        let pooling = if pooling_path.is_file() {
            parse_pooling(&pooling_path, read_json(&pooling_path)?)?
        } else {
            Pooling::Mean
        };

        let sbert_path = dir.join("sentence_bert_config.json");
        let mut max_tokens = bert.max_sequence().min(512);
        if sbert_path.is_file() {
            let sbert: RawSentenceBert = from_value(&sbert_path, read_json(&sbert_path)?)?;
            if let Some(n) = sbert.max_seq_length {
                if n < 2 {
                    return Err(EmbedError::BadConfig {
                        path: sbert_path,
                        message: format!("max_seq_length = {n} leaves no room for [CLS] and [SEP]"),
                    });
                }
                max_tokens = n.min(bert.max_sequence());
            }
        }

        Ok(ModelConfig { dir: dir.to_path_buf(), bert, pooling, normalize, max_tokens })
    }
}

fn parse_bert(path: &Path, v: &Value) -> Result<BertConfig> {
    let raw: RawBert = from_value(path, v.clone())?;
    let architecture = match raw.model_type.as_deref() {
        Some("bert") | None => Architecture::Bert,
        Some("mpnet") => {
            let relative_buckets = raw.relative_attention_num_buckets.unwrap_or(32);
            // The bucketing splits the buckets into two directions, each with an exact half and a log half.
            if relative_buckets < 4 || !relative_buckets.is_multiple_of(4) {
                return Err(EmbedError::BadConfig {
                    path: path.to_path_buf(),
                    message: format!("relative_attention_num_buckets = {relative_buckets}: expected a multiple of 4"),
                });
            }
            Architecture::MpNet { relative_buckets }
        }
        Some(other) => {
            return Err(EmbedError::UnsupportedModel { path: path.to_path_buf(), model_type: other.to_string() });
        }
    };
    if let Some(p) = raw.position_embedding_type.as_deref()
        && p != "absolute"
    {
        return Err(EmbedError::UnsupportedSetting {
            path: path.to_path_buf(),
            field: "position_embedding_type",
            value: p.to_string(),
        });
    }
    let hidden_act = match raw.hidden_act.as_str() {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => {
            return Err(EmbedError::UnsupportedSetting {
                path: path.to_path_buf(),
                field: "hidden_act",
                value: other.to_string(),
            });
        }
    };
    if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
        return Err(EmbedError::BadConfig {
            path: path.to_path_buf(),
            message: format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            ),
        });
    }
    if raw.max_position_embeddings < 2 || raw.vocab_size == 0 || raw.type_vocab_size == 0 {
        return Err(EmbedError::BadConfig {
            path: path.to_path_buf(),
            message: "max_position_embeddings, vocab_size and type_vocab_size must be positive".to_string(),
        });
    }
    let config = BertConfig {
        architecture,
        vocab_size: raw.vocab_size,
        hidden_size: raw.hidden_size,
        num_hidden_layers: raw.num_hidden_layers,
        num_attention_heads: raw.num_attention_heads,
        intermediate_size: raw.intermediate_size,
        max_position_embeddings: raw.max_position_embeddings,
        type_vocab_size: raw.type_vocab_size,
        layer_norm_eps: raw.layer_norm_eps,
        pad_token_id: raw.pad_token_id,
        hidden_act,
    };
    if config.max_sequence() < 2 {
        return Err(EmbedError::BadConfig {
            path: path.to_path_buf(),
            message: format!(
                "max_position_embeddings {} leaves fewer than 2 positions past the padding offset {}",
                config.max_position_embeddings,
                config.position_offset()
            ),
        });
    }
    Ok(config)
}

fn parse_pooling(path: &Path, v: Value) -> Result<Pooling> {
    let raw: RawPooling = from_value(path, v)?;
    let unsupported = [
        ("pooling_mode_max_tokens", raw.pooling_mode_max_tokens),
        ("pooling_mode_mean_sqrt_len_tokens", raw.pooling_mode_mean_sqrt_len_tokens),
        ("pooling_mode_weightedmean_tokens", raw.pooling_mode_weightedmean_tokens),
        ("pooling_mode_lasttoken", raw.pooling_mode_lasttoken),
    ];
    for (field, on) in unsupported {
        if on {
            return Err(EmbedError::UnsupportedSetting { path: path.to_path_buf(), field, value: "true".to_string() });
        }
    }
    match (raw.pooling_mode_mean_tokens, raw.pooling_mode_cls_token) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        (true, true) => Err(EmbedError::UnsupportedSetting {
            path: path.to_path_buf(),
            field: "pooling_mode_cls_token",
            value: "true together with pooling_mode_mean_tokens".to_string(),
        }),
        (false, false) => Err(EmbedError::BadConfig {
            path: path.to_path_buf(),
            message: "no pooling mode is switched on".to_string(),
        }),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|source| EmbedError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EmbedError::BadConfig { path: path.to_path_buf(), message: e.to_string() })
}

fn from_value<T: serde::de::DeserializeOwned>(path: &Path, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| EmbedError::BadConfig { path: path.to_path_buf(), message: e.to_string() })
}
