//! What the emulator holds: the custom IOCs of one CID with their look-up maps, the
//! endpoint-detection alerts, sorting and both kinds of paging (`offset` within a window and
//! `after` tokens beyond it), creates with duplicate and capacity checks, updates, deletes, and the
//! realistic seed data behind `--iocs` and `--alerts`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fql::Filter;
use super::model::{
    Action, Alert, Fields, Indicator, IndicatorAt, IocType, ItemError, ItemRules, NewIndicator,
    Platform, Severity, apply_update,
};

/// What a create does when some of its items are refused (not documented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartialCreate {
    /// The valid items are created; the answer is 400 when any item was refused.
    StoreValid,
    /// Nothing is created when any item is refused (400).
    RejectAll,
}

/// What `meta.pagination.after` holds on the last page (not documented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AfterAtEnd {
    /// An empty string.
    Empty,
    /// A token anyway; following it answers an empty page.
    Token,
}

/// The message of the capacity refusal. Netskope's plugin looks for exactly these words.
pub const CAPACITY_MESSAGE: &str = "Limit of 1 million indicators reached.";

/// The settings the store needs (taken from `Args`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) capacity: usize,
    pub(crate) partial_create: PartialCreate,
    pub(crate) after_at_end: AfterAtEnd,
    pub(crate) rules: ItemRules,
}

/// A sort value: integers for times, numbers and booleans, text for the rest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SortValue {
    /// A number (times as nanoseconds since the epoch).
    #[serde(rename = "i")]
    Int(i64),
    /// Text, lower-cased.
    #[serde(rename = "s")]
    Text(String),
}

/// A `sort` parameter: a field and a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The field as named on the wire (`modified_on`, `severity_number`, …).
    pub field: String,
    /// Descending when true.
    pub desc: bool,
}

/// The sort fields of the indicator endpoints.
pub const INDICATOR_SORT_FIELDS: &[&str] = &[
    "action",
    "applied_globally",
    "metadata.av_hits",
    "metadata.company_name.raw",
    "created_by",
    "created_on",
    "expiration",
    "expired",
    "metadata.filename.raw",
    "modified_by",
    "modified_on",
    "metadata.original_filename.raw",
    "metadata.product_name.raw",
    "metadata.product_version",
    "severity_number",
    "source",
    "type",
    "value",
];

/// The sort fields of the alerts endpoint.
pub const ALERT_SORT_FIELDS: &[&str] = &[
    "updated_timestamp",
    "created_timestamp",
    "timestamp",
    "severity",
    "confidence",
    "composite_id",
];

impl Sort {
    /// Parses `field.asc`, `field.desc`, `field|asc`, `field|desc` or a bare field (ascending)
    /// against the allowed fields.
    pub fn parse(text: &str, allowed: &[&str]) -> Option<Sort> {
        let t = text.trim();
        let (field, desc) = if let Some((f, d)) = t.split_once('|') {
            (f.trim(), d.trim())
        } else if let Some(f) = t.strip_suffix(".asc") {
            (f, "asc")
        } else if let Some(f) = t.strip_suffix(".desc") {
            (f, "desc")
        } else {
            (t, "asc")
        };
        let desc = match desc.to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            _ => return None,
        };
        allowed.contains(&field).then(|| Sort {
            field: field.to_string(),
            desc,
        })
    }

    /// The canonical text form (`field.asc`).
    pub fn text(&self) -> String {
        format!("{}.{}", self.field, if self.desc { "desc" } else { "asc" })
    }
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn indicator_key(i: &Indicator, field: &str, now: DateTime<Utc>) -> SortValue {
    let text = |s: &str| SortValue::Text(s.to_ascii_lowercase());
    match field {
        "action" => text(i.effective_action(now).key()),
        "applied_globally" => SortValue::Int(i64::from(i.applied_globally)),
        "created_by" => text(&i.created_by),
        "created_on" => SortValue::Int(nanos(i.created_on)),
        "expiration" => SortValue::Int(i.expiration.map_or(i64::MAX, nanos)),
        "expired" => SortValue::Int(i64::from(i.expired(now))),
        "metadata.filename.raw" => text(i.filename.as_deref().unwrap_or("")),
        "modified_by" => text(&i.modified_by),
        "modified_on" => SortValue::Int(nanos(i.modified_on)),
        "severity_number" => SortValue::Int(Severity::number(i.severity)),
        "source" => text(&i.source),
        "type" => text(i.ioc_type.key()),
        "value" => text(&i.value),
        _ => SortValue::Text(String::new()),
    }
}

