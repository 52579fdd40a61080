//! What the emulator holds: events with their attributes, the tag registry, the organisation, and
//! the operations behind the routes — adds and edits with MISP's validation, soft and hard
//! deletes, tagging, the two `restSearch`es, the static feed, and the seed data behind `--events`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Map, Value, json};

use super::model::{
    Attribute, AttributeRender, Event, Org, Tag, attribute_type, attribute_wire, default_tags,
    event_head, event_wire, feed_event, manifest_entry, tags_wire,
};
use super::search::{Filters, loose_bool};

/// What an event add does with an attribute that fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidAttribute {
    /// The event is saved without it; the answer lists it under `errors`.
    Drop,
    /// The whole event is refused.
    Reject,
}

/// The order attributes come back from `/attributes/restSearch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttributeOrder {
    /// By attribute id, ascending.
    Id,
    /// By attribute timestamp, then id.
    Timestamp,
}

/// A refusal in MISP's envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Fail {
    /// The HTTP status.
    pub status: u16,
    /// `name` and `message`.
    pub message: String,
    /// Validation details, when any.
    pub errors: Option<Value>,
    /// A `Location` header (an existing event's URL).
    pub location: Option<String>,
}

impl Fail {
    /// A refusal.
    pub fn new(status: u16, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
            errors: None,
            location: None,
        }
    }
}

/// The settings the store needs (taken from `Args`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) invalid_attribute: InvalidAttribute,
    pub(crate) validation_status: u16,
    pub(crate) default_distribution: u8,
    pub(crate) default_threat_level: u8,
    pub(crate) tags_include_event: bool,
    pub(crate) attribute_order: AttributeOrder,
    pub(crate) max_limit: usize,
    pub(crate) org_name: String,
    pub(crate) user_email: String,
}

#[derive(Debug, Default)]
struct Inner {
    events: BTreeMap<u64, Event>,
    tags: BTreeMap<u64, Tag>,
    tag_ids: HashMap<String, u64>,
    next_event: u64,
    next_attribute: u64,
    next_tag: u64,
}

impl Inner {
    fn tag_id(&mut self, name: &str, colour: Option<&str>) -> u64 {
        if let Some(id) = self.tag_ids.get(name) {
            return *id;
        }
        self.next_tag += 1;
        let id = self.next_tag;
        let colour = colour.map_or_else(|| colour_for(name), str::to_string);
        self.tags.insert(
            id,
            Tag {
                id,
                name: name.to_string(),
                colour,
                exportable: true,
                hide_tag: false,
                numerical_value: None,
            },
        );
        self.tag_ids.insert(name.to_string(), id);
        id
    }

    fn lookup(&self) -> impl Fn(u64) -> Option<Tag> + '_ {
        move |id| self.tags.get(&id).cloned()
    }

    fn event_key(&self, key: &str) -> Option<u64> {
        let key = key.trim();
        if let Ok(id) = key.parse::<u64>() {
            return self.events.contains_key(&id).then_some(id);
        }
        self.events
            .values()
            .find(|e| e.uuid.eq_ignore_ascii_case(key))
            .map(|e| e.id)
    }

    fn attribute_key(&self, key: &str) -> Option<(u64, usize)> {
        let key = key.trim();
        let by_id = key.parse::<u64>().ok();
        self.events.values().find_map(|e| {
            e.attributes
                .iter()
                .position(|a| Some(a.id) == by_id || a.uuid.eq_ignore_ascii_case(key))
                .map(|i| (e.id, i))
        })
    }
}

fn colour_for(name: &str) -> String {
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("#{:06x}", h & 0x00ff_ffff)
}

/// A fresh random UUID (version 4).
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn valid_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text.trim()).is_ok()
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn small(
    v: Option<&Value>,
    name: &str,
    range: std::ops::RangeInclusive<u8>,
) -> Result<Option<u8>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(Some(v))
            .and_then(|t| t.trim().parse::<u8>().ok())
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| format!("Invalid {name}.")),
    }
}

/// Tag names from a `Tag` list (`[{"name": …}]` or `["…"]`), with their `local` flag.
fn tag_names(v: Option<&Value>) -> Vec<(String, bool, Option<String>)> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|t| match t {
            Value::String(s) => Some((s.clone(), false, None)),
            Value::Object(m) => {
                let name = m.get("name").and_then(Value::as_str)?.trim().to_string();
                let local = loose_bool(m.get("local")).ok().flatten().unwrap_or(false);
                let colour = m.get("colour").and_then(Value::as_str).map(str::to_string);
                Some((name, local, colour))
            }
            _ => None,
        })
        .filter(|(n, _, _)| !n.is_empty())
        .collect()
}

