//! OpenAI-compatible embeddings: `POST /v1/embeddings` runs an installed model on texts, `GET /v1/models` lists the
//! models, so that tools written for OpenAI's API (its own clients, LangChain, LlamaIndex, another QuiverDB) can use
//! the server's models. Errors on these routes have OpenAI's shape (`{"error": {"message", "type", "param",
//! "code"}}`) since that is what those tools parse.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use quiver_embed::Embedder;
use quiver_engine::EmbeddingConfig;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::{AppState, blocking};
use crate::wire::{
    EmbeddingData, EmbeddingUsage, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EncodingFormat,
    MAX_EMBEDDING_INPUTS, ModelInfo, ModelList, OpenAiError, OpenAiErrorBody,
};

/// An [`ApiError`] answered in OpenAI's error shape.
#[derive(Debug)]
pub struct OpenAiReply {
    error: ApiError,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl From<ApiError> for OpenAiReply {
    fn from(error: ApiError) -> Self {
        OpenAiReply { error, param: None, code: None }
    }
}

impl IntoResponse for OpenAiReply {
    fn into_response(self) -> Response {
        let status = self.error.status;
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        if let Some(detail) = &self.error.detail {
            tracing::error!(status = status.as_u16(), detail = %detail, "request failed");
        }
        let body = OpenAiErrorBody {
            error: OpenAiError {
                message: self.error.message,
                kind: kind.to_string(),
                param: self.param.map(str::to_string),
                code: self.code.map(str::to_string),
            },
        };
        (status, Json(body)).into_response()
    }
}

fn invalid(param: &'static str, expected: impl std::fmt::Display, got: impl std::fmt::Display) -> OpenAiReply {
    OpenAiReply { error: ApiError::invalid(param, expected, got), param: Some(param), code: None }
}

/// Embeds the texts of `input` with the installed model `model` (OpenAI's embeddings API). Vectors come back as
/// numbers, or as base64 of their little-endian `float32` bytes with `encoding_format: base64` (the default of
/// OpenAI's Python client). Token-id input and a `dimensions` other than the model's are refused.
#[utoipa::path(post, path = "/v1/embeddings", tag = "embeddings", request_body = EmbeddingsRequest,
    responses((status = 200, body = EmbeddingsResponse), (status = "4XX", body = OpenAiErrorBody)))]
pub async fn embeddings(
    State(s): State<AppState>,
    body: Result<ApiJson<EmbeddingsRequest>, ApiError>,
) -> Result<Json<EmbeddingsResponse>, OpenAiReply> {
    let ApiJson(req) = body?;
    let count = req.input.texts().len();
    if count == 0 || count > MAX_EMBEDDING_INPUTS {
        return Err(invalid("input", format!("1..={MAX_EMBEDDING_INPUTS} texts"), count));
    }
    if let Err(e) = (EmbeddingConfig { model: req.model.clone(), ..Default::default() }).validate() {
        return Err(OpenAiReply { error: ApiError::from(e), param: Some("model"), code: None });
    }
    let state = s.clone();
    let name = req.model.clone();
    let model = blocking(move || state.embedders().get(&name)).await.map_err(|e| {
        // A model that is not installed is OpenAI's 404 `model_not_found`.
        let missing = e.status == StatusCode::BAD_REQUEST && e.message.contains("not installed");
        if missing {
            OpenAiReply {
                error: ApiError::new(StatusCode::NOT_FOUND, e.message),
                param: Some("model"),
                code: Some("model_not_found"),
            }
        } else {
            OpenAiReply { error: e, param: Some("model"), code: None }
        }
    })?;
    if let Some(d) = req.dimensions.filter(|&d| d != model.dim()) {
        return Err(invalid(
            "dimensions",
            format!("{} (the dimension of {}; it is not trained to make shorter vectors)", model.dim(), req.model),
            d,
        ));
    }
    let format = req.encoding_format.unwrap_or(EncodingFormat::Float);
    let model_name = req.model.clone();
    let input = req.input;
    let (vectors, tokens) = blocking(move || {
        let texts = input.texts();
        let vectors = crate::embedding::embed(model.as_ref(), &texts)?;
        let tokens = texts.iter().map(|t| tokens_read(model.as_ref(), t)).sum::<usize>();
        Ok((vectors, tokens))
    })
    .await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingData {
            object: "embedding".to_string(),
            index,
            embedding: match format {
                EncodingFormat::Float => EmbeddingVector::Float(v),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    Ok(Json(EmbeddingsResponse {
        object: "list".to_string(),
        data,
        model: model_name,
        usage: EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens },
    }))
}

/// Tokens the model reads of `text`: its word pieces plus the two special tokens, at most the model's maximum.
fn tokens_read(model: &dyn Embedder, text: &str) -> usize {
    model.count_tokens(text).map_or(0, |n| (n + 2).min(model.max_tokens()))
}

/// The models `model` may name: every model directory under the models directory and `~/.cache/quiver-models`,
/// and the default model when it is installed.
#[utoipa::path(get, path = "/v1/models", tag = "embeddings",
    responses((status = 200, body = ModelList), (status = "4XX", body = OpenAiErrorBody)))]
pub async fn models(State(s): State<AppState>) -> Result<Json<ModelList>, OpenAiReply> {
    let names = blocking(move || Ok(s.embedders().models().installed())).await?;
    let data = names
        .into_iter()
        .map(|id| ModelInfo { id, object: "model".to_string(), created: 0, owned_by: "quiver".to_string() })
        .collect();
    Ok(Json(ModelList { object: "list".to_string(), data }))
}
