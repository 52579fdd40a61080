//! ArcSight Common Event Format (CEF) records, as security devices send them over syslog.
//!
//! A record is `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|
//! Severity|Extension`, optionally after a syslog header (RFC 3164 `<PRI>Mmm dd hh:mm:ss host `
//! or RFC 5424 `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD `). [`parse`] reads one line into a
//! [`CefRecord`].
//!
//! Escaping, as the format defines it:
//! - in the seven header fields, `\|` is a pipe and `\\` a backslash;
//! - in extension values, `\=` is an equals sign, `\\` a backslash, `\n` and `\r` line breaks
//!   (and a stray `\|` a pipe, as some producers write it).
//!
//! The extension is `key=value` pairs separated by spaces; a value may hold spaces, so a pair
//! ends where the next ` key=` begins. An unescaped `=` that does not follow a key (a space and
//! a run of key characters) is kept as part of the value — lenient, as real producers forget to
//! escape it.

use std::fmt;

/// Why a line is not a CEF record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CefError {
    /// No `CEF:` marker in the line.
    #[error("no \"CEF:\" marker in the line")]
    NoMarker,
    /// The version is not a number.
    #[error("the CEF version {0:?} is not a number")]
    BadVersion(String),
    /// Fewer than the seven `|`-separated header fields before the extension.
    #[error(
        "the CEF header has {0} of its 7 fields (Version|Vendor|Product|Version|Signature ID|Name|Severity)"
    )]
    ShortHeader(usize),
    /// Text in the extension that is not a `key=value` pair.
    #[error("the extension starts with {0:?}, which is not a key=value pair")]
    BadExtension(String),
}

/// The syslog header in front of a record, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyslogHeader {
    /// The `<PRI>` value (facility × 8 + severity).
    pub priority: Option<u16>,
    /// The timestamp text, as sent (RFC 3164 `Mmm dd hh:mm:ss` or RFC 5424 RFC 3339 time).
    pub timestamp: Option<String>,
    /// The sending host.
    pub host: Option<String>,
}

/// One CEF record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CefRecord {
    /// The syslog header before `CEF:` (empty when there was none).
    pub syslog: SyslogHeader,
    /// The CEF version (0 or 1).
    pub version: u32,
    /// Device Vendor (`TippingPoint`).
    pub vendor: String,
    /// Device Product (`UnityOne`).
    pub product: String,
    /// Device Version.
    pub device_version: String,
    /// Signature ID (a filter number for TippingPoint).
    pub signature_id: String,
    /// Name (a filter name for TippingPoint).
    pub name: String,
    /// Severity, as sent (`0`–`10`, or a word such as `High`).
    pub severity: String,
    /// The extension's pairs, unescaped, in order.
    pub extension: Vec<(String, String)>,
}

