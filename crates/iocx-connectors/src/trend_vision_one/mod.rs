//! `trend_vision_one`: Trend Vision One's threat-intelligence lists (public API v3.0).
//!
//! - **Pull**: the Suspicious Object List, modified since the checkpoint
//!   (`startDateTime`/`endDateTime` over `lastModifiedDateTime`, `top`, `orderBy
//!   lastModifiedDateTime asc`, following `nextLink` until it is absent), and optionally the
//!   Exception List as safe indicators.
//! - **Push** to two targets: "Add to Suspicious Object List" and "Add to Suspicious Object
//!   Exception List", each with per-item results from the API's 207 multi-status answer.
//! - **Retract** through the two `/delete` endpoints.
//!
//! Wire facts (paths, keys, limits, error texts) follow the project's contract
//! `contracts/trend-vision-one.md`; the emulator `iocx sim trend-vision-one` implements the same.
//!
//! ## Mapping
//!
//! | Trend `type` | kind | | `riskLevel` | severity |
//! |---|---|---|---|---|
//! | `url` | url | | `high` | high |
//! | `domain` | domain | | `medium` | medium |
//! | `ip` | ipv4 / ipv6 | | `low` | low |
//! | `senderMailAddress` | email | | `noRisk` | low, reputation 8 |
//! | `fileSha1` | sha1 | | | |
//! | `fileSha256` | sha256 | | | |
//!
//! `expiredDateTime` becomes the expiry (a year ≥ 9999 means never), `description` the comment,
//! `scanAction` a tag `scan-action:block|log`, `lastModifiedDateTime` the last sighting. An
//! exception's wildcard, range or CIDR-block patterns are not indicators and are counted as
//! rejected (`exception_pattern`). md5 and CIDR values are not Trend object types: the targets do
//! not list those kinds, so the sharing engine records them as skipped "kind not supported".
//!
//! ## Choices (where the contract is silent)
//!
//! - Requests stay under 1 MB by measuring each request's JSON, not by estimate: the description
//!   template may make items large, so one engine batch may become several requests.
//! - A whole-request 400 whose message says the *number of objects* exceeds the maximum limit
//!   means the list is full: the item and every later item of the call are skipped "capacity
//!   reached" without further requests (the answer Netskope's plugin treats as "stop pushing").
//! - A per-item 400 is a refusal retrying will not change (skipped with Trend's message); a
//!   per-item 5xx or 429 is a failure the engine retries.
//! - Deleting an object Trend does not hold (per-item 404) counts as retracted.
//! - `nextLink` is followed by its path and query on the configured base URL, the way Trend's
//!   own SDK does, so the token is never sent to a host the user did not configure.
//! - The per-type capacity (10,000) is declared per kind; Trend counts IPv4 and IPv6 together
//!   as `ip`, so a mix can still meet the API's own limit, which is then handled as above.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{
    Indicator, Kind, ParseOptions, Record, Reputation, Severity, TagSet, Timestamp, parse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, Capacity, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, Pages, PullBatch, PushItem,
    TargetCall, base_url, is_echo, pull_pages, stored_checkpoint,
};

#[cfg(test)]
mod tests;

/// The `trend_vision_one` connector.
pub struct TrendVisionOne;

/// Regional API hosts (contract §4), as `(choice, label, base URL)`.
pub const REGIONS: [(&str, &str, &str); 13] = [
    ("us", "United States", "https://api.xdr.trendmicro.com"),
    ("eu", "Europe", "https://api.eu.xdr.trendmicro.com"),
    ("jp", "Japan", "https://api.xdr.trendmicro.co.jp"),
    (
        "jp2",
        "Japan (api.jp host)",
        "https://api.jp.xdr.trendmicro.com",
    ),
    ("sg", "Singapore", "https://api.sg.xdr.trendmicro.com"),
    ("au", "Australia", "https://api.au.xdr.trendmicro.com"),
    ("in", "India", "https://api.in.xdr.trendmicro.com"),
    (
        "mea",
        "Middle East and Africa",
        "https://api.mea.xdr.trendmicro.com",
    ),
    ("uk", "United Kingdom", "https://api.uk.xdr.trendmicro.com"),
    ("ca", "Canada", "https://api.ca.xdr.trendmicro.com"),
    ("za", "South Africa", "https://api.za.xdr.trendmicro.com"),
    ("id", "Indonesia", "https://api.id.xdr.trendmicro.com"),
    (
        "usgov",
        "US Government",
        "https://api.usgov.xdr.trendmicro.com",
    ),
];

