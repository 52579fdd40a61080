//! `netskope`: a Netskope tenant's REST API — malware and malsite alerts in, URL lists and the
//! file-hash list out.
//!
//! - **Pull** through the Data Export iterator
//!   (`GET /api/v2/events/dataexport/alerts/{malware|malsite}?index=NAME&operation=…`): the
//!   cursor lives on the tenant, keyed by the index name. The first run positions it with an
//!   epoch ("initial range" back), later runs read `next` until the tenant answers a page with a
//!   non-zero `wait_time` (caught up). Every alert is a sighting: it counts as a hit of its
//!   indicator, and alerts of one indicator in a page are merged into one record with their
//!   count. Malware alerts give md5 and sha256 (and `local_md5`/`local_sha256` when they
//!   differ); malsite alerts give the URL.
//! - **Push** to "Add to URL List" (append to a named list, created when missing, then deploy)
//!   and "Add to File Hash List" (full-state replace through the v1 endpoint).
//! - **Retract** from a URL list by replacing it without the retracted values, then deploy.
//!
//! Wire facts follow `contracts/vendors.md` §1 and the emulator `iocx sim netskope`.
//!
//! ## Resuming a killed pull
//!
//! The tenant's cursor advances when it serves a page, not when iocx commits it. Each committed
//! page's checkpoint records its `timestamp_hwm` and alert count; a run that finds the previous
//! run unfinished first asks for `resend` and ingests that page only when it is not the one
//! already committed, so no alert is lost and none is counted twice.
//!
//! ## Choices
//!
//! - `ratelimit-remaining: 0` waits `ratelimit-reset` seconds (at most 60) before the next call;
//!   429 and 5xx are retried by the shared client with `Retry-After`.
//! - A run does not sleep out `wait_time`: it ends, and the next scheduled run continues; a run
//!   that starts before the tenant's `wait_time` has passed skips that alert type.
//! - URL-list entries: URLs are sent as stored (the tenant ignores the scheme), domains as the
//!   bare name, IPv4 addresses as text; IPv6, CIDR, hashes and e-mail addresses are not URL-list
//!   entries. Entries the tenant refuses are skipped with its reason and the rest sent again.
//! - An emptied URL list keeps one placeholder entry (`iocx-placeholder.invalid`): the tenant
//!   refuses empty lists.
//! - Alerts triggered by a list iocx pushed are real sightings (an enforcement point hit the
//!   value), not echoes, so they count as hits of the Netskope source.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Indicator, Kind, ParseOptions, Record, Severity, TagSet, Timestamp, parse};
use reqwest::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, Capacity, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, Pages, PullBatch, PushItem,
    TargetCall, http_url, pull_pages, stored_checkpoint,
};

#[cfg(test)]
mod tests;

/// The `netskope` connector.
pub struct Netskope;

