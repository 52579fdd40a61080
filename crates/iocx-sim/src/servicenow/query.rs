//! Encoded queries (`sysparm_query`): parsing, field checks, evaluation and ordering.
//!
//! Grammar, as ServiceNow documents it: conditions joined by `^` (AND) and `^OR` (OR, which
//! binds tighter: `a^b^ORc` is `a AND (b OR c)`); `^NQ` starts a new query OR-ed with the
//! previous ones; `ORDERBYfield` / `ORDERBYDESCfield` terms sort; `^EQ` ends the query; `^^` is a
//! literal caret inside a value. A condition is `field OPERATOR value`, where the field is a
//! lower-case column name, possibly dot-walked (`type.value`).

use std::cmp::Ordering;

use chrono::{DateTime, Duration, NaiveTime, TimeZone as _, Utc};

use super::model::{self, Kind, Lookup, Record, Table, parse_time};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `LIKE` (contains)
    Like,
    /// `NOT LIKE`
    NotLike,
    /// `STARTSWITH`
    StartsWith,
    /// `ENDSWITH`
    EndsWith,
    /// `IN` (comma-separated values)
    In,
    /// `NOT IN`
    NotIn,
    /// `ISEMPTY`
    IsEmpty,
    /// `ISNOTEMPTY`
    IsNotEmpty,
    /// `EMPTYSTRING`
    EmptyString,
    /// `ANYTHING`
    Anything,
    /// `BETWEENa@b` (inclusive)
    Between,
    /// `SAMEAS` another field
    SameAs,
    /// `NSAMEAS` another field
    NSameAs,
}

/// Operators by their text, longest first so that prefixes do not win.
const OPERATORS: &[(&str, Op)] = &[
    ("ISNOTEMPTY", Op::IsNotEmpty),
    ("EMPTYSTRING", Op::EmptyString),
    ("STARTSWITH", Op::StartsWith),
    ("NOT LIKE", Op::NotLike),
    ("ENDSWITH", Op::EndsWith),
    ("ANYTHING", Op::Anything),
    ("BETWEEN", Op::Between),
    ("NSAMEAS", Op::NSameAs),
    ("ISEMPTY", Op::IsEmpty),
    ("NOT IN", Op::NotIn),
    ("SAMEAS", Op::SameAs),
    ("LIKE", Op::Like),
    ("IN", Op::In),
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("=", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
];

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// The (possibly dot-walked) field.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The value as written.
    pub value: String,
}

/// A parsed encoded query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `^NQ`-separated queries; each is a list of AND-ed groups of OR-ed conditions.
    pub queries: Vec<Vec<Vec<Cond>>>,
    /// `ORDERBY` terms: field and whether descending.
    pub order: Vec<(String, bool)>,
}

/// A query that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits on `^` separators, keeping `^^` as a literal caret.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '^' {
            if chars.peek() == Some(&'^') {
                chars.next();
                current.push('^');
            } else {
                terms.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    terms.push(current);
    terms
}

fn parse_cond(term: &str) -> Result<Cond, QueryError> {
    let end = term
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(term.len());
    let (field, rest) = term.split_at(end);
    if field.is_empty() {
        return Err(QueryError(format!(
            "{term:?} does not start with a field name"
        )));
    }
    let Some((text, op)) = OPERATORS.iter().find(|(t, _)| rest.starts_with(t)) else {
        return Err(QueryError(format!(
            "{term:?}: no supported operator after {field:?}"
        )));
    };
    Ok(Cond {
        field: field.to_string(),
        op: *op,
        value: rest[text.len()..].to_string(),
    })
}

/// Parses an encoded query. An empty query matches every record.
///
/// # Errors
/// A [`QueryError`] for a term that is neither an ordering nor `field OPERATOR value`.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    parse_with(text, false)
}

/// Parses an encoded query, skipping the terms it cannot read (as ServiceNow does unless told to
/// refuse invalid queries).
pub fn parse_lenient(text: &str) -> Query {
    parse_with(text, true).unwrap_or_default()
}

