//! [`RemoteEmbedder`]: an [`Embedder`] that asks an OpenAI-compatible embeddings endpoint (OpenAI itself, a local
//! server such as Ollama or vLLM, or another `quiver serve`'s `/v1/embeddings`) instead of running a model here.
//!
//! - Texts go out in batches of at most [`REMOTE_BATCH`], one `POST` each, with `encoding_format: float` (every
//!   compatible server supports it).
//! - Each request has a time limit ([`REMOTE_TIMEOUT`]); a failed connection, a timeout, a 429 or a 5xx is tried
//!   again up to [`REMOTE_ATTEMPTS`] times in all, with growing pauses; any other status fails at once with the
//!   endpoint's message.
//! - The answer is checked: one vector per text, each `index` once, every vector of the dimension the endpoint gave
//!   when the embedder was made, finite numbers only.
//! - The API key comes from an environment variable of this process, named by the collection's config; it is sent
//!   as `Authorization: Bearer …` and never appears in a message.
//!
//! Tokens cannot be counted without the endpoint's tokenizer: [`Embedder::count_tokens`] estimates one token per
//! four bytes (the usual rule for English with BPE vocabularies), which is what the document chunker budgets with.

use std::time::Duration;

use quiver_embed::{EmbedError, Embedder};
use quiver_engine::EmbeddingConfig;
use serde_json::{Value, json};

/// Texts per request.
pub const REMOTE_BATCH: usize = 256;
/// Time limit of one request, connection included.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries of one request before its error is returned.
pub const REMOTE_ATTEMPTS: u32 = 3;
/// Tokens per text the chunker assumes a remote model reads (OpenAI's models read 8,191; most others 512).
pub const REMOTE_MAX_TOKENS: usize = 512;
/// Largest answer read (256 vectors of 3,072 floats as JSON are about 15 MB).
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// An OpenAI-compatible embeddings endpoint behind the [`Embedder`] trait.
pub struct RemoteEmbedder {
    name: String,
    /// The full `…/embeddings` address.
    url: String,
    api_key: Option<String>,
    dim: usize,
    agent: ureq::Agent,
}

impl std::fmt::Debug for RemoteEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("RemoteEmbedder")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("dim", &self.dim)
            .finish()
    }
}

/// The full embeddings address of a configured `url`: itself when it ends in `/embeddings`, else with
/// `/embeddings` added (so OpenAI-style base URLs such as `https://api.openai.com/v1` work as they are).
pub fn embeddings_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with("/embeddings") { trimmed.to_string() } else { format!("{trimmed}/embeddings") }
}

impl RemoteEmbedder {
    /// Connects to the endpoint `config` names: reads the API key from its environment variable and embeds one
    /// short text to learn the model's dimension (so a wrong address, key or model fails here, when a collection
    /// is created, not on its first write).
    pub fn connect(config: &EmbeddingConfig) -> Result<Self, EmbedError> {
        let base = config.url.as_deref().ok_or_else(|| EmbedError::InvalidOption {
            name: "embedding.url",
            value: String::new(),
            reason: "a remote embedder needs an endpoint",
        })?;
        let url = embeddings_url(base);
        let api_key = match &config.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.trim().is_empty() => Some(k.trim().to_string()),
                _ => {
                    return Err(EmbedError::Remote {
                        url,
                        message: format!(
                            "the environment variable {var} (embedding.api_key_env) is not set in the server's \
                             environment"
                        ),
                    });
                }
            },
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(REMOTE_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let mut e = RemoteEmbedder { name: config.model.clone(), url, api_key, dim: 0, agent };
        let probe = e.request(&["dimension probe"])?;
        e.dim = probe.len();
        if e.dim == 0 {
            return Err(e.error("answered an empty vector".to_string()));
        }
        Ok(e)
    }

