//! The wire model: attribute types with their default category and `to_ids`, the categories, value
//! checks, organisations, tags, attributes and events, and the JSON shapes MISP answers with
//! (ids and timestamps as strings, as MISP sends them).

use std::net::IpAddr;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

/// The categories of attributes.
pub const CATEGORIES: [&str; 16] = [
    "Internal reference",
    "Targeting data",
    "Antivirus detection",
    "Payload delivery",
    "Artifacts dropped",
    "Payload installation",
    "Persistence mechanism",
    "Network activity",
    "Payload type",
    "Attribution",
    "External analysis",
    "Financial fraud",
    "Support Tool",
    "Social network",
    "Person",
    "Other",
];

/// How a type's values are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Hex of this length.
    Hex(usize),
    /// An IP address or CIDR block.
    Ip,
    /// `ip|port`.
    IpPort,
    /// A domain or host name.
    Domain,
    /// `domain|ip`.
    DomainIp,
    /// `hostname|port`.
    HostPort,
    /// An e-mail address.
    Email,
    /// A URL (anything without whitespace).
    Url,
    /// A port number.
    Port,
    /// `filename|hex` of this length.
    FileHash(usize),
    /// Anything non-empty.
    Text,
}

/// One attribute type: name, default category, whether it is an IDS signature by default, the
/// categories it may take, and its check.
#[derive(Debug, Clone, Copy)]
pub struct AttributeType {
    /// The type's name, e.g. `ip-dst`.
    pub name: &'static str,
    /// The category an attribute gets when none is given.
    pub default_category: &'static str,
    /// `to_ids` when none is given.
    pub to_ids: bool,
    /// The categories it may take.
    pub categories: &'static [&'static str],
    /// How values are checked.
    pub rule: Rule,
}

const NET: &[&str] = &[
    "Network activity",
    "Payload delivery",
    "External analysis",
    "Payload installation",
    "Artifacts dropped",
];
const HASH: &[&str] = &[
    "Payload delivery",
    "Artifacts dropped",
    "Payload installation",
    "External analysis",
    "Antivirus detection",
];
const MAIL: &[&str] = &[
    "Payload delivery",
    "Network activity",
    "Social network",
    "Targeting data",
    "Attribution",
    "Person",
];
const ANY: &[&str] = &[
    "Internal reference",
    "Targeting data",
    "Antivirus detection",
    "Payload delivery",
    "Artifacts dropped",
    "Payload installation",
    "Persistence mechanism",
    "Network activity",
    "Payload type",
    "Attribution",
    "External analysis",
    "Financial fraud",
    "Support Tool",
    "Social network",
    "Person",
    "Other",
];

