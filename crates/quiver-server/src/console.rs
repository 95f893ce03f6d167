//! The web console at `/console`: three static files compiled into the binary (no CDN, nothing fetched at
//! build or run time). The page calls the same REST API as any client, with the API key the user types in
//! (kept in the browser's local storage); the files themselves hold no data and need no key.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// `GET /console`: the page.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /console/` → `/console` (one address for the page).
pub async fn slash() -> Redirect {
    Redirect::permanent("/console")
}

/// `GET /console/{file}`: the script and the style sheet.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    let (body, kind) = match name {
        "index.html" => (INDEX, "text/html; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such console file").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
