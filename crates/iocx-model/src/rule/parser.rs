//! The rule parser: text to a checked [`Expr`], with errors at line and column.
//!
//! Recursive descent over the grammar in `docs/rules.md`; precedence is `not` > `and` > `or`.
//! Every value is checked against its field here (kinds, severities, numbers, times, regexes,
//! CIDR ranges, domain names), so a parsed rule always evaluates and compiles.

use std::net::IpAddr;

use super::RuleError;
use super::ast::{Cond, Expr, Field, Op, TimeValue, Value};
use super::lexer::{Tok, Token, lex, unit_seconds};
use super::pattern::Pattern;
use crate::{Kind, Severity, Timestamp};

/// The longest rule text accepted, in bytes.
pub const MAX_RULE_LEN: usize = 64 * 1024;
/// The deepest nesting of `not` and parentheses accepted.
pub const MAX_DEPTH: usize = 64;

pub(crate) fn parse(text: &str) -> Result<Expr, RuleError> {
    if text.len() > MAX_RULE_LEN {
        return Err(RuleError::at(
            1,
            1,
            format!("the rule is longer than {MAX_RULE_LEN} bytes"),
        ));
    }
    let mut p = Parser {
        tokens: lex(text)?,
        at: 0,
        depth: 0,
    };
    if p.peek().tok == Tok::End {
        return Err(p.expected("a condition such as `severity >= high`"));
    }
    let expr = p.or()?;
    if p.peek().tok != Tok::End {
        let after = p.tokens[p.at.saturating_sub(1)].text.clone();
        return Err(p.expected(&format!(
            "`and`, `or` or the end of the rule after `{after}`"
        )));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    /// "expected …, found …" at the next token.
    fn expected(&self, what: &str) -> RuleError {
        let t = self.peek();
        RuleError::at(
            t.line,
            t.col,
            format!("expected {what}, found {}", t.describe()),
        )
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut parts = vec![self.and()?];
        while self.peek().is_word("or") {
            self.next();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut parts = vec![self.unary()?];
        while self.peek().is_word("and") {
            self.next();
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.depth >= MAX_DEPTH {
            let t = self.peek();
            return Err(RuleError::at(
                t.line,
                t.col,
                format!("the rule nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Expr, RuleError> {
        if self.peek().is_word("not") {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            let open = self.next();
            let e = self.or()?;
            if self.peek().tok != Tok::RParen {
                return Err(self.expected(&format!(
                    "`)` to close the `(` at line {}, column {}",
                    open.line, open.col
                )));
            }
            self.next();
            return Ok(e);
        }
        self.cond().map(Expr::Cond)
    }

    fn cond(&mut self) -> Result<Cond, RuleError> {
        let t = self.peek().clone();
        if t.tok != Tok::Word || ["and", "or"].iter().any(|k| t.is_word(k)) {
            return Err(self.expected("a field such as `severity` or `tags`"));
        }
        let field = Field::from_name(&t.text).ok_or_else(|| {
            let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
            let hint = suggest(&t.text, &names)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            RuleError::at(
                t.line,
                t.col,
                format!(
                    "unknown field `{}`; {hint}fields are {}",
                    t.text,
                    names.join(", ")
                ),
            )
        })?;
        self.next();
        // `active` and `safe` stand alone as conditions.
        if matches!(field, Field::Active | Field::Safe) && !matches!(self.peek().tok, Tok::Op(_)) {
            return Ok(Cond {
                field,
                op: Op::Eq,
                value: Value::Bool(true),
            });
        }
        let op_tok = self.peek().clone();
        let op = self.op(field)?;
        if !field.accepts(op) {
            return Err(RuleError::at(
                op_tok.line,
                op_tok.col,
                format!(
                    "`{}` cannot be used with `{}`; `{}` takes {}",
                    op.text(),
                    field.name(),
                    field.name(),
                    field.operators()
                ),
            ));
        }
        let value = self.value(field, op, &op_tok)?;
        Ok(Cond { field, op, value })
    }

    fn op(&mut self, field: Field) -> Result<Op, RuleError> {
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Op(o) => match *o {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Tok::Word => match t.text.to_ascii_lowercase().as_str() {
                "in" => Op::In,
                "all" => Op::All,
                "contains" => Op::Contains,
                "starts_with" => Op::StartsWith,
                "ends_with" => Op::EndsWith,
                "matches" => Op::Matches,
                "within" => Op::Within,
                "subdomain_of" => Op::SubdomainOf,
                "not"
                    if self
                        .tokens
                        .get(self.at + 1)
                        .is_some_and(|n| n.is_word("in")) =>
                {
                    self.next();
                    Op::NotIn
                }
                _ => {
                    return Err(self.expected(&format!(
                        "an operator after `{}` ({})",
                        field.name(),
                        field.operators()
                    )));
                }
            },
            _ => {
                return Err(self.expected(&format!(
                    "an operator after `{}` ({})",
                    field.name(),
                    field.operators()
                )));
            }
        };
        self.next();
        Ok(op)
    }

    /// The single value token after `op_tok`.
    fn one(&mut self, op_tok: &Token, what: &str) -> Result<Token, RuleError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Word | Tok::Str(_) | Tok::Int(_) | Tok::Duration(_) | Tok::Regex(..) => {
                self.next();
                Ok(t)
            }
            Tok::LParen => Err(self.expected(&format!(
                "{what} after `{}` (a list in parentheses goes with `in`, `not in` or `all`)",
                op_tok.text
            ))),
            _ => Err(self.expected(&format!("{what} after `{}`", op_tok.text))),
        }
    }

    /// A parenthesised, comma-separated, non-empty list after `op_tok`.
    fn list(&mut self, op_tok: &Token, what: &str) -> Result<Vec<Token>, RuleError> {
        if self.peek().tok != Tok::LParen {
            return Err(self.expected(&format!("`(` and a list of {what} after `{}`", op_tok.text)));
        }
        self.next();
        let mut out = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Word | Tok::Str(_) | Tok::Int(_) | Tok::Duration(_) => {
                    self.next();
                    out.push(t);
                }
                _ => return Err(self.expected(&format!("{what} in the list"))),
            }
            match self.peek().tok {
                Tok::Comma => {
                    self.next();
                }
                Tok::RParen => {
                    self.next();
                    return Ok(out);
                }
                _ => return Err(self.expected("`,` or `)` in the list")),
            }
        }
    }

    /// One value or a list of them, as the operator takes.
    fn values(&mut self, op: Op, op_tok: &Token, what: &str) -> Result<Vec<Token>, RuleError> {
        if op.takes_list() {
            self.list(op_tok, what)
        } else {
            self.one(op_tok, what).map(|t| vec![t])
        }
    }

    fn value(&mut self, field: Field, op: Op, op_tok: &Token) -> Result<Value, RuleError> {
        let list = op.takes_list();
        match field {
            Field::Active | Field::Safe => {
                let t = self.one(op_tok, "true or false")?;
                if t.is_word("true") {
                    Ok(Value::Bool(true))
                } else if t.is_word("false") {
                    Ok(Value::Bool(false))
                } else {
                    Err(at(
                        &t,
                        format!("expected true or false, found {}", t.describe()),
                    ))
                }
            }
            Field::FirstSeen | Field::LastSeen | Field::Expires => {
                self.time(op_tok).map(Value::Time)
            }
            Field::Kind => {
                let kinds = self
                    .values(op, op_tok, "a kind")?
                    .iter()
                    .map(kind)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if list {
                    Value::Kinds(kinds)
                } else {
                    Value::Kind(kinds[0])
                })
            }
            Field::Severity => {
                let sevs = self
                    .values(op, op_tok, "a severity")?
                    .iter()
                    .map(severity)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if list {
                    Value::Severities(sevs)
                } else {
                    Value::Severity(sevs[0])
                })
            }
            Field::Reputation | Field::Sources | Field::Hits => {
                let (lo, hi, what) = match field {
                    Field::Reputation => (1, 10, "a reputation from 1 (malicious) to 10 (good)"),
                    Field::Sources => (0, i64::MAX, "a count of sources (0 or more)"),
                    _ => (0, i64::MAX, "a count of hits (0 or more)"),
                };
                let mut out = Vec::new();
                for t in self.values(op, op_tok, "a whole number")? {
                    match t.tok {
                        Tok::Int(n) if (lo..=hi).contains(&n) => out.push(n),
                        _ => {
                            return Err(at(
                                &t,
                                format!("`{}` takes {what}; found {}", field.name(), t.describe()),
                            ));
                        }
                    }
                }
                Ok(if list {
                    Value::Ints(out)
                } else {
                    Value::Int(out[0])
                })
            }
            Field::Tags | Field::Source | Field::SharedWith => {
                let what = match field {
                    Field::Tags => "a tag",
                    Field::Source => "a source name",
                    _ => "a destination configuration name",
                };
                let names = self
                    .values(op, op_tok, what)?
                    .iter()
                    .map(|t| name(t, what))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if list {
                    Value::Texts(names)
                } else {
                    Value::Text(names.into_iter().next().unwrap_or_default())
                })
            }
            Field::Value => self.value_value(op, op_tok),
        }
    }

    fn value_value(&mut self, op: Op, op_tok: &Token) -> Result<Value, RuleError> {
        match op {
            Op::Matches => {
                let t = self.one(op_tok, "a /regex/")?;
                let (body, ci) = match &t.tok {
                    Tok::Regex(body, ci) => (body.clone(), *ci),
                    Tok::Str(s) => (s.clone(), false),
                    _ => {
                        return Err(at(
                            &t,
                            format!("expected a /regex/ after `matches`, found {}", t.describe()),
                        ));
                    }
                };
                Pattern::new(&body, ci).map(Value::Regex).map_err(|e| {
                    // The column of the offending character: after the opening `/` or quote,
                    // counting each `\/` as written (two characters).
                    let raw = raw_offset(&body, e.offset);
                    RuleError::at(t.line, t.col + 1 + raw, e.message)
                })
            }
            Op::Within => {
                let t = self.one(op_tok, "an IP address or CIDR range")?;
                let (ip, prefix) = parse_cidr(&t.text_value()).map_err(|m| at(&t, m))?;
                Ok(Value::Cidr(ip, prefix))
            }
            Op::SubdomainOf => {
                let t = self.one(op_tok, "a domain name")?;
                canonical_domain(&t.text_value())
                    .map(Value::Domain)
                    .map_err(|m| at(&t, m))
            }
            Op::In | Op::NotIn => {
                let vals = self.list(op_tok, "values")?;
                Ok(Value::Texts(
                    vals.iter()
                        .map(|t| name(t, "a value").map(|v| canonical_value(&v)))
                        .collect::<Result<_, _>>()?,
                ))
            }
            Op::Eq | Op::Ne => {
                let t = self.one(op_tok, "a value")?;
                Ok(Value::Text(canonical_value(&name(&t, "a value")?)))
            }
            _ => {
                let t = self.one(op_tok, "text")?;
                Ok(Value::Text(name(&t, "text")?))
            }
        }
    }

    fn time(&mut self, op_tok: &Token) -> Result<TimeValue, RuleError> {
        const WHAT: &str = "a time such as `now - 7d`, `2026-01-31` or \"2026-01-31T12:00:00Z\"";
        let t = self.one(op_tok, WHAT)?;
        if t.is_word("now") {
            let sign = match self.peek().tok {
                Tok::Minus => -1,
                Tok::Plus => 1,
                _ => return Ok(TimeValue::Now(0)),
            };
            let sign_tok = self.next();
            let d = self.peek().clone();
            return match d.tok {
                Tok::Duration(secs) => {
                    self.next();
                    Ok(TimeValue::Now(sign * secs))
                }
                Tok::Int(_) => Err(at(
                    &d,
                    format!(
                        "`{}` needs a unit: s, m, h, d or w (for example `{}d`)",
                        d.text, d.text
                    ),
                )),
                Tok::Word if d.text.starts_with(|c: char| c.is_ascii_digit()) => {
                    let unit = d.text.trim_start_matches(|c: char| c.is_ascii_digit());
                    Err(at(
                        &d,
                        format!(
                            "unknown time unit `{unit}`; use s, m, h, d or w{}",
                            if unit_seconds(unit).is_none() && unit.len() > 1 {
                                " (one unit per duration)"
                            } else {
                                ""
                            }
                        ),
                    ))
                }
                _ => Err(self.expected(&format!(
                    "a duration such as `7d` after `{}`",
                    sign_tok.text
                ))),
            };
        }
        match &t.tok {
            Tok::Duration(_) => Err(at(
                &t,
                format!("a duration alone is not a time; write `now - {}`", t.text),
            )),
            Tok::Word | Tok::Str(_) => {
                let text = t.text_value();
                if text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(at(&t, format!("expected {WHAT}, found {}", t.describe())));
                }
                Timestamp::parse(&text)
                    .map(TimeValue::At)
                    .map_err(|e| at(&t, e.to_string()))
            }
            _ => Err(at(&t, format!("expected {WHAT}, found {}", t.describe()))),
        }
    }
}

