//! The fields a CSV column or JSON key can carry, under the many names feeds give them.

use crate::{Attributes, Kind, Reputation, Severity, TagSet, Timestamp};

/// What a CSV column or JSON key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The indicator; when the column is named after a kind (`url`, `sha256`, `dst_ip`), that
    /// kind is the default for its values.
    Value(Option<Kind>),
    /// The indicator's kind, in iocx's or a vendor's words.
    Kind,
    /// Severity.
    Severity,
    /// Reputation 1–10.
    Reputation,
    /// Tags (a JSON array, or text split on `,`, `;` or `|`).
    Tags,
    /// First seen.
    FirstSeen,
    /// Last seen.
    LastSeen,
    /// Expiry.
    Expires,
    /// Comment or description.
    Comment,
    /// A link to the indicator at its source.
    Link,
    /// Whether the source marks it safe.
    Safe,
}

impl Field {
    /// The field a header name or JSON key stands for, if any.
    pub fn from_name(name: &str) -> Option<Field> {
        let n: String = name
            .trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == '#')
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' | '.' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Some(match n.as_str() {
            "value" | "indicator" | "ioc" | "ioc_value" | "observable" | "indicator_value"
            | "entity" => Field::Value(None),
            "url" => Field::Value(Some(Kind::Url)),
            "domain" | "hostname" | "host" | "fqdn" | "domain_name" => {
                Field::Value(Some(Kind::Domain))
            }
            "ip" | "ip_address" | "ipv4" | "dst_ip" | "ip_addr" | "src_ip" => {
                Field::Value(Some(Kind::Ipv4))
            }
            "ipv6" => Field::Value(Some(Kind::Ipv6)),
            "cidr" | "network" | "netblock" => Field::Value(Some(Kind::Cidr)),
            "md5" | "md5_hash" => Field::Value(Some(Kind::Md5)),
            "sha1" | "sha1_hash" => Field::Value(Some(Kind::Sha1)),
            "sha256" | "sha256_hash" => Field::Value(Some(Kind::Sha256)),
            "email" | "email_address" | "sender" => Field::Value(Some(Kind::Email)),
            "type" | "kind" | "ioc_type" | "indicator_type" | "value_type" => Field::Kind,
            "severity" | "risk" | "risk_level" | "risklevel" | "threat_level" => Field::Severity,
            "reputation" => Field::Reputation,
            "tags" | "tag" | "labels" => Field::Tags,
            "first_seen" | "firstseen" | "first_seen_utc" | "dateadded" | "date_added"
            | "created" | "valid_from" => Field::FirstSeen,
            "last_seen" | "lastseen" | "last_seen_utc" | "last_online" | "modified" | "updated" => {
                Field::LastSeen
            }
            "expires" | "expiration" | "expires_at" | "expiry" | "valid_until" => Field::Expires,
            "comment" | "comments" | "description" | "threat" | "malware" | "malware_printable"
            | "note" => Field::Comment,
            "link" | "reference" | "urlhaus_link" | "external_link" | "source_url" => Field::Link,
            "safe" | "whitelisted" | "allowlisted" | "benign" => Field::Safe,
            _ => return None,
        })
    }
}

/// A kind as feeds and vendors name it (`ip:port`, `md5_hash`, `FQDN`, `SHA-256`, `IP Address`).
pub(crate) fn kind_from_vendor(text: &str) -> Option<Kind> {
    let t = text.trim().to_ascii_lowercase();
    if let Ok(k) = t.parse::<Kind>() {
        return Some(k);
    }
    let compact: String = t.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    Some(match compact.as_str() {
        "md5hash" => Kind::Md5,
        "sha1hash" => Kind::Sha1,
        "sha256hash" => Kind::Sha256,
        "ipport" | "ipv4port" => Kind::Ipv4,
        "emailaddress" | "emailsrc" | "emaildst" => Kind::Email,
        "urls" => Kind::Url,
        "domains" => Kind::Domain,
        _ => return None,
    })
}

/// The raw text of one record's fields, before validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawFields {
    pub value: Option<String>,
    pub kind_hint: Option<Kind>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub reputation: Option<String>,
    pub tags: Vec<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub expires: Option<String>,
    pub comment: Option<String>,
    pub link: Option<String>,
    pub safe: Option<String>,
}

type FieldError = (&'static str, String);

impl RawFields {
    /// Sets `field` from text (the first value wins for the indicator itself).
    pub fn set(&mut self, field: Field, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let owned = Some(text.to_string());
        match field {
            Field::Value(hint) => {
                if self.value.is_none() {
                    self.value = owned;
                    self.kind_hint = hint;
                }
            }
            Field::Kind => self.kind = owned,
            Field::Severity => self.severity = owned,
            Field::Reputation => self.reputation = owned,
            Field::Tags => self
                .tags
                .extend(text.split([',', ';', '|']).map(|t| t.trim().to_string())),
            Field::FirstSeen => self.first_seen = owned,
            Field::LastSeen => self.last_seen = owned,
            Field::Expires => self.expires = owned,
            Field::Comment => self.comment = owned,
            Field::Link => self.link = owned,
            Field::Safe => self.safe = owned,
        }
    }

    /// Applies the fields to `attributes` (which hold the feed's defaults).
    pub fn apply(&self, attributes: &mut Attributes) -> Result<(), FieldError> {
        if let Some(s) = &self.severity {
            attributes.severity = s
                .parse::<Severity>()
                .map_err(|e| ("bad_severity", e.to_string()))?;
        }
        if let Some(r) = &self.reputation {
            attributes.reputation = Some(
                r.parse::<Reputation>()
                    .map_err(|e| ("bad_reputation", e.to_string()))?,
            );
        }
        if !self.tags.is_empty() {
            let mut tags = attributes.tags.clone();
            tags.extend(&TagSet::from_tags(&self.tags));
            attributes.tags = tags;
        }
        if let Some(e) = &self.expires {
            attributes.expires =
                Some(Timestamp::parse(e).map_err(|err| ("bad_time", format!("expires: {err}")))?);
        }
        if let Some(c) = &self.comment {
            attributes.comment = Some(c.clone());
        }
        if let Some(l) = &self.link {
            attributes.link = Some(l.clone());
        }
        if let Some(s) = &self.safe {
            attributes.safe = match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "y" => true,
                "false" | "no" | "0" | "n" => false,
                other => {
                    return Err((
                        "bad_safe",
                        format!("safe must be true or false, not {other:?}"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// First and last seen, validated.
    pub fn times(&self) -> Result<(Option<Timestamp>, Option<Timestamp>), FieldError> {
        let parse = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(Timestamp::parse)
                .transpose()
                .map_err(|e| ("bad_time", format!("{name}: {e}")))
        };
        Ok((
            parse("first_seen", &self.first_seen)?,
            parse("last_seen", &self.last_seen)?,
        ))
    }
}
