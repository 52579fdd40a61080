//! The HTTP client every connector uses.
//!
//! One place decides timeouts, retries, `Retry-After`, proxies, TLS and the user agent, so
//! every connector behaves the same way under a slow, failing or rate-limiting API:
//!
//! - connect and request timeouts from the configuration;
//! - retries with exponential backoff and full jitter on connection errors, timeouts, and the
//!   statuses a [`RetryPolicy`] calls retriable (by default 429, 500, 502, 503, 504);
//! - `Retry-After` honoured on 429 and 503, as seconds or an HTTP date, capped;
//! - a `iocx/<version>` user agent;
//! - a proxy, extra CA certificates and TLS verification from the configuration;
//! - every secret of the configuration redacted from error messages and logs.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use tokio_util::sync::CancellationToken;

use crate::connector::{ConnectorError, ErrorKind, Settings};

/// The user agent iocx sends.
pub const USER_AGENT: &str = concat!("iocx/", env!("CARGO_PKG_VERSION"));

/// When to retry, with how long to wait.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// The first backoff.
    pub base: Duration,
    /// The longest backoff, and the cap on `Retry-After`.
    pub max_wait: Duration,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            attempts: 6,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// What a protocol considers worth retrying. Connectors whose API signals transient failures
/// differently implement their own beside their code.
pub trait RetryPolicy: Send + Sync {
    /// Whether a response with `status` should be retried.
    fn retry_status(&self, status: StatusCode) -> bool {
        matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
    }
}

/// The default policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRetry;

impl RetryPolicy for DefaultRetry {}

