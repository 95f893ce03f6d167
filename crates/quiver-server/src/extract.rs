//! Request extractors and the reply envelope.
//!
//! [`ApiJson`] parses a body with the path of the offending field in its error (`points[3].vector: invalid type:
//! string "x", expected f32`), and maps the body-size limit to 413. [`Reply`] wraps a result in Qdrant's envelope
//! `{"result": …, "status": "ok", "time": <seconds>}`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body of type `T`; errors name the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body of type `T`, or `T::default()` when the body is empty (Qdrant allows `scroll` and `count`
/// without one).
#[derive(Debug)]
pub struct MaybeJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(T::default()));
        }
        parse_json(&bytes).map(MaybeJson)
    }
}

/// Reads the body (JSON content type or none), mapping the size limit to 413.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let ct_ok = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !ct_ok {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json"));
    }
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body too large: {}", e.body_text()))
        } else {
            ApiError::bad_request(format!("could not read the request body: {}", e.body_text()))
        }
    })
}

/// Parses JSON bytes into `T`, naming the path of the first offending field.
///
/// An integer may be written as an integral float (`3.0`, as JSON Schema and many JSON writers allow): when the
/// first parse fails on a float, the body is parsed again with every integral float outside payloads and vectors
/// turned into an integer (payload values are stored exactly as given).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("expected a JSON body, got an empty body"));
    }
    match parse_exact(bytes) {
        Err((e, true)) => {
            let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Err(e) };
            if !integral_floats_to_ints(&mut v) {
                return Err(e);
            }
            serde_path_to_error::deserialize(v).map_err(|e| body_error(e.path().to_string(), e.into_inner()))
        }
        Err((e, false)) => Err(e),
        Ok(t) => Ok(t),
    }
}

/// Turns integral floats into integers, outside `payload`, `payloads`, `metadata`, `vector` and `vectors`;
/// answers whether it changed anything.
fn integral_floats_to_ints(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let exact = f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0;
            if exact {
                *v = if f < 0.0 { Value::from(f as i64) } else { Value::from(f as u64) };
            }
            exact
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| integral_floats_to_ints(x) | c),
        Value::Object(o) => o
            .iter_mut()
            .filter(|(k, _)| !matches!(k.as_str(), "payload" | "payloads" | "metadata" | "vector" | "vectors"))
            .fold(false, |c, (_, x)| integral_floats_to_ints(x) | c),
        _ => false,
    }
}

fn body_error(path: String, inner: impl std::fmt::Display) -> ApiError {
    if path.is_empty() || path == "." {
        ApiError::bad_request(format!("invalid JSON body: {inner}"))
    } else {
        ApiError::bad_request(format!("invalid JSON body at {path}: {inner}"))
    }
}

/// The first parse; the flag says whether the failure was about a float (worth the second parse).
fn parse_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, (ApiError, bool)> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let float = inner.to_string().contains("floating point");
        (body_error(path, inner), float)
    })
}

/// When the handler started (for the envelope's `time`).
#[derive(Debug, Clone, Copy)]
pub struct Started(pub Instant);

impl<S: Send + Sync> FromRequestParts<S> for Started {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Started(Instant::now()))
    }
}

/// A successful reply: `{"result": …, "status": "ok", "time": …}`.
#[derive(Debug)]
pub struct Reply<T>(pub T, pub Started);

#[derive(Serialize)]
struct Envelope<'a, T> {
    result: &'a T,
    status: &'static str,
    time: f64,
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        let env = Envelope { result: &self.0, status: "ok", time: self.1.0.elapsed().as_secs_f64() };
        match serde_json::to_vec(&env) {
            Ok(body) => ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => ApiError::internal(format!("serializing a reply: {e}")).into_response(),
        }
    }
}

/// Query parameters of type `T`; a bad one is a 400 naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request(format!("invalid query string {q:?}: {}", e.body_text())))
    }
}

#[cfg(test)]
mod float_tests {
    use serde::Deserialize;
    use serde_json::Value;

    use super::parse_json;

    #[derive(Debug, Deserialize)]
    struct Body {
        limit: u32,
        ids: Vec<u64>,
        payload: Value,
    }

    #[test]
    fn integral_floats_are_integers_outside_payloads() {
        let b: Body = parse_json(br#"{"limit": 3.0, "ids": [1, 2.0], "payload": {"price": 1.0}}"#)
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!((b.limit, b.ids), (3, vec![1, 2]));
        assert!(b.payload["price"].is_f64(), "payload values are kept as given: {}", b.payload);
        let e = parse_json::<Body>(br#"{"limit": 3.5, "ids": [], "payload": {}}"#).unwrap_err();
        assert!(e.message.contains("limit"), "{}", e.message);
    }
}