/// The attribute types this emulator knows (a subset of MISP's, covering every kind iocx moves).
pub const TYPES: &[AttributeType] = &[
    AttributeType {
        name: "md5",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::Hex(32),
    },
    AttributeType {
        name: "sha1",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::Hex(40),
    },
    AttributeType {
        name: "sha256",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::Hex(64),
    },
    AttributeType {
        name: "sha512",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::Hex(128),
    },
    AttributeType {
        name: "ssdeep",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::Text,
    },
    AttributeType {
        name: "filename",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::Text,
    },
    AttributeType {
        name: "filename|md5",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::FileHash(32),
    },
    AttributeType {
        name: "filename|sha1",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::FileHash(40),
    },
    AttributeType {
        name: "filename|sha256",
        default_category: "Payload delivery",
        to_ids: true,
        categories: HASH,
        rule: Rule::FileHash(64),
    },
    AttributeType {
        name: "ip-src",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Ip,
    },
    AttributeType {
        name: "ip-dst",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Ip,
    },
    AttributeType {
        name: "ip-src|port",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::IpPort,
    },
    AttributeType {
        name: "ip-dst|port",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::IpPort,
    },
    AttributeType {
        name: "hostname",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Domain,
    },
    AttributeType {
        name: "hostname|port",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::HostPort,
    },
    AttributeType {
        name: "domain",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Domain,
    },
    AttributeType {
        name: "domain|ip",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::DomainIp,
    },
    AttributeType {
        name: "url",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Url,
    },
    AttributeType {
        name: "uri",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Text,
    },
    AttributeType {
        name: "user-agent",
        default_category: "Network activity",
        to_ids: false,
        categories: NET,
        rule: Rule::Text,
    },
    AttributeType {
        name: "port",
        default_category: "Network activity",
        to_ids: false,
        categories: NET,
        rule: Rule::Port,
    },
    AttributeType {
        name: "AS",
        default_category: "Network activity",
        to_ids: false,
        categories: NET,
        rule: Rule::Text,
    },
    AttributeType {
        name: "email",
        default_category: "Social network",
        to_ids: true,
        categories: MAIL,
        rule: Rule::Email,
    },
    AttributeType {
        name: "email-src",
        default_category: "Payload delivery",
        to_ids: true,
        categories: MAIL,
        rule: Rule::Email,
    },
    AttributeType {
        name: "email-dst",
        default_category: "Network activity",
        to_ids: true,
        categories: MAIL,
        rule: Rule::Email,
    },
    AttributeType {
        name: "email-subject",
        default_category: "Payload delivery",
        to_ids: false,
        categories: MAIL,
        rule: Rule::Text,
    },
    AttributeType {
        name: "mutex",
        default_category: "Artifacts dropped",
        to_ids: true,
        categories: HASH,
        rule: Rule::Text,
    },
    AttributeType {
        name: "regkey",
        default_category: "Persistence mechanism",
        to_ids: true,
        categories: ANY,
        rule: Rule::Text,
    },
    AttributeType {
        name: "vulnerability",
        default_category: "External analysis",
        to_ids: false,
        categories: ANY,
        rule: Rule::Text,
    },
    AttributeType {
        name: "x509-fingerprint-sha1",
        default_category: "Network activity",
        to_ids: true,
        categories: NET,
        rule: Rule::Hex(40),
    },
    AttributeType {
        name: "btc",
        default_category: "Financial fraud",
        to_ids: true,
        categories: ANY,
        rule: Rule::Text,
    },
    AttributeType {
        name: "link",
        default_category: "External analysis",
        to_ids: false,
        categories: ANY,
        rule: Rule::Url,
    },
    AttributeType {
        name: "comment",
        default_category: "Other",
        to_ids: false,
        categories: ANY,
        rule: Rule::Text,
    },
    AttributeType {
        name: "text",
        default_category: "Other",
        to_ids: false,
        categories: ANY,
        rule: Rule::Text,
    },
    AttributeType {
        name: "other",
        default_category: "Other",
        to_ids: false,
        categories: ANY,
        rule: Rule::Text,
    },
];

/// The type with this name.
pub fn attribute_type(name: &str) -> Option<&'static AttributeType> {
    TYPES.iter().find(|t| t.name == name)
}

fn is_domain(text: &str) -> bool {
    let t = text.trim_end_matches('.');
    t.len() <= 253
        && t.contains('.')
        && t.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_ip_or_cidr(text: &str) -> Option<String> {
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (text, None),
    };
    let ip: IpAddr = ip.trim().parse().ok()?;
    match len {
        None => Some(ip.to_string()),
        Some(l) => {
            let l: u8 = l.trim().parse().ok()?;
            (l <= if ip.is_ipv4() { 32 } else { 128 }).then(|| format!("{ip}/{l}"))
        }
    }
}

fn port_ok(text: &str) -> bool {
    text.trim().parse::<u16>().is_ok()
}

impl AttributeType {
    /// Checks a value and returns it as MISP stores it (hashes and names lowercased, IPs in
    /// canonical form).
    ///
    /// # Errors
    /// Why the value is not one of this type.
    pub fn check(&self, value: &str) -> Result<String, String> {
        let v = value.trim();
        if v.is_empty() {
            return Err("Value cannot be empty.".into());
        }
        if v.len() > 131_072 {
            return Err("Value too long.".into());
        }
        let bad = || format!("Invalid value for type {}.", self.name);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        match self.rule {
            Rule::Hex(n) => hex(v, n).then(|| v.to_ascii_lowercase()).ok_or_else(bad),
            Rule::Ip => is_ip_or_cidr(v).ok_or_else(bad),
            Rule::IpPort => {
                let (ip, port) = v.rsplit_once('|').ok_or_else(bad)?;
                let ip = is_ip_or_cidr(ip).ok_or_else(bad)?;
                port_ok(port)
                    .then(|| format!("{ip}|{}", port.trim()))
                    .ok_or_else(bad)
            }
            Rule::Domain => is_domain(v).then(|| v.to_ascii_lowercase()).ok_or_else(bad),
            Rule::DomainIp => {
                let (d, ip) = v.split_once('|').ok_or_else(bad)?;
                let ip = is_ip_or_cidr(ip).ok_or_else(bad)?;
                is_domain(d)
                    .then(|| format!("{}|{ip}", d.to_ascii_lowercase()))
                    .ok_or_else(bad)
            }
            Rule::HostPort => {
                let (h, p) = v.rsplit_once('|').ok_or_else(bad)?;
                (is_domain(h) && port_ok(p))
                    .then(|| format!("{}|{}", h.to_ascii_lowercase(), p.trim()))
                    .ok_or_else(bad)
            }
            Rule::Email => match v.rsplit_once('@') {
                Some((l, d))
                    if !l.is_empty() && is_domain(d) && !v.contains(char::is_whitespace) =>
                {
                    Ok(v.to_string())
                }
                _ => Err(bad()),
            },
            Rule::Url => (!v.contains(char::is_whitespace))
                .then(|| v.to_string())
                .ok_or_else(bad),
            Rule::Port => port_ok(v).then(|| v.to_string()).ok_or_else(bad),
            Rule::FileHash(n) => {
                let (f, h) = v.rsplit_once('|').ok_or_else(bad)?;
                (!f.is_empty() && hex(h, n))
                    .then(|| format!("{f}|{}", h.to_ascii_lowercase()))
                    .ok_or_else(bad)
            }
            Rule::Text => Ok(v.to_string()),
        }
    }
}

