//! `http_feed`: plain-text, CSV, JSON and STIX feeds over HTTP(S) or from a local file.
//!
//! How a pull goes:
//!
//! 1. **Open** ([`client`]): a `GET` with the configured authentication — conditional
//!    (`If-None-Match`, `If-Modified-Since`) when the last pull read the feed to its end, so a
//!    `304 Not Modified` ends the pull at once with no batches — or a local file, whose size and
//!    modification time play the part of the validators. An error status, an HTML page or a
//!    body over the size limit ends the run with an error naming the URL and what came back.
//! 2. **Read** ([`reader`]): the body is bridged into the synchronous feed readers of
//!    `iocx_model::feed` on a blocking thread (`SyncIoBridge`), gunzipped when it starts with
//!    the gzip magic bytes (a `Content-Encoding: gzip` body is decoded by the HTTP client),
//!    checked for being a feed at all (binary data, HTML, more rejections than allowed), mapped
//!    ([`mapping`]) and cut into batches of 10,000 records. Memory stays bounded by a batch or
//!    two whatever the feed's size.
//! 3. **Commit**: every batch carries a [`Checkpoint`] `{etag, last_modified, identity,
//!    position}`. A pull stopped mid-way resumes after the last committed position *if the
//!    content is provably unchanged* (same `ETag`/`Last-Modified`, or for a file the same size
//!    and modification time); otherwise it starts over. The last batch of a read clears the
//!    position, and — for a feed marked as a full snapshot, read completely in one pull — sets
//!    `snapshot_complete`, so the engine retires what this feed no longer lists.
//!
//! Rejected lines never fail a run: they are counted by reason in each batch, and the first few
//! are logged with their position. Only content that is not a feed at all fails it.

mod checkpoint;
mod client;
mod mapping;
mod reader;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use iocx_model::feed::{Column, FeedOptions, Format};
use iocx_model::{Attributes, Kind, ParseOptions, Reputation, Severity, TagSet};
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

pub use checkpoint::Checkpoint;
pub use client::{Auth, Location};
pub use mapping::Mapping;

use crate::spec::{Capabilities, Choice, ConnectorSpec, FieldKind, FieldSpec};
use crate::{Connector, ConnectorError, Context, ErrorKind, PullBatch};

/// The `http_feed` connector.
pub struct HttpFeed;

/// The most a feed may hold by default, in MB (after decompression).
pub const DEFAULT_MAX_MB: i64 = 1024;

/// The share of rejected items, in percent, beyond which content is not taken for a feed.
pub const DEFAULT_MAX_REJECT_PERCENT: i64 = 50;

/// The URL field.
pub(crate) fn url_field() -> FieldSpec {
    FieldSpec::new(
        "url",
        "Feed URL",
        FieldKind::Text {
            max_len: Some(4096),
        },
        "An http:// or https:// URL, or a local file as file:///path or a path. Put API keys in \
         an authentication field rather than the URL: URLs appear in logs (without their query).",
    )
    .required()
}

/// The fields that set the attributes of every record.
pub(crate) fn record_fields() -> Vec<FieldSpec> {
    let mut kinds = vec![Choice::new("auto", "Detect for each value")];
    kinds.extend(
        Kind::ALL
            .iter()
            .map(|k| Choice::new(k.as_str(), k.as_str())),
    );
    vec![
        FieldSpec::new(
            "kind",
            "Indicator kind",
            FieldKind::Choice { choices: kinds },
            "The kind of every value; values of other kinds are rejected. Detect recognises \
             URLs, domains, addresses, networks, hashes and e-mail addresses.",
        )
        .default_value("auto"),
        FieldSpec::new(
            "severity",
            "Default severity",
            FieldKind::choice(&[
                ("unknown", "Unknown"),
                ("low", "Low"),
                ("medium", "Medium"),
                ("high", "High"),
                ("critical", "Critical"),
            ]),
            "For records that carry none.",
        )
        .default_value("unknown"),
        FieldSpec::new(
            "reputation",
            "Default reputation",
            FieldKind::integer(1, 10),
            "1 (malicious) to 10 (good), for records that carry none. Empty: none.",
        ),
        FieldSpec::new(
            "tags",
            "Tags",
            FieldKind::Text {
                max_len: Some(1024),
            },
            "Comma-separated tags added to every record.",
        ),
    ]
}

