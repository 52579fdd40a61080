//! What the emulator holds: the management console's account and sites, its threat-intelligence
//! IOCs (one per scope, type and value) and its threats, with filtering, sorting and cursor
//! paging, creates with upsert and the capacity check, deletes by filter, and the realistic seed
//! data behind `--iocs` and `--threats`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{Ioc, IocError, IocType, NewIoc, Scope, Threat, format_time};

/// One site of the emulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Its id (18+ digits).
    pub id: String,
    /// Its name.
    pub name: String,
}

/// What a create does when some IOCs are invalid (the real answer is not documented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidIocs {
    /// 400 naming the invalid IOCs; nothing is stored (clients drop them and retry).
    RejectBatch,
    /// The valid IOCs are stored and answered with 200; the invalid ones are dropped silently.
    SkipInvalid,
}

/// The settings the store needs (taken from `Args`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) account_id: String,
    pub(crate) account_name: String,
    pub(crate) sites: Vec<Site>,
    pub(crate) capacity: Option<usize>,
    pub(crate) invalid_iocs: InvalidIocs,
    pub(crate) list_expired: bool,
    pub(crate) creator: String,
}

/// A sort value: numbers (times as nanoseconds) or lower-cased text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SortValue {
    /// A number.
    #[serde(rename = "i")]
    Int(i64),
    /// Text.
    #[serde(rename = "s")]
    Text(String),
}

/// The state a `cursor` carries, as URL-safe base64 of a small JSON object: what is listed, the
/// order, and the sort key of the last item served (keyset paging: items strictly after it
/// come next, whatever was added or deleted meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `iocs` or `threats`.
    #[serde(rename = "r")]
    pub resource: String,
    /// `sortBy`.
    #[serde(rename = "b")]
    pub sort_by: String,
    /// Descending when true.
    #[serde(rename = "d")]
    pub desc: bool,
    /// The last item's sort value.
    #[serde(rename = "k")]
    pub key: SortValue,
    /// The last item's sequence number (the tie-break).
    #[serde(rename = "q")]
    pub seq: u64,
}

impl Cursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a cursor; `None` when it was not made by [`Cursor::encode`].
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// How a listing is ordered and cut.
#[derive(Debug, Clone)]
pub struct Paging {
    /// `sortBy` (checked by the handler).
    pub sort_by: String,
    /// `sortOrder=desc`.
    pub desc: bool,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
    /// `skip`.
    pub skip: usize,
    /// `limit`.
    pub limit: usize,
}

/// One page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The items in wire form.
    pub items: Vec<Value>,
    /// How many items match in all.
    pub total: usize,
    /// The next page's cursor.
    pub next: Option<String>,
}

/// A time comparison of a `field__gt`-style parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `__gt`.
    Gt,
    /// `__gte`.
    Gte,
    /// `__lt`.
    Lt,
    /// `__lte`.
    Lte,
}

impl Cmp {
    /// The comparison named by a parameter suffix.
    pub fn from_suffix(s: &str) -> Option<Cmp> {
        match s {
            "gt" => Some(Cmp::Gt),
            "gte" => Some(Cmp::Gte),
            "lt" => Some(Cmp::Lt),
            "lte" => Some(Cmp::Lte),
            _ => None,
        }
    }

    fn holds(self, t: DateTime<Utc>, bound: DateTime<Utc>) -> bool {
        match self {
            Cmp::Gt => t > bound,
            Cmp::Gte => t >= bound,
            Cmp::Lt => t < bound,
            Cmp::Lte => t <= bound,
        }
    }
}

/// The filters of `GET /threat-intelligence/iocs` (and, partly, of the delete filter).
#[derive(Debug, Clone, Default)]
pub struct IocFilter {
    /// Only IOCs within these scopes (none: every scope).
    pub scopes: Vec<Scope>,
    /// `type`.
    pub types: Vec<IocType>,
    /// `value` (compared by identity).
    pub value: Option<String>,
    /// `source` (exact).
    pub source: Option<String>,
    /// `externalId` (exact).
    pub external_id: Option<String>,
    /// `uuids`.
    pub uuids: Vec<String>,
    /// `batchId`.
    pub batch_id: Option<String>,
    /// `name__contains` (lower-cased).
    pub name_contains: Option<String>,
    /// `creator__contains` (lower-cased).
    pub creator_contains: Option<String>,
    /// `description__contains` (lower-cased).
    pub description_contains: Option<String>,
    /// `category__in`.
    pub category_in: Vec<String>,
    /// `labels__in`.
    pub labels_in: Vec<String>,
    /// `severity`.
    pub severity: Option<i64>,
    /// `updatedAt__…`, `uploadTime__…`, `creationTime__…`, `validUntil__…`.
    pub times: Vec<(String, Cmp, DateTime<Utc>)>,
}

