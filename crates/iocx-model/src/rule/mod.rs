//! The rule language: business rules that decide which indicators a sharing selects.
//!
//! ```text
//! kind in (url, domain) and severity >= high and last_seen > now - 7d
//!   and source all ("edr", "intel") and not value subdomain_of corp.example
//! ```
//!
//! A rule is parsed once ([`Rule::parse`]) into an [`Expr`] tree — `And`, `Or`, `Not` over
//! conditions held as data ([`Cond`]: field, operator, value), the shape lldap uses for its
//! filters. The one tree has two back ends that must agree:
//!
//! - in memory: [`Rule::matches`] over an [`IndicatorView`], and [`Rule::explain`], which says
//!   term by term what held and what failed;
//! - SQL: [`Rule::to_sql`] compiles to a boolean expression over the store's `indicator i` for
//!   SQLite or PostgreSQL, with positional parameters.
//!
//! A property test in `iocx-store` (`tests/rule_sql.rs`) generates random rules and random
//! indicators and checks that memory, SQLite and PostgreSQL select exactly the same ones.
//!
//! Design decisions:
//! - Everything is checked at parse time (field/operator pairs, kinds, severities, numbers,
//!   times, CIDR ranges, domain names, regexes), so a parsed rule always evaluates and
//!   compiles; errors give the line and column and what was expected there.
//! - Regexes are restricted to the subset on which Rust's `regex` and PostgreSQL agree, and
//!   rewritten into one portable form both engines run ([`Pattern`]).
//! - Where SQL needs logic that the two databases spell differently, SQLite calls functions
//!   implemented in [`sql_functions`] — the same code the in-memory evaluator calls — and
//!   PostgreSQL uses built-ins (`~`, `inet <<=`, string functions) that the property test holds
//!   to the same answers.
//! - Exclusions ([`AllowList`]) are not part of the SQL: they are applied in memory to what the
//!   SQL selected, so each suppressed indicator can be attributed to the entry that matched.
//!
//! The language is documented for users in `docs/rules.md`.

mod allow;
mod ast;
mod display;
mod eval;
mod lexer;
mod parser;
mod pattern;
mod sql;
pub mod sql_functions;

use std::fmt;

pub use allow::{AllowList, BUILTIN as BUILTIN_ALLOWLISTS, BadEntry, Entry};
pub use ast::{Cond, Expr, Field, Op, TimeValue, Value};
pub use eval::{Explanation, IndicatorView};
pub use parser::{MAX_DEPTH, MAX_RULE_LEN};
pub use pattern::{MAX_PATTERN_LEN, Pattern, PatternError};
pub use sql::{Dialect, SqlFilter, SqlParam};
pub use sql_functions::{FnArg, FnResult, SqliteFunction, sqlite_functions};

use crate::Timestamp;

/// A rule that does not parse: where (1-based line and column, counted in characters) and what
/// was wrong or expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("line {line}, column {column}: {message}")]
pub struct RuleError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong, or what was expected and what was found instead.
    pub message: String,
}

impl RuleError {
    pub(crate) fn at(line: usize, column: usize, message: impl Into<String>) -> RuleError {
        RuleError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// A parsed, checked rule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    expr: Expr,
}

impl Rule {
    /// Parses rule text.
    ///
    /// # Errors
    /// A [`RuleError`] at the line and column where the text stops making sense, saying what
    /// was expected there.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        parser::parse(text).map(|expr| Rule { expr })
    }

    /// A rule from a tree built in code. The tree is checked by printing and re-parsing it, so
    /// it must be one the parser could have produced: operators the fields accept, values of
    /// the right shape, canonical values for `value =` and `value in`, and `And`/`Or` of at
    /// least two parts.
    ///
    /// # Errors
    /// The parse error of the printed tree, or a [`RuleError`] at line 1, column 1 saying that
    /// the tree is not in canonical form.
    pub fn from_expr(expr: Expr) -> Result<Rule, RuleError> {
        let text = display::to_text(&expr);
        let parsed = Rule::parse(&text)?;
        if parsed.expr != expr {
            return Err(RuleError::at(
                1,
                1,
                format!(
                    "the tree is not in canonical form; as text it reads `{text}`, which parses to a different tree"
                ),
            ));
        }
        Ok(parsed)
    }

    /// The tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether the rule selects `view` at `now` (the time `now - 7d` and `active` refer to).
    pub fn matches(&self, view: &IndicatorView, now: Timestamp) -> bool {
        eval::matches(&self.expr, view, now)
    }

    /// Which terms hold and which fail for `view` at `now`, as a tree with the rule text of
    /// each term.
    pub fn explain(&self, view: &IndicatorView, now: Timestamp) -> Explanation {
        eval::explain(&self.expr, view, now)
    }

    /// The rule as a SQL boolean expression over `indicator i` for `dialect`, with relative
    /// times resolved at `now`, and parameters numbered from `offset + 1` (pass the number of
    /// parameters the caller's own SQL uses before the filter, or 0).
    pub fn to_sql(&self, dialect: Dialect, now: Timestamp, offset: usize) -> SqlFilter {
        sql::compile(&self.expr, dialect, now, offset)
    }
}

impl fmt::Display for Rule {
    /// The canonical text: parsing it gives the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display::to_text(&self.expr))
    }
}

impl std::str::FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Rule, RuleError> {
        Rule::parse(text)
    }
}

#[cfg(test)]
mod tests;