impl Token {
    /// The text a value token stands for: quoted text unescaped, anything else as written.
    fn text_value(&self) -> String {
        match &self.tok {
            Tok::Str(s) => s.clone(),
            _ => self.text.clone(),
        }
    }
}

fn at(t: &Token, message: impl Into<String>) -> RuleError {
    RuleError::at(t.line, t.col, message)
}

/// A name (tag, source, configuration) or a value: quoted text or a bare word or number.
fn name(t: &Token, what: &str) -> Result<String, RuleError> {
    match t.tok {
        Tok::Str(_) | Tok::Word | Tok::Int(_) | Tok::Duration(_) => Ok(t.text_value()),
        _ => Err(at(t, format!("expected {what}, found {}", t.describe()))),
    }
}

fn kind(t: &Token) -> Result<Kind, RuleError> {
    let text = t.text_value();
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(&text))
        .ok_or_else(|| {
            at(
                t,
                format!(
                    "unknown kind `{text}`; kinds are url, domain, ipv4, ipv6, cidr, md5, sha1, sha256, email"
                ),
            )
        })
}

fn severity(t: &Token) -> Result<Severity, RuleError> {
    let text = t.text_value();
    Severity::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(&text))
        .ok_or_else(|| {
            at(
                t,
                format!(
                    "unknown severity `{text}`; severities are unknown, low, medium, high, critical"
                ),
            )
        })
}

