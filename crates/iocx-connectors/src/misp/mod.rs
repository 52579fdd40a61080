//! `misp`: a MISP instance's attributes in, and a static MISP feed out.
//!
//! - **Auth**: the API key in `Authorization` on every request; TLS verification, a custom CA
//!   and the proxy are the configuration's platform settings.
//! - **Pull**: `POST /attributes/restSearch` with `returnFormat: json`, the filters of the
//!   configuration (`to_ids`, `published`, `type`, `tags` with `!` for exclusions) and
//!   `timestamp: [since, until]`, read `page` by `page` (`limit` 1,000) until a short page. The
//!   checkpoint holds the window and the next page, so a crash resumes at the page it stopped
//!   on; the next run starts at the end of the last window (the first at "initial range
//!   (days)"). The threat level of each event is read once per run with a metadata-only
//!   `POST /events/restSearch` over the page's event ids.
//! - **Push** to "Publish as a MISP feed": writes the whole shared set as a MISP feed into a
//!   directory — `manifest.json`, one `<uuid>.json` per event (one event per severity) and
//!   `hashes.csv` — which any MISP can subscribe to as a feed of type "MISP" served by a web
//!   server. An event whose content did not change keeps its timestamp, so subscribers fetch
//!   only what changed. Each file is written to a temporary name and renamed over the old one, event files
//!   before the manifest, and events that left the set are removed after it, so a reader never
//!   sees a half-written file or a manifest naming a missing event.
//!
//! Wire facts follow `contracts/vendors.md` §7 and the emulator `iocx sim misp`.
//!
//! ## Mapping (pull)
//!
//! | MISP type | kind |
//! |---|---|
//! | ip-src, ip-dst, ip-src\|port, ip-dst\|port | ipv4, ipv6 or cidr (the port is dropped) |
//! | domain, hostname, hostname\|port | domain |
//! | domain\|ip | a domain and an address (two records) |
//! | url | url |
//! | md5, sha1, sha256, filename\|md5, filename\|sha1, filename\|sha256 | md5, sha1, sha256 |
//! | email, email-src, email-dst | email |
//!
//! Other types are counted as rejected `unsupported_type`. The event's threat level becomes the
//! severity (1 high, 2 medium, 3 low, 4 unknown); the attribute's and (inherited) event's tags,
//! TLP included, become tags; `to_ids: false` adds the tag `misp:to_ids="false"`; the event
//! info and the attribute comment become the comment; the attribute's `first_seen`/`last_seen`
//! (else its timestamp) become first and last seen; the event's page in MISP becomes the link.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::stream::BoxStream;
use iocx_model::{Kind, ParseOptions, Record, Severity, TagSet, Timestamp, parse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::DefaultRetry;
use crate::spec::{
    Capabilities, Capacity, ConnectorSpec, Delivery, DeliveryMode, FieldKind, FieldSpec, TargetSpec,
};
use crate::{
    Connector, ConnectorError, Context, ErrorKind, ItemOutcome, Pages, PullBatch, PushItem,
    TargetCall, http_url, is_echo, pull_pages, stored_checkpoint,
};

#[cfg(test)]
mod tests;

/// The `misp` connector.
pub struct Misp;

/// Attributes per `restSearch` page.
pub const PAGE: usize = 1_000;
/// The most indicators one published feed holds.
pub const MAX_FEED_ITEMS: usize = 1_000_000;

/// The MISP attribute types the pull understands, with their labels.
const TYPES: [(&str, &str); 18] = [
    ("ip-src", "ip-src"),
    ("ip-dst", "ip-dst"),
    ("ip-src|port", "ip-src|port"),
    ("ip-dst|port", "ip-dst|port"),
    ("domain", "domain"),
    ("hostname", "hostname"),
    ("hostname|port", "hostname|port"),
    ("domain|ip", "domain|ip"),
    ("url", "url"),
    ("md5", "md5"),
    ("sha1", "sha1"),
    ("sha256", "sha256"),
    ("filename|md5", "filename|md5"),
    ("filename|sha1", "filename|sha1"),
    ("filename|sha256", "filename|sha256"),
    ("email", "email"),
    ("email-src", "email-src"),
    ("email-dst", "email-dst"),
];

static SPEC: LazyLock<ConnectorSpec> = LazyLock::new(|| ConnectorSpec {
    name: "misp".into(),
    title: "MISP".into(),
    description: "Pulls the attributes of a MISP instance through restSearch, and publishes \
         indicators as a MISP feed (manifest.json, one file per event, hashes.csv) that MISP \
         instances subscribe to."
        .into(),
    fields: vec![
        FieldSpec::new(
            "url",
            "MISP URL",
            FieldKind::Text {
                max_len: Some(2048),
            },
            "https://misp.example.com (needed to pull; the feed target needs none).",
        ),
        FieldSpec::new(
            "api_key",
            "API key",
            FieldKind::Secret,
            "The authentication key of a MISP user (Administration → List Auth Keys).",
        ),
        FieldSpec::new(
            "to_ids_only",
            "IDS attributes only",
            FieldKind::Boolean,
            "Pull only attributes flagged for IDS (to_ids).",
        )
        .default_value(true),
        FieldSpec::new(
            "published_only",
            "Published events only",
            FieldKind::Boolean,
            "Pull only attributes of published events.",
        )
        .default_value(false),
        FieldSpec::new(
            "tags_include",
            "Tags to include",
            FieldKind::Text {
                max_len: Some(4096),
            },
            "Comma-separated tags; an attribute (or its event) must carry one of them. `%` is \
             a wildcard, e.g. tlp:%.",
        ),
        FieldSpec::new(
            "tags_exclude",
            "Tags to exclude",
            FieldKind::Text {
                max_len: Some(4096),
            },
            "Comma-separated tags; attributes carrying any of them are left out, e.g. tlp:red.",
        ),
        FieldSpec::new(
            "types",
            "Attribute types",
            FieldKind::multi_choice(&TYPES),
            "The MISP attribute types to pull.",
        )
        .default_value(json!(TYPES.iter().map(|(v, _)| *v).collect::<Vec<_>>())),
    ],
    capabilities: Capabilities {
        pull: true,
        push: true,
        retract: false,
        sightings: false,
    },
    targets: vec![TargetSpec {
        name: "feed".into(),
        label: "Publish as a MISP feed".into(),
        description: "Writes the shared indicators as a MISP feed into a directory (one event \
             per severity), replacing the previous files atomically."
            .into(),
        fields: vec![
            FieldSpec::new(
                "directory",
                "Directory",
                FieldKind::Text {
                    max_len: Some(4096),
                },
                "Where the feed is written (created if missing); serve it with a web server \
                 and add its URL to MISP as a feed of type MISP.",
            )
            .required(),
            FieldSpec::new(
                "event_info",
                "Event title",
                FieldKind::Text { max_len: Some(255) },
                "The events' info; the severity is appended.",
            )
            .default_value("Indicators shared by iocx"),
            FieldSpec::new(
                "org_name",
                "Organisation",
                FieldKind::Text { max_len: Some(255) },
                "The creator organisation named in the feed.",
            )
            .default_value("iocx"),
            FieldSpec::new(
                "tlp",
                "TLP",
                FieldKind::choice(&[
                    ("tlp:clear", "TLP:CLEAR"),
                    ("tlp:green", "TLP:GREEN"),
                    ("tlp:amber", "TLP:AMBER"),
                    ("tlp:amber+strict", "TLP:AMBER+STRICT"),
                    ("tlp:red", "TLP:RED"),
                ]),
                "The TLP tag of every event.",
            )
            .default_value("tlp:amber"),
        ],
        delivery: Delivery {
            mode: DeliveryMode::FullState,
            batch_size: MAX_FEED_ITEMS,
            byte_budget: None,
            kinds: Kind::ALL.to_vec(),
            capacity: Capacity {
                total: Some(MAX_FEED_ITEMS as u64),
                ..Capacity::default()
            },
            removal: false,
            deploy: false,
        },
    }],
});

// ---------------------------------------------------------------------------------------------
// The API

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
            .ok_or_else(|| ConnectorError::config("the MISP URL (url) is not set"))?;
        let key = ctx
            .values
            .text("api_key")
            .ok_or_else(|| ConnectorError::config("the MISP API key (api_key) is not set"))?;
        Ok(Api {
            ctx,
            base: http_url("url", url)?,
            key: key.to_string(),
        })
    }

    /// A request with the API key: the JSON answer of a 200, else an error naming `what`.
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
            .send(what, &DefaultRetry, |c| {
                let r = c
                    .request(method.clone(), &url)
                    .header("Authorization", &self.key)
                    .header("Accept", "application/json");
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await?;
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(ConnectorError::new(
                ErrorKind::Auth,
                format!("{what}: MISP refused the API key (HTTP {status}): {message}"),
            ));
        }
        let response = self.ctx.http.check(what, response).await?;
        self.ctx.http.json(what, response).await
    }
}