fn alert_key(a: &Alert, field: &str) -> SortValue {
    match field {
        "created_timestamp" | "timestamp" => SortValue::Int(nanos(a.created)),
        "severity" => SortValue::Int(a.severity),
        "confidence" => SortValue::Int(a.confidence),
        "composite_id" => SortValue::Text(a.composite_id.to_ascii_lowercase()),
        _ => SortValue::Int(nanos(a.updated)),
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    /// `offset=N`.
    Offset(usize),
    /// No `offset`: scroll from the beginning, or after the token's position.
    After(Option<AfterToken>),
}

/// The state an `after` token carries, as URL-safe base64 of a small JSON object: the sort it
/// belongs to and the sort key of the last item served. Items strictly after that key come
/// next, so scrolling neither skips nor repeats items while others are added or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterToken {
    /// `i` (indicators) or `a` (alerts).
    #[serde(rename = "r")]
    pub resource: String,
    /// The sort, canonical text.
    #[serde(rename = "s")]
    pub sort: String,
    /// The last item's sort value.
    #[serde(rename = "k")]
    pub key: SortValue,
    /// The last item's sequence number (the tie-break).
    #[serde(rename = "q")]
    pub seq: u64,
    /// Set when the token marks the end (see [`AfterAtEnd::Token`]).
    #[serde(rename = "e", default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
}

impl AfterToken {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a token; `None` when it was not made by [`AfterToken::encode`].
    pub fn decode(text: &str) -> Option<AfterToken> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many items match in all.
    pub total: usize,
    /// The token of the next page when scrolling; `None` on the last page.
    pub next: Option<AfterToken>,
}

/// Sorts `(key, seq)` rows and cuts one page out of them.
fn page_rows(
    mut rows: Vec<(SortValue, u64)>,
    sort: &Sort,
    resource: &str,
    start: &PageStart,
    limit: usize,
) -> (Vec<u64>, usize, Option<AfterToken>) {
    if sort.desc {
        rows.sort_by(|a, b| b.cmp(a));
    } else {
        rows.sort();
    }
    let total = rows.len();
    let from = match start {
        PageStart::Offset(n) => (*n).min(total),
        PageStart::After(None) => 0,
        PageStart::After(Some(t)) if t.end => total,
        PageStart::After(Some(t)) => {
            let cursor = (t.key.clone(), t.seq);
            if sort.desc {
                rows.partition_point(|r| *r >= cursor)
            } else {
                rows.partition_point(|r| *r <= cursor)
            }
        }
    };
    let to = from.saturating_add(limit).min(total);
    let page: Vec<u64> = rows[from..to].iter().map(|(_, s)| *s).collect();
    let next = match (start, rows[from..to].last()) {
        (PageStart::After(_), Some((key, seq))) if to < total => Some(AfterToken {
            resource: resource.to_string(),
            sort: sort.text(),
            key: key.clone(),
            seq: *seq,
            end: false,
        }),
        _ => None,
    };
    (page, total, next)
}

/// The custom IOCs of one CID, with look-ups by id and by (type, value).
#[derive(Debug)]
struct Inner {
    iocs: BTreeMap<u64, Indicator>,
    by_key: HashMap<(IocType, String), u64>,
    by_id: HashMap<String, u64>,
    alerts: BTreeMap<u64, Alert>,
    next_seq: u64,
    rng: StdRng,
}

