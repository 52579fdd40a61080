//! The Threat Library query language of `POST /api/indicators/query` and saved searches: an
//! `api_query` of `criteria` and `filters`, each a JSON object whose keys must all match, with
//! `+or`/`+and`/`+not` groups and `+gt`/`+gte`/`+lt`/`+lte`/`+eq`/`+ne`/`+like` operators.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::model::{Indicator, parse_time};

/// Why a query cannot be evaluated (answered as a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(message.into()))
}

/// A parsed query: a tree that is checked once and then evaluated per indicator.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every child matches.
    And(Vec<Query>),
    /// At least one child matches.
    Or(Vec<Query>),
    /// The child does not match.
    Not(Box<Query>),
    /// One field compared with one condition.
    Field(Field, Cond),
}

/// The fields a query may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `id`.
    Id,
    /// `value` (case-insensitive).
    Value,
    /// `mentions`: a case-insensitive substring of the value or description.
    Mentions,
    /// `type_name` / `type` / `indicator_type`.
    TypeName,
    /// `type_id`.
    TypeId,
    /// `status_name` / `status`.
    StatusName,
    /// `status_id`.
    StatusId,
    /// `class`.
    Class,
    /// `score` (the effective score).
    Score,
    /// `source_name` / `sources` / `source`: any source's name.
    Source,
    /// `tags` / `tag` / `tag_name`: any tag's name.
    Tag,
    /// `attribute` / `attributes`: any attribute, by `name` and optionally `value`.
    Attribute,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `touched_at`.
    TouchedAt,
    /// `published_at`.
    PublishedAt,
    /// `expires_at`.
    ExpiresAt,
}

impl Field {
    fn from_key(key: &str) -> Option<Field> {
        Some(match key {
            "id" => Field::Id,
            "value" | "indicator_value" => Field::Value,
            "mentions" | "keywords" => Field::Mentions,
            "type_name" | "type" | "types" | "indicator_type" => Field::TypeName,
            "type_id" => Field::TypeId,
            "status_name" | "status" | "statuses" | "indicator_status" => Field::StatusName,
            "status_id" => Field::StatusId,
            "class" => Field::Class,
            "score" => Field::Score,
            "source_name" | "sources" | "source" => Field::Source,
            "tags" | "tag" | "tag_name" => Field::Tag,
            "attribute" | "attributes" => Field::Attribute,
            "created_at" => Field::CreatedAt,
            "updated_at" => Field::UpdatedAt,
            "touched_at" => Field::TouchedAt,
            "published_at" => Field::PublishedAt,
            "expires_at" => Field::ExpiresAt,
            _ => return None,
        })
    }

    fn is_date(self) -> bool {
        matches!(
            self,
            Field::CreatedAt
                | Field::UpdatedAt
                | Field::TouchedAt
                | Field::PublishedAt
                | Field::ExpiresAt
        )
    }
}

