//! The connector contract: what every plugin implements, and what it is given.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Indicator, Record, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::http::HttpClient;
use crate::spec::{ConnectorSpec, TargetSpec};
use crate::values::Values;

/// A connector: a plugin type such as `trend_vision_one` or `http_feed`.
///
/// Implementations are stateless: everything about one configured instance arrives in the
/// [`Context`]. The rules every connector follows are in `docs/connector-spec.md`.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The connector's self-description.
    fn spec(&self) -> &ConnectorSpec;

    /// Checks the configuration against the live API ("Test connection"); returns a short
    /// confirmation such as "Listed 1 suspicious object".
    ///
    /// # Errors
    /// What failed, in words a user can act on.
    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError>;

    /// Pulls indicators newer than `checkpoint` (or, when `None`, from the initial range) as a
    /// stream of batches, each carrying the checkpoint to resume after it. Batches carry
    /// records, except possibly a last one that only advances the checkpoint.
    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<serde_json::Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        let _ = (ctx, checkpoint);
        Box::pin(futures::stream::once(async {
            Err(ConnectorError::unsupported("pulling"))
        }))
    }

    /// The targets this configuration offers (by default the spec's).
    ///
    /// # Errors
    /// When the targets depend on the live API and it fails.
    async fn targets(&self, ctx: &Context) -> Result<Vec<TargetSpec>, ConnectorError> {
        let _ = ctx;
        Ok(self.spec().targets.clone())
    }

    /// Pushes items to a target; returns one result per item, in order. An incremental target
    /// gets batches within its declared size and byte budget; a full-state target gets its whole
    /// set in one call.
    ///
    /// # Errors
    /// Only for failures of the whole call (authentication, the API unreachable after retries);
    /// a bad item is a [`ItemOutcome::Failed`] result, never an error for its batch neighbours.
    async fn push(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let _ = (ctx, target, items);
        Err(ConnectorError::unsupported("pushing"))
    }

    /// Removes items this connector pushed earlier; one result per item.
    ///
    /// # Errors
    /// As for [`Connector::push`].
    async fn retract(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let _ = (ctx, target, items);
        Err(ConnectorError::unsupported("retraction"))
    }

    /// Runs a target's deploy step after pushes (for targets that declare one).
    ///
    /// # Errors
    /// When the deploy fails.
    async fn deploy(&self, ctx: &Context, target: &TargetCall) -> Result<(), ConnectorError> {
        let _ = (ctx, target);
        Ok(())
    }
}

/// Everything a connector gets about one configured instance and one run.
#[derive(Clone)]
pub struct Context {
    /// The configuration's name.
    pub configuration: String,
    /// The validated field values, secrets included.
    pub values: Values,
    /// The platform settings.
    pub settings: Settings,
    /// The HTTP client built from the settings (timeouts, retries, proxy, TLS, redaction).
    pub http: HttpClient,
    /// The run's log.
    pub log: Arc<dyn LogSink>,
    /// When the last successful pull ended (`None` before the first).
    pub last_success: Option<Timestamp>,
    /// Cancelled when the run must stop (shutdown, a lost lease).
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("configuration", &self.configuration)
            .field("values", &self.values)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The provenance marker iocx puts on what it pushes from this configuration, so a pull
    /// from the same tool recognises its own echo.
    pub fn marker(&self) -> String {
        format!("{MARKER_PREFIX} | {}", self.configuration)
    }

    /// The start of the initial pull range: now minus "initial range (days)".
    pub fn initial_start(&self) -> Timestamp {
        Timestamp::now().plus_days(-self.settings.initial_range_days)
    }

    /// Logs at info level (to the run log and the process log).
    pub fn info(&self, message: impl Into<String>) {
        self.log
            .log(LogLevel::Info, &self.http.redact(&message.into()));
    }

    /// Logs at warning level.
    pub fn warn(&self, message: impl Into<String>) {
        self.log
            .log(LogLevel::Warn, &self.http.redact(&message.into()));
    }
}

/// The text that marks what iocx pushed. Connectors put [`Context::marker`] in a description,
/// tag or source field, and treat pulled items containing this prefix as echoes.
pub const MARKER_PREFIX: &str = "Shared by iocx";

/// Whether text carries iocx's provenance marker.
pub fn is_echo(text: &str) -> bool {
    text.contains(MARKER_PREFIX)
}

/// The platform's settings of a configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// How often it pulls.
    pub interval: Duration,
    /// Days back the first pull starts.
    pub initial_range_days: i64,
    /// Whether it pulls at all.
    pub polling: bool,
    /// Whether TLS certificates are verified.
    pub verify_tls: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca_bundle: Option<String>,
    /// An HTTP(S) proxy URL.
    pub proxy: Option<String>,
    /// The timeout of one request.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            interval: Duration::from_secs(300),
            initial_range_days: 7,
            polling: true,
            verify_tls: true,
            ca_bundle: None,
            proxy: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where a run's log lines go.
pub trait LogSink: Send + Sync {
    /// Appends a line.
    fn log(&self, level: LogLevel, message: &str);
}

/// A log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Progress.
    Info,
    /// Something skipped or retried.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// A log sink that only writes to the process log.
#[derive(Debug, Default)]
pub struct TracingLog;

impl LogSink for TracingLog {
    fn log(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Info => tracing::info!("{message}"),
            LogLevel::Warn => tracing::warn!("{message}"),
            LogLevel::Error => tracing::error!("{message}"),
        }
    }
}

