//! Wire types and their validation: feed info, reports with their `iocs_v2`, watchlists.
//!
//! Request bodies are read from [`serde_json::Value`] by hand rather than through derived
//! `Deserialize`, so that every refusal names the exact field (`reports[3].iocs_v2[0].values`)
//! the way a client author needs to fix it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Who may see a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Only the owning organisation.
    Private,
    /// Every organisation (created by Carbon Black only).
    Public,
    /// Selected managed organisations (created by MSSPs only).
    Reserved,
}

impl Access {
    fn parse(text: &str) -> Option<Access> {
        match text {
            "private" => Some(Access::Private),
            "public" => Some(Access::Public),
            "reserved" => Some(Access::Reserved),
            _ => None,
        }
    }
}

/// A feed's metadata (`FeedInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedInfo {
    /// The feed's ID, assigned by the service.
    pub id: String,
    /// A human-friendly name (not unique).
    pub name: String,
    /// The owner: the organisation key of the creator unless the creator names one.
    pub owner: String,
    /// A URL the provider supplies (may be empty).
    pub provider_url: String,
    /// A human-friendly summary.
    pub summary: String,
    /// The feed's category.
    pub category: String,
    /// The feed's source label, when set.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_label: Option<String>,
    /// Who may see the feed.
    pub access: Access,
    /// Whether the feed's hits may raise alerts.
    pub alertable: bool,
}

/// How an IOC matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// The field equals one of the values.
    Equality,
    /// The field matches one of the regular expressions.
    Regex,
    /// The single value is a Carbon Black Cloud search query.
    Query,
}

/// One IOC of a report (`IOC_V2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IocV2 {
    /// The IOC's ID, unique within its report.
    pub id: String,
    /// How it matches.
    pub match_type: MatchType,
    /// The values (one query for `query`).
    pub values: Vec<String>,
    /// The event field matched (`process_sha256`, `netconn_ipv4`, …); required unless `query`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// A reference link.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub link: Option<String>,
}

/// A report: a titled group of IOCs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The report's ID, chosen by the client (unique within its feed).
    pub id: String,
    /// When the report was made, seconds since the epoch.
    pub timestamp: i64,
    /// A human-friendly title.
    pub title: String,
    /// A description (may be empty).
    pub description: String,
    /// 1 (lowest) to 10.
    pub severity: i64,
    /// A reference link.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub link: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The IOCs (legacy `iocs` are converted into these).
    pub iocs_v2: Vec<IocV2>,
    /// Visibility, as the client sent it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub visibility: Option<String>,
}

impl Report {
    /// The number of IOCs the per-report limit counts, as `counting` says.
    pub fn ioc_count(&self, counting: IocCounting) -> usize {
        match counting {
            IocCounting::Values => self.iocs_v2.iter().map(|i| i.values.len()).sum(),
            IocCounting::Entries => self.iocs_v2.len(),
        }
    }
}

/// What the per-report IOC limit counts (the limit's wording, "IOCs per report", is ambiguous).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IocCounting {
    /// Every value of every `iocs_v2` entry.
    Values,
    /// `iocs_v2` entries, whatever their number of values.
    Entries,
}

/// A refused request body, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(path: &str, why: &str) -> Invalid {
    Invalid(format!("{path}: {why}"))
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("{path}.{key}"), "must be a string")),
    }
}

fn required_string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    non_empty: bool,
) -> Result<&'a str, Invalid> {
    match string_field(object, key, path)? {
        None => Err(invalid(&format!("{path}.{key}"), "is required")),
        Some(s) if non_empty && s.trim().is_empty() => {
            Err(invalid(&format!("{path}.{key}"), "must not be empty"))
        }
        Some(s) => Ok(s),
    }
}

fn integer_field(object: &Map<String, Value>, key: &str, path: &str) -> Result<i64, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Err(invalid(&format!("{path}.{key}"), "is required")),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| invalid(&format!("{path}.{key}"), "must be an integer")),
        Some(_) => Err(invalid(&format!("{path}.{key}"), "must be an integer")),
    }
}

