//! The rule AST: one tree, evaluated in memory and compiled to SQL.
//!
//! Conditions are data (`field op value`), combined by `And`, `Or` and `Not`. A tree made by
//! the parser is always well-typed: every [`Cond`] pairs a field with an operator it accepts
//! (see [`Field::accepts`]) and a [`Value`] of the shape that operator takes.

use std::net::IpAddr;

use super::pattern::Pattern;
use crate::{Kind, Severity, Timestamp};

/// A rule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Every part holds (an empty `And` always holds).
    And(Vec<Expr>),
    /// Some part holds (an empty `Or` never holds).
    Or(Vec<Expr>),
    /// The part does not hold.
    Not(Box<Expr>),
    /// A condition on one field.
    Cond(Cond),
}

/// A condition: `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// The field.
    pub field: Field,
    /// The operator.
    pub op: Op,
    /// The value compared with.
    pub value: Value,
}

/// What a rule can look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The indicator's kind (`url`, `domain`, …).
    Kind,
    /// The canonical value.
    Value,
    /// Aggregate severity, compared by order (`unknown < low < medium < high < critical`).
    Severity,
    /// Aggregate reputation, 1 (malicious) to 10 (good).
    Reputation,
    /// Tags (every source's and the user's), case-sensitive.
    Tags,
    /// The independent sources that report the indicator, by name.
    Source,
    /// How many independent sources report the indicator.
    Sources,
    /// Total hits over all sources.
    Hits,
    /// First seen by any source.
    FirstSeen,
    /// Last seen by any source.
    LastSeen,
    /// Expiry; an indicator that never expires compares as infinitely late.
    Expires,
    /// Neither expired nor aged out.
    Active,
    /// Marked safe (a verdict, or the user's).
    Safe,
    /// The destination configurations the indicator is currently delivered to.
    SharedWith,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 14] = [
        Field::Kind,
        Field::Value,
        Field::Severity,
        Field::Reputation,
        Field::Tags,
        Field::Source,
        Field::Sources,
        Field::Hits,
        Field::FirstSeen,
        Field::LastSeen,
        Field::Expires,
        Field::Active,
        Field::Safe,
        Field::SharedWith,
    ];

    /// The name rules use.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Value => "value",
            Field::Severity => "severity",
            Field::Reputation => "reputation",
            Field::Tags => "tags",
            Field::Source => "source",
            Field::Sources => "sources",
            Field::Hits => "hits",
            Field::FirstSeen => "first_seen",
            Field::LastSeen => "last_seen",
            Field::Expires => "expires",
            Field::Active => "active",
            Field::Safe => "safe",
            Field::SharedWith => "shared_with",
        }
    }

    /// The field for a name, case-insensitively; also accepts the names Netskope CTE's query
    /// builder uses (`type`, `sharedWith`, `expiresAt`, `firstSeen`, `lastSeen`) and `tag`.
    pub fn from_name(name: &str) -> Option<Field> {
        let n = name.to_ascii_lowercase();
        Field::ALL
            .into_iter()
            .find(|f| f.name() == n)
            .or(match n.as_str() {
                "type" => Some(Field::Kind),
                "tag" => Some(Field::Tags),
                "sharedwith" => Some(Field::SharedWith),
                "expiresat" | "expires_at" => Some(Field::Expires),
                "firstseen" => Some(Field::FirstSeen),
                "lastseen" => Some(Field::LastSeen),
                _ => None,
            })
    }

    /// Whether `op` may be used with this field.
    pub fn accepts(self, op: Op) -> bool {
        use Op::*;
        match self {
            Field::Kind => matches!(op, Eq | Ne | In | NotIn),
            Field::Value => matches!(
                op,
                Eq | Ne
                    | In
                    | NotIn
                    | Contains
                    | StartsWith
                    | EndsWith
                    | Matches
                    | Within
                    | SubdomainOf
            ),
            Field::Severity | Field::Reputation | Field::Sources | Field::Hits => {
                matches!(op, Eq | Ne | Lt | Le | Gt | Ge | In | NotIn)
            }
            Field::Tags => matches!(op, Eq | Ne | Contains | In | NotIn | All),
            Field::Source | Field::SharedWith => matches!(op, Eq | Ne | In | NotIn | All),
            Field::FirstSeen | Field::LastSeen | Field::Expires => {
                matches!(op, Eq | Ne | Lt | Le | Gt | Ge)
            }
            Field::Active | Field::Safe => matches!(op, Eq | Ne),
        }
    }

    /// The operators this field accepts, as a user reads them.
    pub fn operators(self) -> &'static str {
        match self {
            Field::Kind => "= != in (…) not in (…)",
            Field::Value => {
                "= != in (…) not in (…) contains starts_with ends_with matches within subdomain_of"
            }
            Field::Severity | Field::Reputation | Field::Sources | Field::Hits => {
                "= != < <= > >= in (…) not in (…)"
            }
            Field::Tags => "= != contains in (…) not in (…) all (…)",
            Field::Source | Field::SharedWith => "= != in (…) not in (…) all (…)",
            Field::FirstSeen | Field::LastSeen | Field::Expires => "= != < <= > >=",
            Field::Active | Field::Safe => "= true, = false, != …, or the bare name",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=` (also written `==`).
    Eq,
    /// `!=` (also written `<>`).
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in (…)`: equal to one of.
    In,
    /// `not in (…)`: equal to none of.
    NotIn,
    /// `all (…)`: has every one of (tags, source, shared_with).
    All,
    /// `contains`: a substring of the value; for tags, has the tag.
    Contains,
    /// `starts_with`
    StartsWith,
    /// `ends_with`
    EndsWith,
    /// `matches /regex/`
    Matches,
    /// `within CIDR`
    Within,
    /// `subdomain_of NAME`
    SubdomainOf,
}

