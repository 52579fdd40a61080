//! Alerts v7: realistic generated alerts and `POST …/alerts/_search` (criteria, exclusions, a
//! small Lucene subset in `query`, `time_range`, `sort`, and `start`/`rows` paging under a
//! result window).

use std::cmp::Ordering;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone as _, Utc};
use rand::Rng as _;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

/// One stored alert: its wire form plus the keys it is ordered and filtered by.
#[derive(Debug, Clone)]
pub struct Alert {
    /// `id`.
    pub id: String,
    /// `backend_timestamp` in milliseconds since the epoch.
    pub backend_ms: i64,
    /// The alert as the API answers it.
    pub fields: Map<String, Value>,
}

/// Fields holding timestamps that criteria may range over (`{"start","end"}` or `{"range"}`).
pub const TIME_FIELDS: &[&str] = &[
    "backend_timestamp",
    "backend_update_timestamp",
    "detection_timestamp",
    "first_event_timestamp",
    "last_event_timestamp",
    "user_update_timestamp",
];

/// Every field an alert may carry; criteria, exclusions, `query` and `sort` may name these.
pub const ALERT_FIELDS: &[&str] = &[
    "id",
    "type",
    "org_key",
    "backend_timestamp",
    "backend_update_timestamp",
    "detection_timestamp",
    "first_event_timestamp",
    "last_event_timestamp",
    "user_update_timestamp",
    "severity",
    "reason",
    "reason_code",
    "threat_id",
    "primary_event_id",
    "policy_applied",
    "run_state",
    "sensor_action",
    "workflow",
    "determination",
    "tags",
    "alert_notes_present",
    "threat_notes_present",
    "is_updated",
    "alert_url",
    "device_id",
    "device_name",
    "device_os",
    "device_os_version",
    "device_username",
    "device_policy",
    "device_policy_id",
    "device_target_value",
    "device_location",
    "device_external_ip",
    "device_internal_ip",
    "mdr_alert",
    "ttps",
    "attack_tactic",
    "attack_technique",
    "process_guid",
    "process_pid",
    "process_name",
    "process_sha256",
    "process_md5",
    "process_effective_reputation",
    "process_reputation",
    "process_cmdline",
    "process_username",
    "parent_guid",
    "parent_name",
    "parent_sha256",
    "parent_md5",
    "parent_reputation",
    "parent_cmdline",
    "childproc_name",
    "childproc_sha256",
    "netconn_remote_ip",
    "netconn_remote_domain",
    "netconn_remote_port",
    "netconn_local_ip",
    "netconn_local_port",
    "netconn_protocol",
    "watchlists",
    "report_id",
    "report_name",
    "report_description",
    "report_tags",
    "ioc_id",
    "ioc_field",
    "ioc_hit",
    "threat_name",
];

/// Process reputations (the values Netskope's plugin offers as a pull filter).
pub const REPUTATIONS: &[&str] = &[
    "ADAPTIVE_WHITE_LIST",
    "COMPANY_BLACK_LIST",
    "COMMON_WHITE_LIST",
    "KNOWN_MALWARE",
    "NOT_LISTED",
    "PUP",
    "SUSPECT_MALWARE",
    "TRUSTED_WHITE_LIST",
];

/// Formats a time the way the alerts API does: ISO 8601 UTC with milliseconds.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO 8601 time as clients send it (`Z` or an offset; fractions optional; a missing
/// zone means UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let trimmed = text.trim_end_matches('Z');
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(trimmed, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
        if format == "%Y-%m-%d"
            && let Ok(d) = chrono::NaiveDate::parse_from_str(trimmed, format)
        {
            return d.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t));
        }
    }
    None
}

fn parse_range(text: &str) -> Option<Duration> {
    let body = text.trim().strip_prefix('-')?;
    let split = body.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = body.split_at(split);
    let n: i64 = n.parse().ok()?;
    match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        "y" => Duration::try_days(n.checked_mul(365)?),
        _ => None,
    }
}

/// Why a search was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError {
    /// `true` when the `query` string could not be parsed (answered with
    /// `"reason": "query_malformed_syntax"`, which cbc_sdk turns into `QuerySyntaxError`).
    pub malformed_query: bool,
    /// `true` when the request asked for rows beyond the result window.
    pub beyond_window: bool,
    /// What was wrong.
    pub message: String,
}