// ---------------------------------------------------------------------------------------------
// Pull

/// Where a pull stands: the time window of the run in progress and its next page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// The window's start (epoch seconds): the end of the last finished window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<i64>,
    /// The window's end, while a run is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
    /// The next page of the run in progress (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u64>,
}

struct PullState<'a> {
    api: Api<'a>,
    filters: Map<String, Value>,
    cp: Checkpoint,
    threat_levels: HashMap<String, u8>,
    /// Rejections logged so far this run (only the first few are).
    logged: usize,
    done: bool,
}

/// How many rejected attributes a run logs one by one.
const LOGGED_REJECTIONS: usize = 5;

/// The comma-separated entries of a text field.
fn entries(ctx: &Context, key: &str) -> Vec<String> {
    ctx.values
        .text(key)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The restSearch filters the configuration asks for (without window and page).
fn filters(ctx: &Context) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("returnFormat".into(), json!("json"));
    f.insert("limit".into(), json!(PAGE));
    f.insert("includeEventTags".into(), json!(1));
    f.insert("deleted".into(), json!(0));
    let mut types = ctx.values.list("types");
    if types.is_empty() {
        types = TYPES.iter().map(|(t, _)| (*t).to_string()).collect();
    }
    f.insert("type".into(), json!(types));
    if ctx.values.flag("to_ids_only") {
        f.insert("to_ids".into(), json!(1));
    }
    if ctx.values.flag("published_only") {
        f.insert("published".into(), json!(1));
    }
    let mut tags = entries(ctx, "tags_include");
    tags.extend(
        entries(ctx, "tags_exclude")
            .into_iter()
            .map(|t| format!("!{t}")),
    );
    if !tags.is_empty() {
        f.insert("tags".into(), json!(tags));
    }
    f
}

