//! The wire model: object types, enums, stored objects, their JSON form, and the per-item
//! validation of add and delete bodies.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The wire format of every timestamp the API emits (`2024-01-01T00:00:00Z`).
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Longest `description` accepted on an add.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// Longest `daysToExpiration` accepted (a hundred years), so expiry arithmetic never overflows.
pub const MAX_DAYS_TO_EXPIRATION: i64 = 36_500;

/// Formats a timestamp the way the API does.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
}

/// One of the six object types. The wire name is both the `type` value and the key that carries
/// the object's value (`{"type":"ip","ip":"198.51.100.7"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    /// `url`.
    Url,
    /// `domain`.
    Domain,
    /// `ip` (IPv4 or IPv6).
    Ip,
    /// `senderMailAddress`.
    SenderMailAddress,
    /// `fileSha1`.
    FileSha1,
    /// `fileSha256`.
    FileSha256,
}

impl ObjectType {
    /// Every type, in the order the API documents them.
    pub const ALL: [ObjectType; 6] = [
        ObjectType::Url,
        ObjectType::Domain,
        ObjectType::Ip,
        ObjectType::SenderMailAddress,
        ObjectType::FileSha1,
        ObjectType::FileSha256,
    ];

    /// The wire name.
    pub fn key(self) -> &'static str {
        match self {
            ObjectType::Url => "url",
            ObjectType::Domain => "domain",
            ObjectType::Ip => "ip",
            ObjectType::SenderMailAddress => "senderMailAddress",
            ObjectType::FileSha1 => "fileSha1",
            ObjectType::FileSha256 => "fileSha256",
        }
    }

    /// The type with this wire name (case-sensitive, as on the wire).
    pub fn from_key(key: &str) -> Option<ObjectType> {
        ObjectType::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The identity of a value of this type: two values with the same identity are the same
    /// object. Hashes, domains and mail addresses compare case-insensitively, IP addresses by
    /// their parsed form; URLs exactly.
    pub fn identity(self, value: &str) -> String {
        match self {
            ObjectType::Url => value.to_string(),
            ObjectType::Ip => value
                .parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|_| value.to_ascii_lowercase()),
            _ => value.to_ascii_lowercase(),
        }
    }

    /// The longest value accepted for this type.
    pub fn max_len(self) -> usize {
        match self {
            ObjectType::Url => 2048,
            ObjectType::Domain => 253,
            ObjectType::Ip => 39,
            ObjectType::SenderMailAddress => 254,
            ObjectType::FileSha1 => 40,
            ObjectType::FileSha256 => 64,
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `riskLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskLevel {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high` (the default when an add omits it).
    High,
}

impl RiskLevel {
    /// Every level, lowest first.
    pub const ALL: [RiskLevel; 3] = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High];

    /// The wire name.
    pub fn key(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }

    /// The level with this wire name.
    pub fn from_key(key: &str) -> Option<RiskLevel> {
        RiskLevel::ALL.into_iter().find(|r| r.key() == key)
    }

    /// The sort rank (`riskLevel asc` puts `low` first).
    pub fn rank(self) -> i64 {
        match self {
            RiskLevel::Low => 1,
            RiskLevel::Medium => 2,
            RiskLevel::High => 3,
        }
    }
}

/// `scanAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ScanAction {
    /// `block`.
    Block,
    /// `log`.
    Log,
}

impl ScanAction {
    /// Both actions.
    pub const ALL: [ScanAction; 2] = [ScanAction::Block, ScanAction::Log];

    /// The wire name.
    pub fn key(self) -> &'static str {
        match self {
            ScanAction::Block => "block",
            ScanAction::Log => "log",
        }
    }

    /// The action with this wire name.
    pub fn from_key(key: &str) -> Option<ScanAction> {
        ScanAction::ALL.into_iter().find(|a| a.key() == key)
    }
}

/// One object on the Suspicious Object List, as the emulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspiciousObject {
    /// Its type.
    pub object_type: ObjectType,
    /// Its value, as last submitted.
    pub value: String,
    /// Its description (absent on the wire when empty).
    pub description: Option<String>,
    /// What connected products do on a match.
    pub scan_action: ScanAction,
    /// Its risk level.
    pub risk_level: RiskLevel,
    /// When it was last added or updated (whole seconds).
    pub last_modified: DateTime<Utc>,
    /// When it expires; `None` never (`daysToExpiration: -1`).
    pub expires: Option<DateTime<Utc>>,
    /// Whether the same object is on the Exception List (computed when read).
    pub in_exception_list: bool,
}