fn bad(message: impl Into<String>) -> SearchError {
    SearchError {
        malformed_query: false,
        beyond_window: false,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
enum Cond {
    MinimumSeverity(i64),
    Values(String, Vec<Value>),
    Time(String, i64, i64),
}

#[derive(Debug, Clone)]
enum Term {
    Field(String, String, bool),
    Free(String),
}

/// A parsed search request.
#[derive(Debug, Clone)]
pub struct Search {
    criteria: Vec<Cond>,
    exclusions: Vec<Cond>,
    query: Vec<Term>,
    time_range: Option<(i64, i64)>,
    /// 1-based first row.
    pub start: usize,
    /// Rows asked for.
    pub rows: usize,
    sort: Vec<(String, bool)>,
}

fn millis_of(value: &Value) -> Option<i64> {
    value
        .as_str()
        .and_then(parse_time)
        .map(|t| t.timestamp_millis())
}

fn time_bounds(value: &Value, path: &str, now: DateTime<Utc>) -> Result<(i64, i64), SearchError> {
    let Value::Object(o) = value else {
        return Err(bad(format!(
            "{path} must be an object with start and end, or range"
        )));
    };
    if let Some(range) = o.get("range") {
        let d = range
            .as_str()
            .and_then(parse_range)
            .ok_or_else(|| bad(format!("{path}.range must look like -3d, -12h or -30m")))?;
        return Ok(((now - d).timestamp_millis(), now.timestamp_millis()));
    }
    let bound = |key: &str, default: i64| match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            millis_of(v).ok_or_else(|| bad(format!("{path}.{key} must be an ISO 8601 time")))
        }
    };
    let start = bound("start", i64::MIN)?;
    let end = bound("end", i64::MAX)?;
    if start > end {
        return Err(bad(format!(
            "{path}.start must not be later than {path}.end"
        )));
    }
    Ok((start, end))
}

fn conditions(
    value: Option<&Value>,
    what: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Cond>, SearchError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(bad(format!("{what} must be an object"))),
    };
    let mut out = Vec::new();
    for (key, v) in object {
        let path = format!("{what}.{key}");
        if key == "minimum_severity" {
            let n = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| bad(format!("{path} must be an integer from 1 to 10")))?;
            out.push(Cond::MinimumSeverity(n));
        } else if TIME_FIELDS.contains(&key.as_str()) {
            let (s, e) = time_bounds(v, &path, now)?;
            out.push(Cond::Time(key.clone(), s, e));
        } else if ALERT_FIELDS.contains(&key.as_str()) {
            match v {
                Value::Array(items) => out.push(Cond::Values(key.clone(), items.clone())),
                _ => return Err(bad(format!("{path} must be a list of values"))),
            }
        } else {
            return Err(bad(format!("{path} is not a searchable alert field")));
        }
    }
    Ok(out)
}

fn malformed(message: impl Into<String>) -> SearchError {
    SearchError {
        malformed_query: true,
        beyond_window: false,
        message: message.into(),
    }
}

/// Parses the `query` subset: whitespace-separated terms, all required (an optional `AND`
/// between them), each `field:value` (quotes allowed, a trailing `*` matches a prefix) or a bare
/// word searched in every text field. `OR`, `NOT`, `-term` and parentheses are refused as
/// malformed rather than silently misread.
fn parse_query(text: &str) -> Result<Vec<Term>, SearchError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(malformed("query: unbalanced quote"));
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    let mut terms = Vec::new();
    for token in tokens {
        if token == "AND" {
            continue;
        }
        if token == "OR" || token == "NOT" || token.starts_with('-') || token.contains(['(', ')']) {
            return Err(malformed(format!(
                "query: {token:?} is not supported by this emulator (terms are ANDed field:value pairs)"
            )));
        }
        match token.split_once(':') {
            Some((field, value)) => {
                if !ALERT_FIELDS.contains(&field) {
                    return Err(malformed(format!("query: unknown field {field:?}")));
                }
                if value.is_empty() {
                    return Err(malformed(format!("query: no value for {field:?}")));
                }
                let (value, prefix) = match value.strip_suffix('*') {
                    Some(v) => (v.to_string(), true),
                    None => (value.to_string(), false),
                };
                terms.push(Term::Field(field.to_string(), value.to_lowercase(), prefix));
            }
            None => terms.push(Term::Free(token.to_lowercase())),
        }
    }
    Ok(terms)
}

