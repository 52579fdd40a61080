//! `crowdstrike`: CrowdStrike Falcon's Custom IOC Management.
//!
//! - **Auth**: OAuth2 client credentials (`POST /oauth2/token`, answer 201). A token is fetched
//!   once per call and again a minute before it expires, or once when the API answers 401.
//! - **Pull**: custom IOCs modified since the checkpoint
//!   (`GET /iocs/combined/indicator/v1?filter=modified_on:>='…'&sort=modified_on.asc`, pages of
//!   2,000 through `meta.pagination.after`, which works past the 10,000-result `offset` window).
//! - **Push** to "IOC Management": `POST /iocs/entities/indicators/v1`, at most 2,000 per request,
//!   each refused item mapped to its own result.
//! - **Retract**: `DELETE /iocs/entities/indicators/v1?filter=source:'…'+value:[…]`, so only what
//!   this configuration created is removed.
//!
//! Wire facts follow `contracts/vendors.md` §2 and the emulator `iocx sim crowdstrike`.
//!
//! ## Mapping
//!
//! | Falcon | iocx |
//! |---|---|
//! | `type` sha256, md5, domain, ipv4, ipv6 | the same kinds |
//! | `severity` informational, low, medium, high, critical | low, low, medium, high, critical |
//! | `action` allow | safe |
//! | `expiration`, `expired` | expiry (an expired IOC is pulled with its past expiry) |
//! | `tags`, `description` | tags, comment |
//! | `source` or `description` with iocx's marker | an echo |
//!
//! ## Choices
//!
//! - `prevent`, `prevent_no_ui` and `allow` apply to hashes only; for domains and addresses they
//!   become `detect` (prevent) and `no_action` (allow), as Netskope's plugin does.
//! - A `409 Duplicate` per item means Falcon already holds the value: it counts as shared.
//! - "Limit of 1 million indicators reached." skips the request's items and the rest of the call
//!   "capacity reached".
//! - `source` carries iocx's marker (`Shared by iocx | CONFIGURATION`, at most 256 characters), which
//!   is how pulls recognise echoes and how retraction finds only iocx's own IOCs.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Instant;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Kind, ParseOptions, Record, Severity, TagSet, Timestamp, parse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

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

/// The `crowdstrike` connector.
pub struct CrowdStrike;

/// Falcon clouds, as `(choice, label, base URL)`.
pub const CLOUDS: [(&str, &str, &str); 4] = [
    ("us-1", "US-1", "https://api.crowdstrike.com"),
    ("us-2", "US-2", "https://api.us-2.crowdstrike.com"),
    ("eu-1", "EU-1", "https://api.eu-1.crowdstrike.com"),
    (
        "us-gov-1",
        "US-GOV-1",
        "https://api.laggar.gcw.crowdstrike.com",
    ),
];

/// The most IOCs per create request and per page.
pub const MAX_PER_REQUEST: usize = 2_000;
/// Custom IOCs a customer may hold.
pub const CAPACITY: u64 = 1_000_000;
/// Falcon's answer when the customer's IOCs are full.
pub const CAPACITY_MESSAGE: &str = "Limit of 1 million indicators reached";
/// Values per retraction filter.
const DELETE_CHUNK: usize = 500;

