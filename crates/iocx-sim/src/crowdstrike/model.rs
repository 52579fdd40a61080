//! The wire model of Custom IOC Management: indicator types and their value rules, actions,
//! severities, platforms, the stored indicator and its JSON form, the per-item validation of
//! create and update bodies, and the endpoint-detection alerts offered for pulling.

use std::net::{Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::fql::{self, FieldValue, Subject};

/// Formats a timestamp the way the API does: RFC 3339 in UTC with nanoseconds
/// (`2023-12-20T15:23:16.135988021Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Longest `source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 256;
/// Longest `description`, in characters (not documented; the emulator's choice).
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Most tags on one indicator (not documented; the emulator's choice).
pub const MAX_TAGS: usize = 50;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $key:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in the order the API lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn key(self) -> &'static str {
                match self {
                    $($name::$variant => $key),+
                }
            }

            /// The value with this wire name (ASCII case ignored).
            pub fn from_key(key: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.key().eq_ignore_ascii_case(key))
            }

            /// The wire names joined by ", ", for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.key()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

wire_enum!(
    /// `type`: what the indicator's value is.
    IocType {
        /// `sha256`.
        Sha256 => "sha256",
        /// `md5`.
        Md5 => "md5",
        /// `domain`.
        Domain => "domain",
        /// `ipv4`.
        Ipv4 => "ipv4",
        /// `ipv6`.
        Ipv6 => "ipv6",
    }
);

wire_enum!(
    /// `action`: what sensors do on a match.
    Action {
        /// `no_action`.
        NoAction => "no_action",
        /// `allow` (hashes only).
        Allow => "allow",
        /// `prevent_no_ui` (hashes only).
        PreventNoUi => "prevent_no_ui",
        /// `detect`.
        Detect => "detect",
        /// `prevent` (hashes only).
        Prevent => "prevent",
    }
);

wire_enum!(
    /// `mobile_action`.
    MobileAction {
        /// `no_action`.
        NoAction => "no_action",
        /// `allow`.
        Allow => "allow",
        /// `detect`.
        Detect => "detect",
        /// `prevent`.
        Prevent => "prevent",
    }
);

wire_enum!(
    /// `severity`.
    Severity {
        /// `informational`.
        Informational => "informational",
        /// `low`.
        Low => "low",
        /// `medium`.
        Medium => "medium",
        /// `high`.
        High => "high",
        /// `critical`.
        Critical => "critical",
    }
);

wire_enum!(
    /// One of `platforms`.
    Platform {
        /// `windows`.
        Windows => "windows",
        /// `mac`.
        Mac => "mac",
        /// `linux`.
        Linux => "linux",
        /// `ios`.
        Ios => "ios",
        /// `android`.
        Android => "android",
    }
);

impl IocType {
    /// Whether this is a file hash (the only types `allow`, `prevent` and `prevent_no_ui` apply
    /// to).
    pub fn is_hash(self) -> bool {
        matches!(self, IocType::Sha256 | IocType::Md5)
    }

    /// Whether values of this type compare without regard to ASCII case.
    pub fn case_insensitive(self) -> bool {
        !matches!(self, IocType::Ipv4)
    }
}

impl Action {
    /// Whether the action applies to hashes only.
    pub fn hash_only(self) -> bool {
        matches!(self, Action::Allow | Action::Prevent | Action::PreventNoUi)
    }

    /// Whether a severity must come with it.
    pub fn needs_severity(self) -> bool {
        matches!(self, Action::Detect | Action::Prevent | Action::PreventNoUi)
    }
}

impl Severity {
    /// `severity_number`, the sort key of `severity` (empty sorts first).
    pub fn number(s: Option<Severity>) -> i64 {
        match s {
            None => 0,
            Some(Severity::Informational) => 1,
            Some(Severity::Low) => 2,
            Some(Severity::Medium) => 3,
            Some(Severity::High) => 4,
            Some(Severity::Critical) => 5,
        }
    }
}

