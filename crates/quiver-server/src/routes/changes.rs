//! The change feed: every applied operation of a collection, in order, as Server-Sent Events
//! (`GET /collections/{c}/changes`) or WebSocket text messages (`GET /collections/{c}/changes/ws`).
//!
//! Each event carries the operation's sequence number as its id; a client resumes after the last one it saw
//! (`Last-Event-ID`, which browsers' `EventSource` sends on reconnect, or `?after=N`). The engine keeps a
//! byte-bounded window of recent operations (`change_feed_bytes`); resuming from before it is a 410 (or, for a
//! consumer that falls behind mid-stream, a final `error` event) — the client then resyncs with a scroll.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use quiver_engine::ops::Operation;
use quiver_engine::{Change, Collection};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use utoipa::IntoParams;

use super::CollectionPath;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::state::AppState;

/// Operations fetched from the engine at a time.
const FETCH: usize = 256;

/// Query parameters of the change feed.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// Start after this sequence number (`Last-Event-ID` wins when both are given). Default: the latest applied
    /// operation — only changes from now on.
    pub after: Option<u64>,
    /// Include vectors in upsert events (default false).
    pub with_vector: Option<bool>,
    /// Include payloads in upsert events (default true).
    pub with_payload: Option<bool>,
}

/// One item of the stream.
enum Item {
    /// An operation: (sequence number, event name, JSON data).
    Change(u64, &'static str, Value),
    /// The stream ends with this event (name, data).
    End(&'static str, Value),
}

/// Unsubscribes the listener when the stream is dropped.
struct Subscription {
    col: Collection,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.col.unsubscribe(self.id);
    }
}

struct Feed {
    sub: Subscription,
    notify: Arc<Notify>,
    after: u64,
    buf: VecDeque<Change>,
    with_vector: bool,
    with_payload: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

impl Feed {
    fn open(s: &AppState, name: &str, after: Option<u64>, p: &ChangesParams) -> ApiResult<Feed> {
        let col = s.collection(name)?;
        let notify = Arc::new(Notify::new());
        let n = notify.clone();
        let id = col.subscribe(Arc::new(move |_seq| n.notify_one()));
        let sub = Subscription { col, id };
        let after = after.unwrap_or_else(|| sub.col.applied_seq());
        // Check now, so a resume from too long ago is a 410 rather than an event.
        let first = sub.col.changes_since(after, FETCH)?;
        Ok(Feed {
            sub,
            notify,
            after,
            buf: first.into(),
            with_vector: p.with_vector.unwrap_or(false),
            with_payload: p.with_payload.unwrap_or(true),
            shutdown: s.shutdown_signal(),
            done: false,
        })
    }