fn string_list(value: &Value, path: &str, non_empty: bool) -> Result<Vec<String>, Invalid> {
    let Value::Array(items) = value else {
        return Err(invalid(path, "must be a list of strings"));
    };
    if non_empty && items.is_empty() {
        return Err(invalid(path, "must hold at least one value"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if !non_empty || !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(invalid(&format!("{path}[{i}]"), "must not be empty")),
            _ => Err(invalid(&format!("{path}[{i}]"), "must be a string")),
        })
        .collect()
}

/// Reads a feed's metadata from a create body's `feedinfo` or a `PUT …/feedinfo` body.
///
/// `name` must be a non-empty string; `provider_url`, `summary` and `category` must be strings
/// (Netskope's plugin sends an empty `provider_url`, so empty strings pass). `access`, when given,
/// is `private`, `public` or `reserved`.
///
/// # Errors
/// An [`Invalid`] naming the field.
pub fn parse_feedinfo(value: &Value, path: &str) -> Result<FeedInfoInput, Invalid> {
    let Value::Object(object) = value else {
        return Err(invalid(path, "must be an object"));
    };
    let access = match string_field(object, "access", path)? {
        None => None,
        Some(text) => Some(Access::parse(text).ok_or_else(|| {
            invalid(
                &format!("{path}.access"),
                "must be private, public or reserved",
            )
        })?),
    };
    let alertable = match object.get("alertable") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid(&format!("{path}.alertable"), "must be a boolean")),
    };
    Ok(FeedInfoInput {
        name: required_string(object, "name", path, true)?.to_string(),
        owner: string_field(object, "owner", path)?.map(str::to_string),
        provider_url: required_string(object, "provider_url", path, false)?.to_string(),
        summary: required_string(object, "summary", path, false)?.to_string(),
        category: required_string(object, "category", path, false)?.to_string(),
        source_label: string_field(object, "source_label", path)?.map(str::to_string),
        access,
        alertable,
    })
}

/// Feed metadata as a client sent it (before the service assigns an ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfoInput {
    /// Name.
    pub name: String,
    /// Owner, when given.
    pub owner: Option<String>,
    /// Provider URL.
    pub provider_url: String,
    /// Summary.
    pub summary: String,
    /// Category.
    pub category: String,
    /// Source label.
    pub source_label: Option<String>,
    /// Access, when given.
    pub access: Option<Access>,
    /// Alertable, when given.
    pub alertable: Option<bool>,
}

/// The event field each legacy `iocs` key becomes when converted to `iocs_v2`.
const LEGACY_FIELDS: [(&str, &str); 4] = [
    ("md5", "process_hash"),
    ("ipv4", "netconn_ipv4"),
    ("ipv6", "netconn_ipv6"),
    ("dns", "netconn_domain"),
];

fn parse_ioc(value: &Value, path: &str) -> Result<IocV2, Invalid> {
    let Value::Object(object) = value else {
        return Err(invalid(path, "must be an object"));
    };
    let id = required_string(object, "id", path, true)?.to_string();
    let match_type = match required_string(object, "match_type", path, true)? {
        "equality" => MatchType::Equality,
        "regex" => MatchType::Regex,
        "query" => MatchType::Query,
        _ => {
            return Err(invalid(
                &format!("{path}.match_type"),
                "must be equality, regex or query",
            ));
        }
    };
    let values = match object.get("values") {
        None | Some(Value::Null) => return Err(invalid(&format!("{path}.values"), "is required")),
        Some(v) => string_list(v, &format!("{path}.values"), true)?,
    };
    let field = string_field(object, "field", path)?.map(str::to_string);
    match match_type {
        MatchType::Equality | MatchType::Regex => {
            if field.as_deref().is_none_or(|f| f.trim().is_empty()) {
                return Err(invalid(
                    &format!("{path}.field"),
                    "is required for equality and regex IOCs",
                ));
            }
        }
        MatchType::Query => {
            if values.len() != 1 {
                return Err(invalid(
                    &format!("{path}.values"),
                    "a query IOC holds exactly one value",
                ));
            }
        }
    }
    if match_type == MatchType::Regex {
        for (i, v) in values.iter().enumerate() {
            if let Err(e) = regex::RegexBuilder::new(v).size_limit(1 << 20).build() {
                return Err(invalid(
                    &format!("{path}.values[{i}]"),
                    &format!("is not a valid regular expression ({e})"),
                ));
            }
        }
    }
    Ok(IocV2 {
        id,
        match_type,
        values,
        field,
        link: string_field(object, "link", path)?.map(str::to_string),
    })
}