impl Op {
    /// The operator as written in canonical text.
    pub const fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::All => "all",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Matches => "matches",
            Op::Within => "within",
            Op::SubdomainOf => "subdomain_of",
        }
    }

    /// Whether the operator takes a parenthesised list.
    pub const fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::NotIn | Op::All)
    }
}

/// A point in time in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeValue {
    /// A fixed time.
    At(Timestamp),
    /// `now`, plus this many seconds (negative: in the past).
    Now(i64),
}

impl TimeValue {
    /// The time it stands for at `now`.
    pub fn at(self, now: Timestamp) -> Timestamp {
        match self {
            TimeValue::At(t) => t,
            TimeValue::Now(offset) => now.plus(offset),
        }
    }
}

/// The value in a condition. Which variant goes with which field and operator:
///
/// | field | `=` `!=` and order | `in` `not in` `all` | other |
/// |---|---|---|---|
/// | kind | `Kind` | `Kinds` | |
/// | value | `Text` (canonical) | `Texts` (canonical) | `Text` for contains/starts_with/ends_with, `Regex`, `Cidr`, `Domain` |
/// | severity | `Severity` | `Severities` | |
/// | reputation, sources, hits | `Int` | `Ints` | |
/// | tags, source, shared_with | `Text` | `Texts` | `Text` for `tags contains` |
/// | first_seen, last_seen, expires | `Time` | | |
/// | active, safe | `Bool` | | |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// A whole number.
    Int(i64),
    /// Several whole numbers.
    Ints(Vec<i64>),
    /// A kind.
    Kind(Kind),
    /// Several kinds.
    Kinds(Vec<Kind>),
    /// A severity.
    Severity(Severity),
    /// Several severities.
    Severities(Vec<Severity>),
    /// A time.
    Time(TimeValue),
    /// A regular expression (checked, in the portable subset).
    Regex(Pattern),
    /// An address range: the network address (host bits cleared) and prefix length.
    Cidr(IpAddr, u8),
    /// A domain name, canonical (lowercase, IDNA ASCII form).
    Domain(String),
    /// A boolean.
    Bool(bool),
}