const SO_PATH: &str = "/v3.0/threatintel/suspiciousObjects";
const EX_PATH: &str = "/v3.0/threatintel/suspiciousObjectExceptions";

/// The most suspicious objects per request.
pub const MAX_OBJECTS_PER_REQUEST: usize = 1_000;
/// The most exceptions per request.
pub const MAX_EXCEPTIONS_PER_REQUEST: usize = 100;
/// The largest request body Trend accepts.
pub const MAX_BODY_BYTES: usize = 1_000_000;
/// Objects of one type a list holds.
pub const CAPACITY_PER_TYPE: u64 = 10_000;
/// The longest description Trend keeps.
pub const MAX_DESCRIPTION: usize = 1_000;
/// The longest URL Trend takes.
pub const MAX_URL: usize = 2_048;

const PUSH_KINDS: [Kind; 7] = [
    Kind::Url,
    Kind::Domain,
    Kind::Ipv4,
    Kind::Ipv6,
    Kind::Email,
    Kind::Sha1,
    Kind::Sha256,
];

const TEMPLATE_HELP: &str = "Placeholders: {kind}, {value}, {severity}, {sources}, {tags}, \
     {comment}, {sharing}. iocx's marker is always added, so pulling these objects back is \
     recognised as an echo. Truncated to 1,000 characters.";

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| {
    let regions: Vec<(&str, &str)> = REGIONS.iter().map(|(v, l, _)| (*v, *l)).collect();
    let delivery = |batch_size: usize| Delivery {
        mode: DeliveryMode::Incremental,
        batch_size,
        byte_budget: Some(MAX_BODY_BYTES),
        kinds: PUSH_KINDS.to_vec(),
        capacity: Capacity {
            per_kind: Some(CAPACITY_PER_TYPE),
            ..Capacity::default()
        },
        removal: true,
        deploy: false,
    };
    ConnectorSpec {
        name: "trend_vision_one".into(),
        title: "Trend Vision One".into(),
        description: "Pulls the Suspicious Object List (and the Exception List as safe indicators) \
             and pushes indicators to either list, retracting them when they expire or leave the rule."
            .into(),
        fields: vec![
            FieldSpec::new(
                "region",
                "Data region",
                FieldKind::choice(&regions),
                "The region of your Trend Vision One console; an API key only works in its own region.",
            )
            .default_value("us"),
            FieldSpec::new(
                "base_url",
                "Custom base URL",
                FieldKind::Text {
                    max_len: Some(2048),
                },
                "Overrides the region: https://HOST (for a proxy, a private endpoint or the emulator).",
            ),
            FieldSpec::new(
                "token",
                "Authentication token",
                FieldKind::Secret,
                "An API key from Administration → API Keys, with a role that may view and manage \
                 suspicious objects.",
            )
            .required(),
            FieldSpec::new(
                "pull_exceptions",
                "Pull the Exception List",
                FieldKind::Boolean,
                "Also pull the Suspicious Object Exception List, as safe indicators.",
            )
            .default_value(false),
            FieldSpec::new(
                "page_size",
                "Page size",
                FieldKind::choice(&[("50", "50"), ("100", "100"), ("200", "200")]),
                "Objects per page when pulling (`top`).",
            )
            .default_value("200"),
        ],
        capabilities: Capabilities {
            pull: true,
            push: true,
            retract: true,
            sightings: false,
        },
        targets: vec![
            TargetSpec {
                name: "suspicious_objects".into(),
                label: "Add to Suspicious Object List".into(),
                description: "Adds indicators to the Suspicious Object List (block or log), in \
                     requests of up to 1,000 objects and 1 MB; at most 10,000 objects per type."
                    .into(),
                fields: vec![
                    FieldSpec::new(
                        "scan_action",
                        "Scan action",
                        FieldKind::choice(&[("block", "Block"), ("log", "Log")]),
                        "What Trend Vision One does when it meets the object.",
                    )
                    .default_value("block"),
                    FieldSpec::new(
                        "risk_level",
                        "Risk level",
                        FieldKind::choice(&[
                            ("severity", "From the indicator's severity"),
                            ("high", "High"),
                            ("medium", "Medium"),
                            ("low", "Low"),
                        ]),
                        "From severity: critical and high → high, medium → medium, low and \
                         unknown → low.",
                    )
                    .default_value("severity"),
                    FieldSpec::new(
                        "expiration",
                        "Expiration",
                        FieldKind::choice(&[
                            ("7", "7 days"),
                            ("15", "15 days"),
                            ("30", "30 days"),
                            ("45", "45 days"),
                            ("60", "60 days"),
                            ("75", "75 days"),
                            ("90", "90 days"),
                            ("never", "Never"),
                            ("indicator", "The indicator's own expiry"),
                        ]),
                        "When Trend Vision One drops the object (iocx also retracts it when the \
                         indicator expires).",
                    )
                    .default_value("30"),
                    url_scheme_field(),
                    description_field("{severity} {kind} from {sources}"),
                ],
                delivery: delivery(MAX_OBJECTS_PER_REQUEST),
            },
            TargetSpec {
                name: "exceptions".into(),
                label: "Add to Suspicious Object Exception List".into(),
                description: "Adds indicators to the Exception List (never blocked), in requests \
                     of up to 100 objects."
                    .into(),
                fields: vec![
                    url_scheme_field(),
                    description_field("safe {kind} from {sources}"),
                ],
                delivery: delivery(MAX_EXCEPTIONS_PER_REQUEST),
            },
        ],
    }
});