/// One custom IOC, as the emulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// 64 hex characters.
    pub id: String,
    /// Its type.
    pub ioc_type: IocType,
    /// Its value (lower-cased for every type but IPv4).
    pub value: String,
    /// The action as set (the wire shows `no_action` once expired).
    pub action: Action,
    /// `mobile_action`, when set.
    pub mobile_action: Option<MobileAction>,
    /// `severity`, when set (the wire shows `""` when unset).
    pub severity: Option<Severity>,
    /// `source`.
    pub source: String,
    /// `description`.
    pub description: String,
    /// `platforms`.
    pub platforms: Vec<Platform>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `host_groups`.
    pub host_groups: Vec<String>,
    /// `applied_globally`.
    pub applied_globally: bool,
    /// `expiration`, when set.
    pub expiration: Option<DateTime<Utc>>,
    /// `metadata.filename`, when set.
    pub filename: Option<String>,
    /// `created_on`.
    pub created_on: DateTime<Utc>,
    /// `created_by` (the API client id).
    pub created_by: String,
    /// `modified_on`.
    pub modified_on: DateTime<Utc>,
    /// `modified_by`.
    pub modified_by: String,
}

impl Indicator {
    /// Whether the indicator has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration.is_some_and(|e| e <= now)
    }

    /// The action in force at `now`: `no_action` once expired.
    pub fn effective_action(&self, now: DateTime<Utc>) -> Action {
        if self.expired(now) {
            Action::NoAction
        } else {
            self.action
        }
    }

    /// The object as the API returns it, evaluated at `now`.
    pub fn to_wire(&self, now: DateTime<Utc>) -> Value {
        let mut metadata = Map::new();
        if let Some(f) = &self.filename {
            metadata.insert("filename".into(), f.clone().into());
        }
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone().into());
        map.insert("type".into(), self.ioc_type.key().into());
        map.insert("value".into(), self.value.clone().into());
        map.insert("source".into(), self.source.clone().into());
        map.insert("action".into(), self.effective_action(now).key().into());
        if let Some(m) = self.mobile_action {
            map.insert("mobile_action".into(), m.key().into());
        }
        map.insert(
            "severity".into(),
            self.severity.map_or("", Severity::key).into(),
        );
        map.insert("description".into(), self.description.clone().into());
        map.insert("metadata".into(), Value::Object(metadata));
        map.insert(
            "platforms".into(),
            self.platforms
                .iter()
                .map(|p| p.key())
                .collect::<Vec<_>>()
                .into(),
        );
        map.insert("tags".into(), self.tags.clone().into());
        if let Some(e) = self.expiration {
            map.insert("expiration".into(), format_time(e).into());
        }
        map.insert("expired".into(), self.expired(now).into());
        map.insert("deleted".into(), false.into());
        map.insert("applied_globally".into(), self.applied_globally.into());
        map.insert("from_parent".into(), false.into());
        if !self.applied_globally {
            map.insert("host_groups".into(), self.host_groups.clone().into());
        }
        map.insert("created_on".into(), format_time(self.created_on).into());
        map.insert("created_by".into(), self.created_by.clone().into());
        map.insert("modified_on".into(), format_time(self.modified_on).into());
        map.insert("modified_by".into(), self.modified_by.clone().into());
        Value::Object(map)
    }
}

/// The fields FQL may name on indicators.
pub const INDICATOR_FIELDS: &[&str] = &[
    "id",
    "type",
    "value",
    "action",
    "mobile_action",
    "severity",
    "source",
    "description",
    "platforms",
    "tags",
    "host_groups",
    "applied_globally",
    "expiration",
    "expired",
    "deleted",
    "from_parent",
    "created_on",
    "created_by",
    "modified_on",
    "modified_by",
    "metadata.filename",
];

/// An indicator seen by the filter at a given time.
pub struct IndicatorAt<'a> {
    /// The indicator.
    pub ioc: &'a Indicator,
    /// The time expiry is judged at.
    pub now: DateTime<Utc>,
}

