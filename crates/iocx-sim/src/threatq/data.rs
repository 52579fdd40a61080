//! What the emulator holds: indicators with their registries of sources, attribute names and
//! tags, saved searches (data collections), OAuth tokens, expiry, and the realistic seed data
//! behind `--indicators`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use super::model::{
    Attribute, Indicator, IndicatorType, Render, SourceLink, Status, TLP, Tag, format_time,
    indicator_wire, parse_time, status_by_id, status_by_name, value_hash,
};
use super::query::Query;

/// What creating an indicator that already exists (same type and value) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DuplicateCreate {
    /// The existing indicator absorbs the new sources, attributes and tags and is returned with
    /// its own id (201).
    Merge,
    /// The request is refused with a 400 naming the value.
    Reject,
}

/// The settings the store needs (taken from `Args`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) types: Vec<IndicatorType>,
    pub(crate) default_status: Status,
    pub(crate) duplicate_create: DuplicateCreate,
    pub(crate) max_indicators: usize,
}

/// A validated indicator to create or merge.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIndicator {
    /// The value as submitted (trimmed).
    pub value: String,
    /// Its canonical form under its type.
    pub canonical: String,
    /// Its type.
    pub indicator_type: IndicatorType,
    /// Its status, when given.
    pub status: Option<Status>,
    /// Its description.
    pub description: Option<String>,
    /// When it was published, when given.
    pub published_at: Option<DateTime<Utc>>,
    /// When it expires, when given.
    pub expires_at: Option<DateTime<Utc>>,
    /// Sources: name, TLP id.
    pub sources: Vec<(String, Option<u8>)>,
    /// Attributes: name, value.
    pub attributes: Vec<(String, String)>,
    /// Tag names.
    pub tags: Vec<String>,
}

/// Validation errors keyed by field, as ThreatQ's 400 `{"data":{"errors":{field:[…]}}}` carries
/// them.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A named reference that may come as `"Name"`, `{"name": "Name"}` or an id field.
fn name_or_id(item: &Value, key: &str, id_key: &str) -> (Option<String>, Option<u64>) {
    let name = match item.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(m)) => m.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let id = item
        .get(id_key)
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .or_else(|| {
            item.get(key)
                .and_then(|v| v.get("id"))
                .and_then(Value::as_u64)
        });
    (name, id)
}

