//! What the emulated tenant holds: alerts with their export iterators, URL lists with pending and
//! deployed versions, file-hash lists, and the per-token rate-limit windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::data::{self, FileSample, Pools, SiteSample};
use super::model::{
    AlertType, EntryCheck, ListType, ModifyType, UrlList, UrlListContent, check_entry, hash_kind,
};
use super::{Args, EarlyNext, NewIndexStart, UnknownFileHashList};
use crate::common::Faults;

/// The name shown in `modify_by` for changes made through the API.
pub const MODIFY_BY: &str = "Netskope API";

/// Seconds in the span over which `--alerts` are spread.
const HISTORY_SECS: i64 = 30 * 86_400;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The current time in epoch seconds.
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

fn modify_time_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An `operation` of the data export iterator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// From the oldest retained alert.
    Head,
    /// From now: skip everything stored so far.
    Tail,
    /// The page after the last one.
    Next,
    /// The last page again, without advancing.
    Resend,
    /// From this epoch second, in one-hour batches.
    Epoch(i64),
}

impl Operation {
    /// Parses `head`, `tail`, `next`, `resend` or a non-negative epoch in seconds.
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "head" => Some(Operation::Head),
            "tail" => Some(Operation::Tail),
            "next" => Some(Operation::Next),
            "resend" => Some(Operation::Resend),
            s if !s.is_empty() && s.len() <= 12 && s.chars().all(|c| c.is_ascii_digit()) => {
                s.parse().ok().map(Operation::Epoch)
            }
            _ => None,
        }
    }
}

/// One stored alert: its indexing time and its JSON text.
#[derive(Debug, Clone)]
struct StoredAlert {
    ingest: i64,
    json: Arc<str>,
}

#[derive(Debug, Clone, Copy)]
struct Page {
    start: usize,
    end: usize,
    wait_time: u64,
    hwm: i64,
}

#[derive(Debug, Clone, Default)]
struct Cursor {
    pos: usize,
    last: Option<Page>,
    ready_at: Option<Instant>,
    hwm: i64,
    served: u64,
}

/// The answer to one iterator call.
#[derive(Debug, Clone)]
pub enum ExportAnswer {
    /// A page: the JSON body and how many alerts it holds.
    Page {
        /// `{"ok":1,"result":[…],"wait_time":…,"timestamp_hwm":…}`.
        body: String,
        /// Alerts in `result`.
        count: usize,
    },
    /// `next` came before the last answer's `wait_time` ran out and `--early-next reject` is set.
    TooEarly {
        /// Seconds left.
        retry_after: u64,
    },
}

/// A named file-hash list (v1 `updateFileHashList`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileHashList {
    /// The hashes in force, lowercase, in the order last sent, without duplicates.
    pub hashes: Vec<String>,
    /// When it last changed (`YYYY-MM-DD HH:MM:SS`, UTC), if ever.
    pub modify_time: Option<String>,
}

/// Why a URL-list change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// No list with that id.
    NotFound(i64),
    /// A list with that name exists already.
    NameTaken(String),
    /// Entries the tenant rejects, each with its reason; nothing was changed.
    InvalidEntries(Vec<(String, String)>),
    /// The list would exceed the entry or byte limit; nothing was changed.
    TooLarge {
        /// Entries after the change.
        entries: usize,
        /// JSON bytes after the change.
        bytes: usize,
        /// The entry limit.
        max_entries: usize,
        /// The byte limit.
        max_bytes: usize,
    },
    /// The change would leave the list with no entry.
    Empty,
    /// The list is marked for deletion and can only be deployed.
    Deleted(i64),
    /// The injected "capacity reached" fault is on.
    CapacityReached,
}

impl ListError {
    /// The message the API reports.
    pub fn message(&self) -> String {
        match self {
            ListError::NotFound(id) => format!("URL list with id {id} not found"),
            ListError::NameTaken(name) => format!("URL list with name '{name}' already exists"),
            ListError::InvalidEntries(_) => "Invalid URLs".to_string(),
            ListError::TooLarge {
                entries,
                bytes,
                max_entries,
                max_bytes,
            } => format!(
                "URL list size exceeds the limit: {entries} entries and {bytes} bytes, the maximum is {max_entries} entries and {max_bytes} bytes"
            ),
            ListError::Empty => "urls must be an array of URLs and cannot be empty".to_string(),
            ListError::Deleted(id) => {
                format!("URL list with id {id} is pending deletion; deploy or recreate it")
            }
            ListError::CapacityReached => {
                "URL list capacity reached: no more entries can be added".to_string()
            }
        }
    }
}

