//! What the emulator holds: both lists, their ordering and paging, adds with the per-type cap,
//! deletes, and the realistic seed data behind `--objects` and `--exceptions`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filter::{Filter, ListKind, Subject};
use super::model::{
    ExceptionObject, ItemError, ObjectRef, ObjectType, RiskLevel, ScanAction, SuspiciousAdd,
    SuspiciousObject,
};

/// What happens when an add would take a type past its cap (not documented for the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CapacityOverflow {
    /// The whole request is refused with 400 "The number of objects exceeds the maximum limit".
    Reject,
    /// The objects of that type closest to expiry are dropped to make room, as the console does.
    Evict,
}

/// What re-adding an object already on a list does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DuplicateAdd {
    /// The object is replaced by the new submission and `lastModifiedDateTime` moves (201).
    Update,
    /// The item is refused with a per-item 400.
    Reject,
}

/// What deleting an object that is not on the list answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeleteMissing {
    /// Per-item 404 `NotFound`, as Trend's mock does.
    NotFound,
    /// Per-item 204, as if it had been deleted.
    NoContent,
}

/// The settings the lists need (taken from `Args`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) capacity_per_type: usize,
    pub(crate) exception_capacity_per_type: usize,
    pub(crate) capacity_overflow: CapacityOverflow,
    pub(crate) duplicate_add: DuplicateAdd,
    pub(crate) delete_missing: DeleteMissing,
    pub(crate) list_expired: bool,
    pub(crate) never_expires_as: String,
}

#[derive(Debug, Clone)]
struct Stored<T> {
    /// A global, strictly increasing revision: set on insert and on every update. It breaks ties
    /// in ordering, so every item has a unique position and paging never skips or repeats.
    rev: u64,
    item: T,
}

type Key = (ObjectType, String);

/// Sort key of a list item: its primary sort value and its revision. Unique per item, because
/// revisions are.
type SortKey = (i64, u64);

/// An ordered index: sort key to the item's key.
type Index = BTreeMap<SortKey, Key>;

fn primary_of(field: OrderField, o: &SuspiciousObject) -> i64 {
    match field {
        OrderField::LastModified => o.last_modified.timestamp(),
        OrderField::Expired => o.expires.map_or(i64::MAX, |t| t.timestamp()),
        OrderField::RiskLevel => o.risk_level.rank(),
    }
}

const ORDER_FIELDS: [OrderField; 3] = [
    OrderField::LastModified,
    OrderField::Expired,
    OrderField::RiskLevel,
];

/// Both lists, each with ordered indexes so that a page costs the page, not the list.
#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<Key, Stored<SuspiciousObject>>,
    /// One index per [`OrderField`], in [`ORDER_FIELDS`] order.
    object_index: [Index; 3],
    exceptions: BTreeMap<Key, Stored<ExceptionObject>>,
    exception_index: Index,
    rev: u64,
}

impl Inner {
    fn next_rev(&mut self) -> u64 {
        self.rev += 1;
        self.rev
    }

    fn index(&self, field: OrderField) -> &Index {
        let i = ORDER_FIELDS.iter().position(|f| *f == field).unwrap_or(0);
        &self.object_index[i]
    }

    fn put_object(&mut self, object: SuspiciousObject) {
        let key = (
            object.object_type,
            object.object_type.identity(&object.value),
        );
        self.remove_object(&key);
        let rev = self.next_rev();
        for (i, field) in ORDER_FIELDS.iter().enumerate() {
            self.object_index[i].insert((primary_of(*field, &object), rev), key.clone());
        }
        self.objects.insert(key, Stored { rev, item: object });
    }

    fn remove_object(&mut self, key: &Key) -> bool {
        let Some(old) = self.objects.remove(key) else {
            return false;
        };
        for (i, field) in ORDER_FIELDS.iter().enumerate() {
            self.object_index[i].remove(&(primary_of(*field, &old.item), old.rev));
        }
        true
    }

    fn put_exception(&mut self, object: ExceptionObject) {
        let key = (
            object.object_type,
            object.object_type.identity(&object.value),
        );
        self.remove_exception(&key);
        let rev = self.next_rev();
        self.exception_index
            .insert((object.last_modified.timestamp(), rev), key.clone());
        self.exceptions.insert(key, Stored { rev, item: object });
    }