impl SuspiciousObject {
    /// The list item as the API returns it. `never_expires_as` is what `expiredDateTime` holds
    /// for objects that never expire.
    pub fn to_wire(&self, never_expires_as: &str) -> Value {
        let mut map = Map::new();
        map.insert("type".into(), self.object_type.key().into());
        map.insert(self.object_type.key().into(), self.value.clone().into());
        if let Some(d) = self.description.as_deref().filter(|d| !d.is_empty()) {
            map.insert("description".into(), d.into());
        }
        map.insert("scanAction".into(), self.scan_action.key().into());
        map.insert("riskLevel".into(), self.risk_level.key().into());
        map.insert("inExceptionList".into(), self.in_exception_list.into());
        map.insert(
            "lastModifiedDateTime".into(),
            format_time(self.last_modified).into(),
        );
        let expired = match self.expires {
            Some(t) => format_time(t),
            None => never_expires_as.to_string(),
        };
        map.insert("expiredDateTime".into(), expired.into());
        Value::Object(map)
    }
}

/// One object on the Exception List, as the emulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionObject {
    /// Its type.
    pub object_type: ObjectType,
    /// Its value (which may be a pattern: `*.example.com`, an IP range or CIDR).
    pub value: String,
    /// Its description (absent on the wire when empty).
    pub description: Option<String>,
    /// When it was last added or updated (whole seconds).
    pub last_modified: DateTime<Utc>,
}

impl ExceptionObject {
    /// The list item as the API returns it.
    pub fn to_wire(&self) -> Value {
        let mut map = Map::new();
        map.insert("type".into(), self.object_type.key().into());
        map.insert(self.object_type.key().into(), self.value.clone().into());
        if let Some(d) = self.description.as_deref().filter(|d| !d.is_empty()) {
            map.insert("description".into(), d.into());
        }
        map.insert(
            "lastModifiedDateTime".into(),
            format_time(self.last_modified).into(),
        );
        Value::Object(map)
    }
}

/// Why one item of a batch was refused: becomes `{"status":400,"body":{"error":…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// The per-item status.
    pub status: u16,
    /// The error code (`BadRequest`, `NotFound`).
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl ItemError {
    /// A `BadRequest` for a missing required field.
    pub fn missing(fields: &str) -> ItemError {
        ItemError {
            status: 400,
            code: "BadRequest",
            message: format!("Invalid request - Required fields not found: {fields}."),
        }
    }

    /// A `BadRequest` for a field whose value is wrong, with the reason.
    pub fn invalid(field: &str, why: &str) -> ItemError {
        ItemError {
            status: 400,
            code: "BadRequest",
            message: format!("Invalid request - Invalid field format: {field} ({why})."),
        }
    }

    /// The 207 entry for this error.
    pub fn to_entry(&self) -> Value {
        serde_json::json!({
            "status": self.status,
            "body": {"error": {"code": self.code, "message": self.message}},
        })
    }
}

/// What the per-item validation needs to know about the emulator's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ItemRules {
    /// Whether unknown keys on an add item are ignored rather than refused.
    pub ignore_unknown_fields: bool,
    /// What `daysToExpiration: 0` means.
    pub zero_days: ZeroDays,
    /// `scanAction` when an add omits it (the tenant's default setting).
    pub default_scan_action: ScanAction,
    /// `daysToExpiration` when an add omits it (the tenant's default setting; -1 = never).
    pub default_days: i64,
}

/// What `daysToExpiration: 0` means (not documented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ZeroDays {
    /// Refused with a per-item 400.
    Invalid,
    /// The object never expires, like -1.
    Never,
    /// As if the field were omitted: the tenant's default applies.
    Default,
}

/// A validated add item for the Suspicious Object List.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspiciousAdd {
    /// Its type.
    pub object_type: ObjectType,
    /// Its value.
    pub value: String,
    /// Its description.
    pub description: Option<String>,
    /// Its scan action (default applied).
    pub scan_action: ScanAction,
    /// Its risk level (default applied).
    pub risk_level: RiskLevel,
    /// Days until it expires; `None` never.
    pub days: Option<i64>,
}

