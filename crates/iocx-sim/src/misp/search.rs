//! The `restSearch` filters: value lists with `!` negation, `%` wildcards and `OR`/`AND`/`NOT`
//! objects; timestamps as epoch seconds, dates or relative spans (`5d`, `12h`); and the
//! booleans MISP accepts as `0`/`1`, strings or JSON booleans.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Map, Value};

use super::model::{Attribute, Event, Tag};

/// Why a filter cannot be used (answered as a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

/// A list filter: any of `or`, all of `and`, none of `not`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// At least one must match (when non-empty).
    pub or: Vec<String>,
    /// All must match.
    pub and: Vec<String>,
    /// None may match.
    pub not: Vec<String>,
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

fn texts(v: &Value, name: &str) -> Result<Vec<String>, FilterError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| FilterError(format!("Invalid {name} filter."))))
            .collect(),
        other => scalar_text(other)
            .map(|s| vec![s])
            .ok_or_else(|| FilterError(format!("Invalid {name} filter."))),
    }
}

impl ListFilter {
    /// Parses a filter value: a scalar, a list (`!x` negates), or `{"OR":…, "AND":…, "NOT":…}`;
    /// `None` for null or an empty list.
    ///
    /// # Errors
    /// A value of the wrong shape.
    pub fn parse(v: &Value, name: &str) -> Result<Option<ListFilter>, FilterError> {
        let mut f = ListFilter::default();
        match v {
            Value::Null => return Ok(None),
            Value::Object(map) => {
                for (k, items) in map {
                    let list = texts(items, name)?;
                    match k.to_ascii_uppercase().as_str() {
                        "OR" => f.or.extend(list),
                        "AND" => f.and.extend(list),
                        "NOT" => f.not.extend(list),
                        _ => return Err(FilterError(format!("Invalid {name} filter key {k}."))),
                    }
                }
            }
            other => {
                for t in texts(other, name)? {
                    match t.strip_prefix('!') {
                        Some(neg) => f.not.push(neg.to_string()),
                        None => f.or.push(t),
                    }
                }
            }
        }
        if f.or.is_empty() && f.and.is_empty() && f.not.is_empty() {
            return Ok(None);
        }
        Ok(Some(f))
    }

    /// Whether a set of candidate values passes.
    pub fn matches(&self, candidates: &[&str]) -> bool {
        let hit = |pattern: &str| candidates.iter().any(|c| like(c, pattern));
        (self.or.is_empty() || self.or.iter().any(|p| hit(p)))
            && self.and.iter().all(|p| hit(p))
            && !self.not.iter().any(|p| hit(p))
    }
}

/// Case-insensitive comparison where `%` matches any run of characters.
pub fn like(value: &str, pattern: &str) -> bool {
    let v = value.to_lowercase();
    let p = pattern.to_lowercase();
    if !p.contains('%') {
        return v == p;
    }
    let parts: Vec<&str> = p.split('%').collect();
    let mut rest = v.as_str();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// Resolves a MISP time filter value: epoch seconds (number or string), a relative span
/// (`30s`, `15m`, `12h`, `5d`, `2w`, subtracted from now), or a date / date-time.
pub fn resolve_time(v: &Value, now: DateTime<Utc>) -> Option<i64> {
    let text = match v {
        Value::Number(n) => return n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    if let Some(unit) = text.chars().last()
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        let span = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        };
        if let Some(span) = span {
            return now.checked_sub_signed(span).map(|t| t.timestamp());
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.timestamp());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&text, f) {
            return Some(Utc.from_utc_datetime(&t).timestamp());
        }
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t).timestamp())
}

/// A time range: `x` means "at or after x"; `[from, to]` both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Lower bound.
    pub from: Option<i64>,
    /// Upper bound.
    pub to: Option<i64>,
}

impl Range {
    fn parse(v: &Value, name: &str, now: DateTime<Utc>) -> Result<Option<Range>, FilterError> {
        let bad = || FilterError(format!("Invalid {name} filter."));
        match v {
            Value::Null => Ok(None),
            Value::Array(items) if items.is_empty() => Ok(None),
            Value::Array(items) => {
                let from = items
                    .first()
                    .map(|i| resolve_time(i, now).ok_or_else(bad))
                    .transpose()?;
                let to = items
                    .get(1)
                    .map(|i| resolve_time(i, now).ok_or_else(bad))
                    .transpose()?;
                Ok(Some(Range { from, to }))
            }
            Value::String(s) if s.trim().is_empty() => Ok(None),
            other => Ok(Some(Range {
                from: Some(resolve_time(other, now).ok_or_else(bad)?),
                to: None,
            })),
        }
    }

    /// Whether `t` is inside.
    pub fn contains(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t <= to)
    }
}