impl Subject for IndicatorAt<'_> {
    fn field(&self, field: &str) -> FieldValue {
        let i = self.ioc;
        let text = |s: &str| FieldValue::Str(s.to_string());
        match field {
            "id" => text(&i.id),
            "type" => text(i.ioc_type.key()),
            "value" => text(&i.value),
            "action" => text(i.effective_action(self.now).key()),
            "mobile_action" => i.mobile_action.map_or(FieldValue::Null, |m| text(m.key())),
            "severity" => text(i.severity.map_or("", Severity::key)),
            "source" => text(&i.source),
            "description" => text(&i.description),
            "platforms" => FieldValue::Strs(i.platforms.iter().map(|p| p.key().into()).collect()),
            "tags" => FieldValue::Strs(i.tags.clone()),
            "host_groups" => FieldValue::Strs(i.host_groups.clone()),
            "applied_globally" => FieldValue::Bool(i.applied_globally),
            "expiration" => i.expiration.map_or(FieldValue::Null, FieldValue::Time),
            "expired" => FieldValue::Bool(i.expired(self.now)),
            "deleted" | "from_parent" => FieldValue::Bool(false),
            "created_on" => FieldValue::Time(i.created_on),
            "created_by" => text(&i.created_by),
            "modified_on" => FieldValue::Time(i.modified_on),
            "modified_by" => text(&i.modified_by),
            "metadata.filename" => i.filename.as_deref().map_or(FieldValue::Null, text),
            _ => FieldValue::Null,
        }
    }
}

/// Why one item of a create or update was refused. Becomes an entry of `errors` and a resource
/// with `message_type: "error"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// The HTTP-like code of the item (400, 404, 409).
    pub code: u16,
    /// The field at fault (`value`, `action`, …).
    pub field: &'static str,
    /// The message.
    pub message: String,
}

impl ItemError {
    /// A 400 on `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> ItemError {
        ItemError {
            code: 400,
            field,
            message: message.into(),
        }
    }

    /// The duplicate refusal: `type` and `value` already held.
    pub fn duplicate(t: IocType, value: &str) -> ItemError {
        ItemError {
            code: 409,
            field: "value",
            message: format!(
                "Duplicate type: '{}' and value: '{value}' combination.",
                t.key()
            ),
        }
    }

    /// The `errors` entry.
    pub fn to_error(&self, id: Option<&str>) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(id) = id {
            e["id"] = id.into();
        }
        e
    }

    /// The resource entry: what was submitted, with the error attached.
    pub fn to_resource(&self, submitted: &Value) -> Value {
        let mut map = submitted.as_object().cloned().unwrap_or_default();
        map.entry("id").or_insert_with(|| "".into());
        map.insert("message_type".into(), "error".into());
        map.insert("field_name".into(), self.field.into());
        map.insert("message".into(), self.message.clone().into());
        Value::Object(map)
    }
}

/// What item validation needs to know about the emulator's settings.
#[derive(Debug, Clone, Copy)]
pub struct ItemRules {
    /// Whether `detect`/`prevent` need no severity.
    pub severity_optional: bool,
    /// Whether upper-case hex and IPv6 values are refused rather than lower-cased.
    pub reject_uppercase: bool,
}

/// The fields of a create or update item after validation. On an update, `None` leaves a
/// field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields {
    /// `type`.
    pub ioc_type: Option<IocType>,
    /// `value`, normalised.
    pub value: Option<String>,
    /// `action`.
    pub action: Option<Action>,
    /// `mobile_action`.
    pub mobile_action: Option<MobileAction>,
    /// `severity` (`Some(None)` clears it).
    pub severity: Option<Option<Severity>>,
    /// `source`.
    pub source: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `platforms`.
    pub platforms: Option<Vec<Platform>>,
    /// `tags`.
    pub tags: Option<Vec<String>>,
    /// `host_groups`.
    pub host_groups: Option<Vec<String>>,
    /// `applied_globally`.
    pub applied_globally: Option<bool>,
    /// `expiration` (`Some(None)` clears it).
    pub expiration: Option<Option<DateTime<Utc>>>,
    /// `metadata.filename`.
    pub filename: Option<String>,
}

fn string_of(item: &Map<String, Value>, key: &'static str) -> Result<Option<String>, ItemError> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ItemError::invalid(key, format!("{key} must be a string"))),
    }
}

