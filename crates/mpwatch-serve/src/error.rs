//! What can go wrong, at start and per request. A request's error becomes a status code
//! and one line; a database error is logged and shown without its details.

use std::net::SocketAddr;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpwatch_store::StoreError;

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened read-only.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound or served.
    #[error("cannot serve on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Beyond loopback, a token is required.
    #[error(
        "serving beyond loopback ({listen}, or a `[serve] base_url` elsewhere) needs `[serve] token` in the secrets file, so that only those who have it can read (make one with: openssl rand -hex 32)"
    )]
    TokenRequired {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The token is too easy to guess or cannot travel in a URL.
    #[error(
        "`[serve] token` in the secrets file must be at least {min} characters of letters, digits, `-`, `_`, `.` or `~` (make one with: openssl rand -hex 32)"
    )]
    WeakToken {
        /// The shortest token accepted.
        min: usize,
    },
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(String),
}

/// Errors of one request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be answered as asked.
    #[error("{0}")]
    BadRequest(String),
    /// The database failed (details are logged, not shown).
    #[error("the database could not be read")]
    Store(#[source] StoreError),
    /// Something else failed (details are logged, not shown).
    #[error("the page could not be made")]
    Internal(String),
}

impl From<StoreError> for RequestError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) | StoreError::Ambiguous(what) => RequestError::NotFound(what),
            other => RequestError::Store(other),
        }
    }
}

impl From<rusqlite::Error> for RequestError {
    fn from(error: rusqlite::Error) -> Self {
        RequestError::Store(StoreError::Sqlite { context: "serving a request".into(), source: error })
    }
}

impl From<mpwatch_index::IndexError> for RequestError {
    fn from(error: mpwatch_index::IndexError) -> Self {
        match error {
            mpwatch_index::IndexError::Store(error) => error.into(),
            other => RequestError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let status = self.status();
        self.log();
        let body = serde_json::json!({ "error": self.to_string(), "status": status.as_u16() });
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

impl RequestError {
    fn status(&self) -> StatusCode {
        match self {
            RequestError::NotFound(_) => StatusCode::NOT_FOUND,
            RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RequestError::Store(error) if error.is_busy() => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::Store(_) | RequestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Failures of the server (not of the request) go to the log with their details;
    /// the answer says only that it failed.
    fn log(&self) {
        match self {
            RequestError::Store(error) => tracing::error!(error = %error, "request failed"),
            RequestError::Internal(error) => tracing::error!(error = %error, "request failed"),
            RequestError::NotFound(_) | RequestError::BadRequest(_) => {}
        }
    }

    /// The error for a page: an HTML page, or the JSON object when JSON was asked for.
    pub fn respond(self, json: bool) -> Response {
        if json {
            return self.into_response();
        }
        self.log();
        crate::pages::error_page(self.status(), &self.to_string())
    }
}
