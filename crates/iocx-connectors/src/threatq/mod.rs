//! `threatq`: a ThreatQ (ThreatQuotient) platform's Threat Library.
//!
//! - **Auth**: OAuth2 at `POST /api/token`, with client credentials (HTTP Basic) or the password
//!   grant (e-mail, password and the UI's client id); a 401 fetches a token once more.
//! - **Pull** a named data collection (saved search): `GET /api/indicators/query/hash/{name}`
//!   with `cursorMark` paging (`*` first, then `nextCursorMark` until a page is empty). Each run
//!   reads the collection whole (ThreatQ's `updated_at` becomes last seen); indicators that left
//!   it are not retired at once but age out with the configuration's aging criteria, because the
//!   store's snapshot retirement compares last-seen times, which a collection does not move.
//! - **Push** to "Threat Library": `POST /api/indicators/consume` (bulk upsert, at most 500 per
//!   request) with the iocx source, attributes for severity and reputation, and the status
//!   chosen; items the platform refuses (`{"data":{"errors":{"3.value":[…]}}}`) are skipped with
//!   their messages and the rest sent again.
//!
//! Wire facts follow `contracts/tippingpoint-sms-and-threatq.md` Part B and the emulator
//! `iocx sim threatq`.
//!
//! ## Mapping
//!
//! | ThreatQ type | kind | | score | severity |
//! |---|---|---|---|---|
//! | FQDN | domain | | 9–10 | critical |
//! | IP Address, IPv6 Address, CIDR Block | ipv4, ipv6, cidr | | 7–8 | high |
//! | URL | url | | 4–6 | medium |
//! | MD5, SHA-1, SHA-256 | md5, sha1, sha256 | | 1–3 | low |
//! | Email Address | email | | 0 or none | unknown |
//!
//! Reputation is `10 − score` (at least 1). Status `Whitelisted` makes an indicator safe;
//! `Expired` gives it an expiry in the past (`expired_at`, or now), so it is inactive; other
//! types (Filename, Mutex, …) are counted as rejected `unsupported_type`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Kind, ParseOptions, Record, Reputation, Severity, TagSet, Timestamp, parse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

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

/// The `threatq` connector.
pub struct ThreatQ;

/// Indicators per consume request.
pub const MAX_PER_REQUEST: usize = 500;
const PAGE: usize = 1_000;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "threatq".into(),
    title: "ThreatQ".into(),
    description: "Pulls the indicators of a ThreatQ data collection (saved search) and pushes \
         indicators into the Threat Library with a source and attributes."
        .into(),
    fields: vec![
        FieldSpec::new(
            "url",
            "ThreatQ URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "https://threatq.example.com",
        )
        .required(),
        FieldSpec::new(
            "grant",
            "Authentication",
            FieldKind::choice(&[
                ("client_credentials", "Client ID and secret"),
                ("password", "User e-mail and password"),
            ]),
            "Client credentials need an API client; the password grant uses a user with the \
             UI's client id.",
        )
        .default_value("client_credentials"),
        FieldSpec::new(
            "client_id",
            "Client ID",
            FieldKind::Text { max_len: Some(255) },
            "The OAuth client id (for the password grant: the UI's client id).",
        )
        .required(),
        FieldSpec::new(
            "client_secret",
            "Client secret",
            FieldKind::Secret,
            "For client credentials.",
        ),
        FieldSpec::new(
            "email",
            "User e-mail",
            FieldKind::Text { max_len: Some(255) },
            "For the password grant.",
        ),
        FieldSpec::new(
            "password",
            "Password",
            FieldKind::Secret,
            "For the password grant.",
        ),
        FieldSpec::new(
            "collection",
            "Data collection",
            FieldKind::Text { max_len: Some(255) },
            "The saved search to pull (its name or hash), e.g. Vision One Blocklist.",
        )
        .default_value("Active Indicators"),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: false,
        sightings: false,
    },
    targets: vec![TargetSpec {
        name: "threat_library".into(),
        label: "Add to the Threat Library".into(),
        description: "Upserts indicators with the iocx source and severity/reputation \
             attributes, 500 per request."
            .into(),
        fields: vec![
            FieldSpec::new(
                "status",
                "Status",
                FieldKind::choice(&[
                    ("Active", "Active"),
                    ("Review", "Review"),
                    ("Indirect", "Indirect"),
                ]),
                "The status indicators get (Whitelisted for safe ones).",
            )
            .default_value("Active"),
        ],
        delivery: Delivery {
            mode: DeliveryMode::Incremental,
            batch_size: MAX_PER_REQUEST,
            byte_budget: Some(8_000_000),
            kinds: Kind::ALL.to_vec(),
            capacity: Default::default(),
            removal: false,
            deploy: false,
        },
    }],
});

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Domain => "FQDN",
        Kind::Ipv4 => "IP Address",
        Kind::Ipv6 => "IPv6 Address",
        Kind::Cidr => "CIDR Block",
        Kind::Url => "URL",
        Kind::Md5 => "MD5",
        Kind::Sha1 => "SHA-1",
        Kind::Sha256 => "SHA-256",
        Kind::Email => "Email Address",
    }
}