fn strings_of(
    item: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<Vec<String>>, ItemError> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ItemError::invalid(
                    key,
                    format!("{key} must be a list of strings"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ItemError::invalid(
            key,
            format!("{key} must be a list of strings"),
        )),
    }
}

fn enum_of<T>(
    item: &Map<String, Value>,
    key: &'static str,
    parse: fn(&str) -> Option<T>,
    names: fn() -> String,
) -> Result<Option<T>, ItemError> {
    match string_of(item, key)? {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).ok_or_else(|| {
            ItemError::invalid(
                key,
                format!("Invalid {key} '{s}'. Valid values: {}.", names()),
            )
        }),
    }
}

/// Reads every field an item may carry, checking each on its own.
fn read_fields(item: &Map<String, Value>, now: DateTime<Utc>) -> Result<Fields, ItemError> {
    let mut f = Fields {
        ioc_type: enum_of(item, "type", IocType::from_key, IocType::names)?,
        value: string_of(item, "value")?,
        action: enum_of(item, "action", Action::from_key, Action::names)?,
        mobile_action: enum_of(
            item,
            "mobile_action",
            MobileAction::from_key,
            MobileAction::names,
        )?,
        ..Fields::default()
    };
    if item.contains_key("severity") {
        f.severity = Some(match string_of(item, "severity")? {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => Some(Severity::from_key(&s).ok_or_else(|| {
                ItemError::invalid(
                    "severity",
                    format!(
                        "Invalid severity '{s}'. Valid values: {}.",
                        Severity::names()
                    ),
                )
            })?),
        });
    }
    if let Some(source) = string_of(item, "source")? {
        let n = source.chars().count();
        if n == 0 || n > MAX_SOURCE_CHARS {
            return Err(ItemError::invalid(
                "source",
                format!("source must be 1 to {MAX_SOURCE_CHARS} characters long"),
            ));
        }
        f.source = Some(source);
    }
    if let Some(d) = string_of(item, "description")? {
        if d.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(ItemError::invalid(
                "description",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters long"),
            ));
        }
        f.description = Some(d);
    }
    if let Some(list) = strings_of(item, "platforms")? {
        let mut platforms = Vec::new();
        for p in list {
            let platform = Platform::from_key(p.trim()).ok_or_else(|| {
                ItemError::invalid(
                    "platforms",
                    format!(
                        "Invalid platform '{p}'. Valid values: {}.",
                        Platform::names()
                    ),
                )
            })?;
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
        f.platforms = Some(platforms);
    }
    if let Some(tags) = strings_of(item, "tags")? {
        if tags.len() > MAX_TAGS || tags.iter().any(|t| t.trim().is_empty() || t.len() > 256) {
            return Err(ItemError::invalid(
                "tags",
                format!(
                    "tags must hold at most {MAX_TAGS} non-empty tags of at most 256 characters"
                ),
            ));
        }
        f.tags = Some(tags);
    }
    if let Some(groups) = strings_of(item, "host_groups")? {
        if groups.iter().any(|g| g.trim().is_empty() || g.len() > 64) {
            return Err(ItemError::invalid("host_groups", "Invalid host group id"));
        }
        f.host_groups = Some(groups);
    }
    match item.get("applied_globally") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => f.applied_globally = Some(*b),
        Some(_) => {
            return Err(ItemError::invalid(
                "applied_globally",
                "applied_globally must be a boolean",
            ));
        }
    }
    if item.contains_key("expiration") {
        f.expiration = Some(match string_of(item, "expiration")? {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => {
                let t = DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ItemError::invalid(
                            "expiration",
                            format!(
                                "Invalid expiration '{s}'; expected a date-time such as 2030-01-01T00:00:00Z"
                            ),
                        )
                    })?;
                if t <= now {
                    return Err(ItemError::invalid(
                        "expiration",
                        "Expiration must be a date in the future",
                    ));
                }
                Some(t)
            }
        });
    }
    match item.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => match m.get("filename") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => f.filename = Some(s.clone()),
            Some(_) => {
                return Err(ItemError::invalid(
                    "metadata",
                    "metadata.filename must be a string",
                ));
            }
        },
        Some(_) => return Err(ItemError::invalid("metadata", "metadata must be an object")),
    }
    Ok(f)
}