const PLATFORMS: [(&str, &str); 5] = [
    ("windows", "Windows"),
    ("mac", "macOS"),
    ("linux", "Linux"),
    ("ios", "iOS"),
    ("android", "Android"),
];

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| {
    let clouds: Vec<(&str, &str)> = CLOUDS.iter().map(|(v, l, _)| (*v, *l)).collect();
    ConnectorSpec {
        name: "crowdstrike".into(),
        title: "CrowdStrike Falcon".into(),
        description: "Pulls custom IOCs from Falcon IOC Management and pushes indicators to it \
             (detect, prevent, allow), retracting them when they leave the rule."
            .into(),
        fields: vec![
            FieldSpec::new(
                "cloud",
                "Cloud",
                FieldKind::choice(&clouds),
                "The Falcon cloud of your customer ID.",
            )
            .default_value("us-1"),
            FieldSpec::new(
                "base_url",
                "Custom base URL",
                FieldKind::Text {
                    max_len: Some(2048),
                },
                "Overrides the cloud: https://HOST (a proxy, or the emulator).",
            ),
            FieldSpec::new(
                "client_id",
                "Client ID",
                FieldKind::Text { max_len: Some(256) },
                "An API client with the IOC Management read and write scopes.",
            )
            .required(),
            FieldSpec::new(
                "client_secret",
                "Client secret",
                FieldKind::Secret,
                "The API client's secret.",
            )
            .required(),
            FieldSpec::new(
                "pull_detections",
                "Pull detections",
                FieldKind::Boolean,
                "Also pull the indicators of endpoint detections (Alerts API, read scope), each \
                 detection a sighting.",
            )
            .default_value(true),
        ],
        capabilities: Capabilities {
            pull: true,
            push: true,
            retract: true,
            sightings: false,
        },
        targets: vec![TargetSpec {
            name: "ioc_management".into(),
            label: "Add to IOC Management".into(),
            description: "Creates custom IOCs with an action, severity and platforms, in requests \
                 of up to 2,000; 1,000,000 IOCs per customer."
                .into(),
            fields: vec![
                FieldSpec::new(
                    "action",
                    "Action",
                    FieldKind::choice(&[
                        ("detect", "Detect only"),
                        ("prevent", "Block (hashes; others detect)"),
                        ("allow", "Allow (hashes; others no action)"),
                        ("no_action", "No action"),
                    ]),
                    "What sensors do when they meet the value.",
                )
                .default_value("detect"),
                FieldSpec::new(
                    "severity",
                    "Severity",
                    FieldKind::choice(&[
                        ("indicator", "From the indicator"),
                        ("critical", "Critical"),
                        ("high", "High"),
                        ("medium", "Medium"),
                        ("low", "Low"),
                        ("informational", "Informational"),
                    ]),
                    "From the indicator: unknown becomes medium.",
                )
                .default_value("indicator"),
                FieldSpec::new(
                    "platforms",
                    "Platforms",
                    FieldKind::multi_choice(&PLATFORMS),
                    "The platforms the IOC applies to.",
                )
                .default_value(json!(["windows", "mac", "linux"])),
                FieldSpec::new(
                    "expiration",
                    "Expiration",
                    FieldKind::choice(&[
                        ("indicator", "The indicator's own expiry"),
                        ("30", "30 days"),
                        ("60", "60 days"),
                        ("90", "90 days"),
                        ("never", "Never"),
                    ]),
                    "When Falcon stops acting on the IOC.",
                )
                .default_value("indicator"),
                FieldSpec::new(
                    "tags",
                    "Tags",
                    FieldKind::Text { max_len: Some(512) },
                    "Comma-separated tags added to every IOC, besides the indicator's own.",
                ),
            ],
            delivery: Delivery {
                mode: DeliveryMode::Incremental,
                batch_size: MAX_PER_REQUEST,
                byte_budget: None,
                kinds: vec![
                    Kind::Sha256,
                    Kind::Md5,
                    Kind::Domain,
                    Kind::Ipv4,
                    Kind::Ipv6,
                ],
                capacity: Capacity {
                    total: Some(CAPACITY),
                    ..Capacity::default()
                },
                removal: true,
                deploy: false,
            },
        }],
    }
});

/// A bearer token and when to renew it.
struct Token {
    value: String,
    renew_at: Instant,
}

/// The API client of one call.
struct Api<'a> {
    ctx: &'a Context,
    base: String,
    token: Mutex<Option<Token>>,
}

/// The CrowdStrike envelope.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    resources: Option<Vec<Value>>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
}