impl Inner {
    fn new(seed: u64) -> Inner {
        Inner {
            iocs: BTreeMap::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            alerts: BTreeMap::new(),
            next_seq: 1,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_c0de),
        }
    }

    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    fn new_id(&mut self) -> String {
        loop {
            let bytes: [u8; 32] = self.rng.r#gen();
            let id = hex::encode(bytes);
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    fn insert(&mut self, ioc: Indicator) {
        let seq = self.seq();
        self.by_key.insert((ioc.ioc_type, ioc.value.clone()), seq);
        self.by_id.insert(ioc.id.clone(), seq);
        self.iocs.insert(seq, ioc);
    }

    fn remove(&mut self, seq: u64) -> Option<Indicator> {
        let ioc = self.iocs.remove(&seq)?;
        self.by_key.remove(&(ioc.ioc_type, ioc.value.clone()));
        self.by_id.remove(&ioc.id);
        Some(ioc)
    }

    /// The sequence numbers of the indicators `filter` matches, in storage order.
    fn matching(&self, filter: Option<&Filter>, now: DateTime<Utc>) -> Vec<u64> {
        let check = |ioc: &Indicator| filter.is_none_or(|f| f.matches(&IndicatorAt { ioc, now }));
        if let Some(values) = filter.and_then(|f| f.pinned_values("value")) {
            let mut seqs = BTreeSet::new();
            for v in values {
                for t in IocType::ALL {
                    for candidate in [v.trim().to_string(), v.trim().to_ascii_lowercase()] {
                        if let Some(seq) = self.by_key.get(&(*t, candidate)) {
                            seqs.insert(*seq);
                        }
                    }
                }
            }
            return seqs
                .into_iter()
                .filter(|s| self.iocs.get(s).is_some_and(check))
                .collect();
        }
        self.iocs
            .iter()
            .filter(|(_, ioc)| check(ioc))
            .map(|(s, _)| *s)
            .collect()
    }
}

/// One item of an update by id: what was submitted, and either `(id, fields)` or its refusal.
pub type UpdateItem = (Value, Result<(String, Fields), ItemError>);

/// The result of a create or update: what the answer's `resources` and `errors` hold.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    /// One resource per item, in request order: the stored object, or the submitted item with
    /// `message_type: "error"`.
    pub resources: Vec<Value>,
    /// One entry per refused item.
    pub errors: Vec<Value>,
    /// How many items were written.
    pub written: usize,
}

/// A whole-request refusal of a create: the capacity is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityError;

