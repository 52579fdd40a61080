//! What the emulator holds: the reputation database (entries with their tags, the tag category
//! registry), TTL expiry, the size cap, the ALERTS table of emitted events, and the seed data
//! behind `--entries`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use super::cef::Event;
use super::model::{
    AddressKind, Category, MULTI_VALUE_SEPARATOR, Param, TTL_CATEGORY, TTL_FORMAT,
    default_categories, format_ttl, normalize, parse_date, quote_field, sort_key, split_fields,
};

/// Who put an entry in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryOrigin {
    /// A user (the Web API, the UI, an import): what `repEntries/query` searches.
    User,
    /// The ThreatDV Reputation feed.
    RepDv,
}

/// One reputation entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its kind.
    pub kind: AddressKind,
    /// Its normalised address.
    pub address: String,
    /// Its tags in the order first given: category → values.
    pub tags: Vec<(String, Vec<String>)>,
    /// Who made it.
    pub origin: EntryOrigin,
    /// When it was made.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
    /// When the SMS removes it (`Reputation Entries TTL`).
    pub ttl: Option<DateTime<Utc>>,
}

impl Entry {
    /// The entry as `repEntries/query` writes it: `address,category,value,…`.
    pub fn query_line(&self) -> String {
        let mut line = quote_field(&self.address);
        for (category, values) in &self.tags {
            line.push(',');
            line.push_str(&quote_field(category));
            line.push(',');
            line.push_str(&quote_field(&values.join(MULTI_VALUE_SEPARATOR)));
        }
        line
    }

    /// The entry as `/_sim/state` shows it.
    pub fn to_json(&self) -> Value {
        let tags: serde_json::Map<String, Value> = self
            .tags
            .iter()
            .map(|(c, v)| (c.clone(), Value::from(v.join(MULTI_VALUE_SEPARATOR))))
            .collect();
        json!({
            "type": self.kind.type_name(),
            "address": self.address,
            "origin": match self.origin { EntryOrigin::User => "user", EntryOrigin::RepDv => "repdv" },
            "tags": tags,
            "created": self.created.to_rfc3339(),
            "updated": self.updated.to_rfc3339(),
            "ttl": self.ttl.map(|t| t.to_rfc3339()),
        })
    }
}

/// What happens when the database would pass `--max-entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OverCapacity {
    /// New entries are refused with 412 (nothing of the request is applied).
    Reject,
    /// New entries are accepted anyway (the limit is guidance only).
    Accept,
}

/// Why a change was refused: the HTTP status and a short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 404, 412, …
    pub status: u16,
    /// The plain-text message.
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// The settings the database needs (taken from `Args`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_entries: usize,
    pub(crate) over_capacity: OverCapacity,
    pub(crate) lenient_dates: bool,
    pub(crate) unknown_category_status: u16,
    pub(crate) max_alerts: usize,
}

/// The outcome of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Entries created.
    pub added: usize,
    /// Existing entries merged.
    pub updated: usize,
    /// Lines ignored as invalid.
    pub ignored: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<(AddressKind, String), Entry>,
    categories: Vec<Category>,
    alerts: VecDeque<Event>,
    next_sequence: BTreeMap<String, u64>,
    next_external_id: u64,
}

/// The database, behind one lock.
#[derive(Debug)]
pub struct State {
    config: Config,
    inner: Mutex<Inner>,
}

/// A validated set of tags, ready to merge into an entry.
type Tags = Vec<(String, Vec<String>)>;

/// One valid import line: the entry's key, its tags and its TTL.
type ParsedLine = ((AddressKind, String), Tags, Option<DateTime<Utc>>);

