//! STIX 2.1: reading bundles of indicators and cyber-observables, the comparison patterns iocx
//! understands, and the indicator objects iocx writes (exports, the TAXII server).

use std::io::BufRead;
use std::ops::ControlFlow;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::fields::RawFields;
use super::{FeedError, FeedItem, FeedOptions, Position, Reject, clip, deliver, records_from};
use crate::{Indicator, Kind};

/// The namespace of iocx's deterministic STIX ids (a random UUID chosen once for iocx).
const IOCX_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d0c_8e8e_4b0a_4c3e_9f3a_61c4_0e0b_2f17);

pub(super) fn read<R: BufRead>(
    reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<(), FeedError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut count = 0u64;
    let mut kind = None;
    let result = BundleSeed {
        options,
        sink,
        count: &mut count,
        bundle_type: &mut kind,
    }
    .deserialize(&mut de);
    let position = Position::Item(count + 1);
    match result {
        Ok(()) => {
            de.end().map_err(|e| FeedError::Syntax {
                position,
                message: format!("after the bundle: {e}"),
            })?;
            match kind.as_deref() {
                Some("bundle") | None => Ok(()),
                Some(other) => Err(FeedError::Syntax {
                    position: Position::Item(0),
                    message: format!("a STIX feed must be a bundle, not a {other:?} object"),
                }),
            }
        }
        Err(e) if e.is_io() => Err(FeedError::Io(std::io::Error::other(e.to_string()))),
        Err(e) => Err(FeedError::Syntax {
            position,
            message: format!("broken STIX bundle: {e}"),
        }),
    }
}

struct BundleSeed<'a, 'b> {
    options: &'a FeedOptions,
    sink: &'a mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    count: &'b mut u64,
    bundle_type: &'b mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for BundleSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BundleSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a STIX 2.1 bundle")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "objects" => map.next_value_seed(ObjectsSeed {
                    options: self.options,
                    sink: &mut *self.sink,
                    count: &mut *self.count,
                })?,
                "type" => *self.bundle_type = Some(map.next_value::<String>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ObjectsSeed<'a, 'b> {
    options: &'a FeedOptions,
    sink: &'a mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    count: &'b mut u64,
}

impl<'de> DeserializeSeed<'de> for ObjectsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ObjectsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the bundle's array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut stopped = false;
        while let Some(object) = seq.next_element::<Value>()? {
            *self.count += 1;
            if !stopped
                && deliver_object(
                    Position::Item(*self.count),
                    &object,
                    self.options,
                    self.sink,
                )
                .is_break()
            {
                stopped = true;
            }
        }
        Ok(())
    }
}

/// Delivers the records one STIX object stands for (none for objects that are not indicators or
/// observables, such as relationships and identities).
pub fn deliver_object(
    position: Position,
    object: &Value,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let text = |k: &str| object.get(k).and_then(Value::as_str).map(str::to_string);
    let reject = |reason: &'static str, message: String| {
        FeedItem::Reject(Reject {
            position,
            raw: clip(&object.to_string()),
            reason,
            message,
        })
    };
    let object_type = text("type").unwrap_or_default();
    let mut base = RawFields::default();
    if let Some(labels) = object.get("labels").and_then(Value::as_array) {
        base.tags
            .extend(labels.iter().filter_map(Value::as_str).map(str::to_string));
    }
    let values: Vec<(Option<Kind>, String)> = match object_type.as_str() {
        "indicator" => {
            if object.get("revoked").and_then(Value::as_bool) == Some(true) {
                return sink(reject("revoked", "the indicator is revoked".into()));
            }
            let pattern_type = text("pattern_type").unwrap_or_else(|| "stix".into());
            if pattern_type != "stix" {
                return sink(reject(
                    "unsupported_pattern",
                    format!("pattern type {pattern_type:?} is not stix"),
                ));
            }
            let Some(pattern) = text("pattern") else {
                return sink(reject("no_value", "the indicator has no pattern".into()));
            };
            match parse_pattern(&pattern) {
                Ok(v) => v.into_iter().map(|(k, v)| (Some(k), v)).collect::<Vec<_>>(),
                Err(message) => return sink(reject("unsupported_pattern", message)),
            }
        }
        "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr" => {
            let kind = observable_kind(&object_type);
            match text("value") {
                Some(v) => vec![(kind, v)],
                None => {
                    return sink(reject(
                        "no_value",
                        format!("the {object_type} object has no value"),
                    ));
                }
            }
        }
        "file" => {
            let hashes = object.get("hashes").and_then(Value::as_object);
            let found: Vec<(Option<Kind>, String)> = hashes
                .into_iter()
                .flatten()
                .filter_map(|(alg, v)| Some((Some(hash_kind(alg)?), v.as_str()?.to_string())))
                .collect();
            if found.is_empty() {
                return sink(reject(
                    "no_value",
                    "the file object has no MD5, SHA-1 or SHA-256 hash".into(),
                ));
            }
            found
        }
        _ => return ControlFlow::Continue(()),
    };
    base.comment = text("description").or_else(|| text("name"));
    base.first_seen = text("valid_from").or_else(|| text("created"));
    base.last_seen = text("modified");
    base.expires = text("valid_until");
    base.link = object
        .get("external_references")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find_map(|r| r.get("url").and_then(Value::as_str))
        })
        .map(str::to_string);
    for (kind, value) in values {
        let mut raw = base.clone();
        raw.value = Some(value);
        raw.kind_hint = kind;
        let mut opts = options.clone();
        if kind.is_some() && opts.kind.is_none() {
            opts.kind = kind;
        }
        deliver(position, records_from(position, &raw, &opts), sink)?;
    }
    ControlFlow::Continue(())
}

