//! # chgate-clickhouse-http
//!
//! The ClickHouse HTTP client every chgate part shares: one place that knows how to authenticate,
//! send settings, read typed rows (`FORMAT JSONEachRow`), detect the server version and classify
//! errors by ClickHouse's own error code.
//!
//! Main types: [`Client`] (one server), [`ServerVersion`] (feature detection, so we only use what
//! the server has), [`Error`] (with the server's `Code: N` and the host it came from).
//!
//! Data flow: SQL (+ settings) → HTTP POST → body text or rows → caller. Inserts send raw encoded
//! bytes (`Native`, `RowBinary`, ...) as the body with the `INSERT` in the URL.

mod version;

use std::time::Duration;

use bytes::Bytes;
use chgate_topology::Secret;
use serde::de::DeserializeOwned;

pub use version::{Feature, ServerVersion};

/// A ClickHouse error or a transport failure, always naming the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an exception.
    #[error("ClickHouse at {host} failed with code {code}: {message}")]
    Server {
        /// `host:port` of the server.
        host: String,
        /// ClickHouse error code (`Code: N`), 0 when none could be read.
        code: u32,
        /// First line of the server's message.
        message: String,
        /// HTTP status.
        status: u16,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach ClickHouse at {host}: {source}")]
    Transport {
        /// `host:port` of the server.
        host: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The CA certificate for TLS could not be read or parsed.
    #[error("TLS CA certificate {}: {message}", path.display())]
    Tls {
        /// The PEM file.
        path: std::path::PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A row of the answer did not match the expected shape.
    #[error("unexpected answer from ClickHouse at {host}: {reason}")]
    Decode {
        /// `host:port` of the server.
        host: String,
        /// What did not match.
        reason: String,
    },
}

impl Error {
    /// The ClickHouse error code, if the server sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::Server { code, .. } if *code != 0 => Some(*code),
            _ => None,
        }
    }

    /// Whether the server could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }
}

/// Reads `Code: N` from an exception text.
pub fn parse_error_code(body: &str) -> Option<u32> {
    let rest = &body[body.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://127.0.0.1:18121` (https for TLS).
    pub url: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Per-request timeout. Default in [`ClientConfig::new`]: 30 s.
    pub timeout: Duration,
    /// Extra CA certificate (PEM file) trusted for `https` URLs, e.g. the topology's `[tls] ca`.
    /// Default none (the system roots only).
    pub ca_cert: Option<std::path::PathBuf>,
}

impl ClientConfig {
    /// A config with the default timeout.
    pub fn new(url: impl Into<String>, user: impl Into<String>, password: Secret) -> Self {
        ClientConfig {
            url: url.into(),
            user: user.into(),
            password,
            timeout: Duration::from_secs(30),
            ca_cert: None,
        }
    }
}

impl ClientConfig {
    /// The config for one node of a topology: `https` on its `https_port` trusting `[tls] ca`
    /// when the topology has `[tls]`, plain `http` otherwise.
    pub fn for_node(
        t: &chgate_topology::Topology,
        node: &chgate_topology::ClickHouseNode,
        password: Secret,
    ) -> Self {
        let (scheme, port) = match (&t.tls, node.https_port) {
            (Some(_), Some(p)) => ("https", p),
            _ => ("http", node.http_port),
        };
        let mut c = ClientConfig::new(
            format!("{scheme}://{}:{port}", t.network.listen),
            t.clickhouse.user.clone(),
            password,
        );
        c.ca_cert = t.tls.as_ref().map(|tls| tls.ca.clone());
        c
    }
}

/// A client for one ClickHouse server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    cfg: ClientConfig,
    host: String,
}

impl Client {
    /// Builds a client; no request is made.
    ///
    /// # Errors
    /// [`Error::Transport`] when the HTTP client cannot be built (TLS setup).
    pub fn new(cfg: ClientConfig) -> Result<Self, Error> {
        let host = cfg
            .url
            .split("://")
            .nth(1)
            .unwrap_or(&cfg.url)
            .trim_end_matches('/')
            .to_owned();
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &cfg.ca_cert {
            let pem = std::fs::read(path).map_err(|e| Error::Tls {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Tls {
                path: path.clone(),
                message: e.to_string(),
            })?;
            builder = builder.add_root_certificate(ca);
        }
        let http = builder
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| Error::Transport {
                host: host.clone(),
                source,
            })?;
        Ok(Client { http, cfg, host })
    }