fn kind_of(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| type_name(*k) == name)
}

struct Api<'a> {
    ctx: &'a Context,
    base: String,
    token: Mutex<Option<String>>,
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let url = ctx
            .values
            .text("url")
            .ok_or_else(|| ConnectorError::config("the ThreatQ URL is not set"))?;
        Ok(Api {
            ctx,
            base: http_url("url", url)?,
            token: Mutex::new(None),
        })
    }

    async fn token(&self, renew: bool) -> Result<String, ConnectorError> {
        let mut slot = self.token.lock().await;
        if !renew && let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let v = &self.ctx.values;
        let need = |k: &str, what: &str| {
            v.text(k)
                .map(str::to_string)
                .ok_or_else(|| ConnectorError::config(format!("the {what} is not set")))
        };
        let client_id = need("client_id", "client ID")?;
        let url = format!("{}/api/token", self.base);
        let what = "getting an OAuth token";
        let response = if v.text("grant") == Some("password") {
            let (email, password) = (need("email", "user e-mail")?, need("password", "password")?);
            self.ctx
                .http
                .send(what, &DefaultRetry, |c| {
                    c.post(&url).form(&[
                        ("grant_type", "password"),
                        ("email", email.as_str()),
                        ("password", password.as_str()),
                        ("client_id", client_id.as_str()),
                    ])
                })
                .await?
        } else {
            let secret = need("client_secret", "client secret")?;
            self.ctx
                .http
                .send(what, &DefaultRetry, |c| {
                    c.post(&url)
                        .basic_auth(&client_id, Some(&secret))
                        .form(&[("grant_type", "client_credentials")])
                })
                .await?
        };
        if matches!(response.status().as_u16(), 400 | 401 | 403) {
            return Err(ConnectorError::new(
                ErrorKind::Auth,
                format!(
                    "{what}: ThreatQ refused the credentials (HTTP {})",
                    response.status().as_u16()
                ),
            ));
        }
        let response = self.ctx.http.check(what, response).await?;
        let answer: Value = self.ctx.http.json(what, response).await?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::protocol(format!("{what}: no access_token")))?
            .to_string();
        *slot = Some(token.clone());
        Ok(token)
    }

    /// A request with the bearer token (fetched again once on 401): status and JSON body.
    async fn call(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ConnectorError> {
        let url = format!("{}{path}", self.base);
        for attempt in 0..2 {
            let token = self.token(attempt > 0).await?;
            let response = self
                .ctx
                .http
                .send(what, &DefaultRetry, |c| {
                    let r = c
                        .request(method.clone(), &url)
                        .bearer_auth(&token)
                        .header("Accept", "application/json");
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
            if matches!(status, 401 | 403 | 429) || status >= 500 {
                return Err(self
                    .ctx
                    .http
                    .check(what, response)
                    .await
                    .err()
                    .unwrap_or_else(|| ConnectorError::protocol(what.to_string())));
            }
            let text = response.text().await.unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok((status, value));
        }
        Err(ConnectorError::new(
            ErrorKind::Auth,
            format!("{what}: the token was refused twice"),
        ))
    }
}

fn errors(body: &Value) -> String {
    body.get("errors")
        .map(|e| e.to_string())
        .unwrap_or_else(|| body.to_string().chars().take(200).collect())
}

// ---------------------------------------------------------------------------------------------
// Pull

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// The next page of the run in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

struct PullState<'a> {
    api: Api<'a>,
    collection: String,
    cp: Checkpoint,
    done: bool,
}

fn severity_of(score: f64) -> Severity {
    match score {
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s >= 1.0 => Severity::Low,
        _ => Severity::Unknown,
    }
}

fn record(i: &Value) -> Result<Record, String> {
    let text = |k: &str| i.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let name = text("type")
        .or_else(|| i.pointer("/type/name").and_then(Value::as_str))
        .unwrap_or("");
    let kind = kind_of(name).ok_or_else(|| "unsupported_type".to_string())?;
    let value = text("value").unwrap_or("");
    let indicator = parse(value, Some(kind), &ParseOptions::default())
        .map_err(|e| e.reason().to_string())?
        .first()
        .clone();
    let mut r = Record::new(indicator);
    let score = i
        .get("score")
        .and_then(|s| {
            s.as_f64()
                .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
                .or_else(|| s.get("manual_score").and_then(Value::as_f64))
                .or_else(|| s.get("generated_score").and_then(Value::as_f64))
        })
        .unwrap_or(0.0);
    r.attributes.severity = severity_of(score);
    if score > 0.0 {
        r.attributes.reputation = Reputation::new((10.0 - score).round().clamp(1.0, 10.0) as u8);
    }
    let status = text("status")
        .or_else(|| i.pointer("/status/name").and_then(Value::as_str))
        .unwrap_or("");
    match status {
        "Whitelisted" => r.attributes.safe = true,
        "Expired" => {
            r.attributes.expires = Some(
                text("expired_at")
                    .and_then(|t| Timestamp::parse(t).ok())
                    .unwrap_or_else(Timestamp::now),
            );
        }
        _ => {
            r.attributes.expires = text("expires_at").and_then(|t| Timestamp::parse(t).ok());
        }
    }
    if let Some(tags) = i.get("tags").and_then(Value::as_array) {
        r.attributes.tags = TagSet::from_tags(
            tags.iter()
                .filter_map(|t| t.as_str().or_else(|| t.get("name").and_then(Value::as_str))),
        );
    }
    r.attributes.comment = text("description").map(str::to_string);
    r.echo = text("description").is_some_and(is_echo);
    r.first_seen = text("created_at").and_then(|t| Timestamp::parse(t).ok());
    r.last_seen = text("updated_at").and_then(|t| Timestamp::parse(t).ok());
    Ok(r)
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        let cursor = self.cp.cursor.clone().unwrap_or_else(|| "*".into());
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sort", "updated_at")
            .append_pair("limit", &PAGE.to_string())
            .append_pair("cursorMark", &cursor)
            .append_pair(
                "fields",
                "value,type,status,score,tags,description,created_at,updated_at,expires_at,expired_at",
            )
            .finish();
        // A path segment: form encoding writes a space as `+`, which a path keeps literally (a
        // real `+` is already `%2B`).
        let collection = url::form_urlencoded::byte_serialize(self.collection.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let what = format!("reading data collection {}", self.collection);
        let (status, page) = self
            .api
            .call(
                &what,
                reqwest::Method::GET,
                &format!("/api/indicators/query/hash/{collection}?{query}"),
                None,
            )
            .await?;
        if status == 404 {
            return Err(ConnectorError::config(format!(
                "{what}: ThreatQ has no saved search `{}`",
                self.collection
            )));
        }
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("{what}: HTTP {status}: {}", errors(&page)),
            ));
        }
        let items = page
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut records = Vec::with_capacity(items.len());
        let mut rejected = BTreeMap::<String, u64>::new();
        for i in &items {
            match record(i) {
                Ok(r) => records.push(r),
                Err(reason) => *rejected.entry(reason).or_default() += 1,
            }
        }
        let next = page
            .get("nextCursorMark")
            .and_then(Value::as_str)
            .map(str::to_string);
        let finished = items.is_empty() || next.is_none() || next.as_deref() == Some(&cursor);
        if finished {
            self.cp.cursor = None;
            self.done = true;
        } else {
            self.cp.cursor = next;
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

#[async_trait]
impl Connector for ThreatQ {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let (status, searches) = api
            .call(
                "listing saved searches",
                reqwest::Method::GET,
                "/api/search/query",
                None,
            )
            .await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!(
                    "listing saved searches: HTTP {status}: {}",
                    errors(&searches)
                ),
            ));
        }
        let wanted = ctx.values.text("collection").unwrap_or("Active Indicators");
        let names: Vec<&str> = searches
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .collect();
        if !names.contains(&wanted) {
            return Err(ConnectorError::config(format!(
                "no saved search is named `{wanted}`; there are: {}",
                names.join(", ")
            )));
        }
        Ok(format!(
            "Connected to {}: saved search `{wanted}` found",
            api.base
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
                collection: ctx
                    .values
                    .text("collection")
                    .unwrap_or("Active Indicators")
                    .to_string(),
                cp: stored_checkpoint("ThreatQ", checkpoint)?,
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
        let status = target.params.text("status").unwrap_or("Active");
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let bodies: Vec<(usize, Value)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                (
                    i,
                    json!({
                        "value": item.indicator.value,
                        "type": {"name": type_name(item.indicator.kind)},
                        "status": {"name": if item.safe { "Whitelisted" } else { status }},
                        "description": ctx.marker(),
                        "sources": [{"name": "iocx"}],
                        "attributes": [
                            {"name": "Severity", "value": item.severity.as_str()},
                            {"name": "Reputation", "value": item.reputation.to_string()},
                            {"name": "Reported by", "value": item.sources.join(", ")},
                        ],
                        "tags": item.tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
                    }),
                )
            })
            .collect();
        for chunk in bodies.chunks(MAX_PER_REQUEST) {
            let mut chunk: Vec<(usize, Value)> = chunk.to_vec();
            for _ in 0..3 {
                if chunk.is_empty() {
                    break;
                }
                let body = Value::Array(chunk.iter().map(|(_, b)| b.clone()).collect());
                let (code, answer) = api
                    .call(
                        "adding indicators",
                        reqwest::Method::POST,
                        "/api/indicators/consume",
                        Some(&body),
                    )
                    .await?;
                if (200..300).contains(&code) {
                    for (i, _) in &chunk {
                        outcomes[*i] = Some(ItemOutcome::Shared);
                    }
                    chunk.clear();
                    break;
                }
                // Field errors keyed by position: `{"data":{"errors":{"3.value":["…"]}}}`.
                let refused: BTreeMap<usize, String> = answer
                    .pointer("/data/errors")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| {
                                let n = k.split('.').next()?.parse::<usize>().ok()?;
                                Some((n, v.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if refused.is_empty() {
                    let reason = format!("HTTP {code}: {}", errors(&answer));
                    let outcome = if reason.contains("limit") {
                        ItemOutcome::Skipped(format!("capacity reached: {reason}"))
                    } else {
                        ItemOutcome::Failed(reason)
                    };
                    for (i, _) in &chunk {
                        outcomes[*i] = Some(outcome.clone());
                    }
                    chunk.clear();
                    break;
                }
                let mut kept = Vec::with_capacity(chunk.len());
                for (n, (i, b)) in chunk.into_iter().enumerate() {
                    match refused.get(&n) {
                        Some(m) => {
                            outcomes[i] =
                                Some(ItemOutcome::Skipped(format!("ThreatQ refused it: {m}")));
                        }
                        None => kept.push((i, b)),
                    }
                }
                chunk = kept;
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| ItemOutcome::Failed("refused repeatedly".into())))
            .collect())
    }
}