fn url_scheme_field() -> FieldSpec {
    FieldSpec::new(
        "url_scheme",
        "URL scheme handling",
        FieldKind::choice(&[
            ("keep", "Keep the scheme (http://…, https://…)"),
            ("strip", "Strip the scheme (host/path)"),
        ]),
        "How URLs are written to the list.",
    )
    .default_value("keep")
}

fn description_field(default: &str) -> FieldSpec {
    FieldSpec::new(
        "description",
        "Description template",
        FieldKind::Text {
            max_len: Some(MAX_DESCRIPTION),
        },
        TEMPLATE_HELP,
    )
    .default_value(default)
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum List {
    Objects,
    Exceptions,
}

impl List {
    fn path(self) -> &'static str {
        match self {
            List::Objects => SO_PATH,
            List::Exceptions => EX_PATH,
        }
    }

    fn name(self) -> &'static str {
        match self {
            List::Objects => "Suspicious Object List",
            List::Exceptions => "Exception List",
        }
    }

    fn per_request(self) -> usize {
        match self {
            List::Objects => MAX_OBJECTS_PER_REQUEST,
            List::Exceptions => MAX_EXCEPTIONS_PER_REQUEST,
        }
    }

    fn of_target(target: &str) -> Result<List, ConnectorError> {
        match target {
            "suspicious_objects" => Ok(List::Objects),
            "exceptions" => Ok(List::Exceptions),
            other => Err(ConnectorError::config(format!(
                "trend_vision_one has no target `{other}`; targets are suspicious_objects and exceptions"
            ))),
        }
    }
}

