//! `webhook`: pushes indicators as JSON batches to a URL of yours.
//!
//! Each request is a `POST` of
//!
//! ```json
//! {"version": 1, "action": "add", "sharing": "…", "batch": "…", "sent_at": "…",
//!  "items": [{"kind": "url", "value": "…", "severity": "high", "reputation": 2, "tags": [],
//!             "comment": "…", "expires": "…", "first_seen": "…", "last_seen": "…",
//!             "hits": 3, "sources": ["…"], "safe": false}]}
//! ```
//!
//! with `action` `"remove"` for retractions and `"ping"` for "Test connection". Headers:
//! `Idempotency-Key` and `X-Iocx-Batch` carry the batch id (the same when an interrupted run
//! sends a batch again, so a receiver can drop the repeat); with a signing secret,
//! `X-Iocx-Timestamp` is the Unix time and `X-Iocx-Signature` is `sha256=` followed by the hex
//! HMAC-SHA256 of `TIMESTAMP.BODY` under the secret — a receiver recomputes it, compares in
//! constant time, and refuses timestamps more than a few minutes old.
//!
//! A receiver may answer `{"results": [{"value": "…", "state": "shared"|"failed"|"skipped",
//! "reason": "…"}]}` to report per item; otherwise every item of a 2xx answer counts as
//! delivered. A 4xx answer fails the whole batch with its status and body; 429 and 5xx are
//! retried by the shared HTTP client first.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use iocx_model::{Kind, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{Connector, ConnectorError, Context, ErrorKind, ItemOutcome, PushItem, TargetCall};

/// The payload version.
pub const VERSION: u32 = 1;

/// The `webhook` connector.
pub struct Webhook;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "webhook".into(),
    title: "Webhook".into(),
    description: "POSTs indicators as signed JSON batches to a URL you run (SOAR, SIEM, scripts)."
        .into(),
    fields: vec![
        FieldSpec::new(
            "url",
            "URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "Where batches are POSTed (http:// or https://).",
        )
        .required(),
        FieldSpec::new(
            "signing_secret",
            "Signing secret",
            FieldKind::Secret,
            "When set, every request carries X-Iocx-Signature: sha256=HMAC(secret, TIMESTAMP.BODY).",
        ),
        FieldSpec::new(
            "bearer_token",
            "Bearer token",
            FieldKind::Secret,
            "Sent as Authorization: Bearer TOKEN.",
        ),
    ],
    capabilities: Capabilities {
        pull: false,
        push: true,
        retract: true,
        sightings: false,
    },
    targets: vec![TargetSpec {
        name: "send".into(),
        label: "Send to the webhook".into(),
        description:
            "Adds (and later removes) indicators at the receiver, in batches of up to 500 and 1 MB."
                .into(),
        fields: Vec::new(),
        delivery: Delivery {
            mode: DeliveryMode::Incremental,
            batch_size: 500,
            byte_budget: Some(1_000_000),
            kinds: Kind::ALL.to_vec(),
            capacity: Default::default(),
            removal: true,
            deploy: false,
        },
    }],
});

/// One item as the receiver sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireItem {
    /// Kind.
    pub kind: Kind,
    /// Canonical value.
    pub value: String,
    /// Severity.
    pub severity: iocx_model::Severity,
    /// Reputation 1–10.
    pub reputation: u8,
    /// Tags.
    pub tags: Vec<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Hits.
    pub hits: u64,
    /// Reporting sources.
    pub sources: Vec<String>,
    /// Safe.
    pub safe: bool,
}

