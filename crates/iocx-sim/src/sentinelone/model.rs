//! The wire model: IOC types and their value rules, scopes, the stored IOC and threat and their
//! JSON forms, and the per-IOC validation of create bodies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Formats a timestamp the way the API does (`2025-11-12T07:43:38.109004Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an API timestamp: RFC 3339 with any fraction, or a date-time without zone (UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// `type` of an IOC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IocType {
    /// `DNS` (a domain name).
    Dns,
    /// `IPV4`.
    Ipv4,
    /// `IPV6`.
    Ipv6,
    /// `MD5`.
    Md5,
    /// `SHA1`.
    Sha1,
    /// `SHA256`.
    Sha256,
    /// `URL`.
    Url,
}

impl IocType {
    /// Every type, in the order the API lists them.
    pub const ALL: [IocType; 7] = [
        IocType::Dns,
        IocType::Ipv4,
        IocType::Ipv6,
        IocType::Md5,
        IocType::Sha1,
        IocType::Sha256,
        IocType::Url,
    ];

    /// The wire name.
    pub fn key(self) -> &'static str {
        match self {
            IocType::Dns => "DNS",
            IocType::Ipv4 => "IPV4",
            IocType::Ipv6 => "IPV6",
            IocType::Md5 => "MD5",
            IocType::Sha1 => "SHA1",
            IocType::Sha256 => "SHA256",
            IocType::Url => "URL",
        }
    }

    /// The type with this wire name (upper case, as documented).
    pub fn from_key(key: &str) -> Option<IocType> {
        IocType::ALL.into_iter().find(|t| t.key() == key)
    }

    /// `validUntil` when an IOC has none: upload + 14 days (IP), 90 days (URL, DNS), 180 days
    /// (hashes).
    pub fn default_validity(self) -> Duration {
        match self {
            IocType::Ipv4 | IocType::Ipv6 => Duration::days(14),
            IocType::Url | IocType::Dns => Duration::days(90),
            _ => Duration::days(180),
        }
    }

    /// The longest `validUntil` accepted, from upload: 30 days (IP), 180 days (the rest).
    pub fn max_validity(self) -> Duration {
        match self {
            IocType::Ipv4 | IocType::Ipv6 => Duration::days(30),
            _ => Duration::days(180),
        }
    }

    /// The identity of a value: equal identities are the same IOC. Hashes and domains compare
    /// case-insensitively, IP addresses by parsed form, URLs exactly.
    pub fn identity(self, value: &str) -> String {
        match self {
            IocType::Url => value.to_string(),
            IocType::Ipv4 | IocType::Ipv6 => value
                .parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|_| value.to_ascii_lowercase()),
            _ => value.to_ascii_lowercase(),
        }
    }

    /// Checks a value of this type; the reason when it is refused.
    pub fn check(self, value: &str) -> Result<(), String> {
        let hex = |n: usize| value.len() == n && value.bytes().all(|b| b.is_ascii_hexdigit());
        let ok = match self {
            IocType::Md5 => hex(32),
            IocType::Sha1 => hex(40),
            IocType::Sha256 => hex(64),
            IocType::Ipv4 => value.parse::<Ipv4Addr>().is_ok(),
            IocType::Ipv6 => value.parse::<Ipv6Addr>().is_ok(),
            IocType::Dns => valid_domain(value),
            IocType::Url => {
                !value.is_empty()
                    && value.len() <= 8192
                    && !value.chars().any(|c| c.is_whitespace() || c.is_control())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                IocType::Md5 => "Invalid MD5: expected 32 hexadecimal characters",
                IocType::Sha1 => "Invalid SHA1: expected 40 hexadecimal characters",
                IocType::Sha256 => "Invalid SHA256: expected 64 hexadecimal characters",
                IocType::Ipv4 => "Invalid IPV4 address",
                IocType::Ipv6 => "Invalid IPV6 address",
                IocType::Dns => "Invalid DNS: expected a domain name such as example.com",
                IocType::Url => "Invalid URL: must be 1 to 8192 characters without spaces",
            }
            .to_string())
        }
    }
}

