//! `sentinelone`: a SentinelOne management console (API 2.1).
//!
//! - **Pull**: threats updated since the checkpoint (`GET /web/api/v2.1/threats`, cursor pages
//!   of 1,000 within a fixed `updatedAt` window), whose file hashes (`threatInfo.sha256`,
//!   `sha1`, `md5`) become indicators. Each threat is a sighting of its hashes; a threat an
//!   analyst marked `false_positive` makes them safe.
//! - **Push** to "Threat Intelligence IOCs": `POST /web/api/v2.1/threat-intelligence/iocs` with
//!   the scope filter (tenant, accounts or sites), in batches of at most 2,500, `externalId` the
//!   value, `validUntil` from the indicator's expiry.
//! - **Retract**: `DELETE` with a filter on the value and iocx's `source`, so only IOCs this
//!   configuration created are removed.
//!
//! Wire facts follow `contracts/vendors.md` §3 and the emulator `iocx sim sentinelone`.
//!
//! ## Choices
//!
//! - A batch with invalid IOCs is refused whole by the console; the IOCs its error names
//!   (`errors[0].detail`, a JSON document) are skipped with their reasons and the rest sent
//!   again, as Netskope's plugin does.
//! - Domains are sent as `DNS` IOCs; CIDR and e-mail are not IOC types and are skipped.
//! - Severity: critical 7, high 6, medium 4, low 2, unknown 0 (SentinelOne's 0–7 scale).
//! - Deletes name one value each (the API's `value` selector takes one), with the `source`
//!   selector set to iocx's marker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Indicator, Kind, ParseOptions, Record, Severity, TagSet, Timestamp, parse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, Pages, PullBatch, PushItem,
    TargetCall, http_url, pull_pages, stored_checkpoint,
};

#[cfg(test)]
mod tests;

/// The `sentinelone` connector.
pub struct SentinelOne;

/// The most IOCs per create request.
pub const MAX_PER_REQUEST: usize = 2_500;
const API: &str = "/web/api/v2.1";

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "sentinelone".into(),
    title: "SentinelOne".into(),
    description: "Pulls threat hashes (each threat a sighting) and pushes indicators to \
         SentinelOne's Threat Intelligence IOCs for a tenant, accounts or sites."
        .into(),
    fields: vec![
        FieldSpec::new(
            "console",
            "Management console URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "https://YOUR-CONSOLE.sentinelone.net",
        )
        .required(),
        FieldSpec::new(
            "token",
            "API token",
            FieldKind::Secret,
            "A service user's API token (sent as Authorization: ApiToken …).",
        )
        .required(),
        FieldSpec::new(
            "scope",
            "Scope",
            FieldKind::choice(&[
                ("tenant", "The whole tenant"),
                ("account", "Accounts"),
                ("site", "Sites"),
            ]),
            "Where IOCs are created and which threats are read.",
        )
        .default_value("tenant"),
        FieldSpec::new(
            "scope_ids",
            "Account or site IDs",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "Comma-separated IDs, for the account and site scopes.",
        ),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: true,
        sightings: true,
    },
    targets: vec![TargetSpec {
        name: "threat_intelligence".into(),
        label: "Add to Threat Intelligence IOCs".into(),
        description: "Creates IOCs (EQUALS) in the configured scope, in batches of up to 2,500."
            .into(),
        fields: vec![
            FieldSpec::new(
                "valid_days",
                "Valid for",
                FieldKind::choice(&[
                    (
                        "indicator",
                        "Until the indicator expires (else the console's default)",
                    ),
                    ("14", "14 days"),
                    ("30", "30 days"),
                    ("90", "90 days"),
                    ("180", "180 days"),
                ]),
                "validUntil; the console caps it at 30 days for IPs and 180 days for others.",
            )
            .default_value("indicator"),
        ],
        delivery: Delivery {
            mode: DeliveryMode::Incremental,
            batch_size: MAX_PER_REQUEST,
            byte_budget: None,
            kinds: vec![
                Kind::Domain,
                Kind::Ipv4,
                Kind::Ipv6,
                Kind::Md5,
                Kind::Sha1,
                Kind::Sha256,
                Kind::Url,
            ],
            capacity: Default::default(),
            removal: true,
            deploy: false,
        },
    }],
});