impl CefRecord {
    /// The value of extension key `key` (the last one when it repeats).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extension
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the custom field whose label is `label` (`cs6` when `cs6Label=label`, and so
    /// for `csN`, `cnN`, `c6aN`, `cfpN`, `deviceCustomDateN`), case-insensitively.
    pub fn labeled(&self, label: &str) -> Option<&str> {
        self.extension.iter().find_map(|(k, v)| {
            let field = k.strip_suffix("Label")?;
            if v.trim().eq_ignore_ascii_case(label) {
                self.get(field)
            } else {
                None
            }
        })
    }

    /// The Severity as a number, when it is one.
    pub fn severity_number(&self) -> Option<u8> {
        self.severity.trim().parse().ok()
    }
}

impl fmt::Display for CefRecord {
    /// The record back in CEF (without the syslog header), escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = |s: &str| s.replace('\\', "\\\\").replace('|', "\\|");
        write!(
            f,
            "CEF:{}|{}|{}|{}|{}|{}|{}|",
            self.version,
            header(&self.vendor),
            header(&self.product),
            header(&self.device_version),
            header(&self.signature_id),
            header(&self.name),
            header(&self.severity)
        )?;
        for (i, (k, v)) in self.extension.iter().enumerate() {
            let v = v
                .replace('\\', "\\\\")
                .replace('=', "\\=")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            write!(f, "{}{k}={v}", if i == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

/// Reads one line: an optional syslog header, then a CEF record. Trailing line breaks and NUL
/// bytes are ignored.
///
/// # Errors
/// When the line has no `CEF:` marker, a non-numeric version, fewer than seven header fields, or
/// an extension that does not start with a `key=value` pair.
pub fn parse(line: &str) -> Result<CefRecord, CefError> {
    let line = line.trim_end_matches(['\r', '\n', '\0']);
    let at = line.find("CEF:").ok_or(CefError::NoMarker)?;
    let syslog = syslog_header(&line[..at]);
    let rest = &line[at + 4..];
    let (fields, extension) = header_fields(rest)?;
    let version = fields[0].trim();
    let version = version
        .parse::<u32>()
        .map_err(|_| CefError::BadVersion(version.to_string()))?;
    let [
        _,
        vendor,
        product,
        device_version,
        signature_id,
        name,
        severity,
    ] = fields;
    Ok(CefRecord {
        syslog,
        version,
        vendor,
        product,
        device_version,
        signature_id,
        name,
        severity,
        extension: extension_pairs(extension)?,
    })
}

/// The seven header fields (unescaped) and the extension text after the seventh `|`.
fn header_fields(text: &str) -> Result<([String; 7], &str), CefError> {
    let mut fields: [String; 7] = Default::default();
    let mut n = 0;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('|' | '\\'))) => fields[n].push(e),
                Some((_, e)) => {
                    fields[n].push('\\');
                    fields[n].push(e);
                }
                None => fields[n].push('\\'),
            },
            '|' => {
                n += 1;
                if n == 7 {
                    return Ok((fields, &text[i + 1..]));
                }
            }
            c => fields[n].push(c),
        }
    }
    Err(CefError::ShortHeader(n + 1))
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'[' | b']')
}