/// `GET /attributes/describeTypes.json`: `{"result": {sane_defaults, types, categories,
/// category_type_mappings}}`.
pub fn describe_types() -> Value {
    let mut sane = Map::new();
    for t in TYPES {
        sane.insert(
            t.name.into(),
            json!({"default_category": t.default_category, "to_ids": i32::from(t.to_ids)}),
        );
    }
    let mut mappings = Map::new();
    for c in CATEGORIES {
        let types: Vec<&str> = TYPES
            .iter()
            .filter(|t| t.categories.contains(&c))
            .map(|t| t.name)
            .collect();
        mappings.insert(c.into(), json!(types));
    }
    json!({"result": {
        "sane_defaults": sane,
        "types": TYPES.iter().map(|t| t.name).collect::<Vec<_>>(),
        "categories": CATEGORIES,
        "category_type_mappings": mappings,
    }})
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
}

impl Org {
    /// The organisation as embedded in events.
    pub fn to_wire(&self) -> Value {
        json!({"id": self.id.to_string(), "name": self.name, "uuid": self.uuid, "local": true})
    }
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Its id.
    pub id: u64,
    /// Its name, e.g. `tlp:amber`.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub colour: String,
    /// Whether it is exported to other instances.
    pub exportable: bool,
    /// Hidden from lists.
    pub hide_tag: bool,
    /// A number attached to the tag (taxonomies).
    pub numerical_value: Option<i64>,
}

impl Tag {
    /// The tag as `/tags/index` lists it; `local` when attached locally.
    pub fn to_wire(&self, local: Option<bool>) -> Value {
        let mut v = json!({
            "id": self.id.to_string(),
            "name": self.name,
            "colour": self.colour,
            "exportable": self.exportable,
            "user_id": "0",
            "hide_tag": self.hide_tag,
            "numerical_value": self.numerical_value.map(|n| n.to_string()),
            "is_galaxy": self.name.starts_with("misp-galaxy:"),
            "is_custom_galaxy": false,
            "local_only": false,
        });
        if let (Some(l), Value::Object(map)) = (local, &mut v) {
            map.insert("local".into(), json!(i32::from(l)));
        }
        v
    }
}

/// The tags every instance starts with: the TLP levels and a few common ones.
pub fn default_tags() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tlp:white", "#ffffff"),
        ("tlp:clear", "#ffffff"),
        ("tlp:green", "#33ff00"),
        ("tlp:amber", "#ffc000"),
        ("tlp:amber+strict", "#ffc000"),
        ("tlp:red", "#ff0033"),
        ("type:OSINT", "#004646"),
        ("misp:confidence-level=\"completely-confident\"", "#12e000"),
        (
            "estimative-language:likelihood-probability=\"very-likely\"",
            "#0f7500",
        ),
    ]
}

/// An attribute as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Its id.
    pub id: u64,
    /// The event it belongs to.
    pub event_id: u64,
    /// Its UUID.
    pub uuid: String,
    /// Its type.
    pub kind: &'static str,
    /// Its category.
    pub category: String,
    /// Its value.
    pub value: String,
    /// Whether it is an IDS signature.
    pub to_ids: bool,
    /// A comment.
    pub comment: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// Last change, epoch seconds.
    pub timestamp: i64,
    /// 0 your organisation … 5 inherit event.
    pub distribution: u8,
    /// Correlation switched off.
    pub disable_correlation: bool,
    /// First seen, ISO 8601.
    pub first_seen: Option<String>,
    /// Last seen, ISO 8601.
    pub last_seen: Option<String>,
    /// Tag ids with their `local` flag.
    pub tags: Vec<(u64, bool)>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its id.
    pub id: u64,
    /// Its UUID.
    pub uuid: String,
    /// Its title.
    pub info: String,
    /// Its date.
    pub date: NaiveDate,
    /// 1 high, 2 medium, 3 low, 4 undefined.
    pub threat_level_id: u8,
    /// 0 initial, 1 ongoing, 2 complete.
    pub analysis: u8,
    /// 0 your organisation … 4 sharing group.
    pub distribution: u8,
    /// Published.
    pub published: bool,
    /// Last change, epoch seconds.
    pub timestamp: i64,
    /// When last published, epoch seconds (0 never).
    pub publish_timestamp: i64,
    /// The creating organisation.
    pub orgc: Org,
    /// The owning organisation.
    pub org: Org,
    /// Event tags with their `local` flag.
    pub tags: Vec<(u64, bool)>,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// Who made it.
    pub creator_email: String,
}