/// The filters of `GET /threats`.
#[derive(Debug, Clone, Default)]
pub struct ThreatFilter {
    /// Only threats within these scopes (none: every scope).
    pub scopes: Vec<Scope>,
    /// `ids`.
    pub ids: Vec<String>,
    /// `analystVerdicts`.
    pub verdicts: Vec<String>,
    /// `classifications`.
    pub classifications: Vec<String>,
    /// `contentHashes` (SHA1, SHA256 or MD5, lower-cased).
    pub hashes: Vec<String>,
    /// `createdAt__…`, `updatedAt__…`.
    pub times: Vec<(String, Cmp, DateTime<Utc>)>,
}

/// Why a create was refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// Some IOCs are invalid (with [`InvalidIocs::RejectBatch`]).
    Invalid(Vec<IocError>),
    /// The IOCs would pass the capacity.
    Capacity(usize),
}

type Key = (Scope, IocType, String);

#[derive(Debug)]
struct Inner {
    iocs: BTreeMap<u64, Ioc>,
    by_key: HashMap<Key, u64>,
    threats: BTreeMap<u64, Threat>,
    next_seq: u64,
    rng: StdRng,
}

impl Inner {
    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    fn uuid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.r#gen();
        hex::encode(bytes)
    }

    fn remove(&mut self, seq: u64) -> Option<Ioc> {
        let ioc = self.iocs.remove(&seq)?;
        self.by_key.remove(&key_of(&ioc));
        Some(ioc)
    }

    fn purge_expired(&mut self, now: DateTime<Utc>) {
        let expired: Vec<u64> = self
            .iocs
            .iter()
            .filter(|(_, i)| i.valid_until <= now)
            .map(|(s, _)| *s)
            .collect();
        for seq in expired {
            self.remove(seq);
        }
    }
}

