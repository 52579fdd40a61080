//! The `TMV1-Filter` header: an OData-like expression parsed into a tree and evaluated against
//! list items.
//!
//! Grammar (keywords are case-insensitive, field names are not, literals are single-quoted with
//! `''` standing for a quote):
//!
//! ```text
//! expr    := and ( "or" and )*
//! and     := unary ( "and" unary )*
//! unary   := "not" unary | primary
//! primary := "(" expr ")" | FIELD "eq" 'LITERAL'
//! ```

use std::fmt;

use super::model::{ObjectType, RiskLevel, ScanAction};

/// The longest filter the API accepts.
pub const MAX_FILTER_CHARS: usize = 4000;

/// Which list a filter is for: the Exception List has no `scanAction` or `riskLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// The Suspicious Object List.
    Suspicious,
    /// The Exception List.
    Exceptions,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// All must hold.
    And(Vec<Filter>),
    /// Any must hold.
    Or(Vec<Filter>),
    /// Must not hold.
    Not(Box<Filter>),
    /// `type eq 'url'`.
    Type(ObjectType),
    /// `url eq 'http://x'`: the item is of this type and its value has this identity.
    Value(ObjectType, String),
    /// `scanAction eq 'block'`.
    ScanAction(ScanAction),
    /// `riskLevel eq 'high'`.
    RiskLevel(RiskLevel),
}

/// What a filter is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The item's type.
    pub object_type: ObjectType,
    /// The identity of its value (see [`ObjectType::identity`]).
    pub identity: &'a str,
    /// Its scan action (none on exceptions).
    pub scan_action: Option<ScanAction>,
    /// Its risk level (none on exceptions).
    pub risk_level: Option<RiskLevel>,
}

impl Filter {
    /// Whether `subject` passes the filter.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        match self {
            Filter::And(all) => all.iter().all(|f| f.matches(subject)),
            Filter::Or(any) => any.iter().any(|f| f.matches(subject)),
            Filter::Not(f) => !f.matches(subject),
            Filter::Type(t) => subject.object_type == *t,
            Filter::Value(t, identity) => subject.object_type == *t && subject.identity == identity,
            Filter::ScanAction(a) => subject.scan_action == Some(*a),
            Filter::RiskLevel(r) => subject.risk_level == Some(*r),
        }
    }
}

/// Why a filter was refused, with the character position (1-based) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// 1-based character column.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Literal(String),
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((column, Tok::Open));
            i += 1;
        } else if c == ')' {
            out.push((column, Tok::Close));
            i += 1;
        } else if c == '\'' {
            let mut literal = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(FilterError {
                            column,
                            message: "unterminated quoted value".into(),
                        });
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        literal.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        literal.push(*c);
                        i += 1;
                    }
                }
            }
            out.push((column, Tok::Literal(literal)));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((column, Tok::Word(chars[start..i].iter().collect())));
        } else {
            return Err(FilterError {
                column,
                message: format!("unexpected character '{c}'"),
            });
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end_column: usize,
    kind: ListKind,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|(c, _)| *c)
            .unwrap_or(self.end_column)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expr(&mut self) -> Result<Filter, FilterError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut terms = vec![self.unary()?];
        while self.keyword("and") {
            self.pos += 1;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, FilterError> {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let inner = self.expr()?;
                if self.peek() != Some(&Tok::Close) {
                    return self.error("expected ')'");
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Tok::Word(field)) => {
                let field_column = self.column();
                self.pos += 1;
                if !self.keyword("eq") {
                    return match self.peek() {
                        Some(Tok::Word(op)) => {
                            let op = op.clone();
                            self.error(format!(
                                "unsupported operator '{op}' (only eq is supported)"
                            ))
                        }
                        _ => self.error("expected the operator eq"),
                    };
                }
                self.pos += 1;
                let literal = match self.peek() {
                    Some(Tok::Literal(l)) => l.clone(),
                    _ => return self.error("expected a value in single quotes"),
                };
                let literal_column = self.column();
                self.pos += 1;
                self.comparison(&field, field_column, &literal, literal_column)
            }
            Some(Tok::Close) => self.error("unexpected ')'"),
            Some(Tok::Literal(_)) => self.error("expected a field name"),
            None => self.error("unexpected end of filter"),
        }
    }

    fn comparison(
        &self,
        field: &str,
        field_column: usize,
        literal: &str,
        literal_column: usize,
    ) -> Result<Filter, FilterError> {
        let bad_value = |allowed: &str| {
            Err(FilterError {
                column: literal_column,
                message: format!("invalid value '{literal}' for {field} (allowed: {allowed})"),
            })
        };
        if field == "type" {
            return match ObjectType::from_key(literal) {
                Some(t) => Ok(Filter::Type(t)),
                None => bad_value("url, domain, ip, senderMailAddress, fileSha1, fileSha256"),
            };
        }
        if let Some(t) = ObjectType::from_key(field) {
            return Ok(Filter::Value(t, t.identity(literal)));
        }
        if self.kind == ListKind::Suspicious {
            if field == "scanAction" {
                return match ScanAction::from_key(literal) {
                    Some(a) => Ok(Filter::ScanAction(a)),
                    None => bad_value("block, log"),
                };
            }
            if field == "riskLevel" {
                return match RiskLevel::from_key(literal) {
                    Some(r) => Ok(Filter::RiskLevel(r)),
                    None => bad_value("high, medium, low"),
                };
            }
        }
        let fields = match self.kind {
            ListKind::Suspicious => {
                "type, url, domain, ip, senderMailAddress, fileSha1, fileSha256, scanAction, riskLevel"
            }
            ListKind::Exceptions => {
                "type, url, domain, ip, senderMailAddress, fileSha1, fileSha256"
            }
        };
        Err(FilterError {
            column: field_column,
            message: format!("unsupported field '{field}' (supported: {fields})"),
        })
    }
}

/// Parses a `TMV1-Filter` value for `kind`. A blank filter is `None` (everything passes).
///
/// # Errors
/// When the filter is longer than [`MAX_FILTER_CHARS`], uses syntax outside the grammar, names a
/// field the list does not have, or compares an enumerated field with a value it cannot take.
pub fn parse(input: &str, kind: ListKind) -> Result<Option<Filter>, FilterError> {
    let length = input.chars().count();
    if length > MAX_FILTER_CHARS {
        return Err(FilterError {
            column: MAX_FILTER_CHARS + 1,
            message: format!(
                "the filter is {length} characters; at most {MAX_FILTER_CHARS} are allowed"
            ),
        });
    }
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        toks,
        pos: 0,
        end_column: length + 1,
        kind,
    };
    let filter = parser.expr()?;
    if parser.pos < parser.toks.len() {
        return parser.error("unexpected text after the end of the expression");
    }
    Ok(Some(filter))
}
