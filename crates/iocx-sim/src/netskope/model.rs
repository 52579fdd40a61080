//! The tenant's objects (alert types, URL lists, file-hash lists) and the entry rules Netskope
//! applies to them. Pure: no I/O, no locking.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One mebibyte, the unit Netskope's list limits are stated in.
pub const MIB: usize = 1024 * 1024;

/// The alert types the emulator holds data for (`/api/v2/events/dataexport/alerts/{type}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum AlertType {
    /// A file matched a malware signature or sandbox verdict (`md5`, `sha256`, `object`).
    Malware,
    /// A user reached a malicious site (`url`, `malsite_category`).
    Malsite,
}

impl AlertType {
    /// Both types, in a fixed order.
    pub const ALL: [AlertType; 2] = [AlertType::Malware, AlertType::Malsite];

    /// The path segment and the lowercase name (`malware`, `malsite`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::Malware => "malware",
            AlertType::Malsite => "malsite",
        }
    }

    /// The value of the alert's `alert_type` key as the tenant writes it (`Malware`, `malsite`).
    pub fn alert_type_value(self) -> &'static str {
        match self {
            AlertType::Malware => "Malware",
            AlertType::Malsite => "malsite",
        }
    }

    /// Parses a type name, ignoring case.
    pub fn parse(s: &str) -> Option<AlertType> {
        match s.to_ascii_lowercase().as_str() {
            "malware" => Some(AlertType::Malware),
            "malsite" => Some(AlertType::Malsite),
            _ => None,
        }
    }
}

impl fmt::Display for AlertType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Alert types the real endpoint knows but the emulator holds no data for: their iterators
/// answer with empty pages rather than 404.
pub const OTHER_ALERT_TYPES: &[&str] = &[
    "dlp",
    "watchlist",
    "ctep",
    "compromisedcredential",
    "policy",
    "remediation",
    "quarantine",
    "securityassessment",
    "uba",
];

/// How a URL list matches: literal entries or regular expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListType {
    /// Hosts and URLs, with an optional leading `*.` wildcard.
    #[default]
    Exact,
    /// Regular expressions.
    Regex,
}

impl ListType {
    /// `exact` or `regex`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::Exact => "exact",
            ListType::Regex => "regex",
        }
    }

    /// Parses `exact` or `regex` (case-sensitive, as the API is).
    pub fn parse(s: &str) -> Option<ListType> {
        match s {
            "exact" => Some(ListType::Exact),
            "regex" => Some(ListType::Regex),
            _ => None,
        }
    }
}

/// The content of a URL list: its type and entries, in the order they were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UrlListContent {
    /// `exact` or `regex`.
    #[serde(rename = "type")]
    pub list_type: ListType,
    /// The entries, without duplicates.
    pub urls: Vec<String>,
}

impl UrlListContent {
    /// The size Netskope's 7 MB limit is measured against: the compact JSON encoding of the
    /// entries array.
    pub fn json_bytes(&self) -> usize {
        json_array_bytes(&self.urls)
    }
}

/// The length of `["a","b",…]`, computed without allocating the encoding.
pub fn json_array_bytes(entries: &[String]) -> usize {
    let inner: usize = entries.iter().map(|e| json_string_bytes(e)).sum();
    2 + inner + entries.len().saturating_sub(1)
}

fn json_string_bytes(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// What happened to a URL list since its last deploy (`modify_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModifyType {
    /// Created and not deployed since.
    Created,
    /// Changed by PUT, append or replace.
    Edited,
    /// Marked for deletion; the deploy removes it.
    Deleted,
}

impl ModifyType {
    /// `Created`, `Edited` or `Deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModifyType::Created => "Created",
            ModifyType::Edited => "Edited",
            ModifyType::Deleted => "Deleted",
        }
    }
}

/// One URL list with its deployed and pending versions.
///
/// Invariant: `pending` is true exactly when the working copy differs from what the last deploy
/// applied (or the list was never deployed, or it is marked for deletion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlList {
    /// The tenant-wide id.
    pub id: i64,
    /// The working name.
    pub name: String,
    /// The working copy: what `GET` shows and what the next deploy applies.
    pub working: UrlListContent,
    /// The name and content in force since the last deploy, if ever deployed.
    pub deployed: Option<(String, UrlListContent)>,
    /// Whether a change waits for a deploy.
    pub pending: bool,
    /// The last change.
    pub modify_type: ModifyType,
    /// Who made the last change.
    pub modify_by: String,
    /// When, as `YYYY-MM-DD HH:MM:SS` (UTC).
    pub modify_time: String,
}