/// Converts a legacy `iocs` object (`md5`, `ipv4`, `ipv6`, `dns` lists and `query` objects) into
/// `iocs_v2` entries, skipping empty lists.
fn convert_legacy(value: &Value, report_id: &str, path: &str) -> Result<Vec<IocV2>, Invalid> {
    let object = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(o) => o,
        _ => return Err(invalid(path, "must be an object or null")),
    };
    let mut out = Vec::new();
    for (key, field) in LEGACY_FIELDS {
        let Some(list) = object.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let values = string_list(list, &format!("{path}.{key}"), false)?;
        if !values.is_empty() {
            out.push(IocV2 {
                id: format!("{report_id}-{key}"),
                match_type: MatchType::Equality,
                values,
                field: Some(field.to_string()),
                link: None,
            });
        }
    }
    if let Some(queries) = object.get("query").filter(|v| !v.is_null()) {
        let Value::Array(items) = queries else {
            return Err(invalid(&format!("{path}.query"), "must be a list"));
        };
        for (i, q) in items.iter().enumerate() {
            let q_path = format!("{path}.query[{i}]");
            let Value::Object(q) = q else {
                return Err(invalid(&q_path, "must be an object"));
            };
            let search = required_string(q, "search_query", &q_path, true)?;
            out.push(IocV2 {
                id: format!("{report_id}-query-{i}"),
                match_type: MatchType::Query,
                values: vec![search.to_string()],
                field: None,
                link: None,
            });
        }
    }
    Ok(out)
}

/// Reads and validates one report.
///
/// `id` must be a non-empty string unless `assign_id` supplies one; `timestamp` an integer > 0;
/// `title` a non-empty string; `description` a string (empty allowed: Netskope's plugin sends
/// `""`); `severity` an integer from 1 to 10; `link`, `visibility` strings and `tags` a list of
/// strings when present; at least one IOC once legacy `iocs` are converted. Each IOC needs a
/// non-empty `id` (unique in the report), a known `match_type`, a non-empty list of non-empty
/// string `values`, a `field` unless it is a query, exactly one value if it is, and values that
/// compile if it is a regex.
///
/// # Errors
/// An [`Invalid`] naming the field.
pub fn parse_report(
    value: &Value,
    path: &str,
    assign_id: Option<&dyn Fn() -> String>,
) -> Result<Report, Invalid> {
    let Value::Object(object) = value else {
        return Err(invalid(path, "must be an object"));
    };
    let id = match (string_field(object, "id", path)?, assign_id) {
        (Some(id), _) if !id.trim().is_empty() => id.to_string(),
        (_, Some(make)) => make(),
        (Some(_), None) => return Err(invalid(&format!("{path}.id"), "must not be empty")),
        (None, None) => return Err(invalid(&format!("{path}.id"), "is required")),
    };
    let timestamp = integer_field(object, "timestamp", path)?;
    if timestamp <= 0 {
        return Err(invalid(
            &format!("{path}.timestamp"),
            "must be a positive number of seconds since the epoch",
        ));
    }
    let title = required_string(object, "title", path, true)?.to_string();
    let description = required_string(object, "description", path, false)?.to_string();
    let severity = integer_field(object, "severity", path)?;
    if !(1..=10).contains(&severity) {
        return Err(invalid(
            &format!("{path}.severity"),
            "must be an integer from 1 to 10",
        ));
    }
    let tags = match object.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, &format!("{path}.tags"), false)?,
    };
    let mut iocs_v2 = match object.get("iocs_v2") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_ioc(v, &format!("{path}.iocs_v2[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(invalid(&format!("{path}.iocs_v2"), "must be a list")),
    };
    if let Some(legacy) = object.get("iocs") {
        iocs_v2.extend(convert_legacy(legacy, &id, &format!("{path}.iocs"))?);
    }
    if iocs_v2.is_empty() {
        return Err(invalid(
            &format!("{path}.iocs_v2"),
            "a report must hold at least one IOC",
        ));
    }
    let mut seen = HashSet::new();
    for (i, ioc) in iocs_v2.iter().enumerate() {
        if !seen.insert(ioc.id.as_str()) {
            return Err(invalid(
                &format!("{path}.iocs_v2[{i}].id"),
                &format!("duplicate IOC id {:?} in the report", ioc.id),
            ));
        }
    }
    Ok(Report {
        id,
        timestamp,
        title,
        description,
        severity,
        link: string_field(object, "link", path)?.map(str::to_string),
        tags,
        iocs_v2,
        visibility: string_field(object, "visibility", path)?.map(str::to_string),
    })
}