/// Where a pull resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// Suspicious objects modified before this time are in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    objects_since: Option<Timestamp>,
    /// Exceptions modified before this time are in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exceptions_since: Option<Timestamp>,
    /// The list being read by an unfinished run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reading: Option<List>,
    /// The end of the unfinished run's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_end: Option<Timestamp>,
    /// The unfinished run's next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The configuration's API access.
struct Api<'a> {
    ctx: &'a Context,
    base: String,
    token: String,
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let base = base_url(ctx, "region", &REGIONS)?;
        let token = ctx
            .values
            .text("token")
            .ok_or_else(|| ConnectorError::config("the authentication token is not set"))?
            .to_string();
        Ok(Api { ctx, base, token })
    }

    /// One page of a list: `url` is a full URL on the base.
    async fn page(&self, list: List, url: &str) -> Result<Page, ConnectorError> {
        let what = format!("listing the {}", list.name());
        let response = self
            .ctx
            .http
            .send_ok(&what, &DefaultRetry, |c| {
                c.get(url)
                    .bearer_auth(&self.token)
                    .header("Accept", "application/json")
            })
            .await?;
        self.ctx.http.json(&what, response).await
    }

    fn first_page_url(&self, list: List, since: Timestamp, until: Timestamp, top: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("startDateTime", &since.to_rfc3339())
            .append_pair("endDateTime", &until.to_rfc3339())
            .append_pair("top", top)
            .append_pair("orderBy", "lastModifiedDateTime asc")
            .finish();
        format!("{}{}?{query}", self.base, list.path())
    }

    /// `nextLink` rebased on the configured base URL (its path and query kept).
    fn follow(&self, next_link: &str) -> Result<String, ConnectorError> {
        let link = url::Url::parse(next_link).map_err(|e| {
            ConnectorError::protocol(format!("Trend answered a nextLink that is not a URL ({e})"))
        })?;
        if !link.path().starts_with("/v3.0/") {
            return Err(ConnectorError::protocol(format!(
                "Trend answered a nextLink outside /v3.0: {}",
                link.path()
            )));
        }
        Ok(match link.query() {
            Some(q) => format!("{}{}?{q}", self.base, link.path()),
            None => format!("{}{}", self.base, link.path()),
        })
    }

    /// POSTs a JSON array; returns the status and body.
    async fn post(&self, what: &str, path: &str, body: String) -> Result<Answer, ConnectorError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .ctx
            .http
            .send(what, &DefaultRetry, |c| {
                c.post(&url)
                    .bearer_auth(&self.token)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
            })
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| {
            ConnectorError::new(
                ErrorKind::Network,
                self.ctx
                    .http
                    .redact(&format!("{what}: reading the answer: {e}")),
            )
        })?;
        if status == 401 || status == 403 {
            return Err(ConnectorError::new(
                ErrorKind::Auth,
                format!(
                    "{what}: HTTP {status}: {} (check the token and the data region)",
                    error_message(&text)
                ),
            ));
        }
        if status == 429 || status >= 500 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!(
                    "{what}: HTTP {status} after retries: {}",
                    error_message(&text)
                ),
            ));
        }
        Ok(Answer { status, text })
    }
}

struct Answer {
    status: u16,
    text: String,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<Map<String, Value>>,
    #[serde(default, rename = "nextLink")]
    next_link: Option<String>,
}

/// The message of Trend's error envelope, or the start of the text.
fn error_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            text.chars()
                .take(300)
                .collect::<String>()
                .trim()
                .to_string()
        })
}

/// Trend's object type for a kind.
fn object_type(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Url => "url",
        Kind::Domain => "domain",
        Kind::Ipv4 | Kind::Ipv6 => "ip",
        Kind::Email => "senderMailAddress",
        Kind::Sha1 => "fileSha1",
        Kind::Sha256 => "fileSha256",
        Kind::Md5 | Kind::Cidr => return None,
    })
}