fn valid_domain(v: &str) -> bool {
    if v.len() > 253 || v.parse::<IpAddr>().is_ok() {
        return false;
    }
    let v = v.strip_prefix("*.").unwrap_or(v);
    let labels: Vec<&str> = v.trim_end_matches('.').split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Where an IOC lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The whole tenant (`{"tenant": true}`).
    Tenant,
    /// One account.
    Account(String),
    /// One site.
    Site(String),
}

impl Scope {
    /// `scope` on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Scope::Tenant => "global",
            Scope::Account(_) => "account",
            Scope::Site(_) => "site",
        }
    }

    /// `scopeId` on the wire.
    pub fn id(&self) -> Value {
        match self {
            Scope::Tenant => Value::Null,
            Scope::Account(id) | Scope::Site(id) => id.clone().into(),
        }
    }
}

/// One IOC, as the emulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ioc {
    /// `uuid` (32 hex characters).
    pub uuid: String,
    /// `batchId`: the upload it came in.
    pub batch_id: String,
    /// Where it lives.
    pub scope: Scope,
    /// `type`.
    pub ioc_type: IocType,
    /// `value` as submitted.
    pub value: String,
    /// `source`.
    pub source: String,
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `severity` (0–7).
    pub severity: Option<i64>,
    /// `creator`: the token's user.
    pub creator: String,
    /// `creationTime` (as submitted, or the upload time).
    pub creation_time: DateTime<Utc>,
    /// `uploadTime`.
    pub upload_time: DateTime<Utc>,
    /// `updatedAt`.
    pub updated_at: DateTime<Utc>,
    /// `validUntil`.
    pub valid_until: DateTime<Utc>,
    /// The list fields kept as submitted: `category`, `labels`, `mitreTactic`, `threatActors`,
    /// `intrusionSets`, `reference`, and `metadata`, `originalRiskScore`.
    pub extra: Map<String, Value>,
}

impl Ioc {
    /// The object as the API returns it.
    pub fn to_wire(&self) -> Value {
        let mut map = Map::new();
        map.insert("uuid".into(), self.uuid.clone().into());
        map.insert("batchId".into(), self.batch_id.clone().into());
        map.insert("type".into(), self.ioc_type.key().into());
        map.insert("value".into(), self.value.clone().into());
        map.insert("method".into(), "EQUALS".into());
        map.insert("source".into(), self.source.clone().into());
        map.insert("name".into(), self.name.clone().into());
        map.insert("description".into(), self.description.clone().into());
        map.insert("externalId".into(), self.external_id.clone().into());
        map.insert("severity".into(), self.severity.into());
        map.insert("creator".into(), self.creator.clone().into());
        map.insert(
            "creationTime".into(),
            format_time(self.creation_time).into(),
        );
        map.insert("uploadTime".into(), format_time(self.upload_time).into());
        map.insert("updatedAt".into(), format_time(self.updated_at).into());
        map.insert("validUntil".into(), format_time(self.valid_until).into());
        map.insert("scope".into(), self.scope.name().into());
        map.insert("scopeId".into(), self.scope.id());
        for key in LIST_FIELDS {
            map.insert(
                (*key).into(),
                self.extra.get(*key).cloned().unwrap_or_else(|| json!([])),
            );
        }
        map.insert(
            "metadata".into(),
            self.extra.get("metadata").cloned().unwrap_or(Value::Null),
        );
        map.insert(
            "originalRiskScore".into(),
            self.extra
                .get("originalRiskScore")
                .cloned()
                .unwrap_or(Value::Null),
        );
        Value::Object(map)
    }
}

/// The list fields an IOC keeps as submitted (each a list of strings).
pub const LIST_FIELDS: &[&str] = &[
    "category",
    "labels",
    "mitreTactic",
    "threatActors",
    "intrusionSets",
    "reference",
];

/// Longest `source`, `name` and `externalId` (not documented; the emulator's choice).
pub const MAX_SHORT_TEXT: usize = 1024;
/// Longest `description` (not documented; the emulator's choice).
pub const MAX_DESCRIPTION: usize = 4096;