/// The offset in the body as written of the character at `offset` in the pattern's source
/// (where each `\/` of the body became `/`).
fn raw_offset(body: &str, offset: usize) -> usize {
    let chars: Vec<char> = body.chars().collect();
    let (mut raw, mut src) = (0, 0);
    while src < offset && raw < chars.len() {
        if chars[raw] == '\\' && chars.get(raw + 1) == Some(&'/') {
            raw += 2;
        } else if chars[raw] == '\\' {
            raw += 2;
            src += 1;
        } else {
            raw += 1;
        }
        src += 1;
    }
    raw
}

/// A value written in a rule, in canonical form when it parses as an indicator (so
/// `value = EVIL.example` finds `evil.example`); otherwise as written.
pub(crate) fn canonical_value(text: &str) -> String {
    match crate::parse(text, None, &crate::ParseOptions::default()) {
        Ok(p) => p.first().value.clone(),
        Err(_) => text.to_string(),
    }
}

/// A name for `subdomain_of`: a domain (made canonical) or a bare suffix such as `com`. The last
/// label must not be all digits, so an IP address in a URL never matches.
pub(crate) fn canonical_domain(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.starts_with(['.', '*']) {
        return Err(format!(
            "write the name without `{}`: `subdomain_of {}` matches the name and every name below it",
            &t[..1],
            t.trim_start_matches(['*', '.'])
        ));
    }
    let lower = t.trim_end_matches('.').to_ascii_lowercase();
    let name = match crate::parse(&lower, Some(Kind::Domain), &crate::ParseOptions::default()) {
        Ok(p) => p.first().value.clone(),
        Err(_) => lower,
    };
    let labels_ok = !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if labels_ok && !last_numeric {
        Ok(name)
    } else {
        Err(format!(
            "{text:?} is not a domain name (use `within` for IP addresses)"
        ))
    }
}

/// An IP address or CIDR range; the network address (host bits cleared) and prefix length.
pub(crate) fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        None => max,
    };
    Ok((super::sql_functions::network(ip, prefix), prefix))
}

/// The closest of `names` to `word`, if it is close (at most two edits).
fn suggest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (edit_distance(&w, n), *n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}
