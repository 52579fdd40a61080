//! Compiling a rule to SQL for SQLite and PostgreSQL: the same selection as the in-memory
//! evaluation (a property test in `iocx-store` runs both against real databases).
//!
//! The result is a boolean expression over the `indicator` table aliased `i` that is never
//! NULL, so `NOT` around any part of it means what it says. Text from the rule always travels
//! as a parameter; numbers the compiler produced itself (kind and severity codes, counts,
//! times) are written inline, which keeps parameter types simple on PostgreSQL (where `i.kind`
//! is a `smallint` and a bound `i64` would not convert).

use super::ast::{Cond, Expr, Field, Op, Value};
use crate::{DAY, Kind, Timestamp};

/// The SQL dialect to compile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?N` placeholders; calls `regexp`, `iocx_within` and `iocx_host` (see
    /// [`sqlite_functions`](super::sqlite_functions)).
    Sqlite,
    /// PostgreSQL: `$N` placeholders; uses `~`, `inet` and string functions.
    Postgres,
}

/// A parameter of compiled SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlParam {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// A compiled rule: a boolean SQL expression over `indicator i`, never NULL, and its
/// parameters, which fill placeholders `offset + 1`, `offset + 2`, … in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFilter {
    /// The expression.
    pub sql: String,
    /// Its parameters, in placeholder order.
    pub params: Vec<SqlParam>,
}

const IP_KINDS: [Kind; 3] = [Kind::Ipv4, Kind::Ipv6, Kind::Cidr];
const HOST_KINDS: [Kind; 3] = [Kind::Url, Kind::Domain, Kind::Email];