fn kind_of(object_type: &str) -> Option<Kind> {
    Some(match object_type {
        "url" => Kind::Url,
        "domain" => Kind::Domain,
        "ip" => Kind::Ipv4,
        "senderMailAddress" => Kind::Email,
        "fileSha1" => Kind::Sha1,
        "fileSha256" => Kind::Sha256,
        _ => return None,
    })
}

/// Turns one page's items into records and rejections.
fn records(
    ctx: &Context,
    list: List,
    items: &[Map<String, Value>],
    logged: &mut usize,
) -> (Vec<Record>, BTreeMap<String, u64>) {
    let mut out = Vec::with_capacity(items.len());
    let mut rejected = BTreeMap::<String, u64>::new();
    let mut reject = |reason: &str, message: String| {
        *rejected.entry(reason.to_string()).or_default() += 1;
        if *logged < 20 {
            *logged += 1;
            ctx.warn(message);
        }
    };
    for item in items {
        let text = |k: &str| item.get(k).and_then(Value::as_str);
        let Some(object_type) = text("type") else {
            reject(
                "no_type",
                format!("{}: an item without a type", list.name()),
            );
            continue;
        };
        let Some(kind) = kind_of(object_type) else {
            reject(
                "unknown_type",
                format!("{}: unknown object type `{object_type}`", list.name()),
            );
            continue;
        };
        let Some(raw) = text(object_type) else {
            reject(
                "no_value",
                format!(
                    "{}: a `{object_type}` item without its `{object_type}` value",
                    list.name()
                ),
            );
            continue;
        };
        if list == List::Exceptions
            && (raw.contains('*') || (kind == Kind::Ipv4 && raw.contains('-')))
        {
            reject(
                "exception_pattern",
                format!("{}: `{raw}` is a pattern, not an indicator", list.name()),
            );
            continue;
        }
        let indicator = match parse(raw, Some(kind), &ParseOptions::default()) {
            Ok(parsed) => parsed.first().clone(),
            Err(e) => {
                reject(e.reason(), format!("{}: `{raw}`: {e}", list.name()));
                continue;
            }
        };
        out.push(record(item, list, indicator));
    }
    (out, rejected)
}

fn record(item: &Map<String, Value>, list: List, indicator: Indicator) -> Record {
    let text = |k: &str| item.get(k).and_then(Value::as_str);
    let mut record = Record::new(indicator);
    let a = &mut record.attributes;
    match text("riskLevel") {
        Some("high") => a.severity = Severity::High,
        Some("medium") => a.severity = Severity::Medium,
        Some("low") => a.severity = Severity::Low,
        Some("noRisk") => {
            a.severity = Severity::Low;
            a.reputation = Reputation::new(8);
        }
        _ => {}
    }
    if let Some(action) = text("scanAction") {
        a.tags = TagSet::from_tags([format!("scan-action:{action}")]);
    }
    a.comment = text("description")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    a.expires = text("expiredDateTime")
        .and_then(|t| Timestamp::parse(t).ok())
        .filter(|t| {
            t.to_datetime()
                .is_some_and(|d| chrono::Datelike::year(&d) < 9999)
        });
    a.safe = list == List::Exceptions;
    record.last_seen = text("lastModifiedDateTime").and_then(|t| Timestamp::parse(t).ok());
    record.echo = record.attributes.comment.as_deref().is_some_and(is_echo);
    record
}

struct PullState<'a> {
    api: Api<'a>,
    cp: Checkpoint,
    /// Lists still to read after the current one.
    queue: Vec<List>,
    top: String,
    logged: usize,
    done: bool,
}