    fn remove_exception(&mut self, key: &Key) -> bool {
        let Some(old) = self.exceptions.remove(key) else {
            return false;
        };
        self.exception_index
            .remove(&(old.item.last_modified.timestamp(), old.rev));
        true
    }

    /// Drops suspicious objects that expired, soonest first, stopping at the first live one.
    fn purge_expired(&mut self, now: DateTime<Utc>) {
        loop {
            let expired = self
                .index(OrderField::Expired)
                .first_key_value()
                .and_then(|(_, key)| self.objects.get(key).map(|s| (key, s)))
                .filter(|(_, s)| s.item.expires.is_some_and(|t| t <= now))
                .map(|(key, _)| key.clone());
            match expired {
                Some(key) => {
                    self.remove_object(&key);
                }
                None => break,
            }
        }
    }

    fn count_of(&self, t: ObjectType, exceptions: bool) -> usize {
        let start = (t, String::new());
        if exceptions {
            self.exceptions
                .range(start..)
                .take_while(|((kt, _), _)| *kt == t)
                .count()
        } else {
            self.objects
                .range(start..)
                .take_while(|((kt, _), _)| *kt == t)
                .count()
        }
    }
}

/// Walks `index` in `order`, starting after `after`.
fn walk<'a>(
    index: &'a Index,
    order: Order,
    after: Option<Cursor>,
) -> Box<dyn Iterator<Item = (&'a SortKey, &'a Key)> + 'a> {
    use std::ops::Bound::{Excluded, Unbounded};
    let from = after.map(|c| (c.primary, c.rev));
    match (order.desc, from) {
        (false, None) => Box::new(index.iter()),
        (false, Some(k)) => Box::new(index.range((Excluded(k), Unbounded))),
        (true, None) => Box::new(index.iter().rev()),
        (true, Some(k)) => Box::new(index.range((Unbounded, Excluded(k))).rev()),
    }
}

/// The two lists the emulator holds. Cheap to share (`Arc<State>`); every method takes the lock
/// for the length of one request.
#[derive(Debug)]
pub struct State {
    config: Config,
    inner: Mutex<Inner>,
}

/// The field a list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderField {
    /// `lastModifiedDateTime`.
    LastModified,
    /// `expiredDateTime` (suspicious objects only).
    Expired,
    /// `riskLevel` (suspicious objects only).
    RiskLevel,
}

/// A list order: `orderBy=<field> [asc|desc]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The field.
    pub field: OrderField,
    /// Descending when true.
    pub desc: bool,
}

impl Order {
    /// Parses an `orderBy` value for `kind`; a missing direction means ascending.
    pub fn parse(value: &str, kind: ListKind) -> Option<Order> {
        let mut words = value.split_whitespace();
        let field = match (words.next()?, kind) {
            ("lastModifiedDateTime", _) => OrderField::LastModified,
            ("expiredDateTime", ListKind::Suspicious) => OrderField::Expired,
            ("riskLevel", ListKind::Suspicious) => OrderField::RiskLevel,
            _ => return None,
        };
        let desc = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return None,
        };
        if words.next().is_some() {
            return None;
        }
        Some(Order { field, desc })
    }
}

/// Where the previous page ended: the sort key of its last item. Items strictly after it in the
/// list order come next, whatever was added or deleted meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last item's primary sort value.
    pub primary: i64,
    /// The last item's revision.
    pub rev: u64,
}

/// The state a `skipToken` carries, encoded as URL-safe base64 of a small JSON object so clients
/// treat it as opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipToken {
    /// `so` or `ex`: the list the token belongs to.
    #[serde(rename = "l")]
    pub list: String,
    /// The order the pages follow.
    #[serde(rename = "o")]
    pub order: Order,
    /// The last item's primary sort value.
    #[serde(rename = "k")]
    pub primary: i64,
    /// The last item's revision.
    #[serde(rename = "r")]
    pub rev: u64,
    /// The `TMV1-Filter` of the first page, used when a next-page request does not repeat it.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

impl SkipToken {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a token; `None` when it was not made by [`SkipToken::encode`].
    pub fn decode(text: &str) -> Option<SkipToken> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One list request after its parameters were checked.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The order.
    pub order: Order,
    /// Only items modified at or after this time.
    pub start: Option<DateTime<Utc>>,
    /// Only items modified at or before this time.
    pub end: DateTime<Utc>,
    /// The filter.
    pub filter: Option<Filter>,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
    /// The page size.
    pub top: usize,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The items, in wire form.
    pub items: Vec<Value>,
    /// Where this page ended, when more items follow.
    pub next: Option<Cursor>,
}