/// Checks the rules that tie fields together, on the indicator as it would be after the change.
fn check_combination(
    ioc_type: IocType,
    action: Action,
    severity: Option<Severity>,
    platforms: &[Platform],
    applied_globally: bool,
    host_groups: &[String],
    rules: &ItemRules,
) -> Result<(), ItemError> {
    if action.hash_only() && !ioc_type.is_hash() {
        return Err(ItemError::invalid(
            "action",
            format!(
                "Action '{}' is not supported for type '{}'; it applies to sha256 and md5 only",
                action.key(),
                ioc_type.key()
            ),
        ));
    }
    if action.needs_severity() && severity.is_none() && !rules.severity_optional {
        return Err(ItemError::invalid(
            "severity",
            format!("severity is required for action '{}'", action.key()),
        ));
    }
    if platforms.is_empty() {
        return Err(ItemError::invalid(
            "platforms",
            format!("platforms is required; valid values: {}", Platform::names()),
        ));
    }
    if applied_globally && !host_groups.is_empty() {
        return Err(ItemError::invalid(
            "host_groups",
            "host_groups cannot be set when applied_globally is true",
        ));
    }
    if !applied_globally && host_groups.is_empty() {
        return Err(ItemError::invalid(
            "applied_globally",
            "Either applied_globally must be true or host_groups must be set",
        ));
    }
    Ok(())
}

/// Checks and normalises `value` for `t`.
///
/// # Errors
/// The per-item refusal naming what the value must look like.
pub fn normalize_value(t: IocType, value: &str, rules: &ItemRules) -> Result<String, ItemError> {
    let v = value.trim();
    let bad = |what: &str| {
        ItemError::invalid(
            "value",
            format!("Invalid value '{value}' for type {}: {what}", t.key()),
        )
    };
    if v.is_empty() {
        return Err(ItemError::invalid("value", "value is required"));
    }
    let hex = |n: usize| v.len() == n && v.bytes().all(|b| b.is_ascii_hexdigit());
    let has_upper = v.bytes().any(|b| b.is_ascii_uppercase());
    match t {
        IocType::Sha256 if !hex(64) => return Err(bad("expected 64 hexadecimal characters")),
        IocType::Md5 if !hex(32) => return Err(bad("expected 32 hexadecimal characters")),
        IocType::Ipv4 if v.parse::<Ipv4Addr>().is_err() => {
            return Err(bad("expected an IPv4 address such as 198.51.100.7"));
        }
        IocType::Ipv6 if v.parse::<Ipv6Addr>().is_err() => {
            return Err(bad("expected an IPv6 address such as 2001:db8::1"));
        }
        IocType::Domain if !valid_domain(v) => {
            return Err(bad(
                "expected a domain name such as example.com, without scheme, path or wildcard",
            ));
        }
        _ => {}
    }
    if has_upper
        && rules.reject_uppercase
        && matches!(t, IocType::Sha256 | IocType::Md5 | IocType::Ipv6)
    {
        return Err(bad("must be lower case"));
    }
    Ok(if t.case_insensitive() {
        v.to_ascii_lowercase()
    } else {
        v.to_string()
    })
}

fn valid_domain(v: &str) -> bool {
    if v.len() > 253 || v.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
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

/// A validated create item.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIndicator {
    /// Type.
    pub ioc_type: IocType,
    /// Normalised value.
    pub value: String,
    /// Every other field, defaults applied.
    pub fields: Fields,
}