/// The severity of a MISP threat level.
fn severity_of(threat_level: u8) -> Severity {
    match threat_level {
        1 => Severity::High,
        2 => Severity::Medium,
        3 => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// A number MISP may send as a string.
fn loose_u64(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The indicators one MISP attribute value names, as `(kind, value)` to parse (`None`: any
/// address kind), or the reason it names none.
fn split_value(kind: &str, value: &str) -> Result<Vec<(Option<Kind>, String)>, String> {
    let before = |v: &str| v.rsplit_once('|').map_or(v, |(a, _)| a).to_string();
    let after = |v: &str| v.rsplit_once('|').map_or(v, |(_, b)| b).to_string();
    Ok(match kind {
        "ip-src" | "ip-dst" => vec![(None, value.to_string())],
        "ip-src|port" | "ip-dst|port" => vec![(None, before(value))],
        "domain" | "hostname" => vec![(Some(Kind::Domain), value.to_string())],
        "hostname|port" => vec![(Some(Kind::Domain), before(value))],
        "domain|ip" => {
            let (d, ip) = value
                .split_once('|')
                .ok_or_else(|| "bad_composite_value".to_string())?;
            vec![(Some(Kind::Domain), d.to_string()), (None, ip.to_string())]
        }
        "url" => vec![(Some(Kind::Url), value.to_string())],
        "md5" => vec![(Some(Kind::Md5), value.to_string())],
        "sha1" => vec![(Some(Kind::Sha1), value.to_string())],
        "sha256" => vec![(Some(Kind::Sha256), value.to_string())],
        "filename|md5" => vec![(Some(Kind::Md5), after(value))],
        "filename|sha1" => vec![(Some(Kind::Sha1), after(value))],
        "filename|sha256" => vec![(Some(Kind::Sha256), after(value))],
        "email" | "email-src" | "email-dst" => vec![(Some(Kind::Email), value.to_string())],
        _ => return Err("unsupported_type".into()),
    })
}

/// The records of one attribute of `/attributes/restSearch`.
fn records(a: &Value, threat_level: Option<u8>, base: &str) -> Result<Vec<Record>, String> {
    let text = |k: &str| a.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let kind = text("type").unwrap_or("");
    let value = text("value").unwrap_or("");
    let parts = split_value(kind, value)?;
    let mut tags: Vec<String> = a
        .get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let to_ids = match a.get("to_ids") {
        Some(Value::Bool(b)) => *b,
        other => loose_u64(other).is_none_or(|n| n != 0),
    };
    if !to_ids {
        tags.push("misp:to_ids=\"false\"".into());
    }
    let info = a
        .pointer("/Event/info")
        .and_then(Value::as_str)
        .unwrap_or("");
    let comment = match (info.trim(), text("comment").map(str::trim)) {
        ("", None | Some("")) => None,
        (i, None | Some("")) => Some(i.to_string()),
        ("", Some(c)) => Some(c.to_string()),
        (i, Some(c)) => Some(format!("{i} — {c}")),
    };
    let event_id = text("event_id")
        .map(str::to_string)
        .or_else(|| loose_u64(a.get("event_id")).map(|n| n.to_string()));
    let ts = loose_u64(a.get("timestamp")).map(|t| Timestamp(t as i64));
    let seen = |k: &str| text(k).and_then(|t| Timestamp::parse(t).ok());
    let mut out = Vec::with_capacity(parts.len());
    for (declared, raw) in parts {
        let indicator = parse(raw.trim(), declared, &ParseOptions::default())
            .map_err(|e| e.reason().to_string())?
            .first()
            .clone();
        if declared.is_none() && !matches!(indicator.kind, Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr) {
            return Err("bad_ip".into());
        }
        let mut r = Record::new(indicator);
        r.attributes.severity = severity_of(threat_level.unwrap_or(4));
        r.attributes.tags = TagSet::from_tags(&tags);
        r.attributes.comment.clone_from(&comment);
        r.attributes.link = event_id
            .as_ref()
            .map(|id| format!("{base}/events/view/{id}"));
        r.echo = comment.as_deref().is_some_and(is_echo);
        r.first_seen = seen("first_seen");
        r.last_seen = seen("last_seen").or(ts);
        out.push(r);
    }
    Ok(out)
}

impl PullState<'_> {
    /// The threat levels of the events of `attrs` not read yet this run.
    async fn learn_threat_levels(&mut self, attrs: &[Value]) -> Result<(), ConnectorError> {
        let mut wanted: Vec<String> = attrs
            .iter()
            .filter_map(|a| {
                a.get("event_id").and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
            })
            .filter(|id| !self.threat_levels.contains_key(id))
            .collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let body = json!({"returnFormat": "json", "eventid": wanted, "metadata": 1});
        let answer = self
            .api
            .call(
                "reading the threat levels of events",
                reqwest::Method::POST,
                "/events/restSearch",
                Some(&body),
            )
            .await?;
        let events = answer
            .get("response")
            .and_then(Value::as_array)
            .or_else(|| answer.as_array());
        for e in events.into_iter().flatten() {
            let e = e.get("Event").unwrap_or(e);
            if let (Some(id), Some(tl)) =
                (loose_u64(e.get("id")), loose_u64(e.get("threat_level_id")))
            {
                self.threat_levels
                    .insert(id.to_string(), u8::try_from(tl).unwrap_or(4));
            }
        }
        // Events MISP did not describe count as "undefined" rather than being asked for again.
        for id in wanted {
            self.threat_levels.entry(id).or_insert(4);
        }
        Ok(())
    }
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
            .unwrap_or_else(|| self.api.ctx.initial_start().secs());
        let until = *self.cp.until.get_or_insert_with(|| Timestamp::now().secs());
        let page = self.cp.page.unwrap_or(1);
        let mut body = self.filters.clone();
        body.insert(
            "timestamp".into(),
            json!([since.to_string(), until.to_string()]),
        );
        body.insert("page".into(), json!(page));
        let body = Value::Object(body);
        let what = format!("searching attributes (page {page})");
        let answer = self
            .api
            .call(
                &what,
                reqwest::Method::POST,
                "/attributes/restSearch",
                Some(&body),
            )
            .await?;
        let attrs = answer
            .pointer("/response/Attribute")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| {
                ConnectorError::protocol(format!(
                    "{what}: the answer has no response.Attribute list"
                ))
            })?;
        self.learn_threat_levels(&attrs).await?;
        let mut out = Vec::with_capacity(attrs.len());
        let mut rejected = BTreeMap::<String, u64>::new();
        for a in &attrs {
            let tl = a
                .get("event_id")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .and_then(|id| self.threat_levels.get(&id).copied());
            match records(a, tl, &self.api.base) {
                Ok(rs) => out.extend(rs),
                Err(reason) => {
                    if self.logged < LOGGED_REJECTIONS {
                        self.logged += 1;
                        let field = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("?");
                        self.api.ctx.warn(format!(
                            "MISP attribute {} of event {} ({} `{}`) skipped: {reason}",
                            field("id"),
                            field("event_id"),
                            field("type"),
                            field("value").chars().take(200).collect::<String>(),
                        ));
                    }
                    *rejected.entry(reason).or_default() += 1;
                }
            }
        }
        if attrs.len() < PAGE {
            self.cp = Checkpoint {
                since: Some(until),
                until: None,
                page: None,
            };
            self.done = true;
        } else {
            self.cp.since = Some(since);
            self.cp.page = Some(page + 1);
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
// Push: the MISP feed

/// A UUID (RFC 4122 layout, version 5 bits) derived from `parts`, so the same event or
/// attribute keeps its UUID from one publication to the next.
fn stable_uuid(parts: &[&str]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(text.as_bytes()))
}

/// The MISP attribute type of a kind.
fn misp_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr => "ip-dst",
        Kind::Domain => "domain",
        Kind::Url => "url",
        Kind::Md5 => "md5",
        Kind::Sha1 => "sha1",
        Kind::Sha256 => "sha256",
        Kind::Email => "email-src",
    }
}

fn category(kind: Kind) -> &'static str {
    match kind {
        Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::Email => "Payload delivery",
        _ => "Network activity",
    }
}

