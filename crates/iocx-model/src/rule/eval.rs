//! Evaluating a rule in memory, and explaining the result term by term.

use serde::Serialize;

use super::ast::{Cond, Expr, Field, Op, Value};
use super::sql_functions::{host, is_subdomain, within};
use crate::{Aggregate, Indicator, Kind, Severity, Timestamp};

/// What a rule looks at for one indicator: its kind and value, the aggregate fields, the names
/// of the independent sources that report it, and the destinations it is delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndicatorView {
    /// The kind (`None` only in a default view; kind conditions then fail).
    pub kind: Option<Kind>,
    /// The canonical value.
    pub value: String,
    /// Aggregate severity.
    pub severity: Severity,
    /// Aggregate reputation (1–10).
    pub reputation: u8,
    /// Tags (every source's and the user's).
    pub tags: Vec<String>,
    /// The independent sources that report it (echoes of iocx's own pushes excluded), by name;
    /// the `sources` field is how many there are.
    pub sources: Vec<String>,
    /// Total hits.
    pub hits: u64,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Expiry (`None`: never).
    pub expires: Option<Timestamp>,
    /// When it ages out.
    pub aged_at: Timestamp,
    /// Whether it is safe.
    pub safe: bool,
    /// Destination configurations it is currently delivered to (ledger state `shared`).
    pub shared_with: Vec<String>,
}

impl IndicatorView {
    /// The view of an indicator with its aggregate, independent source names and current
    /// destinations.
    pub fn new(
        indicator: &Indicator,
        aggregate: &Aggregate,
        sources: Vec<String>,
        shared_with: Vec<String>,
    ) -> IndicatorView {
        IndicatorView {
            kind: Some(indicator.kind),
            value: indicator.value.clone(),
            severity: aggregate.severity,
            reputation: aggregate.reputation.get(),
            tags: aggregate.tags.as_slice().to_vec(),
            sources,
            hits: aggregate.hits,
            first_seen: aggregate.first_seen,
            last_seen: aggregate.last_seen,
            expires: aggregate.expires,
            aged_at: aggregate.aged_at,
            safe: aggregate.safe,
            shared_with,
        }
    }

    /// Whether it is active at `now`: not aged out, and not expired (as
    /// [`Aggregate::active_at`]).
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.aged_at > now && self.expires.is_none_or(|e| e > now)
    }
}

fn cmp_ord<T: Ord>(op: Op, a: T, b: T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        _ => false,
    }
}

/// `=`/`!=`/`in`/`not in` over one value.
fn one_of<T: PartialEq>(op: Op, have: &T, single: Option<&T>, many: Option<&[T]>) -> bool {
    match (op, single, many) {
        (Op::Eq, Some(x), _) => have == x,
        (Op::Ne, Some(x), _) => have != x,
        (Op::In, _, Some(xs)) => xs.contains(have),
        (Op::NotIn, _, Some(xs)) => !xs.contains(have),
        _ => false,
    }
}

/// Set fields (tags, source, shared_with): `=`/`contains` has, `!=` has not, `in` has any,
/// `not in` has none, `all` has every one.
fn names_match(op: Op, have: &[String], value: &Value) -> bool {
    let has = |n: &String| have.contains(n);
    match (op, value) {
        (Op::Eq | Op::Contains, Value::Text(t)) => has(t),
        (Op::Ne, Value::Text(t)) => !has(t),
        (Op::In, Value::Texts(ts)) => ts.iter().any(has),
        (Op::NotIn, Value::Texts(ts)) => !ts.iter().any(has),
        (Op::All, Value::Texts(ts)) => ts.iter().all(has),
        _ => false,
    }
}

/// Whether one condition holds for `v` at `now`.
pub(crate) fn cond_matches(c: &Cond, v: &IndicatorView, now: Timestamp) -> bool {
    match (c.field, &c.value) {
        (Field::Kind, value) => v.kind.is_some_and(|k| match value {
            Value::Kind(x) => one_of(c.op, &k, Some(x), None),
            Value::Kinds(xs) => one_of(c.op, &k, None, Some(xs)),
            _ => false,
        }),
        (Field::Value, value) => match (c.op, value) {
            (Op::Eq, Value::Text(t)) => v.value == *t,
            (Op::Ne, Value::Text(t)) => v.value != *t,
            (Op::In, Value::Texts(ts)) => ts.contains(&v.value),
            (Op::NotIn, Value::Texts(ts)) => !ts.contains(&v.value),
            (Op::Contains, Value::Text(t)) => v.value.contains(t.as_str()),
            (Op::StartsWith, Value::Text(t)) => v.value.starts_with(t.as_str()),
            (Op::EndsWith, Value::Text(t)) => v.value.ends_with(t.as_str()),
            (Op::Matches, Value::Regex(p)) => p.is_match(&v.value),
            (Op::Within, Value::Cidr(ip, p)) => {
                v.kind.is_some_and(|k| within(k, &v.value, *ip, *p))
            }
            (Op::SubdomainOf, Value::Domain(d)) => {
                v.kind.is_some_and(|k| is_subdomain(host(k, &v.value), d))
            }
            _ => false,
        },
        (Field::Severity, Value::Severity(s)) => cmp_ord(c.op, v.severity, *s),
        (Field::Severity, Value::Severities(ss)) => one_of(c.op, &v.severity, None, Some(ss)),
        (Field::Reputation | Field::Sources | Field::Hits, value) => {
            let n = number(c.field, v);
            match value {
                Value::Int(x) => cmp_ord(c.op, n, *x),
                Value::Ints(xs) => one_of(c.op, &n, None, Some(xs)),
                _ => false,
            }
        }
        (Field::Tags, value) => names_match(c.op, &v.tags, value),
        (Field::Source, value) => names_match(c.op, &v.sources, value),
        (Field::SharedWith, value) => names_match(c.op, &v.shared_with, value),
        (Field::FirstSeen, Value::Time(t)) => cmp_ord(c.op, v.first_seen, t.at(now)),
        (Field::LastSeen, Value::Time(t)) => cmp_ord(c.op, v.last_seen, t.at(now)),
        (Field::Expires, Value::Time(t)) => {
            // Never expiring is later than any time.
            let at = t.at(now);
            match v.expires {
                Some(e) => cmp_ord(c.op, e, at),
                None => matches!(c.op, Op::Gt | Op::Ge | Op::Ne),
            }
        }
        (Field::Active, Value::Bool(b)) => (v.active_at(now) == *b) == (c.op == Op::Eq),
        (Field::Safe, Value::Bool(b)) => (v.safe == *b) == (c.op == Op::Eq),
        _ => false,
    }
}