/// Validates one item of `POST /iocs/entities/indicators/v1`.
///
/// # Errors
/// The per-item refusal.
pub fn parse_create(
    item: &Value,
    rules: &ItemRules,
    now: DateTime<Utc>,
) -> Result<NewIndicator, ItemError> {
    let Some(map) = item.as_object() else {
        return Err(ItemError::invalid(
            "indicators",
            "each indicator must be a JSON object",
        ));
    };
    let fields = read_fields(map, now)?;
    let ioc_type = fields.ioc_type.ok_or_else(|| {
        ItemError::invalid(
            "type",
            format!("type is required; valid values: {}", IocType::names()),
        )
    })?;
    let raw = fields
        .value
        .clone()
        .ok_or_else(|| ItemError::invalid("value", "value is required"))?;
    let value = normalize_value(ioc_type, &raw, rules)?;
    let action = fields.action.ok_or_else(|| {
        ItemError::invalid(
            "action",
            format!("action is required; valid values: {}", Action::names()),
        )
    })?;
    check_combination(
        ioc_type,
        action,
        fields.severity.flatten(),
        fields.platforms.as_deref().unwrap_or_default(),
        fields.applied_globally.unwrap_or(false),
        fields.host_groups.as_deref().unwrap_or_default(),
        rules,
    )?;
    Ok(NewIndicator {
        ioc_type,
        value,
        fields,
    })
}

/// Validates the fields of one update (an `indicators[]` item without its `id`, or the
/// `bulk_update` object without its `filter`).
///
/// # Errors
/// The per-item refusal.
pub fn parse_update(item: &Map<String, Value>, now: DateTime<Utc>) -> Result<Fields, ItemError> {
    read_fields(item, now)
}

/// Applies validated update fields to `ioc`, checking the result as a whole.
///
/// # Errors
/// When the changed indicator breaks a rule (such as `prevent` on a domain), or the update
/// tries to change its type or value.
pub fn apply_update(
    ioc: &Indicator,
    f: &Fields,
    rules: &ItemRules,
    now: DateTime<Utc>,
    by: &str,
) -> Result<Indicator, ItemError> {
    if let Some(t) = f.ioc_type
        && t != ioc.ioc_type
    {
        return Err(ItemError::invalid(
            "type",
            "type cannot be changed; delete and create the indicator",
        ));
    }
    if let Some(v) = &f.value
        && normalize_value(ioc.ioc_type, v, rules)? != ioc.value
    {
        return Err(ItemError::invalid(
            "value",
            "value cannot be changed; delete and create the indicator",
        ));
    }
    let mut next = ioc.clone();
    if let Some(a) = f.action {
        next.action = a;
    }
    if let Some(m) = f.mobile_action {
        next.mobile_action = Some(m);
    }
    if let Some(s) = f.severity {
        next.severity = s;
    }
    if let Some(s) = &f.source {
        next.source = s.clone();
    }
    if let Some(d) = &f.description {
        next.description = d.clone();
    }
    if let Some(p) = &f.platforms {
        next.platforms = p.clone();
    }
    if let Some(t) = &f.tags {
        next.tags = t.clone();
    }
    match (f.applied_globally, &f.host_groups) {
        (Some(true), None) => {
            next.applied_globally = true;
            next.host_groups.clear();
        }
        (Some(g), Some(h)) => {
            next.applied_globally = g;
            next.host_groups = h.clone();
        }
        (None, Some(h)) => {
            next.host_groups = h.clone();
            next.applied_globally = h.is_empty() && next.applied_globally;
        }
        (Some(false), None) => next.applied_globally = false,
        (None, None) => {}
    }
    if let Some(e) = f.expiration {
        next.expiration = e;
    }
    if let Some(n) = &f.filename {
        next.filename = Some(n.clone());
    }
    check_combination(
        next.ioc_type,
        next.action,
        next.severity,
        &next.platforms,
        next.applied_globally,
        &next.host_groups,
        rules,
    )?;
    next.modified_on = now;
    next.modified_by = by.to_string();
    Ok(next)
}