/// Limits a search runs under.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// The highest row a search may reach (`start + rows - 1`), and the most rows per page.
    pub window: usize,
}

/// Parses a `_search` body.
///
/// # Errors
/// A [`SearchError`] saying what was wrong.
pub fn parse_search(
    body: &Value,
    now: DateTime<Utc>,
    limits: SearchLimits,
) -> Result<Search, SearchError> {
    let Value::Object(o) = body else {
        return Err(bad("The request body must be a JSON object"));
    };
    let number = |key: &str, default: usize| -> Result<usize, SearchError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or_else(|| bad(format!("{key} must be a non-negative integer"))),
        }
    };
    let rows = number("rows", 100)?;
    if rows > limits.window {
        return Err(bad(format!(
            "rows must be at most {}; got {rows}",
            limits.window
        )));
    }
    // `start` is 1-based; 0 is read as 1, as the first row.
    let start = number("start", 1)?.max(1);
    if rows > 0 && start.saturating_add(rows - 1) > limits.window {
        return Err(SearchError {
            malformed_query: false,
            beyond_window: true,
            message: format!(
                "start + rows - 1 must not exceed {}: narrow the time range to page further",
                limits.window
            ),
        });
    }
    let time_range = match o.get("time_range") {
        None | Some(Value::Null) => None,
        Some(v) if v.as_object().is_some_and(|m| m.is_empty()) => None,
        Some(v) => Some(time_bounds(v, "time_range", now)?),
    };
    let query = match o.get("query") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(q)) => parse_query(q)?,
        Some(_) => return Err(bad("query must be a string")),
    };
    let sort = match o.get("sort") {
        None | Some(Value::Null) => vec![("backend_timestamp".to_string(), true)],
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let field = item
                    .get("field")
                    .and_then(Value::as_str)
                    .filter(|f| ALERT_FIELDS.contains(f))
                    .ok_or_else(|| bad(format!("sort[{i}].field must name an alert field")))?;
                let desc = match item.get("order").and_then(Value::as_str) {
                    None => false,
                    Some(o) if o.eq_ignore_ascii_case("asc") => false,
                    Some(o) if o.eq_ignore_ascii_case("desc") => true,
                    Some(_) => return Err(bad(format!("sort[{i}].order must be ASC or DESC"))),
                };
                out.push((field.to_string(), desc));
            }
            if out.is_empty() {
                vec![("backend_timestamp".to_string(), true)]
            } else {
                out
            }
        }
        Some(_) => return Err(bad("sort must be a list of {field, order}")),
    };
    Ok(Search {
        criteria: conditions(o.get("criteria"), "criteria", now)?,
        exclusions: conditions(o.get("exclusions"), "exclusions", now)?,
        query,
        time_range,
        start,
        rows,
        sort,
    })
}

fn value_matches(field: Option<&Value>, wanted: &Value) -> bool {
    let equal = |have: &Value| match (have, wanted) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => {
            a.to_string() == *b
        }
        (a, b) => a == b,
    };
    match field {
        None | Some(Value::Null) => wanted.is_null(),
        Some(Value::Array(items)) => items
            .iter()
            .any(|i| equal(i) || i.get("id").is_some_and(equal)),
        Some(v) => equal(v),
    }
}

fn cond_matches(alert: &Alert, cond: &Cond) -> bool {
    match cond {
        Cond::MinimumSeverity(n) => alert
            .fields
            .get("severity")
            .and_then(Value::as_i64)
            .is_some_and(|s| s >= *n),
        Cond::Values(field, wanted) => wanted
            .iter()
            .any(|w| value_matches(alert.fields.get(field), w)),
        Cond::Time(field, start, end) => alert
            .fields
            .get(field)
            .and_then(millis_of)
            .is_some_and(|t| *start <= t && t <= *end),
    }
}

fn text_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.to_lowercase()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| text_of(i, out)),
        Value::Object(m) => m.values().for_each(|i| text_of(i, out)),
        _ => {}
    }
}

