//! The wire model: indicator types and statuses, the stored indicator with its sources,
//! attributes and tags, value validation, and the JSON shapes the API answers with.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Map, Value, json};

/// The wire format of every timestamp ThreatQ emits (`2024-01-31 13:45:00`, UTC).
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Formats a timestamp the way the API does.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
}

/// Parses a ThreatQ timestamp (`YYYY-MM-DD HH:MM:SS`, a bare date, or RFC 3339).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(text, TIME_FORMAT) {
        return Some(Utc.from_utc_datetime(&t));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t));
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The `class` of an indicator type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Seen on the wire (addresses, names, URLs).
    Network,
    /// Seen on a host (hashes, files, registry keys).
    Host,
}

impl Class {
    /// The wire name.
    pub fn key(self) -> &'static str {
        match self {
            Class::Network => "network",
            Class::Host => "host",
        }
    }

    /// The class with this wire name.
    pub fn from_key(key: &str) -> Option<Class> {
        match key {
            "network" => Some(Class::Network),
            "host" => Some(Class::Host),
            _ => None,
        }
    }
}

/// How a type's values are checked and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRule {
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// An IPv4 or IPv6 network in CIDR notation.
    Cidr,
    /// A domain name.
    Fqdn,
    /// An absolute URL with a scheme.
    Url,
    /// Lowercase hexadecimal of this many characters.
    Hex(usize),
    /// An e-mail address.
    Email,
    /// Anything non-empty, compared exactly.
    Text,
}

/// One indicator type of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndicatorType {
    /// Its id on this instance (ids are instance data; clients resolve them by name).
    pub id: u64,
    /// Its name, e.g. `IP Address`.
    pub name: &'static str,
    /// Its class.
    pub class: Class,
    /// How its values are checked.
    pub rule: ValueRule,
}

const TYPE_TABLE: &[(&str, Class, ValueRule)] = &[
    ("ASN", Class::Network, ValueRule::Text),
    ("Binary String", Class::Host, ValueRule::Text),
    ("CIDR Block", Class::Network, ValueRule::Cidr),
    ("CVE", Class::Host, ValueRule::Text),
    ("Email Address", Class::Network, ValueRule::Email),
    ("Email Subject", Class::Network, ValueRule::Text),
    ("FQDN", Class::Network, ValueRule::Fqdn),
    ("File Path", Class::Host, ValueRule::Text),
    ("Filename", Class::Host, ValueRule::Text),
    ("Fuzzy Hash", Class::Host, ValueRule::Text),
    ("IP Address", Class::Network, ValueRule::Ipv4),
    ("IPv6 Address", Class::Network, ValueRule::Ipv6),
    ("MAC Address", Class::Host, ValueRule::Text),
    ("MD5", Class::Host, ValueRule::Hex(32)),
    ("Mutex", Class::Host, ValueRule::Text),
    ("Registry Key", Class::Host, ValueRule::Text),
    ("SHA-1", Class::Host, ValueRule::Hex(40)),
    ("SHA-256", Class::Host, ValueRule::Hex(64)),
    ("SHA-384", Class::Host, ValueRule::Hex(96)),
    ("SHA-512", Class::Host, ValueRule::Hex(128)),
    ("URL", Class::Network, ValueRule::Url),
    ("URL Path", Class::Network, ValueRule::Text),
    ("User-agent", Class::Network, ValueRule::Text),
    ("Username", Class::Host, ValueRule::Text),
    ("X-Mailer", Class::Network, ValueRule::Text),
    ("x509 Serial", Class::Network, ValueRule::Text),
    ("x509 Subject", Class::Network, ValueRule::Text),
];

/// Every indicator type, numbered from `1 + id_offset` in alphabetical order.
pub fn indicator_types(id_offset: u64) -> Vec<IndicatorType> {
    TYPE_TABLE
        .iter()
        .enumerate()
        .map(|(i, (name, class, rule))| IndicatorType {
            id: id_offset + i as u64 + 1,
            name,
            class: *class,
            rule: *rule,
        })
        .collect()
}