fn key_of(ioc: &Ioc) -> Key {
    (
        ioc.scope.clone(),
        ioc.ioc_type,
        ioc.ioc_type.identity(&ioc.value),
    )
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Sorts rows and cuts a page: skip applies after the cursor.
fn cut(
    mut rows: Vec<(SortValue, u64)>,
    paging: &Paging,
    resource: &str,
) -> (Vec<u64>, usize, Option<String>) {
    if paging.desc {
        rows.sort_by(|a, b| b.cmp(a));
    } else {
        rows.sort();
    }
    let total = rows.len();
    let mut from = match &paging.cursor {
        None => 0,
        Some(c) => {
            let at = (c.key.clone(), c.seq);
            if paging.desc {
                rows.partition_point(|r| *r >= at)
            } else {
                rows.partition_point(|r| *r <= at)
            }
        }
    };
    from = from.saturating_add(paging.skip).min(total);
    let to = from.saturating_add(paging.limit).min(total);
    let next = (to < total)
        .then(|| rows[from..to].last())
        .flatten()
        .map(|(key, seq)| {
            Cursor {
                resource: resource.to_string(),
                sort_by: paging.sort_by.clone(),
                desc: paging.desc,
                key: key.clone(),
                seq: *seq,
            }
            .encode()
        });
    (
        rows[from..to].iter().map(|(_, s)| *s).collect(),
        total,
        next,
    )
}

/// The emulated management console. Cheap to share (`Arc<State>`); every method takes the lock
/// for the length of one request.
#[derive(Debug)]
pub struct State {
    config: Config,
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(config: Config, seed: u64) -> State {
        State {
            config,
            inner: Mutex::new(Inner {
                iocs: BTreeMap::new(),
                by_key: HashMap::new(),
                threats: BTreeMap::new(),
                next_seq: 1,
                rng: StdRng::seed_from_u64(seed ^ 0x51_0e),
            }),
        }
    }

    fn lock(&self, now: DateTime<Utc>) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !self.config.list_expired {
            inner.purge_expired(now);
        }
        inner
    }

    /// The emulated account's id.
    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// The emulated account's name.
    pub fn account_name(&self) -> &str {
        &self.config.account_name
    }

    /// The emulated account's sites.
    pub fn sites(&self) -> &[Site] {
        &self.config.sites
    }

    /// Whether `id` names the account or one of its sites (and which).
    pub fn knows(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Tenant => true,
            Scope::Account(a) => *a == self.config.account_id,
            Scope::Site(s) => self.config.sites.iter().any(|site| site.id == *s),
        }
    }

    fn site_name(&self, id: &str) -> String {
        self.config
            .sites
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// Whether an IOC living in `item` falls within the requested `scope`.
    fn within(&self, item: &Scope, scope: &Scope) -> bool {
        match (scope, item) {
            (Scope::Tenant, _) => true,
            (Scope::Account(a), Scope::Account(b)) => a == b,
            (Scope::Account(a), Scope::Site(s)) => {
                *a == self.config.account_id && self.config.sites.iter().any(|x| x.id == *s)
            }
            (Scope::Site(a), Scope::Site(b)) => a == b,
            _ => false,
        }
    }

    fn ioc_matches(&self, i: &Ioc, f: &IocFilter) -> bool {
        let contains = |field: &Option<String>, needle: &Option<String>| {
            needle.as_ref().is_none_or(|n| {
                field
                    .as_deref()
                    .is_some_and(|v| v.to_ascii_lowercase().contains(n))
            })
        };
        let any_in = |key: &str, wanted: &[String]| {
            wanted.is_empty()
                || i.extra
                    .get(key)
                    .and_then(Value::as_array)
                    .is_some_and(|items| {
                        items
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|s| wanted.iter().any(|w| w == s))
                    })
        };
        (f.scopes.is_empty() || f.scopes.iter().any(|s| self.within(&i.scope, s)))
            && (f.types.is_empty() || f.types.contains(&i.ioc_type))
            && f.value
                .as_ref()
                .is_none_or(|v| i.ioc_type.identity(v.trim()) == i.ioc_type.identity(&i.value))
            && f.source.as_ref().is_none_or(|s| *s == i.source)
            && f.external_id
                .as_ref()
                .is_none_or(|e| Some(e) == i.external_id.as_ref())
            && (f.uuids.is_empty() || f.uuids.contains(&i.uuid))
            && f.batch_id.as_ref().is_none_or(|b| *b == i.batch_id)
            && contains(&i.name, &f.name_contains)
            && contains(&Some(i.creator.clone()), &f.creator_contains)
            && contains(&i.description, &f.description_contains)
            && any_in("category", &f.category_in)
            && any_in("labels", &f.labels_in)
            && f.severity.is_none_or(|s| Some(s) == i.severity)
            && f.times.iter().all(|(field, cmp, bound)| {
                let t = match field.as_str() {
                    "updatedAt" => i.updated_at,
                    "uploadTime" => i.upload_time,
                    "creationTime" => i.creation_time,
                    _ => i.valid_until,
                };
                cmp.holds(t, *bound)
            })
    }

    fn threat_matches(&self, t: &Threat, f: &ThreatFilter) -> bool {
        let in_scope = |s: &Scope| match s {
            Scope::Tenant => true,
            Scope::Account(a) => *a == t.account_id,
            Scope::Site(x) => *x == t.site_id,
        };
        let hashes = [&t.sha1, &t.sha256, &t.md5];
        (f.scopes.is_empty() || f.scopes.iter().any(in_scope))
            && (f.ids.is_empty() || f.ids.contains(&t.id))
            && (f.verdicts.is_empty() || f.verdicts.contains(&t.analyst_verdict))
            && (f.classifications.is_empty()
                || f.classifications
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(&t.classification)))
            && (f.hashes.is_empty()
                || hashes.iter().any(|h| {
                    h.as_ref()
                        .is_some_and(|h| f.hashes.contains(&h.to_ascii_lowercase()))
                }))
            && f.times.iter().all(|(field, cmp, bound)| {
                let time = if field == "createdAt" {
                    t.created_at
                } else {
                    t.updated_at
                };
                cmp.holds(time, *bound)
            })
    }

    /// One page of IOCs.
    pub fn list_iocs(&self, f: &IocFilter, paging: &Paging, now: DateTime<Utc>) -> Page {
        let inner = self.lock(now);
        let rows = inner
            .iocs
            .iter()
            .filter(|(_, i)| self.ioc_matches(i, f))
            .map(|(seq, i)| {
                let key = match paging.sort_by.as_str() {
                    "creationTime" => SortValue::Int(nanos(i.creation_time)),
                    "uploadTime" => SortValue::Int(nanos(i.upload_time)),
                    "updatedAt" => SortValue::Int(nanos(i.updated_at)),
                    "validUntil" => SortValue::Int(nanos(i.valid_until)),
                    "source" => SortValue::Text(i.source.to_ascii_lowercase()),
                    "type" => SortValue::Text(i.ioc_type.key().to_string()),
                    "value" => SortValue::Text(i.value.to_ascii_lowercase()),
                    _ => SortValue::Int(i64::try_from(*seq).unwrap_or(i64::MAX)),
                };
                (key, *seq)
            })
            .collect();
        let (seqs, total, next) = cut(rows, paging, "iocs");
        let items = seqs
            .iter()
            .filter_map(|s| inner.iocs.get(s))
            .map(Ioc::to_wire)
            .collect();
        Page { items, total, next }
    }

    /// One page of threats.
    pub fn list_threats(&self, f: &ThreatFilter, paging: &Paging) -> Page {
        let inner = self.lock(Utc::now());
        let rows = inner
            .threats
            .iter()
            .filter(|(_, t)| self.threat_matches(t, f))
            .map(|(seq, t)| {
                let key = match paging.sort_by.as_str() {
                    "createdAt" => SortValue::Int(nanos(t.created_at)),
                    "updatedAt" => SortValue::Int(nanos(t.updated_at)),
                    _ => SortValue::Text(format!("{:0>20}", t.id)),
                };
                (key, *seq)
            })
            .collect();
        let (seqs, total, next) = cut(rows, paging, "threats");
        let items = seqs
            .iter()
            .filter_map(|s| inner.threats.get(s))
            .map(Threat::to_wire)
            .collect();
        Page { items, total, next }
    }

    /// How many IOCs are held.
    pub fn count(&self) -> usize {
        self.lock(Utc::now()).iocs.len()
    }

    /// Every IOC held, oldest first.
    pub fn iocs(&self) -> Vec<Ioc> {
        self.lock(Utc::now()).iocs.values().cloned().collect()
    }

    /// `{"iocs":[…],"threats":[…]}` in wire form (what `GET /_sim/state` answers).
    pub fn snapshot(&self) -> Value {
        let inner = self.lock(Utc::now());
        json!({
            "iocs": inner.iocs.values().map(Ioc::to_wire).collect::<Vec<_>>(),
            "threats": inner.threats.values().map(Threat::to_wire).collect::<Vec<_>>(),
        })
    }

    /// Empties the IOCs and the threats.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.iocs.clear();
        inner.by_key.clear();
        inner.threats.clear();
    }

    /// Adds a threat as is. For tests, seeding and `POST /_sim/threats`.
    pub fn put_threat(&self, threat: Threat) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let seq = inner.seq();
        inner.threats.insert(seq, threat);
    }

    /// A new threat id (19 digits, increasing).
    pub fn next_threat_id(&self) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let seq = inner.seq();
        format!("{}", 1_900_000_000_000_000_000u64 + seq)
    }

    /// Puts an IOC as is (no validation, no cap), replacing one with the same scope, type and
    /// value. For tests and seeding.
    pub fn put_ioc(&self, ioc: Ioc) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(seq) = inner.by_key.get(&key_of(&ioc)).copied() {
            inner.remove(seq);
        }
        let seq = inner.seq();
        inner.by_key.insert(key_of(&ioc), seq);
        inner.iocs.insert(seq, ioc);
    }

    /// Creates (or updates) the IOCs in every scope of `scopes`, as one upload.
    ///
    /// # Errors
    /// [`CreateError::Invalid`] when an IOC is invalid and the mode rejects the batch;
    /// [`CreateError::Capacity`] when the new IOCs would pass the capacity. Nothing is stored
    /// then.
    pub fn create(
        &self,
        items: Vec<Result<NewIoc, IocError>>,
        scopes: &[Scope],
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, CreateError> {
        let invalid: Vec<IocError> = items
            .iter()
            .filter_map(|i| i.as_ref().err().cloned())
            .collect();
        if !invalid.is_empty() && self.config.invalid_iocs == InvalidIocs::RejectBatch {
            return Err(CreateError::Invalid(invalid));
        }
        let valid: Vec<NewIoc> = items.into_iter().filter_map(Result::ok).collect();
        let mut inner = self.lock(now);
        if let Some(cap) = self.config.capacity {
            let mut fresh = std::collections::HashSet::new();
            for scope in scopes {
                for n in &valid {
                    let key = (scope.clone(), n.ioc_type, n.ioc_type.identity(&n.value));
                    if !inner.by_key.contains_key(&key) {
                        fresh.insert(key);
                    }
                }
            }
            if !fresh.is_empty() && inner.iocs.len() + fresh.len() > cap {
                return Err(CreateError::Capacity(cap));
            }
        }
        let batch_id = inner.uuid();
        let mut out = Vec::new();
        for scope in scopes {
            for n in &valid {
                let key = (scope.clone(), n.ioc_type, n.ioc_type.identity(&n.value));
                // The same scope, type and value again: the IOC is replaced, keeping its uuid,
                // and moves to the end of the id order, as a new upload does.
                let old_seq = inner.by_key.get(&key).copied();
                let uuid = match old_seq.and_then(|s| inner.iocs.get(&s)) {
                    Some(old) => old.uuid.clone(),
                    None => inner.uuid(),
                };
                if let Some(s) = old_seq {
                    inner.iocs.remove(&s);
                }
                let seq = inner.seq();
                let ioc = Ioc {
                    uuid,
                    batch_id: batch_id.clone(),
                    scope: scope.clone(),
                    ioc_type: n.ioc_type,
                    value: n.value.clone(),
                    source: n.source.clone(),
                    name: n.name.clone(),
                    description: n.description.clone(),
                    external_id: n.external_id.clone(),
                    severity: n.severity,
                    creator: self.config.creator.clone(),
                    creation_time: n.creation_time.unwrap_or(now),
                    upload_time: now,
                    updated_at: now,
                    valid_until: n.valid_until,
                    extra: n.extra.clone(),
                };
                out.push(ioc.to_wire());
                inner.by_key.insert(key, seq);
                inner.iocs.insert(seq, ioc);
            }
        }
        Ok(out)
    }

    /// Deletes every IOC `f` matches; returns how many.
    pub fn delete(&self, f: &IocFilter, now: DateTime<Utc>) -> usize {
        let mut inner = self.lock(now);
        let doomed: Vec<u64> = inner
            .iocs
            .iter()
            .filter(|(_, i)| self.ioc_matches(i, f))
            .map(|(s, _)| *s)
            .collect();
        for seq in &doomed {
            inner.remove(*seq);
        }
        doomed.len()
    }

    /// Fills the console with `iocs` IOCs (up to the capacity) and `threats` threats,
    /// reproducibly for `seed`, with times over the last ten days.
    pub fn seed(&self, iocs: usize, threats: usize, seed: u64, now: DateTime<Utc>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let iocs = iocs.min(self.config.capacity.unwrap_or(usize::MAX));
        let mut made = Vec::with_capacity(iocs);
        for n in 0..iocs {
            let ioc_type = IocType::ALL[n % IocType::ALL.len()];
            let upload_time = now - Duration::seconds(rng.gen_range(60..10 * 24 * 3600));
            let creation_time = upload_time - Duration::seconds(rng.gen_range(0..3 * 24 * 3600));
            let scope = match (n % 4, self.config.sites.first()) {
                (3, Some(site)) => Scope::Site(site.id.clone()),
                _ => Scope::Account(self.config.account_id.clone()),
            };
            let value = sample_value(ioc_type, n, &mut rng);
            let uuid = {
                let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                inner.uuid()
            };
            made.push(Ioc {
                uuid,
                batch_id: format!("{:032x}", n / 100 + 1),
                scope,
                ioc_type,
                external_id: Some(value.clone()),
                value,
                source: pick(&mut rng, SOURCES).to_string(),
                name: Some(pick(&mut rng, NAMES).to_string()),
                description: Some(pick(&mut rng, DESCRIPTIONS).to_string()),
                severity: Some(rng.gen_range(0..=7)),
                creator: self.config.creator.clone(),
                creation_time,
                upload_time,
                updated_at: upload_time,
                valid_until: upload_time + ioc_type.default_validity(),
                extra: serde_json::Map::new(),
            });
        }
        made.sort_by_key(|i| i.upload_time);
        for ioc in made {
            self.put_ioc(ioc);
        }
        let mut made = Vec::with_capacity(threats);
        for n in 0..threats {
            let created_at = now - Duration::seconds(rng.gen_range(60..10 * 24 * 3600));
            let updated_at = created_at
                + Duration::seconds(rng.gen_range(0..=(now - created_at).num_seconds().max(0)));
            let site = self.config.sites.get(n % self.config.sites.len().max(1));
            let site_id = site.map(|s| s.id.clone()).unwrap_or_default();
            made.push(Threat {
                id: String::new(),
                account_id: self.config.account_id.clone(),
                site_name: self.site_name(&site_id),
                site_id,
                threat_name: format!("{}.exe", pick(&mut rng, WORDS)),
                sha1: Some(hash(n, 20, &mut rng)),
                sha256: rng.gen_bool(0.7).then(|| hash(n, 32, &mut rng)),
                md5: rng.gen_bool(0.4).then(|| hash(n, 16, &mut rng)),
                file_path: format!(
                    "\\Device\\HarddiskVolume3\\Users\\user{}\\Downloads\\{}.exe",
                    n % 50,
                    pick(&mut rng, WORDS)
                ),
                classification: pick(&mut rng, &["Malware", "Ransomware", "Trojan", "PUA"])
                    .to_string(),
                confidence_level: pick(&mut rng, &["malicious", "suspicious"]).to_string(),
                analyst_verdict: pick(
                    &mut rng,
                    &["true_positive", "suspicious", "false_positive", "undefined"],
                )
                .to_string(),
                engines: vec![
                    pick(
                        &mut rng,
                        &["SentinelOne Cloud", "On-Write Static AI", "Behavioral AI"],
                    )
                    .to_string(),
                ],
                mitigation_status: pick(
                    &mut rng,
                    &["mitigated", "not_mitigated", "marked_as_benign"],
                )
                .to_string(),
                computer_name: format!("WKS-{:04}", n % 10_000),
                created_at,
                updated_at,
            });
        }
        made.sort_by_key(|t| t.created_at);
        for mut t in made {
            t.id = self.next_threat_id();
            self.put_threat(t);
        }
    }
}

