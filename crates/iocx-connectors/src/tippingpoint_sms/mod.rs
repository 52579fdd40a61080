//! `tippingpoint_sms`: a TippingPoint Security Management System's reputation database, and its
//! IPS detection events as sightings.
//!
//! - **Push** to "Reputation database": IP addresses, networks, domains and URLs with tag data
//!   (detection category, publisher, source, severity, scan action) and a `Reputation Entries
//!   TTL` from the indicator's expiry (ten years when it never expires). Up to ten entries go as
//!   single `repEntries/add` calls; more go as `repEntries/import` files (one per address type,
//!   at most 10,000 lines), as the SMS guide recommends.
//! - **Retract**: `repEntries/delete?criteria=entry` with the values, 500 per request.
//! - **Pull** (sightings), one of two ways:
//!   - polling: the `ALERTS` table through `dbAccess/tptDBServlet?method=GetData`, a time
//!     window per run; each alert's matched entry (`MESSAGE_PARMS`) gets `HIT_COUNT` hits and a
//!     `device:ID` tag, so the dashboard shows which IPS saw it;
//!   - listening, when `syslog_listen` is set: the run binds a UDP and/or TCP syslog receiver
//!     ([`listener`]) for the SMS's remote-syslog "ArcSight CEF Format v4.2" events and keeps
//!     going until it is stopped, committing a batch every `syslog_batch_size` hits or every
//!     second. Each reputation record's matched entry (`cs6`, "Filter Message Parms") gets
//!     `cnt` hits and a `device:DVCHOST` tag. CEF parsing is [`crate::cef`].
//!
//! Wire facts follow `contracts/tippingpoint-sms-and-threatq.md` Part A and the emulator
//! `iocx sim tippingpoint-sms`, which also sends the same hits as CEF syslog lines.
//!
//! ## Choices
//!
//! - Auth by `X-SMS-API-KEY`.
//! - Tag values follow the categories Vision One's sync creates on the SMS: detection category
//!   `Suspicious Object`, suspicious object source `UDSO`, scan action `log`/`block`, severity
//!   `High`/`Medium`/`Low`; publisher and source are text.
//! - TTL dates are written `yyyy-MM-dd HH:mm:ss+0000`, the one form a public sample shows.
//! - The tag categories must exist on the SMS (the Trend Micro ones Vision One's sync creates);
//!   an entry the SMS refuses (412) is skipped with its answer.
//! - Capacity: the guide's 6,000,000 entries is declared, so the sharing engine prioritises.
//! - A listening pull does not read the ALERTS table (the same hits would count twice); its
//!   checkpoint moves the ALERTS window to the last batch, so switching back to polling does
//!   not count the received hits again.
//! - A listening pull is one long run: the engine renews its lease while it runs, and on
//!   shutdown the hits received so far are committed as a last batch (see
//!   `iocx_engine::pull`); the scheduler starts it again on the next node or start.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Kind, Record, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, Capacity, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, Pages, PullBatch, PushItem,
    TargetCall, http_url, pull_pages, stored_checkpoint,
};

mod events;
mod listener;
#[cfg(test)]
mod tests;

use events::{Hit, Sightings, sms_severity};
use listener::{Protocol, Received};

/// The `tippingpoint_sms` connector.
pub struct TippingPointSms;