/// A watchlist: reports (or a feed, through its classifier) matched against endpoint events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watchlist {
    /// The watchlist's ID, assigned by the service.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Whether hits tag events.
    pub tags_enabled: bool,
    /// Whether hits raise alerts.
    pub alerts_enabled: bool,
    /// When it was created, seconds since the epoch.
    pub create_timestamp: i64,
    /// When it last changed, seconds since the epoch.
    pub last_update_timestamp: i64,
    /// The watchlist reports it holds directly.
    pub report_ids: Vec<String>,
    /// The feed it subscribes to: `{"key": "feed_id", "value": FEED_ID}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub classifier: Option<Classifier>,
}

/// A watchlist's subscription to a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classifier {
    /// Always `feed_id`.
    pub key: String,
    /// The feed's ID.
    pub value: String,
}

/// A watchlist as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistInput {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Tags enabled (default true).
    pub tags_enabled: bool,
    /// Alerts enabled (default false).
    pub alerts_enabled: bool,
    /// Report IDs.
    pub report_ids: Vec<String>,
    /// Feed subscription.
    pub classifier: Option<Classifier>,
}

/// Reads a watchlist body: `name` (non-empty), optional `description`, `tags_enabled`,
/// `alerts_enabled`, `report_ids` and `classifier` (`key` must be `feed_id`).
///
/// # Errors
/// An [`Invalid`] naming the field.
pub fn parse_watchlist(value: &Value) -> Result<WatchlistInput, Invalid> {
    let path = "watchlist";
    let Value::Object(object) = value else {
        return Err(invalid(path, "must be an object"));
    };
    let flag = |key: &str, default: bool| match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(&format!("{path}.{key}"), "must be a boolean")),
    };
    let classifier = match object.get("classifier") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            let c_path = format!("{path}.classifier");
            let key = required_string(c, "key", &c_path, true)?;
            if key != "feed_id" {
                return Err(invalid(&format!("{c_path}.key"), "must be feed_id"));
            }
            Some(Classifier {
                key: key.to_string(),
                value: required_string(c, "value", &c_path, true)?.to_string(),
            })
        }
        Some(_) => return Err(invalid(&format!("{path}.classifier"), "must be an object")),
    };
    Ok(WatchlistInput {
        name: required_string(object, "name", path, true)?.to_string(),
        description: string_field(object, "description", path)?
            .unwrap_or_default()
            .to_string(),
        tags_enabled: flag("tags_enabled", true)?,
        alerts_enabled: flag("alerts_enabled", false)?,
        report_ids: match object.get("report_ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => string_list(v, &format!("{path}.report_ids"), false)?,
        },
        classifier,
    })
}

/// A feed with its reports, as `GET /feeds/{id}` answers it.
pub fn feed_json(info: &FeedInfo, reports: &[Report]) -> Value {
    json!({"feedinfo": info, "reports": reports})
}
