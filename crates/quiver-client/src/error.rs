//! What can go wrong talking to a server.

use std::fmt;

/// An error from [`crate::Client`].
#[derive(Debug)]
pub enum Error {
    /// The URL or API key cannot be used (not `http://`, no host, control characters): a usage error.
    Config(String),
    /// No reply: connection refused, reset, name not resolved, timed out.
    Transport {
        /// The request, `METHOD URL`.
        request: String,
        /// What failed.
        cause: String,
    },
    /// The server answered with an error status.
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's message (or the start of its body when it was not the usual error shape).
        message: String,
        /// The request, `METHOD PATH`.
        request: String,
    },
    /// A 2xx reply this client cannot read.
    BadReply {
        /// The request, `METHOD PATH`.
        request: String,
        /// What was wrong with it.
        detail: String,
    },
    /// Reading or writing a local file, or encoding a request body, failed.
    Local(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) | Error::Local(m) => f.write_str(m),
            Error::Transport { request, cause } => write!(f, "{request}: no reply from the server: {cause}"),
            Error::Api { status, message, request } => {
                let reason = http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default();
                write!(f, "{request}: the server answered {status}{reason}: {message}")
            }
            Error::BadReply { request, detail } => write!(f, "{request}: unexpected reply: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Worth retrying: no reply at all, or a status that says "try again" (408, 429, 502, 503, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { status, .. } => matches!(status, 408 | 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The HTTP status of an [`Error::Api`] (`None` for the others).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the server (no such collection, point or snapshot).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Result alias for the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;