/// The guide's size guidance for the reputation database.
pub const CAPACITY: u64 = 6_000_000;
/// Lines per import file.
pub const MAX_IMPORT: usize = 10_000;
/// Up to this many entries are added one by one rather than imported.
const SINGLE_ADDS: usize = 10;
/// Years a never-expiring entry lives.
const DEFAULT_TTL_DAYS: i64 = 3_650;

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "tippingpoint_sms".into(),
    title: "TippingPoint SMS".into(),
    description: "Pushes addresses, domains and URLs into the SMS reputation database and pulls \
         IPS reputation hits as sightings."
        .into(),
    fields: vec![
        FieldSpec::new(
            "url",
            "SMS URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "https://sms.example.com",
        )
        .required(),
        FieldSpec::new(
            "api_key",
            "API key",
            FieldKind::Secret,
            "A user's API key with the \"Access SMS Web Services\" capability.",
        )
        .required(),
        FieldSpec::new(
            "syslog_listen",
            "Syslog listen address",
            FieldKind::Text { max_len: Some(255) },
            "Receive the SMS's remote-syslog events (ArcSight CEF Format v4.2) on this address, \
             e.g. 0.0.0.0:5514, instead of polling the ALERTS table. A pull then keeps running \
             and records hits as they arrive.",
        ),
        FieldSpec::new(
            "syslog_protocol",
            "Syslog protocol",
            FieldKind::choice(&[("udp", "UDP"), ("tcp", "TCP"), ("both", "UDP and TCP")]),
            "Which transports the syslog listener accepts (TCP: newline-delimited or \
             octet-counted).",
        )
        .default_value("both"),
        FieldSpec::new(
            "syslog_batch_size",
            "Syslog batch size",
            FieldKind::integer(1, 100_000),
            "Received hits are committed every this many events, or every second.",
        )
        .default_value(500),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: true,
        sightings: true,
    },
    targets: vec![TargetSpec {
        name: "reputation".into(),
        label: "Add to the reputation database".into(),
        description: "Adds entries with Trend Micro tag data and a TTL; single adds for a few, \
             import files for more."
            .into(),
        fields: vec![
            FieldSpec::new(
                "detection_category",
                "Detection category",
                FieldKind::Text { max_len: Some(255) },
                "Trend Micro Detection Category (a list category on the SMS; Vision One's sync \
                 uses Suspicious Object).",
            )
            .default_value("Suspicious Object"),
            FieldSpec::new(
                "publisher",
                "Publisher",
                FieldKind::Text { max_len: Some(255) },
                "Trend Micro Publisher.",
            )
            .default_value("iocx"),
            FieldSpec::new(
                "scan_action",
                "Scan action",
                FieldKind::choice(&[("block", "Block"), ("log", "Log")]),
                "Trend Micro Scan Action.",
            )
            .default_value("block"),
        ],
        delivery: Delivery {
            mode: DeliveryMode::Incremental,
            batch_size: MAX_IMPORT,
            byte_budget: None,
            kinds: vec![Kind::Ipv4, Kind::Ipv6, Kind::Cidr, Kind::Domain, Kind::Url],
            capacity: Capacity {
                total: Some(CAPACITY),
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
    key: String,
}

impl<'a> Api<'a> {
    fn new(ctx: &'a Context) -> Result<Api<'a>, ConnectorError> {
        let url = ctx
            .values
            .text("url")
            .ok_or_else(|| ConnectorError::config("the SMS URL is not set"))?;
        let key = ctx
            .values
            .text("api_key")
            .ok_or_else(|| ConnectorError::config("the API key is not set"))?
            .to_string();
        Ok(Api {
            ctx,
            base: http_url("url", url)?,
            key,
        })
    }

    /// Sends a request built by `build` with the API key; answers the status and body text.
    async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String), ConnectorError> {
        let response = self
            .ctx
            .http
            .send(what, &DefaultRetry, |c| {
                build(c).header("X-SMS-API-KEY", &self.key)
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
        Ok((status, text))
    }
}

/// The SMS parameter and import type of a kind.
fn address_type(kind: Kind) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        Kind::Ipv4 => ("ip", "ipv4"),
        Kind::Ipv6 => ("ip", "ipv6"),
        Kind::Cidr => ("ip", "ipv4"),
        Kind::Domain => ("dns", "dns"),
        Kind::Url => ("url", "url"),
        _ => return None,
    })
}

/// CSV quoting for tag data and import lines.
fn quote(text: &str) -> String {
    if text.contains([',', '"', '|', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn ttl(expires: Option<Timestamp>) -> String {
    let at = expires.unwrap_or_else(|| Timestamp::now().plus_days(DEFAULT_TTL_DAYS));
    at.to_datetime()
        .map(|d| d.format("%Y-%m-%d %H:%M:%S+0000").to_string())
        .unwrap_or_default()
}

/// The category/value pairs of an item.
fn tags(item: &PushItem, params: &crate::Values, ctx: &Context) -> Vec<(&'static str, String)> {
    vec![
        (
            "Trend Micro Detection Category",
            params
                .text("detection_category")
                .unwrap_or("iocx")
                .to_string(),
        ),
        (
            "Trend Micro Publisher",
            params.text("publisher").unwrap_or("iocx").to_string(),
        ),
        ("Trend Micro Source", ctx.marker()),
        ("Trend Micro Suspicious Object Source", "UDSO".to_string()),
        (
            "Trend Micro Severity",
            match item.severity {
                Severity::Critical | Severity::High => "High",
                Severity::Medium => "Medium",
                _ => "Low",
            }
            .to_string(),
        ),
        (
            "Trend Micro Scan Action",
            match params.text("scan_action") {
                Some("log") => "log",
                _ => "block",
            }
            .to_string(),
        ),
        ("Reputation Entries TTL", ttl(item.expires)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Pull

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// Alerts that ended before this (epoch ms) are in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_ms: Option<i64>,
}

struct PullState<'a> {
    api: Api<'a>,
    cp: Checkpoint,
    done: bool,
}

/// Splits one CSV line (double quotes, `""` escapes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

/// The sightings of an ALERTS export: one record per matched entry and device.
fn alert_records(csv: &str) -> (Vec<Record>, BTreeMap<String, u64>) {
    let mut sightings = Sightings::default();
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        return sightings.take();
    };
    let header = csv_fields(first);
    let has_header = header.iter().any(|h| h == "MESSAGE_PARMS");
    let column = |name: &str, default: usize| {
        header
            .iter()
            .position(|h| h == name)
            .filter(|_| has_header)
            .unwrap_or(default)
    };
    // Without a header row, the documented column order.
    let (device, end, hits, severity, matched) = (
        column("DEVICE_ID", 1),
        column("END_TIME", 6),
        column("HIT_COUNT", 7),
        column("SEVERITY", 17),
        column("MESSAGE_PARMS", 22),
    );
    let rows: Vec<String> = if has_header {
        lines.map(str::to_string).collect()
    } else {
        std::iter::once(first.to_string())
            .chain(lines.map(str::to_string))
            .collect()
    };
    for row in rows {
        let f = csv_fields(&row);
        let get = |i: usize| f.get(i).map(String::as_str).unwrap_or("");
        let value = get(matched).split('|').next().unwrap_or("").trim();
        if value.is_empty() {
            sightings.reject("no_matched_entry");
            continue;
        }
        sightings.add(Hit {
            value: value.to_string(),
            device: get(device).to_string(),
            hits: get(hits).trim().parse::<u64>().unwrap_or(1).max(1),
            when: get(end)
                .trim()
                .parse::<i64>()
                .ok()
                .map(|ms| Timestamp(ms / 1000)),
            severity: sms_severity(get(severity)),
            action: None,
        });
    }
    sightings.take()
}

#[async_trait]
impl Pages for PullState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        let begin = self
            .cp
            .since_ms
            .unwrap_or_else(|| self.api.ctx.initial_start().0 * 1000);
        let end = now_ms();
        let url = format!(
            "{}/dbAccess/tptDBServlet?method=GetData&table=ALERTS&begin_time={begin}&end_time={end}&format=csv",
            self.api.base
        );
        let what = "reading the ALERTS table";
        let (status, body) = self.api.send(what, |c| c.get(&url)).await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("{what}: HTTP {status}: {}", body.trim()),
            ));
        }
        let (records, rejected) = alert_records(&body);
        self.cp.since_ms = Some(end);
        self.done = true;
        Ok(Some(PullBatch {
            records,
            rejected,
            checkpoint: serde_json::to_value(&self.cp).unwrap_or(Value::Null),
            snapshot_complete: false,
        }))
    }
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Received messages are committed at least this often.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Malformed messages logged one by one per batch; the rest are summed up.
const LOGGED_PER_BATCH: u64 = 10;

/// A listening pull: the syslog receiver and the hits received since the last batch.
struct ListenState<'a> {
    ctx: &'a Context,
    addr: std::net::SocketAddr,
    protocol: Protocol,
    batch_size: usize,
    cp: Checkpoint,
    listener: Option<listener::Listener>,
    sightings: Sightings,
    /// Dropped messages already reported.
    dropped_seen: u64,
    done: bool,
}