fn term_matches(alert: &Alert, term: &Term) -> bool {
    match term {
        Term::Field(field, value, prefix) => {
            let mut texts = Vec::new();
            if let Some(v) = alert.fields.get(field) {
                text_of(v, &mut texts);
            }
            texts.iter().any(|t| {
                if *prefix {
                    t.starts_with(value.as_str())
                } else {
                    t == value
                }
            })
        }
        Term::Free(word) => alert.fields.values().any(|v| {
            let mut texts = Vec::new();
            text_of(v, &mut texts);
            texts.iter().any(|t| t.contains(word.as_str()))
        }),
    }
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        // Missing values sort last.
        (None | Some(Value::Null), _) => Ordering::Greater,
        (_, None | Some(Value::Null)) => Ordering::Less,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// A page of a search.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The alerts of the page.
    pub results: Vec<Value>,
    /// How many alerts match.
    pub num_found: usize,
    /// How many of them paging can reach (`num_found` capped at the window).
    pub num_available: usize,
}

/// Runs `search` over `alerts`.
pub fn run(alerts: &[Alert], search: &Search, limits: SearchLimits) -> SearchPage {
    let mut hits: Vec<&Alert> = alerts
        .iter()
        .filter(|a| {
            search
                .time_range
                .is_none_or(|(s, e)| s <= a.backend_ms && a.backend_ms <= e)
        })
        .filter(|a| search.criteria.iter().all(|c| cond_matches(a, c)))
        .filter(|a| !search.exclusions.iter().any(|c| cond_matches(a, c)))
        .filter(|a| search.query.iter().all(|t| term_matches(a, t)))
        .collect();
    hits.sort_by(|a, b| {
        for (field, desc) in &search.sort {
            let ord = if field == "backend_timestamp" {
                a.backend_ms.cmp(&b.backend_ms)
            } else {
                compare_values(a.fields.get(field), b.fields.get(field))
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    let num_found = hits.len();
    let results = hits
        .into_iter()
        .skip(search.start - 1)
        .take(search.rows)
        .map(|a| Value::Object(a.fields.clone()))
        .collect();
    SearchPage {
        results,
        num_found,
        num_available: num_found.min(limits.window),
    }
}

const PROCESS_NAMES: &[&str] = &[
    "c:\\users\\public\\svchost.exe",
    "c:\\windows\\temp\\invoice_viewer.exe",
    "c:\\program files\\7-zip\\7z.exe",
    "c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe",
    "c:\\users\\jdoe\\appdata\\local\\temp\\setup_x64.exe",
    "c:\\windows\\system32\\rundll32.exe",
    "c:\\windows\\system32\\mshta.exe",
    "/usr/bin/curl",
    "/tmp/.x/kworkerd",
    "/Applications/Preview.app/Contents/MacOS/Preview",
];
const PARENTS: &[&str] = &[
    "c:\\windows\\explorer.exe",
    "c:\\program files\\microsoft office\\root\\office16\\winword.exe",
    "c:\\windows\\system32\\cmd.exe",
    "/bin/bash",
    "/sbin/launchd",
];
const REASONS: &[(&str, &str)] = &[
    (
        "The application svchost.exe was detected running from an unusual location.",
        "R_UNUSUAL_LOCATION",
    ),
    (
        "A known malware process was detected and terminated.",
        "R_KNOWN_MALWARE",
    ),
    (
        "The application powershell.exe executed an obfuscated script.",
        "R_OBFUSCATED_SCRIPT",
    ),
    (
        "A process attempted to connect to a known command and control server.",
        "R_C2_CONNECTION",
    ),
    (
        "The application invoked a credential dumping technique.",
        "R_CRED_DUMP",
    ),
];
const TTPS: &[&str] = &[
    "MITRE_T1059_001_POWERSHELL",
    "MITRE_T1055_PROCESS_INJECT",
    "MITRE_T1071_APP_LAYER_PROTOCOL",
    "UNKNOWN_APP",
    "RUN_MALWARE_APP",
    "POLICY_DENY",
    "MITRE_T1003_CREDENTIAL_DUMP",
];
const DOMAINS: &[&str] = &[
    "update-service.example.net",
    "cdn-static.example.org",
    "login-verify.example.com",
    "files.example.net",
    "telemetry.example",
];
const USERS: &[&str] = &[
    "CORP\\jdoe",
    "CORP\\asmith",
    "CORP\\mchen",
    "CORP\\rkumar",
    "root",
];
const WATCHLISTS: &[(&str, &str)] = &[
    ("9x0timurQkQA8n4yeR0s8w", "AMSI Threat Intelligence"),
    ("BeN4mbYYRBWqzUYWOgtDAw", "ATT&CK Framework"),
    ("P3rgyTiqTyCpqEvKPTgSpQ", "Carbon Black Known IOCs"),
];

fn hex(rng: &mut StdRng, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(DIGITS[rng.gen_range(0..16)]))
        .collect()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// Makes one realistic alert of a random type whose `backend_timestamp` is `at`.
pub fn generate(rng: &mut StdRng, org_key: &str, at: DateTime<Utc>) -> Alert {
    let kind = match rng.gen_range(0..10) {
        0..=5 => "CB_ANALYTICS",
        6..=8 => "WATCHLIST",
        _ => "INTRUSION_DETECTION_SYSTEM",
    };
    let id = format!(
        "{}-{}-{}-{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 4),
        hex(rng, 4),
        hex(rng, 12)
    );
    let first = at - Duration::seconds(rng.gen_range(60..7200));
    let last = at - Duration::seconds(rng.gen_range(1..60));
    let severity = match rng.gen_range(0..20) {
        0..=5 => rng.gen_range(1..=3),
        6..=14 => rng.gen_range(4..=6),
        15..=18 => rng.gen_range(7..=9),
        _ => 10,
    };
    let reputation = *pick(rng, REPUTATIONS);
    let process = *pick(rng, PROCESS_NAMES);
    let (reason, reason_code) = *pick(rng, REASONS);
    let device_n = rng.gen_range(1..400);
    let os = if process.starts_with('/') {
        if process.starts_with("/Applications") {
            "MAC"
        } else {
            "LINUX"
        }
    } else {
        "WINDOWS"
    };
    let mut fields = json!({
        "id": id,
        "type": kind,
        "org_key": org_key,
        "backend_timestamp": format_time(at),
        "backend_update_timestamp": format_time(at),
        "detection_timestamp": format_time(at - Duration::seconds(rng.gen_range(1..30))),
        "first_event_timestamp": format_time(first),
        "last_event_timestamp": format_time(last),
        "user_update_timestamp": null,
        "severity": severity,
        "reason": reason,
        "reason_code": format!("{reason_code}:{}", hex(rng, 8)),
        "threat_id": hex(rng, 32).to_uppercase(),
        "primary_event_id": format!("{}-0", hex(rng, 22)),
        "policy_applied": if rng.gen_bool(0.3) { "APPLIED" } else { "NOT_APPLIED" },
        "run_state": if rng.gen_bool(0.7) { "RAN" } else { "DID_NOT_RUN" },
        "sensor_action": if rng.gen_bool(0.4) { "DENY" } else { "ALLOW" },
        "workflow": {
            "change_timestamp": format_time(at),
            "changed_by_type": "SYSTEM",
            "changed_by": "ALERT_CREATION",
            "closure_reason": "NO_REASON",
            "status": "OPEN"
        },
        "determination": {
            "change_timestamp": format_time(at),
            "value": "NONE",
            "changed_by_type": null,
            "changed_by": null
        },
    });
    let device = json!({
        "tags": null,
        "alert_notes_present": false,
        "threat_notes_present": false,
        "is_updated": false,
        "alert_url": format!("defense.conferdeploy.net/alerts?s[c][query_string]=id:{id}&orgKey={org_key}"),
        "device_id": 5_000_000 + device_n,
        "device_name": format!("{}-{device_n:04}", match os { "WINDOWS" => "DESKTOP", "MAC" => "MBP", _ => "srv" }),
        "device_os": os,
        "device_os_version": match os { "WINDOWS" => "Windows 10 x64", "MAC" => "MAC OS X 14.4", _ => "Ubuntu 22.04" },
        "device_username": *pick(rng, USERS),
        "device_policy": "Standard",
        "device_policy_id": 6525,
        "device_target_value": "MEDIUM",
        "device_location": if rng.gen_bool(0.6) { "ONSITE" } else { "OFFSITE" },
        "device_external_ip": format!("198.51.100.{}", rng.gen_range(1..255)),
        "device_internal_ip": format!("10.{}.{}.{}", rng.gen_range(0..255), rng.gen_range(0..255), rng.gen_range(1..255)),
        "mdr_alert": false,
        "ttps": [*pick(rng, TTPS), *pick(rng, TTPS)],
        "attack_tactic": "TA0002",
        "attack_technique": "T1059",
    });
    let process = json!({
        "process_guid": format!("{org_key}-{:08x}-{:08x}-00000000-1d9{}", 5_000_000 + device_n, rng.r#gen::<u32>(), hex(rng, 5)),
        "process_pid": rng.gen_range(100..65000),
        "process_name": process,
        "process_sha256": hex(rng, 64),
        "process_md5": hex(rng, 32),
        "process_effective_reputation": reputation,
        "process_reputation": reputation,
        "process_cmdline": format!("\"{process}\" --silent"),
        "process_username": *pick(rng, USERS),
        "parent_guid": format!("{org_key}-{:08x}-{:08x}-00000000-1d9{}", 5_000_000 + device_n, rng.r#gen::<u32>(), hex(rng, 5)),
        "parent_name": *pick(rng, PARENTS),
        "parent_sha256": hex(rng, 64),
        "parent_md5": hex(rng, 32),
        "parent_reputation": "TRUSTED_WHITE_LIST",
        "parent_cmdline": "",
        "childproc_name": null,
        "childproc_sha256": null,
    });
    if let (Value::Object(map), Value::Object(d), Value::Object(p)) = (&mut fields, device, process)
    {
        map.extend(d);
        map.extend(p);
    }
    if let Value::Object(map) = &mut fields {
        if kind == "WATCHLIST" {
            let (wl_id, wl_name) = *pick(rng, WATCHLISTS);
            let ioc_hit = hex(rng, 64);
            map.insert("process_sha256".into(), json!(ioc_hit));
            map.insert("watchlists".into(), json!([{"id": wl_id, "name": wl_name}]));
            map.insert(
                "report_id".into(),
                json!(format!("{}-{}", hex(rng, 22), hex(rng, 8))),
            );
            map.insert("report_name".into(), json!("Known malicious binary"));
            map.insert(
                "report_description".into(),
                json!("Hash observed in active intrusion campaigns."),
            );
            map.insert("report_tags".into(), json!(["malware"]));
            map.insert("ioc_id".into(), json!(hex(rng, 32)));
            map.insert("ioc_field".into(), json!("process_sha256"));
            map.insert("ioc_hit".into(), json!(ioc_hit));
        }
        if kind == "INTRUSION_DETECTION_SYSTEM" || rng.gen_bool(0.2) {
            map.insert(
                "netconn_remote_ip".into(),
                json!(format!("203.0.113.{}", rng.gen_range(1..255))),
            );
            map.insert("netconn_remote_domain".into(), json!(*pick(rng, DOMAINS)));
            map.insert(
                "netconn_remote_port".into(),
                json!(*pick(rng, &[443, 80, 8080, 4444])),
            );
            map.insert(
                "netconn_local_ip".into(),
                map.get("device_internal_ip")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            map.insert(
                "netconn_local_port".into(),
                json!(rng.gen_range(49152..65535)),
            );
            map.insert("netconn_protocol".into(), json!("PROTO_TCP"));
        }
        if kind == "INTRUSION_DETECTION_SYSTEM" {
            map.insert("threat_name".into(), json!("ET MALWARE Possible C2 beacon"));
        }
    }
    let fields = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Alert {
        id,
        backend_ms: at.timestamp_millis(),
        fields,
    }
}

/// Builds an alert from a client-supplied object (for `POST /_sim/alerts`): the given fields
/// override those of a generated alert; `backend_timestamp` defaults to now.
///
/// # Errors
/// When the object is not an object or a timestamp is not ISO 8601.
pub fn from_json(
    rng: &mut StdRng,
    org_key: &str,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<Alert, String> {
    let Value::Object(given) = value else {
        return Err("each alert must be a JSON object".to_string());
    };
    let at = match given.get("backend_timestamp") {
        None | Some(Value::Null) => now,
        Some(v) => v
            .as_str()
            .and_then(parse_time)
            .ok_or_else(|| "backend_timestamp must be an ISO 8601 time".to_string())?,
    };
    let mut alert = generate(rng, org_key, at);
    for (k, v) in given {
        alert.fields.insert(k.clone(), v.clone());
    }
    alert
        .fields
        .insert("backend_timestamp".into(), json!(format_time(at)));
    if let Some(id) = alert.fields.get("id").and_then(Value::as_str) {
        alert.id = id.to_string();
    } else {
        alert.fields.insert("id".into(), json!(alert.id));
    }
    Ok(alert)
}