impl State {
    pub(crate) fn new(config: Config, extra_categories: Vec<Category>) -> State {
        let mut categories = default_categories();
        for c in extra_categories {
            categories.retain(|k| k.name != c.name);
            categories.push(c);
        }
        State {
            config,
            inner: Mutex::new(Inner {
                categories,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tag categories.
    pub fn categories(&self) -> Vec<Category> {
        self.lock().categories.clone()
    }

    /// Adds a category (`/_sim/tag-categories`); a name that exists is refused (types cannot
    /// change).
    ///
    /// # Errors
    /// The name exists.
    pub fn add_category(&self, category: Category) -> Result<(), String> {
        let mut inner = self.lock();
        if inner.categories.iter().any(|c| c.name == category.name) {
            return Err(format!("tag category {} exists", category.name));
        }
        inner.categories.push(category);
        Ok(())
    }

    /// Checks category/value pairs: an unknown category or a bad value refuses them all; an empty
    /// value drops its pair; an empty category refuses them all.
    fn check_tags(
        &self,
        categories: &[Category],
        pairs: &[(String, String)],
    ) -> Result<(Tags, Option<DateTime<Utc>>), Refusal> {
        let mut tags: Tags = Vec::new();
        let mut ttl = None;
        for (category, value) in pairs {
            if category.trim().is_empty() {
                return Err(Refusal::new(400, "empty tag category"));
            }
            if value.trim().is_empty() {
                continue;
            }
            let Some(cat) = categories.iter().find(|c| c.name == *category) else {
                return Err(Refusal::new(
                    self.config.unknown_category_status,
                    format!("tag category does not exist: {category}"),
                ));
            };
            let values = cat
                .check(value, self.config.lenient_dates)
                .map_err(|e| Refusal::new(400, e))?;
            if cat.name == TTL_CATEGORY {
                let format = match &cat.kind {
                    super::model::CategoryType::Date { format } => format.as_str(),
                    _ => TTL_FORMAT,
                };
                ttl = parse_date(value, format, self.config.lenient_dates);
            }
            match tags.iter_mut().find(|(c, _)| c == category) {
                Some((_, v)) => *v = values,
                None => tags.push((category.clone(), values)),
            }
        }
        Ok((tags, ttl))
    }

    fn merge(entry: &mut Entry, tags: Tags, ttl: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        for (category, values) in tags {
            match entry.tags.iter_mut().find(|(c, _)| *c == category) {
                Some((_, v)) => *v = values,
                None => entry.tags.push((category, values)),
            }
        }
        if ttl.is_some() {
            entry.ttl = ttl;
        }
        entry.updated = now;
    }

    fn room_for(&self, inner: &Inner, new: usize) -> Result<(), Refusal> {
        if self.config.over_capacity == OverCapacity::Reject
            && new > 0
            && inner.entries.len() + new > self.config.max_entries
        {
            return Err(Refusal::new(
                412,
                format!(
                    "the reputation database holds {} entries; at most {} are allowed",
                    inner.entries.len(),
                    self.config.max_entries
                ),
            ));
        }
        Ok(())
    }

    /// `repEntries/add`: creates or merges one entry.
    ///
    /// # Errors
    /// A bad address (400), an unknown category (`--unknown-category-status`), a bad value (400),
    /// a full database (412).
    pub fn add(
        &self,
        param: Param,
        address: &str,
        pairs: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<bool, Refusal> {
        let now = now.trunc_subsecs(0);
        let (kind, address) = normalize(param, address).map_err(|e| Refusal::new(400, e))?;
        let mut inner = self.lock();
        let (tags, ttl) = self.check_tags(&inner.categories, pairs)?;
        let key = (kind, address.clone());
        if let Some(entry) = inner.entries.get_mut(&key) {
            Self::merge(entry, tags, ttl, now);
            entry.origin = EntryOrigin::User;
            return Ok(false);
        }
        self.room_for(&inner, 1)?;
        let mut entry = Entry {
            kind,
            address,
            tags: Vec::new(),
            origin: EntryOrigin::User,
            created: now,
            updated: now,
            ttl: None,
        };
        Self::merge(&mut entry, tags, ttl, now);
        inner.entries.insert(key, entry);
        Ok(true)
    }

    /// `repEntries/import`: one address kind per file, one entry per line; invalid lines are
    /// ignored; `#` lines and blank lines are skipped.
    ///
    /// # Errors
    /// A full database (412); nothing is applied then.
    pub fn import(
        &self,
        kind: AddressKind,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportReport, Refusal> {
        let now = now.trunc_subsecs(0);
        let mut report = ImportReport::default();
        let mut parsed: Vec<ParsedLine> = Vec::new();
        let mut inner = self.lock();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some(item) = self.import_line(&inner.categories, kind, line) else {
                report.ignored += 1;
                continue;
            };
            parsed.push(item);
        }
        let new = {
            let mut keys: Vec<&(AddressKind, String)> = parsed
                .iter()
                .map(|(k, _, _)| k)
                .filter(|k| !inner.entries.contains_key(*k))
                .collect();
            keys.sort();
            keys.dedup();
            keys.len()
        };
        self.room_for(&inner, new)?;
        for (key, tags, ttl) in parsed {
            match inner.entries.get_mut(&key) {
                Some(entry) => {
                    Self::merge(entry, tags, ttl, now);
                    report.updated += 1;
                }
                None => {
                    let mut entry = Entry {
                        kind: key.0,
                        address: key.1.clone(),
                        tags: Vec::new(),
                        origin: EntryOrigin::User,
                        created: now,
                        updated: now,
                        ttl: None,
                    };
                    Self::merge(&mut entry, tags, ttl, now);
                    inner.entries.insert(key, entry);
                    report.added += 1;
                }
            }
        }
        Ok(report)
    }

    fn import_line(
        &self,
        categories: &[Category],
        kind: AddressKind,
        line: &str,
    ) -> Option<ParsedLine> {
        let fields = split_fields(line, kind.delimiter()).ok()?;
        let (address, rest) = fields.split_first()?;
        let (got, address) = normalize(kind.param(), address).ok()?;
        if got != kind {
            return None;
        }
        let pairs: Vec<(String, String)> = rest
            .chunks(2)
            .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
            .collect();
        let (tags, ttl) = self.check_tags(categories, &pairs).ok()?;
        Some(((kind, address), tags, ttl))
    }

    /// Parses addresses of a delete-by-file upload: the first field of each line.
    pub fn file_addresses(kind: AddressKind, text: &str) -> Vec<(AddressKind, String)> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .filter_map(|l| {
                let fields = split_fields(l.trim_end_matches('\r'), kind.delimiter()).ok()?;
                let (got, a) = normalize(kind.param(), fields.first()?).ok()?;
                (got == kind).then_some((got, a))
            })
            .collect()
    }

    /// Deletes the listed entries; returns how many existed.
    pub fn delete_entries(&self, keys: &[(AddressKind, String)]) -> usize {
        let mut inner = self.lock();
        keys.iter()
            .filter(|k| inner.entries.remove(*k).is_some())
            .count()
    }

    /// Deletes by criteria: `user`, `repdv` or `all`; returns how many were removed.
    pub fn delete_where(&self, user: bool, repdv: bool) -> usize {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, e| match e.origin {
            EntryOrigin::User => !user,
            EntryOrigin::RepDv => !repdv,
        });
        before - inner.entries.len()
    }

    /// The user entries with these addresses, sorted by address.
    pub fn query(&self, keys: &[(AddressKind, String)]) -> Vec<Entry> {
        let inner = self.lock();
        let mut found: Vec<Entry> = keys
            .iter()
            .filter_map(|k| inner.entries.get(k))
            .filter(|e| e.origin == EntryOrigin::User)
            .cloned()
            .collect();
        found.sort_by_key(|e| sort_key(e.kind, &e.address));
        found.dedup_by(|a, b| a.kind == b.kind && a.address == b.address);
        found
    }

    /// One entry.
    pub fn get(&self, kind: AddressKind, address: &str) -> Option<Entry> {
        self.lock()
            .entries
            .get(&(kind, address.to_string()))
            .cloned()
    }

    /// Finds the entry a value would hit: the exact entry of any kind, else (for names) the
    /// nearest DNS suffix entry, else (for IPs) the narrowest CIDR entry holding it.
    pub fn find_for_value(&self, value: &str) -> Option<Entry> {
        let inner = self.lock();
        for param in Param::ALL {
            if let Ok(key) = normalize(param, value)
                && let Some(e) = inner.entries.get(&key)
            {
                return Some(e.clone());
            }
        }
        if let Ok((_, name)) = normalize(Param::Dns, value) {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                if let Some(e) = inner.entries.get(&(AddressKind::Dns, parent.to_string())) {
                    return Some(e.clone());
                }
                rest = parent;
            }
        }
        if let Ok(ip) = value.trim().parse::<std::net::IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            for len in (0..max).rev() {
                if let Ok(key) = normalize(Param::Ip, &format!("{ip}/{len}"))
                    && let Some(e) = inner.entries.get(&key)
                {
                    return Some(e.clone());
                }
            }
        }
        None
    }

    /// A random user entry (for generated events).
    pub fn random_entry(&self, rng: &mut impl rand::Rng) -> Option<Entry> {
        let inner = self.lock();
        let n = inner.entries.len();
        if n == 0 {
            return None;
        }
        inner.entries.values().nth(rng.gen_range(0..n)).cloned()
    }

    /// Removes every entry whose TTL has passed; returns how many.
    pub fn reap(&self, now: DateTime<Utc>) -> usize {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, e| e.ttl.is_none_or(|t| t > now));
        before - inner.entries.len()
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Numbers an event for its device (per-device sequence numbers and a global external id),
    /// stores it in the ALERTS table (bounded) and returns it.
    pub fn record(&self, mut event: Event) -> Event {
        let mut inner = self.lock();
        let seq = inner
            .next_sequence
            .entry(event.device.name.clone())
            .or_insert(0);
        *seq += 1;
        event.sequence = *seq;
        inner.next_external_id += 1;
        event.external_id = inner.next_external_id;
        if inner.alerts.len() >= self.config.max_alerts.max(1) {
            inner.alerts.pop_front();
        }
        inner.alerts.push_back(event.clone());
        event
    }

    /// The stored alerts, oldest first.
    pub fn alerts(&self) -> Vec<Event> {
        self.lock().alerts.iter().cloned().collect()
    }

    /// Everything, as JSON (`GET /_sim/state`).
    pub fn snapshot(&self) -> Value {
        let inner = self.lock();
        json!({
            "entries": inner.entries.values().map(Entry::to_json).collect::<Vec<_>>(),
            "tag_categories": inner.categories.iter().map(Category::to_json).collect::<Vec<_>>(),
            "alerts": inner.alerts.len(),
        })
    }

    /// Removes every entry and alert (categories stay).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.alerts.clear();
    }