/// Formats epoch seconds as MISP does (a string).
pub fn ts(t: i64) -> String {
    t.to_string()
}

/// How attributes and events are rendered.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttributeRender {
    /// Add the event's tags to the attribute's `Tag` (as `inherited`).
    pub include_event_tags: bool,
    /// Add `event_uuid`.
    pub include_event_uuid: bool,
    /// Add an empty `decay_score`.
    pub include_decay_score: bool,
    /// Embed the short `Event`.
    pub with_event: bool,
}

/// Renders tag references with a tag lookup.
pub fn tags_wire(refs: &[(u64, bool)], lookup: &dyn Fn(u64) -> Option<Tag>) -> Vec<Value> {
    refs.iter()
        .filter_map(|(id, local)| lookup(*id).map(|t| t.to_wire(Some(*local))))
        .collect()
}

/// An attribute as the API returns it.
pub fn attribute_wire(
    a: &Attribute,
    event: &Event,
    render: AttributeRender,
    lookup: &dyn Fn(u64) -> Option<Tag>,
) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), a.id.to_string().into());
    map.insert("event_id".into(), a.event_id.to_string().into());
    map.insert("object_id".into(), "0".into());
    map.insert("object_relation".into(), Value::Null);
    map.insert("category".into(), a.category.clone().into());
    map.insert("type".into(), a.kind.into());
    map.insert("value".into(), a.value.clone().into());
    map.insert("to_ids".into(), a.to_ids.into());
    map.insert("uuid".into(), a.uuid.clone().into());
    map.insert("timestamp".into(), ts(a.timestamp).into());
    map.insert("distribution".into(), a.distribution.to_string().into());
    map.insert("sharing_group_id".into(), "0".into());
    map.insert("comment".into(), a.comment.clone().into());
    map.insert("deleted".into(), a.deleted.into());
    map.insert("disable_correlation".into(), a.disable_correlation.into());
    map.insert("first_seen".into(), a.first_seen.clone().into());
    map.insert("last_seen".into(), a.last_seen.clone().into());
    if render.with_event {
        map.insert(
            "Event".into(),
            json!({
                "org_id": event.org.id.to_string(),
                "distribution": event.distribution.to_string(),
                "id": event.id.to_string(),
                "info": event.info,
                "orgc_id": event.orgc.id.to_string(),
                "uuid": event.uuid,
                "publish_timestamp": ts(event.publish_timestamp),
            }),
        );
    }
    if render.include_event_uuid {
        map.insert("event_uuid".into(), event.uuid.clone().into());
    }
    let mut tags = tags_wire(&a.tags, lookup);
    if render.include_event_tags {
        for mut t in tags_wire(&event.tags, lookup) {
            if !tags.iter().any(|x| x["id"] == t["id"]) {
                if let Value::Object(m) = &mut t {
                    m.insert("inherited".into(), json!(1));
                }
                tags.push(t);
            }
        }
    }
    if !tags.is_empty() {
        map.insert("Tag".into(), Value::Array(tags));
    }
    if render.include_decay_score {
        map.insert("decay_score".into(), json!([]));
    }
    Value::Object(map)
}