impl Envelope {
    fn messages(&self) -> Vec<String> {
        self.errors
            .iter()
            .flatten()
            .filter_map(|e| e.get("message").and_then(Value::as_str).map(str::to_string))
            .collect()
    }
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let base = base_url(ctx, "cloud", &CLOUDS)?;
        Ok(Api {
            ctx,
            base,
            token: Mutex::new(None),
        })
    }

    /// A valid token: the cached one, or a new one.
    async fn token(&self, renew: bool) -> Result<String, ConnectorError> {
        let mut slot = self.token.lock().await;
        if !renew
            && let Some(t) = slot.as_ref()
            && t.renew_at > Instant::now()
        {
            return Ok(t.value.clone());
        }
        let id = self
            .ctx
            .values
            .text("client_id")
            .ok_or_else(|| ConnectorError::config("the client ID is not set"))?;
        let secret = self
            .ctx
            .values
            .text("client_secret")
            .ok_or_else(|| ConnectorError::config("the client secret is not set"))?;
        let url = format!("{}/oauth2/token", self.base);
        let what = "getting an OAuth2 token";
        let response = self
            .ctx
            .http
            .send(what, &DefaultRetry, |c| {
                c.post(&url)
                    .form(&[("client_id", id), ("client_secret", secret)])
            })
            .await?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ConnectorError::new(
                ErrorKind::Auth,
                format!("{what}: Falcon refused the client ID and secret (HTTP {status})"),
            ));
        }
        let response = self.ctx.http.check(what, response).await?;
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: Answer = self.ctx.http.json(what, response).await?;
        let lifetime = answer.expires_in.unwrap_or(1_799);
        // Renew a minute early (or halfway through a very short lifetime).
        let early = lifetime.min(120) / 2;
        *slot = Some(Token {
            value: answer.access_token.clone(),
            renew_at: Instant::now() + std::time::Duration::from_secs(lifetime - early),
        });
        Ok(answer.access_token)
    }

    /// Sends a request with the bearer token, renewing it once on 401; answers the status and
    /// the envelope.
    async fn call(
        &self,
        what: &str,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Envelope), ConnectorError> {
        let url = format!("{}{path_and_query}", self.base);
        for attempt in 0..2 {
            let token = self.token(attempt > 0).await?;
            let response = self
                .ctx
                .http
                .send(what, &DefaultRetry, |c| {
                    let r = c.request(method.clone(), &url).bearer_auth(&token);
                    match body {
                        Some(b) => r.json(b),
                        None => r,
                    }
                })
                .await?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                continue;
            }
            if status == 401 || status == 403 {
                return Err(ConnectorError::new(
                    ErrorKind::Auth,
                    format!("{what}: HTTP {status}: the API client lacks the IOC Management scope"),
                ));
            }
            if status == 429 || status >= 500 {
                return Err(self
                    .ctx
                    .http
                    .check(what, response)
                    .await
                    .err()
                    .unwrap_or_else(|| ConnectorError::protocol(what.to_string())));
            }
            let text = response.text().await.map_err(|e| {
                ConnectorError::new(
                    ErrorKind::Network,
                    format!("{what}: reading the answer: {e}"),
                )
            })?;
            let envelope = if text.trim().is_empty() {
                Envelope::default()
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    ConnectorError::protocol(format!(
                        "{what}: HTTP {status}, not the CrowdStrike envelope ({e}): {}",
                        text.chars().take(200).collect::<String>()
                    ))
                })?
            };
            return Ok((status, envelope));
        }
        Err(ConnectorError::new(
            ErrorKind::Auth,
            format!("{what}: the token was refused twice"),
        ))
    }
}

fn falcon_type(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Sha256 => "sha256",
        Kind::Md5 => "md5",
        Kind::Domain => "domain",
        Kind::Ipv4 => "ipv4",
        Kind::Ipv6 => "ipv6",
        _ => return None,
    })
}

