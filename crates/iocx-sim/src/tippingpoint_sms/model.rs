//! The reputation database's model: address kinds and their normalisation, tag categories and
//! their value rules, the `TagData`/CSV field syntax, and `Reputation Entries TTL` dates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Value, json};

/// The predefined category whose date removes an entry.
pub const TTL_CATEGORY: &str = "Reputation Entries TTL";

/// The TTL format of the only public sample (`2018-10-25 07:15:00-0400`).
pub const TTL_FORMAT: &str = "%Y-%m-%d %H:%M:%S%z";

/// How multiple values of a list category are joined.
pub const MULTI_VALUE_SEPARATOR: &str = "~~~";

/// The four address kinds of the reputation database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressKind {
    /// IPv4 addresses and CIDR blocks.
    Ipv4,
    /// IPv6 addresses and CIDR blocks.
    Ipv6,
    /// DNS names (suffix match; `[name]` for an exact match).
    Dns,
    /// URLs.
    Url,
}

impl AddressKind {
    /// Every kind.
    pub const ALL: [AddressKind; 4] = [
        AddressKind::Ipv4,
        AddressKind::Ipv6,
        AddressKind::Dns,
        AddressKind::Url,
    ];

    /// The `type` parameter of import and delete-by-file (`ipv4`, `ipv6`, `dns`, `url`).
    pub fn type_name(self) -> &'static str {
        match self {
            AddressKind::Ipv4 => "ipv4",
            AddressKind::Ipv6 => "ipv6",
            AddressKind::Dns => "dns",
            AddressKind::Url => "url",
        }
    }

    /// The kind named by a `type` parameter (case-insensitive).
    pub fn from_type(name: &str) -> Option<AddressKind> {
        AddressKind::ALL
            .into_iter()
            .find(|k| k.type_name().eq_ignore_ascii_case(name.trim()))
    }

    /// The request parameter that carries addresses of this kind (`ip`, `dns`, `url`).
    pub fn param(self) -> Param {
        match self {
            AddressKind::Ipv4 | AddressKind::Ipv6 => Param::Ip,
            AddressKind::Dns => Param::Dns,
            AddressKind::Url => Param::Url,
        }
    }

    /// The field delimiter of import files of this kind: `|` for URLs, `,` otherwise.
    pub fn delimiter(self) -> char {
        if self == AddressKind::Url { '|' } else { ',' }
    }
}

/// The address parameters of `add`, `delete` and `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// `ip` (IPv4 or IPv6, optionally CIDR).
    Ip,
    /// `dns`.
    Dns,
    /// `url`.
    Url,
}

impl Param {
    /// Every parameter.
    pub const ALL: [Param; 3] = [Param::Ip, Param::Dns, Param::Url];

    /// The parameter's name.
    pub fn name(self) -> &'static str {
        match self {
            Param::Ip => "ip",
            Param::Dns => "dns",
            Param::Url => "url",
        }
    }
}

/// Normalises an address given under `param`: CIDR host bits zeroed (a `/32` or `/128` becomes
/// the plain address), DNS names lowercased (brackets kept, they mean "exact"), URLs trimmed.
///
/// # Errors
/// Why the text is not an address of that parameter.
pub fn normalize(param: Param, text: &str) -> Result<(AddressKind, String), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty {} value", param.name()));
    }
    match param {
        Param::Ip => {
            let (ip, len) = match text.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (text, None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("invalid IP address: {text}"))?;
            let max = if ip.is_ipv4() { 32u8 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("invalid CIDR prefix: {text}"))?,
            };
            Ok(match ip {
                IpAddr::V4(v4) => {
                    let mask = if len == 0 {
                        0
                    } else {
                        u32::MAX << (32 - u32::from(len))
                    };
                    let net = Ipv4Addr::from(u32::from(v4) & mask);
                    let text = if len == 32 {
                        net.to_string()
                    } else {
                        format!("{net}/{len}")
                    };
                    (AddressKind::Ipv4, text)
                }
                IpAddr::V6(v6) => {
                    let mask = if len == 0 {
                        0
                    } else {
                        u128::MAX << (128 - u32::from(len))
                    };
                    let net = Ipv6Addr::from(u128::from(v6) & mask);
                    let text = if len == 128 {
                        net.to_string()
                    } else {
                        format!("{net}/{len}")
                    };
                    (AddressKind::Ipv6, text)
                }
            })
        }
        Param::Dns => {
            let lower = text.to_ascii_lowercase();
            let inner = lower
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(&lower);
            let inner = inner.trim_end_matches('.');
            let ok = !inner.is_empty()
                && inner.len() <= 253
                && inner.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*'
                        })
                });
            if !ok {
                return Err(format!("invalid DNS name: {text}"));
            }
            if lower.starts_with('[') {
                Ok((AddressKind::Dns, format!("[{inner}]")))
            } else {
                Ok((AddressKind::Dns, inner.to_string()))
            }
        }
        Param::Url => {
            if text.len() > 2048 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("invalid URL: {text}"));
            }
            Ok((AddressKind::Url, text.to_string()))
        }
    }
}