fn parse_with(text: &str, lenient: bool) -> Result<Query, QueryError> {
    let cond = |term: &str| match parse_cond(term) {
        Ok(c) => Ok(Some(c)),
        Err(_) if lenient => Ok(None),
        Err(e) => Err(e),
    };
    let mut query = Query::default();
    let mut current: Vec<Vec<Cond>> = Vec::new();
    if text.trim().is_empty() {
        return Ok(query);
    }
    for term in split_terms(text) {
        if term.is_empty() || term == "EQ" {
            continue;
        }
        if let Some(field) = term.strip_prefix("ORDERBYDESC") {
            query.order.push((field.to_string(), true));
        } else if let Some(field) = term.strip_prefix("ORDERBY") {
            query.order.push((field.to_string(), false));
        } else if term.starts_with("GROUPBY") {
            // Grouping changes nothing in a Table API answer.
        } else if let Some(rest) = term.strip_prefix("NQ") {
            if !current.is_empty() {
                query.queries.push(std::mem::take(&mut current));
            }
            if !rest.is_empty()
                && let Some(c) = cond(rest)?
            {
                current.push(vec![c]);
            }
        } else if let Some(rest) = term
            .strip_prefix("OR")
            .filter(|r| r.starts_with(|c: char| c.is_ascii_lowercase()))
        {
            if let Some(c) = cond(rest)? {
                match current.last_mut() {
                    Some(group) => group.push(c),
                    None => current.push(vec![c]),
                }
            }
        } else if let Some(c) = cond(&term)? {
            current.push(vec![c]);
        }
    }
    if !current.is_empty() {
        query.queries.push(current);
    }
    Ok(query)
}