/// Checks one create/consume item. `prefix` names it in errors (`""` for a lone object, `"3."`
/// for the fourth of an array).
///
/// # Errors
/// The field errors that refuse it.
pub fn parse_new_indicator(
    item: &Value,
    types: &[IndicatorType],
    prefix: &str,
) -> Result<NewIndicator, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut fail = |field: &str, message: String| {
        errors
            .entry(format!("{prefix}{field}"))
            .or_default()
            .push(message);
    };
    if !item.is_object() {
        fail("value", "Each indicator must be an object.".into());
        return Err(errors);
    }
    let value = item.get("value").and_then(text_of).unwrap_or_default();
    let (type_name, type_id) = name_or_id(item, "type", "type_id");
    let indicator_type = match (type_name, type_id) {
        (Some(name), _) => types
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name.trim()))
            .copied(),
        (None, Some(id)) => types.iter().find(|t| t.id == id).copied(),
        (None, None) => None,
    };
    if indicator_type.is_none() {
        let named = item.get("type").is_some() || item.get("type_id").is_some();
        fail(
            "type",
            if named {
                "The selected type is invalid.".into()
            } else {
                "The type field is required.".into()
            },
        );
    }
    let canonical = match indicator_type {
        Some(t) => match t.canonical(&value) {
            Ok(c) => Some(c),
            Err(e) => {
                fail("value", e);
                None
            }
        },
        None if value.trim().is_empty() => {
            fail("value", "The value field is required.".into());
            None
        }
        None => None,
    };
    let (status_name, status_id) = name_or_id(item, "status", "status_id");
    let status = match (status_name, status_id) {
        (Some(name), _) => match status_by_name(&name) {
            Some(s) => Some(s),
            None => {
                fail("status", "The selected status is invalid.".into());
                None
            }
        },
        (None, Some(id)) => match status_by_id(id) {
            Some(s) => Some(s),
            None => {
                fail("status_id", "The selected status id is invalid.".into());
                None
            }
        },
        (None, None) => None,
    };
    let mut date = |key: &str| -> Option<DateTime<Utc>> {
        let text = item.get(key).and_then(Value::as_str)?;
        let parsed = parse_time(text);
        if parsed.is_none() {
            fail(
                key,
                format!("The {key} does not match the format Y-m-d H:i:s."),
            );
        }
        parsed
    };
    let published_at = date("published_at");
    let expires_at = date("expires_at");
    let description = item
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut sources = Vec::new();
    match item.get("sources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                let name = match s {
                    Value::String(n) => Some(n.clone()),
                    Value::Object(m) => m.get("name").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                };
                let tlp = s
                    .get("tlp_id")
                    .and_then(Value::as_u64)
                    .or_else(|| {
                        s.get("tlp").and_then(|t| match t {
                            Value::Number(n) => n.as_u64(),
                            Value::String(name) => TLP
                                .iter()
                                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                                .map(|(id, _)| u64::from(*id)),
                            _ => None,
                        })
                    })
                    .or_else(|| item.get("tlp_id").and_then(Value::as_u64));
                match name {
                    Some(n) if !n.trim().is_empty() => {
                        sources.push((n.trim().to_string(), tlp.and_then(|t| u8::try_from(t).ok())))
                    }
                    _ => fail(
                        &format!("sources.{i}.name"),
                        "The source name is required.".into(),
                    ),
                }
            }
        }
        Some(_) => fail("sources", "The sources must be an array.".into()),
    }
    let mut attributes = Vec::new();
    match item.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, a) in list.iter().enumerate() {
                let name = a.get("name").and_then(Value::as_str).unwrap_or("").trim();
                let v = a.get("value").and_then(text_of);
                match v {
                    Some(v) if !name.is_empty() => attributes.push((name.to_string(), v)),
                    _ => fail(
                        &format!("attributes.{i}"),
                        "Each attribute needs a name and a value.".into(),
                    ),
                }
            }
        }
        Some(_) => fail("attributes", "The attributes must be an array.".into()),
    }
    let mut tags = Vec::new();
    match item.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for t in list {
                let name = match t {
                    Value::String(n) => Some(n.clone()),
                    Value::Object(m) => m.get("name").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                };
                match name {
                    Some(n) if !n.trim().is_empty() => tags.push(n.trim().to_string()),
                    _ => fail("tags", "Each tag needs a name.".into()),
                }
            }
        }
        Some(_) => fail("tags", "The tags must be an array.".into()),
    }
    match (indicator_type, canonical) {
        (Some(indicator_type), Some(canonical)) if errors.is_empty() => Ok(NewIndicator {
            value: value.trim().to_string(),
            canonical,
            indicator_type,
            status,
            description,
            published_at,
            expires_at,
            sources,
            attributes,
            tags,
        }),
        _ => Err(errors),
    }
}

/// A saved search (a "data collection" in newer UIs).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSearch {
    /// Its id.
    pub id: u64,
    /// Its name (unique).
    pub name: String,
    /// The collection hash `GET /api/indicators/query/hash/{hash}` takes.
    pub hash: String,
    /// `{"ui_query": …, "api_query": {"criteria": …, "filters": …}}`.
    pub json: Value,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl SavedSearch {
    /// The saved search as `/api/search/query` lists it; `json` goes out as a JSON string when
    /// `json_as_string`.
    pub fn to_wire(&self, json_as_string: bool) -> Value {
        let body = if json_as_string {
            Value::String(self.json.to_string())
        } else {
            self.json.clone()
        };
        json!({
            "id": self.id,
            "name": self.name,
            "hash": self.hash,
            "object": "indicators",
            "json": body,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.created_at),
        })
    }

    /// The `api_query` part.
    pub fn api_query(&self) -> Value {
        self.json
            .get("api_query")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }
}

/// A sort order of indicator lists: a field, descending when `-`-prefixed; ties by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The field.
    pub field: SortField,
    /// Descending.
    pub desc: bool,
}

/// The fields indicator lists sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// `id`.
    Id,
    /// `value`.
    Value,
    /// `score`.
    Score,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `touched_at`.
    TouchedAt,
}

impl Sort {
    /// Parses `sort=field` or `sort=-field`.
    pub fn parse(text: &str) -> Option<Sort> {
        let text = text.trim();
        let (desc, name) = match text.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let field = match name {
            "id" => SortField::Id,
            "value" => SortField::Value,
            "score" => SortField::Score,
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "touched_at" => SortField::TouchedAt,
            _ => return None,
        };
        Some(Sort { field, desc })
    }

    /// The wire form.
    pub fn text(self) -> String {
        let name = match self.field {
            SortField::Id => "id",
            SortField::Value => "value",
            SortField::Score => "score",
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
            SortField::TouchedAt => "touched_at",
        };
        if self.desc {
            format!("-{name}")
        } else {
            name.to_string()
        }
    }