/// How a PUT or PATCH changes a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAction {
    /// `PUT /{id}`: name, type and entries all given, replacing the list.
    Put,
    /// `PATCH /{id}/append`: entries added to the working copy.
    Append,
    /// `PATCH /{id}/replace`: entries replace the working copy.
    Replace,
}

/// Which versions `GET /api/v2/policy/urllist` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListView {
    /// Every list, as its working copy.
    All,
    /// `pending=0`: the lists as last deployed.
    Applied,
    /// `pending=1`: only the lists with pending changes, as their working copy.
    Pending,
}

/// Why a file-hash update was refused (v1 `status: error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileHashError {
    /// `name` missing or empty.
    MissingName,
    /// `list` missing or empty.
    MissingList,
    /// No file-hash list with that name exists on the tenant.
    UnknownList(String),
    /// Values that are neither MD5 nor SHA-256.
    InvalidHashes(Vec<String>),
    /// More than the byte or entry limit.
    TooLarge {
        /// Hashes sent.
        entries: usize,
        /// Bytes of the comma-joined list.
        bytes: usize,
        /// The entry limit.
        max_entries: usize,
        /// The byte limit.
        max_bytes: usize,
    },
    /// The same set of hashes as the list holds already.
    Duplicate,
    /// The injected "capacity reached" fault is on.
    CapacityReached,
}

/// The error text Netskope returns when a file-hash list is sent unchanged.
pub const DUPLICATE_FILE_HASH_REQUEST: &str = "Duplicate request, no change in file hashes";

impl FileHashError {
    /// The v1 `errors` strings.
    pub fn errors(&self) -> Vec<String> {
        match self {
            FileHashError::MissingName => vec!["name is required".to_string()],
            FileHashError::MissingList => vec!["list is required".to_string()],
            FileHashError::UnknownList(name) => vec![format!("File list '{name}' not found")],
            FileHashError::InvalidHashes(bad) => bad
                .iter()
                .map(|h| format!("Invalid file hash '{h}': expected MD5 or SHA256"))
                .collect(),
            FileHashError::TooLarge {
                entries,
                bytes,
                max_entries,
                max_bytes,
            } => vec![format!(
                "File hash list size exceeds the limit: {entries} hashes and {bytes} bytes, the maximum is {max_entries} hashes and {max_bytes} bytes"
            )],
            FileHashError::Duplicate => vec![DUPLICATE_FILE_HASH_REQUEST.to_string()],
            FileHashError::CapacityReached => {
                vec!["File hash list capacity reached".to_string()]
            }
        }
    }
}

/// A rate-limit verdict, with the values of the `ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateVerdict {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `ratelimit-limit`.
    pub limit: u32,
    /// `ratelimit-remaining`.
    pub remaining: u32,
    /// `ratelimit-reset`: seconds until the window starts over.
    pub reset: u64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

struct Inner {
    alerts: BTreeMap<AlertType, Vec<StoredAlert>>,
    cursors: HashMap<(String, String), Cursor>,
    pools: Pools,
    rng: StdRng,
    last_ingest: i64,
    url_lists: BTreeMap<i64, UrlList>,
    next_list_id: i64,
    file_hash_lists: BTreeMap<String, FileHashList>,
}