/// The fields on access and limits: authentication, snapshot, size and reject limits.
pub(crate) fn access_fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new(
            "auth",
            "Authentication",
            FieldKind::choice(&[
                ("none", "None"),
                ("bearer", "Bearer token"),
                ("basic", "User and password"),
                ("header", "A custom header"),
            ]),
            "How requests to the feed authenticate (ignored for local files).",
        )
        .default_value("none"),
        FieldSpec::new(
            "token",
            "Bearer token",
            FieldKind::Secret,
            "Sent as Authorization: Bearer TOKEN.",
        ),
        FieldSpec::new(
            "username",
            "User",
            FieldKind::Text { max_len: Some(256) },
            "For user-and-password authentication.",
        ),
        FieldSpec::new(
            "password",
            "Password",
            FieldKind::Secret,
            "For user-and-password authentication.",
        ),
        FieldSpec::new(
            "header_name",
            "Header name",
            FieldKind::Text { max_len: Some(128) },
            "For a custom header, e.g. X-API-Key or Auth-Key.",
        ),
        FieldSpec::new(
            "header_value",
            "Header value",
            FieldKind::Secret,
            "The custom header's value.",
        ),
        FieldSpec::new(
            "snapshot",
            "Feed is a full snapshot",
            FieldKind::Boolean,
            "The feed lists everything that is current each time: indicators that disappear \
             from it are retired after a complete read.",
        )
        .default_value(false),
        FieldSpec::new(
            "max_size_mb",
            "Maximum size (MB)",
            FieldKind::integer(1, 102_400),
            "A feed larger than this (after decompression) is refused.",
        )
        .default_value(DEFAULT_MAX_MB),
        FieldSpec::new(
            "max_reject_percent",
            "Maximum rejected (%)",
            FieldKind::integer(1, 100),
            "When more of the first 1,000 items than this are not indicators, the content is \
             taken for something other than a feed and the run fails. 100 turns the check off.",
        )
        .default_value(DEFAULT_MAX_REJECT_PERCENT),
    ]
}

fn layout_fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new(
            "preset",
            "Layout preset",
            FieldKind::choice(&[
                ("none", "None: use the format below"),
                ("plain", "One indicator per line"),
                ("abuse_ch_csv", "abuse.ch-style CSV (header in a # comment)"),
                ("json_array", "A JSON array of objects"),
            ]),
            "Sets the format for common public feed layouts.",
        )
        .default_value("none"),
        FieldSpec::new(
            "format",
            "Format",
            FieldKind::choice(&[
                ("auto", "Detect"),
                ("txt", "Text, one indicator per line"),
                ("csv", "CSV"),
                ("json", "JSON array or JSON Lines"),
                ("stix", "STIX 2.1 bundle"),
            ]),
            "The feed's format; Detect looks at the content and the file name.",
        )
        .default_value("auto"),
        FieldSpec::new(
            "value_field",
            "Value column or key",
            FieldKind::Text { max_len: Some(256) },
            "Where the indicator is when the feed does not call it value, indicator, ioc, url, \
             domain, ip, sha256…: a CSV header name or column number (from 1), or a JSON key \
             (a.b for nested objects).",
        ),
        FieldSpec::new(
            "kind_field",
            "Kind column or key",
            FieldKind::Text { max_len: Some(256) },
            "Where each value's kind is, when the feed does not call it type or kind: a CSV \
             header name or a JSON key.",
        ),
    ]
}

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| {
    let mut fields = vec![url_field()];
    fields.extend(layout_fields());
    fields.extend(record_fields());
    fields.extend(access_fields());
    ConnectorSpec {
        name: "http_feed".into(),
        title: "Feed (HTTP or file)".into(),
        description: "Pulls plain-text, CSV, JSON or STIX feeds over HTTP(S) or from a local \
                      file: gzip, conditional requests, resumable pulls, and retirement of \
                      indicators that leave a full-snapshot feed."
            .into(),
        fields,
        capabilities: Capabilities {
            pull: true,
            push: false,
            retract: false,
            sightings: false,
        },
        targets: Vec::new(),
    }
});

/// A feed configuration, read from a [`Context`].
#[derive(Debug, Clone)]
pub struct Feed {
    /// Where it is.
    pub location: Location,
    /// How to authenticate.
    pub auth: Auth,
    /// How to read it.
    pub options: FeedOptions,
    /// Column or key mapping.
    pub mapping: Mapping,
    /// Whether it lists everything current each time.
    pub snapshot: bool,
    /// The most bytes it may hold.
    pub max_bytes: u64,
    /// The most rejections in percent before the content is not taken for a feed.
    pub max_reject_percent: u64,
}

