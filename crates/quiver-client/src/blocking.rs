//! The same client for code without an async runtime (scripts, command-line tools): every method of
//! [`crate::Client`] with the same arguments, returning when the reply is in.
//!
//! It owns a one-thread Tokio runtime that drives its connections. Do not call it from inside an async runtime
//! (Tokio refuses to block a runtime thread and panics): there, use [`crate::Client`].

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, wire};

/// A blocking client; cheap to clone, usable from many threads at once.
#[derive(Debug, Clone)]
pub struct Client {
    inner: crate::Client,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// A client for `url` (see [`crate::Client::new`]).
    pub fn new(url: &str) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("quiver-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Local(format!("starting the client's runtime: {e}")))?;
        let inner = {
            let _guard = rt.enter();
            crate::Client::new(url)?
        };
        Ok(Client { inner, rt: Arc::new(rt) })
    }

    /// Sends `key` as the `api-key` header (see [`crate::Client::with_api_key`]).
    pub fn with_api_key(self, key: Option<&str>) -> Result<Client> {
        Ok(Client { inner: self.inner.with_api_key(key)?, rt: self.rt })
    }

    /// Limits each request (see [`crate::Client::with_timeout`]).
    pub fn with_timeout(self, timeout: Option<Duration>) -> Client {
        Client { inner: self.inner.with_timeout(timeout), rt: self.rt }
    }

    /// The async client underneath (sharing the connection pool).
    pub fn inner(&self) -> &crate::Client {
        &self.inner
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        self.inner.url()
    }

    pub(crate) fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// `GET /`: the server's name and versions.
    pub fn version(&self) -> Result<wire::VersionInfo> {
        self.block_on(self.inner.version())
    }

    /// `GET /readyz` (see [`crate::Client::ready`]).
    pub fn ready(&self) -> Result<bool> {
        self.block_on(self.inner.ready())
    }

    /// `GET path` → the reply's `result`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.block_on(self.inner.get(path))
    }

    /// `DELETE path` → the reply's `result`.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.block_on(self.inner.delete(path))
    }

    /// `method path` with `body` as JSON → the reply's `result`.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.block_on(self.inner.send_json(method, path, body))
    }

    /// Streams snapshot `snapshot` of `collection` into `out`; returns the bytes written.
    pub fn download_snapshot(&self, collection: &str, snapshot: &str, out: &mut impl Write) -> Result<u64> {
        let mut dl = self.block_on(self.inner.download_snapshot(collection, snapshot))?;
        while let Some(chunk) = self.block_on(dl.chunk())? {
            out.write_all(&chunk).map_err(|e| Error::Local(format!("writing the snapshot: {e}")))?;
        }
        Ok(dl.received())
    }

    /// Uploads the archive at `file` and restores the collection from it (see
    /// [`crate::Client::upload_snapshot`]).
    pub fn upload_snapshot(&self, collection: &str, file: &Path) -> Result<Option<wire::SnapshotDescription>> {
        self.block_on(self.inner.upload_snapshot(collection, file))
    }
}