impl<'a> ListenState<'a> {
    fn new(ctx: &'a Context, address: &str, cp: Checkpoint) -> Result<Self, ConnectorError> {
        let addr = address.trim().parse().map_err(|_| {
            ConnectorError::config(format!(
                "syslog_listen: {address:?} is not an address and port such as 0.0.0.0:5514"
            ))
        })?;
        let protocol_text = ctx.values.text("syslog_protocol").unwrap_or("both");
        let protocol = Protocol::parse(protocol_text).ok_or_else(|| {
            ConnectorError::config(format!(
                "syslog_protocol: {protocol_text:?} is not udp, tcp or both"
            ))
        })?;
        let batch_size = ctx
            .values
            .integer("syslog_batch_size")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(500)
            .max(1);
        Ok(ListenState {
            ctx,
            addr,
            protocol,
            batch_size,
            cp,
            listener: None,
            sightings: Sightings::default(),
            dropped_seen: 0,
            done: false,
        })
    }
}

/// Takes one received message into the batch, logging malformed ones (the first few per batch
/// with the sender's address).
fn absorb(ctx: &Context, sightings: &mut Sightings, logged: &mut u64, item: Received) {
    match item {
        Received::Hit(hit) => sightings.add(hit),
        Received::Rejected {
            reason,
            detail,
            peer,
            sample,
        } => {
            sightings.reject(reason);
            if detail.is_empty() {
                return;
            }
            *logged += 1;
            if *logged <= LOGGED_PER_BATCH {
                ctx.warn(format!(
                    "Skipped a syslog message from {peer}: {detail}: {sample:?}"
                ));
            }
        }
    }
}