impl Feed {
    /// Reads the configuration; `fixed` forces a format (`stix_file`).
    ///
    /// # Errors
    /// A value that cannot be used, naming its field.
    pub fn from_context(ctx: &Context, fixed: Option<Format>) -> Result<Feed, ConnectorError> {
        let v = &ctx.values;
        let location = Location::parse(
            v.text("url")
                .ok_or_else(|| ConnectorError::config("url: required"))?,
        )?;
        let format = match fixed {
            Some(f) => Some(f),
            None => {
                let preset = match v.text("preset").unwrap_or("none") {
                    "none" => None,
                    "plain" => Some(Format::Txt),
                    "abuse_ch_csv" => Some(Format::Csv),
                    "json_array" => Some(Format::Json),
                    other => {
                        return Err(ConnectorError::config(format!(
                            "preset: unknown preset {other:?}"
                        )));
                    }
                };
                let chosen = match v.text("format").unwrap_or("auto") {
                    "auto" => None,
                    f => Some(
                        f.parse::<Format>()
                            .map_err(|e| ConnectorError::config(format!("format: {e}")))?,
                    ),
                };
                match (preset, chosen) {
                    (Some(p), Some(c)) if p != c => {
                        return Err(ConnectorError::config(format!(
                            "format: the preset reads {p}, the format says {c}; set the \
                             format to auto or the preset to none"
                        )));
                    }
                    (p, c) => c.or(p),
                }
            }
        };
        let kind = match v.text("kind").unwrap_or("auto") {
            "auto" => None,
            k => Some(
                k.parse::<Kind>()
                    .map_err(|e| ConnectorError::config(format!("kind: {e}")))?,
            ),
        };
        let severity = v
            .text("severity")
            .unwrap_or("unknown")
            .parse::<Severity>()
            .map_err(|e| ConnectorError::config(format!("severity: {e}")))?;
        let reputation = match v.integer("reputation") {
            None => None,
            Some(r) => Some(
                u8::try_from(r)
                    .ok()
                    .and_then(Reputation::new)
                    .ok_or_else(|| ConnectorError::config("reputation: must be 1 to 10"))?,
            ),
        };
        let tags = TagSet::from_tags(v.text("tags").unwrap_or("").split(','));
        let mapping = Mapping {
            value: v
                .text("value_field")
                .map(str::parse::<Column>)
                .transpose()
                .map_err(|e| ConnectorError::config(format!("value_field: {e}")))?,
            kind: v
                .text("kind_field")
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
        };
        let auth = match location {
            Location::Http(_) => Auth::from_context(ctx)?,
            Location::File(_) => Auth::None,
        };
        let max_mb = v.integer("max_size_mb").unwrap_or(DEFAULT_MAX_MB).max(1) as u64;
        let max_reject_percent = v
            .integer("max_reject_percent")
            .unwrap_or(DEFAULT_MAX_REJECT_PERCENT)
            .clamp(1, 100) as u64;
        Ok(Feed {
            options: FeedOptions {
                format,
                file_name: location.file_name(),
                kind,
                defaults: Attributes {
                    severity,
                    reputation,
                    tags,
                    ..Attributes::default()
                },
                column: None,
                parse: ParseOptions::default(),
            },
            location,
            auth,
            mapping,
            snapshot: v.flag("snapshot"),
            max_bytes: max_mb << 20,
            max_reject_percent,
        })
    }
}

/// Where a pull stream stands.
enum Stage {
    Start {
        checkpoint: Option<serde_json::Value>,
        fixed: Option<Format>,
    },
    Reading(Box<Reading>),
    Done,
}

/// A read under way.
struct Reading {
    rx: mpsc::Receiver<reader::Msg>,
    /// Cancels the body download when the stream is dropped.
    _guard: DropGuard,
    validators: Checkpoint,
    shown: String,
    snapshot: bool,
    resumed_at: u64,
    records: u64,
    rejected: BTreeMap<String, u64>,
}

/// Pulls the feed the context configures; `fixed` forces a format (`stix_file` uses this).
pub fn pull_feed<'a>(
    ctx: &'a Context,
    checkpoint: Option<serde_json::Value>,
    fixed: Option<Format>,
) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
    let start = Stage::Start { checkpoint, fixed };
    futures::stream::unfold(start, move |stage| step(ctx, stage)).boxed()
}