impl IndicatorType {
    /// The type as `/api/indicator/types` lists it.
    pub fn to_wire(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "class": self.class.key(),
            "score": null,
            "wildcard_matching": "N",
            "created_at": "2020-01-01 00:00:00",
            "updated_at": "2020-01-01 00:00:00",
        })
    }

    /// The short form embedded in an indicator.
    pub fn to_embedded(&self) -> Value {
        json!({"id": self.id, "name": self.name, "class": self.class.key()})
    }

    /// Checks a value of this type and returns its canonical form (the identity two values
    /// share when they are the same indicator), or why it is not one.
    pub fn canonical(&self, value: &str) -> Result<String, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("The value field is required.".into());
        }
        if value.len() > 4096 {
            return Err("The value may not be greater than 4096 characters.".into());
        }
        let bad = || format!("The value is not a valid {}.", self.name);
        match self.rule {
            ValueRule::Ipv4 => value
                .parse::<Ipv4Addr>()
                .map(|ip| ip.to_string())
                .map_err(|_| bad()),
            ValueRule::Ipv6 => value
                .parse::<Ipv6Addr>()
                .map(|ip| ip.to_string())
                .map_err(|_| bad()),
            ValueRule::Cidr => {
                let (ip, len) = value.split_once('/').ok_or_else(bad)?;
                let ip: IpAddr = ip.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().map_err(|_| bad())?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if len > max {
                    return Err(bad());
                }
                Ok(format!("{ip}/{len}"))
            }
            ValueRule::Fqdn => {
                let lower = value.trim_end_matches('.').to_ascii_lowercase();
                let ok = lower.len() <= 253
                    && lower.contains('.')
                    && lower.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    });
                if ok { Ok(lower) } else { Err(bad()) }
            }
            ValueRule::Url => match value.split_once("://") {
                Some((scheme, rest))
                    if !scheme.is_empty()
                        && scheme.bytes().all(|b| b.is_ascii_alphanumeric())
                        && !rest.is_empty()
                        && !value.chars().any(char::is_whitespace) =>
                {
                    Ok(value.to_string())
                }
                // ThreatQ stores scheme-less URLs too (`evil.example/path`).
                None if value.contains('/') && !value.chars().any(char::is_whitespace) => {
                    Ok(value.to_string())
                }
                _ => Err(bad()),
            },
            ValueRule::Hex(n) => {
                if value.len() == n && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(value.to_ascii_lowercase())
                } else {
                    Err(bad())
                }
            }
            ValueRule::Email => match value.rsplit_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && domain.contains('.')
                        && !value.chars().any(char::is_whitespace) =>
                {
                    Ok(value.to_ascii_lowercase())
                }
                _ => Err(bad()),
            },
            ValueRule::Text => Ok(value.to_string()),
        }
    }
}

/// One indicator status of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Its id (1 Active, 2 Expired, 3 Indirect, 4 Review, 5 Whitelisted on a default install).
    pub id: u64,
    /// Its name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
}

/// The statuses of a default install, with their ids.
pub const STATUSES: [Status; 5] = [
    Status {
        id: 1,
        name: "Active",
        description: "Poses a threat and is deployed to defences.",
    },
    Status {
        id: 2,
        name: "Expired",
        description: "No longer poses a threat.",
    },
    Status {
        id: 3,
        name: "Indirect",
        description: "Related to a threat but not a threat by itself.",
    },
    Status {
        id: 4,
        name: "Review",
        description: "Waiting for an analyst.",
    },
    Status {
        id: 5,
        name: "Whitelisted",
        description: "Known good; never deploy.",
    },
];

/// The status with this name (case-insensitive).
pub fn status_by_name(name: &str) -> Option<Status> {
    STATUSES
        .iter()
        .copied()
        .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
}

/// The status with this id.
pub fn status_by_id(id: u64) -> Option<Status> {
    STATUSES.iter().copied().find(|s| s.id == id)
}

impl Status {
    /// The status as `/api/indicator/statuses` lists it (and as embedded in an indicator).
    pub fn to_wire(&self) -> Value {
        json!({"id": self.id, "name": self.name, "description": self.description})
    }
}

/// The Traffic Light Protocol levels ThreatQ numbers (`tlp_id`).
pub const TLP: [(u8, &str); 4] = [(1, "RED"), (2, "AMBER"), (3, "GREEN"), (4, "WHITE")];