/// A validated IOC of a create body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIoc {
    /// `type`.
    pub ioc_type: IocType,
    /// `value`.
    pub value: String,
    /// `source`.
    pub source: String,
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `severity`.
    pub severity: Option<i64>,
    /// `creationTime`.
    pub creation_time: Option<DateTime<Utc>>,
    /// `validUntil` after defaults and the cap.
    pub valid_until: DateTime<Utc>,
    /// The list fields, `metadata` and `originalRiskScore`.
    pub extra: Map<String, Value>,
}

/// What IOC validation needs to know about the emulator's settings.
#[derive(Debug, Clone, Copy)]
pub struct IocRules {
    /// Refuse (rather than shorten) a `validUntil` past the type's cap.
    pub reject_over_cap: bool,
}

/// Why one IOC of a create was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocError {
    /// The submitted `value` (empty when missing).
    pub value: String,
    /// The submitted `type` (empty when missing).
    pub ioc_type: String,
    /// Why.
    pub message: String,
}

impl IocError {
    /// The entry inside the partial-failure detail.
    pub fn to_entry(&self) -> Value {
        json!({"value": self.value, "type": self.ioc_type, "message": self.message})
    }
}

fn text_field(item: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(format!("{key}: Longer than maximum length {max}.")),
        Some(_) => Err(format!("{key}: Not a valid string.")),
    }
}

/// Validates one IOC of `POST /web/api/v2.1/threat-intelligence/iocs` at upload time `now`.
///
/// # Errors
/// The refusal, naming the field and why.
pub fn parse_ioc(item: &Value, rules: &IocRules, now: DateTime<Utc>) -> Result<NewIoc, IocError> {
    let raw = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let fail = |message: String| IocError {
        value: raw("value"),
        ioc_type: raw("type"),
        message,
    };
    let Some(map) = item.as_object() else {
        return Err(fail("Each IOC must be a JSON object.".into()));
    };
    let ioc_type = match map.get("type") {
        Some(Value::String(t)) => IocType::from_key(t).ok_or_else(|| {
            fail(format!(
                "type: Must be one of: {}.",
                IocType::ALL.map(IocType::key).join(", ")
            ))
        })?,
        None | Some(Value::Null) => {
            return Err(fail("type: Missing data for required field.".into()));
        }
        Some(_) => return Err(fail("type: Not a valid string.".into())),
    };
    let value = match map.get("value") {
        Some(Value::String(v)) if !v.trim().is_empty() => v.trim().to_string(),
        Some(Value::String(_)) => return Err(fail("value: Shorter than minimum length 1.".into())),
        None | Some(Value::Null) => {
            return Err(fail("value: Missing data for required field.".into()));
        }
        Some(_) => return Err(fail("value: Not a valid string.".into())),
    };
    ioc_type
        .check(&value)
        .map_err(|why| fail(format!("value: {why}.")))?;
    match map.get("method") {
        Some(Value::String(m)) if m == "EQUALS" => {}
        None | Some(Value::Null) => {
            return Err(fail("method: Missing data for required field.".into()));
        }
        Some(_) => return Err(fail("method: Must be one of: EQUALS.".into())),
    }
    let source = text_field(map, "source", MAX_SHORT_TEXT)
        .map_err(fail)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| fail("source: Missing data for required field.".into()))?;
    let name = text_field(map, "name", MAX_SHORT_TEXT).map_err(fail)?;
    let description = text_field(map, "description", MAX_DESCRIPTION).map_err(fail)?;
    let external_id = text_field(map, "externalId", MAX_SHORT_TEXT).map_err(fail)?;
    let severity = match map.get("severity") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(s @ 0..=7) => Some(s),
            _ => {
                return Err(fail(
                    "severity: Must be greater than or equal to 0 and less than or equal to 7."
                        .into(),
                ));
            }
        },
        Some(_) => return Err(fail("severity: Not a valid integer.".into())),
    };
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, IocError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_time(s)
                .map(Some)
                .ok_or_else(|| fail(format!("{key}: Not a valid datetime."))),
            Some(_) => Err(fail(format!("{key}: Not a valid datetime."))),
        }
    };
    let creation_time = time("creationTime")?;
    let valid_until = match time("validUntil")? {
        None => now + ioc_type.default_validity(),
        Some(t) if t <= now => {
            return Err(fail("validUntil: Must be a time in the future.".into()));
        }
        Some(t) if t > now + ioc_type.max_validity() => {
            if rules.reject_over_cap {
                return Err(fail(format!(
                    "validUntil: Must be at most {} days from now for {}.",
                    ioc_type.max_validity().num_days(),
                    ioc_type.key()
                )));
            }
            now + ioc_type.max_validity()
        }
        Some(t) => t,
    };
    let mut extra = Map::new();
    for key in LIST_FIELDS {
        match map.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                extra.insert((*key).into(), Value::Array(items.clone()));
            }
            Some(_) => return Err(fail(format!("{key}: Not a valid list of strings."))),
        }
    }
    for key in ["metadata", "originalRiskScore"] {
        if let Some(v) = map.get(key).filter(|v| !v.is_null()) {
            extra.insert(key.into(), v.clone());
        }
    }
    Ok(NewIoc {
        ioc_type,
        value,
        source,
        name,
        description,
        external_id,
        severity,
        creation_time,
        valid_until,
        extra,
    })
}