#[async_trait]
impl Pages for ListenState<'_> {
    async fn next_batch(&mut self) -> Result<Option<PullBatch>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        let mut listener = match self.listener.take() {
            Some(l) => l,
            None => {
                let l = listener::start(self.addr, self.protocol, &self.ctx.cancel)
                    .await
                    .map_err(|e| {
                        ConnectorError::config(format!(
                            "syslog_listen: cannot listen on {} ({}): {e}",
                            self.addr,
                            self.protocol.as_str()
                        ))
                    })?;
                let on = [("UDP", l.bound.0), ("TCP", l.bound.1)]
                    .iter()
                    .filter_map(|(p, a)| a.map(|a| format!("{p} {a}")))
                    .collect::<Vec<_>>()
                    .join(" and ");
                self.ctx
                    .info(format!("Listening for SMS syslog events on {on}"));
                l
            }
        };
        let mut events = 0usize;
        let mut logged = 0u64;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let flush = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.ctx.cancel.cancelled() => {
                    // Stopped: what is queued goes into a last batch.
                    while let Ok(item) = listener.rx.try_recv() {
                        absorb(self.ctx, &mut self.sightings, &mut logged, item);
                    }
                    self.done = true;
                    break;
                }
                item = listener.rx.recv() => {
                    let Some(item) = item else {
                        self.done = true;
                        break;
                    };
                    absorb(self.ctx, &mut self.sightings, &mut logged, item);
                    events += 1;
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_EVERY);
                    if events >= self.batch_size {
                        break;
                    }
                }
                () = flush => break,
            }
        }
        if logged > LOGGED_PER_BATCH {
            self.ctx.warn(format!(
                "Skipped {} more malformed syslog messages",
                logged - LOGGED_PER_BATCH
            ));
        }
        let dropped = listener.dropped.load(std::sync::atomic::Ordering::Relaxed);
        if dropped > self.dropped_seen {
            let n = dropped - self.dropped_seen;
            self.dropped_seen = dropped;
            self.sightings.reject_many("queue_full", n);
            self.ctx.warn(format!(
                "Dropped {n} syslog messages: more arrived than the store took in (queue of {})",
                listener::QUEUE
            ));
        }
        if !self.done {
            self.listener = Some(listener);
        }
        if self.sightings.is_empty() {
            return Ok(None);
        }
        let (records, rejected) = self.sightings.take();
        self.cp.since_ms = Some(now_ms());
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
impl Connector for TippingPointSms {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        let api = Api::new(ctx)?;
        let url = format!("{}/smsAdmin/info?request=version", api.base);
        let (status, body) = api.send("reading the SMS version", |c| c.get(&url)).await?;
        if status != 200 {
            return Err(ConnectorError::new(
                ErrorKind::Status(status),
                format!("reading the SMS version: HTTP {status}: {}", body.trim()),
            ));
        }
        let mut answer = format!("Connected to {}: SMS {}", api.base, body.trim());
        if let Some(address) = ctx.values.text("syslog_listen") {
            // The address is checked here; it is bound by the pull (a test must not take it).
            let listen = ListenState::new(ctx, address, Checkpoint::default())?;
            answer.push_str(&format!(
                "; pulls listen for syslog on {} ({})",
                listen.addr,
                listen.protocol.as_str()
            ));
        }
        Ok(answer)
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        let cp = stored_checkpoint::<Checkpoint>("TippingPoint SMS", checkpoint);
        if let Some(address) = ctx.values.text("syslog_listen") {
            return pull_pages(cp.and_then(|cp| ListenState::new(ctx, address, cp)));
        }
        pull_pages((|| {
            Ok(PullState {
                api: Api::new(ctx)?,
                cp: cp?,
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
        let mut outcomes = vec![ItemOutcome::Shared; items.len()];
        let sendable: Vec<usize> = (0..items.len())
            .filter(|i| match address_type(items[*i].indicator.kind) {
                Some(_) => true,
                None => {
                    outcomes[*i] = ItemOutcome::Skipped(format!(
                        "kind {} cannot be a reputation entry",
                        items[*i].indicator.kind
                    ));
                    false
                }
            })
            .collect();
        if sendable.len() <= SINGLE_ADDS {
            for i in sendable {
                let item = &items[i];
                let (param, _) = address_type(item.indicator.kind).unwrap_or(("ip", "ipv4"));
                let tag_data = tags(item, &target.params, ctx)
                    .iter()
                    .map(|(c, v)| format!("{},{}", quote(c), quote(v)))
                    .collect::<Vec<_>>()
                    .join(",");
                let url = format!("{}/repEntries/add", api.base);
                let form = [(param, item.indicator.value.clone()), ("TagData", tag_data)];
                let (status, body) = api
                    .send("adding a reputation entry", |c| c.post(&url).form(&form))
                    .await?;
                if status != 200 {
                    outcomes[i] = ItemOutcome::Skipped(format!(
                        "the SMS refused it (HTTP {status}): {}",
                        body.trim()
                    ));
                }
            }
            return Ok(outcomes);
        }
        // Import files, one per address type.
        let mut files: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        for i in sendable {
            if let Some((_, t)) = address_type(items[i].indicator.kind) {
                files.entry(t).or_default().push(i);
            }
        }
        for (kind, members) in files {
            for chunk in members.chunks(MAX_IMPORT) {
                let separator = if kind == "url" { "|" } else { "," };
                let mut file = String::new();
                for &i in chunk {
                    let item = &items[i];
                    let mut fields = vec![quote(&item.indicator.value)];
                    for (c, v) in tags(item, &target.params, ctx) {
                        fields.push(quote(c));
                        fields.push(quote(&v));
                    }
                    file.push_str(&fields.join(separator));
                    file.push('\n');
                }
                let url = format!("{}/repEntries/import?type={kind}", api.base);
                let what = format!("importing {} {kind} reputation entries", chunk.len());
                let (status, body) = api
                    .send(&what, |c| {
                        let part = reqwest::multipart::Part::text(file.clone())
                            .file_name(format!("iocx-{kind}.csv"))
                            .mime_str("text/csv")
                            .unwrap_or_else(|_| reqwest::multipart::Part::text(file.clone()));
                        c.post(&url)
                            .multipart(reqwest::multipart::Form::new().part("file", part))
                    })
                    .await?;
                let outcome = match status {
                    200 => None,
                    412 if body.to_ascii_lowercase().contains("capacity")
                        || body.contains("6000000")
                        || body.to_ascii_lowercase().contains("maximum") =>
                    {
                        Some(ItemOutcome::Skipped(format!(
                            "capacity reached: {}",
                            body.trim()
                        )))
                    }
                    s => Some(ItemOutcome::Failed(format!("HTTP {s}: {}", body.trim()))),
                };
                if let Some(o) = outcome {
                    for &i in chunk {
                        outcomes[i] = o.clone();
                    }
                }
            }
        }
        Ok(outcomes)
    }

    async fn retract(
        &self,
        ctx: &Context,
        _target: &TargetCall,
        items: &[PushItem],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let api = Api::new(ctx)?;
        let mut outcomes = vec![ItemOutcome::Shared; items.len()];
        let mut by_param: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some((param, _)) = address_type(item.indicator.kind) {
                by_param.entry(param).or_default().push(i);
            }
        }
        for (param, members) in by_param {
            for chunk in members.chunks(500) {
                let mut form: Vec<(&str, String)> = vec![("criteria", "entry".into())];
                form.extend(
                    chunk
                        .iter()
                        .map(|&i| (param, items[i].indicator.value.clone())),
                );
                let url = format!("{}/repEntries/delete", api.base);
                let (status, body) = api
                    .send("deleting reputation entries", |c| c.post(&url).form(&form))
                    .await?;
                if !matches!(status, 200 | 404) {
                    for &i in chunk {
                        outcomes[i] =
                            ItemOutcome::Failed(format!("HTTP {status}: {}", body.trim()));
                    }
                }
            }
        }
        Ok(outcomes)
    }
}