impl<'a> PullState<'a> {
    fn new(ctx: &'a Context, checkpoint: Option<Value>) -> Result<PullState<'a>, ConnectorError> {
        let api = Api::new(ctx)?;
        let mut cp: Checkpoint = stored_checkpoint("Trend Vision One", checkpoint)?;
        let mut lists = vec![List::Objects];
        if ctx.values.flag("pull_exceptions") {
            lists.push(List::Exceptions);
        }
        let queue = match cp.reading {
            // A run cut short resumes its list and reads the ones after it.
            Some(current) => lists
                .iter()
                .skip_while(|l| **l != current)
                .skip(1)
                .copied()
                .collect(),
            None => {
                cp.reading = Some(lists.remove(0));
                cp.window_end = Some(Timestamp::now());
                cp.next = None;
                lists
            }
        };
        Ok(PullState {
            api,
            cp,
            queue,
            top: ctx.values.text("page_size").unwrap_or("200").to_string(),
            logged: 0,
            done: false,
        })
    }
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        self.step().await
    }
}

impl PullState<'_> {
    /// Reads pages until one has something to report or the run ends; returns the batch.
    async fn step(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        loop {
            let Some(list) = self.cp.reading else {
                self.done = true;
                return Ok(Some(PullBatch {
                    checkpoint: checkpoint_value(&self.cp),
                    ..PullBatch::default()
                }));
            };
            let window_end = self.cp.window_end.unwrap_or_else(Timestamp::now);
            let url = match &self.cp.next {
                Some(link) => self.api.follow(link)?,
                None => {
                    let since = match list {
                        List::Objects => self.cp.objects_since,
                        List::Exceptions => self.cp.exceptions_since,
                    }
                    .unwrap_or_else(|| self.api.ctx.initial_start());
                    self.api.first_page_url(list, since, window_end, &self.top)
                }
            };
            let page = self.api.page(list, &url).await?;
            let (records, rejected) = records(self.api.ctx, list, &page.items, &mut self.logged);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(link) => self.cp.next = Some(link),
                None => {
                    self.cp.next = None;
                    match list {
                        List::Objects => self.cp.objects_since = Some(window_end),
                        List::Exceptions => self.cp.exceptions_since = Some(window_end),
                    }
                    self.cp.reading = if self.queue.is_empty() {
                        None
                    } else {
                        Some(self.queue.remove(0))
                    };
                    if self.cp.reading.is_none() {
                        self.cp.window_end = None;
                    }
                }
            }
            if !records.is_empty() || !rejected.is_empty() {
                self.api.ctx.info(format!(
                    "{}: {} object(s) on a page",
                    list.name(),
                    page.items.len()
                ));
                return Ok(Some(PullBatch {
                    records,
                    rejected,
                    checkpoint: checkpoint_value(&self.cp),
                    snapshot_complete: false,
                }));
            }
        }
    }
}

fn checkpoint_value(cp: &Checkpoint) -> Value {
    serde_json::to_value(cp).unwrap_or(Value::Null)
}

/// The description sent for `item`: the template filled in, then iocx's marker, within
/// Trend's 1,000 characters.
fn description(template: &str, item: &PushItem, ctx: &Context, sharing: &str) -> String {
    let filled = template
        .replace("{kind}", item.indicator.kind.as_str())
        .replace("{value}", &item.indicator.value)
        .replace("{severity}", item.severity.as_str())
        .replace("{sources}", &item.sources.join(", "))
        .replace("{tags}", &item.tags.join(", "))
        .replace("{comment}", item.comment.as_deref().unwrap_or(""))
        .replace("{sharing}", sharing);
    let marker = format!(" [{}]", ctx.marker());
    let room = MAX_DESCRIPTION.saturating_sub(marker.chars().count());
    let mut text: String = filled.trim().chars().take(room).collect();
    text.push_str(&marker);
    text.chars().take(MAX_DESCRIPTION).collect()
}

fn risk_level(choice: &str, severity: Severity) -> &'static str {
    match choice {
        "high" => "high",
        "medium" => "medium",
        "low" => "low",
        _ => match severity {
            Severity::Critical | Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low | Severity::Unknown => "low",
        },
    }
}