/// An attribute that passed validation, before it gets an id.
#[derive(Debug, Clone)]
struct NewAttribute {
    uuid: String,
    kind: &'static str,
    category: String,
    value: String,
    to_ids: bool,
    comment: String,
    distribution: u8,
    disable_correlation: bool,
    first_seen: Option<String>,
    last_seen: Option<String>,
    tags: Vec<(String, bool, Option<String>)>,
}

fn parse_attribute(v: &Value) -> Result<NewAttribute, Map<String, Value>> {
    let v = v.get("Attribute").unwrap_or(v);
    let mut errors = Map::new();
    let mut fail = |field: &str, message: String| {
        errors.insert(field.to_string(), json!([message]));
    };
    if !v.is_object() {
        fail("value", "An attribute must be an object.".into());
        return Err(errors);
    }
    let kind_name = text(v.get("type")).unwrap_or_default();
    let kind = attribute_type(kind_name.trim());
    if kind.is_none() {
        fail(
            "type",
            if kind_name.is_empty() {
                "Type cannot be empty.".into()
            } else {
                format!("Options: the type {kind_name} is not known.")
            },
        );
    }
    let value = text(v.get("value")).unwrap_or_default();
    let checked = kind.map(|k| k.check(&value));
    if let Some(Err(e)) = &checked {
        fail("value", e.clone());
    }
    let category = text(v.get("category"));
    if let (Some(k), Some(c)) = (kind, &category)
        && !k.categories.contains(&c.as_str())
    {
        fail(
            "category",
            format!(
                "Options depend on the selected type; {c} is not one for {}.",
                k.name
            ),
        );
    }
    let to_ids = match loose_bool(v.get("to_ids")) {
        Ok(b) => b,
        Err(e) => {
            fail("to_ids", e.0);
            None
        }
    };
    let distribution = match small(v.get("distribution"), "distribution", 0..=5) {
        Ok(d) => d.unwrap_or(5),
        Err(e) => {
            fail("distribution", e);
            5
        }
    };
    let uuid = match text(v.get("uuid")) {
        Some(u) if valid_uuid(&u) => u.trim().to_ascii_lowercase(),
        Some(_) => {
            fail("uuid", "Please provide a valid RFC 4122 UUID".into());
            String::new()
        }
        None => new_uuid(),
    };
    let (Some(kind), Some(Ok(value))) = (kind, checked) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewAttribute {
        uuid,
        kind: kind.name,
        category: category.unwrap_or_else(|| kind.default_category.to_string()),
        value,
        to_ids: to_ids.unwrap_or(kind.to_ids),
        comment: text(v.get("comment")).unwrap_or_default(),
        distribution,
        disable_correlation: loose_bool(v.get("disable_correlation"))
            .ok()
            .flatten()
            .unwrap_or(false),
        first_seen: text(v.get("first_seen")),
        last_seen: text(v.get("last_seen")),
        tags: tag_names(v.get("Tag")),
    })
}

/// What `add_attributes` made: the stored attributes as the API shows them, the per-item
/// errors keyed by position, and whether the request held one attribute (not a list).
pub type AddedAttributes = (Vec<Value>, Map<String, Value>, bool);