/// The shared HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    retry: RetryConfig,
    redactions: Arc<Vec<String>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client for `settings`, redacting `secrets` from every message.
    ///
    /// # Errors
    /// When the proxy URL or CA bundle is unusable.
    pub fn new(
        settings: &Settings,
        secrets: Vec<String>,
        cancel: CancellationToken,
    ) -> Result<HttpClient, ConnectorError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.timeout.min(Duration::from_secs(15)))
            .timeout(settings.timeout)
            // A stalled server is caught even by requests that lift the total timeout (a large
            // feed download): no single read may wait longer than the request timeout.
            .read_timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if !settings.verify_tls {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &settings.ca_bundle {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| ConnectorError::config(format!("custom CA bundle: {e}")))?;
            if certs.is_empty() {
                return Err(ConnectorError::config(
                    "custom CA bundle: no certificate in it",
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match &settings.proxy {
            Some(proxy) => {
                let p = reqwest::Proxy::all(proxy)
                    .map_err(|e| ConnectorError::config(format!("proxy {proxy:?}: {e}")))?;
                builder = builder.proxy(p);
            }
            None => builder = builder.no_proxy(),
        }
        let inner = builder
            .build()
            .map_err(|e| ConnectorError::config(format!("HTTP client: {e}")))?;
        let mut redactions: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        redactions.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(HttpClient {
            inner,
            retry: RetryConfig::default(),
            redactions: Arc::new(redactions),
            cancel,
        })
    }

    /// Replaces the retry settings (tests use short waits).
    pub fn with_retry(mut self, retry: RetryConfig) -> HttpClient {
        self.retry = retry;
        self
    }

    /// The underlying client, to build requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.inner
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.redactions.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// Sends the request `build` makes, retrying as the policy allows. `build` is called again
    /// for each attempt. Returns the first response that is not retried (which may be an error
    /// status the caller interprets).
    ///
    /// # Errors
    /// Network failures after the last attempt, or cancellation.
    pub async fn send(
        &self,
        what: &str,
        policy: &dyn RetryPolicy,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            let result = tokio::select! {
                r = build(&self.inner).send() => r,
                _ = self.cancel.cancelled() => {
                    return Err(ConnectorError::new(ErrorKind::Cancelled, format!("{what}: cancelled")));
                }
            };
            let wait = match result {
                Ok(response) => {
                    let status = response.status();
                    if last || !policy.retry_status(status) {
                        return Ok(response);
                    }
                    let hinted = retry_after(&response).map(|d| d.min(self.retry.max_wait));
                    tracing::debug!(what, %status, attempt, "Retrying after an error status");
                    hinted.unwrap_or_else(|| self.backoff(attempt))
                }
                Err(e) => {
                    let message = self.redact(&format!("{what}: {}", error_chain(&e)));
                    if last || !(e.is_connect() || e.is_timeout() || e.is_request() || e.is_body())
                    {
                        return Err(ConnectorError::new(ErrorKind::Network, message));
                    }
                    tracing::debug!(what, attempt, error = %message, "Retrying after a network error");
                    self.backoff(attempt)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => {
                    return Err(ConnectorError::new(ErrorKind::Cancelled, format!("{what}: cancelled")));
                }
            }
        }
    }

    /// Sends and checks the status: a 2xx response comes back, anything else becomes an error
    /// naming the status and the start of the body (401/403 as [`ErrorKind::Auth`]).
    ///
    /// # Errors
    /// As [`HttpClient::send`], plus error statuses.
    pub async fn send_ok(
        &self,
        what: &str,
        policy: &dyn RetryPolicy,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        let response = self.send(what, policy, build).await?;
        self.check(what, response).await
    }

    /// Turns a non-2xx response into an error.
    ///
    /// # Errors
    /// When the status is not a success.
    pub async fn check(&self, what: &str, response: Response) -> Result<Response, ConnectorError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(300).collect();
        let kind = match status.as_u16() {
            401 | 403 => ErrorKind::Auth,
            s => ErrorKind::Status(s),
        };
        Err(ConnectorError::new(
            kind,
            self.redact(&format!("{what}: HTTP {status}: {}", excerpt.trim())),
        ))
    }

    /// Reads a JSON body, naming what was expected when it is not JSON.
    ///
    /// # Errors
    /// When the body cannot be read or parsed.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        response: Response,
    ) -> Result<T, ConnectorError> {
        let bytes = response.bytes().await.map_err(|e| {
            ConnectorError::new(
                ErrorKind::Network,
                self.redact(&format!("{what}: reading the answer: {e}")),
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            let excerpt: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            ConnectorError::protocol(
                self.redact(&format!("{what}: unexpected answer ({e}): {excerpt}")),
            )
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let exp = self
            .retry
            .base
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.retry.max_wait);
        // Full jitter: spread retries of many clients.
        let millis = rand::thread_rng()
            .gen_range(cap.as_millis() as u64 / 2..=cap.as_millis().max(1) as u64);
        Duration::from_millis(millis)
    }
}

/// The wait a `Retry-After` header asks for (on 429 and 503), as seconds or an HTTP date.
pub fn retry_after(response: &Response) -> Option<Duration> {
    if !matches!(response.status().as_u16(), 429 | 503) {
        return None;
    }
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    parse_retry_after(&value, std::time::SystemTime::now())
}

/// Parses a `Retry-After` value relative to `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Splits `items` into consecutive ranges of at most `max_items` items and at most `max_bytes`
/// bytes (by `size`), so requests respect a target's batch size and body budget. An item larger
/// than the budget on its own gets a range of its own; callers skip or fail it.
pub fn chunk_by_budget<T>(
    items: &[T],
    max_items: usize,
    max_bytes: Option<usize>,
    size: impl Fn(&T) -> usize,
) -> Vec<std::ops::Range<usize>> {
    let max_items = max_items.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        let over_bytes = max_bytes.is_some_and(|b| bytes + n > b);
        if i > start && (i - start >= max_items || over_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let items = [10, 10, 10, 50, 10, 10];
        assert_eq!(
            chunk_by_budget(&items, 2, None, |n| *n),
            vec![0..2, 2..4, 4..6]
        );
        assert_eq!(
            chunk_by_budget(&items, 10, Some(30), |n| *n),
            vec![0..3, 3..4, 4..6]
        );
        assert!(chunk_by_budget(&[] as &[usize], 3, None, |n| *n).is_empty());
    }

    #[test]
    fn secrets_are_redacted() {
        let c = HttpClient::new(
            &Settings::default(),
            vec!["tok3n-value".into(), "ab".into()],
            CancellationToken::new(),
        )
        .unwrap();
        assert_eq!(
            c.redact("Bearer tok3n-value failed ab"),
            "Bearer *** failed ab"
        );
    }
}