fn days_to_expiration(choice: &str, expires: Option<Timestamp>, now: Timestamp) -> i64 {
    match choice {
        "never" => -1,
        "indicator" => match expires {
            None => -1,
            Some(t) => ((t.0 - now.0 + 86_399) / 86_400).clamp(1, 36_500),
        },
        days => days.parse().unwrap_or(30),
    }
}

/// The value as written to the list.
fn wire_value(item: &PushItem, url_scheme: &str) -> String {
    let v = &item.indicator.value;
    if item.indicator.kind == Kind::Url
        && url_scheme == "strip"
        && let Some((_, rest)) = v.split_once("://")
    {
        return rest.to_string();
    }
    v.clone()
}

/// Checks an item against Trend's field limits; the reason when it cannot be sent.
fn unsendable(kind: Kind, value: &str) -> Option<String> {
    object_type(kind)?;
    let max = match kind {
        Kind::Url => MAX_URL,
        Kind::Domain => 253,
        Kind::Ipv4 | Kind::Ipv6 => 39,
        _ => usize::MAX,
    };
    (value.len() > max).then(|| {
        format!(
            "value too long for Trend Vision One ({} characters, {max} at most)",
            value.len()
        )
    })
}

/// Sends `bodies` (one JSON object per item, `None` for items decided already) to `path` in
/// requests within the list's count and 1 MB, mapping the 207 answer to outcomes.
async fn send_items(
    api: &Api<'_>,
    list: List,
    path: &str,
    action: &str,
    bodies: Vec<Option<Value>>,
    mut outcomes: Vec<Option<ItemOutcome>>,
) -> Result<Vec<ItemOutcome>, ConnectorError> {
    let encoded: Vec<(usize, String)> = bodies
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.as_ref().map(|b| (i, b.to_string())))
        .collect();
    // `[` + `]` + commas: each item costs its length plus one.
    let ranges = crate::http::chunk_by_budget(
        &encoded,
        list.per_request(),
        Some(MAX_BODY_BYTES - 2),
        |(_, s)| s.len() + 1,
    );
    let what = format!("{action} the {}", list.name());
    let mut full: Option<String> = None;
    for range in ranges {
        let part = &encoded[range];
        if let Some(reason) = &full {
            for (i, _) in part {
                outcomes[*i] = Some(ItemOutcome::Skipped(reason.clone()));
            }
            continue;
        }
        let body = format!(
            "[{}]",
            part.iter()
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        if body.len() > MAX_BODY_BYTES {
            for (i, _) in part {
                outcomes[*i] = Some(ItemOutcome::Skipped(
                    "the item alone is larger than Trend's 1 MB request limit".into(),
                ));
            }
            continue;
        }
        let answer = api.post(&what, path, body).await?;
        match answer.status {
            207 | 200 | 201 => {
                let results: Vec<Value> = serde_json::from_str(&answer.text).map_err(|e| {
                    ConnectorError::protocol(format!(
                        "{what}: the multi-status answer is not a JSON array ({e})"
                    ))
                })?;
                if results.len() != part.len() {
                    let reason = format!(
                        "{what}: Trend answered {} results for {} items",
                        results.len(),
                        part.len()
                    );
                    for (i, _) in part {
                        outcomes[*i] = Some(ItemOutcome::Failed(reason.clone()));
                    }
                    continue;
                }
                for ((i, _), result) in part.iter().zip(results) {
                    outcomes[*i] = Some(item_outcome(&result));
                }
            }
            400 => {
                let message = error_message(&answer.text);
                let reason = if message.contains("number of objects exceeds the maximum limit") {
                    let r = format!("capacity reached: {message}");
                    api.ctx.warn(format!(
                        "{}: {message}; the rest of this push is skipped",
                        list.name()
                    ));
                    full = Some(r.clone());
                    ItemOutcome::Skipped(r)
                } else {
                    ItemOutcome::Failed(format!("Trend refused the request: {message}"))
                };
                for (i, _) in part {
                    outcomes[*i] = Some(reason.clone());
                }
            }
            status => {
                let reason = format!("HTTP {status}: {}", error_message(&answer.text));
                for (i, _) in part {
                    outcomes[*i] = Some(ItemOutcome::Failed(reason.clone()));
                }
            }
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| ItemOutcome::Failed("not sent".into())))
        .collect())
}

