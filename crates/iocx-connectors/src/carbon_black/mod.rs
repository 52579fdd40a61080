//! `carbon_black`: VMware Carbon Black Cloud (Enterprise EDR).
//!
//! - **Pull**: alerts (`POST /api/alerts/v7/orgs/{org}/alerts/_search`, a `backend_timestamp`
//!   window, `start`/`rows` pages of 1,000); each alert is a sighting of its process hashes
//!   (`process_sha256`, and `process_md5` when present).
//! - **Push** to "Custom feed": a full-state target. Carbon Black replaces every report of a
//!   feed on `POST …/feeds/{id}/reports`, so each change sends the whole selected set, grouped
//!   into reports of at most 1,000 values (one report per field and severity), into a feed iocx
//!   creates (by name) when it is missing. Watchlists subscribed to the feed then alert on them.
//! - **Retract**: the next full-state push leaves them out.
//!
//! Wire facts follow `contracts/vendors.md` §4 and the emulator `iocx sim carbon-black`.
//!
//! ## Choices
//!
//! - IOC fields: sha256 → `process_sha256`, md5 → `process_md5`, ipv4 → `netconn_ipv4`, ipv6 →
//!   `netconn_ipv6`, domain → `netconn_domain` (Enterprise EDR's search fields), `equality`
//!   matches.
//! - Report severity (1–10): critical 10, high 8, medium 5, low 3, unknown 1.
//! - Report ids are stable (`iocx-FIELD-SEVERITY-N`), so an unchanged selection rewrites the
//!   same reports.
//! - Capacity: 10,000 reports of 1,000 values; iocx packs values, so the declared limit is 10
//!   million values — more than any other destination holds.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Kind, ParseOptions, Record, Severity, TagSet, Timestamp, parse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, Capacity, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ItemOutcome, Pages, PullBatch, PushItem, TargetCall,
    http_url, pull_pages, stored_checkpoint,
};

#[cfg(test)]
mod tests;

/// The `carbon_black` connector.
pub struct CarbonBlack;

/// Values per report.
pub const MAX_IOCS_PER_REPORT: usize = 1_000;
/// Reports per feed.
pub const MAX_REPORTS_PER_FEED: usize = 10_000;
/// Alerts per search page.
const ROWS: u64 = 1_000;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "carbon_black".into(),
    title: "VMware Carbon Black Cloud".into(),
    description: "Pulls alerts' process hashes (each alert a sighting) and keeps a custom \
         Enterprise EDR feed holding the selected indicators."
        .into(),
    fields: vec![
        FieldSpec::new(
            "url",
            "Environment URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "Your Carbon Black Cloud environment, e.g. https://defense.conferdeploy.net.",
        )
        .required(),
        FieldSpec::new(
            "org_key",
            "Org key",
            FieldKind::Text { max_len: Some(64) },
            "Settings → API Access → API Keys: the organisation key.",
        )
        .required(),
        FieldSpec::new(
            "api_id",
            "API ID",
            FieldKind::Text { max_len: Some(64) },
            "A custom API key with feed and alert permissions.",
        )
        .required(),
        FieldSpec::new(
            "api_secret",
            "API secret key",
            FieldKind::Secret,
            "The key's secret (sent as X-Auth-Token: SECRET/ID).",
        )
        .required(),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: true,
        sightings: true,
    },
    targets: vec![TargetSpec {
        name: "feed".into(),
        label: "Custom feed".into(),
        description: "Keeps a private Enterprise EDR feed holding the selected hashes, addresses \
             and domains; subscribe a watchlist to it."
            .into(),
        fields: vec![
            FieldSpec::new(
                "feed_name",
                "Feed name",
                FieldKind::Text { max_len: Some(255) },
                "The feed; created when it does not exist.",
            )
            .default_value("iocx"),
        ],
        delivery: Delivery {
            mode: DeliveryMode::FullState,
            batch_size: MAX_IOCS_PER_REPORT * MAX_REPORTS_PER_FEED,
            byte_budget: None,
            kinds: vec![
                Kind::Sha256,
                Kind::Md5,
                Kind::Ipv4,
                Kind::Ipv6,
                Kind::Domain,
            ],
            capacity: Capacity {
                total: Some((MAX_IOCS_PER_REPORT * MAX_REPORTS_PER_FEED) as u64),
                ..Capacity::default()
            },
            removal: true,
            deploy: false,
        },
    }],
});

