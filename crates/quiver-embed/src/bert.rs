//! A BERT encoder (inference only) on candle's CPU backend; MPNet runs through the same code (its layers are
//! BERT's under other names, plus a relative-position bias on the attention scores).
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

use crate::config::{Architecture, BertConfig};
use crate::error::{EmbedError, Result};
use crate::ops::{Attention, BiasAct, BiasResidualNorm};

/// Converts a candle error met while running the model.
fn infer(e: candle_core::Error) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

/// The tensors of `model.safetensors`, looked up by name with an optional `bert.` / `mpnet.` prefix.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn load(path: &Path, architecture: Architecture) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| EmbedError::Weights { path: path.to_path_buf(), message: e.to_string() })?;
        // A checkpoint of `BertModel` has bare names; one of a task model (`BertForMaskedLM`, ...) prefixes `bert.`
        // (`mpnet.` for MPNet).
        let prefix = match architecture {
            _ if tensors.contains_key("embeddings.word_embeddings.weight") => "",
            Architecture::Bert => "bert.",
            Architecture::MpNet { .. } => "mpnet.",
        };
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
    weights: DenseWeights,
    bias: Vec<f32>,
}

/// A projection's weights: f32 (`Wᵀ` contiguous as `(inputs, outputs)`), or int8 when the model was loaded with
/// `EmbedOptions::int8` (the f32 copy is then dropped).
#[derive(Debug)]
enum DenseWeights {
    F32(Tensor),
    Int8(crate::int8::QuantizedMatrix),
}

impl Dense {
    fn new(weight: &Tensor, bias: &Tensor) -> candle_core::Result<Self> {
        Ok(Dense { weights: DenseWeights::F32(weight.t()?.contiguous()?), bias: bias.to_vec1()? })
    }

    /// Quantizes the weights to int8 (per output and group of inputs); later products use them.
    fn quantize(&mut self) -> candle_core::Result<()> {
        if let DenseWeights::F32(weight_t) = &self.weights {
            let (inputs, outputs) = weight_t.dims2()?;
            let w = weight_t.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
            self.weights = DenseWeights::Int8(crate::int8::QuantizedMatrix::new(&w, outputs, inputs));
        }
        Ok(())
    }

    /// `x`: `(n, inputs)` → `(n, outputs)`, without the bias.
    fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weights {
            DenseWeights::F32(weight_t) => x.matmul(weight_t),
            DenseWeights::Int8(q) => {
                let (n, _) = x.dims2()?;
                // Read the activations in place when they are one contiguous f32 run (they are, between layers).
                let out = {
                    let (storage, layout) = x.storage_and_layout();
                    match (&*storage, layout.contiguous_offsets()) {
                        (candle_core::Storage::Cpu(cpu), Some((a, b))) => q.matmul(&cpu.as_slice::<f32>()?[a..b], n),
                        _ => q.matmul(&x.flatten_all()?.to_vec1::<f32>()?, n),
                    }
                };
                let outputs = out.len() / n.max(1);
                Tensor::from_vec(out, (n, outputs), x.device())
            }
        }
    }
}

#[derive(Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// `LayerNorm(x + bias + residual)`, computed in `x`'s storage (`x` must be a tensor of its own, as a
    /// product's output is).
    fn apply(&self, x: Tensor, bias: &[f32], residual: &Tensor) -> candle_core::Result<Tensor> {
        x.inplace_op2(residual, &BiasResidualNorm { bias, gamma: &self.gamma, beta: &self.beta, eps: self.eps })?;
        Ok(x)
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
    /// `position_embeddings + token_type_embeddings[0]` (BERT) or `position_embeddings` (MPNet),
    /// `(max_positions, hidden)`; a text's token `i` reads row `i + config.position_offset()`.
    position_and_type: Tensor,
    /// MPNet's attention bias per relative-position bucket and head.
    relative: Option<RelativeBias>,
    embed_norm: Norm,
    /// Zeros: the embedding sum has no bias of its own.
    zero_bias: Vec<f32>,
    layers: Vec<Layer>,
}

/// MPNet's relative-position attention bias: `weights[bucket · heads + head]` is added to the score of every
/// (query, key) pair whose relative position falls in `bucket`, in every layer.
#[derive(Debug)]
struct RelativeBias {
    buckets: usize,
    heads: usize,
    weights: Vec<f32>,
}