/// The outcome of checking one URL-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryCheck {
    /// Accepted; the value is the entry as stored (trimmed).
    Valid(String),
    /// Blank or a comment (`#`, `;`): dropped silently.
    Ignored,
    /// Rejected, with the reason reported back.
    Invalid(String),
}

/// Checks one entry the way the tenant does for a list of `list_type`.
///
/// Exact lists: no spaces, control or non-ASCII characters (the path must be percent-encoded and
/// the host in punycode); the scheme is ignored; no `user:pass@`; at most one `*`, and only as a
/// leading `*.` before a domain; the host must be a domain name, or an IPv4 address when
/// `allow_ip`; IPv6 is refused. Regex lists: no spaces or non-ASCII, and the pattern must compile.
pub fn check_entry(raw: &str, list_type: ListType, allow_ip: bool) -> EntryCheck {
    let entry = raw.trim();
    if entry.is_empty() || entry.starts_with('#') || entry.starts_with(';') {
        return EntryCheck::Ignored;
    }
    if entry
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return EntryCheck::Invalid(
            "Invalid URL: spaces and non-ASCII characters are not allowed (percent-encode the path, use punycode for the host)"
                .to_string(),
        );
    }
    match list_type {
        ListType::Regex => check_regex(entry),
        ListType::Exact => match check_exact(entry, allow_ip) {
            Ok(()) => EntryCheck::Valid(entry.to_string()),
            Err(reason) => EntryCheck::Invalid(reason),
        },
    }
}

fn check_regex(entry: &str) -> EntryCheck {
    match regex::RegexBuilder::new(entry).size_limit(1 << 20).build() {
        Ok(_) => EntryCheck::Valid(entry.to_string()),
        Err(e) => EntryCheck::Invalid(format!(
            "Invalid regular expression: {}",
            e.to_string().lines().last().unwrap_or("does not compile")
        )),
    }
}

fn check_exact(entry: &str, allow_ip: bool) -> Result<(), String> {
    let rest = match entry.find("://") {
        Some(i) => {
            let scheme = &entry[..i];
            let ok = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !ok {
                return Err("Invalid URL: malformed scheme".to_string());
            }
            &entry[i + 3..]
        }
        None => entry,
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(host_end);
    if authority.contains('@') {
        return Err("Invalid URL: credentials (user:pass@) are not allowed".to_string());
    }
    let stars = entry.matches('*').count();
    if stars > 1 {
        return Err("Invalid host: at most one wildcard is allowed, as a leading '*.'".to_string());
    }
    if path.contains('*') {
        return Err(
            "Invalid host: a wildcard is allowed only at the front of a domain ('*.domain')"
                .to_string(),
        );
    }
    let (wildcard, authority) = match authority.strip_prefix("*.") {
        Some(after) => (true, after),
        None => (false, authority),
    };
    if authority.contains('*') {
        return Err(
            "Invalid host: a wildcard is allowed only at the front of a domain ('*.domain')"
                .to_string(),
        );
    }
    if authority.starts_with('[') || authority.matches(':').count() > 1 {
        return Err("Invalid host: IPv6 addresses are not supported".to_string());
    }
    let host = match authority.split_once(':') {
        Some((host, port)) => {
            let port_ok = !port.is_empty()
                && port.len() <= 5
                && port.chars().all(|c| c.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
            if !port_ok {
                return Err("Invalid URL: malformed port".to_string());
            }
            host
        }
        None => authority,
    };
    if host.is_empty() {
        return Err("Invalid host: empty host".to_string());
    }
    if is_ipv4(host) {
        if wildcard {
            return Err("Invalid host: a wildcard cannot precede an IP address".to_string());
        }
        if !allow_ip {
            return Err("Invalid host: IP addresses are not enabled on this tenant".to_string());
        }
        return Ok(());
    }
    check_domain(host)
}

fn is_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()) && {
                p.parse::<u16>().is_ok_and(|n| n <= 255)
            }
        })
}

fn check_domain(host: &str) -> Result<(), String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() > 253 {
        return Err("Invalid host: longer than 253 characters".to_string());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return Err("Invalid host: not a domain name".to_string());
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(format!("Invalid host: bad label '{label}'"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("Invalid host: not a domain name or IPv4 address".to_string());
    }
    Ok(())
}

/// The kind of a file hash the v1 list accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// 32 hex digits.
    Md5,
    /// 64 hex digits.
    Sha256,
}

/// Classifies a hash (already trimmed); `None` when it is neither MD5 nor SHA-256 hex.
pub fn hash_kind(value: &str) -> Option<HashKind> {
    if !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    match value.len() {
        32 => Some(HashKind::Md5),
        64 => Some(HashKind::Sha256),
        _ => None,
    }
}