/// A validated add item for the Exception List, or a validated delete item for either list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Its type.
    pub object_type: ObjectType,
    /// Its value.
    pub value: String,
    /// Its description (add only).
    pub description: Option<String>,
}

const TYPE_LIST: &str = "one of url, domain, ip, senderMailAddress, fileSha1, fileSha256";

/// Finds the single value key of an item: exactly one of the six type keys, holding a string.
fn value_of(item: &Map<String, Value>) -> Result<(ObjectType, String), ItemError> {
    let present: Vec<ObjectType> = ObjectType::ALL
        .into_iter()
        .filter(|t| item.contains_key(t.key()))
        .collect();
    let object_type = match present.as_slice() {
        [] => return Err(ItemError::missing(TYPE_LIST)),
        [one] => *one,
        many => {
            let names: Vec<&str> = many.iter().map(|t| t.key()).collect();
            return Err(ItemError::invalid(
                &names.join(", "),
                "an item carries exactly one object field",
            ));
        }
    };
    match item.get(object_type.key()) {
        Some(Value::String(s)) => Ok((object_type, s.clone())),
        _ => Err(ItemError::invalid(object_type.key(), "must be a string")),
    }
}

fn description_of(item: &Map<String, Value>) -> Result<Option<String>, ItemError> {
    match item.get("description") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_DESCRIPTION_CHARS => {
            Err(ItemError::invalid("description", "at most 1000 characters"))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ItemError::invalid("description", "must be a string")),
    }
}