/// One entry of a 207 answer.
fn item_outcome(result: &Value) -> ItemOutcome {
    let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
    let message = || {
        result
            .pointer("/body/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string()
    };
    match status {
        200..=299 => ItemOutcome::Shared,
        404 => ItemOutcome::Shared,
        400..=499 if status != 429 => {
            ItemOutcome::Skipped(format!("Trend refused it ({status}): {}", message()))
        }
        _ => ItemOutcome::Failed(format!("Trend answered {status}: {}", message())),
    }
}

#[async_trait]
impl Connector for TrendVisionOne {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let now = Timestamp::now();
        let url = api.first_page_url(List::Objects, Timestamp(0), now, "50");
        let page = api.page(List::Objects, &url).await?;
        let first = page
            .items
            .first()
            .and_then(|i| {
                let t = i.get("type")?.as_str()?;
                Some(format!(
                    "; the first is {t} {}",
                    i.get(t)?.as_str().unwrap_or("?")
                ))
            })
            .unwrap_or_default();
        Ok(format!(
            "Connected to {}: listed {} suspicious object(s){first}",
            api.base,
            page.items.len()
        ))
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_pages(PullState::new(ctx, checkpoint))
    }

    async fn push(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let list = List::of_target(&target.target)?;
        let api = Api::new(ctx)?;
        let p = &target.params;
        let template = p.text("description").unwrap_or("");
        let scheme = p.text("url_scheme").unwrap_or("keep");
        let now = Timestamp::now();
        let mut outcomes = vec![None; items.len()];
        let bodies = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let value = wire_value(item, scheme);
                let Some(key) = object_type(item.indicator.kind) else {
                    outcomes[i] = Some(ItemOutcome::Skipped(format!(
                        "kind {} not supported by Trend Vision One",
                        item.indicator.kind
                    )));
                    return None;
                };
                if let Some(reason) = unsendable(item.indicator.kind, &value) {
                    outcomes[i] = Some(ItemOutcome::Skipped(reason));
                    return None;
                }
                let mut body = json!({
                    key: value,
                    "description": description(template, item, ctx, &target.sharing),
                });
                if list == List::Objects {
                    body["scanAction"] = json!(p.text("scan_action").unwrap_or("block"));
                    body["riskLevel"] = json!(risk_level(
                        p.text("risk_level").unwrap_or("severity"),
                        item.severity
                    ));
                    body["daysToExpiration"] = json!(days_to_expiration(
                        p.text("expiration").unwrap_or("30"),
                        item.expires,
                        now
                    ));
                }
                Some(body)
            })
            .collect();
        send_items(&api, list, list.path(), "adding to", bodies, outcomes).await
    }

    async fn retract(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let list = List::of_target(&target.target)?;
        let api = Api::new(ctx)?;
        let scheme = target.params.text("url_scheme").unwrap_or("keep");
        let mut outcomes = vec![None; items.len()];
        let bodies = items
            .iter()
            .enumerate()
            .map(|(i, item)| match object_type(item.indicator.kind) {
                Some(key) => Some(json!({ key: wire_value(item, scheme) })),
                None => {
                    // Never pushed: nothing to remove.
                    outcomes[i] = Some(ItemOutcome::Shared);
                    None
                }
            })
            .collect();
        let path = format!("{}/delete", list.path());
        send_items(&api, list, &path, "removing from", bodies, outcomes).await
    }
}