fn observable_kind(object_type: &str) -> Option<Kind> {
    Some(match object_type {
        "ipv4-addr" => Kind::Ipv4,
        "ipv6-addr" => Kind::Ipv6,
        "domain-name" => Kind::Domain,
        "url" => Kind::Url,
        "email-addr" => Kind::Email,
        _ => return None,
    })
}

fn hash_kind(algorithm: &str) -> Option<Kind> {
    let a: String = algorithm
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    Some(match a.as_str() {
        "MD5" => Kind::Md5,
        "SHA1" => Kind::Sha1,
        "SHA256" => Kind::Sha256,
        _ => return None,
    })
}

/// The kind an object path such as `domain-name:value` or `file:hashes.'SHA-256'` names.
fn path_kind(path: &str) -> Option<Kind> {
    let (object, property) = path.split_once(':')?;
    match (object.trim(), property.trim()) {
        ("ipv4-addr", "value") => Some(Kind::Ipv4),
        ("ipv6-addr", "value") => Some(Kind::Ipv6),
        ("domain-name", "value") => Some(Kind::Domain),
        ("url", "value") => Some(Kind::Url),
        ("email-addr", "value")
        | ("email-message", "from_ref.value")
        | ("email-message", "sender_ref.value") => Some(Kind::Email),
        ("file", p) => {
            let alg = p.strip_prefix("hashes.")?.trim_matches('\'');
            hash_kind(alg)
        }
        _ => None,
    }
}