/// A whole-request refusal of an add (answered as 400 with the vendor envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityError {
    /// The message.
    pub message: String,
}

/// The message of the per-type cap refusal. Netskope's plugin looks for the words "The number of
/// objects exceeds the maximum limit" in it and stops pushing.
pub fn capacity_message(object_type: Option<ObjectType>, cap: usize) -> String {
    match object_type {
        Some(t) => format!(
            "The number of objects exceeds the maximum limit. Object type {t} is limited to {cap} objects."
        ),
        None => "The number of objects exceeds the maximum limit.".to_string(),
    }
}

impl State {
    pub(crate) fn new(config: Config) -> State {
        State {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self, now: DateTime<Utc>) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !self.config.list_expired {
            inner.purge_expired(now);
        }
        inner
    }

    /// Every suspicious object held, oldest revision first, with `in_exception_list` computed.
    pub fn suspicious_objects(&self) -> Vec<SuspiciousObject> {
        let inner = self.lock(Utc::now());
        let mut all: Vec<&Stored<SuspiciousObject>> = inner.objects.values().collect();
        all.sort_by_key(|s| s.rev);
        all.into_iter()
            .map(|s| {
                let mut o = s.item.clone();
                o.in_exception_list = inner
                    .exceptions
                    .contains_key(&(o.object_type, o.object_type.identity(&o.value)));
                o
            })
            .collect()
    }

    /// Every exception held, oldest revision first.
    pub fn exceptions(&self) -> Vec<ExceptionObject> {
        let inner = self.lock(Utc::now());
        let mut all: Vec<&Stored<ExceptionObject>> = inner.exceptions.values().collect();
        all.sort_by_key(|s| s.rev);
        all.into_iter().map(|s| s.item.clone()).collect()
    }

    /// Both lists in wire form: `{"suspiciousObjects":[…],"exceptions":[…]}` (what
    /// `GET /_sim/state` answers).
    pub fn snapshot(&self) -> Value {
        let never = &self.config.never_expires_as;
        serde_json::json!({
            "suspiciousObjects": self
                .suspicious_objects()
                .iter()
                .map(|o| o.to_wire(never))
                .collect::<Vec<_>>(),
            "exceptions": self.exceptions().iter().map(|e| e.to_wire()).collect::<Vec<_>>(),
        })
    }

