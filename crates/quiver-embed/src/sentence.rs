//! [`SentenceEmbedder`]: a sentence-transformers model directory (BERT encoder + pooling + optional normalisation)
//! behind the [`Embedder`] trait.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::bert::Bert;
use crate::config::{ModelConfig, Pooling};
use crate::error::{EmbedError, Result};
use crate::locate::check_model_dir;
use crate::{EmbedOptions, Embedder};

/// A sentence-transformers BERT-family model loaded from a directory.
#[derive(Debug)]
pub struct SentenceEmbedder {
    name: String,
    config: ModelConfig,
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, for [`Embedder::count_tokens`].
    counter: Tokenizer,
    tokenizer_path: PathBuf,
    bert: Bert,
    batch_size: usize,
    parallel_batches: bool,
}

impl SentenceEmbedder {
    /// Loads the model in `dir` (see [`crate::find_model_dir`] to find one).
    pub fn load(dir: &Path, options: &EmbedOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(EmbedError::InvalidOption {
                name: "batch_size",
                value: "0".to_string(),
                reason: "must be at least 1",
            });
        }
        check_model_dir(dir)?;
        let config = ModelConfig::load(dir)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let tok_err = |message: String| EmbedError::Tokenizer { path: tokenizer_path.clone(), message };
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| tok_err(e.to_string()))?;
        // Padding is done per batch here; truncation is the model's, whatever tokenizer.json says.
        tokenizer.with_padding(None);
        let mut counter = tokenizer.clone();
        counter.with_truncation(None).map_err(|e| tok_err(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| tok_err(e.to_string()))?;
        if let Some(size) = Some(tokenizer.get_vocab_size(true)).filter(|&n| n > config.bert.vocab_size) {
            return Err(tok_err(format!(
                "vocabulary of {size} tokens is larger than the model's vocab_size {}",
                config.bert.vocab_size
            )));
        }

        let mut bert = Bert::load(&dir.join("model.safetensors"), &config.bert)?;
        if options.int8 {
            bert.quantize_int8()?;
        }
        let name = options.name.clone().unwrap_or_else(|| {
            dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
        });
        Ok(SentenceEmbedder {
            name,
            config,
            tokenizer,
            counter,
            tokenizer_path,
            bert,
            batch_size: options.batch_size,
            parallel_batches: options.parallel_batches,
        })
    }

    /// The configuration read from the model directory.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Token ids of `text` as the model sees them: `[CLS] … [SEP]`, truncated to [`Embedder::max_tokens`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = self.tokenize_all(&[text])?;
        Ok(out.pop().unwrap_or_default())
    }

    fn tokenize_all(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let clipped: Vec<Cow<'_, str>> = texts.iter().map(|t| self.clip(t)).collect::<Result<_>>()?;
        let inputs: Vec<&str> = clipped.iter().map(|c| c.as_ref()).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| EmbedError::Tokenizer { path: self.tokenizer_path.clone(), message: e.to_string() })?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// A prefix of `text` that tokenises to the same first `max_tokens` tokens, so a huge text costs no more than
    /// a long one. The cut is made at whitespace (which the BERT pre-tokeniser always splits on) once the prefix
    /// holds enough tokens; a text without whitespace past the cut is kept whole.
    fn clip<'a>(&self, text: &'a str) -> Result<Cow<'a, str>> {
        let budget = self.config.max_tokens;
        let mut cut = budget * 8;
        while cut < text.len() {
            let Some(end) = text[floor_char_boundary(text, cut)..].find(char::is_whitespace) else { break };
            let end = floor_char_boundary(text, cut) + end;
            let prefix = &text[..end];
            let encoding = self
                .tokenizer
                .encode_fast(prefix, false)
                .map_err(|e| EmbedError::Tokenizer { path: self.tokenizer_path.clone(), message: e.to_string() })?;
            // Without special tokens, truncated to `budget`: full means the prefix holds all the tokens kept.
            if encoding.len() >= budget {
                return Ok(Cow::Borrowed(prefix));
            }
            cut = cut.saturating_mul(2);
        }
        Ok(Cow::Borrowed(text))
    }

    /// Embeds `texts` into `out` (`texts.len() · dim` floats, row-major, in input order).
    fn embed_into(&self, texts: &[&str], out: &mut [f32]) -> Result<()> {
        let dim = self.dim();
        debug_assert_eq!(out.len(), texts.len() * dim);
        let ids = self.tokenize_all(texts)?;

        // Longest first, so the first batch shows the peak memory at once; ties keep input order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();

        let run = |batch: &&[usize]| self.embed_batch(&ids, batch);
        let pooled: Vec<Result<Vec<f32>>> = if self.parallel_batches && batches.len() > 1 {
            batches.par_iter().map(run).collect()
        } else {
            batches.iter().map(run).collect()
        };
        for (batch, vectors) in batches.iter().zip(pooled) {
            let vectors = vectors?;
            for (&i, v) in batch.iter().zip(vectors.chunks_exact(dim)) {
                out[i * dim..(i + 1) * dim].copy_from_slice(v);
            }
        }
        Ok(())
    }

    /// One forward pass over the texts `batch` (indexes into `ids`); their pooled vectors.
    fn embed_batch(&self, ids: &[Vec<u32>], batch: &[usize]) -> Result<Vec<f32>> {
        let dim = self.dim();
        let lengths: Vec<usize> = batch.iter().map(|&i| ids[i].len()).collect();
        let packed: Vec<u32> = batch.iter().flat_map(|&i| ids[i].iter().copied()).collect();
        let hidden = self.bert.forward(&packed, &lengths)?;
        let mut out = vec![0f32; batch.len() * dim];
        let mut start = 0;
        for (v, &len) in out.chunks_exact_mut(dim).zip(&lengths) {
            pool(&hidden[start * dim..(start + len) * dim], dim, self.config.pooling, self.config.normalize, v);
            start += len;
        }
        Ok(out)
    }
}

/// Pools the real tokens' vectors (`tokens`, `n · dim`) into `out`, then L2-normalises if asked.
fn pool(tokens: &[f32], dim: usize, pooling: Pooling, normalize: bool, out: &mut [f32]) {
    let n = tokens.len() / dim;
    out.fill(0.0);
    match pooling {
        Pooling::Cls => out.copy_from_slice(&tokens[..dim]),
        Pooling::Mean => {
            for token in tokens.chunks_exact(dim) {
                for (o, t) in out.iter_mut().zip(token) {
                    *o += t;
                }
            }
            let inv = 1.0 / n.max(1) as f32;
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
    if normalize {
        // As torch's F.normalize: divide by max(‖v‖, 1e-12).
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        out.iter_mut().for_each(|o| *o /= norm);
    }
}

/// The largest char boundary ≤ `i` (stable stand-in for `str::floor_char_boundary`).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Embedder for SentenceEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.bert.hidden_size()
    }

    fn max_tokens(&self) -> usize {
        self.config.max_tokens
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        let encoding = self
            .counter
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenizer { path: self.tokenizer_path.clone(), message: e.to_string() })?;
        Ok(encoding.len())
    }

    fn embed_flat(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let mut out = vec![0f32; texts.len() * self.dim()];
        if !texts.is_empty() {
            self.embed_into(texts, &mut out)?;
        }
        Ok(out)
    }
}