    /// Pre-fills `count` user entries tagged as Vision One's sync tags them, and `repdv` ThreatDV
    /// entries.
    pub fn seed(&self, count: usize, repdv: usize, seed: u64, now: DateTime<Utc>) {
        let now = now.trunc_subsecs(0);
        let mut rng = StdRng::seed_from_u64(seed);
        for n in 0..count {
            let (param, address) = sample_address(n, &mut rng);
            let severity = ["High", "Medium", "Low"][rng.gen_range(0..3)];
            let ttl = if rng.gen_bool(0.2) {
                now + Duration::days(3650)
            } else {
                now + Duration::hours(rng.gen_range(1..90 * 24))
            };
            let pairs: Vec<(String, String)> = [
                (
                    "Trend Micro Detection Category",
                    "Suspicious Object".to_string(),
                ),
                (
                    "Trend Micro Publisher",
                    "Trend Micro Vision One Threat Intelligence".to_string(),
                ),
                (
                    "Trend Micro Source",
                    "Trend Micro Vision One Threat Intelligence".to_string(),
                ),
                (
                    "Trend Micro Suspicious Object Source",
                    ["UDSO", "VASO"][rng.gen_range(0..2)].to_string(),
                ),
                (
                    "Trend Micro Scan Action",
                    ["block", "log"][usize::from(rng.gen_bool(0.2))].to_string(),
                ),
                ("Trend Micro Severity", severity.to_string()),
                (TTL_CATEGORY, format_ttl(ttl)),
            ]
            .into_iter()
            .map(|(c, v)| (c.to_string(), v))
            .collect();
            let created = now - Duration::seconds(rng.gen_range(0..30 * 24 * 3600));
            let _ = self.add(param, &address, &pairs, created);
        }
        let mut inner = self.lock();
        for n in 0..repdv {
            let address = format!(
                "100.{}.{}.{}",
                64 + (n / 65536) % 64,
                (n / 256) % 256,
                n % 256
            );
            let entry = Entry {
                kind: AddressKind::Ipv4,
                address: address.clone(),
                tags: vec![(
                    "Reputation DV Score".into(),
                    vec![rng.gen_range(50..100).to_string()],
                )],
                origin: EntryOrigin::RepDv,
                created: now,
                updated: now,
                ttl: None,
            };
            inner.entries.insert((AddressKind::Ipv4, address), entry);
        }
    }
}