    /// Empties both lists.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let rev = inner.rev;
        *inner = Inner {
            rev,
            ..Inner::default()
        };
    }

    /// Puts one suspicious object on the list as is (no validation, no cap), replacing any with
    /// the same type and value. For tests and seeding.
    pub fn put_suspicious(&self, object: SuspiciousObject) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.put_object(object);
    }

    /// Puts one exception on the list as is (no validation, no cap), replacing any with the same
    /// type and value. For tests and seeding.
    pub fn put_exception(&self, object: ExceptionObject) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.put_exception(object);
    }

    /// One page of the Suspicious Object List.
    pub fn list_suspicious(&self, query: &ListQuery, now: DateTime<Utc>) -> Page {
        let inner = self.lock(now);
        let mut page: Vec<(SortKey, &SuspiciousObject)> = Vec::with_capacity(query.top + 1);
        for (sort_key, key) in walk(inner.index(query.order.field), query.order, query.after) {
            let Some(stored) = inner.objects.get(key) else {
                continue;
            };
            let o = &stored.item;
            let wanted = in_range(o.last_modified, query)
                && query.filter.as_ref().is_none_or(|f| {
                    f.matches(&Subject {
                        object_type: key.0,
                        identity: &key.1,
                        scan_action: Some(o.scan_action),
                        risk_level: Some(o.risk_level),
                    })
                });
            if wanted {
                page.push((*sort_key, o));
                if page.len() > query.top {
                    break;
                }
            }
        }
        let more = page.len() > query.top;
        page.truncate(query.top);
        let next = more.then(|| page.last().map(|(k, _)| cursor(*k))).flatten();
        let items = page
            .iter()
            .map(|(_, o)| {
                let mut o = (*o).clone();
                o.in_exception_list = inner
                    .exceptions
                    .contains_key(&(o.object_type, o.object_type.identity(&o.value)));
                o.to_wire(&self.config.never_expires_as)
            })
            .collect();
        Page { items, next }
    }

    /// One page of the Exception List.
    pub fn list_exceptions(&self, query: &ListQuery, now: DateTime<Utc>) -> Page {
        let inner = self.lock(now);
        let mut page: Vec<(SortKey, &ExceptionObject)> = Vec::with_capacity(query.top + 1);
        for (sort_key, key) in walk(&inner.exception_index, query.order, query.after) {
            let Some(stored) = inner.exceptions.get(key) else {
                continue;
            };
            let wanted = in_range(stored.item.last_modified, query)
                && query.filter.as_ref().is_none_or(|f| {
                    f.matches(&Subject {
                        object_type: key.0,
                        identity: &key.1,
                        scan_action: None,
                        risk_level: None,
                    })
                });
            if wanted {
                page.push((*sort_key, &stored.item));
                if page.len() > query.top {
                    break;
                }
            }
        }
        let more = page.len() > query.top;
        page.truncate(query.top);
        let next = more.then(|| page.last().map(|(k, _)| cursor(*k))).flatten();
        let items = page.iter().map(|(_, e)| e.to_wire()).collect();
        Page { items, next }
    }

    /// Applies validated add items to the Suspicious Object List and returns one 207 entry per
    /// item, in order.
    ///
    /// # Errors
    /// When the new objects would take a type past its cap (and the overflow mode is
    /// [`CapacityOverflow::Reject`]): nothing is stored.
    pub fn add_suspicious(
        &self,
        items: Vec<Result<SuspiciousAdd, ItemError>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, CapacityError> {
        let now = now.trunc_subsecs(0);
        let mut inner = self.lock(now);
        let cap = self.config.capacity_per_type;
        let items = self.refuse_duplicates(
            items,
            |k| inner.objects.contains_key(k),
            |a| (a.object_type, a.object_type.identity(&a.value)),
        );
        let new_keys = new_keys_per_type(
            &items,
            |a| (a.object_type, a.object_type.identity(&a.value)),
            |k| inner.objects.contains_key(k),
        );
        for (t, new) in &new_keys {
            let held = inner.count_of(*t, false);
            if held + new <= cap {
                continue;
            }
            if self.config.capacity_overflow == CapacityOverflow::Reject || *new > cap {
                return Err(CapacityError {
                    message: capacity_message(Some(*t), cap),
                });
            }
            // Make room: drop the objects of this type closest to expiry (never-expiring last).
            let victims: Vec<Key> = inner
                .index(OrderField::Expired)
                .values()
                .filter(|(kt, _)| kt == t)
                .take(held + new - cap)
                .cloned()
                .collect();
            for key in victims {
                inner.remove_object(&key);
            }
        }
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Err(e) => entries.push(e.to_entry()),
                Ok(add) => {
                    let object = SuspiciousObject {
                        object_type: add.object_type,
                        value: add.value,
                        description: add.description,
                        scan_action: add.scan_action,
                        risk_level: add.risk_level,
                        last_modified: now,
                        expires: add.days.map(|d| now + Duration::days(d)),
                        in_exception_list: false,
                    };
                    inner.put_object(object);
                    entries.push(serde_json::json!({"status": 201}));
                }
            }
        }
        Ok(entries)
    }

    /// Applies validated add items to the Exception List and returns one 207 entry per item.
    ///
    /// # Errors
    /// When the new exceptions would take a type past its cap: nothing is stored.
    pub fn add_exceptions(
        &self,
        items: Vec<Result<ObjectRef, ItemError>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, CapacityError> {
        let now = now.trunc_subsecs(0);
        let mut inner = self.lock(now);
        let cap = self.config.exception_capacity_per_type;
        let key_of = |a: &ObjectRef| (a.object_type, a.object_type.identity(&a.value));
        let items = self.refuse_duplicates(items, |k| inner.exceptions.contains_key(k), key_of);
        let new_keys = new_keys_per_type(&items, key_of, |k| inner.exceptions.contains_key(k));
        for (t, new) in &new_keys {
            let held = inner.count_of(*t, true);
            if held + new > cap {
                return Err(CapacityError {
                    message: capacity_message(Some(*t), cap),
                });
            }
        }
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Err(e) => entries.push(e.to_entry()),
                Ok(add) => {
                    let object = ExceptionObject {
                        object_type: add.object_type,
                        value: add.value,
                        description: add.description,
                        last_modified: now,
                    };
                    inner.put_exception(object);
                    entries.push(serde_json::json!({"status": 201}));
                }
            }
        }
        Ok(entries)
    }

    /// Deletes from the Suspicious Object List; one 207 entry per item.
    pub fn delete_suspicious(&self, items: Vec<Result<ObjectRef, ItemError>>) -> Vec<Value> {
        let mut inner = self.lock(Utc::now());
        items
            .into_iter()
            .map(|item| self.delete_entry(item, |k| inner.remove_object(k)))
            .collect()
    }

    /// Deletes from the Exception List; one 207 entry per item.
    pub fn delete_exceptions(&self, items: Vec<Result<ObjectRef, ItemError>>) -> Vec<Value> {
        let mut inner = self.lock(Utc::now());
        items
            .into_iter()
            .map(|item| self.delete_entry(item, |k| inner.remove_exception(k)))
            .collect()
    }

    fn delete_entry(
        &self,
        item: Result<ObjectRef, ItemError>,
        mut remove: impl FnMut(&Key) -> bool,
    ) -> Value {
        match item {
            Err(e) => e.to_entry(),
            Ok(r) => {
                let key = (r.object_type, r.object_type.identity(&r.value));
                if remove(&key) || self.config.delete_missing == DeleteMissing::NoContent {
                    serde_json::json!({"status": 204})
                } else {
                    ItemError {
                        status: 404,
                        code: "NotFound",
                        message: "Not found".to_string(),
                    }
                    .to_entry()
                }
            }
        }
    }

    fn refuse_duplicates<T>(
        &self,
        items: Vec<Result<T, ItemError>>,
        held: impl Fn(&Key) -> bool,
        key_of: impl Fn(&T) -> Key,
    ) -> Vec<Result<T, ItemError>> {
        if self.config.duplicate_add == DuplicateAdd::Update {
            return items;
        }
        items
            .into_iter()
            .map(|item| match item {
                Ok(a) if held(&key_of(&a)) => {
                    let key = key_of(&a);
                    Err(ItemError {
                        status: 400,
                        code: "BadRequest",
                        message: format!("Invalid request - The object already exists: {}.", key.0),
                    })
                }
                other => other,
            })
            .collect()
    }

    /// Fills the lists with `objects` suspicious objects and `exceptions` exceptions of every
    /// type, with varied fields and modification times over the last 30 days, reproducibly for a
    /// given `seed`. Each type stops at its cap.
    pub fn seed(&self, objects: usize, exceptions: usize, seed: u64, now: DateTime<Utc>) {
        let now = now.trunc_subsecs(0);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut made: Vec<(DateTime<Utc>, SuspiciousObject)> = Vec::with_capacity(objects);
        let mut per_type: HashMap<ObjectType, usize> = HashMap::new();
        for n in 0..objects {
            let object_type = ObjectType::ALL[n % ObjectType::ALL.len()];
            let count = per_type.entry(object_type).or_default();
            if *count >= self.config.capacity_per_type {
                continue;
            }
            *count += 1;
            let last_modified = now - Duration::seconds(rng.gen_range(0..30 * 24 * 3600));
            let expires = match rng.gen_range(0..4) {
                0 => None,
                _ => Some(last_modified + Duration::days(*pick(&mut rng, &[45, 60, 90, 180, 365]))),
            };
            let value = sample_value(object_type, n, &mut rng);
            let risk_level = *pick(&mut rng, &RiskLevel::ALL);
            let scan_action = *pick(&mut rng, &ScanAction::ALL);
            let description = match rng.gen_range(0..5) {
                0 => None,
                _ => Some(format!(
                    "{} ({})",
                    pick(&mut rng, DESCRIPTIONS),
                    pick(&mut rng, SOURCES)
                )),
            };
            made.push((
                last_modified,
                SuspiciousObject {
                    object_type,
                    value,
                    description,
                    scan_action,
                    risk_level,
                    last_modified,
                    expires,
                    in_exception_list: false,
                },
            ));
        }
        // Revisions follow modification time, as they would had the objects arrived over time.
        made.sort_by_key(|(t, _)| *t);
        for (_, object) in made {
            self.put_suspicious(object);
        }
        let mut made: Vec<ExceptionObject> = Vec::with_capacity(exceptions);
        for n in 0..exceptions {
            let object_type = ObjectType::ALL[n % ObjectType::ALL.len()];
            let value = match (object_type, n % 4) {
                (ObjectType::Domain, 0) => format!("*.partner{n}.example.com"),
                (ObjectType::Ip, 0) => format!("10.{}.{}.0/24", (n / 256) % 256, n % 256),
                (ObjectType::Url, 0) => format!("https://*.intranet{n}.example.org/*"),
                _ => sample_value(object_type, 1_000_000 + n, &mut rng),
            };
            let last_modified = now - Duration::seconds(rng.gen_range(0..30 * 24 * 3600));
            let description = match rng.gen_range(0..3) {
                0 => None,
                _ => Some(pick(&mut rng, EXCEPTION_REASONS).to_string()),
            };
            made.push(ExceptionObject {
                object_type,
                value,
                description,
                last_modified,
            });
        }
        made.sort_by_key(|e| e.last_modified);
        for e in made {
            self.put_exception(e);
        }
    }
}