/// A URL list's budget: 7 MB of JSON-encoded entries.
pub const URL_LIST_MAX_BYTES: u64 = 7 * 1024 * 1024;
/// A URL list's most entries.
pub const URL_LIST_MAX_ENTRIES: u64 = 300_000;
/// The file-hash list's budget: 8 MB.
pub const FILE_HASH_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The entry kept in a URL list that would otherwise be empty.
pub const PLACEHOLDER: &str = "iocx-placeholder.invalid";
/// Entries per append request.
const APPEND_BATCH: usize = 5_000;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "netskope".into(),
    title: "Netskope".into(),
    description: "Pulls malware and malsite alerts (each a sighting) and pushes indicators to URL \
         lists and the file hash list, retracting them when they leave the rule."
        .into(),
    fields: vec![
        FieldSpec::new(
            "tenant",
            "Tenant",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "Your tenant's host, e.g. example.goskope.com, or a base URL https://HOST.",
        )
        .required(),
        FieldSpec::new(
            "token",
            "API v2 token",
            FieldKind::Secret,
            "A REST API v2 token with read access to /api/v2/events/dataexport and read+write \
             access to /api/v2/policy/urllist.",
        )
        .required(),
        FieldSpec::new(
            "v1_token",
            "API v1 token",
            FieldKind::Secret,
            "The REST API v1 token, needed only for the file hash list.",
        ),
        FieldSpec::new(
            "alert_types",
            "Alert types",
            FieldKind::multi_choice(&[("malware", "Malware"), ("malsite", "Malsite")]),
            "Which alerts to pull.",
        )
        .default_value(json!(["malware", "malsite"])),
        FieldSpec::new(
            "index",
            "Iterator index name",
            FieldKind::Text { max_len: Some(64) },
            "The tenant keeps one cursor per index name; use a name no other consumer uses.",
        )
        .default_value("iocx"),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: true,
        sightings: true,
    },
    targets: vec![
        TargetSpec {
            name: "url_list".into(),
            label: "Add to URL List".into(),
            description: "Appends URLs, domains and IPv4 addresses to a URL list (created when \
                 missing), then applies pending changes; 7 MB and 300,000 entries per list."
                .into(),
            fields: vec![
                FieldSpec::new(
                    "list_name",
                    "URL list name",
                    FieldKind::Text { max_len: Some(255) },
                    "The list to add to; created when it does not exist.",
                )
                .required(),
                FieldSpec::new(
                    "list_type",
                    "List type",
                    FieldKind::choice(&[("exact", "Exact"), ("regex", "Regex")]),
                    "The type of a list iocx creates.",
                )
                .default_value("exact"),
            ],
            delivery: Delivery {
                mode: DeliveryMode::Incremental,
                batch_size: APPEND_BATCH,
                byte_budget: Some(2_000_000),
                kinds: vec![Kind::Url, Kind::Domain, Kind::Ipv4],
                capacity: Capacity {
                    per_kind: None,
                    total: Some(URL_LIST_MAX_ENTRIES),
                    total_bytes: Some(URL_LIST_MAX_BYTES),
                },
                removal: true,
                deploy: true,
            },
        },
        TargetSpec {
            name: "file_hash_list".into(),
            label: "Add to File Hash List".into(),
            description: "Replaces a file hash list with the selected MD5 and SHA-256 hashes \
                 (v1 API, 8 MB)."
                .into(),
            fields: vec![
                FieldSpec::new(
                    "list_name",
                    "File hash list name",
                    FieldKind::Text { max_len: Some(255) },
                    "An existing file hash list of a file profile.",
                )
                .required(),
            ],
            delivery: Delivery {
                mode: DeliveryMode::FullState,
                batch_size: 300_000,
                byte_budget: Some(FILE_HASH_MAX_BYTES as usize),
                kinds: vec![Kind::Md5, Kind::Sha256],
                capacity: Capacity {
                    per_kind: None,
                    total: Some(300_000),
                    total_bytes: Some(FILE_HASH_MAX_BYTES),
                },
                removal: true,
                deploy: false,
            },
        },
    ],
});