    async fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        loop {
            if let Some(c) = self.buf.pop_front() {
                self.after = c.seq;
                let (name, data) = describe(&c, self.sub.col.config(), self.with_vector, self.with_payload);
                return Some(Item::Change(c.seq, name, data));
            }
            match self.sub.col.changes_since(self.after, FETCH) {
                Ok(v) if !v.is_empty() => {
                    self.buf = v.into();
                    continue;
                }
                Ok(_) => {}
                Err(quiver_engine::Error::Closed { .. }) => {
                    self.done = true;
                    return Some(Item::End(
                        "closed",
                        json!({"reason": "the collection was closed, dropped or restored"}),
                    ));
                }
                Err(e) => {
                    self.done = true;
                    let gone = matches!(e, quiver_engine::Error::ChangesGone { .. });
                    return Some(Item::End(
                        "error",
                        json!({"error": e.to_string(), "resync": gone, "after": self.after}),
                    ));
                }
            }
            if *self.shutdown.borrow() {
                self.done = true;
                return Some(Item::End("closed", json!({"reason": "the server is shutting down"})));
            }
            tokio::select! {
                () = self.notify.notified() => {}
                _ = self.shutdown.changed() => {}
                // A safety net: a missed wake-up costs at most this long.
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// The JSON of one change.
/// A point's vectors in an upsert event: the unnamed vector as an array; named and sparse vectors as an object
/// by name (the unnamed one under `""`), as reads return them.
fn vector_json(cfg: &quiver_engine::CollectionConfig, p: &quiver_engine::ops::PointWrite) -> Value {
    if !cfg.is_named() && cfg.sparse_vectors.is_empty() {
        return json!(p.vector);
    }
    let mut m = serde_json::Map::new();
    // A collection of sparse vectors only has no dense vector to show (its rows keep a placeholder).
    let dense = if cfg.has_dense() { cfg.spaces() } else { Vec::new() };
    for (i, space) in dense.iter().enumerate() {
        let v = if i == 0 { Some(&p.vector) } else { p.more.get(i - 1) };
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(space.name.to_owned(), json!(v));
        }
    }
    for (name, v) in cfg.sparse_vectors.keys().zip(&p.sparse) {
        if !v.is_empty() {
            m.insert(name.clone(), json!({"indices": v.indices, "values": v.values}));
        }
    }
    Value::Object(m)
}

fn describe(
    c: &Change,
    cfg: &quiver_engine::CollectionConfig,
    with_vector: bool,
    with_payload: bool,
) -> (&'static str, Value) {
    match c.op.as_ref() {
        Operation::Upsert(points) => {
            let pts: Vec<Value> = points
                .iter()
                .map(|p| {
                    let mut o = serde_json::Map::new();
                    o.insert("id".into(), json!(p.id));
                    if with_payload {
                        o.insert("payload".into(), Value::Object(p.payload.clone()));
                    }
                    if with_vector {
                        o.insert("vector".into(), vector_json(cfg, p));
                    }
                    if p.expires_ms != 0 {
                        o.insert("expires_ms".into(), json!(p.expires_ms));
                    }
                    Value::Object(o)
                })
                .collect();
            ("upsert", json!({"seq": c.seq, "op": "upsert", "points": pts}))
        }
        Operation::Delete(ids) => ("delete", json!({"seq": c.seq, "op": "delete", "ids": ids})),
        Operation::CreateFieldIndex { key, ty } => {
            ("create_field_index", json!({"seq": c.seq, "op": "create_field_index", "key": key, "type": ty}))
        }
        Operation::DropFieldIndex { key } => {
            ("drop_field_index", json!({"seq": c.seq, "op": "drop_field_index", "key": key}))
        }
    }
}

fn last_event_id(h: &HeaderMap) -> ApiResult<Option<u64>> {
    match h.get("last-event-id") {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().unwrap_or("");
            s.trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid("Last-Event-ID header", "a sequence number", format!("{s:?}")))
        }
    }
}

/// The change feed as Server-Sent Events: `event: upsert|delete|create_field_index|drop_field_index`, `id: <seq>`,
/// `data: {"seq", "op", "points"|"ids"|"key"}`; a final `closed` or `error` event ends it.
#[utoipa::path(get, path = "/collections/{collection_name}/changes", tag = "changes",
    params(CollectionPath, ChangesParams, ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,19}$", description = "resume after this sequence number")),
    responses((status = 200, content_type = "text/event-stream", description = "the stream"),
        (status = 404, body = crate::wire::ErrorBody), (status = 410, body = crate::wire::ErrorBody)))]
pub async fn sse(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(q): ApiQuery<ChangesParams>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = last_event_id(&headers)?.or(q.after);
    let feed = Feed::open(&s, &p.collection_name, after, &q)?;
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        let ev = match item {
            Item::Change(seq, name, data) => Event::default().id(seq.to_string()).event(name).data(data.to_string()),
            Item::End(name, data) => Event::default().event(name).data(data.to_string()),
        };
        Some((Ok(ev), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The change feed over WebSocket: one text message per change, `{"seq", "op", …}` as in the SSE `data`; a final
/// `{"op": "closed"|"error", …}` message, then the socket closes. Resume with `?after=N`.
#[utoipa::path(get, path = "/collections/{collection_name}/changes/ws", tag = "changes",
    params(CollectionPath, ChangesParams),
    responses((status = 101, description = "switching to WebSocket"), (status = 404, body = crate::wire::ErrorBody),
        (status = 410, body = crate::wire::ErrorBody)))]
pub async fn ws(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(q): ApiQuery<ChangesParams>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let feed = match Feed::open(&s, &p.collection_name, q.after, &q) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    upgrade.on_upgrade(move |socket| pump(socket, feed))
}

async fn pump(mut socket: WebSocket, mut feed: Feed) {
    loop {
        tokio::select! {
            item = feed.next() => {
                let Some(item) = item else { break };
                let (text, end) = match item {
                    Item::Change(_, _, data) => (data.to_string(), false),
                    Item::End(name, mut data) => {
                        if let Some(o) = data.as_object_mut() {
                            o.insert("op".into(), json!(name));
                        }
                        (data.to_string(), true)
                    }
                };
                if socket.send(Message::Text(text.into())).await.is_err() || end {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {} // pings are answered by the library; other messages are ignored
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
