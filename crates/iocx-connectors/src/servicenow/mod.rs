//! `servicenow`: a ServiceNow instance's Threat Intelligence observables and security incidents.
//!
//! - **Auth**: HTTP Basic, or OAuth2 (`POST /oauth_token.do`, password grant) with the token
//!   fetched once per call.
//! - **Pull**: observables (`sn_ti_observable`) updated since the checkpoint, ordered by
//!   `sys_updated_on`, `sysparm_limit`/`sysparm_offset` pages of 1,000 until `X-Total-Count`.
//! - **Push** to "Observables": one `GET` finds which values exist (`valueIN…`), then the Batch
//!   API (`POST /api/now/v1/batch`) creates the rest, up to 1,000 per round trip, each
//!   sub-request's status mapped to its item — never one request per IoC.
//! - **Push** to "Security incidents": one incident per indicator (in `sn_si_incident` or
//!   `incident`), through the Batch API too; incidents are records of work, never retracted.
//! - **Retract** observables: `DELETE` of iocx's own records (found by value and iocx's marker in
//!   `notes`), through the Batch API.
//!
//! Wire facts follow `contracts/vendors.md` §5 and the emulator `iocx sim servicenow`.
//!
//! ## Mapping
//!
//! | observable `type` | kind | | `finding` | iocx |
//! |---|---|---|---|---|
//! | MD5, SHA1, SHA256 | md5, sha1, sha256 | | Malicious | high |
//! | URL | url | | Suspicious | medium |
//! | ipv4-addr, ipv6-addr | ipv4, ipv6 | | Clean | safe |
//! | Domain name, FQDN | domain | | Unknown | unknown |
//! | email-addr | email | | | |
//!
//! `notes` become the comment; a record whose notes carry iocx's marker is an echo.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use async_trait::async_trait;
use base64::Engine as _;
use futures::stream::BoxStream;
use iocx_model::{Kind, ParseOptions, Record, Severity, Timestamp, parse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, Pages, PullBatch, PushItem,
    TargetCall, http_url, is_echo, pull_pages, stored_checkpoint,
};

#[cfg(test)]
mod tests;

/// The `servicenow` connector.
pub struct ServiceNow;

/// Sub-requests per Batch API call.
pub const BATCH: usize = 1_000;
const OBSERVABLES: &str = "sn_ti_observable";

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "servicenow".into(),
    title: "ServiceNow".into(),
    description: "Pulls and pushes Threat Intelligence observables, and opens security \
         incidents for the indicators a rule selects."
        .into(),
    fields: vec![
        FieldSpec::new(
            "instance",
            "Instance URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "https://YOUR-INSTANCE.service-now.com",
        )
        .required(),
        FieldSpec::new(
            "auth",
            "Authentication",
            FieldKind::choice(&[("basic", "User and password"), ("oauth", "OAuth2")]),
            "OAuth uses the password grant with the user below.",
        )
        .default_value("basic"),
        FieldSpec::new(
            "username",
            "User",
            FieldKind::Text { max_len: Some(255) },
            "A user with the sn_ti and sn_si roles.",
        )
        .required(),
        FieldSpec::new(
            "password",
            "Password",
            FieldKind::Secret,
            "The user's password.",
        )
        .required(),
        FieldSpec::new(
            "client_id",
            "OAuth client ID",
            FieldKind::Text { max_len: Some(255) },
            "For OAuth: the application registry's client ID.",
        ),
        FieldSpec::new(
            "client_secret",
            "OAuth client secret",
            FieldKind::Secret,
            "For OAuth: its secret.",
        ),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: true,
        sightings: false,
    },
    targets: vec![
        TargetSpec {
            name: "observables".into(),
            label: "Add to Threat Intelligence observables".into(),
            description: "Creates the observables ServiceNow does not hold yet, up to 1,000 per \
                 Batch API call."
                .into(),
            fields: Vec::new(),
            delivery: Delivery {
                mode: DeliveryMode::Incremental,
                batch_size: BATCH,
                byte_budget: None,
                kinds: Kind::ALL
                    .iter()
                    .copied()
                    .filter(|k| *k != Kind::Cidr)
                    .collect(),
                capacity: Default::default(),
                removal: true,
                deploy: false,
            },
        },
        TargetSpec {
            name: "incidents".into(),
            label: "Create security incidents".into(),
            description: "Opens one incident per indicator (use a rule that selects the \
                 high-severity ones)."
                .into(),
            fields: vec![
                FieldSpec::new(
                    "table",
                    "Table",
                    FieldKind::choice(&[
                        ("sn_si_incident", "Security incidents"),
                        ("incident", "Incidents"),
                    ]),
                    "Where the incidents are created.",
                )
                .default_value("sn_si_incident"),
            ],
            delivery: Delivery {
                mode: DeliveryMode::Incremental,
                batch_size: BATCH,
                byte_budget: None,
                kinds: Kind::ALL.to_vec(),
                capacity: Default::default(),
                removal: false,
                deploy: false,
            },
        },
    ],
});

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Md5 => "MD5",
        Kind::Sha1 => "SHA1",
        Kind::Sha256 => "SHA256",
        Kind::Url => "URL",
        Kind::Ipv4 => "ipv4-addr",
        Kind::Ipv6 => "ipv6-addr",
        Kind::Domain => "Domain name",
        Kind::Email => "email-addr",
        Kind::Cidr => "",
    }
}