/// The tenant's API access.
struct Api<'a> {
    ctx: &'a Context,
    base: String,
    token: String,
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let tenant = ctx
            .values
            .text("tenant")
            .ok_or_else(|| ConnectorError::config("the tenant is not set"))?
            .trim()
            .trim_end_matches('/');
        let base = if tenant.contains("://") {
            tenant.to_string()
        } else {
            format!("https://{tenant}")
        };
        let base = http_url("tenant", &base)?;
        let token = ctx
            .values
            .text("token")
            .ok_or_else(|| ConnectorError::config("the API v2 token is not set"))?
            .to_string();
        Ok(Api { ctx, base, token })
    }

    async fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ConnectorError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .ctx
            .http
            .send(what, &DefaultRetry, |c| {
                let r = c
                    .request(method.clone(), &url)
                    .header("Netskope-Api-Token", &self.token)
                    .header("Accept", "application/json");
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await?;
        honour_rate_limit(&response).await;
        match response.status().as_u16() {
            401 => Err(ConnectorError::new(
                ErrorKind::Auth,
                format!("{what}: the tenant refused the API v2 token (401)"),
            )),
            403 => Err(ConnectorError::new(
                ErrorKind::Auth,
                format!("{what}: the API v2 token lacks the privilege for {path} (403)"),
            )),
            s if s == 429 || s >= 500 => Err(self
                .ctx
                .http
                .check(what, response)
                .await
                .err()
                .unwrap_or_else(|| {
                    ConnectorError::new(ErrorKind::Status(s), format!("{what}: HTTP {s}"))
                })),
            _ => Ok(response),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ConnectorError> {
        let response = self.send(what, method, path, body).await?;
        let response = self.ctx.http.check(what, response).await?;
        self.ctx.http.json(what, response).await
    }
}

/// Waits out a spent rate-limit window.
async fn honour_rate_limit(response: &Response) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if header("ratelimit-remaining") == Some(0) {
        let wait = header("ratelimit-reset").unwrap_or(1).min(60);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Pull

/// The iterator state of one alert type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The tenant's cursor was positioned (by an epoch) for this index.
    #[serde(default)]
    started: bool,
    /// The last committed page: its `timestamp_hwm` and number of alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_hwm: Option<i64>,
    #[serde(default)]
    last_count: usize,
    /// The tenant asked to wait until then before the next `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    #[serde(default)]
    cursors: BTreeMap<String, Cursor>,
}

#[derive(Debug, Deserialize)]
struct ExportPage {
    #[serde(default)]
    ok: i64,
    #[serde(default)]
    result: Vec<Map<String, Value>>,
    #[serde(default)]
    wait_time: Option<u64>,
    #[serde(default)]
    timestamp_hwm: Option<i64>,
}

fn severity(text: Option<&str>) -> Severity {
    match text.map(str::to_ascii_lowercase).as_deref() {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("medium") => Severity::Medium,
        Some("low" | "informational" | "info") => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// The records of one page: one per indicator, its hits the number of alerts.
fn records(
    ctx: &Context,
    alert_type: &str,
    alerts: &[Map<String, Value>],
    logged: &mut usize,
) -> (Vec<Record>, BTreeMap<String, u64>) {
    let mut merged: HashMap<Indicator, Record> = HashMap::new();
    let mut order = Vec::new();
    let mut rejected = BTreeMap::<String, u64>::new();
    for alert in alerts {
        let text = |k: &str| {
            alert
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let when = alert
            .get("timestamp")
            .and_then(Value::as_i64)
            .map(Timestamp);
        let mut candidates: Vec<(Kind, &str)> = Vec::new();
        let (sev, comment, tag) = if alert_type == "malware" {
            for (kind, key) in [
                (Kind::Md5, "md5"),
                (Kind::Md5, "local_md5"),
                (Kind::Sha256, "sha256"),
                (Kind::Sha256, "local_sha256"),
            ] {
                if let Some(v) = text(key) {
                    candidates.push((kind, v));
                }
            }
            (
                severity(text("malware_severity").or(text("severity"))),
                text("malware_name").map(str::to_string),
                "netskope:malware",
            )
        } else {
            if let Some(v) = text("url") {
                candidates.push((Kind::Url, v));
            }
            (
                severity(text("severity_level").or(text("severity"))),
                text("category").map(str::to_string),
                "netskope:malsite",
            )
        };
        if candidates.is_empty() {
            *rejected.entry("no_indicator".into()).or_default() += 1;
            continue;
        }
        // An alert is one sighting of each indicator it names, however many fields repeat it.
        let mut seen_here: HashSet<Indicator> = HashSet::new();
        for (kind, raw) in candidates {
            let indicator = match parse(raw, Some(kind), &ParseOptions::default()) {
                Ok(p) => p.first().clone(),
                Err(e) => {
                    *rejected.entry(e.reason().to_string()).or_default() += 1;
                    if *logged < 20 {
                        *logged += 1;
                        ctx.warn(format!("{alert_type} alert: `{raw}`: {e}"));
                    }
                    continue;
                }
            };
            if !seen_here.insert(indicator.clone()) {
                continue;
            }
            match merged.get_mut(&indicator) {
                Some(r) => {
                    r.hits += 1;
                    r.attributes.severity = r.attributes.severity.max(sev);
                    r.last_seen = r.last_seen.max(when);
                    r.first_seen = match (r.first_seen, when) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => {
                    let mut r = Record::new(indicator.clone());
                    r.attributes.severity = sev;
                    r.attributes.comment = comment.clone();
                    r.attributes.tags = TagSet::from_tags([tag]);
                    r.first_seen = when;
                    r.last_seen = when;
                    r.hits = 1;
                    order.push(indicator.clone());
                    merged.insert(indicator, r);
                }
            }
        }
    }
    let out = order
        .into_iter()
        .filter_map(|i| merged.remove(&i))
        .collect();
    (out, rejected)
}

struct PullState<'a> {
    api: Api<'a>,
    cp: Checkpoint,
    types: Vec<String>,
    index: String,
    /// Alert types whose last served page was checked this run.
    checked: HashSet<String>,
    logged: usize,
    done: bool,
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        self.batch().await
    }
}

impl PullState<'_> {
    async fn page(&self, alert_type: &str, operation: &str) -> Result<ExportPage, ConnectorError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("index", &self.index)
            .append_pair("operation", operation)
            .finish();
        let what = format!("reading {alert_type} alerts ({operation})");
        let page: ExportPage = self
            .api
            .json(
                &what,
                reqwest::Method::GET,
                &format!("/api/v2/events/dataexport/alerts/{alert_type}?{query}"),
                None,
            )
            .await?;
        if page.ok != 1 {
            return Err(ConnectorError::protocol(format!(
                "{what}: the tenant answered ok={} instead of 1",
                page.ok
            )));
        }
        Ok(page)
    }

    /// The next batch with something in it, or the last one.
    async fn batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        while let Some(alert_type) = self.types.first().cloned() {
            let now = Timestamp::now();
            let mut cursor = self
                .cp
                .cursors
                .get(&alert_type)
                .cloned()
                .unwrap_or_default();
            if cursor.not_before.is_some_and(|t| t > now) {
                self.types.remove(0);
                continue;
            }
            let (operation, resend) = if !cursor.started {
                (self.api.ctx.initial_start().0.to_string(), false)
            } else if self.checked.insert(alert_type.clone()) {
                // The tenant may have served a page the last run never committed: look at the
                // last page served before moving on.
                ("resend".to_string(), true)
            } else {
                ("next".to_string(), false)
            };
            cursor.started = true;
            let page = self.page(&alert_type, &operation).await?;
            let repeat = resend
                && page.timestamp_hwm == cursor.last_hwm
                && page.result.len() == cursor.last_count;
            let (records, rejected) = if repeat {
                (Vec::new(), BTreeMap::new())
            } else {
                records(self.api.ctx, &alert_type, &page.result, &mut self.logged)
            };
            if !repeat {
                cursor.last_hwm = page.timestamp_hwm;
                cursor.last_count = page.result.len();
            }
            let wait = page.wait_time.unwrap_or(30);
            // After an epoch, an empty page only means that hour was quiet.
            let positioned = !resend && operation != "next";
            let caught_up = wait > 0 || (page.result.is_empty() && !positioned);
            cursor.not_before = (wait > 0).then(|| now.plus(wait as i64));
            self.cp.cursors.insert(alert_type.clone(), cursor);
            if caught_up && !resend {
                self.types.remove(0);
            }
            if !records.is_empty() || !rejected.is_empty() {
                self.api.ctx.info(format!(
                    "{} {alert_type} alert(s) → {} indicator(s)",
                    page.result.len(),
                    records.len()
                ));
                return Ok(Some(PullBatch {
                    records,
                    rejected,
                    checkpoint: serde_json::to_value(&self.cp).unwrap_or(Value::Null),
                    snapshot_complete: false,
                }));
            }
        }
        self.done = true;
        Ok(Some(PullBatch {
            checkpoint: serde_json::to_value(&self.cp).unwrap_or(Value::Null),
            ..PullBatch::default()
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Push

#[derive(Debug, Deserialize)]
struct UrlList {
    id: i64,
    name: String,
    #[serde(default)]
    data: Option<UrlListData>,
}

#[derive(Debug, Deserialize)]
struct UrlListData {
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default, rename = "type")]
    list_type: Option<String>,
}

/// The entry a URL list gets for an item.
fn url_entry(item: &PushItem) -> Option<String> {
    match item.indicator.kind {
        Kind::Url | Kind::Domain | Kind::Ipv4 => Some(item.indicator.value.clone()),
        _ => None,
    }
}

/// What the tenant answered to a list change.
enum Change {
    Done,
    /// Entries refused, with the tenant's reasons.
    Refused(Vec<(String, String)>),
    /// Another 400: the message.
    Error(String),
}

impl Api<'_> {
    async fn find_list(&self, name: &str) -> Result<Option<UrlList>, ConnectorError> {
        let lists: Vec<UrlList> = self
            .json(
                "listing URL lists",
                reqwest::Method::GET,
                "/api/v2/policy/urllist?field=id,name,data",
                None,
            )
            .await?;
        Ok(lists.into_iter().find(|l| l.name == name))
    }

    /// Sends a list change; a 400 listing refused entries comes back as [`Change::Refused`].
    async fn change(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<Change, ConnectorError> {
        let response = self.send(what, method, path, Some(body)).await?;
        if response.status().is_success() {
            return Ok(Change::Done);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 400
            && let Some(entries) = parsed.get("message").and_then(Value::as_array)
        {
            let refused: Vec<(String, String)> = entries
                .iter()
                .filter_map(|e| {
                    let e = e.as_array()?;
                    Some((
                        e.first()?.as_str()?.to_string(),
                        e.get(1)
                            .and_then(Value::as_str)
                            .unwrap_or("refused")
                            .to_string(),
                    ))
                })
                .collect();
            if !refused.is_empty() {
                return Ok(Change::Refused(refused));
            }
        }
        let message = parsed
            .get("message")
            .map(|m| {
                m.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m.to_string())
            })
            .unwrap_or_else(|| text.chars().take(300).collect());
        if status == 400 {
            Ok(Change::Error(message))
        } else {
            Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("{what}: HTTP {status}: {message}"),
            ))
        }
    }

    /// Sends `entries` with `send`, dropping entries the tenant refuses (recorded in
    /// `refused`) and trying again, until it is accepted or nothing is left.
    async fn change_dropping_refused(
        &self,
        what: &str,
        (method, path): (reqwest::Method, &str),
        mut entries: Vec<String>,
        refused: &mut HashMap<String, String>,
        body: &(dyn Fn(&[String]) -> Value + Sync),
    ) -> Result<Option<String>, ConnectorError> {
        loop {
            if entries.is_empty() {
                return Ok(None);
            }
            match self
                .change(what, method.clone(), path, &body(&entries))
                .await?
            {
                Change::Done => return Ok(None),
                Change::Refused(bad) => {
                    let before = entries.len();
                    let bad_set: HashSet<&str> = bad.iter().map(|(e, _)| e.as_str()).collect();
                    entries.retain(|e| !bad_set.contains(e.as_str()));
                    for (entry, reason) in &bad {
                        refused.insert(entry.clone(), reason.clone());
                    }
                    self.ctx.warn(format!(
                        "{what}: the tenant refused {} entr{}; sending the rest again",
                        bad.len(),
                        if bad.len() == 1 { "y" } else { "ies" }
                    ));
                    if entries.len() == before {
                        return Ok(Some(format!(
                            "{what}: the tenant refused entries it did not name"
                        )));
                    }
                }
                Change::Error(message) => return Ok(Some(message)),
            }
        }
    }

    async fn deploy(&self) -> Result<(), ConnectorError> {
        let response = self
            .send(
                "applying URL list changes",
                reqwest::Method::POST,
                "/api/v2/policy/urllist/deploy",
                None,
            )
            .await?;
        self.ctx
            .http
            .check("applying URL list changes", response)
            .await
            .map(|_| ())
    }
}

/// Outcomes of a list change for `items`, given the tenant's refusals and whole-call error.
fn list_outcomes(
    items: &[PushItem],
    entries: &[Option<String>],
    refused: &HashMap<String, String>,
    error: Option<String>,
) -> Vec<ItemOutcome> {
    items
        .iter()
        .zip(entries)
        .map(|(item, entry)| match entry {
            None => ItemOutcome::Skipped(format!(
                "kind {} cannot be a URL list entry",
                item.indicator.kind
            )),
            Some(e) => match (refused.get(e), &error) {
                (Some(reason), _) => ItemOutcome::Skipped(format!("Netskope refused it: {reason}")),
                (None, Some(message)) => ItemOutcome::Failed(message.clone()),
                (None, None) => ItemOutcome::Shared,
            },
        })
        .collect()
}

/// The target's list name.
fn list_name(target: &TargetCall) -> Result<&str, ConnectorError> {
    target
        .params
        .text("list_name")
        .ok_or_else(|| ConnectorError::config("the list name is not set"))
}

async fn push_url_list(
    api: &Api<'_>,
    target: &TargetCall,
    items: &[PushItem],
) -> Result<Vec<ItemOutcome>, ConnectorError> {
    let name = list_name(target)?;
    let list_type = target.params.text("list_type").unwrap_or("exact");
    let entries: Vec<Option<String>> = items.iter().map(url_entry).collect();
    let wanted: Vec<String> = entries.iter().flatten().cloned().collect();
    let mut refused = HashMap::new();
    let error = match api.find_list(name).await? {
        None => {
            let what = format!("creating URL list {name}");
            let body =
                |urls: &[String]| json!({"name": name, "data": {"urls": urls, "type": list_type}});
            api.change_dropping_refused(
                &what,
                (reqwest::Method::POST, "/api/v2/policy/urllist"),
                wanted,
                &mut refused,
                &body,
            )
            .await?
        }
        Some(list) => {
            let what = format!("appending to URL list {name}");
            let path = format!("/api/v2/policy/urllist/{}/append", list.id);
            let kind = list
                .data
                .and_then(|d| d.list_type)
                .unwrap_or_else(|| list_type.to_string());
            let body = |urls: &[String]| json!({"data": {"urls": urls, "type": kind}});
            api.change_dropping_refused(
                &what,
                (reqwest::Method::PATCH, &path),
                wanted,
                &mut refused,
                &body,
            )
            .await?
        }
    };
    Ok(list_outcomes(items, &entries, &refused, error))
}

async fn retract_url_list(
    api: &Api<'_>,
    target: &TargetCall,
    items: &[PushItem],
) -> Result<Vec<ItemOutcome>, ConnectorError> {
    let name = list_name(target)?;
    let entries: Vec<Option<String>> = items.iter().map(url_entry).collect();
    let Some(list) = api.find_list(name).await? else {
        // No list, nothing to remove.
        return Ok(vec![ItemOutcome::Shared; items.len()]);
    };
    let gone: HashSet<&str> = entries.iter().flatten().map(String::as_str).collect();
    let data = list.data.unwrap_or(UrlListData {
        urls: Vec::new(),
        list_type: None,
    });
    let mut keep: Vec<String> = data
        .urls
        .into_iter()
        .filter(|u| !gone.contains(u.as_str()))
        .collect();
    if keep.is_empty() {
        keep.push(PLACEHOLDER.to_string());
    }
    let what = format!("replacing URL list {name}");
    let body =
        json!({"data": {"urls": keep, "type": data.list_type.unwrap_or_else(|| "exact".into())}});
    let error = match api
        .change(
            &what,
            reqwest::Method::PATCH,
            &format!("/api/v2/policy/urllist/{}/replace", list.id),
            &body,
        )
        .await?
    {
        Change::Done => None,
        Change::Refused(bad) => Some(format!(
            "{what}: the tenant refused {} of the entries kept",
            bad.len()
        )),
        Change::Error(message) => Some(message),
    };
    Ok(items
        .iter()
        .zip(&entries)
        .map(|(_, e)| match (e, &error) {
            (None, _) => ItemOutcome::Shared,
            (Some(_), Some(m)) => ItemOutcome::Failed(m.clone()),
            (Some(_), None) => ItemOutcome::Shared,
        })
        .collect())
}

/// The v1 answer.
#[derive(Debug, Deserialize)]
struct V1Answer {
    #[serde(default)]
    status: String,
    #[serde(default)]
    errors: Vec<Value>,
}

/// Netskope's answer to an unchanged file hash list, which is a success.
pub const NO_CHANGE: &str = "Duplicate request, no change in file hashes";

async fn push_file_hashes(
    api: &Api<'_>,
    target: &TargetCall,
    items: &[PushItem],
) -> Result<Vec<ItemOutcome>, ConnectorError> {
    let name = list_name(target)?;
    let v1 = api
        .ctx
        .values
        .text("v1_token")
        .ok_or_else(|| ConnectorError::config("the file hash list needs the API v1 token"))?;
    let hashes: Vec<&str> = items
        .iter()
        .filter(|i| matches!(i.indicator.kind, Kind::Md5 | Kind::Sha256))
        .map(|i| i.indicator.value.as_str())
        .collect();
    let list = if hashes.is_empty() {
        // The tenant refuses an empty list; an all-f SHA-256 matches no file.
        "f".repeat(64)
    } else {
        hashes.join(",")
    };
    let what = format!("replacing file hash list {name}");
    let url = format!("{}/api/v1/updateFileHashList", api.base);
    let body = json!({"name": name, "list": list, "token": v1});
    let response = api
        .ctx
        .http
        .send(&what, &DefaultRetry, |c| c.post(&url).json(&body))
        .await?;
    let response = api.ctx.http.check(&what, response).await?;
    let answer: V1Answer = api.ctx.http.json(&what, response).await?;
    let messages: Vec<String> = answer
        .errors
        .iter()
        .map(|e| {
            e.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        })
        .collect();
    let ok = answer.status == "success" || messages.iter().any(|m| m.contains(NO_CHANGE));
    if !ok
        && messages
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("token"))
    {
        return Err(ConnectorError::new(
            ErrorKind::Auth,
            format!("{what}: {}", messages.join("; ")),
        ));
    }
    Ok(items
        .iter()
        .map(|i| match i.indicator.kind {
            Kind::Md5 | Kind::Sha256 if ok => ItemOutcome::Shared,
            Kind::Md5 | Kind::Sha256 => ItemOutcome::Failed(format!(
                "{what}: {}",
                if messages.is_empty() {
                    format!("status {}", answer.status)
                } else {
                    messages.join("; ")
                }
            )),
            k => ItemOutcome::Skipped(format!("kind {k} cannot be a file hash")),
        })
        .collect())
}

#[async_trait]
impl Connector for Netskope {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let lists: Vec<Value> = api
            .json(
                "listing URL lists",
                reqwest::Method::GET,
                "/api/v2/policy/urllist?field=id,name",
                None,
            )
            .await?;
        Ok(format!(
            "Connected to {}: {} URL list(s)",
            api.base,
            lists.len()
        ))
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_pages((|| {
            let mut types = ctx.values.list("alert_types");
            if types.is_empty() {
                types = vec!["malware".into(), "malsite".into()];
            }
            Ok(PullState {
                api: Api::new(ctx)?,
                cp: stored_checkpoint("Netskope", checkpoint)?,
                types,
                index: ctx.values.text("index").unwrap_or("iocx").to_string(),
                checked: HashSet::new(),
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
        let api = Api::new(ctx)?;
        match target.target.as_str() {
            "url_list" => push_url_list(&api, target, items).await,
            "file_hash_list" => push_file_hashes(&api, target, items).await,
            other => Err(ConnectorError::config(format!(
                "netskope has no target `{other}`; targets are url_list and file_hash_list"
            ))),
        }
    }

    async fn retract(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let api = Api::new(ctx)?;
        match target.target.as_str() {
            "url_list" => retract_url_list(&api, target, items).await,
            // A full-state list is replaced by the next push; nothing to do per item.
            "file_hash_list" => Ok(vec![ItemOutcome::Shared; items.len()]),
            other => Err(ConnectorError::config(format!(
                "netskope has no target `{other}`"
            ))),
        }
    }

    async fn deploy(&self, ctx: &Context, target: &TargetCall) -> Result<(), ConnectorError> {
        if target.target == "url_list" {
            Api::new(ctx)?.deploy().await?;
        }
        Ok(())
    }
}