fn check_unknown(
    item: &Map<String, Value>,
    allowed: &[&str],
    rules: &ItemRules,
) -> Result<(), ItemError> {
    if rules.ignore_unknown_fields {
        return Ok(());
    }
    for key in item.keys() {
        let known = allowed.contains(&key.as_str()) || ObjectType::from_key(key).is_some();
        if !known {
            return Err(ItemError::invalid(
                key,
                &format!(
                    "not a field of this request; allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn as_object(item: &Value) -> Result<&Map<String, Value>, ItemError> {
    item.as_object()
        .ok_or_else(|| ItemError::invalid("item", "each item must be a JSON object"))
}

/// Validates one item of `POST /v3.0/threatintel/suspiciousObjects`.
///
/// # Errors
/// The per-item 400 to answer when the item is refused.
pub fn parse_suspicious_add(item: &Value, rules: &ItemRules) -> Result<SuspiciousAdd, ItemError> {
    let item = as_object(item)?;
    check_unknown(
        item,
        &["description", "scanAction", "riskLevel", "daysToExpiration"],
        rules,
    )?;
    let (object_type, value) = value_of(item)?;
    validate_value(object_type, &value, false)?;
    let description = description_of(item)?;
    let scan_action = match item.get("scanAction") {
        None | Some(Value::Null) => rules.default_scan_action,
        Some(Value::String(s)) => ScanAction::from_key(s)
            .ok_or_else(|| ItemError::invalid("scanAction", "allowed: block, log"))?,
        Some(_) => return Err(ItemError::invalid("scanAction", "allowed: block, log")),
    };
    let risk_level = match item.get("riskLevel") {
        None | Some(Value::Null) => RiskLevel::High,
        Some(Value::String(s)) => RiskLevel::from_key(s)
            .ok_or_else(|| ItemError::invalid("riskLevel", "allowed: high, medium, low"))?,
        Some(_) => {
            return Err(ItemError::invalid(
                "riskLevel",
                "allowed: high, medium, low",
            ));
        }
    };
    let days_why = "an integer: -1 (never expires) or 1 to 36500";
    let days = match item.get("daysToExpiration") {
        None | Some(Value::Null) => rules.default_days,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => match rules.zero_days {
                ZeroDays::Invalid => {
                    return Err(ItemError::invalid("daysToExpiration", days_why));
                }
                ZeroDays::Never => -1,
                ZeroDays::Default => rules.default_days,
            },
            Some(d) if d == -1 || (1..=MAX_DAYS_TO_EXPIRATION).contains(&d) => d,
            _ => return Err(ItemError::invalid("daysToExpiration", days_why)),
        },
        Some(_) => return Err(ItemError::invalid("daysToExpiration", days_why)),
    };
    Ok(SuspiciousAdd {
        object_type,
        value,
        description,
        scan_action,
        risk_level,
        days: (days > 0).then_some(days),
    })
}

/// Validates one item of `POST /v3.0/threatintel/suspiciousObjectExceptions`.
///
/// # Errors
/// The per-item 400 to answer when the item is refused.
pub fn parse_exception_add(item: &Value, rules: &ItemRules) -> Result<ObjectRef, ItemError> {
    let item = as_object(item)?;
    check_unknown(item, &["description"], rules)?;
    let (object_type, value) = value_of(item)?;
    validate_value(object_type, &value, true)?;
    let description = description_of(item)?;
    Ok(ObjectRef {
        object_type,
        value,
        description,
    })
}

/// Validates one item of either `…/delete` endpoint. Keys other than the value key (such as the
/// `description` pytmv1 sends along) are ignored.
///
/// # Errors
/// The per-item 400 to answer when the item is refused.
pub fn parse_delete(item: &Value) -> Result<ObjectRef, ItemError> {
    let item = as_object(item)?;
    let (object_type, value) = value_of(item)?;
    if value.is_empty() || value.len() > object_type.max_len() {
        return Err(ItemError::invalid(
            object_type.key(),
            &format!("1 to {} characters", object_type.max_len()),
        ));
    }
    Ok(ObjectRef {
        object_type,
        value,
        description: None,
    })
}

/// Checks a value against its type's rules. `exception` allows the Exception List's extra
/// patterns (IP ranges and CIDR blocks).
///
/// # Errors
/// The per-item 400 naming the field and what it must look like.
pub fn validate_value(
    object_type: ObjectType,
    value: &str,
    exception: bool,
) -> Result<(), ItemError> {
    let field = object_type.key();
    let max = object_type.max_len();
    if value.is_empty() {
        return Err(ItemError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ItemError::invalid(
            field,
            &format!("at most {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ItemError::invalid(
            field,
            "must not contain spaces or control characters",
        ));
    }
    let ok = match object_type {
        ObjectType::Url => valid_url(value),
        ObjectType::Domain => valid_domain(value, true),
        ObjectType::Ip => value.parse::<IpAddr>().is_ok() || (exception && valid_ip_pattern(value)),
        ObjectType::SenderMailAddress => valid_mail(value),
        ObjectType::FileSha1 => value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()),
        ObjectType::FileSha256 => value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
    };
    if ok {
        Ok(())
    } else {
        Err(ItemError::invalid(field, describe(object_type, exception)))
    }
}

fn describe(object_type: ObjectType, exception: bool) -> &'static str {
    match object_type {
        ObjectType::Url => {
            "a URL; a wildcard * only after the scheme or at the end, such as http://*.example.com/*"
        }
        ObjectType::Domain => "a domain name, optionally starting with the wildcard *.",
        ObjectType::Ip if exception => "an IPv4 or IPv6 address, a range a-b, or a CIDR block",
        ObjectType::Ip => "a full IPv4 or IPv6 address",
        ObjectType::SenderMailAddress => "a fully qualified mail address such as user@example.com",
        ObjectType::FileSha1 => "exactly 40 hexadecimal characters",
        ObjectType::FileSha256 => "exactly 64 hexadecimal characters",
    }
}

fn valid_domain(value: &str, allow_wildcard: bool) -> bool {
    let rest = match value.strip_prefix("*.") {
        Some(rest) if allow_wildcard => rest,
        Some(_) => return false,
        None => value,
    };
    let labels: Vec<&str> = rest.split('.').collect();
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

fn valid_url(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let rest = if let Some(i) = lower.find("://") {
        let scheme = &lower[..i];
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return false;
        }
        &value[i + 3..]
    } else {
        value
    };
    // A leading wildcard right after the scheme and a trailing one are allowed; no other `*`.
    let rest = rest.strip_prefix('*').unwrap_or(rest);
    let rest = rest.strip_suffix('*').unwrap_or(rest);
    !rest.is_empty() && !rest.contains('*')
}

fn valid_mail(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && valid_domain(domain, false)
        }
        None => false,
    }
}

fn valid_ip_pattern(value: &str) -> bool {
    if let Some((ip, bits)) = value.split_once('/') {
        return match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        };
    }
    if let Some((a, b)) = value.split_once('-') {
        return match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => a <= b,
            (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => a <= b,
            _ => false,
        };
    }
    false
}