impl From<&PushItem> for WireItem {
    fn from(item: &PushItem) -> WireItem {
        WireItem {
            kind: item.indicator.kind,
            value: item.indicator.value.clone(),
            severity: item.severity,
            reputation: item.reputation,
            tags: item.tags.clone(),
            comment: item.comment.clone(),
            expires: item.expires,
            first_seen: item.first_seen,
            last_seen: item.last_seen,
            hits: item.hits,
            sources: item.sources.clone(),
            safe: item.safe,
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// [`VERSION`].
    pub version: u32,
    /// `add`, `remove` or `ping`.
    pub action: String,
    /// The sharing.
    pub sharing: String,
    /// The batch id.
    pub batch: String,
    /// When sent.
    pub sent_at: Timestamp,
    /// The provenance marker.
    pub marker: String,
    /// The items.
    pub items: Vec<WireItem>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<AnswerItem>,
}

#[derive(Debug, Deserialize)]
struct AnswerItem {
    value: String,
    state: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The signature header value for `body` sent at `timestamp` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn send(
    ctx: &Context,
    action: &str,
    call: Option<&TargetCall>,
    items: &[PushItem],
) -> Result<reqwest::Response, ConnectorError> {
    let url = ctx
        .values
        .text("url")
        .ok_or_else(|| ConnectorError::config("url is not set"))?
        .to_string();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(ConnectorError::config(format!(
            "url {url:?} must start with http:// or https://"
        )));
    }
    let batch = call
        .and_then(|c| c.batch.clone())
        .unwrap_or_else(|| format!("{action}-{}", Timestamp::now().0));
    let payload = Payload {
        version: VERSION,
        action: action.to_string(),
        sharing: call.map(|c| c.sharing.clone()).unwrap_or_default(),
        batch: batch.clone(),
        sent_at: Timestamp::now(),
        marker: ctx.marker(),
        items: items.iter().map(WireItem::from).collect(),
    };
    let body = serde_json::to_vec(&payload)
        .map_err(|e| ConnectorError::protocol(format!("encoding the batch: {e}")))?;
    let secret = ctx.values.text("signing_secret").map(str::to_string);
    let token = ctx.values.text("bearer_token").map(str::to_string);
    ctx.http
        .send(&format!("POST {url}"), &DefaultRetry, |c| {
            let now = Timestamp::now().0;
            let mut r = c
                .post(&url)
                .header("content-type", "application/json")
                .header("idempotency-key", &batch)
                .header("x-iocx-batch", &batch)
                .header("x-iocx-timestamp", now.to_string())
                .body(body.clone());
            if let Some(s) = &secret {
                r = r.header("x-iocx-signature", signature(s, now, &body));
            }
            if let Some(t) = &token {
                r = r.bearer_auth(t);
            }
            r
        })
        .await
}

async fn deliver(
    ctx: &Context,
    action: &str,
    call: &TargetCall,
    items: &[PushItem],
) -> Result<Vec<ItemOutcome>, ConnectorError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let response = send(ctx, action, Some(call), items).await?;
    let status = response.status();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        let body = response.text().await.unwrap_or_default();
        return Err(ConnectorError::new(
            ErrorKind::Auth,
            ctx.http.redact(&format!(
                "the webhook refused the credentials (HTTP {status}): {}",
                excerpt(&body)
            )),
        ));
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let reason = ctx
            .http
            .redact(&format!("HTTP {status}: {}", excerpt(&body)));
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status.as_u16()),
                reason,
            ));
        }
        return Ok(vec![ItemOutcome::Failed(reason); items.len()]);
    }
    let body = response.bytes().await.unwrap_or_default();
    let answer: Option<Answer> = serde_json::from_slice(&body).ok();
    let Some(answer) = answer.filter(|a| !a.results.is_empty()) else {
        return Ok(vec![ItemOutcome::Shared; items.len()]);
    };
    let by_value: HashMap<&str, &AnswerItem> = answer
        .results
        .iter()
        .map(|r| (r.value.as_str(), r))
        .collect();
    Ok(items
        .iter()
        .map(|i| match by_value.get(i.indicator.value.as_str()) {
            None => ItemOutcome::Shared,
            Some(r) => match r.state.as_str() {
                "failed" => ItemOutcome::Failed(
                    r.reason
                        .clone()
                        .unwrap_or_else(|| "refused by the receiver".into()),
                ),
                "skipped" => ItemOutcome::Skipped(
                    r.reason
                        .clone()
                        .unwrap_or_else(|| "skipped by the receiver".into()),
                ),
                _ => ItemOutcome::Shared,
            },
        })
        .collect())
}

fn excerpt(body: &str) -> String {
    body.chars()
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

#[async_trait]
impl Connector for Webhook {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let response = send(ctx, "ping", None, &[]).await?;
        let response = ctx
            .http
            .check("the webhook's test request", response)
            .await?;
        Ok(format!("the webhook answered HTTP {}", response.status()))
    }

    async fn push(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        deliver(ctx, "add", target, items).await
    }

    async fn retract(
        &self,
        ctx: &Context,
        target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        deliver(ctx, "remove", target, items).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_time_and_body() {
        let a = signature("k", 1, b"x");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature("k", 2, b"x"));
        assert_ne!(a, signature("k", 1, b"y"));
        assert_ne!(a, signature("j", 1, b"x"));
    }
}
