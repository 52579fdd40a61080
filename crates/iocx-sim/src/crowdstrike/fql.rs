//! Falcon Query Language (FQL): the `filter` parameter of the IOC and alert endpoints.
//!
//! The subset the contract names, parsed into a small tree that is evaluated in memory:
//!
//! - `field:value` equality, `field:'quoted value'`, `field:['a', 'b']` (any of the list);
//! - `!` before the value negates (`tags:!'netskope-ce'`, `type:!['md5']`);
//! - `>`, `>=`, `<`, `<=` compare timestamps, numbers or strings;
//! - `*` before a quoted value matches a wildcard pattern (`ioc_source:!*'Netskope*'`), `~`
//!   matches a substring;
//! - `+` is AND, `,` is OR (AND binds tighter), parentheses group.
//!
//! Whitespace around tokens is ignored (CE writes `value: ['a', 'b']`), and whitespace between
//! two conditions counts as AND, because a raw `+` in a query string decodes to a space.
//! String comparisons ignore ASCII case.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// The longest filter accepted, in bytes (CE sends 2,000 values per filter).
pub const MAX_FILTER_BYTES: usize = 1024 * 1024;

/// The deepest nesting of parentheses accepted.
const MAX_DEPTH: usize = 32;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part must match.
    And(Vec<Filter>),
    /// Any part must match.
    Or(Vec<Filter>),
    /// One condition.
    Cond(Cond),
}

/// How a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal to any of the values.
    Eq,
    /// Matches any of the wildcard patterns (`*`).
    Wildcard,
    /// Contains any of the values (`~`).
    Contains,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

/// One `field:[!][op]value` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    /// The field name, as written.
    pub field: String,
    /// Whether `!` negates it.
    pub negate: bool,
    /// The comparison.
    pub op: Op,
    /// The values, as written (without quotes).
    pub values: Vec<String>,
    /// The values lower-cased, for equality.
    lowered: HashSet<String>,
}

/// A field's value on one resource, as the evaluator sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A string.
    Str(String),
    /// A list of strings (matches when any element does).
    Strs(Vec<String>),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// No value.
    Null,
}

/// Something a filter can be evaluated on.
pub trait Subject {
    /// The value of `field` (already checked to be a known field).
    fn field(&self, field: &str) -> FieldValue;
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

/// Parses `text`; `fields` lists the field names the resource has. An empty filter is `None`.
///
/// # Errors
/// A message naming the position and what was expected, or the unknown field.
pub fn parse(text: &str, fields: &[&str]) -> Result<Option<Filter>, FilterError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(FilterError(format!(
            "the filter is longer than {MAX_FILTER_BYTES} bytes"
        )));
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        chars: text.char_indices().collect(),
        pos: 0,
        fields,
        depth: 0,
    };
    let filter = p.or()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        return Err(p.error(&format!("unexpected '{c}'")));
    }
    Ok(Some(filter))
}

struct Parser<'a> {
    chars: Vec<(usize, char)>,
    pos: usize,
    fields: &'a [&'a str],
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|(_, c)| *c)
    }

    fn offset(&self) -> usize {
        self.chars
            .get(self.pos)
            .map(|(i, _)| *i)
            .unwrap_or_else(|| self.chars.last().map_or(0, |(i, c)| i + c.len_utf8()))
    }

    fn error(&self, what: &str) -> FilterError {
        FilterError(format!(
            "invalid filter at position {}: {what}",
            self.offset()
        ))
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut parts = vec![self.and()?];
        loop {
            self.skip_ws();
            if self.eat(',') {
                parts.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut parts = vec![self.term()?];
        loop {
            let before = self.pos;
            self.skip_ws();
            if self.eat('+') {
                parts.push(self.term()?);
                continue;
            }
            // Whitespace between two conditions: a `+` that was decoded to a space.
            let spaced = self.pos > before;
            if spaced && self.peek().is_some_and(|c| c == '(' || is_field_char(c)) {
                parts.push(self.term()?);
                continue;
            }
            break;
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn term(&mut self) -> Result<Filter, FilterError> {
        self.skip_ws();
        if self.eat('(') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error("too many nested parentheses"));
            }
            let inner = self.or()?;
            self.skip_ws();
            if !self.eat(')') {
                return Err(self.error("expected ')'"));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        let start = self.pos;
        while self.peek().is_some_and(is_field_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(match self.peek() {
                Some(c) => self.error(&format!("expected a field name, found '{c}'")),
                None => self.error("expected a field name, found the end"),
            });
        }
        let field: String = self.chars[start..self.pos].iter().map(|(_, c)| c).collect();
        if !self.fields.contains(&field.as_str()) {
            return Err(FilterError(format!(
                "invalid filter: unknown field '{field}'; allowed: {}",
                self.fields.join(", ")
            )));
        }
        self.skip_ws();
        if !self.eat(':') {
            return Err(self.error(&format!("expected ':' after '{field}'")));
        }
        self.skip_ws();
        let negate = self.eat('!');
        let op = if self.eat('*') {
            Op::Wildcard
        } else if self.eat('~') {
            Op::Contains
        } else if self.eat('>') {
            if self.eat('=') { Op::Ge } else { Op::Gt }
        } else if self.eat('<') {
            if self.eat('=') { Op::Le } else { Op::Lt }
        } else {
            Op::Eq
        };
        self.skip_ws();
        let values = if self.eat('[') {
            let mut values = Vec::new();
            loop {
                self.skip_ws();
                if self.eat(']') {
                    break;
                }
                values.push(self.value(true)?);
                self.skip_ws();
                if self.eat(',') {
                    continue;
                }
                if self.eat(']') {
                    break;
                }
                return Err(self.error("expected ',' or ']' in a list"));
            }
            values
        } else {
            vec![self.value(false)?]
        };
        let lowered = values.iter().map(|v| v.to_ascii_lowercase()).collect();
        Ok(Filter::Cond(Cond {
            field,
            negate,
            op,
            values,
            lowered,
        }))
    }

    fn value(&mut self, in_list: bool) -> Result<String, FilterError> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.error("unterminated quoted value")),
                        Some('\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(c) => {
                                    out.push(c);
                                    self.pos += 1;
                                }
                                None => return Err(self.error("unterminated quoted value")),
                            }
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(out);
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    let stop = c.is_whitespace()
                        || matches!(c, '+' | ',' | ')' | '(' | '[' | '\'' | '"')
                        || (in_list && c == ']');
                    if stop {
                        break;
                    }
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.error("expected a value"));
                }
                Ok(self.chars[start..self.pos].iter().map(|(_, c)| c).collect())
            }
        }
    }
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Parses a filter literal as a timestamp: RFC 3339 (any fraction, `Z` or offset), a date-time
/// without zone (UTC), or a bare date.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), format) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