/// One threat (`/web/api/v2.1/threats`), reduced to what a pull of its hashes reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Threat {
    /// `id` (a 19-digit number as a string).
    pub id: String,
    /// The account it was seen in.
    pub account_id: String,
    /// The site it was seen in.
    pub site_id: String,
    /// That site's name.
    pub site_name: String,
    /// `threatInfo.threatName` (the file name).
    pub threat_name: String,
    /// `threatInfo.sha1`.
    pub sha1: Option<String>,
    /// `threatInfo.sha256`.
    pub sha256: Option<String>,
    /// `threatInfo.md5`.
    pub md5: Option<String>,
    /// `threatInfo.filePath`.
    pub file_path: String,
    /// `threatInfo.classification`.
    pub classification: String,
    /// `threatInfo.confidenceLevel` (`malicious`, `suspicious`).
    pub confidence_level: String,
    /// `threatInfo.analystVerdict` (`true_positive`, `suspicious`, `false_positive`,
    /// `undefined`).
    pub analyst_verdict: String,
    /// `threatInfo.engines`.
    pub engines: Vec<String>,
    /// `threatInfo.mitigationStatus`.
    pub mitigation_status: String,
    /// `agentRealtimeInfo.agentComputerName`.
    pub computer_name: String,
    /// `threatInfo.createdAt`.
    pub created_at: DateTime<Utc>,
    /// `threatInfo.updatedAt`.
    pub updated_at: DateTime<Utc>,
}

/// The `analystVerdictDescription` of a verdict.
pub fn verdict_description(v: &str) -> &'static str {
    match v {
        "true_positive" => "True positive",
        "suspicious" => "Suspicious",
        "false_positive" => "False positive",
        _ => "Undefined",
    }
}

impl Threat {
    /// The threat as the API returns it.
    pub fn to_wire(&self) -> Value {
        json!({
            "id": self.id,
            "agentDetectionInfo": {
                "accountId": self.account_id,
                "siteId": self.site_id,
                "siteName": self.site_name,
                "agentOsName": "Windows 11 Enterprise",
            },
            "agentRealtimeInfo": {
                "accountId": self.account_id,
                "siteId": self.site_id,
                "siteName": self.site_name,
                "agentComputerName": self.computer_name,
                "agentOsType": "windows",
            },
            "threatInfo": {
                "threatId": self.id,
                "threatName": self.threat_name,
                "sha1": self.sha1,
                "sha256": self.sha256,
                "md5": self.md5,
                "filePath": self.file_path,
                "classification": self.classification,
                "confidenceLevel": self.confidence_level,
                "analystVerdict": self.analyst_verdict,
                "analystVerdictDescription": verdict_description(&self.analyst_verdict),
                "engines": self.engines,
                "detectionEngines": self.engines.iter().map(|e| json!({"key": e, "title": e})).collect::<Vec<_>>(),
                "mitigationStatus": self.mitigation_status,
                "incidentStatus": "unresolved",
                "createdAt": format_time(self.created_at),
                "updatedAt": format_time(self.updated_at),
                "identifiedAt": format_time(self.created_at),
            },
            "indicators": [],
            "mitigationStatus": [],
            "whiteningOptions": ["hash", "path"],
        })
    }
}