/// The order `repEntries/query` lists addresses in: IPs numerically (then by prefix), names and
/// URLs as text.
pub fn sort_key(kind: AddressKind, address: &str) -> (u8, u128, u8, String) {
    let (ip, len) = match address.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u8>().unwrap_or(0)),
        None => (address, u8::MAX),
    };
    match (kind, ip.parse::<IpAddr>()) {
        (AddressKind::Ipv4 | AddressKind::Ipv6, Ok(IpAddr::V4(v4))) => {
            (0, u128::from(u32::from(v4)), len, String::new())
        }
        (AddressKind::Ipv4 | AddressKind::Ipv6, Ok(IpAddr::V6(v6))) => {
            (1, u128::from(v6), len, String::new())
        }
        _ => (2, 0, 0, address.to_string()),
    }
}

/// The type of a tag category (fixed once created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryType {
    /// Free text of at most 255 characters.
    Text,
    /// One of a predefined list (several when `multiple`).
    List {
        /// The allowed values (case-sensitive).
        values: Vec<String>,
        /// "Allow Multiple Values?".
        multiple: bool,
    },
    /// A date in this `chrono` format.
    Date {
        /// The input format.
        format: String,
    },
    /// Yes or no (any case; `true`/`t`/`y` count as yes, anything else as no).
    YesNo,
    /// A whole number in a range.
    Range {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
}

/// Who made a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with the SMS.
    Predefined,
    /// Made by a user.
    User,
}

/// A tag category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// Its name (case-sensitive).
    pub name: String,
    /// Its type.
    pub kind: CategoryType,
    /// Who made it.
    pub origin: Origin,
}

impl Category {
    /// A category.
    pub fn new(name: &str, kind: CategoryType, origin: Origin) -> Category {
        Category {
            name: name.to_string(),
            kind,
            origin,
        }
    }

    /// Checks a value and returns what is stored (list values split on `~~~`).
    ///
    /// # Errors
    /// Why the value does not fit the category.
    pub fn check(&self, value: &str, lenient_dates: bool) -> Result<Vec<String>, String> {
        let value = value.trim();
        match &self.kind {
            CategoryType::Text => {
                if value.chars().count() > 255 {
                    Err(format!(
                        "value for {} is longer than 255 characters",
                        self.name
                    ))
                } else {
                    Ok(vec![value.to_string()])
                }
            }
            CategoryType::List { values, multiple } => {
                let parts: Vec<String> = value
                    .split(MULTI_VALUE_SEPARATOR)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                if parts.len() > 1 && !multiple {
                    return Err(format!("{} does not allow multiple values", self.name));
                }
                if let Some(bad) = parts.iter().find(|p| !values.contains(p)) {
                    return Err(format!("{bad} is not a value of the list {}", self.name));
                }
                Ok(parts)
            }
            CategoryType::Date { format } => {
                if parse_date(value, format, lenient_dates).is_some() {
                    Ok(vec![value.to_string()])
                } else {
                    Err(format!(
                        "{value} is not a date in the format of {} ({format})",
                        self.name
                    ))
                }
            }
            CategoryType::YesNo => {
                let yes = ["yes", "true", "t", "y"]
                    .iter()
                    .any(|y| value.eq_ignore_ascii_case(y));
                Ok(vec![if yes { "yes" } else { "no" }.to_string()])
            }
            CategoryType::Range { min, max } => match value.parse::<i64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(vec![n.to_string()]),
                _ => Err(format!(
                    "{value} is not a whole number from {min} to {max} for {}",
                    self.name
                )),
            },
        }
    }

    /// The category as `/_sim/tag-categories` shows it.
    pub fn to_json(&self) -> Value {
        let (kind, extra) = match &self.kind {
            CategoryType::Text => ("text", json!({})),
            CategoryType::List { values, multiple } => {
                ("list", json!({"values": values, "multiple": multiple}))
            }
            CategoryType::Date { format } => ("date", json!({"format": format})),
            CategoryType::YesNo => ("yesno", json!({})),
            CategoryType::Range { min, max } => ("range", json!({"min": min, "max": max})),
        };
        let mut v = json!({
            "name": self.name,
            "type": kind,
            "origin": match self.origin { Origin::Predefined => "predefined", Origin::User => "user" },
        });
        if let (Value::Object(map), Value::Object(extra)) = (&mut v, extra) {
            map.extend(extra);
        }
        v
    }

    /// Parses `NAME=TYPE[:SPEC]` (the `--tag-category` flag and `POST /_sim/tag-categories`):
    /// `text`, `yesno`, `list:a,b,c`, `multilist:a,b,c`, `date[:FORMAT]`, `range:MIN-MAX`.
    ///
    /// # Errors
    /// Why the text is not a category definition.
    pub fn parse_spec(spec: &str) -> Result<Category, String> {
        let (name, rest) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec}: expected NAME=TYPE[:SPEC]"))?;
        let name = name.trim();
        if name.is_empty() || name.len() > 255 || name.contains(',') {
            return Err(format!(
                "{spec}: a category name is 1–255 characters without commas"
            ));
        }
        let (kind, arg) = match rest.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a)),
            None => (rest.trim(), None),
        };
        let list = |arg: Option<&str>| -> Result<Vec<String>, String> {
            let values: Vec<String> = arg
                .unwrap_or("")
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                Err(format!("{spec}: a list needs values"))
            } else {
                Ok(values)
            }
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "text" => CategoryType::Text,
            "yesno" => CategoryType::YesNo,
            "list" => CategoryType::List {
                values: list(arg)?,
                multiple: false,
            },
            "multilist" => CategoryType::List {
                values: list(arg)?,
                multiple: true,
            },
            "date" => CategoryType::Date {
                format: arg.map_or_else(|| "%Y-%m-%d".to_string(), str::to_string),
            },
            "range" => {
                let (min, max) = arg
                    .and_then(|a| a.split_once('-'))
                    .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                    .filter(|(a, b): &(i64, i64)| a <= b)
                    .ok_or_else(|| format!("{spec}: a range is range:MIN-MAX"))?;
                CategoryType::Range { min, max }
            }
            other => return Err(format!("{spec}: unknown category type {other}")),
        };
        Ok(Category::new(name, kind, Origin::User))
    }
}