/// One attribute on an indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The pivot id (unique per indicator attribute).
    pub id: u64,
    /// The id of the attribute name in the instance's registry.
    pub attribute_id: u64,
    /// The attribute name, e.g. `Confidence`.
    pub name: String,
    /// Its value.
    pub value: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One source that reported an indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLink {
    /// The pivot id (what `DELETE /api/indicators/{id}/sources/{pivot}` takes).
    pub id: u64,
    /// The id of the source in the instance's registry.
    pub source_id: u64,
    /// Its name.
    pub name: String,
    /// `connectors`, `users`, …
    pub source_type: String,
    /// TLP id (1 red … 4 white), when set.
    pub tlp_id: Option<u8>,
    /// When the source published the indicator.
    pub published_at: DateTime<Utc>,
    /// When the link was made.
    pub created_at: DateTime<Utc>,
}

/// One tag on an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tag's id in the instance's registry.
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// One indicator as the emulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// Its id.
    pub id: u64,
    /// Its value as first submitted (trimmed).
    pub value: String,
    /// Its type.
    pub indicator_type: IndicatorType,
    /// Its status.
    pub status: Status,
    /// Its description, if any.
    pub description: Option<String>,
    /// The analyst's score (0–10), overriding the generated one.
    pub manual_score: Option<f64>,
    /// The score the platform computed (0–10).
    pub generated_score: f64,
    /// Sources that reported it.
    pub sources: Vec<SourceLink>,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// Its tags.
    pub tags: Vec<Tag>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When a source last touched it.
    pub touched_at: DateTime<Utc>,
    /// When it was first published.
    pub published_at: DateTime<Utc>,
    /// When it expires (status turns Expired), if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it expired.
    pub expired_at: Option<DateTime<Utc>>,
}

impl Indicator {
    /// The effective score: the manual score when set, else the generated one.
    pub fn score(&self) -> f64 {
        self.manual_score.unwrap_or(self.generated_score)
    }
}

/// Relations an indicator's JSON can carry besides its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// `attributes`.
    Attributes,
    /// `sources`.
    Sources,
    /// `tags`.
    Tags,
    /// `adversaries` (always empty here).
    Adversaries,
}

impl Relation {
    /// The relation with this name (`with=` or `fields`).
    pub fn from_key(key: &str) -> Option<Relation> {
        match key.trim() {
            "attributes" => Some(Relation::Attributes),
            "sources" => Some(Relation::Sources),
            "tags" => Some(Relation::Tags),
            "adversaries" => Some(Relation::Adversaries),
            _ => None,
        }
    }
}

