//! A BERT encoder (inference only) on candle's CPU backend.
//!
//! Written for throughput on a few cores rather than generality:
//! - activations stay two-dimensional `(tokens, hidden)` between layers, so every projection is one GEMM, and the
//!   texts of a batch are packed without padding there (only attention sees them padded side by side);
//! - query, key and value are one fused `(hidden, 3·hidden)` projection, with the attention scale `1/√d` folded
//!   into the query weights at load time;
//! - token type is always 0, so the position and token-type embeddings are summed once at load time.
//!
//! Weights are read with candle's safe loader (the file is read into memory, no mmap), as `f32` whatever their
//! stored type.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::BertConfig;
use crate::error::{EmbedError, Result};
use crate::ops::{BiasAct, BiasResidualNorm, MaskedSoftmax, MergeHeads, QkvSplit};

/// Converts a candle error met while running the model.
fn infer(e: candle_core::Error) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

/// The tensors of `model.safetensors`, looked up by name with an optional `bert.` prefix.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn load(path: &Path) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| EmbedError::Weights { path: path.to_path_buf(), message: e.to_string() })?;
        // A checkpoint of `BertModel` has bare names; one of a task model (`BertForMaskedLM`, ...) prefixes `bert.`.
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") { "" } else { "bert." };
        Ok(Weights { path: path.to_path_buf(), tensors, prefix })
    }

    fn error(&self, message: String) -> EmbedError {
        EmbedError::Weights { path: self.path.clone(), message }
    }

    /// The tensor `name` (trying each alternative spelling in turn) as `f32`, checked against `shape`.
    fn get(&self, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        let found = names.iter().find_map(|n| self.tensors.get(&format!("{}{n}", self.prefix)));
        let Some(t) = found else {
            return Err(self.error(format!("no tensor {}{}", self.prefix, names[0])));
        };
        if t.dims() != shape {
            return Err(self.error(format!(
                "tensor {}{} has shape {:?}, expected {shape:?}",
                self.prefix,
                names[0],
                t.dims()
            )));
        }
        t.to_dtype(DType::F32).map_err(|e| self.error(format!("tensor {}{}: {e}", self.prefix, names[0])))
    }

    fn dense(&self, name: &str, inputs: usize, outputs: usize) -> Result<Dense> {
        let w = self.get(&[&format!("{name}.weight")], &[outputs, inputs])?;
        let b = self.get(&[&format!("{name}.bias")], &[outputs])?;
        Dense::new(&w, &b).map_err(|e| self.error(format!("{name}: {e}")))
    }

    fn norm(&self, name: &str, size: usize, eps: f64) -> Result<Norm> {
        // Old TensorFlow-converted checkpoints call the scale and shift gamma and beta.
        let gamma = self.get(&[&format!("{name}.weight"), &format!("{name}.gamma")], &[size])?;
        let beta = self.get(&[&format!("{name}.bias"), &format!("{name}.beta")], &[size])?;
        let vec = |t: Tensor| t.to_vec1::<f32>().map_err(|e| self.error(format!("{name}: {e}")));
        Ok(Norm { gamma: vec(gamma)?, beta: vec(beta)?, eps: eps as f32 })
    }
}

/// A projection `x·Wᵀ` (one GEMM, `Wᵀ` stored contiguous as `(inputs, outputs)`); its bias is added by the fused
/// op that follows.
#[derive(Debug)]
struct Dense {
    weight_t: Tensor,
    bias: Vec<f32>,
}

impl Dense {
    fn new(weight: &Tensor, bias: &Tensor) -> candle_core::Result<Self> {
        Ok(Dense { weight_t: weight.t()?.contiguous()?, bias: bias.to_vec1()? })
    }

    /// `x`: `(n, inputs)` → `(n, outputs)`, without the bias.
    fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight_t)
    }
}

#[derive(Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// `LayerNorm(x + bias + residual)`.
    fn apply(&self, x: &Tensor, bias: &[f32], residual: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op2_no_bwd(residual, &BiasResidualNorm { bias, gamma: &self.gamma, beta: &self.beta, eps: self.eps })
    }
}

#[derive(Debug)]
struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    ffn_in: Dense,
    ffn_out: Dense,
    ffn_norm: Norm,
}

/// A loaded BERT encoder.
#[derive(Debug)]
pub struct Bert {
    config: BertConfig,
    word_embeddings: Tensor,
    /// `position_embeddings + token_type_embeddings[0]`, `(max_positions, hidden)`.
    position_and_type: Tensor,
    embed_norm: Norm,
    /// Zeros: the embedding sum has no bias of its own.
    zero_bias: Vec<f32>,
    layers: Vec<Layer>,
}