/// The categories every emulator starts with: the predefined TTL and STIX ones, and the seven
/// that Trend Vision One's suspicious-object sync tags entries with.
pub fn default_categories() -> Vec<Category> {
    let list = |values: &[&str]| CategoryType::List {
        values: values.iter().map(|v| v.to_string()).collect(),
        multiple: false,
    };
    vec![
        Category::new(
            TTL_CATEGORY,
            CategoryType::Date {
                format: TTL_FORMAT.to_string(),
            },
            Origin::Predefined,
        ),
        Category::new("STIX - ID", CategoryType::Text, Origin::Predefined),
        Category::new("STIX - Severity", CategoryType::Text, Origin::Predefined),
        Category::new(
            "STIX - Confidence",
            CategoryType::Range { min: 0, max: 100 },
            Origin::Predefined,
        ),
        Category::new(
            "Trend Micro Detection Category",
            list(&["Suspicious Object"]),
            Origin::User,
        ),
        Category::new("Trend Micro Publisher", CategoryType::Text, Origin::User),
        Category::new("Trend Micro Source", CategoryType::Text, Origin::User),
        Category::new(
            "Trend Micro Suspicious Object Source",
            list(&["UDSO", "VASO"]),
            Origin::User,
        ),
        Category::new(
            "Trend Micro Scan Action",
            list(&["log", "block"]),
            Origin::User,
        ),
        Category::new(
            "Trend Micro Severity",
            list(&["High", "Medium", "Low"]),
            Origin::User,
        ),
    ]
}

/// Parses a date in `format`; with `lenient`, also RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) and
/// `YYYY-MM-DD`.
pub fn parse_date(text: &str, format: &str, lenient: bool) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_str(text, format) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
        return Some(Utc.from_utc_datetime(&t));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, format) {
        return d.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t));
    }
    if !lenient {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(Utc.from_utc_datetime(&t));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// Formats a TTL the way the public sample writes it.
pub fn format_ttl(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S+0000").to_string()
}

/// Splits one line of `TagData` or of an import file into fields: `delimiter`-separated, fields
/// may be double-quoted (then they may hold the delimiter), `""` inside quotes is one quote.
///
/// # Errors
/// An unterminated quote.
pub fn split_fields(line: &str, delimiter: char) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == delimiter {
            fields.push(std::mem::take(&mut field));
            at_start = true;
        } else {
            if !(at_start && c == ' ' && delimiter != ' ') {
                at_start = false;
            }
            field.push(c);
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| f.trim().to_string()).collect())
}

/// Writes one field of a query answer: quoted when it holds a comma, a quote or a line break.
pub fn quote_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}