/// The answer to `GET /sites` for these sites.
pub fn site_wire(state: &State, site: &Site, now: DateTime<Utc>) -> Value {
    json!({
        "id": site.id,
        "name": site.name,
        "accountId": state.account_id(),
        "accountName": state.account_name(),
        "state": "active",
        "siteType": "Paid",
        "sku": "Complete",
        "isDefault": state.sites().first().is_some_and(|s| s.id == site.id),
        "activeLicenses": 0,
        "totalLicenses": 0,
        "unlimitedLicenses": true,
        "createdAt": format_time(now - Duration::days(365)),
        "updatedAt": format_time(now - Duration::days(1)),
    })
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
    "Netskope CE | Threat feed",
    "iocx",
    "SOC analyst",
    "MISP",
    "Sandbox verdict",
];
const NAMES: &[&str] = &[
    "Phishing",
    "Emotet",
    "Cobalt Strike",
    "QakBot",
    "Ransomware",
];
const DESCRIPTIONS: &[&str] = &[
    "Phishing landing page",
    "Emotet C2 server",
    "Cobalt Strike beacon host",
    "Credential harvesting kit",
    "Ransomware payload",
];

fn hash(n: usize, bytes: usize, rng: &mut StdRng) -> String {
    let mut raw: Vec<u8> = (0..bytes).map(|_| rng.r#gen()).collect();
    // The index in the first bytes keeps every seeded digest distinct.
    for (i, b) in (n as u64).to_be_bytes().iter().enumerate() {
        raw[i] = *b;
    }
    hex::encode(raw)
}

fn sample_value(t: IocType, n: usize, rng: &mut StdRng) -> String {
    let domain = |rng: &mut StdRng| {
        format!(
            "{}-{}{}.{}",
            pick(rng, WORDS),
            pick(rng, WORDS),
            n,
            pick(rng, TLDS)
        )
    };
    match t {
        IocType::Md5 => hash(n, 16, rng),
        IocType::Sha1 => hash(n, 20, rng),
        IocType::Sha256 => hash(n, 32, rng),
        IocType::Dns => domain(rng),
        IocType::Url => format!(
            "https://{}/{}/{}.php?id={}",
            domain(rng),
            pick(rng, WORDS),
            pick(rng, WORDS),
            rng.gen_range(1..100_000)
        ),
        // 198.18.0.0/15 (benchmarking), then 100.64.0.0/10: no internet host has these.
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