/// Matches `text` against a pattern where `*` stands for any run of characters (ASCII case
/// ignored).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Cond {
    fn test_one(&self, value: &FieldValue, literal: &str, lowered: &str) -> bool {
        use std::cmp::Ordering;
        let ordering: Option<Ordering> = match value {
            FieldValue::Time(t) => parse_time(literal).map(|l| t.cmp(&l)),
            FieldValue::Int(i) => literal.trim().parse::<f64>().ok().and_then(|l| {
                #[allow(clippy::cast_precision_loss)]
                (*i as f64).partial_cmp(&l)
            }),
            FieldValue::Str(s) => Some(s.to_ascii_lowercase().as_str().cmp(lowered)),
            FieldValue::Bool(b) => match lowered {
                "true" => Some(b.cmp(&true)),
                "false" => Some(b.cmp(&false)),
                _ => None,
            },
            FieldValue::Null => None,
            FieldValue::Strs(items) => {
                return items
                    .iter()
                    .any(|s| self.test_one(&FieldValue::Str(s.clone()), literal, lowered));
            }
        };
        match self.op {
            Op::Eq => match value {
                FieldValue::Str(s) => s.eq_ignore_ascii_case(literal),
                FieldValue::Null => lowered == "null" || lowered.is_empty(),
                _ => ordering == Some(Ordering::Equal),
            },
            Op::Wildcard => match value {
                FieldValue::Str(s) => wildcard_match(literal, s),
                FieldValue::Null => wildcard_match(literal, ""),
                _ => false,
            },
            Op::Contains => match value {
                FieldValue::Str(s) => s.to_ascii_lowercase().contains(lowered),
                _ => false,
            },
            Op::Gt => ordering == Some(Ordering::Greater),
            Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt => ordering == Some(Ordering::Less),
            Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        }
    }

    fn matches(&self, subject: &dyn Subject) -> bool {
        let value = subject.field(&self.field);
        let hit = match (&value, self.op) {
            // Plain equality on strings: one hash look-up for any length of list.
            (FieldValue::Str(s), Op::Eq) => self.lowered.contains(&s.to_ascii_lowercase()),
            (FieldValue::Strs(items), Op::Eq) => items
                .iter()
                .any(|s| self.lowered.contains(&s.to_ascii_lowercase())),
            _ => self
                .values
                .iter()
                .any(|v| self.test_one(&value, v, &v.to_ascii_lowercase())),
        };
        hit != self.negate
    }
}

impl Filter {
    /// Whether `subject` matches.
    pub fn matches(&self, subject: &dyn Subject) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|p| p.matches(subject)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(subject)),
            Filter::Cond(c) => c.matches(subject),
        }
    }

    /// The values a plain, non-negated `field:` equality at the top level (alone or inside the
    /// top-level AND) pins the result to, so a store can look them up instead of scanning.
    pub fn pinned_values(&self, field: &str) -> Option<&[String]> {
        match self {
            Filter::Cond(c) if c.field == field && !c.negate && c.op == Op::Eq => Some(&c.values),
            Filter::And(parts) => parts.iter().find_map(|p| match p {
                Filter::Cond(_) => p.pinned_values(field),
                _ => None,
            }),
            _ => None,
        }
    }
}