async fn step(ctx: &Context, stage: Stage) -> Option<(Result<PullBatch, ConnectorError>, Stage)> {
    match stage {
        Stage::Done => None,
        Stage::Start { checkpoint, fixed } => match start(ctx, checkpoint, fixed).await {
            Ok(None) => None,
            Ok(Some(reading)) => next_batch(ctx, reading).await,
            Err(e) => Some((Err(e), Stage::Done)),
        },
        Stage::Reading(reading) => next_batch(ctx, reading).await,
    }
}

/// Opens the feed and starts the reading thread; `None` when the feed has not changed.
async fn start(
    ctx: &Context,
    checkpoint: Option<serde_json::Value>,
    fixed: Option<Format>,
) -> Result<Option<Box<Reading>>, ConnectorError> {
    let feed = Feed::from_context(ctx, fixed)?;
    let previous = Checkpoint::from_stored(checkpoint);
    let shown = feed.location.shown();
    let cancel = ctx.cancel.child_token();
    let opened = client::open(
        ctx,
        &feed.location,
        &feed.auth,
        &previous,
        feed.max_bytes,
        &cancel,
    )
    .await?;
    let content = match opened {
        client::Opened::Unchanged(why) => {
            ctx.info(why);
            return Ok(None);
        }
        client::Opened::Content(c) => c,
    };
    let skip_through = content.validators.resume_after(&previous);
    match previous.position {
        Some(_) if skip_through > 0 => {
            ctx.info(format!("Resuming the feed after position {skip_through}"));
        }
        Some(p) => ctx.info(format!(
            "{shown} changed since the interrupted pull stopped at position {p} (or gives no \
             ETag or Last-Modified to tell); reading it from the start"
        )),
        None => {}
    }
    let mut options = feed.options.clone();
    if options.format.is_none()
        && options
            .file_name
            .as_deref()
            .and_then(Format::from_file_name)
            .is_none()
    {
        // No telling extension: let the content type hint.
        let hinted = content.content_type.as_deref().and_then(|ct| {
            let ct = ct.to_ascii_lowercase();
            if ct.contains("stix") {
                Some("feed.stix")
            } else if ct.contains("json") {
                Some("feed.json")
            } else if ct.contains("csv") {
                Some("feed.csv")
            } else {
                None
            }
        });
        if let Some(h) = hinted {
            options.file_name = Some(h.into());
        }
    }
    let job = reader::ReadJob {
        shown: shown.clone(),
        options,
        mapping: feed.mapping.clone(),
        skip_through,
        max_bytes: feed.max_bytes,
        max_reject_percent: feed.max_reject_percent,
        batch: reader::BATCH,
    };
    let (tx, rx) = mpsc::channel(2);
    let input = content.reader;
    // The task ends by itself: at the end of the content, at a failure, or when the receiver
    // (this stream) is dropped and its next send fails; dropping the guard cancels a download.
    drop(tokio::task::spawn_blocking(move || {
        reader::read(input, &job, &tx);
    }));
    Ok(Some(Box::new(Reading {
        rx,
        _guard: cancel.drop_guard(),
        validators: content.validators,
        shown,
        snapshot: feed.snapshot,
        resumed_at: skip_through,
        records: 0,
        rejected: BTreeMap::new(),
    })))
}

async fn next_batch(
    ctx: &Context,
    mut r: Box<Reading>,
) -> Option<(Result<PullBatch, ConnectorError>, Stage)> {
    loop {
        let msg = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => {
                return Some((
                    Err(ConnectorError::new(ErrorKind::Cancelled, format!("{}: the pull was stopped", r.shown))),
                    Stage::Done,
                ));
            }
            msg = r.rx.recv() => msg,
        };
        match msg {
            Some(reader::Msg::Warn(message)) => ctx.warn(message),
            Some(reader::Msg::Failed(kind, message)) => {
                let kind = if ctx.cancel.is_cancelled() {
                    ErrorKind::Cancelled
                } else {
                    kind
                };
                return Some((
                    Err(ConnectorError::new(kind, ctx.http.redact(&message))),
                    Stage::Done,
                ));
            }
            Some(reader::Msg::Batch {
                records,
                rejected,
                position,
                last,
            }) => {
                r.records += records.len() as u64;
                for (reason, n) in &rejected {
                    *r.rejected.entry(reason.clone()).or_default() += n;
                }
                let mut checkpoint = r.validators.clone();
                checkpoint.position = (!last).then_some(position);
                let batch = PullBatch {
                    records,
                    checkpoint: checkpoint.to_value(),
                    snapshot_complete: last && snapshot_complete(ctx, &r),
                    rejected,
                };
                if last {
                    summarise(ctx, &r);
                    return Some((Ok(batch), Stage::Done));
                }
                return Some((Ok(batch), Stage::Reading(r)));
            }
            None => {
                return Some((
                    Err(ConnectorError::protocol(format!(
                        "{}: the feed reader stopped without finishing",
                        r.shown
                    ))),
                    Stage::Done,
                ));
            }
        }
    }
}