fn kind_of(name: &str) -> Option<Kind> {
    Some(match name.to_ascii_lowercase().as_str() {
        "md5" => Kind::Md5,
        "sha1" => Kind::Sha1,
        "sha256" => Kind::Sha256,
        "url" => Kind::Url,
        "ipv4-addr" => Kind::Ipv4,
        "ipv6-addr" => Kind::Ipv6,
        "domain name" | "fqdn" => Kind::Domain,
        "email-addr" => Kind::Email,
        _ => return None,
    })
}

struct Api<'a> {
    ctx: &'a Context,
    base: String,
    /// `Authorization` header value.
    auth: String,
}

impl<'a> Api<'a> {
    async fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let text = |k: &str| ctx.values.text(k).map(str::to_string);
        let instance = text("instance")
            .ok_or_else(|| ConnectorError::config("the instance URL is not set"))?;
        let base = http_url("instance", &instance)?;
        let user = text("username").ok_or_else(|| ConnectorError::config("the user is not set"))?;
        let password =
            text("password").ok_or_else(|| ConnectorError::config("the password is not set"))?;
        let auth = if ctx.values.text("auth") == Some("oauth") {
            let (id, secret) = match (text("client_id"), text("client_secret")) {
                (Some(i), Some(s)) => (i, s),
                _ => {
                    return Err(ConnectorError::config(
                        "OAuth needs the client ID and the client secret",
                    ));
                }
            };
            let url = format!("{base}/oauth_token.do");
            let what = "getting an OAuth token";
            let response = ctx
                .http
                .send(what, &DefaultRetry, |c| {
                    c.post(&url).form(&[
                        ("grant_type", "password"),
                        ("client_id", id.as_str()),
                        ("client_secret", secret.as_str()),
                        ("username", user.as_str()),
                        ("password", password.as_str()),
                    ])
                })
                .await?;
            if response.status().as_u16() == 401 {
                return Err(ConnectorError::new(
                    ErrorKind::Auth,
                    format!("{what}: the instance refused the client or the user"),
                ));
            }
            let response = ctx.http.check(what, response).await?;
            let token: Value = ctx.http.json(what, response).await?;
            let token = token
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or_else(|| ConnectorError::protocol(format!("{what}: no access_token")))?;
            format!("Bearer {token}")
        } else {
            let raw = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        };
        Ok(Api { ctx, base, auth })
    }

    /// A Table API GET: the records and `X-Total-Count`.
    async fn list(
        &self,
        table: &str,
        query: &[(&str, String)],
    ) -> Result<(Vec<Value>, u64), ConnectorError> {
        let what = format!("reading {table}");
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let url = format!("{}/api/now/table/{table}?{q}", self.base);
        let response = self
            .ctx
            .http
            .send_ok(&what, &DefaultRetry, |c| {
                c.get(&url)
                    .header("Authorization", &self.auth)
                    .header("Accept", "application/json")
            })
            .await?;
        let total = response
            .headers()
            .get("X-Total-Count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body: Value = self.ctx.http.json(&what, response).await?;
        let records = body
            .get("result")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok((records.clone(), total.unwrap_or(records.len() as u64)))
    }

    /// Runs Table API requests through the Batch API; answers `(status, body)` per request, in
    /// order (status 0 when the instance did not serve it).
    async fn batch(
        &self,
        what: &str,
        requests: &[(reqwest::Method, String, Option<Value>)],
    ) -> Result<Vec<(u16, Value)>, ConnectorError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = vec![(0u16, Value::Null); requests.len()];
        for (n, chunk) in requests.chunks(BATCH).enumerate() {
            let offset = n * BATCH;
            let rest: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, (method, url, body))| {
                    let mut r = json!({
                        "id": (offset + i).to_string(),
                        "method": method.as_str(),
                        "url": url,
                        "headers": [
                            {"name": "Content-Type", "value": "application/json"},
                            {"name": "Accept", "value": "application/json"},
                        ],
                        "exclude_response_headers": true,
                    });
                    if let Some(b) = body {
                        r["body"] = json!(b64.encode(b.to_string()));
                    }
                    r
                })
                .collect();
            let body = json!({ "batch_request_id": uuid_like(offset), "rest_requests": rest });
            let url = format!("{}/api/now/v1/batch", self.base);
            let response = self
                .ctx
                .http
                .send_ok(what, &DefaultRetry, |c| {
                    c.post(&url)
                        .header("Authorization", &self.auth)
                        .header("Accept", "application/json")
                        .json(&body)
                })
                .await?;
            let answer: Value = self.ctx.http.json(what, response).await?;
            for served in answer
                .get("serviced_requests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(id) = served
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|i| *i < out.len())
                else {
                    continue;
                };
                let status = served
                    .get("status_code")
                    .and_then(Value::as_u64)
                    .unwrap_or(0) as u16;
                let body = served
                    .get("body")
                    .and_then(Value::as_str)
                    .and_then(|b| b64.decode(b).ok())
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                out[id] = (status, body);
            }
        }
        Ok(out)
    }
}