    /// `host:port` of this server, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends `sql` (body) with URL `settings`, returns the raw answer.
    ///
    /// # Errors
    /// [`Error::Server`] with the ClickHouse code, or [`Error::Transport`].
    pub async fn query_with(&self, sql: &str, settings: &[(&str, &str)]) -> Result<String, Error> {
        let bytes = self
            .post(settings, Bytes::copy_from_slice(sql.as_bytes()))
            .await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs `sql` and returns the raw answer text.
    ///
    /// # Errors
    /// As [`Client::query_with`].
    pub async fn query(&self, sql: &str) -> Result<String, Error> {
        self.query_with(sql, &[]).await
    }

    /// Runs a statement whose answer is not needed.
    ///
    /// # Errors
    /// As [`Client::query_with`].
    pub async fn execute(&self, sql: &str) -> Result<(), Error> {
        self.query(sql).await.map(drop)
    }

    /// Runs `sql` with `FORMAT JSONEachRow` appended and decodes each row.
    ///
    /// # Errors
    /// As [`Client::query_with`], or [`Error::Decode`] naming the row that did not fit `T`.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, Error> {
        let text = self
            .query_with(
                &format!("{sql} FORMAT JSONEachRow"),
                &[("output_format_json_quote_64bit_integers", "0")],
            )
            .await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| Error::Decode {
                    host: self.host.clone(),
                    reason: format!("row {}: {e}: {line}", i + 1),
                })
            })
            .collect()
    }

    /// Sends an `INSERT ... FORMAT X` (in the URL) with already-encoded rows as the body.
    ///
    /// # Errors
    /// As [`Client::query_with`].
    pub async fn insert(
        &self,
        insert: &str,
        settings: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(), Error> {
        let mut all: Vec<(&str, &str)> = vec![("query", insert)];
        all.extend_from_slice(settings);
        self.post(&all, body).await.map(drop)
    }

    /// `SELECT version()`, parsed.
    ///
    /// # Errors
    /// As [`Client::query_with`], or [`Error::Decode`] for an unparsable version.
    pub async fn version(&self) -> Result<ServerVersion, Error> {
        let text = self.query("SELECT version()").await?;
        ServerVersion::parse(text.trim()).ok_or_else(|| Error::Decode {
            host: self.host.clone(),
            reason: format!("unparsable version {:?}", text.trim()),
        })
    }

    async fn post(&self, params: &[(&str, &str)], body: Bytes) -> Result<Bytes, Error> {
        let transport = |source| Error::Transport {
            host: self.host.clone(),
            source,
        };
        let resp = self
            .http
            .post(&self.cfg.url)
            .query(params)
            .basic_auth(&self.cfg.user, Some(self.cfg.password.expose()))
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let header_code = resp
            .headers()
            .get("X-ClickHouse-Exception-Code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        Err(Error::Server {
            host: self.host.clone(),
            code: header_code.or_else(|| parse_error_code(&text)).unwrap_or(0),
            message: text.lines().next().unwrap_or_default().trim().to_owned(),
            status: status.as_u16(),
        })
    }
}

/// Quotes a string as a ClickHouse SQL literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quotes an identifier with backticks.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('\\', "\\\\").replace('`', "\\`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_read_from_the_exception_text() {
        let body = "Code: 242, e.displayText() = DB::Exception: Table is in readonly mode";
        assert_eq!(parse_error_code(body), Some(242));
        assert_eq!(parse_error_code("no code"), None);
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote("a'b\\c"), "'a\\'b\\\\c'");
        assert_eq!(quote_ident("we`ird"), "`we\\`ird`");
    }

    #[tokio::test]
    async fn unreachable_server_is_a_transport_error_naming_the_host() {
        let cfg = ClientConfig::new("http://127.0.0.1:1", "u", Secret::new("p"));
        let err = Client::new(cfg)
            .expect("client")
            .query("SELECT 1")
            .await
            .expect_err("no server");
        assert!(err.is_unreachable());
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }
}