/// The emulated CID. Cheap to share (`Arc<State>`); every method takes the lock for the length
/// of one request.
#[derive(Debug)]
pub struct State {
    config: Config,
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(config: Config, seed: u64) -> State {
        State {
            config,
            inner: Mutex::new(Inner::new(seed)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many custom IOCs are held.
    pub fn count(&self) -> usize {
        self.lock().iocs.len()
    }

    /// Every indicator held, oldest first.
    pub fn indicators(&self) -> Vec<Indicator> {
        self.lock().iocs.values().cloned().collect()
    }

    /// Every alert held, oldest first.
    pub fn alerts(&self) -> Vec<Alert> {
        self.lock().alerts.values().cloned().collect()
    }

    /// `{"indicators":[…],"alerts":[…]}` in wire form (what `GET /_sim/state` answers).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Value {
        let inner = self.lock();
        json!({
            "indicators": inner.iocs.values().map(|i| i.to_wire(now)).collect::<Vec<_>>(),
            "alerts": inner.alerts.values().map(Alert::to_wire).collect::<Vec<_>>(),
        })
    }

    /// Empties the IOCs and the alerts.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.iocs.clear();
        inner.by_key.clear();
        inner.by_id.clear();
        inner.alerts.clear();
    }

    /// Puts an indicator as is (no validation, no cap), replacing one with the same type and
    /// value. For tests and seeding.
    pub fn put_indicator(&self, ioc: Indicator) {
        let mut inner = self.lock();
        if let Some(seq) = inner
            .by_key
            .get(&(ioc.ioc_type, ioc.value.clone()))
            .copied()
        {
            inner.remove(seq);
        }
        inner.insert(ioc);
    }

    /// Adds an alert as is. For tests, seeding and `POST /_sim/alerts`.
    pub fn put_alert(&self, alert: Alert) {
        let mut inner = self.lock();
        let seq = inner.seq();
        inner.alerts.insert(seq, alert);
    }

    /// One page of indicators.
    pub fn list(
        &self,
        filter: Option<&Filter>,
        sort: &Sort,
        start: &PageStart,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Listing<Indicator> {
        let inner = self.lock();
        let rows: Vec<(SortValue, u64)> = inner
            .matching(filter, now)
            .into_iter()
            .filter_map(|s| {
                inner
                    .iocs
                    .get(&s)
                    .map(|i| (indicator_key(i, &sort.field, now), s))
            })
            .collect();
        let (page, total, next) = page_rows(rows, sort, "i", start, limit);
        let items = page
            .iter()
            .filter_map(|s| inner.iocs.get(s).cloned())
            .collect();
        Listing { items, total, next }
    }

    /// One page of alerts.
    pub fn list_alerts(
        &self,
        filter: Option<&Filter>,
        sort: &Sort,
        start: &PageStart,
        limit: usize,
    ) -> Listing<Alert> {
        let inner = self.lock();
        let rows: Vec<(SortValue, u64)> = inner
            .alerts
            .iter()
            .filter(|(_, a)| filter.is_none_or(|f| f.matches(*a)))
            .map(|(s, a)| (alert_key(a, &sort.field), *s))
            .collect();
        let (page, total, next) = page_rows(rows, sort, "a", start, limit);
        let items = page
            .iter()
            .filter_map(|s| inner.alerts.get(s).cloned())
            .collect();
        Listing { items, total, next }
    }

    /// The indicators with these ids, and the ids not found.
    pub fn get(&self, ids: &[String]) -> (Vec<Indicator>, Vec<String>) {
        let inner = self.lock();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match inner.by_id.get(id).and_then(|s| inner.iocs.get(s)) {
                Some(i) => found.push(i.clone()),
                None => missing.push(id.clone()),
            }
        }
        (found, missing)
    }

    /// The token that marks the end of a listing, for [`AfterAtEnd::Token`].
    pub fn end_token(&self, resource: &str, sort: &Sort) -> AfterToken {
        AfterToken {
            resource: resource.to_string(),
            sort: sort.text(),
            key: SortValue::Int(0),
            seq: 0,
            end: true,
        }
    }

    /// What the last page's `after` holds.
    pub fn after_at_end(&self) -> AfterAtEnd {
        self.config.after_at_end
    }

    /// Creates the validated items (each paired with what was submitted).
    ///
    /// # Errors
    /// [`CapacityError`] when the new indicators would pass the capacity: nothing is stored.
    pub fn create(
        &self,
        items: Vec<(Value, Result<NewIndicator, ItemError>)>,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<WriteOutcome, CapacityError> {
        let mut inner = self.lock();
        // Refuse duplicates: of what is held, and of earlier items of the same request.
        let mut seen = std::collections::HashSet::new();
        let items: Vec<(Value, Result<NewIndicator, ItemError>)> = items
            .into_iter()
            .map(|(raw, item)| {
                let item = item.and_then(|n| {
                    let key = (n.ioc_type, n.value.clone());
                    if inner.by_key.contains_key(&key) || !seen.insert(key) {
                        Err(ItemError::duplicate(n.ioc_type, &n.value))
                    } else {
                        Ok(n)
                    }
                });
                (raw, item)
            })
            .collect();
        let valid = items.iter().filter(|(_, i)| i.is_ok()).count();
        let refused = items.len() - valid;
        if valid > 0 && inner.iocs.len() + valid > self.config.capacity {
            return Err(CapacityError);
        }
        let store = refused == 0 || self.config.partial_create == PartialCreate::StoreValid;
        let mut out = WriteOutcome::default();
        for (raw, item) in items {
            match item {
                Err(e) => {
                    out.errors.push(e.to_error(None));
                    out.resources.push(e.to_resource(&raw));
                }
                Ok(_) if !store => {}
                Ok(n) => {
                    let id = inner.new_id();
                    let f = n.fields;
                    let ioc = Indicator {
                        id,
                        ioc_type: n.ioc_type,
                        value: n.value,
                        action: f.action.unwrap_or(Action::NoAction),
                        mobile_action: f.mobile_action,
                        severity: f.severity.flatten(),
                        source: f.source.unwrap_or_default(),
                        description: f.description.unwrap_or_default(),
                        platforms: f.platforms.unwrap_or_default(),
                        tags: f.tags.unwrap_or_default(),
                        host_groups: f.host_groups.unwrap_or_default(),
                        applied_globally: f.applied_globally.unwrap_or(false),
                        expiration: f.expiration.flatten(),
                        filename: f.filename,
                        created_on: now,
                        created_by: by.to_string(),
                        modified_on: now,
                        modified_by: by.to_string(),
                    };
                    out.resources.push(ioc.to_wire(now));
                    inner.insert(ioc);
                    out.written += 1;
                }
            }
        }
        Ok(out)
    }

    /// Updates indicators by id: each item is the submitted JSON and either `(id, fields)` or a
    /// refusal.
    pub fn update(&self, items: Vec<UpdateItem>, now: DateTime<Utc>, by: &str) -> WriteOutcome {
        let mut inner = self.lock();
        let mut out = WriteOutcome::default();
        for (raw, item) in items {
            let result = item.and_then(|(id, fields)| {
                let seq = inner.by_id.get(&id).copied().ok_or_else(|| ItemError {
                    code: 404,
                    field: "id",
                    message: format!("Could not find indicator with id '{id}'"),
                })?;
                let old = inner.iocs.get(&seq).ok_or_else(|| ItemError {
                    code: 404,
                    field: "id",
                    message: format!("Could not find indicator with id '{id}'"),
                })?;
                let next = apply_update(old, &fields, &self.config.rules, now, by)?;
                Ok((seq, next))
            });
            match result {
                Ok((seq, next)) => {
                    out.resources.push(next.to_wire(now));
                    inner.iocs.insert(seq, next);
                    out.written += 1;
                }
                Err(e) => {
                    let id = raw.get("id").and_then(Value::as_str).map(str::to_string);
                    out.errors.push(e.to_error(id.as_deref()));
                    out.resources.push(e.to_resource(&raw));
                }
            }
        }
        out
    }

    /// Applies `fields` to every indicator `filter` matches (`bulk_update`).
    pub fn bulk_update(
        &self,
        filter: Option<&Filter>,
        fields: &Fields,
        now: DateTime<Utc>,
        by: &str,
    ) -> WriteOutcome {
        let mut inner = self.lock();
        let mut out = WriteOutcome::default();
        for seq in inner.matching(filter, now) {
            let Some(old) = inner.iocs.get(&seq) else {
                continue;
            };
            match apply_update(old, fields, &self.config.rules, now, by) {
                Ok(next) => {
                    out.resources.push(next.to_wire(now));
                    inner.iocs.insert(seq, next);
                    out.written += 1;
                }
                Err(e) => {
                    let id = old.id.clone();
                    let raw = json!({"id": id, "type": old.ioc_type.key(), "value": old.value});
                    out.errors.push(e.to_error(Some(&id)));
                    out.resources.push(e.to_resource(&raw));
                }
            }
        }
        out
    }

    /// Deletes by id; returns the ids deleted and the ids not found.
    pub fn delete_ids(&self, ids: &[String]) -> (Vec<String>, Vec<String>) {
        let mut inner = self.lock();
        let mut deleted = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match inner.by_id.get(id).copied() {
                Some(seq) => {
                    inner.remove(seq);
                    deleted.push(id.clone());
                }
                None => missing.push(id.clone()),
            }
        }
        (deleted, missing)
    }

    /// Deletes every indicator `filter` matches; returns their ids.
    pub fn delete_filter(&self, filter: &Filter, now: DateTime<Utc>) -> Vec<String> {
        let mut inner = self.lock();
        inner
            .matching(Some(filter), now)
            .into_iter()
            .filter_map(|seq| inner.remove(seq).map(|i| i.id))
            .collect()
    }

    /// Fills the CID with `iocs` realistic indicators (up to the capacity) and `alerts`
    /// detections, reproducibly for `seed`, with times over the last 90 days.
    pub fn seed(&self, iocs: usize, alerts: usize, seed: u64, now: DateTime<Utc>, by: &str) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut made = Vec::with_capacity(iocs.min(self.config.capacity));
        for n in 0..iocs.min(self.config.capacity) {
            let ioc_type = IocType::ALL[n % IocType::ALL.len()];
            let created_on = now - Duration::seconds(rng.gen_range(60..90 * 24 * 3600));
            let modified_on = created_on
                + Duration::seconds(rng.gen_range(0..=(now - created_on).num_seconds().max(0)));
            let action = match (ioc_type.is_hash(), rng.gen_range(0..10)) {
                (true, 0..=3) => Action::Prevent,
                (_, 0..=7) => Action::Detect,
                (true, 8) => Action::Allow,
                _ => Action::NoAction,
            };
            let severity = if action.needs_severity() || rng.gen_bool(0.5) {
                Some(*pick(&mut rng, Severity::ALL))
            } else {
                None
            };
            let expiration = match rng.gen_range(0..5) {
                0 => None,
                1 => Some(modified_on + Duration::days(rng.gen_range(1..30))),
                _ => Some(now + Duration::days(rng.gen_range(1..365))),
            }
            .filter(|e| *e > created_on);
            let mut tags = Vec::new();
            if rng.gen_bool(0.6) {
                tags.push(pick(&mut rng, TAGS).to_string());
            }
            if rng.gen_bool(0.2) {
                tags.push("netskope-ce".to_string());
            }
            tags.dedup();
            let mut inner = self.lock();
            let id = inner.new_id();
            drop(inner);
            made.push(Indicator {
                id,
                ioc_type,
                value: sample_value(ioc_type, n, &mut rng),
                action,
                mobile_action: None,
                severity,
                source: pick(&mut rng, SOURCES).to_string(),
                description: pick(&mut rng, DESCRIPTIONS).to_string(),
                platforms: vec![Platform::Windows, Platform::Mac, Platform::Linux],
                tags,
                host_groups: Vec::new(),
                applied_globally: true,
                expiration,
                filename: (ioc_type.is_hash() && rng.gen_bool(0.5))
                    .then(|| format!("{}.exe", pick(&mut rng, WORDS))),
                created_on,
                created_by: by.to_string(),
                modified_on,
                modified_by: by.to_string(),
            });
        }
        made.sort_by_key(|i| i.created_on);
        for ioc in made {
            self.put_indicator(ioc);
        }
        let mut made = Vec::with_capacity(alerts);
        for n in 0..alerts {
            made.push(sample_alert(n, &mut rng, now));
        }
        made.sort_by_key(|a| a.updated);
        for a in made {
            self.put_alert(a);
        }
    }
}