fn uuid_like(n: usize) -> String {
    format!("iocx-{}-{n}", Timestamp::now().0)
}

/// The error message of a Table API answer.
fn table_error(body: &Value) -> String {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string().chars().take(200).collect())
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
    offset: Option<u64>,
}

struct PullState<'a> {
    ctx: &'a Context,
    api: Option<Api<'a>>,
    cp: Checkpoint,
    done: bool,
}

fn snow_time(t: Timestamp) -> String {
    t.to_datetime()
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn observable_record(o: &Value) -> Result<Record, String> {
    let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let t = text("type.value").or(text("type")).unwrap_or("");
    let kind = kind_of(t).ok_or_else(|| "unknown_type".to_string())?;
    let value = text("value").unwrap_or("");
    let indicator = parse(value, Some(kind), &ParseOptions::default())
        .map_err(|e| e.reason().to_string())?
        .first()
        .clone();
    let mut r = Record::new(indicator);
    match text("finding") {
        Some("Malicious") => r.attributes.severity = Severity::High,
        Some("Suspicious") => r.attributes.severity = Severity::Medium,
        Some("Clean") => r.attributes.safe = true,
        _ => {}
    }
    r.attributes.comment = text("notes").map(str::to_string);
    r.echo = text("notes").is_some_and(is_echo);
    let time = |k: &str| text(k).and_then(|t| Timestamp::parse(t).ok());
    r.first_seen = time("sys_created_on");
    r.last_seen = time("sys_updated_on");
    Ok(r)
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        if self.api.is_none() {
            self.api = Some(Api::new(self.ctx).await?);
        }
        let Some(api) = self.api.as_ref() else {
            return Ok(None);
        };
        let since = self.cp.since.unwrap_or_else(|| self.ctx.initial_start());
        let end = *self.cp.window_end.get_or_insert_with(Timestamp::now);
        let offset = self.cp.offset.unwrap_or(0);
        let query = format!(
            "sys_updated_on>={}^sys_updated_on<{}^ORDERBYsys_updated_on^ORDERBYsys_id",
            snow_time(since),
            snow_time(end)
        );
        let (records, total) = api
            .list(
                OBSERVABLES,
                &[
                    ("sysparm_query", query),
                    ("sysparm_limit", "1000".into()),
                    ("sysparm_offset", offset.to_string()),
                    (
                        "sysparm_fields",
                        "sys_id,value,type.value,finding,notes,sys_created_on,sys_updated_on"
                            .into(),
                    ),
                ],
            )
            .await?;
        let mut out = Vec::with_capacity(records.len());
        let mut rejected = BTreeMap::<String, u64>::new();
        for o in &records {
            match observable_record(o) {
                Ok(r) => out.push(r),
                Err(reason) => *rejected.entry(reason).or_default() += 1,
            }
        }
        let next = offset + records.len() as u64;
        if records.is_empty() || next >= total {
            self.cp = Checkpoint {
                since: Some(end),
                window_end: None,
                offset: None,
            };
            self.done = true;
        } else {
            self.cp.offset = Some(next);
        }
        Ok(Some(PullBatch {
            records: out,
            rejected,
            checkpoint: serde_json::to_value(&self.cp).unwrap_or(Value::Null),
            snapshot_complete: false,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Push

/// iocx's observables among `values`, by lower-cased value: their `sys_id`s.
async fn existing(
    api: &Api<'_>,
    values: &[&str],
    ours_only: bool,
) -> Result<HashMap<String, Vec<String>>, ConnectorError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in values.chunks(200) {
        let mut query = format!("valueIN{}", chunk.join(","));
        if ours_only {
            query.push_str(&format!("^notesLIKE{}", crate::MARKER_PREFIX));
        }
        let (records, _) = api
            .list(
                OBSERVABLES,
                &[
                    ("sysparm_query", query),
                    ("sysparm_fields", "sys_id,value".into()),
                    ("sysparm_limit", "10000".into()),
                ],
            )
            .await?;
        for r in records {
            if let (Some(v), Some(id)) = (
                r.get("value").and_then(Value::as_str),
                r.get("sys_id").and_then(Value::as_str),
            ) {
                out.entry(v.to_ascii_lowercase())
                    .or_default()
                    .push(id.to_string());
            }
        }
    }
    Ok(out)
}

fn finding(item: &PushItem) -> &'static str {
    match (item.safe, item.severity) {
        (true, _) => "Clean",
        (_, Severity::Critical | Severity::High) => "Malicious",
        (_, Severity::Medium | Severity::Low) => "Suspicious",
        _ => "Unknown",
    }
}

fn outcome(status: u16, body: &Value) -> ItemOutcome {
    match status {
        200..=299 => ItemOutcome::Shared,
        0 => ItemOutcome::Failed("not served by the Batch API".into()),
        429 | 500.. => ItemOutcome::Failed(format!("HTTP {status}: {}", table_error(body))),
        _ => ItemOutcome::Skipped(format!(
            "ServiceNow refused it ({status}): {}",
            table_error(body)
        )),
    }
}

#[async_trait]
impl Connector for ServiceNow {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx).await?;
        let (_, total) = api
            .list(
                OBSERVABLES,
                &[
                    ("sysparm_limit", "1".into()),
                    ("sysparm_fields", "sys_id".into()),
                ],
            )
            .await?;
        Ok(format!("Connected to {}: {total} observable(s)", api.base))
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_pages((|| {
            Ok(PullState {
                ctx,
                api: None,
                cp: stored_checkpoint("ServiceNow", checkpoint)?,
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
        let api = Api::new(ctx).await?;
        let table_path = |t: &str| format!("/api/now/table/{t}");
        match target.target.as_str() {
            "observables" => {
                let values: Vec<&str> = items.iter().map(|i| i.indicator.value.as_str()).collect();
                let held = existing(&api, &values, false).await?;
                let mut outcomes = vec![ItemOutcome::Shared; items.len()];
                let mut requests = Vec::new();
                let mut index = Vec::new();
                let mut queued = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let key = item.indicator.value.to_ascii_lowercase();
                    if item.indicator.kind == Kind::Cidr {
                        outcomes[i] =
                            ItemOutcome::Skipped("kind cidr is not an observable type".into());
                        continue;
                    }
                    if held.contains_key(&key) || !queued.insert(key) {
                        continue;
                    }
                    requests.push((
                        reqwest::Method::POST,
                        table_path(OBSERVABLES),
                        Some(json!({
                            "value": item.indicator.value,
                            "type": type_name(item.indicator.kind),
                            "finding": finding(item),
                            "notes": format!("{} — {} from {}", ctx.marker(), item.severity.as_str(), item.sources.join(", ")),
                        })),
                    ));
                    index.push(i);
                }
                let answers = api.batch("creating observables", &requests).await?;
                for (i, (status, body)) in index.into_iter().zip(answers) {
                    outcomes[i] = outcome(status, &body);
                }
                Ok(outcomes)
            }
            "incidents" => {
                let table = target.params.text("table").unwrap_or("sn_si_incident");
                let requests: Vec<_> = items
                    .iter()
                    .map(|item| {
                        (
                            reqwest::Method::POST,
                            table_path(table),
                            Some(json!({
                                "short_description": format!("{} indicator {}", item.severity.as_str(), item.indicator.value),
                                "description": format!(
                                    "{} {} reported by {} ({} hits, last seen {}). {}",
                                    item.indicator.kind, item.indicator.value, item.sources.join(", "),
                                    item.hits, item.last_seen, ctx.marker()
                                ),
                                "priority": match item.severity {
                                    Severity::Critical => "1",
                                    Severity::High => "2",
                                    Severity::Medium => "3",
                                    _ => "4",
                                },
                            })),
                        )
                    })
                    .collect();
                let answers = api.batch("creating incidents", &requests).await?;
                Ok(answers.iter().map(|(s, b)| outcome(*s, b)).collect())
            }
            other => Err(ConnectorError::config(format!(
                "servicenow has no target `{other}`; targets are observables and incidents"
            ))),
        }
    }

    async fn retract(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        if target.target != "observables" {
            return Ok(vec![ItemOutcome::Shared; items.len()]);
        }
        let api = Api::new(ctx).await?;
        let values: Vec<&str> = items.iter().map(|i| i.indicator.value.as_str()).collect();
        let ours = existing(&api, &values, true).await?;
        let mut requests = Vec::new();
        let mut owner = Vec::new();
        for (i, item) in items.iter().enumerate() {
            for id in ours
                .get(&item.indicator.value.to_ascii_lowercase())
                .into_iter()
                .flatten()
            {
                requests.push((
                    reqwest::Method::DELETE,
                    format!("/api/now/table/{OBSERVABLES}/{id}"),
                    None,
                ));
                owner.push(i);
            }
        }
        let answers = api.batch("deleting observables", &requests).await?;
        let mut outcomes = vec![ItemOutcome::Shared; items.len()];
        for (i, (status, body)) in owner.into_iter().zip(answers) {
            if !(200..300).contains(&status) && status != 404 {
                outcomes[i] = outcome(status, &body);
            }
        }
        Ok(outcomes)
    }
}