fn number(field: Field, v: &IndicatorView) -> i64 {
    match field {
        Field::Reputation => i64::from(v.reputation),
        Field::Sources => i64::try_from(v.sources.len()).unwrap_or(i64::MAX),
        _ => i64::try_from(v.hits).unwrap_or(i64::MAX),
    }
}

/// Whether `e` holds for `v` at `now`.
pub(crate) fn matches(e: &Expr, v: &IndicatorView, now: Timestamp) -> bool {
    match e {
        Expr::And(parts) => parts.iter().all(|p| matches(p, v, now)),
        Expr::Or(parts) => parts.iter().any(|p| matches(p, v, now)),
        Expr::Not(inner) => !matches(inner, v, now),
        Expr::Cond(c) => cond_matches(c, v, now),
    }
}

/// Why a rule holds or not for one indicator: a tree with one node per term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The term as rule text (a condition, or a whole `and`/`or`/`not` group).
    pub term: String,
    /// Whether the term holds.
    pub holds: bool,
    /// For a condition: what the indicator has in that field (`severity is medium`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// The parts of an `and`, `or` or `not`, each explained.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Explanation>,
}

impl Explanation {
    /// The conditions (leaves) that hold, or that fail, in rule order.
    pub fn conditions(&self, holding: bool) -> Vec<&Explanation> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Explanation, holding: bool, out: &mut Vec<&'a Explanation>) {
            if e.parts.is_empty() {
                if e.holds == holding {
                    out.push(e);
                }
            } else {
                for p in &e.parts {
                    walk(p, holding, out);
                }
            }
        }
        walk(self, holding, &mut out);
        out
    }

    /// The tree as indented lines, `✓` for terms that hold and `✗` for those that fail.
    pub fn to_lines(&self) -> Vec<String> {
        fn walk(e: &Explanation, depth: usize, out: &mut Vec<String>) {
            let mark = if e.holds { '✓' } else { '✗' };
            let found = e
                .found
                .as_ref()
                .map(|f| format!("  ({f})"))
                .unwrap_or_default();
            out.push(format!("{:w$}{mark} {}{found}", "", e.term, w = depth * 2));
            for p in &e.parts {
                walk(p, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        walk(self, 0, &mut out);
        out
    }
}

/// Explains `e` for `v` at `now`, evaluating each node once.
pub(crate) fn explain(e: &Expr, v: &IndicatorView, now: Timestamp) -> Explanation {
    let (holds, parts, found) = match e {
        Expr::And(ps) => {
            let parts: Vec<Explanation> = ps.iter().map(|p| explain(p, v, now)).collect();
            (parts.iter().all(|p| p.holds), parts, None)
        }
        Expr::Or(ps) => {
            let parts: Vec<Explanation> = ps.iter().map(|p| explain(p, v, now)).collect();
            (parts.iter().any(|p| p.holds), parts, None)
        }
        Expr::Not(inner) => {
            let part = explain(inner, v, now);
            (!part.holds, vec![part], None)
        }
        Expr::Cond(c) => (cond_matches(c, v, now), Vec::new(), Some(found(c, v, now))),
    };
    Explanation {
        term: super::display::to_text(e),
        holds,
        found,
        parts,
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the indicator has in the condition's field, in words.
fn found(c: &Cond, v: &IndicatorView, now: Timestamp) -> String {
    match c.field {
        Field::Kind => format!("kind is {}", v.kind.map_or("unknown", Kind::as_str)),
        Field::Value => match c.op {
            Op::SubdomainOf => {
                let h = v.kind.map_or("", |k| host(k, &v.value));
                if h.is_empty() {
                    format!("{:?} has no host name", v.value)
                } else {
                    format!("host is {h:?}")
                }
            }
            _ => format!("value is {:?}", v.value),
        },
        Field::Severity => format!("severity is {}", v.severity),
        Field::Reputation => format!("reputation is {}", v.reputation),
        Field::Sources => format!("{} independent sources", v.sources.len()),
        Field::Hits => format!("hits are {}", v.hits),
        Field::Tags => format!("tags: {}", list(&v.tags)),
        Field::Source => format!("sources: {}", list(&v.sources)),
        Field::SharedWith => format!("shared with: {}", list(&v.shared_with)),
        Field::FirstSeen => format!("first seen {}", v.first_seen),
        Field::LastSeen => format!("last seen {}", v.last_seen),
        Field::Expires => match v.expires {
            Some(e) => format!("expires {e}"),
            None => "never expires".to_string(),
        },
        Field::Active => {
            if v.active_at(now) {
                format!("active (ages out {})", v.aged_at)
            } else if v.expires.is_some_and(|e| e <= now) {
                format!("expired {}", v.expires.unwrap_or_default())
            } else {
                format!("aged out {}", v.aged_at)
            }
        }
        Field::Safe => format!("safe is {}", v.safe),
    }
}