fn pick<'a, T>(rng: &mut StdRng, from: &'a [T]) -> &'a T {
    &from[rng.gen_range(0..from.len())]
}

const WORDS: &[&str] = &[
    "secure", "login", "update", "account", "verify", "cdn", "mail", "office", "invoice",
    "payment", "support", "cloud", "files", "portal", "auth", "billing",
];
const TLDS: &[&str] = &[
    "example",
    "example.com",
    "example.net",
    "example.org",
    "test",
];
const SOURCES: &[&str] = &[
    "Netskope - Cloud Threat Exchange | Threat feed",
    "iocx",
    "SOC analyst",
    "Sandbox verdict",
    "MISP",
];
const DESCRIPTIONS: &[&str] = &[
    "Phishing landing page",
    "Emotet C2 server",
    "Cobalt Strike beacon host",
    "Credential harvesting kit",
    "Ransomware payload",
    "Malicious macro document",
    "QakBot distribution",
    "Brute-force source",
];
const TAGS: &[&str] = &["phishing", "c2", "ransomware", "commodity", "apt", "botnet"];

fn sample_value(t: IocType, n: usize, rng: &mut StdRng) -> String {
    let digest = |bytes: usize, rng: &mut StdRng| {
        let mut raw: Vec<u8> = (0..bytes).map(|_| rng.r#gen()).collect();
        // The index in the first bytes keeps every seeded digest distinct.
        for (i, b) in (n as u64).to_be_bytes().iter().enumerate() {
            raw[i] = *b;
        }
        hex::encode(raw)
    };
    match t {
        IocType::Sha256 => digest(32, rng),
        IocType::Md5 => digest(16, rng),
        IocType::Domain => format!(
            "{}-{}{}.{}",
            pick(rng, WORDS),
            pick(rng, WORDS),
            n,
            pick(rng, TLDS)
        ),
        // 198.18.0.0/15 is reserved for benchmarking, then 100.64.0.0/10 (shared address
        // space): no host on the internet has these addresses.
        IocType::Ipv4 if n < 131_072 => {
            format!("198.{}.{}.{}", 18 + n / 65_536, (n / 256) % 256, n % 256)
        }
        IocType::Ipv4 => {
            let m = n - 131_072;
            format!(
                "100.{}.{}.{}",
                64 + (m / 65_536) % 64,
                (m / 256) % 256,
                m % 256
            )
        }
        IocType::Ipv6 => format!("2001:db8:{:x}::{:x}", n / 65_536, n % 65_536),
    }
}

const ALERT_IOC_TYPES: &[&str] = &[
    "hash_sha256",
    "sha256",
    "hash_md5",
    "md5",
    "domain",
    "ipv4",
    "ipv6",
];
const ALERT_SOURCES: &[&str] = &[
    "library_load",
    "file_write",
    "file_read",
    "dns_request",
    "ioc_management",
    "Netskope - Cloud Threat Exchange | Threat feed",
];

fn sample_alert(n: usize, rng: &mut StdRng, now: DateTime<Utc>) -> Alert {
    let ioc_type = pick(rng, ALERT_IOC_TYPES).to_string();
    let kind = match ioc_type.as_str() {
        "hash_sha256" | "sha256" => IocType::Sha256,
        "hash_md5" | "md5" => IocType::Md5,
        "domain" => IocType::Domain,
        "ipv4" => IocType::Ipv4,
        _ => IocType::Ipv6,
    };
    let ioc_value = sample_value(kind, 500_000 + n, rng);
    let created = now - Duration::seconds(rng.gen_range(60..30 * 24 * 3600));
    let updated =
        created + Duration::seconds(rng.gen_range(0..=(now - created).num_seconds().max(0)));
    let mut context = Vec::new();
    if kind == IocType::Sha256 && rng.gen_bool(0.5) {
        context.push((
            "md5".to_string(),
            sample_value(IocType::Md5, 700_000 + n, rng),
            String::new(),
        ));
    }
    let device_id: [u8; 16] = rng.r#gen();
    let device_id = hex::encode(device_id);
    let (disposition, disposition_text) = *pick(
        rng,
        &[
            (2048, "Detection, standard detection."),
            (
                2304,
                "Detection, process would have been blocked if related prevention policy setting was enabled.",
            ),
            (16, "Prevention, process killed."),
            (4096, "Blocking Unsupported or Disabled"),
        ],
    );
    Alert {
        composite_id: format!(
            "{}:ind:{}:{}",
            hex::encode([0x5a; 16]),
            device_id,
            10_000_000_000u64 + n as u64
        ),
        ioc_type,
        ioc_value,
        ioc_source: pick(rng, ALERT_SOURCES).to_string(),
        ioc_description: pick(rng, DESCRIPTIONS).to_string(),
        description: "A file or domain matched a custom indicator of compromise.".to_string(),
        ioc_context: context,
        severity: *pick(rng, &[10, 30, 50, 70, 90]),
        confidence: rng.gen_range(10..=100),
        pattern_disposition: disposition,
        pattern_disposition_description: disposition_text.to_string(),
        status: pick(rng, &["new", "in_progress", "closed"]).to_string(),
        hostname: format!("WKS-{:04}", n % 10_000),
        device_id,
        filename: format!("{}.exe", pick(rng, WORDS)),
        created,
        updated,
    }
}