/// A condition on a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Equal to one of these texts (case-insensitive).
    In(Vec<String>),
    /// Numeric comparisons, all of which must hold.
    Num(Vec<(Op, f64)>),
    /// Date comparisons, all of which must hold.
    Date(Vec<(Op, DateTime<Utc>)>),
    /// A case-insensitive substring.
    Like(String),
    /// An attribute with this name and, when given, this value.
    Attr(String, Option<String>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+gt`.
    Gt,
    /// `+gte`.
    Gte,
    /// `+lt`.
    Lt,
    /// `+lte`.
    Lte,
    /// `+eq`.
    Eq,
    /// `+ne`.
    Ne,
}

impl Op {
    fn from_key(key: &str) -> Option<Op> {
        Some(match key {
            "+gt" => Op::Gt,
            "+gte" => Op::Gte,
            "+lt" => Op::Lt,
            "+lte" => Op::Lte,
            "+eq" | "+equals" => Op::Eq,
            "+ne" | "+not_equal" => Op::Ne,
            _ => return None,
        })
    }

    fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Op::Gt => left > right,
            Op::Gte => left >= right,
            Op::Lt => left < right,
            Op::Lte => left <= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// Resolves a date as the Threat Library accepts it: `NOW`, `TODAY`, relative forms such as
/// `-7 days`, `7 days ago`, `+1 hour`, or an absolute timestamp.
pub fn resolve_date(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if lower == "now" {
        return Some(now);
    }
    if lower == "today" {
        return now.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    }
    if let Some(abs) = parse_time(t) {
        return Some(abs);
    }
    let (body, sign) = match lower.strip_suffix(" ago") {
        Some(b) => (b.trim(), -1),
        None => match lower.strip_prefix('-') {
            Some(b) => (b.trim(), -1),
            None => (lower.strip_prefix('+').unwrap_or(&lower).trim(), 1),
        },
    };
    let (n, unit) = body.split_once(' ')?;
    let n: i64 = n.trim().parse().ok()?;
    let unit = unit.trim().trim_end_matches('s');
    let n = n.checked_mul(sign)?;
    let span = match unit {
        "second" | "sec" => Duration::try_seconds(n)?,
        "minute" | "min" => Duration::try_minutes(n)?,
        "hour" => Duration::try_hours(n)?,
        "day" => Duration::try_days(n)?,
        "week" => Duration::try_weeks(n)?,
        "month" => Duration::try_days(n.checked_mul(30)?)?,
        "year" => Duration::try_days(n.checked_mul(365)?)?,
        _ => return None,
    };
    now.checked_add_signed(span)
}

const MAX_DEPTH: usize = 32;

/// Parses an `api_query` (`{"criteria": {…}, "filters": {…}}`; other keys such as `fields` are
/// ignored here). An empty query matches everything.
///
/// # Errors
/// A [`QueryError`] naming the unknown field or malformed condition.
pub fn parse_api_query(body: &Value, now: DateTime<Utc>) -> Result<Query, QueryError> {
    let mut parts = Vec::new();
    for key in ["criteria", "filters"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(v @ Value::Object(_)) => parts.push(parse_object(v, now, 0)?),
            Some(_) => return err(format!("The {key} must be an object.")),
        }
    }
    Ok(Query::And(parts))
}

fn parse_object(value: &Value, now: DateTime<Utc>, depth: usize) -> Result<Query, QueryError> {
    if depth > MAX_DEPTH {
        return err("The query is nested too deeply.");
    }
    let Value::Object(map) = value else {
        return err("Each query group must be an object.");
    };
    let mut all = Vec::new();
    for (key, v) in map {
        match key.as_str() {
            "+or" | "+and" => {
                let items = match v {
                    Value::Array(items) => items.clone(),
                    Value::Object(m) => m.values().cloned().collect(),
                    _ => return err(format!("{key} takes a list of query groups.")),
                };
                let children = items
                    .iter()
                    .map(|i| parse_object(i, now, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                all.push(if key == "+or" {
                    Query::Or(children)
                } else {
                    Query::And(children)
                });
            }
            "+not" => all.push(Query::Not(Box::new(parse_object(v, now, depth + 1)?))),
            other => {
                let Some(field) = Field::from_key(other) else {
                    return err(format!("Unknown filter field: {other}"));
                };
                all.push(parse_field(field, v, now)?);
            }
        }
    }
    Ok(Query::And(all))
}

fn texts(field: &str, value: &Value) -> Result<Vec<String>, QueryError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Object(m) => m
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| QueryError(format!("Invalid value for {field}."))),
                _ => err(format!("Invalid value for {field}.")),
            })
            .collect(),
        Value::Object(m) if m.contains_key("name") => m
            .get("name")
            .and_then(Value::as_str)
            .map(|s| vec![s.to_string()])
            .ok_or_else(|| QueryError(format!("Invalid value for {field}."))),
        _ => err(format!("Invalid value for {field}.")),
    }
}

fn parse_field(field: Field, value: &Value, now: DateTime<Utc>) -> Result<Query, QueryError> {
    let name = format!("{field:?}").to_ascii_lowercase();
    if let Value::Object(map) = value
        && map.keys().any(|k| k.starts_with('+'))
    {
        let mut or_parts = Vec::new();
        let mut nums = Vec::new();
        let mut dates = Vec::new();
        for (k, v) in map {
            if k == "+like" || k == "+contains" {
                let Some(s) = v.as_str() else {
                    return err(format!("{k} on {name} takes a string."));
                };
                or_parts.push(Query::Field(
                    field,
                    Cond::Like(s.trim_matches('%').to_string()),
                ));
                continue;
            }
            if k == "+in" {
                or_parts.push(Query::Field(field, Cond::In(texts(&name, v)?)));
                continue;
            }
            let Some(op) = Op::from_key(k) else {
                return err(format!("Unknown operator {k} on {name}."));
            };
            if field.is_date() {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return err(format!("{k} on {name} takes a date.")),
                };
                let Some(t) = resolve_date(&text, now) else {
                    return err(format!("Invalid date for {name}: {text}"));
                };
                dates.push((op, t));
            } else {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                let Some(n) = n else {
                    return err(format!("{k} on {name} takes a number."));
                };
                nums.push((op, n));
            }
        }
        let mut all = or_parts;
        if !nums.is_empty() {
            all.push(Query::Field(field, Cond::Num(nums)));
        }
        if !dates.is_empty() {
            all.push(Query::Field(field, Cond::Date(dates)));
        }
        return Ok(Query::And(all));
    }
    if field == Field::Attribute {
        let items: Vec<Value> = match value {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let mut any = Vec::new();
        for item in items {
            match item {
                Value::String(s) => any.push(Query::Field(field, Cond::Attr(s, None))),
                Value::Object(m) => {
                    let Some(n) = m.get("name").and_then(Value::as_str) else {
                        return err("An attribute condition needs a name.");
                    };
                    let v = m.get("value").map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    any.push(Query::Field(field, Cond::Attr(n.to_string(), v)));
                }
                _ => return err("Invalid attribute condition."),
            }
        }
        return Ok(Query::Or(any));
    }
    if field.is_date() {
        let Some(text) = value.as_str() else {
            return err(format!("Invalid date for {name}."));
        };
        let Some(t) = resolve_date(text, now) else {
            return err(format!("Invalid date for {name}: {text}"));
        };
        return Ok(Query::Field(field, Cond::Date(vec![(Op::Eq, t)])));
    }
    if field == Field::Mentions {
        let words = texts(&name, value)?;
        return Ok(Query::Or(
            words
                .into_iter()
                .map(|w| Query::Field(field, Cond::Like(w)))
                .collect(),
        ));
    }
    if matches!(
        field,
        Field::Score | Field::Id | Field::TypeId | Field::StatusId
    ) {
        let values = texts(&name, value)?;
        let mut any = Vec::new();
        for v in values {
            let Ok(n) = v.trim().parse::<f64>() else {
                return err(format!("Invalid number for {name}: {v}"));
            };
            any.push(Query::Field(field, Cond::Num(vec![(Op::Eq, n)])));
        }
        return Ok(Query::Or(any));
    }
    Ok(Query::Field(field, Cond::In(texts(&name, value)?)))
}

impl Query {
    /// Whether the indicator matches.
    pub fn matches(&self, ind: &Indicator) -> bool {
        match self {
            Query::And(children) => children.iter().all(|c| c.matches(ind)),
            Query::Or(children) => children.is_empty() || children.iter().any(|c| c.matches(ind)),
            Query::Not(child) => !child.matches(ind),
            Query::Field(field, cond) => field_matches(*field, cond, ind),
        }
    }
}

fn eq_any(candidates: &[&str], wanted: &[String]) -> bool {
    candidates
        .iter()
        .any(|c| wanted.iter().any(|w| c.eq_ignore_ascii_case(w.trim())))
}

fn like_any(candidates: &[&str], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    candidates
        .iter()
        .any(|c| c.to_lowercase().contains(&needle))
}

fn field_matches(field: Field, cond: &Cond, ind: &Indicator) -> bool {
    let id_text;
    let texts: Vec<&str> = match field {
        Field::Id => {
            id_text = ind.id.to_string();
            vec![id_text.as_str()]
        }
        Field::Value => vec![ind.value.as_str()],
        Field::Mentions => {
            let mut v = vec![ind.value.as_str()];
            if let Some(d) = ind.description.as_deref() {
                v.push(d);
            }
            v
        }
        Field::TypeName => vec![ind.indicator_type.name],
        Field::StatusName => vec![ind.status.name],
        Field::Class => vec![ind.indicator_type.class.key()],
        Field::Source => ind.sources.iter().map(|s| s.name.as_str()).collect(),
        Field::Tag => ind.tags.iter().map(|t| t.name.as_str()).collect(),
        _ => Vec::new(),
    };
    let number = match field {
        Field::Id => Some(ind.id as f64),
        Field::TypeId => Some(ind.indicator_type.id as f64),
        Field::StatusId => Some(ind.status.id as f64),
        Field::Score => Some(ind.score()),
        _ => None,
    };
    let date = match field {
        Field::CreatedAt => Some(ind.created_at),
        Field::UpdatedAt => Some(ind.updated_at),
        Field::TouchedAt => Some(ind.touched_at),
        Field::PublishedAt => Some(ind.published_at),
        Field::ExpiresAt => ind.expires_at,
        _ => None,
    };
    match cond {
        Cond::In(wanted) => eq_any(&texts, wanted),
        Cond::Like(needle) => like_any(&texts, needle),
        Cond::Num(ops) => number.is_some_and(|n| ops.iter().all(|(op, r)| op.holds(n, *r))),
        Cond::Date(ops) => date.is_some_and(|d| ops.iter().all(|(op, r)| op.holds(d, *r))),
        Cond::Attr(name, value) => ind.attributes.iter().any(|a| {
            a.name.eq_ignore_ascii_case(name)
                && value
                    .as_ref()
                    .is_none_or(|v| a.value.eq_ignore_ascii_case(v.trim()))
        }),
    }
}