/// The threat level (and the word for the event title) of a severity.
fn threat_level(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Critical | Severity::High => (1, "high"),
        Severity::Medium => (2, "medium"),
        Severity::Low => (3, "low"),
        Severity::Unknown => (4, "undefined"),
    }
}

fn iso(t: Timestamp) -> Value {
    t.to_datetime()
        .map(|d| json!(d.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()))
        .unwrap_or(Value::Null)
}

/// The feed's files: `(file name, contents)`, event files first, then `hashes.csv` and
/// `manifest.json`.
struct Feed {
    files: Vec<(String, Vec<u8>)>,
    events: Vec<String>,
}

/// The event of the previous publication in `dir`, if it is there and readable.
fn previous_event(dir: &Path, uuid: &str) -> Option<Value> {
    let text = std::fs::read(dir.join(format!("{uuid}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The fields that say when an event was written, which do not count as a change.
const WRITE_TIMES: [&str; 3] = ["timestamp", "publish_timestamp", "date"];

/// `new` with the write times of `old` when nothing else differs, so MISP does not fetch an
/// unchanged event again.
fn keep_unchanged(new: &mut Value, old: Option<Value>) {
    let Some(mut old) = old else { return };
    let strip = |v: &mut Value| -> Option<Map<String, Value>> {
        let e = v.get_mut("Event")?.as_object_mut()?;
        let mut times = Map::new();
        for k in WRITE_TIMES {
            if let Some(t) = e.remove(k) {
                times.insert(k.into(), t);
            }
        }
        Some(times)
    };
    let (Some(new_times), Some(old_times)) = (strip(new), strip(&mut old)) else {
        return;
    };
    let same = *new == old && WRITE_TIMES.iter().all(|k| old_times.contains_key(*k));
    let times = if same { old_times } else { new_times };
    if let Some(e) = new.get_mut("Event").and_then(Value::as_object_mut) {
        e.extend(times);
    }
}

fn build_feed(
    ctx: &Context,
    target: &TargetCall,
    items: &[&PushItem],
    previous: &dyn Fn(&str) -> Option<Value>,
) -> Feed {
    let info = target
        .params
        .text("event_info")
        .unwrap_or("Indicators shared by iocx");
    let org_name = target.params.text("org_name").unwrap_or("iocx");
    let org_uuid = stable_uuid(&["iocx-org", org_name]);
    let tlp = target.params.text("tlp").unwrap_or("tlp:amber");
    let now = Timestamp::now();
    let date = now
        .to_datetime()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut groups: BTreeMap<u8, (&'static str, Vec<&PushItem>)> = BTreeMap::new();
    for item in items {
        let (level, word) = threat_level(item.severity);
        groups
            .entry(level)
            .or_insert((word, Vec::new()))
            .1
            .push(item);
    }
    let mut files = Vec::new();
    let mut manifest = Map::new();
    let mut hashes = String::new();
    let mut events = Vec::new();
    let event_tags = json!([{"name": tlp, "colour": tlp_colour(tlp), "local": false}]);
    for (level, (word, members)) in groups {
        let uuid = stable_uuid(&["iocx-feed", &ctx.configuration, &target.sharing, word]);
        let title = format!("{info} ({word} threat)");
        let marker = ctx.marker();
        let attributes: Vec<Value> = members
            .iter()
            .map(|item| {
                let value = &item.indicator.value;
                let comment = match &item.comment {
                    Some(c) if !c.trim().is_empty() => format!("{marker} — {}", c.trim()),
                    _ => marker.clone(),
                };
                let mut a = json!({
                    "uuid": stable_uuid(&[&uuid, item.indicator.kind.as_str(), value]),
                    "type": misp_type(item.indicator.kind),
                    "category": category(item.indicator.kind),
                    "value": value,
                    "comment": comment,
                    "to_ids": true,
                    "deleted": false,
                    "timestamp": item.last_seen.secs().to_string(),
                    "disable_correlation": false,
                    "first_seen": iso(item.first_seen),
                    "last_seen": iso(item.last_seen),
                });
                if !item.tags.is_empty() {
                    a["Tag"] = Value::Array(
                        item.tags
                            .iter()
                            .map(|t| json!({"name": t, "colour": "#0088cc", "local": false}))
                            .collect(),
                    );
                }
                hashes.push_str(&md5_hex(value));
                hashes.push(',');
                hashes.push_str(&uuid);
                hashes.push('\n');
                a
            })
            .collect();
        let mut event = json!({"Event": {
            "uuid": uuid,
            "info": title,
            "date": date,
            "threat_level_id": level.to_string(),
            "analysis": "2",
            "published": true,
            "timestamp": now.secs().to_string(),
            "publish_timestamp": now.secs().to_string(),
            "Orgc": {"name": org_name, "uuid": org_uuid},
            "Tag": event_tags,
            "Attribute": attributes,
            "Object": [],
        }});
        keep_unchanged(&mut event, previous(&uuid));
        let written = |k: &str| event["Event"][k].clone();
        let timestamp = written("timestamp")
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(now.secs());
        manifest.insert(
            uuid.clone(),
            json!({
                "Orgc": {"name": org_name, "uuid": org_uuid},
                "Tag": event_tags,
                "info": title,
                "date": written("date"),
                "analysis": 2,
                "threat_level_id": level,
                "timestamp": timestamp,
            }),
        );
        files.push((format!("{uuid}.json"), event.to_string().into_bytes()));
        events.push(uuid);
    }
    files.push(("hashes.csv".into(), hashes.into_bytes()));
    files.push((
        "manifest.json".into(),
        Value::Object(manifest).to_string().into_bytes(),
    ));
    Feed { files, events }
}

fn tlp_colour(tlp: &str) -> &'static str {
    match tlp {
        "tlp:clear" | "tlp:white" => "#ffffff",
        "tlp:green" => "#33ff00",
        "tlp:red" => "#ff0033",
        _ => "#ffc000",
    }
}

/// Writes `bytes` to `dir/name` through a temporary file renamed over it.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ConnectorError> {
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let fail = |what: &str, e: std::io::Error| {
        ConnectorError::config(format!("{what} {}: {e}", target.display()))
    };
    std::fs::write(&tmp, bytes).map_err(|e| fail("writing the feed file", e))?;
    std::fs::rename(&tmp, &target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("replacing the feed file", e)
    })
}

/// Writes the feed and removes event files of events no longer in it.
fn write_feed(dir: &Path, feed: &Feed) -> Result<usize, ConnectorError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        ConnectorError::config(format!(
            "creating the feed directory {}: {e}",
            dir.display()
        ))
    })?;
    for (name, bytes) in &feed.files {
        replace_file(dir, name, bytes)?;
    }
    let mut removed = 0;
    let listing = std::fs::read_dir(dir).map_err(|e| {
        ConnectorError::config(format!("listing the feed directory {}: {e}", dir.display()))
    })?;
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let is_event = uuid_shaped(stem);
        if is_event && !feed.events.iter().any(|u| u == stem) {
            std::fs::remove_file(entry.path()).map_err(|e| {
                ConnectorError::config(format!(
                    "removing the old event file {}: {e}",
                    entry.path().display()
                ))
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn uuid_shaped(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[async_trait]
impl Connector for Misp {
    fn spec(&self) -> &ConnectorSpec {
        &SPEC
    }

    async fn validate(&self, ctx: &Context) -> Result<String, ConnectorError> {
        if ctx.values.text("url").is_none() {
            return Ok(
                "No MISP URL is set: this configuration can publish a feed but not pull".into(),
            );
        }
        let api = Api::new(ctx)?;
        let version = api
            .call(
                "reading the MISP version",
                reqwest::Method::GET,
                "/servers/getVersion",
                None,
            )
            .await?;
        let v = version
            .get("version")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ConnectorError::protocol(format!(
                    "reading the MISP version at {}: the answer has no version; is this a MISP?",
                    api.base
                ))
            })?;
        Ok(format!("Connected to MISP {v} at {}", api.base))
    }

    fn pull<'a>(
        &'a self,
        ctx: &'a Context,
        checkpoint: Option<Value>,
    ) -> BoxStream<'a, Result<PullBatch, ConnectorError>> {
        pull_pages((|| {
            Ok(PullState {
                api: Api::new(ctx)?,
                filters: filters(ctx),
                cp: stored_checkpoint("MISP", checkpoint)?,
                threat_levels: HashMap::new(),
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
        if target.target != "feed" {
            return Err(ConnectorError::config(format!(
                "misp has no target `{}`; its target is feed",
                target.target
            )));
        }
        let dir = target
            .params
            .text("directory")
            .map(PathBuf::from)
            .ok_or_else(|| ConnectorError::config("the feed directory is not set"))?;
        let published: Vec<PushItem> = items.iter().filter(|i| !i.safe).cloned().collect();
        let count = published.len();
        // Reading the previous publication and writing the new one is file work: off the
        // async threads.
        let (events, removed) = tokio::task::spawn_blocking({
            let (dir, ctx, target) = (dir.clone(), ctx.clone(), target.clone());
            move || {
                let refs: Vec<&PushItem> = published.iter().collect();
                let feed = build_feed(&ctx, &target, &refs, &|uuid| previous_event(&dir, uuid));
                write_feed(&dir, &feed).map(|removed| (feed.events.len(), removed))
            }
        })
        .await
        .map_err(|e| ConnectorError::protocol(format!("writing the feed: {e}")))??;
        ctx.info(format!(
            "Published {count} indicators in {events} events to the MISP feed in {} ({removed} old events removed)",
            dir.display()
        ));
        Ok(items
            .iter()
            .map(|i| {
                if i.safe {
                    ItemOutcome::Skipped("safe indicators are not published in a MISP feed".into())
                } else {
                    ItemOutcome::Shared
                }
            })
            .collect())
    }
}