/// The extension's pairs. See the module docs for where a value ends.
fn extension_pairs(text: &str) -> Result<Vec<(String, String)>, CefError> {
    let bytes = text.as_bytes();
    // (key start, '=' position) of every pair.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                let mut start = i;
                while start > 0 && is_key_char(bytes[start - 1]) {
                    start -= 1;
                }
                let after_space = start == 0 || bytes[start - 1] == b' ';
                let owner_end = keys.last().map_or(0, |(_, eq)| eq + 1);
                if start < i && after_space && start >= owner_end {
                    keys.push((start, i));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    let first = keys.first().map_or(bytes.len(), |(start, _)| *start);
    let lead = text[..first].trim();
    if !lead.is_empty() {
        return Err(CefError::BadExtension(lead.chars().take(40).collect()));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (n, &(start, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map_or(bytes.len(), |(next, _)| *next);
        let value = text[eq + 1..end].trim_end_matches([' ', '\t']);
        out.push((text[start..eq].to_string(), unescape_value(value)));
    }
    Ok(out)
}

fn unescape_value(value: &str) -> String {
    if !value.contains('\\') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(e @ ('=' | '\\' | '|')) => out.push(e),
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Reads what it can of a syslog header: `<PRI>`, then RFC 5424 (`1 TIMESTAMP HOST …`) or
/// RFC 3164 (`Mmm dd hh:mm:ss HOST`). Anything else leaves the fields empty.
fn syslog_header(prefix: &str) -> SyslogHeader {
    let mut out = SyslogHeader::default();
    let mut rest = prefix.trim();
    if let Some(after) = rest.strip_prefix('<')
        && let Some((pri, tail)) = after.split_once('>')
        && let Ok(pri) = pri.parse::<u16>()
    {
        out.priority = Some(pri);
        rest = tail;
    }
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let given = |t: &str| (t != "-").then(|| t.to_string());
    match tokens.as_slice() {
        // RFC 5424: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA
        [v, ts, host, ..] if v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()) => {
            out.timestamp = given(ts);
            out.host = given(host);
        }
        // RFC 3164: Mmm dd hh:mm:ss [HOST]
        [month, day, time, tail @ ..]
            if month.len() == 3
                && month.bytes().all(|b| b.is_ascii_alphabetic())
                && day.bytes().all(|b| b.is_ascii_digit())
                && time.contains(':') =>
        {
            out.timestamp = Some(format!("{month} {day} {time}"));
            out.host = tail
                .first()
                .map(|h| h.trim_end_matches(':').to_string())
                .filter(|h| !h.is_empty());
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_plain_record_has_its_header_and_pairs() {
        let r = parse("CEF:0|TippingPoint|UnityOne|1.0.0.17|7610|Rep Block|3|rt=1539348361056 src=10.0.0.1 dvchost=ips-1").unwrap();
        assert_eq!(r.version, 0);
        assert_eq!(r.vendor, "TippingPoint");
        assert_eq!(r.product, "UnityOne");
        assert_eq!(r.signature_id, "7610");
        assert_eq!(r.name, "Rep Block");
        assert_eq!(r.severity_number(), Some(3));
        assert_eq!(r.get("rt"), Some("1539348361056"));
        assert_eq!(r.get("dvchost"), Some("ips-1"));
        assert_eq!(r.syslog, SyslogHeader::default());
    }

    #[test]
    fn header_escapes_are_undone() {
        let r = parse(r"CEF:0|Trend\|Micro|Tipping\\Point|1|7611|a \| b \\ c|5|").unwrap();
        assert_eq!(r.vendor, "Trend|Micro");
        assert_eq!(r.product, r"Tipping\Point");
        assert_eq!(r.name, r"a | b \ c");
        assert!(r.extension.is_empty());
    }

    #[test]
    fn extension_escapes_and_spaces_in_values() {
        let r = parse(
            r"CEF:0|V|P|1|1|n|1|msg=a\=b c\\d\nnext request=http://x.example/a?b\=1&c\=2 cs6=x y  ",
        )
        .unwrap();
        assert_eq!(r.get("msg"), Some("a=b c\\d\nnext"));
        assert_eq!(r.get("request"), Some("http://x.example/a?b=1&c=2"));
        assert_eq!(r.get("cs6"), Some("x y"));
    }

    #[test]
    fn an_unescaped_equals_inside_a_value_stays_in_it() {
        let r = parse("CEF:0|V|P|1|1|n|1|request=http://x.example/?a=1&b=2 dst=1.2.3.4").unwrap();
        // `?a=1&b=2`: `?a` is not preceded by a space, so it is not a key.
        assert_eq!(r.get("request"), Some("http://x.example/?a=1&b=2"));
        assert_eq!(r.get("dst"), Some("1.2.3.4"));
    }

    #[test]
    fn empty_values_and_labels() {
        let r =
            parse("CEF:0|V|P|1|1|n|1|suser= cs6=evil.example cs6Label=Filter Message Parms dhost=")
                .unwrap();
        assert_eq!(r.get("suser"), Some(""));
        assert_eq!(r.get("dhost"), Some(""));
        assert_eq!(r.labeled("filter message parms"), Some("evil.example"));
        assert_eq!(r.labeled("Profile Name"), None);
    }

    #[test]
    fn an_rfc3164_prefix_gives_the_host() {
        let r = parse(
            "<131>Jun  3 12:00:01 sms-01 CEF:0|TippingPoint|UnityOne|1|7610|f|3|dvchost=ips-1\n",
        )
        .unwrap();
        assert_eq!(r.syslog.priority, Some(131));
        assert_eq!(r.syslog.timestamp.as_deref(), Some("Jun 3 12:00:01"));
        assert_eq!(r.syslog.host.as_deref(), Some("sms-01"));
        assert_eq!(r.get("dvchost"), Some("ips-1"));
        let r = parse("<131>Jun 13 12:00:01 CEF:0|V|P|1|1|n|1|a=b").unwrap();
        assert_eq!(r.syslog.host, None);
    }

    #[test]
    fn an_rfc5424_prefix_gives_the_host() {
        let r = parse(
            "<134>1 2024-06-03T12:00:01.000Z sms-01 SMS - - - CEF:0|V|P|1|7611|n|5|cs6=a.example",
        )
        .unwrap();
        assert_eq!(r.syslog.priority, Some(134));
        assert_eq!(
            r.syslog.timestamp.as_deref(),
            Some("2024-06-03T12:00:01.000Z")
        );
        assert_eq!(r.syslog.host.as_deref(), Some("sms-01"));
        assert_eq!(r.get("cs6"), Some("a.example"));
        let r = parse("<134>1 - - - - - - CEF:1|V|P|1|7611|n|5|").unwrap();
        assert_eq!((r.version, r.syslog.host), (1, None));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert_eq!(parse(""), Err(CefError::NoMarker));
        assert_eq!(parse("hello world"), Err(CefError::NoMarker));
        assert_eq!(parse("CEF:0|V|P|1"), Err(CefError::ShortHeader(4)));
        assert_eq!(
            parse("CEF:x|V|P|1|1|n|1|"),
            Err(CefError::BadVersion("x".into()))
        );
        assert!(matches!(
            parse("CEF:0|V|P|1|1|n|1|just words"),
            Err(CefError::BadExtension(_))
        ));
        assert!(matches!(
            parse("CEF:0|V|P|1|1|n|1|=x"),
            Err(CefError::BadExtension(_))
        ));
        // Bytes that are not keys before the first pair.
        assert!(parse("CEF:0|V|P|1|1|n|1|??? a=b").is_err());
        // A lone trailing backslash does not panic.
        assert_eq!(
            parse("CEF:0|V|P|1|1|n|1|a=b\\").unwrap().get("a"),
            Some("b\\")
        );
        assert!(parse("CEF:0|V|P|1|1|n\\").is_err());
    }

    #[test]
    fn random_text_never_panics_and_random_records_round_trip() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet: Vec<char> = "CEF:0|\\= ab\n\r\t<>1é|=".chars().collect();
        let text = |rng: &mut rand::rngs::StdRng, max: usize| -> String {
            let n = rng.gen_range(0..max);
            (0..n)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        };
        for _ in 0..5_000 {
            let line = text(&mut rng, 60);
            let _ = parse(&line);
            let _ = parse(&format!("CEF:0|a|b|c|d|e|f|{line}"));
        }
        for _ in 0..2_000 {
            let field = |rng: &mut rand::rngs::StdRng| text(rng, 12);
            let value = |rng: &mut rand::rngs::StdRng| {
                let v = text(rng, 12);
                v.trim_end_matches([' ', '\t']).to_string()
            };
            let r = CefRecord {
                version: 0,
                vendor: field(&mut rng),
                product: field(&mut rng),
                device_version: field(&mut rng),
                signature_id: field(&mut rng),
                name: field(&mut rng),
                severity: field(&mut rng),
                extension: (0..rng.gen_range(0..4))
                    .map(|i| (format!("k{i}"), value(&mut rng)))
                    .collect(),
                ..CefRecord::default()
            };
            assert_eq!(parse(&r.to_string()).as_ref(), Ok(&r), "{r}");
        }
    }

    #[test]
    fn display_round_trips() {
        let r = CefRecord {
            version: 0,
            vendor: "A|B".into(),
            product: "P".into(),
            device_version: "1".into(),
            signature_id: "7".into(),
            name: r"x\y".into(),
            severity: "3".into(),
            extension: vec![
                ("msg".into(), "a=b c\nd \\ e".into()),
                ("cs6".into(), "evil.example".into()),
            ],
            ..CefRecord::default()
        };
        assert_eq!(parse(&r.to_string()).unwrap(), r);
    }
}