fn in_range(t: DateTime<Utc>, query: &ListQuery) -> bool {
    query.start.is_none_or(|s| t >= s) && t <= query.end
}

fn cursor(key: (i64, u64)) -> Cursor {
    Cursor {
        primary: key.0,
        rev: key.1,
    }
}

/// How many distinct objects of each type a batch would add that are not on the list yet.
fn new_keys_per_type<T>(
    items: &[Result<T, ItemError>],
    key_of: impl Fn(&T) -> Key,
    held: impl Fn(&Key) -> bool,
) -> BTreeMap<ObjectType, usize> {
    let mut seen = std::collections::HashSet::new();
    let mut counts = BTreeMap::new();
    for item in items.iter().flatten() {
        let key = key_of(item);
        if !held(&key) && seen.insert(key.clone()) {
            *counts.entry(key.0).or_insert(0) += 1;
        }
    }
    counts
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
const DESCRIPTIONS: &[&str] = &[
    "Phishing landing page",
    "Emotet C2 server",
    "Cobalt Strike beacon host",
    "Credential harvesting kit",
    "Ransomware payload",
    "Malicious macro document",
    "QakBot distribution",
    "Suspicious newly registered domain",
    "Brute-force source",
    "Business email compromise sender",
];
const SOURCES: &[&str] = &[
    "Shared by iocx",
    "Created from Netskope CTE",
    "Analyst",
    "Sandbox verdict",
    "Threat feed",
];
const EXCEPTION_REASONS: &[&str] = &[
    "Known partner",
    "False positive confirmed by SOC",
    "Internal scanner",
    "Corporate update server",
];

fn sample_domain(n: usize, rng: &mut StdRng) -> String {
    format!(
        "{}-{}{}.{}",
        pick(rng, WORDS),
        pick(rng, WORDS),
        n,
        pick(rng, TLDS)
    )
}

fn sample_value(object_type: ObjectType, n: usize, rng: &mut StdRng) -> String {
    match object_type {
        ObjectType::Url => format!(
            "{}://{}/{}/{}.php?id={}",
            if rng.gen_bool(0.5) { "https" } else { "http" },
            sample_domain(n, rng),
            pick(rng, WORDS),
            pick(rng, WORDS),
            rng.gen_range(1..100_000)
        ),
        ObjectType::Domain => sample_domain(n, rng),
        ObjectType::Ip if n % 5 == 4 => format!("2001:db8:{:x}::{:x}", n / 65_536, n % 65_536),
        // 198.18.0.0/15 is reserved for benchmarking: 131,072 addresses, none of them real hosts.
        ObjectType::Ip => format!(
            "198.{}.{}.{}",
            18 + (n / 65_536) % 2,
            (n / 256) % 256,
            n % 256
        ),
        ObjectType::SenderMailAddress => format!(
            "{}.{}{}@{}",
            pick(rng, WORDS),
            pick(rng, WORDS),
            n,
            sample_domain(n, rng)
        ),
        ObjectType::FileSha1 => hex_digest(n, 20, rng),
        ObjectType::FileSha256 => hex_digest(n, 32, rng),
    }
}

fn hex_digest(n: usize, bytes: usize, rng: &mut StdRng) -> String {
    let mut raw: Vec<u8> = (0..bytes).map(|_| rng.r#gen()).collect();
    // The index in the first bytes keeps every seeded digest distinct.
    for (i, b) in (n as u64).to_be_bytes().iter().enumerate() {
        raw[i] = *b;
    }
    hex::encode_upper(raw)
}