/// How an indicator is rendered.
#[derive(Debug, Clone, Default)]
pub struct Render {
    /// Relations to include.
    pub with: BTreeSet<Relation>,
    /// `score` as `{generated_score, manual_score}` (single-object endpoints) instead of a number.
    pub score_object: bool,
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// An md5 digest of the value, as the `hash` field carries.
pub fn value_hash(value: &str) -> String {
    let digest = md5(value.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn time_or_null(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| format_time(t).into())
}

/// An attribute as the API returns it.
pub fn attribute_wire(indicator_id: u64, a: &Attribute) -> Value {
    json!({
        "id": a.id,
        "attribute_id": a.attribute_id,
        "indicator_id": indicator_id,
        "name": a.name,
        "value": a.value,
        "created_at": format_time(a.created_at),
        "updated_at": format_time(a.updated_at),
        "touched_at": format_time(a.updated_at),
    })
}

/// A source link as the API returns it.
pub fn source_wire(ind: &Indicator, s: &SourceLink) -> Value {
    json!({
        "id": s.id,
        "source_id": s.source_id,
        "indicator_id": ind.id,
        "name": s.name,
        "source_type": s.source_type,
        "creator_source_id": s.source_id,
        "reference_id": null,
        "indicator_status_id": ind.status.id,
        "indicator_type_id": ind.indicator_type.id,
        "tlp_id": s.tlp_id,
        "published_at": format_time(s.published_at),
        "created_at": format_time(s.created_at),
        "updated_at": format_time(s.created_at),
        "pivot": {"id": s.id},
    })
}

/// A tag as the API returns it.
pub fn tag_wire(t: &Tag) -> Value {
    json!({"id": t.id, "name": t.name})
}

/// The whole indicator object.
pub fn indicator_wire(ind: &Indicator, render: &Render) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), ind.id.into());
    map.insert("value".into(), ind.value.clone().into());
    map.insert("class".into(), ind.indicator_type.class.key().into());
    map.insert("type_id".into(), ind.indicator_type.id.into());
    map.insert("type".into(), ind.indicator_type.to_embedded());
    map.insert("status_id".into(), ind.status.id.into());
    map.insert("status".into(), ind.status.to_wire());
    let score = if render.score_object {
        json!({
            "indicator_id": ind.id,
            "generated_score": number(ind.generated_score),
            "manual_score": ind.manual_score.map(number),
        })
    } else {
        number(ind.score())
    };
    map.insert("score".into(), score);
    map.insert("hash".into(), value_hash(&ind.value).into());
    map.insert("description".into(), ind.description.clone().into());
    map.insert("created_at".into(), format_time(ind.created_at).into());
    map.insert("updated_at".into(), format_time(ind.updated_at).into());
    map.insert("touched_at".into(), format_time(ind.touched_at).into());
    map.insert("published_at".into(), format_time(ind.published_at).into());
    map.insert("expires_at".into(), time_or_null(ind.expires_at));
    map.insert("expired_at".into(), time_or_null(ind.expired_at));
    map.insert(
        "expires_calculated_at".into(),
        format_time(ind.updated_at).into(),
    );
    for relation in &render.with {
        let (key, value) = match relation {
            Relation::Attributes => (
                "attributes",
                Value::Array(
                    ind.attributes
                        .iter()
                        .map(|a| attribute_wire(ind.id, a))
                        .collect(),
                ),
            ),
            Relation::Sources => (
                "sources",
                Value::Array(ind.sources.iter().map(|s| source_wire(ind, s)).collect()),
            ),
            Relation::Tags => (
                "tags",
                Value::Array(ind.tags.iter().map(tag_wire).collect()),
            ),
            Relation::Adversaries => ("adversaries", Value::Array(Vec::new())),
        };
        map.insert(key.into(), value);
    }
    Value::Object(map)
}

/// The indicator reduced to the requested `fields`: `type` and `status` flatten to their names,
/// `score` to a number, and `tags` to a list of names unless `tags_as_objects`. Unknown field
/// names are left out.
pub fn indicator_fields(ind: &Indicator, fields: &[String], tags_as_objects: bool) -> Value {
    let full = indicator_wire(
        ind,
        &Render {
            with: [
                Relation::Attributes,
                Relation::Sources,
                Relation::Tags,
                Relation::Adversaries,
            ]
            .into_iter()
            .collect(),
            score_object: false,
        },
    );
    let mut map = Map::new();
    let star = fields.iter().any(|f| f.trim() == "*");
    let mut wanted: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
    if star {
        wanted.extend([
            "id",
            "value",
            "class",
            "type_id",
            "type",
            "status_id",
            "status",
            "score",
            "hash",
            "description",
            "created_at",
            "updated_at",
            "touched_at",
            "published_at",
            "expires_at",
            "expired_at",
        ]);
    }
    for field in wanted {
        let value = match field {
            "type" if !star => ind.indicator_type.name.into(),
            "status" if !star => ind.status.name.into(),
            "tags" if !tags_as_objects => Value::Array(
                ind.tags
                    .iter()
                    .map(|t| Value::from(t.name.clone()))
                    .collect(),
            ),
            other => match full.get(other) {
                Some(v) => v.clone(),
                None => continue,
            },
        };
        map.insert(field.to_string(), value);
    }
    Value::Object(map)
}

/// MD5 (RFC 1321), for the `hash` field. Not used for anything secret.
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i: i32| ((f64::from(i) + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut a0: u32 = 0x6745_2301;
    let mut b0: u32 = 0xefcd_ab89;
    let mut c0: u32 = 0x98ba_dcfe;
    let mut d0: u32 = 0x1032_5476;
    let mut message = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in message.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            m[i] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        }
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a0.to_le_bytes());
    out[4..8].copy_from_slice(&b0.to_le_bytes());
    out[8..12].copy_from_slice(&c0.to_le_bytes());
    out[12..].copy_from_slice(&d0.to_le_bytes());
    out
}