/// An event's own fields (no attributes) as the API returns them.
pub fn event_head(e: &Event) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("id".into(), e.id.to_string().into());
    map.insert("orgc_id".into(), e.orgc.id.to_string().into());
    map.insert("org_id".into(), e.org.id.to_string().into());
    map.insert("date".into(), e.date.format("%Y-%m-%d").to_string().into());
    map.insert(
        "threat_level_id".into(),
        e.threat_level_id.to_string().into(),
    );
    map.insert("info".into(), e.info.clone().into());
    map.insert("published".into(), e.published.into());
    map.insert("uuid".into(), e.uuid.clone().into());
    let live = e.attributes.iter().filter(|a| !a.deleted).count();
    map.insert("attribute_count".into(), live.to_string().into());
    map.insert("analysis".into(), e.analysis.to_string().into());
    map.insert("timestamp".into(), ts(e.timestamp).into());
    map.insert("distribution".into(), e.distribution.to_string().into());
    map.insert("proposal_email_lock".into(), false.into());
    map.insert("locked".into(), false.into());
    map.insert("publish_timestamp".into(), ts(e.publish_timestamp).into());
    map.insert("sharing_group_id".into(), "0".into());
    map.insert("disable_correlation".into(), false.into());
    map.insert("extends_uuid".into(), "".into());
    map.insert("protected".into(), Value::Null);
    map.insert("event_creator_email".into(), e.creator_email.clone().into());
    map.insert("Org".into(), e.org.to_wire());
    map.insert("Orgc".into(), e.orgc.to_wire());
    map
}

/// The whole event, `{"Event": {…}}`, with the attributes `keep` selects (deleted ones only when
/// `with_deleted`).
pub fn event_wire(
    e: &Event,
    keep: &dyn Fn(&Attribute) -> bool,
    metadata_only: bool,
    lookup: &dyn Fn(u64) -> Option<Tag>,
) -> Value {
    let mut map = event_head(e);
    if !metadata_only {
        let attrs: Vec<Value> = e
            .attributes
            .iter()
            .filter(|a| keep(a))
            .map(|a| attribute_wire(a, e, AttributeRender::default(), lookup))
            .collect();
        map.insert("Attribute".into(), Value::Array(attrs));
        map.insert("ShadowAttribute".into(), json!([]));
        map.insert("RelatedEvent".into(), json!([]));
        map.insert("Galaxy".into(), json!([]));
        map.insert("Object".into(), json!([]));
        map.insert("EventReport".into(), json!([]));
        map.insert("CryptographicKey".into(), json!([]));
    }
    map.insert("Tag".into(), Value::Array(tags_wire(&e.tags, lookup)));
    json!({"Event": Value::Object(map)})
}

/// The event in the static feed format (`<uuid>.json`): only the fields a feed carries.
pub fn feed_event(e: &Event, lookup: &dyn Fn(u64) -> Option<Tag>) -> Value {
    let feed_tags = |refs: &[(u64, bool)]| -> Vec<Value> {
        refs.iter()
            .filter(|(_, local)| !local)
            .filter_map(|(id, _)| lookup(*id))
            .filter(|t| t.exportable)
            .map(|t| json!({"name": t.name, "colour": t.colour, "local": false}))
            .collect()
    };
    let attrs: Vec<Value> = e
        .attributes
        .iter()
        .filter(|a| !a.deleted)
        .map(|a| {
            let mut m = json!({
                "uuid": a.uuid,
                "type": a.kind,
                "category": a.category,
                "value": a.value,
                "comment": a.comment,
                "to_ids": a.to_ids,
                "deleted": false,
                "timestamp": ts(a.timestamp),
                "disable_correlation": a.disable_correlation,
                "first_seen": a.first_seen,
                "last_seen": a.last_seen,
            });
            let tags = feed_tags(&a.tags);
            if let (false, Value::Object(map)) = (tags.is_empty(), &mut m) {
                map.insert("Tag".into(), Value::Array(tags));
            }
            m
        })
        .collect();
    json!({"Event": {
        "uuid": e.uuid,
        "info": e.info,
        "date": e.date.format("%Y-%m-%d").to_string(),
        "threat_level_id": e.threat_level_id.to_string(),
        "analysis": e.analysis.to_string(),
        "timestamp": ts(e.timestamp),
        "publish_timestamp": ts(e.publish_timestamp),
        "published": e.published,
        "Orgc": {"name": e.orgc.name, "uuid": e.orgc.uuid},
        "Tag": feed_tags(&e.tags),
        "Attribute": attrs,
        "Object": [],
    }})
}

/// The event's line in a feed's `manifest.json`.
pub fn manifest_entry(e: &Event, lookup: &dyn Fn(u64) -> Option<Tag>) -> Value {
    let tags: Vec<Value> = e
        .tags
        .iter()
        .filter(|(_, local)| !local)
        .filter_map(|(id, _)| lookup(*id))
        .map(|t| json!({"name": t.name, "colour": t.colour}))
        .collect();
    json!({
        "Orgc": {"name": e.orgc.name, "uuid": e.orgc.uuid},
        "Tag": tags,
        "info": e.info,
        "date": e.date.format("%Y-%m-%d").to_string(),
        "analysis": e.analysis,
        "threat_level_id": e.threat_level_id,
        "timestamp": e.timestamp,
    })
}