/// The longest distance MPNet's buckets tell apart (`max_distance` in its reference code); farther pairs share the
/// last bucket of their direction.
const MPNET_MAX_DISTANCE: usize = 128;

/// MPNet's bucket of the relative position `key − query`: half the buckets per direction (keys before the query
/// first, then after it); in each half, distances below a quarter of the buckets get a bucket each and longer ones
/// share buckets spaced logarithmically up to [`MPNET_MAX_DISTANCE`]. Computed in `f32` in the reference's order
/// of operations, so distances on a bucket boundary fall on the same side.
pub(crate) fn relative_bucket(relative: i64, buckets: usize) -> usize {
    let half = buckets / 2;
    let n = -relative;
    let base = if n < 0 { half } else { 0 };
    let n = n.unsigned_abs() as usize;
    let exact = half / 2;
    if n < exact {
        return base + n;
    }
    let log_ratio = ((n as f32) / exact as f32).ln() / ((MPNET_MAX_DISTANCE as f64 / exact as f64).ln() as f32);
    let large = exact + (log_ratio * (half - exact) as f32) as usize;
    base + large.min(half - 1)
}

impl RelativeBias {
    /// The bias for texts of up to `seq` tokens, `(heads, seq, seq)`, shared by the texts of a batch.
    fn table(&self, seq: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.heads * seq * seq];
        for q in 0..seq {
            for k in 0..seq {
                let b = relative_bucket(k as i64 - q as i64, self.buckets);
                for h in 0..self.heads {
                    out[(h * seq + q) * seq + k] = self.weights[b * self.heads + h];
                }
            }
        }
        out
    }
}

impl Bert {
    /// Loads the weights of `path` for the architecture `config`.
    pub fn load(path: &Path, config: &BertConfig) -> Result<Self> {
        let w = Weights::load(path, config.architecture)?;
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let wrap = |name: &str| {
            let path = path.to_path_buf();
            let name = name.to_string();
            move |e: candle_core::Error| EmbedError::Weights { path, message: format!("{name}: {e}") }
        };

        let word_embeddings = w.get(&["embeddings.word_embeddings.weight"], &[config.vocab_size, h])?;
        let positions = w.get(&["embeddings.position_embeddings.weight"], &[config.max_position_embeddings, h])?;
        let (position_and_type, relative) = match config.architecture {
            Architecture::Bert => {
                let types = w.get(&["embeddings.token_type_embeddings.weight"], &[config.type_vocab_size, h])?;
                let sum = positions
                    .broadcast_add(&types.narrow(0, 0, 1).map_err(wrap("token_type_embeddings"))?)
                    .map_err(wrap("position_embeddings"))?;
                (sum, None)
            }
            Architecture::MpNet { relative_buckets } => {
                let heads = config.num_attention_heads;
                let bias = w.get(&["encoder.relative_attention_bias.weight"], &[relative_buckets, heads])?;
                let weights = bias.flatten_all().and_then(|t| t.to_vec1()).map_err(wrap("relative_attention_bias"))?;
                (positions, Some(RelativeBias { buckets: relative_buckets, heads, weights }))
            }
        };
        let embed_norm = w.norm("embeddings.LayerNorm", h, eps)?;
        // Where each layer's attention tensors are, by family.
        let (qkv_names, attn_out_name, attn_norm_name) = match config.architecture {
            Architecture::Bert => (["self.query", "self.key", "self.value"], "output.dense", "output.LayerNorm"),
            Architecture::MpNet { .. } => (["attn.q", "attn.k", "attn.v"], "attn.o", "LayerNorm"),
        };

        let head_dim = h / config.num_attention_heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let get_wb = |part: &str| -> Result<(Tensor, Tensor)> {
                let name = format!("{p}.attention.{part}");
                Ok((w.get(&[&format!("{name}.weight")], &[h, h])?, w.get(&[&format!("{name}.bias")], &[h])?))
            };
            let (wq, bq) = get_wb(qkv_names[0])?;
            let (wk, bk) = get_wb(qkv_names[1])?;
            let (wv, bv) = get_wb(qkv_names[2])?;
            let fuse = || -> candle_core::Result<Dense> {
                let wq = (wq * scale)?;
                let bq = (bq * scale)?;
                let weight = Tensor::cat(&[&wq, &wk, &wv], 0)?;
                let bias = Tensor::cat(&[&bq, &bk, &bv], 0)?;
                Dense::new(&weight, &bias)
            };
            layers.push(Layer {
                qkv: fuse().map_err(wrap(&format!("{p}.attention")))?,
                attn_out: w.dense(&format!("{p}.attention.{attn_out_name}"), h, h)?,
                attn_norm: w.norm(&format!("{p}.attention.{attn_norm_name}"), h, eps)?,
                ffn_in: w.dense(&format!("{p}.intermediate.dense"), h, config.intermediate_size)?,
                ffn_out: w.dense(&format!("{p}.output.dense"), config.intermediate_size, h)?,
                ffn_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            config: config.clone(),
            word_embeddings,
            position_and_type,
            relative,
            embed_norm,
            zero_bias: vec![0.0; h],
            layers,
        })
    }