impl Bert {
    /// Loads the weights of `path` for the architecture `config`.
    pub fn load(path: &Path, config: &BertConfig) -> Result<Self> {
        let w = Weights::load(path)?;
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let wrap = |name: &str| {
            let path = path.to_path_buf();
            let name = name.to_string();
            move |e: candle_core::Error| EmbedError::Weights { path, message: format!("{name}: {e}") }
        };

        let word_embeddings = w.get(&["embeddings.word_embeddings.weight"], &[config.vocab_size, h])?;
        let positions = w.get(&["embeddings.position_embeddings.weight"], &[config.max_position_embeddings, h])?;
        let types = w.get(&["embeddings.token_type_embeddings.weight"], &[config.type_vocab_size, h])?;
        let position_and_type = positions
            .broadcast_add(&types.narrow(0, 0, 1).map_err(wrap("token_type_embeddings"))?)
            .map_err(wrap("position_embeddings"))?;
        let embed_norm = w.norm("embeddings.LayerNorm", h, eps)?;

        let head_dim = h / config.num_attention_heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let get_wb = |part: &str| -> Result<(Tensor, Tensor)> {
                let name = format!("{p}.attention.self.{part}");
                Ok((w.get(&[&format!("{name}.weight")], &[h, h])?, w.get(&[&format!("{name}.bias")], &[h])?))
            };
            let (wq, bq) = get_wb("query")?;
            let (wk, bk) = get_wb("key")?;
            let (wv, bv) = get_wb("value")?;
            let fuse = || -> candle_core::Result<Dense> {
                let wq = (wq * scale)?;
                let bq = (bq * scale)?;
                let weight = Tensor::cat(&[&wq, &wk, &wv], 0)?;
                let bias = Tensor::cat(&[&bq, &bk, &bv], 0)?;
                Dense::new(&weight, &bias)
            };
            layers.push(Layer {
                qkv: fuse().map_err(wrap(&format!("{p}.attention.self")))?,
                attn_out: w.dense(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                ffn_in: w.dense(&format!("{p}.intermediate.dense"), h, config.intermediate_size)?,
                ffn_out: w.dense(&format!("{p}.output.dense"), config.intermediate_size, h)?,
                ffn_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            config: config.clone(),
            word_embeddings,
            position_and_type,
            embed_norm,
            zero_bias: vec![0.0; h],
            layers,
        })
    }

    /// Runs the encoder over a batch of texts given packed: `ids` holds every text's token ids one after another
    /// (no padding), `lengths[i]` the number of tokens of text `i`. Returns the last hidden states packed the same
    /// way, `ids.len() · hidden` floats.
    ///
    /// Only attention needs the texts side by side (padded to the longest, the padding masked out); every
    /// projection runs on the packed rows, so padding costs no matrix-product work there.
    pub fn forward(&self, ids: &[u32], lengths: &[usize]) -> Result<Vec<f32>> {
        let seq = lengths.iter().copied().max().unwrap_or(0);
        if lengths.is_empty() || seq == 0 {
            return Ok(Vec::new());
        }
        if ids.len() != lengths.iter().sum::<usize>() || seq > self.config.max_position_embeddings {
            return Err(EmbedError::Inference(format!(
                "bad batch: {} ids for lengths {lengths:?} (max {})",
                ids.len(),
                self.config.max_position_embeddings
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(EmbedError::Inference(format!("token id {bad} ≥ vocab_size {}", self.config.vocab_size)));
        }
        self.forward_inner(ids, lengths, seq).map_err(infer)
    }

    fn forward_inner(&self, ids: &[u32], lengths: &[usize], seq: usize) -> candle_core::Result<Vec<f32>> {
        let tokens = ids.len();
        let heads = self.config.num_attention_heads;
        let dev = Device::Cpu;

        let positions: Vec<u32> = lengths.iter().flat_map(|&l| 0..l as u32).collect();
        let words = self.word_embeddings.index_select(&Tensor::from_slice(ids, (tokens,), &dev)?, 0)?;
        let positions = self.position_and_type.index_select(&Tensor::from_vec(positions, (tokens,), &dev)?, 0)?;
        let mut x = self.embed_norm.apply(&words, &self.zero_bias, &positions)?;

        for layer in &self.layers {
            // Self-attention, texts side by side; padding keys are masked inside the softmax.
            let split = QkvSplit { bias: &layer.qkv.bias, lengths, seq, heads };
            let qkv = layer.qkv.matmul(&x)?.apply_op1_no_bwd(&split)?; // (3, b, heads, s, d), q already scaled
            let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            let probs = q.matmul(&k.t()?)?.apply_op1_no_bwd(&MaskedSoftmax { lengths })?;
            let ctx = probs.matmul(&v)?.apply_op1_no_bwd(&MergeHeads { lengths })?; // (tokens, hidden)
            x = layer.attn_norm.apply(&layer.attn_out.matmul(&ctx)?, &layer.attn_out.bias, &x)?;

            // Feed-forward.
            let inner = layer
                .ffn_in
                .matmul(&x)?
                .apply_op1_no_bwd(&BiasAct { bias: &layer.ffn_in.bias, act: self.config.hidden_act })?;
            x = layer.ffn_norm.apply(&layer.ffn_out.matmul(&inner)?, &layer.ffn_out.bias, &x)?;
        }
        x.flatten_all()?.to_vec1::<f32>()
    }

    /// The width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }
}