    /// The sort key of an indicator: a text that orders as the field does, then the id.
    pub fn key(self, ind: &Indicator) -> (String, u64) {
        let primary = match self.field {
            SortField::Id => String::new(),
            SortField::Value => ind.value.to_lowercase(),
            // Scores are 0..=10; fixed width keeps text order numeric.
            SortField::Score => format!("{:012.4}", ind.score()),
            SortField::CreatedAt => format_time(ind.created_at),
            SortField::UpdatedAt => format_time(ind.updated_at),
            SortField::TouchedAt => format_time(ind.touched_at),
        };
        (primary, ind.id)
    }
}

/// An issued OAuth token.
#[derive(Debug, Clone)]
struct Grant {
    /// Who it was issued to (client id or e-mail).
    subject: String,
    expires: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Inner {
    indicators: BTreeMap<u64, Indicator>,
    by_key: HashMap<(u64, String), u64>,
    expiring: BTreeSet<(DateTime<Utc>, u64)>,
    searches: Vec<SavedSearch>,
    sources: HashMap<String, u64>,
    attribute_names: HashMap<String, u64>,
    tags: HashMap<String, u64>,
    next_id: u64,
    next_pivot: u64,
    next_search: u64,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
}

impl Inner {
    fn pivot(&mut self) -> u64 {
        self.next_pivot += 1;
        self.next_pivot
    }

    fn registry_id(map: &mut HashMap<String, u64>, name: &str) -> u64 {
        let next = map.len() as u64 + 1;
        *map.entry(name.to_string()).or_insert(next)
    }

    fn index_expiry(&mut self, ind: &Indicator) {
        if let Some(t) = ind.expires_at
            && ind.status.name != "Expired"
        {
            self.expiring.insert((t, ind.id));
        }
    }

    fn unindex_expiry(&mut self, ind: &Indicator) {
        if let Some(t) = ind.expires_at {
            self.expiring.remove(&(t, ind.id));
        }
    }

    fn absorb(&mut self, ind: &mut Indicator, new: &NewIndicator, now: DateTime<Utc>) {
        for (name, tlp) in &new.sources {
            if ind.sources.iter().any(|s| s.name == *name) {
                continue;
            }
            let source_id = Self::registry_id(&mut self.sources, name);
            let id = self.pivot();
            ind.sources.push(SourceLink {
                id,
                source_id,
                name: name.clone(),
                source_type: source_type_of(name),
                tlp_id: *tlp,
                published_at: new.published_at.unwrap_or(now),
                created_at: now,
            });
        }
        for (name, value) in &new.attributes {
            if ind
                .attributes
                .iter()
                .any(|a| a.name == *name && a.value == *value)
            {
                continue;
            }
            let attribute_id = Self::registry_id(&mut self.attribute_names, name);
            let id = self.pivot();
            ind.attributes.push(Attribute {
                id,
                attribute_id,
                name: name.clone(),
                value: value.clone(),
                created_at: now,
                updated_at: now,
            });
        }
        for name in &new.tags {
            if ind.tags.iter().any(|t| t.name == *name) {
                continue;
            }
            let id = Self::registry_id(&mut self.tags, name);
            ind.tags.push(Tag {
                id,
                name: name.clone(),
            });
        }
    }
}

fn source_type_of(name: &str) -> String {
    if name.contains('@') || name.eq_ignore_ascii_case("analyst") {
        "users".into()
    } else {
        "connectors".into()
    }
}

/// Why a store operation was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// Validation errors by field (400 form 1).
    Fields(FieldErrors),
    /// A refusal with a plain message (400 form 2).
    Message(String),
    /// No such object (404).
    NotFound,
}

/// Outcome of a token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
}

/// The whole store, behind one lock.
#[derive(Debug)]
pub struct State {
    config: Config,
    inner: Mutex<Inner>,
}