/// One endpoint-detection alert (`/alerts/combined/alerts/v1`), reduced to what a pull of its
/// indicators reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `composite_id`.
    pub composite_id: String,
    /// `ioc_type` (`hash_sha256`, `sha256`, `hash_md5`, `md5`, `domain`, `ipv4`, `ipv6`).
    pub ioc_type: String,
    /// `ioc_value`.
    pub ioc_value: String,
    /// `ioc_source` (`library_load`, `file_read`, …, or the custom IOC's source).
    pub ioc_source: String,
    /// `ioc_description`.
    pub ioc_description: String,
    /// `description`.
    pub description: String,
    /// Other indicators of the same detection: `(ioc_type, ioc_value, ioc_description)`.
    pub ioc_context: Vec<(String, String, String)>,
    /// `severity` (1–100).
    pub severity: i64,
    /// `confidence` (1–100).
    pub confidence: i64,
    /// `pattern_disposition`.
    pub pattern_disposition: i64,
    /// `pattern_disposition_description`.
    pub pattern_disposition_description: String,
    /// `status`.
    pub status: String,
    /// `device.hostname`.
    pub hostname: String,
    /// `device.device_id`.
    pub device_id: String,
    /// `filename`.
    pub filename: String,
    /// `created_timestamp`.
    pub created: DateTime<Utc>,
    /// `updated_timestamp`.
    pub updated: DateTime<Utc>,
}

/// The fields FQL may name on alerts.
pub const ALERT_FIELDS: &[&str] = &[
    "composite_id",
    "ioc_type",
    "ioc_value",
    "ioc_source",
    "severity",
    "confidence",
    "pattern_disposition",
    "status",
    "created_timestamp",
    "updated_timestamp",
    "timestamp",
    "device.hostname",
    "device.device_id",
    "filename",
    "product",
    "type",
];

impl Subject for Alert {
    fn field(&self, field: &str) -> FieldValue {
        let text = |s: &str| FieldValue::Str(s.to_string());
        match field {
            "composite_id" => text(&self.composite_id),
            "ioc_type" => text(&self.ioc_type),
            "ioc_value" => text(&self.ioc_value),
            "ioc_source" => text(&self.ioc_source),
            "severity" => FieldValue::Int(self.severity),
            "confidence" => FieldValue::Int(self.confidence),
            "pattern_disposition" => FieldValue::Int(self.pattern_disposition),
            "status" => text(&self.status),
            "created_timestamp" | "timestamp" => FieldValue::Time(self.created),
            "updated_timestamp" => FieldValue::Time(self.updated),
            "device.hostname" => text(&self.hostname),
            "device.device_id" => text(&self.device_id),
            "filename" => text(&self.filename),
            "product" => text("epp"),
            "type" => text("ldt"),
            _ => FieldValue::Null,
        }
    }
}

impl Alert {
    /// The alert as the API returns it.
    pub fn to_wire(&self) -> Value {
        let hash = |t: &str| {
            let mut found = (self.ioc_type.ends_with(t)).then(|| self.ioc_value.clone());
            for (ct, cv, _) in &self.ioc_context {
                if found.is_none() && ct.ends_with(t) {
                    found = Some(cv.clone());
                }
            }
            found.unwrap_or_default()
        };
        json!({
            "composite_id": self.composite_id,
            "id": self.composite_id.rsplit(':').next().unwrap_or_default(),
            "type": "ldt",
            "product": "epp",
            "platform": "Windows",
            "status": self.status,
            "severity": self.severity,
            "severity_name": severity_name(self.severity),
            "confidence": self.confidence,
            "description": self.description,
            "display_name": "CustomIOC",
            "ioc_type": self.ioc_type,
            "ioc_value": self.ioc_value,
            "ioc_source": self.ioc_source,
            "ioc_description": self.ioc_description,
            "ioc_context": self.ioc_context.iter().map(|(t, v, d)| json!({
                "ioc_type": t, "ioc_value": v, "ioc_description": d,
            })).collect::<Vec<_>>(),
            "pattern_disposition": self.pattern_disposition,
            "pattern_disposition_description": self.pattern_disposition_description,
            "filename": self.filename,
            "sha256": hash("sha256"),
            "md5": hash("md5"),
            "device": {"device_id": self.device_id, "hostname": self.hostname},
            "created_timestamp": format_time(self.created),
            "timestamp": format_time(self.created),
            "updated_timestamp": format_time(self.updated),
        })
    }
}

fn severity_name(s: i64) -> &'static str {
    match s {
        90.. => "Critical",
        70..=89 => "High",
        40..=69 => "Medium",
        10..=39 => "Low",
        _ => "Informational",
    }
}

/// Parses a time the way filters do (for the admin route that adds alerts).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    fql::parse_time(text)
}
