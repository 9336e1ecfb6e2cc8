//! The gateway's error type; [`GatewayError::status`] maps each to the HTTP status a client acts on.

use std::sync::Arc;

/// Everything that can go wrong handling a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The request body or a row is malformed; nothing of it was written unless the message says so.
    #[error("{0}")]
    BadRequest(String),
    /// The target table does not exist.
    #[error("table {table} does not exist")]
    UnknownTable {
        /// `db.table`.
        table: String,
    },
    /// A column's type is not supported by the encoders.
    #[error(
        "table {table}: column `{column}` has type {type_text}, which the gateway cannot encode"
    )]
    UnsupportedColumn {
        /// `db.table`.
        table: String,
        /// Column name.
        column: String,
        /// Its type.
        type_text: String,
    },
    /// ClickHouse refused the data itself (type or parse error): retrying would not help.
    #[error("ClickHouse rejected the rows for {table}: {message}")]
    Rejected {
        /// `db.table`.
        table: String,
        /// ClickHouse's message.
        message: String,
    },
    /// ClickHouse could not take the rows now (all retries spent); the client should retry.
    #[error("ClickHouse is unavailable for {table}: {message}")]
    Unavailable {
        /// `db.table`.
        table: String,
        /// The last error.
        message: String,
    },
    /// The gateway is at its memory budget or queue limit.
    #[error("the gateway is overloaded ({0}); retry later")]
    Overloaded(String),
    /// The body is larger than the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The content type or encoding is not supported on this endpoint.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A ClickHouse request (schema lookup, forwarded query) failed.
    #[error("{0}")]
    ClickHouse(Arc<chgate_clickhouse_http::Error>),
    /// No valid tenant token (missing, malformed, unknown, revoked, expired): one message for all.
    #[error("missing or invalid credentials: send Authorization: Bearer <token>")]
    Unauthorized,
    /// The caller may not do this (table outside its grants, system database).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The tenant's rate quota is used up.
    #[error("rate quota exceeded; retry in {retry_after_secs} s")]
    QuotaExceeded {
        /// Seconds until the tenant may send again (`Retry-After`).
        retry_after_secs: u64,
    },
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

impl GatewayError {
    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadRequest(_)
            | GatewayError::Rejected { .. }
            | GatewayError::UnsupportedColumn { .. } => 400,
            GatewayError::UnknownTable { .. } => 404,
            GatewayError::TooLarge { .. } => 413,
            GatewayError::UnsupportedMediaType(_) => 415,
            GatewayError::Overloaded(_) | GatewayError::QuotaExceeded { .. } => 429,
            GatewayError::Unauthorized => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::Unavailable { .. } | GatewayError::ShuttingDown => 503,
            GatewayError::ClickHouse(e) if e.is_unreachable() => 503,
            GatewayError::ClickHouse(_) => 502,
        }
    }
}