struct Api<'a> {
    ctx: &'a Context,
    base: String,
    org: String,
    auth: String,
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let text = |k: &str, what: &str| {
            ctx.values
                .text(k)
                .map(str::to_string)
                .ok_or_else(|| ConnectorError::config(format!("the {what} is not set")))
        };
        let base = http_url("url", &text("url", "environment URL")?)?;
        let org = text("org_key", "org key")?;
        if !org.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConnectorError::config(format!(
                "org key `{org}` must be letters and digits"
            )));
        }
        let auth = format!(
            "{}/{}",
            text("api_secret", "API secret key")?,
            text("api_id", "API ID")?
        );
        Ok(Api {
            ctx,
            base,
            org,
            auth,
        })
    }

    async fn call(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ConnectorError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .ctx
            .http
            .send_ok(what, &DefaultRetry, |c| {
                let r = c
                    .request(method.clone(), &url)
                    .header("X-Auth-Token", &self.auth);
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await?;
        if response.status().as_u16() == 204 {
            return Ok(Value::Null);
        }
        self.ctx.http.json(what, response).await
    }

    fn feeds(&self) -> String {
        format!("/threathunter/feedmgr/v2/orgs/{}/feeds", self.org)
    }
}

// ---------------------------------------------------------------------------------------------
// Pull

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_end: Option<Timestamp>,
    /// The next row (1-based) of the unfinished window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
}

struct PullState<'a> {
    api: Api<'a>,
    cp: Checkpoint,
    done: bool,
}

fn alert_severity(n: i64) -> Severity {
    match n {
        9.. => Severity::Critical,
        7..=8 => Severity::High,
        4..=6 => Severity::Medium,
        1..=3 => Severity::Low,
        _ => Severity::Unknown,
    }
}

fn alert_records(alerts: &[Value]) -> (Vec<Record>, BTreeMap<String, u64>) {
    let mut out: Vec<Record> = Vec::new();
    let mut rejected = BTreeMap::<String, u64>::new();
    for alert in alerts {
        let text = |k: &str| {
            alert
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let severity = alert_severity(alert.get("severity").and_then(Value::as_i64).unwrap_or(0));
        let when = text("backend_timestamp").and_then(|t| Timestamp::parse(t).ok());
        let mut any = false;
        for (kind, key) in [(Kind::Sha256, "process_sha256"), (Kind::Md5, "process_md5")] {
            let Some(raw) = text(key) else { continue };
            any = true;
            match parse(raw, Some(kind), &ParseOptions::default()) {
                Ok(p) => {
                    let indicator = p.first().clone();
                    if let Some(r) = out.iter_mut().find(|r| r.indicator == indicator) {
                        r.hits += 1;
                        r.attributes.severity = r.attributes.severity.max(severity);
                        r.last_seen = r.last_seen.max(when);
                        continue;
                    }
                    let mut r = Record::new(indicator);
                    r.attributes.severity = severity;
                    r.attributes.comment = text("reason").map(str::to_string);
                    if let Some(name) = text("process_name") {
                        r.attributes.tags = TagSet::from_tags([format!("process:{name}")]);
                    }
                    r.first_seen = when;
                    r.last_seen = when;
                    out.push(r);
                }
                Err(e) => *rejected.entry(e.reason().to_string()).or_default() += 1,
            }
        }
        if !any {
            *rejected.entry("no_hash".into()).or_default() += 1;
        }
    }
    (out, rejected)
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        let since = self
            .cp
            .since
            .unwrap_or_else(|| self.api.ctx.initial_start());
        let end = *self.cp.window_end.get_or_insert_with(Timestamp::now);
        let start = self.cp.start.unwrap_or(1);
        let body = json!({
            "time_range": {"start": since.to_rfc3339(), "end": end.to_rfc3339()},
            "criteria": {},
            "sort": [{"field": "backend_timestamp", "order": "ASC"}],
            "start": start,
            "rows": ROWS,
        });
        let page = self
            .api
            .call(
                "searching alerts",
                reqwest::Method::POST,
                &format!("/api/alerts/v7/orgs/{}/alerts/_search", self.api.org),
                Some(&body),
            )
            .await?;
        let alerts = page
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let found = page.get("num_found").and_then(Value::as_u64).unwrap_or(0);
        let (records, rejected) = alert_records(&alerts);
        let next = start + alerts.len() as u64;
        if alerts.is_empty() || next > found {
            self.cp = Checkpoint {
                since: Some(end),
                window_end: None,
                start: None,
            };
            self.done = true;
        } else {
            self.cp.start = Some(next);
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

fn field(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Sha256 => "process_sha256",
        Kind::Md5 => "process_md5",
        Kind::Ipv4 => "netconn_ipv4",
        Kind::Ipv6 => "netconn_ipv6",
        Kind::Domain => "netconn_domain",
        _ => return None,
    })
}

fn report_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 10,
        Severity::High => 8,
        Severity::Medium => 5,
        Severity::Low => 3,
        Severity::Unknown => 1,
    }
}