/// One batch of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullBatch {
    /// The records (set `Record::echo` on iocx's own pushes coming back).
    pub records: Vec<Record>,
    /// Where to resume after this batch.
    pub checkpoint: serde_json::Value,
    /// For full-snapshot sources: this batch ends a complete snapshot, so this source's
    /// observations not seen in it may be retired.
    pub snapshot_complete: bool,
    /// Items of this batch's part of the source that did not become records, by reason
    /// (`bad_ipv4`, `public_suffix`, …), for the run's counts.
    pub rejected: std::collections::BTreeMap<String, u64>,
}

/// Which target a push goes to, with the sharing's parameters.
#[derive(Debug, Clone)]
pub struct TargetCall {
    /// The target's name.
    pub target: String,
    /// The target's parameters, validated against its fields.
    pub params: Values,
    /// The sharing's name (for markers and logs).
    pub sharing: String,
    /// The batch's id: the same when a batch is sent again after an interrupted run, so a
    /// destination that supports idempotency keys can drop the repeat.
    pub batch: Option<String>,
}

/// What a destination is sent about one indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushItem {
    /// The indicator.
    pub indicator: Indicator,
    /// Aggregate severity.
    pub severity: Severity,
    /// Aggregate reputation (1 malicious … 10 good).
    pub reputation: u8,
    /// Tags.
    pub tags: Vec<String>,
    /// A comment (the first source's that has one).
    pub comment: Option<String>,
    /// When it expires (`None`: never).
    pub expires: Option<Timestamp>,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Total hits.
    pub hits: u64,
    /// The sources that report it.
    pub sources: Vec<String>,
    /// Whether it is safe.
    pub safe: bool,
}

/// The result of pushing (or retracting) one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum ItemOutcome {
    /// Delivered.
    Shared,
    /// Refused or lost; worth retrying.
    Failed(String),
    /// Not sent, for a reason retrying will not change (kind not supported, value too long,
    /// capacity reached…).
    Skipped(String),
}

/// Why a connector call failed as a whole.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What failed, secrets redacted.
    pub message: String,
}

/// Kinds of [`ConnectorError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Credentials refused.
    Auth,
    /// The configuration is wrong (bad URL, missing value).
    Config,
    /// The remote answered with an error status.
    Status(u16),
    /// No connection, a timeout, or a dropped connection, after retries.
    Network,
    /// The remote answered something that does not follow its API.
    Protocol,
    /// The run was cancelled.
    Cancelled,
    /// The connector cannot do this.
    Unsupported,
}

impl ConnectorError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            kind,
            message: message.into(),
        }
    }

    /// A configuration error.
    pub fn config(message: impl Into<String>) -> ConnectorError {
        ConnectorError::new(ErrorKind::Config, message)
    }

    /// A protocol error.
    pub fn protocol(message: impl Into<String>) -> ConnectorError {
        ConnectorError::new(ErrorKind::Protocol, message)
    }

    /// An unsupported operation.
    pub fn unsupported(what: &str) -> ConnectorError {
        ConnectorError::new(
            ErrorKind::Unsupported,
            format!("this connector does not support {what}"),
        )
    }

    /// Whether the whole call may succeed if tried again later.
    pub fn retriable(&self) -> bool {
        match self.kind {
            ErrorKind::Network => true,
            ErrorKind::Status(s) => s == 429 || s >= 500,
            _ => false,
        }
    }
}

/// A pull that reads one page per step: what most vendor APIs are. [`pull_pages`] turns it into
/// the stream [`Connector::pull`] returns.
#[async_trait]
pub trait Pages: Send {
    /// The next batch, or `None` when the pull is over (after a last batch that carries the
    /// final checkpoint).
    ///
    /// # Errors
    /// What failed; the stream ends with it.
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError>;
}

/// The pull stream of a page reader, or of the error that prevented making one.
pub fn pull_pages<'a, P: Pages + 'a>(
    pages: Result<P, ConnectorError>,
) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
    Box::pin(futures::stream::try_unfold(
        Some(pages),
        |state| async move {
            let Some(pages) = state else { return Ok(None) };
            let mut pages = pages?;
            Ok(pages
                .next_batch()
                .await?
                .map(|batch| (batch, Some(Ok(pages)))))
        },
    ))
}

/// The checkpoint a connector stored, or its default before the first pull.
///
/// # Errors
/// When the stored value is not a checkpoint of this connector.
pub fn stored_checkpoint<T: Default + serde::de::DeserializeOwned>(
    connector: &str,
    checkpoint: Option<serde_json::Value>,
) -> Result<T, ConnectorError> {
    match checkpoint {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            ConnectorError::protocol(format!(
                "the stored checkpoint is not a {connector} checkpoint ({e})"
            ))
        }),
    }
}

/// The API base URL of a configuration: the `base_url` field when set (checked to be an http(s)
/// URL with a host), else the URL of the `choice_field` value in `table`
/// (`(choice, label, URL)`).
///
/// # Errors
/// A malformed custom URL, or a choice missing from the table.
pub fn base_url(
    ctx: &Context,
    choice_field: &str,
    table: &[(&str, &str, &str)],
) -> Result<String, ConnectorError> {
    if let Some(url) = ctx.values.text("base_url") {
        return http_url("base_url", url);
    }
    let first = table.first().map_or("", |(c, _, _)| *c);
    let choice = ctx.values.text(choice_field).unwrap_or(first);
    table
        .iter()
        .find(|(c, _, _)| *c == choice)
        .map(|(_, _, u)| (*u).to_string())
        .ok_or_else(|| ConnectorError::config(format!("unknown {choice_field} `{choice}`")))
}

/// `url` checked to be an http(s) URL with a host, without a trailing slash; `field` names it in
/// the error.
///
/// # Errors
/// When it is not such a URL.
pub fn http_url(field: &str, url: &str) -> Result<String, ConnectorError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| ConnectorError::config(format!("{field} `{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConnectorError::config(format!(
            "{field} `{url}` must be an http:// or https:// URL with a host"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}