const WORDS: &[&str] = &[
    "update", "secure", "login", "cdn", "mail", "portal", "files", "cloud", "verify", "account",
];
const TLDS: &[&str] = &["example", "example.net", "example.org", "test"];

fn sample_address(n: usize, rng: &mut StdRng) -> (Param, String) {
    let word = WORDS[rng.gen_range(0..WORDS.len())];
    let tld = TLDS[rng.gen_range(0..TLDS.len())];
    match n % 10 {
        0..=3 => {
            let nets = [(198u32, 51u32), (203, 0), (192, 0)];
            let (a, b) = nets[n % 3];
            let third = if a == 198 {
                100
            } else if a == 203 {
                113
            } else {
                2
            };
            (
                Param::Ip,
                format!("{a}.{b}.{}.{}", third + (n / 2550) % 50, (n / 10) % 255 + 1),
            )
        }
        4 => (
            Param::Ip,
            format!("10.{}.{}.0/24", (n / 2560) % 256, (n / 10) % 256),
        ),
        5 => (
            Param::Ip,
            format!("2001:db8:{:x}::{:x}", n / 655_360, (n / 10) % 65536 + 1),
        ),
        6..=8 => (Param::Dns, format!("{word}-{n}.{tld}")),
        _ => (
            Param::Url,
            format!(
                "http://{word}-{n}.{tld}/{}/{}.php",
                WORDS[n % WORDS.len()],
                rng.gen_range(1000..9999)
            ),
        ),
    }
}