/// The store, behind one lock.
#[derive(Debug)]
pub struct State {
    config: Config,
    org: Org,
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(config: Config) -> State {
        let org = Org {
            id: 1,
            name: config.org_name.clone(),
            uuid: "5c6ed0f4-6f0c-4b7d-9a3e-1c2d3e4f5a6b".into(),
        };
        let state = State {
            config,
            org,
            inner: Mutex::new(Inner::default()),
        };
        {
            let mut inner = state.lock();
            for (name, colour) in default_tags() {
                inner.tag_id(name, Some(colour));
            }
        }
        state
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The instance's organisation.
    pub fn org(&self) -> &Org {
        &self.org
    }

    fn attach_new(inner: &mut Inner, event_id: u64, new: NewAttribute, now: i64) -> Attribute {
        inner.next_attribute += 1;
        let tags = new
            .tags
            .iter()
            .map(|(n, local, colour)| (inner.tag_id(n, colour.as_deref()), *local))
            .collect();
        Attribute {
            id: inner.next_attribute,
            event_id,
            uuid: new.uuid,
            kind: new.kind,
            category: new.category,
            value: new.value,
            to_ids: new.to_ids,
            comment: new.comment,
            deleted: false,
            timestamp: now,
            distribution: new.distribution,
            disable_correlation: new.disable_correlation,
            first_seen: new.first_seen,
            last_seen: new.last_seen,
            tags,
        }
    }

    fn duplicate(e: &Event, new: &NewAttribute) -> bool {
        e.attributes.iter().any(|a| {
            !a.deleted && a.kind == new.kind && a.category == new.category && a.value == new.value
        })
    }

    /// `POST /events/add`: the event (bare or under `Event`) with its attributes and tags.
    ///
    /// # Errors
    /// Validation (`--validation-status`), or an existing UUID (403 with a `Location`).
    pub fn add_event(
        &self,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<(Event, Option<Value>), Fail> {
        let body = body.get("Event").unwrap_or(body);
        let Value::Object(map) = body else {
            return Err(self.invalid(
                "Could not add Event",
                json!({"Event": ["The request body must be an event object."]}),
            ));
        };
        let mut errors = Map::new();
        let info = text(map.get("info")).unwrap_or_default();
        if info.trim().is_empty() {
            errors.insert("info".into(), json!(["Info cannot be empty."]));
        }
        let mut field = |name: &str, range: std::ops::RangeInclusive<u8>| match small(
            map.get(name),
            name,
            range,
        ) {
            Ok(v) => v,
            Err(e) => {
                errors.insert(name.into(), json!([e]));
                None
            }
        };
        let threat_level = field("threat_level_id", 1..=4);
        let analysis = field("analysis", 0..=2);
        let distribution = field("distribution", 0..=4);
        let date = match text(map.get("date")) {
            None => now.date_naive(),
            Some(d) => match NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
                Ok(d) => d,
                Err(_) => {
                    errors.insert(
                        "date".into(),
                        json!(["Expected a date in the format YYYY-MM-DD."]),
                    );
                    now.date_naive()
                }
            },
        };
        let uuid = match text(map.get("uuid")) {
            Some(u) if valid_uuid(&u) => u.trim().to_ascii_lowercase(),
            Some(_) => {
                errors.insert(
                    "uuid".into(),
                    json!(["Please provide a valid RFC 4122 UUID"]),
                );
                String::new()
            }
            None => new_uuid(),
        };
        let mut attribute_errors = Map::new();
        let mut attributes = Vec::new();
        if let Some(Value::Array(items)) = map.get("Attribute") {
            for (i, item) in items.iter().enumerate() {
                match parse_attribute(item) {
                    Ok(a) => attributes.push(a),
                    Err(e) => {
                        attribute_errors.insert(i.to_string(), Value::Object(e));
                    }
                }
            }
        }
        if !errors.is_empty()
            || (!attribute_errors.is_empty()
                && self.config.invalid_attribute == InvalidAttribute::Reject)
        {
            let mut all = json!({"Event": Value::Object(errors)});
            if !attribute_errors.is_empty() {
                all["Attribute"] = Value::Object(attribute_errors);
            }
            return Err(self.invalid("Could not add Event", all));
        }
        let mut inner = self.lock();
        if let Some(existing) = inner.events.values().find(|e| e.uuid == uuid) {
            let mut fail = Fail::new(
                403,
                "Event already exists, if you would like to edit it, use the url in the location header.",
            );
            fail.location = Some(format!("/events/view/{}", existing.id));
            return Err(fail);
        }
        let ts = now.timestamp();
        inner.next_event += 1;
        let id = inner.next_event;
        let published = loose_bool(map.get("published"))
            .ok()
            .flatten()
            .unwrap_or(false);
        let tags = tag_names(map.get("Tag"))
            .into_iter()
            .map(|(n, l, c)| (inner.tag_id(&n, c.as_deref()), l))
            .collect();
        let mut event = Event {
            id,
            uuid,
            info: info.trim().to_string(),
            date,
            threat_level_id: threat_level.unwrap_or(self.config.default_threat_level),
            analysis: analysis.unwrap_or(0),
            distribution: distribution.unwrap_or(self.config.default_distribution),
            published,
            timestamp: ts,
            publish_timestamp: if published { ts } else { 0 },
            orgc: self.org.clone(),
            org: self.org.clone(),
            tags,
            attributes: Vec::new(),
            creator_email: self.config.user_email.clone(),
        };
        for a in attributes {
            if Self::duplicate(&event, &a) {
                continue;
            }
            let made = Self::attach_new(&mut inner, id, a, ts);
            event.attributes.push(made);
        }
        inner.events.insert(id, event.clone());
        let report = (!attribute_errors.is_empty()).then(|| json!({"Attribute": attribute_errors}));
        Ok((event, report))
    }

    fn invalid(&self, message: &str, errors: Value) -> Fail {
        Fail {
            status: self.config.validation_status,
            message: message.into(),
            errors: Some(errors),
            location: None,
        }
    }

    /// `POST /events/edit/{id}`: changes the event's fields, updates attributes with known UUIDs,
    /// adds new ones, attaches tags; unpublishes unless `published` is sent.
    ///
    /// # Errors
    /// No such event (404), a stale `timestamp` or bad fields (`--validation-status`).
    pub fn edit_event(&self, key: &str, body: &Value, now: DateTime<Utc>) -> Result<Event, Fail> {
        let body = body.get("Event").unwrap_or(body);
        let Value::Object(map) = body else {
            return Err(self.invalid(
                "Could not edit Event",
                json!({"Event": ["The request body must be an event object."]}),
            ));
        };
        let mut inner = self.lock();
        let id = inner
            .event_key(key)
            .ok_or_else(|| Fail::new(404, "Invalid event"))?;
        let Some(mut event) = inner.events.get(&id).cloned() else {
            return Err(Fail::new(404, "Invalid event"));
        };
        if let Some(t) = text(map.get("timestamp")).and_then(|t| t.parse::<i64>().ok())
            && t <= event.timestamp
        {
            return Err(self.invalid(
                "Event could not be saved: Event in the request not newer than the local copy.",
                json!({"Event": ["Event in the request not newer than the local copy."]}),
            ));
        }
        let mut errors = Map::new();
        if let Some(info) = text(map.get("info")) {
            if info.trim().is_empty() {
                errors.insert("info".into(), json!(["Info cannot be empty."]));
            } else {
                event.info = info.trim().to_string();
            }
        }
        for (name, range) in [
            ("threat_level_id", 1..=4),
            ("analysis", 0..=2),
            ("distribution", 0..=4),
        ] {
            match small(map.get(name), name, range) {
                Ok(Some(v)) => match name {
                    "threat_level_id" => event.threat_level_id = v,
                    "analysis" => event.analysis = v,
                    _ => event.distribution = v,
                },
                Ok(None) => {}
                Err(e) => {
                    errors.insert(name.into(), json!([e]));
                }
            }
        }
        if let Some(d) = text(map.get("date")) {
            match NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
                Ok(d) => event.date = d,
                Err(_) => {
                    errors.insert(
                        "date".into(),
                        json!(["Expected a date in the format YYYY-MM-DD."]),
                    );
                }
            }
        }
        let mut new_attrs = Vec::new();
        if let Some(Value::Array(items)) = map.get("Attribute") {
            for (i, item) in items.iter().enumerate() {
                match parse_attribute(item) {
                    Ok(a) => new_attrs.push(a),
                    Err(e) => {
                        errors.insert(format!("Attribute.{i}"), Value::Object(e));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(self.invalid("Could not edit Event", Value::Object(errors)));
        }
        let ts = now.timestamp().max(event.timestamp + 1);
        for a in new_attrs {
            if let Some(existing) = event.attributes.iter_mut().find(|x| x.uuid == a.uuid) {
                existing.category.clone_from(&a.category);
                existing.value.clone_from(&a.value);
                existing.kind = a.kind;
                existing.to_ids = a.to_ids;
                existing.comment.clone_from(&a.comment);
                existing.distribution = a.distribution;
                existing.timestamp = ts;
                for (n, l, c) in &a.tags {
                    let tid = inner.tag_id(n, c.as_deref());
                    if !existing.tags.iter().any(|(t, _)| *t == tid) {
                        existing.tags.push((tid, *l));
                    }
                }
            } else if !Self::duplicate(&event, &a) {
                let made = Self::attach_new(&mut inner, id, a, ts);
                event.attributes.push(made);
            }
        }
        for (n, l, c) in tag_names(map.get("Tag")) {
            let tid = inner.tag_id(&n, c.as_deref());
            if !event.tags.iter().any(|(t, _)| *t == tid) {
                event.tags.push((tid, l));
            }
        }
        let published = loose_bool(map.get("published"))
            .ok()
            .flatten()
            .unwrap_or(false);
        event.published = published;
        if published {
            event.publish_timestamp = ts;
        }
        event.timestamp = ts;
        inner.events.insert(id, event.clone());
        Ok(event)
    }

    /// One event by id or UUID.
    pub fn event(&self, key: &str) -> Option<Event> {
        let inner = self.lock();
        let id = inner.event_key(key)?;
        inner.events.get(&id).cloned()
    }

    /// The event as `{"Event": …}` (deleted attributes only when `with_deleted`).
    pub fn event_json(&self, e: &Event, with_deleted: bool) -> Value {
        let inner = self.lock();
        event_wire(e, &|a| with_deleted || !a.deleted, false, &inner.lookup())
    }

    /// Deletes an event.
    pub fn delete_event(&self, key: &str) -> Option<u64> {
        let mut inner = self.lock();
        let id = inner.event_key(key)?;
        inner.events.remove(&id).map(|e| e.id)
    }

    /// Publishes (or unpublishes) an event.
    pub fn set_published(&self, key: &str, published: bool, now: DateTime<Utc>) -> Option<u64> {
        let mut inner = self.lock();
        let id = inner.event_key(key)?;
        let e = inner.events.get_mut(&id)?;
        e.published = published;
        if published {
            e.publish_timestamp = now.timestamp();
        }
        Some(id)
    }

    /// `POST /attributes/add/{event}`: one attribute or a list; returns the stored ones and the
    /// per-item errors.
    ///
    /// # Errors
    /// No such event (404); a single invalid attribute (`--validation-status`).
    pub fn add_attributes(
        &self,
        key: &str,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<AddedAttributes, Fail> {
        let mut inner = self.lock();
        let id = inner
            .event_key(key)
            .ok_or_else(|| Fail::new(404, "Invalid event."))?;
        let (items, single) = match body {
            Value::Array(items) => (items.clone(), false),
            other => (vec![other.clone()], true),
        };
        let mut made = Vec::new();
        let mut errors = Map::new();
        let ts = now.timestamp();
        for (i, item) in items.iter().enumerate() {
            let parsed = parse_attribute(item);
            let Some(event) = inner.events.get(&id) else {
                return Err(Fail::new(404, "Invalid event."));
            };
            match parsed {
                Ok(a) if Self::duplicate(event, &a) => {
                    errors.insert(
                        i.to_string(),
                        json!({"value": ["A similar attribute already exists for this event."]}),
                    );
                }
                Ok(a) => {
                    let attr = Self::attach_new(&mut inner, id, a, ts);
                    if let Some(event) = inner.events.get_mut(&id) {
                        event.attributes.push(attr.clone());
                        event.timestamp = ts;
                        event.published = false;
                        made.push(attr);
                    }
                }
                Err(e) => {
                    errors.insert(i.to_string(), Value::Object(e));
                }
            }
        }
        if single && made.is_empty() {
            let detail = errors.values().next().cloned().unwrap_or(Value::Null);
            return Err(self.invalid("Could not add Attribute", detail));
        }
        let Some(event) = inner.events.get(&id) else {
            return Err(Fail::new(404, "Invalid event."));
        };
        let lookup = inner.lookup();
        let wire = made
            .iter()
            .map(|a| attribute_wire(a, event, AttributeRender::default(), &lookup))
            .collect();
        Ok((wire, errors, single))
    }

    /// One attribute (by id or UUID) with its event, as `{"Attribute": …}`.
    pub fn attribute_json(&self, key: &str) -> Option<Value> {
        let inner = self.lock();
        let (eid, i) = inner.attribute_key(key)?;
        let e = inner.events.get(&eid)?;
        let a = e.attributes.get(i)?;
        Some(
            json!({"Attribute": attribute_wire(a, e, AttributeRender::default(), &inner.lookup())}),
        )
    }

    /// Changes an attribute's fields (`value`, `category`, `to_ids`, `comment`, `type`).
    ///
    /// # Errors
    /// No such attribute (404) or an invalid change.
    pub fn edit_attribute(
        &self,
        key: &str,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Fail> {
        let body = body.get("Attribute").unwrap_or(body);
        let mut inner = self.lock();
        let (eid, i) = inner
            .attribute_key(key)
            .ok_or_else(|| Fail::new(404, "Invalid attribute"))?;
        let Some(current) = inner
            .events
            .get(&eid)
            .and_then(|e| e.attributes.get(i))
            .cloned()
        else {
            return Err(Fail::new(404, "Invalid attribute"));
        };
        let mut merged = json!({
            "type": current.kind, "value": current.value, "category": current.category,
            "to_ids": current.to_ids, "comment": current.comment, "uuid": current.uuid,
            "distribution": current.distribution,
        });
        if let (Value::Object(m), Value::Object(b)) = (&mut merged, body) {
            for k in [
                "type",
                "value",
                "category",
                "to_ids",
                "comment",
                "distribution",
            ] {
                if let Some(v) = b.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
        }
        let new = parse_attribute(&merged)
            .map_err(|e| self.invalid("Could not edit Attribute", Value::Object(e)))?;
        let ts = now.timestamp().max(current.timestamp + 1);
        let Some(event) = inner.events.get_mut(&eid) else {
            return Err(Fail::new(404, "Invalid attribute"));
        };
        let Some(a) = event.attributes.get_mut(i) else {
            return Err(Fail::new(404, "Invalid attribute"));
        };
        a.kind = new.kind;
        a.value = new.value;
        a.category = new.category;
        a.to_ids = new.to_ids;
        a.comment = new.comment;
        a.distribution = new.distribution;
        a.timestamp = ts;
        event.timestamp = ts;
        event.published = false;
        let (Some(e), lookup) = (inner.events.get(&eid), inner.lookup()) else {
            return Err(Fail::new(404, "Invalid attribute"));
        };
        let a = e
            .attributes
            .get(i)
            .ok_or_else(|| Fail::new(404, "Invalid attribute"))?;
        Ok(json!({"Attribute": attribute_wire(a, e, AttributeRender::default(), &lookup)}))
    }

    /// Deletes an attribute: soft (`deleted: true`) or hard (gone).
    pub fn delete_attribute(&self, key: &str, hard: bool, now: DateTime<Utc>) -> Option<u64> {
        let mut inner = self.lock();
        let (eid, i) = inner.attribute_key(key)?;
        let e = inner.events.get_mut(&eid)?;
        let id = e.attributes.get(i)?.id;
        if hard {
            e.attributes.remove(i);
        } else if let Some(a) = e.attributes.get_mut(i) {
            a.deleted = true;
            a.timestamp = now.timestamp();
        }
        e.timestamp = now.timestamp();
        Some(id)
    }

    /// `deleteSelected`: the listed attribute ids of an event (or `all`).
    pub fn delete_selected(
        &self,
        key: &str,
        ids: Option<Vec<u64>>,
        hard: bool,
        now: DateTime<Utc>,
    ) -> Option<usize> {
        let mut inner = self.lock();
        let eid = inner.event_key(key)?;
        let e = inner.events.get_mut(&eid)?;
        let chosen = |a: &Attribute| ids.as_ref().is_none_or(|ids| ids.contains(&a.id));
        let before = e.attributes.iter().filter(|a| !a.deleted).count();
        if hard {
            e.attributes.retain(|a| !chosen(a));
        } else {
            for a in e.attributes.iter_mut().filter(|a| chosen(a)) {
                a.deleted = true;
                a.timestamp = now.timestamp();
            }
        }
        e.timestamp = now.timestamp();
        Some(before - e.attributes.iter().filter(|a| !a.deleted).count())
    }

    /// Every tag.
    pub fn tags(&self) -> Vec<Tag> {
        self.lock().tags.values().cloned().collect()
    }

    /// One tag by id or exact name.
    pub fn tag(&self, key: &str) -> Option<Tag> {
        let inner = self.lock();
        let id = key
            .trim()
            .parse::<u64>()
            .ok()
            .or_else(|| inner.tag_ids.get(key).copied())?;
        inner.tags.get(&id).cloned()
    }

    /// Makes a tag.
    ///
    /// # Errors
    /// The name is empty or taken.
    pub fn add_tag(&self, name: &str, colour: Option<&str>, exportable: bool) -> Result<Tag, Fail> {
        let name = name.trim();
        if name.is_empty() {
            return Err(self.invalid(
                "Could not add Tag",
                json!({"name": ["A name is required."]}),
            ));
        }
        let mut inner = self.lock();
        if inner.tag_ids.contains_key(name) {
            return Err(self.invalid(
                "Could not add Tag",
                json!({"name": ["A similar name already exists."]}),
            ));
        }
        let id = inner.tag_id(name, colour);
        let tag = inner
            .tags
            .get_mut(&id)
            .ok_or_else(|| Fail::new(500, "Could not add Tag"))?;
        tag.exportable = exportable;
        Ok(tag.clone())
    }

    /// Attaches (or detaches) a tag by id or name to the event or attribute with this UUID (or
    /// id); attaching an unknown tag name creates it.
    ///
    /// # Errors
    /// No such event, attribute or tag (404).
    pub fn tag_object(
        &self,
        uuid: &str,
        tag: &str,
        local: bool,
        attach: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Fail> {
        let mut inner = self.lock();
        let tag_id = match tag.trim().parse::<u64>() {
            Ok(id) if inner.tags.contains_key(&id) => id,
            Ok(_) => return Err(Fail::new(404, "Invalid Tag.")),
            Err(_) if attach => inner.tag_id(tag.trim(), None),
            Err(_) => *inner
                .tag_ids
                .get(tag.trim())
                .ok_or_else(|| Fail::new(404, "Invalid Tag."))?,
        };
        let ts = now.timestamp();
        if let Some(eid) = inner
            .events
            .values()
            .find(|e| e.uuid.eq_ignore_ascii_case(uuid.trim()))
            .map(|e| e.id)
            && let Some(e) = inner.events.get_mut(&eid)
        {
            if attach {
                if !e.tags.iter().any(|(t, _)| *t == tag_id) {
                    e.tags.push((tag_id, local));
                }
            } else {
                e.tags.retain(|(t, _)| *t != tag_id);
            }
            e.timestamp = ts;
            return Ok(());
        }
        let (eid, i) = inner
            .attribute_key(uuid)
            .ok_or_else(|| Fail::new(404, "Invalid target."))?;
        let e = inner
            .events
            .get_mut(&eid)
            .ok_or_else(|| Fail::new(404, "Invalid target."))?;
        let a = e
            .attributes
            .get_mut(i)
            .ok_or_else(|| Fail::new(404, "Invalid target."))?;
        if attach {
            if !a.tags.iter().any(|(t, _)| *t == tag_id) {
                a.tags.push((tag_id, local));
            }
        } else {
            a.tags.retain(|(t, _)| *t != tag_id);
        }
        a.timestamp = ts;
        e.timestamp = ts;
        Ok(())
    }

    /// `/attributes/restSearch`: the page of matching attributes and the total that match.
    pub fn search_attributes(&self, f: &Filters) -> (usize, Vec<Value>) {
        let inner = self.lock();
        let lookup = inner.lookup();
        let mut hits: Vec<(&Attribute, &Event)> = inner
            .events
            .values()
            .filter(|e| f.event_matches(e, &lookup, false))
            .flat_map(|e| e.attributes.iter().map(move |a| (a, e)))
            .filter(|(a, e)| {
                f.attribute_matches(a, e, &lookup, self.config.tags_include_event, false)
            })
            .collect();
        match self.config.attribute_order {
            AttributeOrder::Id => hits.sort_by_key(|(a, _)| a.id),
            AttributeOrder::Timestamp => hits.sort_by_key(|(a, _)| (a.timestamp, a.id)),
        }
        let total = hits.len();
        let render = AttributeRender {
            include_event_tags: f.include_event_tags,
            include_event_uuid: f.include_event_uuid,
            include_decay_score: f.include_decay_score,
            with_event: true,
        };
        let page = self.page(f, total);
        let out = hits[page.0..page.1]
            .iter()
            .map(|(a, e)| attribute_wire(a, e, render, &lookup))
            .collect();
        (total, out)
    }

    fn page(&self, f: &Filters, total: usize) -> (usize, usize) {
        let limit = f
            .limit
            .filter(|l| *l > 0)
            .map(|l| l.min(self.config.max_limit));
        match limit {
            None => (0, total),
            Some(limit) => {
                let page = f.page.unwrap_or(1).max(1);
                let start = (page - 1).saturating_mul(limit).min(total);
                (start, start.saturating_add(limit).min(total))
            }
        }
    }

    /// `/events/restSearch`: matching events (with only the matching attributes when
    /// attribute-level filters are given) and the total.
    pub fn search_events(&self, f: &Filters) -> (usize, Vec<Value>) {
        let inner = self.lock();
        let lookup = inner.lookup();
        let attribute_level = !f.no_attribute_filters() || f.tags.is_some() || f.uuid.is_some();
        let matching: Vec<&Event> = inner
            .events
            .values()
            .filter(|e| f.event_matches(e, &lookup, true))
            .filter(|e| {
                !attribute_level
                    || e.attributes
                        .iter()
                        .any(|a| f.attribute_matches(a, e, &lookup, true, true))
                    || (f.no_attribute_filters()
                        && f.uuid.as_ref().is_some_and(|u| u.matches(&[&e.uuid])))
            })
            .collect();
        let total = matching.len();
        let page = self.page(f, total);
        let out = matching[page.0..page.1]
            .iter()
            .map(|e| {
                let keep = |a: &Attribute| {
                    if f.no_attribute_filters() {
                        f.deleted.is_none_or(|d| a.deleted == d)
                    } else {
                        f.attribute_matches(a, e, &lookup, true, true)
                    }
                };
                event_wire(e, &keep, f.metadata, &lookup)
            })
            .collect();
        (total, out)
    }

    /// `/events/index`: event heads with `EventTag`, newest first, paged.
    pub fn index(&self, f: &Filters) -> Vec<Value> {
        let inner = self.lock();
        let lookup = inner.lookup();
        let mut matching: Vec<&Event> = inner
            .events
            .values()
            .filter(|e| f.event_matches(e, &lookup, true))
            .filter(|e| {
                f.tags.as_ref().is_none_or(|t| {
                    let names: Vec<String> = e
                        .tags
                        .iter()
                        .filter_map(|(id, _)| lookup(*id).map(|t| t.name))
                        .collect();
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    t.matches(&refs)
                })
            })
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse(e.id));
        let page = self.page(f, matching.len());
        matching[page.0..page.1]
            .iter()
            .map(|e| {
                let mut head = event_head(e);
                let tags: Vec<Value> = tags_wire(&e.tags, &lookup)
                    .into_iter()
                    .map(|t| json!({"Tag": t}))
                    .collect();
                head.insert("EventTag".into(), Value::Array(tags));
                Value::Object(head)
            })
            .collect()
    }

    /// The static feed of published events: `manifest.json`.
    pub fn feed_manifest(&self) -> Value {
        let inner = self.lock();
        let lookup = inner.lookup();
        let map: Map<String, Value> = inner
            .events
            .values()
            .filter(|e| e.published)
            .map(|e| (e.uuid.clone(), manifest_entry(e, &lookup)))
            .collect();
        Value::Object(map)
    }

    /// One published event in the feed format.
    pub fn feed_event(&self, uuid: &str) -> Option<Value> {
        let inner = self.lock();
        let e = inner
            .events
            .values()
            .find(|e| e.published && e.uuid == uuid)?;
        Some(feed_event(e, &inner.lookup()))
    }

    /// The feed's `hashes.csv`: `md5(value part),event uuid` per attribute value part.
    pub fn feed_hashes(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        for e in inner.events.values().filter(|e| e.published) {
            for a in e.attributes.iter().filter(|a| !a.deleted) {
                for part in a.value.split('|') {
                    out.push_str(&crate::threatq::value_hash(part));
                    out.push(',');
                    out.push_str(&e.uuid);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Everything as JSON (`GET /_sim/state`).
    pub fn snapshot(&self) -> Value {
        let inner = self.lock();
        let lookup = inner.lookup();
        json!({
            "events": inner.events.values().map(|e| event_wire(e, &|_| true, false, &lookup)).collect::<Vec<_>>(),
            "tags": inner.tags.values().map(|t| t.to_wire(None)).collect::<Vec<_>>(),
        })
    }

    /// Removes every event (tags stay).
    pub fn clear(&self) {
        self.lock().events.clear();
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether no events are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pre-fills `count` realistic events of 5–30 attributes each, spread over the last 30 days,
    /// most published and TLP-tagged.
    pub fn seed(&self, count: usize, seed: u64, now: DateTime<Utc>) {
        let mut rng = StdRng::seed_from_u64(seed);
        for n in 0..count {
            let when = now - Duration::seconds(rng.gen_range(0..30 * 24 * 3600));
            let attrs: Vec<Value> = (0..rng.gen_range(5..=30))
                .map(|i| {
                    let (kind, value) = sample(n * 100 + i, &mut rng);
                    let mut a = json!({"type": kind, "value": value, "comment": COMMENTS[rng.gen_range(0..COMMENTS.len())]});
                    if rng.gen_bool(0.15) {
                        a["to_ids"] = json!(false);
                    }
                    if rng.gen_bool(0.1) {
                        a["Tag"] = json!([{"name": "type:OSINT"}]);
                    }
                    a
                })
                .collect();
            let tlp = ["tlp:white", "tlp:green", "tlp:amber", "tlp:clear"][rng.gen_range(0..4)];
            let published = rng.gen_bool(0.8);
            let body = json!({
                "info": format!("{} ({})", TITLES[rng.gen_range(0..TITLES.len())], n + 1),
                "date": when.format("%Y-%m-%d").to_string(),
                "threat_level_id": rng.gen_range(1..=3),
                "analysis": rng.gen_range(0..=2),
                "distribution": 1,
                "published": published,
                "Tag": [{"name": tlp}, {"name": FAMILY_TAGS[rng.gen_range(0..FAMILY_TAGS.len())]}],
                "Attribute": attrs,
            });
            let _ = self.add_event(&body, when);
        }
    }
}

const TITLES: &[&str] = &[
    "Phishing campaign delivering QakBot",
    "Cobalt Strike beacons on rented VPS",
    "Emotet resurgence malspam wave",
    "Credential harvesting kit targeting banks",
    "Ransomware affiliate infrastructure",
    "Watering hole serving AsyncRAT",
];

const FAMILY_TAGS: &[&str] = &[
    "misp-galaxy:malpedia=\"QakBot\"",
    "misp-galaxy:malpedia=\"Cobalt Strike\"",
    "misp-galaxy:malpedia=\"Emotet\"",
    "phishing",
    "ransomware",
];

const COMMENTS: &[&str] = &[
    "",
    "C2",
    "payload",
    "dropper",
    "phishing sender",
    "landing page",
];

fn sample(n: usize, rng: &mut StdRng) -> (&'static str, String) {
    let hex = |rng: &mut StdRng, len: usize| -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect()
    };
    let words = [
        "update", "secure", "login", "cdn", "portal", "files", "verify",
    ];
    let word = words[rng.gen_range(0..words.len())];
    let tld = ["example", "example.net", "example.org", "test"][rng.gen_range(0..4)];
    match n % 9 {
        0 => ("ip-dst", format!("198.51.100.{}", n % 254 + 1)),
        1 => ("ip-src", format!("203.0.113.{}", n % 254 + 1)),
        2 => ("domain", format!("{word}-{n}.{tld}")),
        3 => ("hostname", format!("mx{}.{word}-{n}.{tld}", n % 5)),
        4 => (
            "url",
            format!("http://{word}-{n}.{tld}/{}.php", hex(rng, 6)),
        ),
        5 => ("sha256", hex(rng, 64)),
        6 => ("md5", hex(rng, 32)),
        7 => ("sha1", hex(rng, 40)),
        _ => ("email-src", format!("{word}.{n}@mail.{tld}")),
    }
}