impl Query {
    /// The fields (conditions and orderings) that name no column of `table`.
    pub fn unknown_fields(&self, table: &'static Table) -> Vec<String> {
        let mut out = Vec::new();
        let conds = self.queries.iter().flatten().flatten();
        for name in conds
            .map(|c| c.field.as_str())
            .chain(self.order.iter().map(|(f, _)| f.as_str()))
        {
            if !model::path_exists(table, name) && !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
        out
    }

    /// Drops the conditions and orderings on unknown fields, as ServiceNow does by default.
    pub fn without_unknown_fields(mut self, table: &'static Table) -> Query {
        for q in &mut self.queries {
            for group in q.iter_mut() {
                group.retain(|c| model::path_exists(table, &c.field));
            }
            q.retain(|g| !g.is_empty());
        }
        self.queries.retain(|q| !q.is_empty());
        self.order.retain(|(f, _)| model::path_exists(table, f));
        self
    }

    /// Whether `record` of `table` matches.
    pub fn matches(
        &self,
        db: &dyn Lookup,
        table: &'static Table,
        record: &Record,
        now: DateTime<Utc>,
    ) -> bool {
        self.queries.is_empty()
            || self.queries.iter().any(|q| {
                q.iter().all(|group| {
                    group
                        .iter()
                        .any(|c| cond_matches(db, table, record, c, now))
                })
            })
    }

    /// Orders `a` and `b` by the `ORDERBY` terms, then by `sys_id`.
    pub fn compare(
        &self,
        db: &dyn Lookup,
        table: &'static Table,
        a: &Record,
        b: &Record,
    ) -> Ordering {
        for (field, desc) in &self.order {
            let va = model::resolve(db, table, a, field);
            let vb = model::resolve(db, table, b, field);
            let ord = match (va, vb) {
                (Some(x), Some(y)) => {
                    // Choices and references sort by what people see.
                    let (x, y) = match x.kind {
                        Kind::Reference(_) | Kind::Choice(_) => (x.display, y.display),
                        _ => (x.raw, y.raw),
                    };
                    compare_text(&x, &y)
                }
                _ => Ordering::Equal,
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.get("sys_id").cmp(&b.get("sys_id"))
    }
}

/// Numbers compare as numbers, other text case-insensitively; empty values first.
fn compare_text(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

/// Reads the date part of `javascript:gs.dateGenerate('2024-01-01','00:00:00')` and the other
/// relative forms clients use; plain `YYYY-MM-DD HH:MM:SS` too.
pub fn parse_date_value(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let Some(js) = text.strip_prefix("javascript:") else {
        return parse_time(text);
    };
    let js = js.trim().trim_end_matches(';');
    let (name, args) = js.split_once('(')?;
    let args: Vec<String> = args
        .trim_end_matches(')')
        .split(',')
        .map(|a| a.trim().trim_matches(['\'', '"']).to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let n = |i: usize| args.get(i).and_then(|a| a.parse::<i64>().ok()).unwrap_or(0);
    let midnight =
        |t: DateTime<Utc>| Utc.from_utc_datetime(&t.date_naive().and_time(NaiveTime::MIN));
    match name.trim() {
        "gs.dateGenerate" => match args.as_slice() {
            [date, time] => parse_time(&format!("{date} {time}")),
            [one] => parse_time(one),
            _ => None,
        },
        "gs.now" | "gs.nowDateTime" | "gs.nowNoTZ" => Some(now),
        "gs.beginningOfToday" => Some(midnight(now)),
        "gs.endOfToday" => Some(midnight(now) + Duration::days(1) - Duration::seconds(1)),
        "gs.daysAgo" => Some(now - Duration::days(n(0))),
        "gs.daysAgoStart" => Some(midnight(now - Duration::days(n(0)))),
        "gs.daysAgoEnd" => {
            Some(midnight(now - Duration::days(n(0))) + Duration::days(1) - Duration::seconds(1))
        }
        "gs.hoursAgo" | "gs.hoursAgoStart" => Some(now - Duration::hours(n(0))),
        "gs.minutesAgo" | "gs.minutesAgoStart" => Some(now - Duration::minutes(n(0))),
        _ => None,
    }
}

fn ordered(kind: Kind, have: &str, want: &str, now: DateTime<Utc>) -> Option<Ordering> {
    if have.is_empty() {
        return None;
    }
    match kind {
        Kind::DateTime => Some(parse_time(have)?.cmp(&parse_date_value(want, now)?)),
        Kind::Integer | Kind::Choice(_) | Kind::Boolean | Kind::Reference(_) | Kind::Text => {
            match (have.trim().parse::<f64>(), want.trim().parse::<f64>()) {
                (Ok(x), Ok(y)) => x.partial_cmp(&y),
                _ => Some(have.to_lowercase().cmp(&want.to_lowercase())),
            }
        }
    }
}

fn equal(kind: Kind, have: &str, want: &str, now: DateTime<Utc>) -> bool {
    match kind {
        Kind::DateTime => match (parse_time(have), parse_date_value(want, now)) {
            (Some(a), Some(b)) => a == b,
            _ => have == want,
        },
        Kind::Boolean => {
            let norm = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" => "true".to_string(),
                "0" | "false" | "" => "false".to_string(),
                other => other.to_string(),
            };
            norm(have) == norm(want)
        }
        Kind::Reference(_) => have == want,
        _ => have.to_lowercase() == want.to_lowercase(),
    }
}

fn cond_matches(
    db: &dyn Lookup,
    table: &'static Table,
    record: &Record,
    cond: &Cond,
    now: DateTime<Utc>,
) -> bool {
    let Some(r) = model::resolve(db, table, record, &cond.field) else {
        // Unknown fields were dropped or refused before evaluation.
        return false;
    };
    let have = r.raw.as_str();
    let lower = have.to_lowercase();
    let want = cond.value.as_str();
    match cond.op {
        Op::Eq => equal(r.kind, have, want, now),
        Op::Ne => !equal(r.kind, have, want, now),
        Op::Gt => ordered(r.kind, have, want, now) == Some(Ordering::Greater),
        Op::Ge => matches!(
            ordered(r.kind, have, want, now),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::Lt => ordered(r.kind, have, want, now) == Some(Ordering::Less),
        Op::Le => matches!(
            ordered(r.kind, have, want, now),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::Like => lower.contains(&want.to_lowercase()),
        Op::NotLike => !lower.contains(&want.to_lowercase()),
        Op::StartsWith => lower.starts_with(&want.to_lowercase()),
        Op::EndsWith => lower.ends_with(&want.to_lowercase()),
        Op::In => want.split(',').any(|w| equal(r.kind, have, w.trim(), now)),
        Op::NotIn => !want.split(',').any(|w| equal(r.kind, have, w.trim(), now)),
        Op::IsEmpty | Op::EmptyString => have.trim().is_empty(),
        Op::IsNotEmpty => !have.trim().is_empty(),
        Op::Anything => true,
        Op::Between => match want.split_once('@') {
            Some((lo, hi)) => {
                matches!(
                    ordered(r.kind, have, lo, now),
                    Some(Ordering::Greater | Ordering::Equal)
                ) && matches!(
                    ordered(r.kind, have, hi, now),
                    Some(Ordering::Less | Ordering::Equal)
                )
            }
            None => false,
        },
        Op::SameAs | Op::NSameAs => {
            let other = model::resolve(db, table, record, want)
                .map(|o| o.raw)
                .unwrap_or_default();
            (have == other) == (cond.op == Op::SameAs)
        }
    }
}