    /// The full `…/embeddings` address.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, message: String) -> EmbedError {
        EmbedError::Remote { url: self.url.clone(), message }
    }

    /// One request for `texts` (tried again on transient faults); the vectors, flat, in input order.
    fn request(&self, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        let body = json!({"input": texts, "model": self.name, "encoding_format": "float"}).to_string();
        let mut last = String::new();
        for attempt in 0..REMOTE_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << (2 * (attempt - 1))));
            }
            let mut req = self.agent.post(&self.url).header("content-type", "application/json");
            if let Some(k) = &self.api_key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            let mut resp = match req.send(body.as_bytes()) {
                Ok(r) => r,
                Err(e) => {
                    last = format!("request failed: {e}");
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = match resp.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string() {
                Ok(t) => t,
                Err(e) => {
                    last = format!("reading the answer (HTTP {status}) failed: {e}");
                    continue;
                }
            };
            if status == 200 {
                return self.parse(&text, texts.len());
            }
            last = format!("HTTP {status}: {}", error_message(&text));
            if status != 429 && status < 500 {
                break;
            }
        }
        Err(self.error(last))
    }

    /// Checks an answer for `n` texts and flattens its vectors in input order.
    fn parse(&self, text: &str, n: usize) -> Result<Vec<f32>, EmbedError> {
        let v: Value = serde_json::from_str(text).map_err(|e| self.error(format!("answer is not JSON: {e}")))?;
        let data = v["data"].as_array().ok_or_else(|| self.error("answer has no `data` array".to_string()))?;
        if data.len() != n {
            return Err(self.error(format!("asked for {n} vectors, got {}", data.len())));
        }
        let mut rows: Vec<Option<Vec<f32>>> = vec![None; n];
        for (pos, d) in data.iter().enumerate() {
            let index = d["index"].as_u64().map_or(pos, |i| i as usize);
            let vector: Vec<f32> = serde_json::from_value(d["embedding"].clone())
                .map_err(|e| self.error(format!("data[{pos}].embedding is not an array of numbers: {e}")))?;
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(self.error(format!("data[{pos}].embedding holds a non-finite number")));
            }
            let want = if self.dim == 0 { vector.len() } else { self.dim };
            if vector.len() != want {
                return Err(
                    self.error(format!("data[{pos}].embedding has {} dimensions, expected {want}", vector.len()))
                );
            }
            match rows.get_mut(index) {
                Some(slot @ None) => *slot = Some(vector),
                _ => return Err(self.error(format!("data[{pos}].index {index} is out of range or repeated"))),
            }
        }
        let dims: Vec<usize> = rows.iter().flatten().map(Vec::len).collect();
        if dims.windows(2).any(|w| w[0] != w[1]) {
            return Err(self.error("vectors of different dimensions in one answer".to_string()));
        }
        Ok(rows.into_iter().flatten().flatten().collect())
    }
}

/// The message of an error answer: OpenAI's `error.message`, Qdrant-style `status.error`, else the body's start.
fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let found =
        v["error"]["message"].as_str().or_else(|| v["error"].as_str()).or_else(|| v["status"]["error"].as_str());
    match found {
        Some(m) => m.to_string(),
        None => body.chars().take(300).collect(),
    }
}

impl Embedder for RemoteEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn max_tokens(&self) -> usize {
        REMOTE_MAX_TOKENS
    }

    fn count_tokens(&self, text: &str) -> quiver_embed::Result<usize> {
        Ok(text.len().div_ceil(4))
    }

    fn embed_flat(&self, texts: &[&str]) -> quiver_embed::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len() * self.dim);
        for batch in texts.chunks(REMOTE_BATCH) {
            out.extend(self.request(batch)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_the_embeddings_path() {
        assert_eq!(embeddings_url("https://api.openai.com/v1"), "https://api.openai.com/v1/embeddings");
        assert_eq!(embeddings_url("http://127.0.0.1:6333/v1/"), "http://127.0.0.1:6333/v1/embeddings");
        assert_eq!(embeddings_url("http://h/api/embeddings"), "http://h/api/embeddings");
    }

    #[test]
    fn error_messages_are_read_from_either_shape() {
        assert_eq!(error_message(r#"{"error": {"message": "bad key"}}"#), "bad key");
        assert_eq!(error_message(r#"{"status": {"error": "no"}}"#), "no");
        assert_eq!(error_message("plain"), "plain");
    }

    #[test]
    fn a_missing_key_variable_is_named() {
        let cfg = EmbeddingConfig {
            model: "m".into(),
            url: Some("http://127.0.0.1:9/v1".into()),
            api_key_env: Some("QUIVER_TEST_SURELY_UNSET_KEY".into()),
        };
        let e = RemoteEmbedder::connect(&cfg).unwrap_err().to_string();
        assert!(e.contains("QUIVER_TEST_SURELY_UNSET_KEY") && e.contains("not set"), "{e}");
    }

    #[test]
    fn an_unreachable_endpoint_fails_after_its_retries() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let cfg = EmbeddingConfig { model: "m".into(), url: Some("http://127.0.0.1:9/v1".into()), api_key_env: None };
        let e = RemoteEmbedder::connect(&cfg).unwrap_err().to_string();
        assert!(e.contains("http://127.0.0.1:9/v1/embeddings") && e.contains("request failed"), "{e}");
    }
}