/// Whether the read that just ended was a complete snapshot the engine may retire against.
fn snapshot_complete(ctx: &Context, r: &Reading) -> bool {
    if !r.snapshot {
        return false;
    }
    if r.resumed_at > 0 {
        ctx.info(format!(
            "{} was read in two pulls (resumed after position {}), so this read is not one \
             complete snapshot; indicators that left the feed are retired after the next \
             complete read",
            r.shown, r.resumed_at
        ));
        return false;
    }
    if r.records == 0 {
        ctx.warn(format!(
            "{} listed no indicators; nothing is retired (an empty answer is more likely a \
             fault than an empty threat list)",
            r.shown
        ));
        return false;
    }
    true
}

fn summarise(ctx: &Context, r: &Reading) {
    let rejected: u64 = r.rejected.values().sum();
    if rejected == 0 {
        ctx.info(format!("Read {}: {} records", r.shown, r.records));
    } else {
        let reasons: Vec<String> = r
            .rejected
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        ctx.info(format!(
            "Read {}: {} records, {rejected} rejected ({})",
            r.shown,
            r.records,
            reasons.join(", ")
        ));
    }
}

/// How much of a feed "Test connection" reads.
const VALIDATE_BYTES: usize = 256 * 1024;

/// Checks that the feed can be fetched and reads as a feed: the first items are sampled.
///
/// # Errors
/// When it cannot be fetched, or what comes back is not a feed.
pub async fn validate_feed(ctx: &Context, fixed: Option<Format>) -> Result<String, ConnectorError> {
    let feed = Feed::from_context(ctx, fixed)?;
    let shown = feed.location.shown();
    let (head, described) = match &feed.location {
        Location::File(path) => {
            let (_, len) = client::file_identity(path)?;
            let path = path.clone();
            let head = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                use std::io::Read as _;
                let mut head = Vec::new();
                std::fs::File::open(&path)?
                    .take(VALIDATE_BYTES as u64)
                    .read_to_end(&mut head)?;
                Ok(head)
            })
            .await
            .map_err(|e| ConnectorError::protocol(format!("{shown}: {e}")))?
            .map_err(|e| ConnectorError::config(format!("cannot read {shown}: {e}")))?;
            (head, format!("{shown} is readable ({})", size(len)))
        }
        Location::Http(url) => {
            let response = client::get(ctx, url, &feed.auth, None).await?;
            let status = response.status();
            let ct = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type")
                .to_string();
            let len = response.content_length();
            let head = client::first_bytes_raw(response, VALIDATE_BYTES).await;
            let len = len.map(|l| format!(", {}", size(l))).unwrap_or_default();
            (head, format!("{shown} answered HTTP {status} ({ct}{len})"))
        }
    };
    let decoded = reader::decode_head(&head);
    if let Some(why) = reader::not_a_feed(&decoded) {
        return Err(ConnectorError::protocol(format!("{shown} returned {why}")));
    }
    let (records, rejects, format) =
        reader::sample(&decoded, &feed.options, &feed.mapping, reader::SAMPLE);
    let items = records + rejects;
    if items == 0 {
        return Ok(format!(
            "{described}; its start holds no indicators (an empty feed?)"
        ));
    }
    if rejects * 100 > items * feed.max_reject_percent {
        return Err(ConnectorError::protocol(format!(
            "{shown} does not look like a feed in this format: {rejects} of its first {items} \
             items are not indicators; check the format and column settings"
        )));
    }
    let format = format.map_or_else(|| "unknown format".to_string(), |f| f.to_string());
    Ok(format!(
        "{described}; read as {format}, {records} of its first {items} items are indicators"
    ))
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / f64::from(1 << 20))
    } else if bytes >= 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[async_trait]
impl Connector for HttpFeed {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        validate_feed(ctx, None).await
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<serde_json::Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_feed(ctx, checkpoint, None)
    }
}