/// The feed's reports for `items`: one per field and severity, at most 1,000 values each.
fn reports(ctx: &Context, items: &[PushItem]) -> Vec<Value> {
    let mut groups: BTreeMap<(&'static str, u8), Vec<&str>> = BTreeMap::new();
    for item in items {
        if let Some(f) = field(item.indicator.kind) {
            groups
                .entry((f, report_severity(item.severity)))
                .or_default()
                .push(&item.indicator.value);
        }
    }
    let now = Timestamp::now().0;
    let mut out = Vec::new();
    for ((f, severity), values) in groups {
        for (n, chunk) in values.chunks(MAX_IOCS_PER_REPORT).enumerate() {
            let id = format!("iocx-{f}-{severity}-{n}");
            out.push(json!({
                "id": id,
                "timestamp": now,
                "title": format!("iocx: {f} severity {severity} #{}", n + 1),
                "description": ctx.marker(),
                "severity": severity,
                "tags": ["iocx"],
                "iocs_v2": [{"id": format!("{id}-1"), "match_type": "equality", "field": f, "values": chunk}],
            }));
        }
    }
    out
}

#[async_trait]
impl Connector for CarbonBlack {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let feeds = api
            .call("listing feeds", reqwest::Method::GET, &api.feeds(), None)
            .await?;
        let n = feeds
            .get("results")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        Ok(format!(
            "Connected to {} (org {}): {n} feed(s)",
            api.base, api.org
        ))
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_pages((|| {
            Ok(PullState {
                api: Api::new(ctx)?,
                cp: stored_checkpoint("Carbon Black", checkpoint)?,
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
        if target.target != "feed" {
            return Err(ConnectorError::config(format!(
                "carbon_black has no target `{}`; its target is feed",
                target.target
            )));
        }
        let api = Api::new(ctx)?;
        let name = target.params.text("feed_name").unwrap_or("iocx");
        let reports = reports(ctx, items);
        if reports.len() > MAX_REPORTS_PER_FEED {
            return Err(ConnectorError::config(format!(
                "{} reports would exceed a feed's {MAX_REPORTS_PER_FEED}",
                reports.len()
            )));
        }
        let feeds = api
            .call("listing feeds", reqwest::Method::GET, &api.feeds(), None)
            .await?;
        let existing = feeds
            .get("results")
            .and_then(Value::as_array)
            .and_then(|fs| {
                fs.iter()
                    .find(|f| f.get("name").and_then(Value::as_str) == Some(name))
                    .and_then(|f| f.get("id").and_then(Value::as_str).map(str::to_string))
            });
        match existing {
            Some(id) => {
                api.call(
                    &format!("replacing the reports of feed {name}"),
                    reqwest::Method::POST,
                    &format!("{}/{id}/reports", api.feeds()),
                    Some(&json!({ "reports": reports })),
                )
                .await?;
            }
            None => {
                let body = json!({
                    "feedinfo": {
                        "name": name,
                        "owner": api.org,
                        "provider_url": "https://github.com/iocx/iocx",
                        "summary": ctx.marker(),
                        "category": "iocx",
                        "access": "private",
                    },
                    "reports": reports,
                });
                api.call(
                    &format!("creating feed {name}"),
                    reqwest::Method::POST,
                    &api.feeds(),
                    Some(&body),
                )
                .await?;
            }
        }
        Ok(items
            .iter()
            .map(|i| match field(i.indicator.kind) {
                Some(_) => ItemOutcome::Shared,
                None => ItemOutcome::Skipped(format!(
                    "kind {} not supported by Carbon Black feeds",
                    i.indicator.kind
                )),
            })
            .collect())
    }

    async fn retract(
        &self,
        _ctx: &Context,
        _target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        // The feed is replaced whole by each push; what left the selection is already gone.
        Ok(vec![ItemOutcome::Shared; items.len()])
    }
}