/// Reads MISP's loose booleans: `1`, `0`, `"1"`, `"true"`, `true`, … `None` for null/absent or
/// a list holding both values (no filter).
pub fn loose_bool(v: Option<&Value>) -> Result<Option<bool>, FilterError> {
    let Some(v) = v else { return Ok(None) };
    let one = |v: &Value| -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|n| n != 0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Some(true),
                "0" | "false" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    };
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => {
            let vals: Vec<bool> = items.iter().filter_map(one).collect();
            if vals.len() == 1 {
                Ok(Some(vals[0]))
            } else {
                Ok(None)
            }
        }
        Value::String(s) if s.trim().is_empty() => Ok(None),
        other => one(other)
            .map(Some)
            .ok_or_else(|| FilterError(format!("Invalid boolean {other}."))),
    }
}

/// The parsed filters of a `restSearch` (attributes or events).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// `value`.
    pub value: Option<ListFilter>,
    /// `type`.
    pub kind: Option<ListFilter>,
    /// `category`.
    pub category: Option<ListFilter>,
    /// `tags`: attribute or event tags.
    pub tags: Option<ListFilter>,
    /// `event_tags`: event tags only.
    pub event_tags: Option<ListFilter>,
    /// `org`: name or id.
    pub org: Option<ListFilter>,
    /// `eventid`.
    pub eventid: Option<ListFilter>,
    /// `uuid`: attribute or event UUID.
    pub uuid: Option<ListFilter>,
    /// `eventinfo`.
    pub eventinfo: Option<ListFilter>,
    /// `threat_level_id`.
    pub threat_level: Option<ListFilter>,
    /// `to_ids`.
    pub to_ids: Option<bool>,
    /// `published`.
    pub published: Option<bool>,
    /// `deleted`: `None` both, `Some(false)` live only (the default), `Some(true)` deleted only.
    pub deleted: Option<bool>,
    /// `timestamp` / `attribute_timestamp`: the attribute's (on events: the event's).
    pub timestamp: Option<Range>,
    /// `event_timestamp`.
    pub event_timestamp: Option<Range>,
    /// `publish_timestamp` / `last`.
    pub publish_timestamp: Option<Range>,
    /// `from`/`to` on the event's date.
    pub date: Option<Range>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `page` (1-based).
    pub page: Option<usize>,
    /// `includeEventTags`.
    pub include_event_tags: bool,
    /// `includeEventUuid`.
    pub include_event_uuid: bool,
    /// `includeDecayScore`.
    pub include_decay_score: bool,
    /// `metadata` (events: leave attributes out).
    pub metadata: bool,
    /// `returnFormat`.
    pub return_format: String,
}

fn number(v: Option<&Value>, name: &str) -> Result<Option<usize>, FilterError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| FilterError(format!("Invalid {name}."))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| FilterError(format!("Invalid {name}."))),
        Some(_) => Err(FilterError(format!("Invalid {name}."))),
    }
}

impl Filters {
    /// Parses a `restSearch` body.
    ///
    /// # Errors
    /// A filter of the wrong shape.
    pub fn parse(body: &Map<String, Value>, now: DateTime<Utc>) -> Result<Filters, FilterError> {
        let list = |key: &str| -> Result<Option<ListFilter>, FilterError> {
            body.get(key)
                .map_or(Ok(None), |v| ListFilter::parse(v, key))
        };
        let range = |keys: &[&str]| -> Result<Option<Range>, FilterError> {
            for k in keys {
                if let Some(v) = body.get(*k)
                    && let Some(r) = Range::parse(v, k, now)?
                {
                    return Ok(Some(r));
                }
            }
            Ok(None)
        };
        let flag = |key: &str| -> Result<bool, FilterError> {
            Ok(loose_bool(body.get(key))?.unwrap_or(false))
        };
        let date = {
            let from = body.get("from").filter(|v| !v.is_null());
            let to = body.get("to").filter(|v| !v.is_null());
            if from.is_none() && to.is_none() {
                None
            } else {
                let r = |v: Option<&Value>, name: &str| -> Result<Option<i64>, FilterError> {
                    v.map(|v| {
                        resolve_time(v, now)
                            .ok_or_else(|| FilterError(format!("Invalid {name} filter.")))
                    })
                    .transpose()
                };
                Some(Range {
                    from: r(from, "from")?,
                    to: r(to, "to")?,
                })
            }
        };
        let deleted = match body.get("deleted") {
            None | Some(Value::Null) => Some(false),
            Some(Value::Array(items)) if items.len() > 1 => None,
            other => Some(loose_bool(other)?.unwrap_or(false)),
        };
        Ok(Filters {
            value: list("value")?,
            kind: list("type")?,
            category: list("category")?,
            tags: list("tags")?,
            event_tags: list("event_tags")?,
            org: list("org")?,
            eventid: list("eventid")?,
            uuid: list("uuid")?,
            eventinfo: list("eventinfo")?,
            threat_level: list("threat_level_id")?,
            to_ids: loose_bool(body.get("to_ids"))?,
            published: loose_bool(body.get("published"))?,
            deleted,
            timestamp: range(&["attribute_timestamp", "timestamp"])?,
            event_timestamp: range(&["event_timestamp"])?,
            publish_timestamp: range(&["publish_timestamp", "last"])?,
            date,
            limit: number(body.get("limit"), "limit")?,
            page: number(body.get("page"), "page")?,
            include_event_tags: flag("includeEventTags")?,
            include_event_uuid: flag("includeEventUuid")?,
            include_decay_score: flag("includeDecayScore")?,
            metadata: flag("metadata")?,
            return_format: body
                .get("returnFormat")
                .and_then(Value::as_str)
                .unwrap_or("json")
                .to_string(),
        })
    }