/// Parses the STIX patterns iocx understands: equality comparisons (`=`, or `IN (…)`), joined by
/// `OR`, inside one or more observation expressions joined by `OR`. Anything else (`AND`,
/// `MATCHES`, `FOLLOWEDBY`, qualifiers) describes more than one indicator at once and is refused.
///
/// # Errors
/// A message naming what is not supported or where the syntax breaks.
pub fn parse_pattern(pattern: &str) -> Result<Vec<(Kind, String)>, String> {
    let tokens = tokenize(pattern)?;
    let mut out = Vec::new();
    let mut i = 0;
    let expect = |i: usize, want: &Tok, tokens: &[Tok]| -> Result<(), String> {
        match tokens.get(i) {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected {want} but found {t} in the pattern")),
            None => Err(format!("the pattern ends where {want} was expected")),
        }
    };
    loop {
        expect(i, &Tok::Open, &tokens)?;
        i += 1;
        loop {
            let Some(Tok::Word(path)) = tokens.get(i) else {
                return Err("expected an object path such as domain-name:value".into());
            };
            let kind = path_kind(path).ok_or_else(|| format!("unsupported object path {path}"))?;
            i += 1;
            match tokens.get(i) {
                Some(Tok::Word(op)) if op == "=" => {
                    i += 1;
                    let Some(Tok::Str(value)) = tokens.get(i) else {
                        return Err("expected a quoted value after =".into());
                    };
                    out.push((kind, value.clone()));
                    i += 1;
                }
                Some(Tok::Word(op)) if op.eq_ignore_ascii_case("IN") => {
                    i += 1;
                    expect(i, &Tok::LParen, &tokens)?;
                    i += 1;
                    loop {
                        let Some(Tok::Str(value)) = tokens.get(i) else {
                            return Err("expected a quoted value in IN (…)".into());
                        };
                        out.push((kind, value.clone()));
                        i += 1;
                        match tokens.get(i) {
                            Some(Tok::Comma) => i += 1,
                            Some(Tok::RParen) => {
                                i += 1;
                                break;
                            }
                            _ => return Err("expected , or ) in IN (…)".into()),
                        }
                    }
                }
                Some(Tok::Word(op)) => {
                    return Err(format!(
                        "operator {op} is not supported; iocx reads = and IN"
                    ));
                }
                _ => return Err("expected an operator after the object path".into()),
            }
            match tokens.get(i) {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("OR") => i += 1,
                Some(Tok::Close) => {
                    i += 1;
                    break;
                }
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("AND") => {
                    return Err(
                        "AND patterns describe several observables at once and are not supported"
                            .into(),
                    );
                }
                Some(t) => return Err(format!("unexpected {t} in the pattern")),
                None => return Err("the pattern is missing its closing ]".into()),
            }
        }
        match tokens.get(i) {
            None => return Ok(out),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("OR") => i += 1,
            Some(t) => {
                return Err(format!(
                    "{t} between observation expressions is not supported"
                ));
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    Word(String),
    Str(String),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Open => f.write_str("["),
            Tok::Close => f.write_str("]"),
            Tok::LParen => f.write_str("("),
            Tok::RParen => f.write_str(")"),
            Tok::Comma => f.write_str(","),
            Tok::Word(w) => write!(f, "{w:?}"),
            Tok::Str(s) => write!(f, "'{s}'"),
        }
    }
}

fn tokenize(pattern: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' => {
                chars.next();
                out.push(Tok::Open);
            }
            ']' => {
                chars.next();
                out.push(Tok::Close);
            }
            '(' => {
                chars.next();
                out.push(Tok::LParen);
            }
            ')' => {
                chars.next();
                out.push(Tok::RParen);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            '=' | '!' | '<' | '>' => {
                let mut op = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, '=' | '!' | '<' | '>') {
                        op.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(op));
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(e @ ('\'' | '\\')) => s.push(e),
                            Some(other) => {
                                return Err(format!(
                                    "unknown escape \\{other} in a pattern string"
                                ));
                            }
                            None => {
                                return Err(
                                    "a pattern string ends in the middle of an escape".into()
                                );
                            }
                        },
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => return Err("a quoted value in the pattern is not closed".into()),
                    }
                }
                out.push(Tok::Str(s));
            }
            _ => {
                // An object path, with quoted parts such as hashes.'SHA-256', or a keyword.
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '\'' && w.ends_with('.') {
                        w.push(c);
                        chars.next();
                        for c in chars.by_ref() {
                            w.push(c);
                            if c == '\'' {
                                break;
                            }
                        }
                        continue;
                    }
                    if c.is_whitespace()
                        || matches!(
                            c,
                            '[' | ']' | '(' | ')' | ',' | '=' | '!' | '<' | '>' | '\''
                        )
                    {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                if w.is_empty() {
                    return Err(format!("unexpected character {c:?} in the pattern"));
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// The STIX pattern for an indicator, with quotes and backslashes escaped.
pub fn pattern(indicator: &Indicator) -> String {
    let v = indicator.value.replace('\\', "\\\\").replace('\'', "\\'");
    match indicator.kind {
        Kind::Url => format!("[url:value = '{v}']"),
        Kind::Domain => format!("[domain-name:value = '{v}']"),
        Kind::Ipv4 => format!("[ipv4-addr:value = '{v}']"),
        Kind::Ipv6 => format!("[ipv6-addr:value = '{v}']"),
        Kind::Cidr if indicator.value.contains(':') => format!("[ipv6-addr:value = '{v}']"),
        Kind::Cidr => format!("[ipv4-addr:value = '{v}']"),
        Kind::Md5 => format!("[file:hashes.MD5 = '{v}']"),
        Kind::Sha1 => format!("[file:hashes.'SHA-1' = '{v}']"),
        Kind::Sha256 => format!("[file:hashes.'SHA-256' = '{v}']"),
        Kind::Email => format!("[email-addr:value = '{v}']"),
    }
}

/// The stable STIX id iocx gives an indicator: the same IoC has the same id in every export and
/// every TAXII page.
pub fn indicator_id(indicator: &Indicator) -> String {
    let name = format!("{}:{}", indicator.kind, indicator.value);
    format!(
        "indicator--{}",
        uuid::Uuid::new_v5(&IOCX_NAMESPACE, name.as_bytes())
    )
}

/// A STIX 2.1 indicator object for an exported row. `revoked` marks rows that are no longer
/// active (expired, aged out, or safe).
pub fn indicator_object(row: &super::ExportRow<'_>, revoked: bool) -> Value {
    let created = row.first_seen.to_rfc3339();
    let mut object = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(row.indicator),
        "created": created,
        "modified": row.modified.to_rfc3339(),
        "name": format!("{} {}", row.indicator.kind, row.indicator.value),
        "indicator_types": [if row.safe { "benign" } else { "malicious-activity" }],
        "pattern": pattern(row.indicator),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": created,
    });
    if let Some(map) = object.as_object_mut() {
        if let Some(e) = row.expires {
            // valid_until must be later than valid_from.
            let until = if e > row.first_seen {
                e
            } else {
                row.first_seen.plus(1)
            };
            map.insert("valid_until".into(), json!(until.to_rfc3339()));
        }
        if !row.tags.is_empty() {
            map.insert("labels".into(), json!(row.tags));
        }
        if let Some(c) = row.comment {
            map.insert("description".into(), json!(c));
        }
        if revoked {
            map.insert("revoked".into(), json!(true));
        }
        map.insert("confidence".into(), json!(confidence(row.reputation)));
        map.insert("x_iocx_severity".into(), json!(row.severity.as_str()));
        map.insert("x_iocx_sources".into(), json!(row.sources));
        map.insert("x_iocx_hits".into(), json!(row.hits));
    }
    object
}

/// STIX confidence (0–100) from reputation (1 = malicious … 10 = good): how sure the sources are
/// that the indicator is bad.
fn confidence(reputation: u8) -> u8 {
    (11u8.saturating_sub(reputation.clamp(1, 10))) * 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_round_trip() {
        for (kind, value) in [
            (Kind::Url, "http://evil.example/a'b\\c"),
            (Kind::Domain, "evil.example"),
            (Kind::Ipv4, "192.0.2.1"),
            (Kind::Ipv6, "2001:db8::1"),
            (Kind::Sha256, &"a".repeat(64)),
            (Kind::Sha1, &"b".repeat(40)),
            (Kind::Md5, &"c".repeat(32)),
            (Kind::Email, "x@evil.example"),
        ] {
            let ind = Indicator::new(kind, value);
            assert_eq!(
                parse_pattern(&pattern(&ind)),
                Ok(vec![(kind, value.to_string())]),
                "{kind}"
            );
        }
    }

    #[test]
    fn ors_and_ins_expand_and_ands_are_refused() {
        let p = "[ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.2'] OR [domain-name:value IN ('a.example', 'b.example')]";
        assert_eq!(parse_pattern(p).map(|v| v.len()), Ok(4));
        assert!(
            parse_pattern("[ipv4-addr:value = '1.1.1.1' AND domain-name:value = 'x.example']")
                .unwrap_err()
                .contains("AND")
        );
        assert!(
            parse_pattern("[file:name = 'x.exe']")
                .unwrap_err()
                .contains("unsupported object path")
        );
        assert!(
            parse_pattern("[url:value MATCHES 'x']")
                .unwrap_err()
                .contains("MATCHES")
        );
        assert!(parse_pattern("[url:value = 'x'").is_err());
        assert!(parse_pattern("[url:value = 'x] ").is_err());
    }

    #[test]
    fn ids_are_stable() {
        let a = Indicator::new(Kind::Domain, "evil.example");
        assert_eq!(indicator_id(&a), indicator_id(&a.clone()));
        assert_ne!(
            indicator_id(&a),
            indicator_id(&Indicator::new(Kind::Domain, "evil2.example"))
        );
    }
}