fn codes(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.code().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn ints(xs: &[i64]) -> String {
    xs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

fn ord(op: Op) -> &'static str {
    match op {
        Op::Ne => "<>",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        _ => "=",
    }
}

const TRUE: &str = "(1 = 1)";
const FALSE: &str = "(1 = 0)";

struct Compiler {
    dialect: Dialect,
    now: Timestamp,
    offset: usize,
    params: Vec<SqlParam>,
}

impl Compiler {
    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// A placeholder for text `t`.
    fn text(&mut self, t: &str) -> String {
        self.params.push(SqlParam::Text(t.to_string()));
        let n = self.offset + self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn texts(&mut self, ts: &[String]) -> String {
        ts.iter()
            .map(|t| self.text(t))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn expr(&mut self, e: &Expr) -> String {
        match e {
            Expr::And(ps) if ps.is_empty() => TRUE.into(),
            Expr::Or(ps) if ps.is_empty() => FALSE.into(),
            Expr::And(ps) | Expr::Or(ps) => {
                let sep = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = ps.iter().map(|p| self.expr(p)).collect();
                format!("({})", parts.join(sep))
            }
            Expr::Not(inner) => format!("(NOT {})", self.expr(inner)),
            Expr::Cond(c) => self.cond(c),
        }
    }

    /// A set field (tags, source, shared_with): `exists(cond)` is the SQL for "has a name
    /// satisfying `cond`", where `cond` is `= ?` or `IN (…)`.
    fn names(&mut self, op: Op, value: &Value, exists: &dyn Fn(&str) -> String) -> String {
        match (op, value) {
            (Op::Eq | Op::Contains | Op::Ne, Value::Text(t)) => {
                let p = self.text(t);
                let has = exists(&format!("= {p}"));
                if op == Op::Ne {
                    format!("(NOT {has})")
                } else {
                    has
                }
            }
            (Op::In | Op::NotIn, Value::Texts(ts)) => {
                let ps = self.texts(ts);
                let has = exists(&format!("IN ({ps})"));
                if op == Op::NotIn {
                    format!("(NOT {has})")
                } else {
                    has
                }
            }
            (Op::All, Value::Texts(ts)) if !ts.is_empty() => {
                let parts: Vec<String> = ts
                    .iter()
                    .map(|t| {
                        let p = self.text(t);
                        exists(&format!("= {p}"))
                    })
                    .collect();
                format!("({})", parts.join(" AND "))
            }
            (Op::All, Value::Texts(_)) => TRUE.into(),
            _ => FALSE.into(),
        }
    }

    fn cond(&mut self, c: &Cond) -> String {
        match (c.field, &c.value) {
            (Field::Kind, Value::Kind(k)) => format!("(i.kind {} {})", ord(c.op), k.code()),
            (Field::Kind, Value::Kinds(ks)) => {
                let not = if c.op == Op::NotIn { "NOT " } else { "" };
                format!("(i.kind {not}IN ({}))", codes(ks))
            }
            (Field::Value, v) => self.value(c.op, v),
            (Field::Severity, Value::Severity(s)) => {
                format!("(i.severity {} {})", ord(c.op), s.code())
            }
            (Field::Severity, Value::Severities(ss)) => {
                let list: Vec<i64> = ss.iter().map(|s| i64::from(s.code())).collect();
                let not = if c.op == Op::NotIn { "NOT " } else { "" };
                format!("(i.severity {not}IN ({}))", ints(&list))
            }
            (Field::Reputation | Field::Sources | Field::Hits, v) => {
                let col = match c.field {
                    Field::Reputation => "i.reputation",
                    Field::Sources => "i.sources",
                    _ => "i.hits",
                };
                match v {
                    Value::Int(x) => format!("({col} {} {x})", ord(c.op)),
                    Value::Ints(xs) => {
                        let not = if c.op == Op::NotIn { "NOT " } else { "" };
                        format!("({col} {not}IN ({}))", ints(xs))
                    }
                    _ => FALSE.into(),
                }
            }
            (Field::Tags, v) => self.names(c.op, v, &|cond| {
                format!("(i.tagset IN (SELECT tagset_id FROM tagset_member WHERE tag {cond}))")
            }),
            (Field::Source, v) => self.names(c.op, v, &|cond| {
                format!(
                    "(EXISTS (SELECT 1 FROM observation o JOIN source s ON s.id = o.source_id \
                     WHERE o.indicator_id = i.id AND o.echo = 0 AND s.name {cond}))"
                )
            }),
            (Field::SharedWith, v) => self.names(c.op, v, &|cond| {
                format!(
                    "(EXISTS (SELECT 1 FROM delivery d JOIN configuration c ON c.id = d.destination_id \
                     WHERE d.indicator_id = i.id AND d.state = 'shared' AND c.name {cond}))"
                )
            }),
            (Field::FirstSeen, Value::Time(t)) => {
                format!("(i.first_seen {} {})", ord(c.op), t.at(self.now).0)
            }
            (Field::LastSeen, Value::Time(t)) => {
                let at = t.at(self.now).0;
                // `seen_day` is `last_seen / 86400`, indexed: the implied bound on it lets the
                // database use the index for the usual "seen in the last N days".
                let day = at.div_euclid(DAY);
                let hint = match c.op {
                    Op::Gt | Op::Ge => format!(" AND i.seen_day >= {day}"),
                    Op::Lt | Op::Le => format!(" AND i.seen_day <= {day}"),
                    Op::Eq => format!(" AND i.seen_day = {day}"),
                    _ => String::new(),
                };
                format!("(i.last_seen {} {at}{hint})", ord(c.op))
            }
            (Field::Expires, Value::Time(t)) => {
                let at = t.at(self.now).0;
                match c.op {
                    // Never expiring (NULL) is later than any time.
                    Op::Gt | Op::Ge | Op::Ne => {
                        format!("(i.expires IS NULL OR i.expires {} {at})", ord(c.op))
                    }
                    op => format!("(i.expires IS NOT NULL AND i.expires {} {at})", ord(op)),
                }
            }
            (Field::Active, Value::Bool(b)) => {
                let now = self.now.0;
                let active =
                    format!("(i.aged_at > {now} AND (i.expires IS NULL OR i.expires > {now}))");
                if *b == (c.op == Op::Eq) {
                    active
                } else {
                    format!("(NOT {active})")
                }
            }
            (Field::Safe, Value::Bool(b)) => {
                format!("(i.safe = {})", i64::from(*b == (c.op == Op::Eq)))
            }
            _ => FALSE.into(),
        }
    }

    fn value(&mut self, op: Op, v: &Value) -> String {
        let pg = self.pg();
        match (op, v) {
            (Op::Eq | Op::Ne, Value::Text(t)) => {
                let p = self.text(t);
                format!("(i.value {} {p})", ord(op))
            }
            (Op::In | Op::NotIn, Value::Texts(ts)) => {
                let not = if op == Op::NotIn { "NOT " } else { "" };
                let ps = self.texts(ts);
                format!("(i.value {not}IN ({ps}))")
            }
            // Case-sensitive and free of wildcards on both databases (`LIKE` is neither).
            (Op::Contains | Op::StartsWith | Op::EndsWith, Value::Text(t)) if t.is_empty() => {
                TRUE.into()
            }
            (Op::Contains, Value::Text(t)) => {
                let p = self.text(t);
                let f = if pg { "strpos" } else { "instr" };
                format!("({f}(i.value, {p}) > 0)")
            }
            (Op::StartsWith, Value::Text(t)) => {
                let n = t.chars().count();
                let p = self.text(t);
                if pg {
                    format!("(left(i.value, {n}) = {p})")
                } else {
                    format!("(substr(i.value, 1, {n}) = {p})")
                }
            }
            (Op::EndsWith, Value::Text(t)) => {
                let n = t.chars().count();
                let p = self.text(t);
                if pg {
                    format!("(right(i.value, {n}) = {p})")
                } else {
                    format!("(substr(i.value, -{n}) = {p})")
                }
            }
            (Op::Matches, Value::Regex(re)) => {
                if pg {
                    let p = self.text(re.portable());
                    format!("(i.value ~ {p})")
                } else {
                    let p = self.text(&re.for_rust());
                    format!("(regexp({p}, i.value) = 1)")
                }
            }
            (Op::Within, Value::Cidr(ip, prefix)) => {
                let p = self.text(&format!("{ip}/{prefix}"));
                let kinds = codes(&IP_KINDS);
                if pg {
                    // CASE, not AND: PostgreSQL may evaluate AND's operands in any order, and
                    // casting a domain to inet fails.
                    format!(
                        "(CASE WHEN i.kind IN ({kinds}) THEN i.value::inet <<= CAST({p} AS text)::inet ELSE false END)"
                    )
                } else {
                    format!("(i.kind IN ({kinds}) AND iocx_within(i.kind, i.value, {p}) = 1)")
                }
            }
            (Op::SubdomainOf, Value::Domain(d)) => {
                // The host equals the name or ends with `.name`: compare the end of
                // `'.' || host` with `'.' || name`.
                let dotted = format!(".{d}");
                let n = dotted.chars().count();
                let p = self.text(&dotted);
                let kinds = codes(&HOST_KINDS);
                if pg {
                    format!(
                        "(i.kind IN ({kinds}) AND right('.' || {}, {n}) = {p})",
                        pg_host()
                    )
                } else {
                    format!(
                        "(i.kind IN ({kinds}) AND substr('.' || iocx_host(i.kind, i.value), -{n}) = {p})"
                    )
                }
            }
            _ => FALSE.into(),
        }
    }
}

/// PostgreSQL's version of [`host`](super::sql_functions::host) over canonical values: the
/// domain itself, the part after the `@` of an e-mail address, and the host of a URL when it
/// is a name (not an IPv4 address, not a bracketed IPv6 one), else `''`.
fn pg_host() -> String {
    format!(
        "(CASE i.kind WHEN {domain} THEN i.value WHEN {email} THEN split_part(i.value, '@', 2) \
         WHEN {url} THEN coalesce(substring(i.value from '^[a-z][a-z0-9+.-]*://([^:/\\[]*[^0-9.:/\\[][^:/]*)'), '') \
         ELSE '' END)",
        domain = Kind::Domain.code(),
        email = Kind::Email.code(),
        url = Kind::Url.code()
    )
}

/// Compiles `e` for `dialect`, with relative times resolved at `now` and placeholders numbered
/// from `offset + 1`.
pub(crate) fn compile(e: &Expr, dialect: Dialect, now: Timestamp, offset: usize) -> SqlFilter {
    let mut c = Compiler {
        dialect,
        now,
        offset,
        params: Vec::new(),
    };
    let sql = c.expr(e);
    SqlFilter {
        sql,
        params: c.params,
    }
}
