//! OpenAI's embeddings API (`POST /v1/embeddings`, `GET /v1/models`), as the server answers it, so that any tool
//! written for OpenAI-compatible embeddings can use QuiverDB's models.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Most texts in one `POST /v1/embeddings` (OpenAI's own limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsRequest {
    /// The text, or texts (1..=2048), to embed. Arrays of token ids are refused: the server tokenizes.
    pub input: EmbeddingInput,
    /// An installed model: `all-MiniLM-L6-v2`, `sentence-transformers/all-MiniLM-L6-v2`, `all-mpnet-base-v2`, …
    /// (`GET /v1/models` lists them).
    pub model: String,
    /// `float` (default): arrays of numbers; `base64`: each vector's little-endian `float32` bytes in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    /// Accepted only when equal to the model's dimension (these models are not trained to be shortened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
    /// Accepted for compatibility, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One text or several.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// `"a text"`
    One(String),
    /// `["a text", "another"]`
    Many(Vec<String>),
}

impl EmbeddingInput {
    /// The texts, in order.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            EmbeddingInput::One(s) => vec![s.as_str()],
            EmbeddingInput::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A JSON value's kind, for messages ("expected a string, got a number").
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // By hand, so that token-id input gets a message saying why instead of "did not match any variant".
        match Value::deserialize(d)? {
            Value::String(s) => Ok(EmbeddingInput::One(s)),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s),
                    Value::Number(_) | Value::Array(_) => Err(D::Error::custom(format!(
                        "input[{i}] is {}: token ids are not accepted (this server tokenizes with the model's own \
                         tokenizer); send the text as a string",
                        json_kind(&item)
                    ))),
                    other => Err(D::Error::custom(format!("input[{i}]: expected a string, got {}", json_kind(&other)))),
                })
                .collect::<Result<_, _>>()
                .map(EmbeddingInput::Many),
            other => {
                Err(D::Error::custom(format!("expected a string or an array of strings, got {}", json_kind(&other))))
            }
        }
    }
}

/// How vectors are written in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// Arrays of numbers.
    Float,
    /// Little-endian `float32` bytes, base64 (what OpenAI's Python client asks for by default).
    Base64,
}

/// The answer to `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingsResponse {
    /// Always `list`.
    pub object: String,
    /// One entry per input text, in input order.
    pub data: Vec<EmbeddingData>,
    /// The model, as asked for.
    pub model: String,
    /// Tokens read.
    pub usage: EmbeddingUsage,
}

/// One vector.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingData {
    /// Always `embedding`.
    pub object: String,
    /// The input's position.
    pub index: usize,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// A vector as numbers or as base64 of its little-endian `float32` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: float`.
    Float(Vec<f32>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// Tokens read (special tokens included, after truncation to the model's maximum).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens of all inputs.
    pub prompt_tokens: usize,
    /// The same (embeddings produce no tokens).
    pub total_tokens: usize,
}

/// The answer to `GET /v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models this server can run.
    pub data: Vec<ModelInfo>,
}

/// One installed model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// Its name, as `model` takes it.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Always 0 (unknown).
    pub created: u64,
    /// Always `quiver`.
    pub owned_by: String,
}

/// An error of the `/v1` routes, in OpenAI's shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiErrorBody {
    /// The error.
    pub error: OpenAiError,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiError {
    /// For people.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `not_found_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// `model_not_found` when the model is not installed.
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_takes_strings_and_explains_token_ids() {
        let one: EmbeddingsRequest = serde_json::from_str(r#"{"input": "hi", "model": "m"}"#).unwrap();
        assert_eq!(one.input, EmbeddingInput::One("hi".into()));
        let many: EmbeddingsRequest = serde_json::from_str(r#"{"input": ["a", ""], "model": "m"}"#).unwrap();
        assert_eq!(many.input.texts(), vec!["a", ""]);
        let ids = serde_json::from_str::<EmbeddingsRequest>(r#"{"input": [[1, 2]], "model": "m"}"#).unwrap_err();
        assert!(ids.to_string().contains("token ids are not accepted"), "{ids}");
        let flat = serde_json::from_str::<EmbeddingsRequest>(r#"{"input": [1, 2], "model": "m"}"#).unwrap_err();
        assert!(flat.to_string().contains("input[0] is a number"), "{flat}");
        let obj = serde_json::from_str::<EmbeddingsRequest>(r#"{"input": {}, "model": "m"}"#).unwrap_err();
        assert!(obj.to_string().contains("got an object"), "{obj}");
        let fmt = serde_json::from_str::<EmbeddingsRequest>(r#"{"input": "a", "model": "m", "encoding_format": "x"}"#)
            .unwrap_err();
        assert!(fmt.to_string().contains("base64"), "{fmt}");
    }
}