fn random_token(rng: &mut impl rand::Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

impl State {
    pub(crate) fn new(config: Config) -> State {
        State {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The instance's indicator types.
    pub fn types(&self) -> &[IndicatorType] {
        &self.config.types
    }

    /// Issues an access and a refresh token to `subject`.
    pub fn issue_token(
        &self,
        subject: &str,
        lifetime_secs: i64,
        refresh_lifetime_secs: i64,
        now: DateTime<Utc>,
    ) -> IssuedToken {
        let mut rng = rand::thread_rng();
        let access_token = random_token(&mut rng, 64);
        let refresh_token = random_token(&mut rng, 80);
        let mut inner = self.lock();
        inner.access.retain(|_, g| g.expires > now);
        inner.refresh.retain(|_, g| g.expires > now);
        inner.access.insert(
            access_token.clone(),
            Grant {
                subject: subject.to_string(),
                expires: now
                    + Duration::try_seconds(lifetime_secs.clamp(0, 3_153_600_000))
                        .unwrap_or_default(),
            },
        );
        inner.refresh.insert(
            refresh_token.clone(),
            Grant {
                subject: subject.to_string(),
                expires: now
                    + Duration::try_seconds(refresh_lifetime_secs.clamp(0, 3_153_600_000))
                        .unwrap_or_default(),
            },
        );
        IssuedToken {
            access_token,
            refresh_token,
            expires_in: lifetime_secs,
        }
    }

    /// The subject of a live access token.
    pub fn check_access(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        let inner = self.lock();
        inner
            .access
            .get(token)
            .filter(|g| g.expires > now)
            .map(|g| g.subject.clone())
    }

    /// The subject of a live refresh token, consuming it unless `reusable`.
    pub fn take_refresh(&self, token: &str, reusable: bool, now: DateTime<Utc>) -> Option<String> {
        let mut inner = self.lock();
        let live = inner
            .refresh
            .get(token)
            .filter(|g| g.expires > now)
            .map(|g| g.subject.clone());
        if live.is_some() && !reusable {
            inner.refresh.remove(token);
        }
        live
    }

    /// Turns every indicator whose `expires_at` has passed to Expired.
    pub fn reap(&self, now: DateTime<Utc>) -> usize {
        let mut inner = self.lock();
        let mut done = 0;
        let expired = status_by_name("Expired");
        while let Some(&(t, id)) = inner.expiring.first() {
            if t > now {
                break;
            }
            inner.expiring.remove(&(t, id));
            if let (Some(ind), Some(expired)) = (inner.indicators.get_mut(&id), expired)
                && ind.status.name != "Expired"
            {
                ind.status = expired;
                ind.expired_at = Some(t);
                ind.updated_at = now;
                done += 1;
            }
        }
        done
    }

    /// Creates (or merges) indicators; all or nothing. Returns them in request order.
    ///
    /// # Errors
    /// A duplicate under `reject`, or the instance being full.
    pub fn create(
        &self,
        items: Vec<NewIndicator>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Indicator>, StoreError> {
        let now = now.trunc_subsecs(0);
        let mut inner = self.lock();
        let fresh = items
            .iter()
            .filter(|n| {
                !inner
                    .by_key
                    .contains_key(&(n.indicator_type.id, n.canonical.clone()))
            })
            .count();
        if inner.indicators.len() + fresh > self.config.max_indicators {
            return Err(StoreError::Message(format!(
                "The indicator limit of this instance ({}) has been reached.",
                self.config.max_indicators
            )));
        }
        if self.config.duplicate_create == DuplicateCreate::Reject {
            let mut errors = FieldErrors::new();
            for (i, n) in items.iter().enumerate() {
                if inner
                    .by_key
                    .contains_key(&(n.indicator_type.id, n.canonical.clone()))
                {
                    errors
                        .entry(if items.len() == 1 {
                            "value".to_string()
                        } else {
                            format!("{i}.value")
                        })
                        .or_default()
                        .push("The value has already been taken.".into());
                }
            }
            if !errors.is_empty() {
                return Err(StoreError::Fields(errors));
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for new in items {
            let key = (new.indicator_type.id, new.canonical.clone());
            let existing = inner.by_key.get(&key).copied();
            let mut ind = match existing.and_then(|id| inner.indicators.get(&id).cloned()) {
                Some(mut ind) => {
                    inner.unindex_expiry(&ind);
                    if let Some(s) = new.status {
                        ind.status = s;
                    }
                    if new.description.is_some() {
                        ind.description.clone_from(&new.description);
                    }
                    if new.expires_at.is_some() {
                        ind.expires_at = new.expires_at;
                    }
                    ind.updated_at = now;
                    ind.touched_at = now;
                    ind
                }
                None => {
                    inner.next_id += 1;
                    Indicator {
                        id: inner.next_id,
                        value: new.value.clone(),
                        indicator_type: new.indicator_type,
                        status: new.status.unwrap_or(self.config.default_status),
                        description: new.description.clone(),
                        manual_score: None,
                        generated_score: 0.0,
                        sources: Vec::new(),
                        attributes: Vec::new(),
                        tags: Vec::new(),
                        created_at: now,
                        updated_at: now,
                        touched_at: now,
                        published_at: new.published_at.unwrap_or(now),
                        expires_at: new.expires_at,
                        expired_at: None,
                    }
                }
            };
            inner.absorb(&mut ind, &new, now);
            ind.generated_score = generated_score(&ind);
            inner.index_expiry(&ind);
            inner.by_key.insert(key, ind.id);
            inner.indicators.insert(ind.id, ind.clone());
            out.push(ind);
        }
        Ok(out)
    }

    /// One indicator.
    pub fn get(&self, id: u64) -> Option<Indicator> {
        self.lock().indicators.get(&id).cloned()
    }

    /// Indicators matching exact `value`/`type_id`/`status_id` parameters, in id order, paged.
    pub fn list(
        &self,
        value: Option<&str>,
        type_id: Option<u64>,
        status_id: Option<u64>,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Indicator>) {
        let inner = self.lock();
        let matching: Vec<&Indicator> = inner
            .indicators
            .values()
            .filter(|i| value.is_none_or(|v| i.value.eq_ignore_ascii_case(v.trim())))
            .filter(|i| type_id.is_none_or(|t| i.indicator_type.id == t))
            .filter(|i| status_id.is_none_or(|s| i.status.id == s))
            .collect();
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        (total, page)
    }

    /// Indicators matching `query`, sorted, from `offset`, at most `limit`, with the total.
    pub fn query(
        &self,
        query: &Query,
        sort: Sort,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Indicator>) {
        let inner = self.lock();
        let mut matching: Vec<(&Indicator, (String, u64))> = inner
            .indicators
            .values()
            .filter(|i| query.matches(i))
            .map(|i| (i, sort.key(i)))
            .collect();
        matching.sort_by(|a, b| a.1.cmp(&b.1));
        if sort.desc {
            matching.reverse();
        }
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(i, _)| i.clone())
            .collect();
        (total, page)
    }

    /// Keyset paging for the collection endpoint: the page after `after` (a sort key), and the
    /// total that match.
    pub fn query_after(
        &self,
        query: &Query,
        sort: Sort,
        after: Option<&(String, u64)>,
        limit: usize,
    ) -> (usize, Vec<Indicator>) {
        let inner = self.lock();
        let mut matching: Vec<(&Indicator, (String, u64))> = inner
            .indicators
            .values()
            .filter(|i| query.matches(i))
            .map(|i| (i, sort.key(i)))
            .collect();
        matching.sort_by(|a, b| a.1.cmp(&b.1));
        if sort.desc {
            matching.reverse();
        }
        let total = matching.len();
        let page = matching
            .into_iter()
            .filter(|(_, k)| match after {
                None => true,
                Some(a) if sort.desc => k < a,
                Some(a) => k > a,
            })
            .take(limit)
            .map(|(i, _)| i.clone())
            .collect();
        (total, page)
    }

    /// Changes an indicator's status, description, expiry or value.
    ///
    /// # Errors
    /// `NotFound`, or field errors.
    pub fn update(
        &self,
        id: u64,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Indicator, StoreError> {
        let now = now.trunc_subsecs(0);
        let mut inner = self.lock();
        let Some(mut ind) = inner.indicators.get(&id).cloned() else {
            return Err(StoreError::NotFound);
        };
        let mut errors = FieldErrors::new();
        let (status_name, status_id) = name_or_id(body, "status", "status_id");
        match (status_name, status_id) {
            (Some(n), _) => match status_by_name(&n) {
                Some(s) => ind.status = s,
                None => errors
                    .entry("status".into())
                    .or_default()
                    .push("The selected status is invalid.".into()),
            },
            (None, Some(sid)) => match status_by_id(sid) {
                Some(s) => ind.status = s,
                None => errors
                    .entry("status_id".into())
                    .or_default()
                    .push("The selected status id is invalid.".into()),
            },
            (None, None) => {}
        }
        if let Some(d) = body.get("description") {
            ind.description = d.as_str().map(str::to_string);
        }
        let old_expiry = ind.expires_at;
        if let Some(e) = body.get("expires_at") {
            match e {
                Value::Null => ind.expires_at = None,
                Value::String(s) => match parse_time(s) {
                    Some(t) => ind.expires_at = Some(t),
                    None => errors
                        .entry("expires_at".into())
                        .or_default()
                        .push("The expires_at does not match the format Y-m-d H:i:s.".into()),
                },
                _ => errors
                    .entry("expires_at".into())
                    .or_default()
                    .push("The expires_at must be a date.".into()),
            }
        }
        if !errors.is_empty() {
            return Err(StoreError::Fields(errors));
        }
        if let Some(t) = old_expiry {
            inner.expiring.remove(&(t, id));
        }
        if ind.status.name != "Expired" {
            ind.expired_at = None;
        }
        ind.updated_at = now;
        inner.index_expiry(&ind);
        inner.indicators.insert(id, ind.clone());
        Ok(ind)
    }

    /// Sets (or clears) the manual score.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn set_score(
        &self,
        id: u64,
        manual: Option<f64>,
        now: DateTime<Utc>,
    ) -> Result<Indicator, StoreError> {
        let mut inner = self.lock();
        let ind = inner.indicators.get_mut(&id).ok_or(StoreError::NotFound)?;
        ind.manual_score = manual;
        ind.updated_at = now.trunc_subsecs(0);
        Ok(ind.clone())
    }

    /// Deletes an indicator.
    pub fn delete(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let Some(ind) = inner.indicators.remove(&id) else {
            return false;
        };
        inner.unindex_expiry(&ind);
        let canonical = ind
            .indicator_type
            .canonical(&ind.value)
            .unwrap_or_else(|_| ind.value.clone());
        inner.by_key.remove(&(ind.indicator_type.id, canonical));
        true
    }

    /// Adds sources, attributes or tags to an indicator (the sub-resource POSTs).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn add_relations(
        &self,
        id: u64,
        new: &NewIndicator,
        now: DateTime<Utc>,
    ) -> Result<Indicator, StoreError> {
        let now = now.trunc_subsecs(0);
        let mut inner = self.lock();
        let Some(mut ind) = inner.indicators.get(&id).cloned() else {
            return Err(StoreError::NotFound);
        };
        inner.absorb(&mut ind, new, now);
        ind.generated_score = generated_score(&ind);
        ind.updated_at = now;
        ind.touched_at = now;
        inner.indicators.insert(id, ind.clone());
        Ok(ind)
    }

    /// Edits or removes one sub-resource by pivot id: `kind` is `attributes`, `sources` or
    /// `tags`; `new_value` edits an attribute's value, `None` removes.
    ///
    /// # Errors
    /// `NotFound` when the indicator or the pivot does not exist.
    pub fn edit_relation(
        &self,
        id: u64,
        kind: &str,
        pivot: u64,
        new_value: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Value>, StoreError> {
        let now = now.trunc_subsecs(0);
        let mut inner = self.lock();
        let ind = inner.indicators.get_mut(&id).ok_or(StoreError::NotFound)?;
        let result = match (kind, new_value) {
            ("attributes", Some(v)) => {
                let a = ind
                    .attributes
                    .iter_mut()
                    .find(|a| a.id == pivot)
                    .ok_or(StoreError::NotFound)?;
                a.value = v;
                a.updated_at = now;
                let wire = super::model::attribute_wire(id, a);
                Some(wire)
            }
            ("attributes", None) => {
                let before = ind.attributes.len();
                ind.attributes.retain(|a| a.id != pivot);
                if ind.attributes.len() == before {
                    return Err(StoreError::NotFound);
                }
                None
            }
            ("sources", None) => {
                let before = ind.sources.len();
                ind.sources
                    .retain(|s| s.id != pivot && s.source_id != pivot);
                if ind.sources.len() == before {
                    return Err(StoreError::NotFound);
                }
                None
            }
            ("tags", None) => {
                let before = ind.tags.len();
                ind.tags.retain(|t| t.id != pivot);
                if ind.tags.len() == before {
                    return Err(StoreError::NotFound);
                }
                None
            }
            _ => return Err(StoreError::NotFound),
        };
        ind.updated_at = now;
        ind.generated_score = generated_score(ind);
        Ok(result)
    }

    /// Every saved search.
    pub fn searches(&self) -> Vec<SavedSearch> {
        self.lock().searches.clone()
    }

    /// The saved search with this id, hash or exact name.
    pub fn search(&self, key: &str) -> Option<SavedSearch> {
        let inner = self.lock();
        let key = key.trim();
        inner
            .searches
            .iter()
            .find(|s| s.id.to_string() == key || s.hash == key || s.name == key)
            .cloned()
    }

    /// Saves a search.
    ///
    /// # Errors
    /// Field errors: a missing or taken name, or a `json` that is not an object.
    pub fn add_search(
        &self,
        name: &str,
        json: Value,
        now: DateTime<Utc>,
    ) -> Result<SavedSearch, StoreError> {
        let mut inner = self.lock();
        let mut errors = FieldErrors::new();
        if name.trim().is_empty() {
            errors
                .entry("name".into())
                .or_default()
                .push("The name field is required.".into());
        } else if inner.searches.iter().any(|s| s.name == name) {
            errors
                .entry("name".into())
                .or_default()
                .push("The name has already been taken.".into());
        }
        if !json.is_object() {
            errors
                .entry("json".into())
                .or_default()
                .push("The json must be an object.".into());
        }
        if !errors.is_empty() {
            return Err(StoreError::Fields(errors));
        }
        inner.next_search += 1;
        let id = inner.next_search;
        let search = SavedSearch {
            id,
            name: name.to_string(),
            hash: value_hash(&format!("saved-search-{id}-{name}")),
            json,
            created_at: now.trunc_subsecs(0),
        };
        inner.searches.push(search.clone());
        Ok(search)
    }

    /// Removes a saved search.
    pub fn delete_search(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.searches.len();
        inner.searches.retain(|s| s.id != id);
        inner.searches.len() != before
    }

    /// Indicators whose value contains `text` (case-insensitive), for `/api/search`.
    pub fn text_search(&self, text: &str, limit: usize) -> Vec<Indicator> {
        let needle = text.to_lowercase();
        self.lock()
            .indicators
            .values()
            .filter(|i| i.value.to_lowercase().contains(&needle))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Everything, in wire form (`GET /_sim/state`).
    pub fn snapshot(&self) -> Value {
        let inner = self.lock();
        let render = Render {
            with: [
                super::model::Relation::Attributes,
                super::model::Relation::Sources,
                super::model::Relation::Tags,
            ]
            .into_iter()
            .collect(),
            score_object: false,
        };
        json!({
            "indicators": inner.indicators.values().map(|i| indicator_wire(i, &render)).collect::<Vec<_>>(),
            "saved_searches": inner.searches.iter().map(|s| s.to_wire(false)).collect::<Vec<_>>(),
        })
    }

    /// Removes every indicator (saved searches and tokens stay).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.indicators.clear();
        inner.by_key.clear();
        inner.expiring.clear();
    }

    /// How many indicators are held.
    pub fn len(&self) -> usize {
        self.lock().indicators.len()
    }

    /// Whether no indicators are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pre-fills `count` realistic indicators and the default saved searches.
    pub fn seed(&self, count: usize, seed: u64, now: DateTime<Utc>) {
        let now = now.trunc_subsecs(0);
        let mut rng = StdRng::seed_from_u64(seed);
        let types = self.config.types.clone();
        let type_named = |name: &str| types.iter().find(|t| t.name == name).copied();
        const KINDS: [&str; 9] = [
            "FQDN",
            "IP Address",
            "URL",
            "SHA-256",
            "MD5",
            "SHA-1",
            "Email Address",
            "CIDR Block",
            "IPv6 Address",
        ];
        let mut made = Vec::with_capacity(count);
        for n in 0..count {
            let Some(t) = type_named(KINDS[n % KINDS.len()]) else {
                continue;
            };
            let value = sample_value(t.name, n, &mut rng);
            let Ok(canonical) = t.canonical(&value) else {
                continue;
            };
            let status = match rng.gen_range(0..20) {
                0..=13 => "Active",
                14..=15 => "Review",
                16..=17 => "Expired",
                18 => "Indirect",
                _ => "Whitelisted",
            };
            let source_count = rng.gen_range(1..=2);
            let mut sources = Vec::new();
            for _ in 0..source_count {
                let s = SOURCES[rng.gen_range(0..SOURCES.len())].to_string();
                if !sources.iter().any(|(n, _)| *n == s) {
                    sources.push((s, Some(rng.gen_range(2..=4u8))));
                }
            }
            let mut attributes = vec![(
                "Confidence".to_string(),
                ["Low", "Medium", "High"][rng.gen_range(0..3)].to_string(),
            )];
            if rng.gen_bool(0.6) {
                attributes.push((
                    "Malware Family".into(),
                    FAMILIES[rng.gen_range(0..FAMILIES.len())].into(),
                ));
            }
            if rng.gen_bool(0.3) {
                attributes.push(("Kill Chain Phase".into(), "Command and Control".into()));
            }
            let tags = if rng.gen_bool(0.5) {
                vec![TAGS[rng.gen_range(0..TAGS.len())].to_string()]
            } else {
                Vec::new()
            };
            let created = now - Duration::seconds(rng.gen_range(3600..60 * 24 * 3600));
            let expires_at = match status {
                "Expired" => Some(created + Duration::days(7)),
                _ if rng.gen_bool(0.3) => Some(now + Duration::days(rng.gen_range(1..90))),
                _ => None,
            };
            made.push((
                created,
                rng.gen_range(0..=10) as f64,
                NewIndicator {
                    value,
                    canonical,
                    indicator_type: t,
                    status: status_by_name(status),
                    description: rng
                        .gen_bool(0.4)
                        .then(|| DESCRIPTIONS[rng.gen_range(0..DESCRIPTIONS.len())].to_string()),
                    published_at: Some(created),
                    expires_at,
                    sources,
                    attributes,
                    tags,
                },
            ));
        }
        made.sort_by_key(|(t, _, _)| *t);
        for (created, manual, new) in made {
            let Ok(mut done) = self.create(vec![new], created) else {
                continue;
            };
            if let Some(ind) = done.pop() {
                let updated = created + Duration::seconds(rng.gen_range(0..7 * 24 * 3600));
                let updated = updated.min(now);
                let mut inner = self.lock();
                if let Some(stored) = inner.indicators.get_mut(&ind.id) {
                    stored.manual_score = rng.gen_bool(0.5).then_some(manual);
                    stored.updated_at = updated;
                    stored.touched_at = updated;
                    if stored.status.name == "Expired" {
                        stored.expired_at = stored.expires_at;
                    }
                }
            }
        }
        for (name, api_query) in default_searches() {
            let json = json!({
                "ui_query": {"criteria": {}, "filters": {}, "objects": {"current": "indicators", "selected": []}},
                "api_query": api_query,
            });
            let _ = self.add_search(name, json, now - Duration::days(90));
        }
    }
}

/// A generated score from the sources' count and the Confidence attribute (0–10).
fn generated_score(ind: &Indicator) -> f64 {
    let confidence = ind
        .attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case("Confidence"))
        .map_or(0.0, |a| match a.value.to_ascii_lowercase().as_str() {
            "high" => 4.0,
            "medium" => 2.0,
            _ => 1.0,
        });
    (ind.sources.len() as f64 * 2.0 + confidence).min(10.0)
}

/// The saved searches every emulator starts with: their names and `api_query`.
pub fn default_searches() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Active Indicators",
            json!({"criteria": {}, "filters": {"+and": [{"status_name": "Active"}]}}),
        ),
        (
            "High Score Network Indicators",
            json!({"criteria": {}, "filters": {"+and": [
                {"+or": [{"type_name": "FQDN"}, {"type_name": "IP Address"}, {"type_name": "URL"}]},
                {"score": {"+gte": 7}},
                {"status_name": "Active"}
            ]}}),
        ),
        (
            "Vision One Blocklist",
            json!({"criteria": {}, "filters": {"+and": [
                {"+or": [
                    {"type_name": "FQDN"}, {"type_name": "IP Address"}, {"type_name": "URL"},
                    {"type_name": "Email Address"}, {"type_name": "SHA-1"}, {"type_name": "SHA-256"}
                ]},
                {"status_name": "Active"}
            ]}}),
        ),
        (
            "Whitelisted Indicators",
            json!({"criteria": {}, "filters": {"status_name": "Whitelisted"}}),
        ),
    ]
}

const SOURCES: &[&str] = &[
    "Emerging Threats",
    "abuse.ch URLhaus",
    "abuse.ch MalwareBazaar",
    "AlienVault OTX",
    "CISA AIS",
    "Analyst",
    "Phishing Mailbox",
];

const FAMILIES: &[&str] = &[
    "Emotet",
    "QakBot",
    "AgentTesla",
    "Cobalt Strike",
    "IcedID",
    "RedLine",
    "AsyncRAT",
];

const TAGS: &[&str] = &["phishing", "c2", "ransomware", "botnet", "apt", "malspam"];

const DESCRIPTIONS: &[&str] = &[
    "Observed in a phishing campaign.",
    "Command-and-control server.",
    "Payload download location.",
    "Seen in sandbox detonation.",
];

const WORDS: &[&str] = &[
    "update", "secure", "login", "cdn", "mail", "portal", "files", "cloud", "verify", "account",
];

const TLDS: &[&str] = &["example", "test", "invalid", "example.net", "example.org"];

fn hex(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

fn sample_value(type_name: &str, n: usize, rng: &mut StdRng) -> String {
    let word = WORDS[rng.gen_range(0..WORDS.len())];
    let tld = TLDS[rng.gen_range(0..TLDS.len())];
    match type_name {
        "FQDN" => format!("{word}-{n}.{tld}"),
        "IP Address" => {
            let nets = [(198, 51, 100), (203, 0, 113), (192, 0, 2)];
            let (a, b, c) = nets[n % nets.len()];
            // Spread over the third octet too so that large seeds stay unique.
            format!("{a}.{b}.{}.{}", c + (n / 765) % 50, (n / 3) % 255 + 1)
        }
        "URL" => format!(
            "http://{word}-{n}.{tld}/{}/{}.php",
            WORDS[n % WORDS.len()],
            hex(rng, 6)
        ),
        "SHA-256" => hex(rng, 64),
        "SHA-1" => hex(rng, 40),
        "MD5" => hex(rng, 32),
        "Email Address" => format!("{word}.{n}@mail.{tld}"),
        "CIDR Block" => format!("10.{}.{}.0/24", (n / 256) % 256, n % 256),
        "IPv6 Address" => format!("2001:db8:{:x}::{:x}", n / 65536, n % 65536 + 1),
        _ => format!("{word}-{n}"),
    }
}