    /// Whether the attribute-level filters are all absent.
    pub fn no_attribute_filters(&self) -> bool {
        self.value.is_none()
            && self.kind.is_none()
            && self.category.is_none()
            && self.to_ids.is_none()
    }

    /// Whether an event passes the event-level filters. `for_events` applies `timestamp` to the
    /// event (on events restSearch) rather than to attributes.
    pub fn event_matches(
        &self,
        e: &Event,
        tag_name: &dyn Fn(u64) -> Option<Tag>,
        for_events: bool,
    ) -> bool {
        let event_tags: Vec<String> = e
            .tags
            .iter()
            .filter_map(|(id, _)| tag_name(*id).map(|t| t.name))
            .collect();
        let event_tag_refs: Vec<&str> = event_tags.iter().map(String::as_str).collect();
        let id = e.id.to_string();
        let org_id = e.orgc.id.to_string();
        let tl = e.threat_level_id.to_string();
        self.eventid
            .as_ref()
            .is_none_or(|f| f.matches(&[&id, &e.uuid]))
            && self
                .org
                .as_ref()
                .is_none_or(|f| f.matches(&[&e.orgc.name, &org_id]))
            && self
                .eventinfo
                .as_ref()
                .is_none_or(|f| f.matches(&[&e.info]))
            && self.threat_level.as_ref().is_none_or(|f| f.matches(&[&tl]))
            && self.published.is_none_or(|p| e.published == p)
            && self
                .event_tags
                .as_ref()
                .is_none_or(|f| f.matches(&event_tag_refs))
            && self.event_timestamp.is_none_or(|r| r.contains(e.timestamp))
            && (!for_events || self.timestamp.is_none_or(|r| r.contains(e.timestamp)))
            && self
                .publish_timestamp
                .is_none_or(|r| e.published && r.contains(e.publish_timestamp))
            && self.date.is_none_or(|r| {
                let t = e
                    .date
                    .and_hms_opt(0, 0, 0)
                    .map_or(0, |d| d.and_utc().timestamp());
                r.contains(t)
            })
    }

    /// Whether an attribute passes the attribute-level filters (tags match the attribute's or,
    /// with `event_tags_count`, its event's tags).
    pub fn attribute_matches(
        &self,
        a: &Attribute,
        e: &Event,
        tag_name: &dyn Fn(u64) -> Option<Tag>,
        tags_include_event: bool,
        for_events: bool,
    ) -> bool {
        let mut names: Vec<String> = a
            .tags
            .iter()
            .filter_map(|(id, _)| tag_name(*id).map(|t| t.name))
            .collect();
        if tags_include_event {
            names.extend(
                e.tags
                    .iter()
                    .filter_map(|(id, _)| tag_name(*id).map(|t| t.name)),
            );
        }
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let parts: Vec<&str> = std::iter::once(a.value.as_str())
            .chain(if a.value.contains('|') {
                a.value.split('|').collect()
            } else {
                Vec::new()
            })
            .collect();
        self.value.as_ref().is_none_or(|f| f.matches(&parts))
            && self.kind.as_ref().is_none_or(|f| f.matches(&[a.kind]))
            && self
                .category
                .as_ref()
                .is_none_or(|f| f.matches(&[&a.category]))
            && self.tags.as_ref().is_none_or(|f| f.matches(&name_refs))
            && self
                .uuid
                .as_ref()
                .is_none_or(|f| f.matches(&[&a.uuid, &e.uuid]))
            && self.to_ids.is_none_or(|t| a.to_ids == t)
            && self.deleted.is_none_or(|d| a.deleted == d)
            && (for_events || self.timestamp.is_none_or(|r| r.contains(a.timestamp)))
    }
}