fn kind_of(falcon_type: &str) -> Option<Kind> {
    Some(match falcon_type {
        "sha256" => Kind::Sha256,
        "md5" => Kind::Md5,
        "domain" => Kind::Domain,
        "ipv4" => Kind::Ipv4,
        "ipv6" => Kind::Ipv6,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Pull

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// IOCs modified before this are in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    /// The unfinished run: where its window ends and its next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    /// The unfinished run is reading detections (after the IOCs of its window).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    detections: bool,
    /// Detections updated before this are in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detections_since: Option<Timestamp>,
}

/// A detection's indicator: one sighting of it.
fn detection_record(alert: &Value) -> Result<Record, (String, String)> {
    let text = |k: &str| {
        alert
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let t = text("ioc_type").unwrap_or("");
    let kind = match t {
        "hash_sha256" | "sha256" => Kind::Sha256,
        "hash_md5" | "md5" => Kind::Md5,
        "domain" => Kind::Domain,
        "ipv4" => Kind::Ipv4,
        "ipv6" => Kind::Ipv6,
        _ => return Err(("unknown_type".into(), format!("detection IOC type `{t}`"))),
    };
    let value = text("ioc_value").unwrap_or("");
    let indicator = parse(value, Some(kind), &ParseOptions::default())
        .map_err(|e| (e.reason().to_string(), format!("detection `{value}`: {e}")))?
        .first()
        .clone();
    let mut r = Record::new(indicator);
    r.attributes.severity = match alert.get("severity").and_then(Value::as_i64).unwrap_or(0) {
        80.. => Severity::Critical,
        60..=79 => Severity::High,
        40..=59 => Severity::Medium,
        1..=39 => Severity::Low,
        _ => Severity::Unknown,
    };
    r.attributes.comment = text("ioc_description")
        .or(text("description"))
        .map(str::to_string);
    r.attributes.tags = TagSet::from_tags(["crowdstrike:detection"]);
    let when = text("updated_timestamp").and_then(|t| Timestamp::parse(t).ok());
    r.first_seen = when;
    r.last_seen = when;
    Ok(r)
}

fn record(ioc: &Map<String, Value>) -> Result<Record, (String, String)> {
    let text = |k: &str| ioc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let t = text("type").unwrap_or("");
    let value = text("value").unwrap_or("");
    let kind = kind_of(t).ok_or_else(|| {
        (
            "unknown_type".to_string(),
            format!("unknown IOC type `{t}`"),
        )
    })?;
    let indicator = parse(value, Some(kind), &ParseOptions::default())
        .map_err(|e| (e.reason().to_string(), format!("`{value}`: {e}")))?
        .first()
        .clone();
    let mut r = Record::new(indicator);
    let a = &mut r.attributes;
    a.severity = match text("severity") {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("medium") => Severity::Medium,
        Some("low" | "informational") => Severity::Low,
        _ => Severity::Unknown,
    };
    a.safe = text("action") == Some("allow");
    a.comment = text("description").map(str::to_string);
    a.expires = text("expiration").and_then(|e| Timestamp::parse(e).ok());
    if let Some(tags) = ioc.get("tags").and_then(Value::as_array) {
        a.tags = TagSet::from_tags(tags.iter().filter_map(Value::as_str));
    }
    r.first_seen = text("created_on").and_then(|t| Timestamp::parse(t).ok());
    r.last_seen = text("modified_on").and_then(|t| Timestamp::parse(t).ok());
    r.echo = text("source").is_some_and(is_echo) || text("description").is_some_and(is_echo);
    Ok(r)
}

struct PullState<'a> {
    api: Api<'a>,
    cp: Checkpoint,
    logged: usize,
    done: bool,
}

impl PullState<'_> {
    /// One page of detections (`POST /alerts/combined/alerts/v1`) in the run's window; their
    /// indicators are sightings, merged per indicator within the page.
    async fn detections(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        let since = self
            .cp
            .detections_since
            .unwrap_or_else(|| self.api.ctx.initial_start());
        let end = *self.cp.window_end.get_or_insert_with(Timestamp::now);
        let mut body = json!({
            "filter": format!(
                "updated_timestamp:>='{}'+updated_timestamp:<'{}'",
                since.to_rfc3339(),
                end.to_rfc3339()
            ),
            "sort": "updated_timestamp.asc",
            "limit": 1000,
        });
        if let Some(after) = &self.cp.after {
            body["after"] = json!(after);
        }
        let what = "listing detections";
        let (status, page) = self
            .api
            .call(
                what,
                reqwest::Method::POST,
                "/alerts/combined/alerts/v1",
                Some(&body),
            )
            .await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("{what}: HTTP {status}: {}", page.messages().join("; ")),
            ));
        }
        let alerts = page.resources.unwrap_or_default();
        let mut records: Vec<Record> = Vec::new();
        let mut rejected = BTreeMap::<String, u64>::new();
        for alert in &alerts {
            match detection_record(alert) {
                Ok(r) => match records.iter_mut().find(|x| x.indicator == r.indicator) {
                    Some(x) => {
                        x.hits += 1;
                        x.attributes.severity = x.attributes.severity.max(r.attributes.severity);
                        x.last_seen = x.last_seen.max(r.last_seen);
                    }
                    None => records.push(r),
                },
                Err((reason, message)) => {
                    *rejected.entry(reason).or_default() += 1;
                    if self.logged < 20 {
                        self.logged += 1;
                        self.api.ctx.warn(message);
                    }
                }
            }
        }
        let after = page
            .meta
            .pointer("/pagination/after")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        match after {
            Some(a) if !alerts.is_empty() => self.cp.after = Some(a),
            _ => {
                self.cp.detections_since = Some(end);
                self.cp.detections = false;
                self.cp.after = None;
                self.cp.window_end = None;
                self.done = true;
            }
        }
        Ok(Some(PullBatch {
            records,
            rejected,
            checkpoint: serde_json::to_value(&self.cp).unwrap_or(Value::Null),
            snapshot_complete: false,
        }))
    }
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        if self.cp.detections {
            return self.detections().await;
        }
        let since = self
            .cp
            .since
            .unwrap_or_else(|| self.api.ctx.initial_start());
        let end = *self.cp.window_end.get_or_insert_with(Timestamp::now);
        let filter = format!(
            "modified_on:>='{}'+modified_on:<'{}'",
            since.to_rfc3339(),
            end.to_rfc3339()
        );
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("filter", &filter)
                .append_pair("sort", "modified_on.asc")
                .append_pair("limit", &MAX_PER_REQUEST.to_string());
            if let Some(after) = &self.cp.after {
                q.append_pair("after", after);
            }
            q.finish()
        };
        let what = "listing custom IOCs";
        let (status, page) = self
            .api
            .call(
                what,
                reqwest::Method::GET,
                &format!("/iocs/combined/indicator/v1?{query}"),
                None,
            )
            .await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("{what}: HTTP {status}: {}", page.messages().join("; ")),
            ));
        }
        let items = page.resources.unwrap_or_default();
        let mut records = Vec::with_capacity(items.len());
        let mut rejected = BTreeMap::<String, u64>::new();
        for item in &items {
            let Some(map) = item.as_object() else {
                *rejected.entry("not_an_object".into()).or_default() += 1;
                continue;
            };
            match record(map) {
                Ok(r) => records.push(r),
                Err((reason, message)) => {
                    *rejected.entry(reason).or_default() += 1;
                    if self.logged < 20 {
                        self.logged += 1;
                        self.api.ctx.warn(format!("custom IOC {message}"));
                    }
                }
            }
        }
        let after = page
            .meta
            .pointer("/pagination/after")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        match after {
            Some(a) if !items.is_empty() => self.cp.after = Some(a),
            _ => {
                self.cp.since = Some(end);
                self.cp.after = None;
                if self.api.ctx.values.flag("pull_detections") {
                    self.cp.detections = true;
                } else {
                    self.cp.window_end = None;
                    self.done = true;
                }
            }
        }
        // Only a last batch may be empty: go straight on to the detections.
        if records.is_empty() && rejected.is_empty() && self.cp.detections {
            return self.detections().await;
        }
        Ok(Some(PullBatch {
            records,
            rejected,
            checkpoint: serde_json::to_value(&self.cp).unwrap_or(Value::Null),
            snapshot_complete: false,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Push

fn severity_of(choice: &str, severity: Severity) -> &'static str {
    match choice {
        "critical" => "critical",
        "high" => "high",
        "medium" => "medium",
        "low" => "low",
        "informational" => "informational",
        _ => match severity {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium | Severity::Unknown => "medium",
            Severity::Low => "low",
        },
    }
}

fn action_for(choice: &str, kind: Kind) -> &'static str {
    let hash = matches!(kind, Kind::Md5 | Kind::Sha256);
    match (choice, hash) {
        ("prevent", true) => "prevent",
        ("prevent", false) => "detect",
        ("allow", true) => "allow",
        ("allow", false) | ("no_action", _) => "no_action",
        _ => "detect",
    }
}

fn expiration(choice: &str, expires: Option<Timestamp>) -> Option<String> {
    match choice {
        "never" => None,
        "indicator" => expires.map(Timestamp::to_rfc3339),
        days => days
            .parse::<i64>()
            .ok()
            .map(|d| Timestamp::now().plus_days(d).to_rfc3339()),
    }
}

fn source(ctx: &Context) -> String {
    ctx.marker().chars().take(256).collect()
}

#[async_trait]
impl Connector for CrowdStrike {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let (status, page) = api
            .call(
                "listing custom IOCs",
                reqwest::Method::GET,
                "/iocs/queries/indicators/v1?limit=1",
                None,
            )
            .await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!(
                    "listing custom IOCs: HTTP {status}: {}",
                    page.messages().join("; ")
                ),
            ));
        }
        let total = page
            .meta
            .pointer("/pagination/total")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(format!("Connected to {}: {total} custom IOC(s)", api.base))
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_pages((|| {
            Ok(PullState {
                api: Api::new(ctx)?,
                cp: stored_checkpoint("CrowdStrike", checkpoint)?,
                logged: 0,
                done: false,
            })
        })())
    }

    async fn push(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        if target.target != "ioc_management" {
            return Err(ConnectorError::config(format!(
                "crowdstrike has no target `{}`; its target is ioc_management",
                target.target
            )));
        }
        let api = Api::new(ctx)?;
        let p = &target.params;
        let mut platforms = p.list("platforms");
        if platforms.is_empty() {
            platforms = vec!["windows".into(), "mac".into(), "linux".into()];
        }
        let extra_tags: Vec<String> = p
            .text("tags")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let source = source(ctx);
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut sendable = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(t) = falcon_type(item.indicator.kind) else {
                outcomes[i] = Some(ItemOutcome::Skipped(format!(
                    "kind {} not supported by CrowdStrike",
                    item.indicator.kind
                )));
                continue;
            };
            let mut tags = item.tags.clone();
            tags.extend(extra_tags.iter().cloned());
            let mut ioc = json!({
                "type": t,
                "value": item.indicator.value,
                "action": action_for(p.text("action").unwrap_or("detect"), item.indicator.kind),
                "severity": severity_of(p.text("severity").unwrap_or("indicator"), item.severity),
                "platforms": platforms,
                "applied_globally": true,
                "source": source,
                "description": format!("{} from {}", item.severity.as_str(), item.sources.join(", ")),
                "tags": tags,
            });
            if let Some(e) = expiration(p.text("expiration").unwrap_or("indicator"), item.expires) {
                ioc["expiration"] = json!(e);
            }
            sendable.push((i, ioc));
        }
        let mut full: Option<String> = None;
        for chunk in sendable.chunks(MAX_PER_REQUEST) {
            if let Some(reason) = &full {
                for (i, _) in chunk {
                    outcomes[*i] = Some(ItemOutcome::Skipped(reason.clone()));
                }
                continue;
            }
            let body = json!({
                "comment": source,
                "indicators": chunk.iter().map(|(_, ioc)| ioc.clone()).collect::<Vec<_>>(),
            });
            let (status, answer) = api
                .call(
                    "creating custom IOCs",
                    reqwest::Method::POST,
                    "/iocs/entities/indicators/v1",
                    Some(&body),
                )
                .await?;
            let messages = answer.messages();
            if messages.iter().any(|m| m.contains(CAPACITY_MESSAGE)) {
                let reason = format!("capacity reached: {}", messages.join("; "));
                ctx.warn(format!(
                    "CrowdStrike: {reason}; the rest of this push is skipped"
                ));
                for (i, _) in chunk {
                    outcomes[*i] = Some(ItemOutcome::Skipped(reason.clone()));
                }
                full = Some(reason);
                continue;
            }
            // Refused items come back as submitted, with `message_type: "error"`.
            let mut refused: HashMap<(String, String), String> = HashMap::new();
            for r in answer.resources.iter().flatten() {
                if r.get("message_type").and_then(Value::as_str) == Some("error") {
                    let key = (
                        r.get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        r.get("value")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_ascii_lowercase(),
                    );
                    let message = r
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("refused")
                        .to_string();
                    refused.insert(key, message);
                }
            }
            for (i, ioc) in chunk {
                let key = (
                    ioc["type"].as_str().unwrap_or("").to_string(),
                    ioc["value"].as_str().unwrap_or("").to_ascii_lowercase(),
                );
                outcomes[*i] = Some(match (refused.get(&key), status) {
                    (Some(m), _) if m.contains("Duplicate") => ItemOutcome::Shared,
                    (Some(m), _) => ItemOutcome::Skipped(format!("CrowdStrike refused it: {m}")),
                    (None, 200 | 201) => ItemOutcome::Shared,
                    // A 400 lists what it refused; the others were stored.
                    (None, 400) if !refused.is_empty() => ItemOutcome::Shared,
                    (None, s) => ItemOutcome::Failed(format!(
                        "HTTP {s}: {}",
                        if messages.is_empty() {
                            "no message".to_string()
                        } else {
                            messages.join("; ")
                        }
                    )),
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| ItemOutcome::Failed("not sent".into())))
            .collect())
    }

    async fn retract(
        &self,
        ctx: &Context,
        _target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let api = Api::new(ctx)?;
        let source = source(ctx).replace('\'', "");
        let mut outcomes = vec![ItemOutcome::Shared; items.len()];
        let values: Vec<(usize, &str)> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| falcon_type(i.indicator.kind).is_some())
            .map(|(n, i)| (n, i.indicator.value.as_str()))
            .collect();
        for chunk in values.chunks(DELETE_CHUNK) {
            let list = chunk
                .iter()
                .map(|(_, v)| format!("'{}'", v.replace('\'', "")))
                .collect::<Vec<_>>()
                .join(",");
            let filter = format!("source:'{source}'+value:[{list}]");
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filter", &filter)
                .append_pair("comment", &source)
                .finish();
            let (status, answer) = api
                .call(
                    "deleting custom IOCs",
                    reqwest::Method::DELETE,
                    &format!("/iocs/entities/indicators/v1?{query}"),
                    None,
                )
                .await?;
            // 404: none of them is held any more, which is what was wanted.
            if !matches!(status, 200 | 404) {
                let reason = format!("HTTP {status}: {}", answer.messages().join("; "));
                for (n, _) in chunk {
                    outcomes[*n] = ItemOutcome::Failed(reason.clone());
                }
            }
        }
        Ok(outcomes)
    }
}