/// The emulated tenant. Every method is safe to call from several tasks at once.
pub struct State {
    args: Args,
    faults: Arc<Faults>,
    inner: Mutex<Inner>,
    rate_v2: Mutex<HashMap<String, Window>>,
    rate_v1: Mutex<HashMap<String, Window>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl State {
    /// A tenant set up as `args` says, seeing the emulator's faults.
    pub fn new(args: &Args, faults: Arc<Faults>) -> State {
        State {
            inner: Mutex::new(Self::initial(args)),
            args: args.clone(),
            faults,
            rate_v2: Mutex::new(HashMap::new()),
            rate_v1: Mutex::new(HashMap::new()),
        }
    }

    /// The settings the tenant runs with.
    pub fn args(&self) -> &Args {
        &self.args
    }

    fn initial(args: &Args) -> Inner {
        let mut inner = Inner {
            alerts: AlertType::ALL.iter().map(|t| (*t, Vec::new())).collect(),
            cursors: HashMap::new(),
            pools: Pools::default(),
            rng: StdRng::seed_from_u64(args.seed),
            last_ingest: 0,
            url_lists: BTreeMap::new(),
            next_list_id: 1,
            file_hash_lists: args
                .file_hash_lists
                .iter()
                .map(|n| (n.clone(), FileHashList::default()))
                .collect(),
        };
        let now = now_epoch();
        let mut ingests: Vec<i64> = (0..args.alerts)
            .map(|_| inner.rng.gen_range(now - HISTORY_SECS..now - 60))
            .collect();
        ingests.sort_unstable();
        for ingest in ingests {
            let timestamp = ingest - inner.rng.gen_range(5..300);
            let alert_type = if inner.rng.gen_bool(0.5) {
                AlertType::Malsite
            } else {
                AlertType::Malware
            };
            inner.push_generated(alert_type, timestamp, ingest);
        }
        inner
    }

    /// Puts everything back as it was at start-up: the same pre-generated alerts (indexed again
    /// relative to now), no iterators, no URL lists, the configured file-hash lists empty.
    pub fn reset(&self) {
        *lock(&self.inner) = Self::initial(&self.args);
        lock(&self.rate_v1).clear();
        lock(&self.rate_v2).clear();
    }

    // ---------------------------------------------------------------- alerts

    /// Adds a realistic alert of a random type, indexed now (what `--alert-rate` does).
    pub fn generate_alert(&self) -> Value {
        let mut inner = lock(&self.inner);
        let alert_type = if inner.rng.gen_bool(0.5) {
            AlertType::Malsite
        } else {
            AlertType::Malware
        };
        let ingest = inner.next_ingest();
        inner.push_generated(alert_type, ingest, ingest)
    }

    /// Adds an alert of `alert_type`, indexed now. `fields` override the generated values
    /// (e.g. `url` for a malsite alert, `md5`/`sha256` for a malware alert, `timestamp`); the
    /// indexing time `_insertion_epoch_timestamp` is always the emulator's.
    pub fn inject_alert(&self, alert_type: AlertType, fields: Map<String, Value>) -> Value {
        let mut inner = lock(&self.inner);
        let ingest = inner.next_ingest();
        let timestamp = fields
            .get("timestamp")
            .and_then(Value::as_i64)
            .unwrap_or(ingest);
        let mut alert = match alert_type {
            AlertType::Malware => {
                let mut file: FileSample = data::file_sample(&mut inner.rng);
                let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
                if let Some(v) = text("md5") {
                    file.md5 = v;
                }
                if let Some(v) = text("sha256") {
                    file.sha256 = v;
                }
                if let Some(v) = text("sha1") {
                    file.sha1 = v;
                }
                if let Some(v) = text("file_name").or_else(|| text("object")) {
                    file.name = v;
                }
                let mut m = data::malware_alert(&mut inner.rng, &file, timestamp, ingest);
                // The local hashes follow the given ones unless given themselves.
                m.insert("local_md5".into(), json!(file.md5));
                m.insert("local_sha256".into(), json!(file.sha256));
                m
            }
            AlertType::Malsite => {
                let mut site: SiteSample = data::site_sample(&mut inner.rng);
                if let Some(url) = fields.get("url").and_then(Value::as_str) {
                    site.url = url.to_string();
                    site.host = host_of(url);
                }
                if let Some(cats) = fields.get("malsite_category").and_then(Value::as_array) {
                    site.categories = cats
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                }
                data::malsite_alert(&mut inner.rng, &site, timestamp, ingest)
            }
        };
        for (k, v) in fields {
            alert.insert(k, v);
        }
        alert.insert("alert_type".into(), json!(alert_type.alert_type_value()));
        alert.insert("_insertion_epoch_timestamp".into(), json!(ingest));
        inner.push(alert_type, alert, ingest)
    }

    /// How many alerts of each type the tenant holds.
    pub fn alert_counts(&self) -> BTreeMap<AlertType, usize> {
        lock(&self.inner)
            .alerts
            .iter()
            .map(|(t, v)| (*t, v.len()))
            .collect()
    }

    /// Every alert of `alert_type`, oldest first (for tests).
    pub fn alerts(&self, alert_type: AlertType) -> Vec<Value> {
        lock(&self.inner)
            .alerts
            .get(&alert_type)
            .map(|v| {
                v.iter()
                    .filter_map(|a| serde_json::from_str(&a.json).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Answers one data export iterator call for `alert_type` (a path segment: `malware`,
    /// `malsite`, or another known type with no data) and iterator `index`.
    pub fn export(&self, alert_type: &str, index: &str, op: Operation) -> ExportAnswer {
        let args = &self.args;
        let now = now_epoch();
        let instant = Instant::now();
        let mut inner = lock(&self.inner);
        let Inner {
            alerts, cursors, ..
        } = &mut *inner;
        let empty = Vec::new();
        let store = AlertType::parse(alert_type)
            .and_then(|t| alerts.get(&t))
            .unwrap_or(&empty);
        let key = (alert_type.to_string(), index.to_string());
        let is_new = !cursors.contains_key(&key);
        let cursor = cursors.entry(key).or_default();
        let op = match (op, is_new) {
            (Operation::Next, true) => match args.new_index_start {
                NewIndexStart::Head => Operation::Head,
                NewIndexStart::Tail => Operation::Tail,
            },
            (op, _) => op,
        };
        if op == Operation::Next
            && let Some(ready_at) = cursor.ready_at
            && instant < ready_at
        {
            let left = ready_at.duration_since(instant);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            match args.early_next {
                EarlyNext::Serve => {}
                EarlyNext::Empty => {
                    return ExportAnswer::Page {
                        body: render_page(store, 0, 0, secs, cursor.hwm),
                        count: 0,
                    };
                }
                EarlyNext::Reject => return ExportAnswer::TooEarly { retry_after: secs },
            }
        }
        let page = match op {
            Operation::Resend => match cursor.last {
                Some(page) => page,
                None => Page {
                    start: cursor.pos,
                    end: cursor.pos,
                    wait_time: args.wait_time,
                    hwm: cursor.hwm,
                },
            },
            Operation::Tail => {
                let page = Page {
                    start: store.len(),
                    end: store.len(),
                    wait_time: args.wait_time,
                    hwm: now,
                };
                cursor.advance(page, instant);
                page
            }
            Operation::Head => {
                let page = self.page(store, 0, None, now);
                cursor.advance(page, instant);
                page
            }
            Operation::Next => {
                let page = self.page(store, cursor.pos.min(store.len()), None, now);
                cursor.advance(page, instant);
                page
            }
            Operation::Epoch(t) => {
                let start = store.partition_point(|a| a.ingest < t);
                let window = (args.epoch_window_secs > 0)
                    .then(|| t.saturating_add(args.epoch_window_secs as i64));
                let page = self.page(store, start, window, now);
                cursor.advance(page, instant);
                page
            }
        };
        cursor.served += (page.end - page.start) as u64;
        ExportAnswer::Page {
            body: render_page(store, page.start, page.end, page.wait_time, page.hwm),
            count: page.end - page.start,
        }
    }

    fn page(&self, store: &[StoredAlert], start: usize, window_end: Option<i64>, now: i64) -> Page {
        let args = &self.args;
        let mut end = start.saturating_add(args.page_size.max(1)).min(store.len());
        let mut cut_by_window = false;
        if let Some(w) = window_end {
            let within = store[start..end].partition_point(|a| a.ingest < w);
            if start + within < end {
                end = start + within;
                cut_by_window = true;
            }
        }
        let more = end < store.len();
        let hwm = if !more {
            now
        } else if cut_by_window {
            window_end.map(|w| w - 1).unwrap_or(now)
        } else {
            store[end - 1].ingest
        };
        Page {
            start,
            end,
            wait_time: if more { 0 } else { args.wait_time },
            hwm,
        }
    }

    /// The iterators the tenant knows: `(alert type, index, position, alerts served)`.
    pub fn cursors(&self) -> Vec<(String, String, usize, u64)> {
        let inner = lock(&self.inner);
        let mut v: Vec<_> = inner
            .cursors
            .iter()
            .map(|((t, i), c)| (t.clone(), i.clone(), c.pos, c.served))
            .collect();
        v.sort();
        v
    }

    // ---------------------------------------------------------------- URL lists

    /// The URL lists as `view` shows them, by id.
    pub fn url_lists(&self, view: ListView) -> Vec<UrlList> {
        let inner = lock(&self.inner);
        inner
            .url_lists
            .values()
            .filter_map(|l| match view {
                ListView::All => Some(l.clone()),
                ListView::Pending => l.pending.then(|| l.clone()),
                ListView::Applied => l.deployed.as_ref().map(|(name, content)| UrlList {
                    name: name.clone(),
                    working: content.clone(),
                    pending: false,
                    ..l.clone()
                }),
            })
            .collect()
    }

    /// One URL list (its working copy).
    pub fn url_list(&self, id: i64) -> Option<UrlList> {
        lock(&self.inner).url_lists.get(&id).cloned()
    }

    /// Finds a URL list by its working name.
    pub fn url_list_by_name(&self, name: &str) -> Option<UrlList> {
        lock(&self.inner)
            .url_lists
            .values()
            .find(|l| l.name == name)
            .cloned()
    }

    /// Creates a list (pending until deployed).
    ///
    /// # Errors
    /// A taken name, invalid entries, an empty list, the size limits, or the capacity fault.
    pub fn create_url_list(
        &self,
        name: &str,
        list_type: ListType,
        urls: &[String],
    ) -> Result<UrlList, ListError> {
        if self.faults.capacity_reached() {
            return Err(ListError::CapacityReached);
        }
        let mut inner = lock(&self.inner);
        if inner
            .url_lists
            .values()
            .any(|l| l.name == name && l.modify_type != ModifyType::Deleted)
        {
            return Err(ListError::NameTaken(name.to_string()));
        }
        let content = self.checked_content(list_type, Vec::new(), false, urls)?;
        let id = inner.next_list_id;
        inner.next_list_id += 1;
        let list = UrlList {
            id,
            name: name.to_string(),
            working: content,
            deployed: None,
            pending: true,
            modify_type: ModifyType::Created,
            modify_by: MODIFY_BY.to_string(),
            modify_time: modify_time_now(),
        };
        inner.url_lists.insert(id, list.clone());
        Ok(list)
    }

    /// Changes a list's working copy (pending until deployed). `name` and `list_type` default to
    /// the list's own; `urls` are appended or replace the entries as `action` says.
    ///
    /// # Errors
    /// An unknown id, a list pending deletion, a taken name, invalid entries, an empty list, the
    /// size limits, or the capacity fault. Nothing changes on error.
    pub fn update_url_list(
        &self,
        id: i64,
        action: UpdateAction,
        name: Option<&str>,
        list_type: Option<ListType>,
        urls: &[String],
    ) -> Result<UrlList, ListError> {
        let mut inner = lock(&self.inner);
        let Some(current) = inner.url_lists.get(&id).cloned() else {
            return Err(ListError::NotFound(id));
        };
        if current.modify_type == ModifyType::Deleted {
            return Err(ListError::Deleted(id));
        }
        if self.faults.capacity_reached() && !urls.is_empty() {
            return Err(ListError::CapacityReached);
        }
        if let Some(name) = name
            && name != current.name
            && inner
                .url_lists
                .values()
                .any(|l| l.name == name && l.id != id && l.modify_type != ModifyType::Deleted)
        {
            return Err(ListError::NameTaken(name.to_string()));
        }
        let list_type = list_type.unwrap_or(current.working.list_type);
        let base = match action {
            UpdateAction::Append => current.working.urls.clone(),
            UpdateAction::Put | UpdateAction::Replace => Vec::new(),
        };
        let content = self.checked_content(
            list_type,
            base,
            list_type != current.working.list_type,
            urls,
        )?;
        let mut updated = current;
        if let Some(name) = name {
            updated.name = name.to_string();
        }
        updated.working = content;
        updated.modify_type = if updated.deployed.is_none() {
            ModifyType::Created
        } else {
            ModifyType::Edited
        };
        updated.modify_by = MODIFY_BY.to_string();
        updated.modify_time = modify_time_now();
        updated.pending = match &updated.deployed {
            None => true,
            Some((name, content)) => *name != updated.name || *content != updated.working,
        };
        inner.url_lists.insert(id, updated.clone());
        Ok(updated)
    }

    /// Marks a list for deletion; the next deploy removes it.
    ///
    /// # Errors
    /// An unknown id.
    pub fn delete_url_list(&self, id: i64) -> Result<UrlList, ListError> {
        let mut inner = lock(&self.inner);
        let Some(list) = inner.url_lists.get_mut(&id) else {
            return Err(ListError::NotFound(id));
        };
        list.modify_type = ModifyType::Deleted;
        list.pending = true;
        list.modify_by = MODIFY_BY.to_string();
        list.modify_time = modify_time_now();
        Ok(list.clone())
    }

    /// Applies every pending change: working copies become deployed, lists pending deletion go.
    /// Returns the lists in force afterwards.
    pub fn deploy(&self) -> Vec<UrlList> {
        let mut inner = lock(&self.inner);
        inner
            .url_lists
            .retain(|_, l| l.modify_type != ModifyType::Deleted);
        for list in inner.url_lists.values_mut() {
            if list.pending {
                list.deployed = Some((list.name.clone(), list.working.clone()));
                list.pending = false;
            }
        }
        inner.url_lists.values().cloned().collect()
    }

    fn checked_content(
        &self,
        list_type: ListType,
        mut urls: Vec<String>,
        recheck: bool,
        new: &[String],
    ) -> Result<UrlListContent, ListError> {
        let allow_ip = !self.args.deny_ip_entries;
        let mut invalid = Vec::new();
        // Entries already in the list are checked again only when the type changes.
        let mut checked: Vec<String> = Vec::with_capacity(urls.len() + new.len());
        for existing in urls.drain(..) {
            if !recheck {
                checked.push(existing);
                continue;
            }
            match check_entry(&existing, list_type, allow_ip) {
                EntryCheck::Valid(v) => checked.push(v),
                EntryCheck::Ignored => {}
                EntryCheck::Invalid(reason) => invalid.push((existing, reason)),
            }
        }
        for raw in new {
            match check_entry(raw, list_type, allow_ip) {
                EntryCheck::Valid(v) => checked.push(v),
                EntryCheck::Ignored => {}
                EntryCheck::Invalid(reason) => invalid.push((raw.clone(), reason)),
            }
        }
        if !invalid.is_empty() {
            return Err(ListError::InvalidEntries(invalid));
        }
        let mut seen = std::collections::HashSet::with_capacity(checked.len());
        checked.retain(|u| seen.insert(u.clone()));
        if checked.is_empty() && !self.args.allow_empty_url_lists {
            return Err(ListError::Empty);
        }
        let content = UrlListContent {
            list_type,
            urls: checked,
        };
        let bytes = content.json_bytes();
        if content.urls.len() > self.args.url_list_max_entries
            || bytes > self.args.url_list_max_bytes
        {
            return Err(ListError::TooLarge {
                entries: content.urls.len(),
                bytes,
                max_entries: self.args.url_list_max_entries,
                max_bytes: self.args.url_list_max_bytes,
            });
        }
        Ok(content)
    }

    // ---------------------------------------------------------------- file-hash lists

    /// Creates an empty file-hash list (as an admin does in the tenant's UI); no-op if it exists.
    pub fn create_file_hash_list(&self, name: &str) {
        lock(&self.inner)
            .file_hash_lists
            .entry(name.to_string())
            .or_default();
    }

    /// The hashes a file-hash list holds.
    pub fn file_hash_list(&self, name: &str) -> Option<FileHashList> {
        lock(&self.inner).file_hash_lists.get(name).cloned()
    }

    /// Replaces the content of the file-hash list `name` with the comma-separated `list`.
    /// Returns how many hashes the list now holds.
    ///
    /// # Errors
    /// Missing fields, an unknown list, invalid hashes, the size limits, unchanged content
    /// ([`FileHashError::Duplicate`]), or the capacity fault.
    pub fn update_file_hash_list(&self, name: &str, list: &str) -> Result<usize, FileHashError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(FileHashError::MissingName);
        }
        let mut hashes: Vec<String> = list
            .split([',', '\n'])
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if hashes.is_empty() {
            return Err(FileHashError::MissingList);
        }
        let mut inner = lock(&self.inner);
        if !inner.file_hash_lists.contains_key(name) {
            match self.args.file_hash_unknown_list {
                UnknownFileHashList::Error => {
                    return Err(FileHashError::UnknownList(name.to_string()));
                }
                UnknownFileHashList::Create => {
                    inner
                        .file_hash_lists
                        .insert(name.to_string(), FileHashList::default());
                }
            }
        }
        let bad: Vec<String> = hashes
            .iter()
            .filter(|h| hash_kind(h).is_none())
            .take(100)
            .cloned()
            .collect();
        if !bad.is_empty() {
            return Err(FileHashError::InvalidHashes(bad));
        }
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        hashes.retain(|h| seen.insert(h.clone()));
        let bytes = hashes.iter().map(String::len).sum::<usize>() + hashes.len().saturating_sub(1);
        if hashes.len() > self.args.file_hash_max_entries || bytes > self.args.file_hash_max_bytes {
            return Err(FileHashError::TooLarge {
                entries: hashes.len(),
                bytes,
                max_entries: self.args.file_hash_max_entries,
                max_bytes: self.args.file_hash_max_bytes,
            });
        }
        let Some(current) = inner.file_hash_lists.get_mut(name) else {
            return Err(FileHashError::UnknownList(name.to_string()));
        };
        let old: BTreeSet<&String> = current.hashes.iter().collect();
        let new: BTreeSet<&String> = hashes.iter().collect();
        if old == new {
            return Err(FileHashError::Duplicate);
        }
        if self.faults.capacity_reached() && new.len() > old.len() {
            return Err(FileHashError::CapacityReached);
        }
        let count = hashes.len();
        current.hashes = hashes;
        current.modify_time = Some(modify_time_now());
        Ok(count)
    }

    // ---------------------------------------------------------------- rate limits

    /// Counts one v2 request for `token` against `--rate-limit` per `--rate-limit-window-secs`.
    pub fn rate_v2(&self, token: &str) -> Option<RateVerdict> {
        rate(
            &self.rate_v2,
            token,
            self.args.rate_limit,
            self.args.rate_limit_window_secs,
        )
    }

    /// Counts one v1 request for `token` against `--v1-rate-limit` per
    /// `--v1-rate-limit-window-secs`.
    pub fn rate_v1(&self, token: &str) -> Option<RateVerdict> {
        rate(
            &self.rate_v1,
            token,
            self.args.v1_rate_limit,
            self.args.v1_rate_limit_window_secs,
        )
    }

    // ---------------------------------------------------------------- snapshot

    /// What `GET /_sim/state` shows.
    pub fn snapshot(&self) -> Value {
        let inner = lock(&self.inner);
        let lists: Vec<Value> = inner
            .url_lists
            .values()
            .map(|l| {
                json!({
                    "id": l.id,
                    "name": l.name,
                    "pending": l.pending,
                    "modify_type": l.modify_type.as_str(),
                    "modify_time": l.modify_time,
                    "pending_content": l.pending.then(|| json!({
                        "name": l.name,
                        "type": l.working.list_type.as_str(),
                        "urls": l.working.urls,
                        "bytes": l.working.json_bytes(),
                        "deleted": l.modify_type == ModifyType::Deleted,
                    })),
                    "deployed_content": l.deployed.as_ref().map(|(name, c)| json!({
                        "name": name,
                        "type": c.list_type.as_str(),
                        "urls": c.urls,
                        "bytes": c.json_bytes(),
                    })),
                })
            })
            .collect();
        let hash_lists: Map<String, Value> = inner
            .file_hash_lists
            .iter()
            .map(|(name, l)| {
                (
                    name.clone(),
                    json!({"hashes": l.hashes, "count": l.hashes.len(), "modify_time": l.modify_time}),
                )
            })
            .collect();
        let alerts: Map<String, Value> = inner
            .alerts
            .iter()
            .map(|(t, v)| (t.as_str().to_string(), json!(v.len())))
            .collect();
        let mut cursors: Vec<Value> = inner
            .cursors
            .iter()
            .map(|((t, i), c)| {
                json!({"alert_type": t, "index": i, "position": c.pos, "served": c.served, "timestamp_hwm": c.hwm})
            })
            .collect();
        cursors.sort_by_key(|v| v.to_string());
        json!({
            "url_lists": lists,
            "file_hash_lists": hash_lists,
            "alerts": alerts,
            "iterators": cursors,
        })
    }
}

impl Cursor {
    fn advance(&mut self, page: Page, now: Instant) {
        self.pos = page.end;
        self.last = Some(page);
        self.hwm = page.hwm;
        self.ready_at = (page.wait_time > 0).then(|| now + Duration::from_secs(page.wait_time));
    }
}

impl Inner {
    fn next_ingest(&mut self) -> i64 {
        let now = now_epoch().max(self.last_ingest);
        self.last_ingest = now;
        now
    }

    fn push_generated(&mut self, alert_type: AlertType, timestamp: i64, ingest: i64) -> Value {
        let alert = match alert_type {
            AlertType::Malware => {
                let file = self.pools.file(&mut self.rng);
                data::malware_alert(&mut self.rng, &file, timestamp, ingest)
            }
            AlertType::Malsite => {
                let site = self.pools.site(&mut self.rng);
                data::malsite_alert(&mut self.rng, &site, timestamp, ingest)
            }
        };
        self.push(alert_type, alert, ingest)
    }

    fn push(&mut self, alert_type: AlertType, alert: Map<String, Value>, ingest: i64) -> Value {
        self.last_ingest = self.last_ingest.max(ingest);
        let value = Value::Object(alert);
        let text: Arc<str> = Arc::from(value.to_string());
        self.alerts
            .entry(alert_type)
            .or_default()
            .push(StoredAlert { ingest, json: text });
        value
    }
}

fn render_page(
    store: &[StoredAlert],
    start: usize,
    end: usize,
    wait_time: u64,
    hwm: i64,
) -> String {
    let slice = store.get(start..end).unwrap_or(&[]);
    let mut body =
        String::with_capacity(64 + slice.iter().map(|a| a.json.len() + 1).sum::<usize>());
    body.push_str("{\"ok\":1,\"result\":[");
    for (i, alert) in slice.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&alert.json);
    }
    body.push_str("],\"wait_time\":");
    body.push_str(&wait_time.to_string());
    body.push_str(",\"timestamp_hwm\":");
    body.push_str(&hwm.to_string());
    body.push('}');
    body
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?', '#', ':'])
        .next()
        .unwrap_or(rest)
        .to_string()
}

fn rate(
    windows: &Mutex<HashMap<String, Window>>,
    key: &str,
    limit: u32,
    window_secs: u64,
) -> Option<RateVerdict> {
    if limit == 0 || window_secs == 0 {
        return None;
    }
    let now = Instant::now();
    let span = Duration::from_secs(window_secs);
    let mut windows = lock(windows);
    let w = windows.entry(key.to_string()).or_insert(Window {
        start: now,
        count: 0,
    });
    if now.duration_since(w.start) >= span {
        *w = Window {
            start: now,
            count: 0,
        };
    }
    let left = span.saturating_sub(now.duration_since(w.start));
    let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    if w.count >= limit {
        return Some(RateVerdict {
            allowed: false,
            limit,
            remaining: 0,
            reset: reset.max(1),
        });
    }
    w.count += 1;
    Some(RateVerdict {
        allowed: true,
        limit,
        remaining: limit - w.count,
        reset: reset.max(1),
    })
}