    /// Switches every projection (fused QKV, attention output, both feed-forward layers) to int8 weights and
    /// per-token int8 activations ([`crate::int8`]); attention scores, softmax and the norms stay f32.
    pub fn quantize_int8(&mut self) -> Result<()> {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for d in [&mut layer.qkv, &mut layer.attn_out, &mut layer.ffn_in, &mut layer.ffn_out] {
                d.quantize().map_err(|e| EmbedError::Inference(format!("quantizing layer {i}: {e}")))?;
            }
        }
        Ok(())
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
        if ids.len() != lengths.iter().sum::<usize>() || seq > self.config.max_sequence() {
            return Err(EmbedError::Inference(format!(
                "bad batch: {} ids for lengths {lengths:?} (max {})",
                ids.len(),
                self.config.max_sequence()
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

        let offset = self.config.position_offset() as u32;
        let positions: Vec<u32> = lengths.iter().flat_map(|&l| offset..offset + l as u32).collect();
        let words = self.word_embeddings.index_select(&Tensor::from_slice(ids, (tokens,), &dev)?, 0)?;
        let positions = self.position_and_type.index_select(&Tensor::from_vec(positions, (tokens,), &dev)?, 0)?;
        let mut x = self.embed_norm.apply(words, &self.zero_bias, &positions)?;
        // MPNet: one relative-position bias for every layer.
        let relative = self.relative.as_ref().map(|r| r.table(seq));

        for layer in &self.layers {
            // Self-attention, each text over its own tokens.
            let attention =
                Attention { bias: &layer.qkv.bias, lengths, heads, relative: relative.as_deref().unwrap_or(&[]) };
            let ctx = layer.qkv.matmul(&x)?.apply_op1_no_bwd(&attention)?; // (tokens, hidden)
            x = layer.attn_norm.apply(layer.attn_out.matmul(&ctx)?, &layer.attn_out.bias, &x)?;

            // Feed-forward.
            let inner = layer.ffn_in.matmul(&x)?;
            inner.inplace_op1(&BiasAct { bias: &layer.ffn_in.bias, act: self.config.hidden_act })?;
            x = layer.ffn_norm.apply(layer.ffn_out.matmul(&inner)?, &layer.ffn_out.bias, &x)?;
        }
        x.flatten_all()?.to_vec1::<f32>()
    }

    /// The width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }
}

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn relative_buckets_equal_the_reference_implementation() {
        // transformers' MPNet bucketing, run on every relative position in -520..=520 by testdata/make_reference.py.
        #[derive(serde::Deserialize)]
        struct Buckets {
            relative: Vec<i64>,
            bucket: Vec<usize>,
        }
        #[derive(serde::Deserialize)]
        struct Reference {
            relative_buckets: Buckets,
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/reference_all-mpnet-base-v2.json");
        let r: Reference = serde_json::from_slice(&std::fs::read(path).expect("reference")).expect("JSON");
        let b = r.relative_buckets;
        assert_eq!(b.relative.len(), 1041);
        for (&rel, &want) in b.relative.iter().zip(&b.bucket) {
            assert_eq!(relative_bucket(rel, 32), want, "bucket of relative position {rel}");
        }
    }
}