struct Api<'a> {
    ctx: &'a Context,
    base: String,
    token: String,
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let console = ctx
            .values
            .text("console")
            .ok_or_else(|| ConnectorError::config("the console URL is not set"))?;
        let base = http_url("console", console)?;
        let token = ctx
            .values
            .text("token")
            .ok_or_else(|| ConnectorError::config("the API token is not set"))?
            .to_string();
        Ok(Api { ctx, base, token })
    }

    fn scope_ids(&self) -> Vec<String> {
        self.ctx
            .values
            .text("scope_ids")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The scope as a body filter.
    fn scope_filter(&self) -> Result<Map<String, Value>, ConnectorError> {
        let mut m = Map::new();
        match self.ctx.values.text("scope").unwrap_or("tenant") {
            "tenant" => {
                m.insert("tenant".into(), json!(true));
            }
            scope => {
                let ids = self.scope_ids();
                if ids.is_empty() {
                    return Err(ConnectorError::config(format!(
                        "the {scope} scope needs account or site IDs"
                    )));
                }
                let key = if scope == "site" {
                    "siteIds"
                } else {
                    "accountIds"
                };
                m.insert(key.into(), json!(ids));
            }
        }
        Ok(m)
    }

    /// The scope as query parameters.
    fn scope_query(&self) -> Vec<(String, String)> {
        match self.ctx.values.text("scope").unwrap_or("tenant") {
            "tenant" => vec![("tenant".into(), "true".into())],
            "site" => vec![("siteIds".into(), self.scope_ids().join(","))],
            _ => vec![("accountIds".into(), self.scope_ids().join(","))],
        }
    }

    async fn call(
        &self,
        what: &str,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ConnectorError> {
        let url = format!("{}{API}{path_and_query}", self.base);
        let response = self
            .ctx
            .http
            .send(what, &DefaultRetry, |c| {
                let r = c
                    .request(method.clone(), &url)
                    .header("Authorization", format!("ApiToken {}", self.token));
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 || status == 429 || status >= 500 {
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
        let value = serde_json::from_str(&text).map_err(|e| {
            ConnectorError::protocol(format!(
                "{what}: HTTP {status}, not JSON ({e}): {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        Ok((status, value))
    }
}

impl Api<'_> {
    /// A GET that must answer 200.
    async fn get_ok(&self, what: &str, path_and_query: &str) -> Result<Value, ConnectorError> {
        let (status, answer) = self
            .call(what, reqwest::Method::GET, path_and_query, None)
            .await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("{what}: HTTP {status}: {}", error_detail(&answer)),
            ));
        }
        Ok(answer)
    }
}

fn error_detail(answer: &Value) -> String {
    answer
        .pointer("/errors/0")
        .map(|e| {
            let title = e.get("title").and_then(Value::as_str).unwrap_or("error");
            match e.get("detail").and_then(Value::as_str) {
                Some(d) => format!("{title}: {d}"),
                None => title.to_string(),
            }
        })
        .unwrap_or_else(|| answer.to_string().chars().take(300).collect())
}

fn ioc_type(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Domain => "DNS",
        Kind::Ipv4 => "IPV4",
        Kind::Ipv6 => "IPV6",
        Kind::Md5 => "MD5",
        Kind::Sha1 => "SHA1",
        Kind::Sha256 => "SHA256",
        Kind::Url => "URL",
        Kind::Cidr | Kind::Email => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Pull

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

struct PullState<'a> {
    api: Api<'a>,
    cp: Checkpoint,
    done: bool,
}

/// The records of one page of threats: one per hash, its hits the number of threats.
fn threat_records(threats: &[Value]) -> (Vec<Record>, BTreeMap<String, u64>) {
    let mut merged: HashMap<Indicator, Record> = HashMap::new();
    let mut order = Vec::new();
    let mut rejected = BTreeMap::<String, u64>::new();
    for threat in threats {
        let info = threat.get("threatInfo").cloned().unwrap_or(Value::Null);
        let text = |k: &str| {
            info.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let severity = match text("confidenceLevel") {
            Some("malicious") => Severity::High,
            Some("suspicious") => Severity::Medium,
            _ => Severity::Unknown,
        };
        let safe = text("analystVerdict") == Some("false_positive");
        let when = text("updatedAt")
            .or_else(|| threat.get("updatedAt").and_then(Value::as_str))
            .and_then(|t| Timestamp::parse(t).ok());
        let mut seen_here = HashSet::new();
        let mut any = false;
        for (kind, key) in [
            (Kind::Sha256, "sha256"),
            (Kind::Sha1, "sha1"),
            (Kind::Md5, "md5"),
        ] {
            let Some(raw) = text(key) else { continue };
            any = true;
            let indicator = match parse(raw, Some(kind), &ParseOptions::default()) {
                Ok(p) => p.first().clone(),
                Err(e) => {
                    *rejected.entry(e.reason().to_string()).or_default() += 1;
                    continue;
                }
            };
            if !seen_here.insert(indicator.clone()) {
                continue;
            }
            match merged.get_mut(&indicator) {
                Some(r) => {
                    r.hits += 1;
                    r.attributes.severity = r.attributes.severity.max(severity);
                    r.attributes.safe |= safe;
                    r.last_seen = r.last_seen.max(when);
                }
                None => {
                    let mut r = Record::new(indicator.clone());
                    r.attributes.severity = severity;
                    r.attributes.safe = safe;
                    r.attributes.comment = text("threatName").map(str::to_string);
                    if let Some(c) = text("classification") {
                        r.attributes.tags = TagSet::from_tags([format!("s1:{c}")]);
                    }
                    r.last_seen = when;
                    r.first_seen = when;
                    order.push(indicator.clone());
                    merged.insert(indicator, r);
                }
            }
        }
        if !any {
            *rejected.entry("no_hash".into()).or_default() += 1;
        }
    }
    let records = order
        .into_iter()
        .filter_map(|i| merged.remove(&i))
        .collect();
    (records, rejected)
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
        let mut query: Vec<(String, String)> = vec![
            ("updatedAt__gte".into(), since.to_rfc3339()),
            ("updatedAt__lt".into(), end.to_rfc3339()),
            ("limit".into(), "1000".into()),
        ];
        query.extend(self.api.scope_query());
        if let Some(c) = &self.cp.cursor {
            query.push(("cursor".into(), c.clone()));
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        let page = self
            .api
            .get_ok("listing threats", &format!("/threats?{query}"))
            .await?;
        let threats = page
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (records, rejected) = threat_records(&threats);
        match page
            .pointer("/pagination/nextCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
        {
            Some(c) if !threats.is_empty() => self.cp.cursor = Some(c.to_string()),
            _ => {
                self.cp = Checkpoint {
                    since: Some(end),
                    window_end: None,
                    cursor: None,
                };
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

// ---------------------------------------------------------------------------------------------
// Push

fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Critical => 7,
        Severity::High => 6,
        Severity::Medium => 4,
        Severity::Low => 2,
        Severity::Unknown => 0,
    }
}

fn valid_until(choice: &str, expires: Option<Timestamp>) -> Option<String> {
    match choice {
        "indicator" => expires.map(Timestamp::to_rfc3339),
        days => days
            .parse::<i64>()
            .ok()
            .map(|d| Timestamp::now().plus_days(d).to_rfc3339()),
    }
}

/// The IOCs a refused batch's error names, with their reasons: `errors[0].detail` holds a JSON
/// (or Python-literal) document `{"errors": [{"value", "type", "message"}]}`.
fn invalid_iocs(answer: &Value) -> Vec<(String, String)> {
    let Some(detail) = answer.pointer("/errors/0/detail").and_then(Value::as_str) else {
        return Vec::new();
    };
    let parsed: Value = serde_json::from_str(detail)
        .or_else(|_| serde_json::from_str(&detail.replace('\'', "\"")))
        .unwrap_or(Value::Null);
    parsed
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| {
                    let value = e.get("value")?.as_str()?.to_ascii_lowercase();
                    let message = e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("invalid")
                        .to_string();
                    Some((value, message))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Connector for SentinelOne {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let info = api
            .get_ok("reading the console version", "/system/info")
            .await?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(api.scope_query())
            .append_pair("limit", "1")
            .finish();
        let iocs = api
            .get_ok(
                "listing IOCs in the scope",
                &format!("/threat-intelligence/iocs?{query}"),
            )
            .await?;
        Ok(format!(
            "Connected to {} (console {}): {} IOC(s) in scope",
            api.base,
            info.pointer("/data/release")
                .or_else(|| info.pointer("/data/version"))
                .and_then(Value::as_str)
                .unwrap_or("?"),
            iocs.pointer("/pagination/totalItems")
                .and_then(Value::as_u64)
                .unwrap_or(0)
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
                cp: stored_checkpoint("SentinelOne", checkpoint)?,
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
        let scope = api.scope_filter()?;
        let choice = target.params.text("valid_days").unwrap_or("indicator");
        let source = ctx.marker();
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut pending: Vec<(usize, Value)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(t) = ioc_type(item.indicator.kind) else {
                outcomes[i] = Some(ItemOutcome::Skipped(format!(
                    "kind {} not supported by SentinelOne",
                    item.indicator.kind
                )));
                continue;
            };
            let mut ioc = json!({
                "type": t,
                "value": item.indicator.value,
                "method": "EQUALS",
                "source": source,
                "externalId": item.indicator.value,
                "name": format!("iocx {}", item.indicator.kind),
                "description": format!("{} from {}", item.severity.as_str(), item.sources.join(", ")),
                "severity": severity_number(item.severity),
                "labels": item.tags,
            });
            if let Some(v) = valid_until(choice, item.expires) {
                ioc["validUntil"] = json!(v);
            }
            pending.push((i, ioc));
        }
        for chunk in pending.chunks(MAX_PER_REQUEST) {
            let mut chunk: Vec<(usize, Value)> = chunk.to_vec();
            // Refused IOCs are dropped and the rest sent again, at most a few times.
            for _ in 0..4 {
                if chunk.is_empty() {
                    break;
                }
                let body = json!({
                    "filter": scope,
                    "data": chunk.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
                });
                let (status, answer) = api
                    .call(
                        "creating IOCs",
                        reqwest::Method::POST,
                        "/threat-intelligence/iocs",
                        Some(&body),
                    )
                    .await?;
                if status == 200 {
                    for (i, _) in &chunk {
                        outcomes[*i] = Some(ItemOutcome::Shared);
                    }
                    chunk.clear();
                    break;
                }
                let invalid: HashMap<String, String> = invalid_iocs(&answer).into_iter().collect();
                let before = chunk.len();
                chunk.retain(|(i, ioc)| {
                    let value = ioc["value"].as_str().unwrap_or("").to_ascii_lowercase();
                    match invalid.get(&value) {
                        Some(m) => {
                            outcomes[*i] =
                                Some(ItemOutcome::Skipped(format!("SentinelOne refused it: {m}")));
                            false
                        }
                        None => true,
                    }
                });
                if chunk.len() == before {
                    let reason = format!("HTTP {status}: {}", error_detail(&answer));
                    let outcome = if error_detail(&answer).contains("Limit Exceeded") {
                        ItemOutcome::Skipped(format!("capacity reached: {reason}"))
                    } else {
                        ItemOutcome::Failed(reason)
                    };
                    for (i, _) in &chunk {
                        outcomes[*i] = Some(outcome.clone());
                    }
                    chunk.clear();
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| ItemOutcome::Failed("refused repeatedly".into())))
            .collect())
    }

    async fn retract(
        &self,
        ctx: &Context,
        _target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let api = Api::new(ctx)?;
        let scope = api.scope_filter()?;
        let source = ctx.marker();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if ioc_type(item.indicator.kind).is_none() {
                out.push(ItemOutcome::Shared);
                continue;
            }
            let mut filter = scope.clone();
            filter.insert("value".into(), json!(item.indicator.value));
            filter.insert("source".into(), json!(source));
            let (status, answer) = api
                .call(
                    "deleting IOCs",
                    reqwest::Method::DELETE,
                    "/threat-intelligence/iocs",
                    Some(&json!({ "filter": filter })),
                )
                .await?;
            out.push(if status == 200 {
                ItemOutcome::Shared
            } else {
                ItemOutcome::Failed(format!("HTTP {status}: {}", error_detail(&answer)))
            });
        }
        Ok(out)
    }
}
