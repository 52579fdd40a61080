//! What one source says about one indicator.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;

use crate::{Indicator, Reputation, Severity, Timestamp};

/// The longest tag iocx keeps, in bytes; longer ones are cut at a character boundary.
pub const MAX_TAG_LEN: usize = 128;
/// The most tags one observation keeps.
pub const MAX_TAGS: usize = 64;

/// A sorted set of tags without duplicates.
///
/// Tags keep their case (`TLP:AMBER`) but lose surrounding whitespace; empty tags and control
/// characters are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct TagSet(Vec<String>);

impl TagSet {
    /// An empty set.
    pub const fn new() -> TagSet {
        TagSet(Vec::new())
    }

    /// A set from any tags, normalised.
    pub fn from_tags<I, S>(tags: I) -> TagSet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = tags
            .into_iter()
            .filter_map(|t| normalise_tag(t.as_ref()))
            .collect();
        out.sort_unstable();
        out.dedup();
        out.truncate(MAX_TAGS);
        TagSet(out)
    }

    /// Adds a tag; returns whether the set changed.
    pub fn insert(&mut self, tag: &str) -> bool {
        let Some(tag) = normalise_tag(tag) else {
            return false;
        };
        match self.0.binary_search(&tag) {
            Ok(_) => false,
            Err(_) if self.0.len() >= MAX_TAGS => false,
            Err(at) => {
                self.0.insert(at, tag);
                true
            }
        }
    }

    /// Removes a tag; returns whether the set changed.
    pub fn remove(&mut self, tag: &str) -> bool {
        match self.0.binary_search_by(|t| t.as_str().cmp(tag.trim())) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Adds every tag of `other`.
    pub fn extend(&mut self, other: &TagSet) {
        for tag in &other.0 {
            self.insert(tag);
        }
    }

    /// Whether the set holds `tag`.
    pub fn contains(&self, tag: &str) -> bool {
        self.0.binary_search_by(|t| t.as_str().cmp(tag)).is_ok()
    }

    /// The tags, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The tags joined by newlines: the form stores intern.
    pub fn joined(&self) -> String {
        self.0.join("\n")
    }

    /// The inverse of [`TagSet::joined`].
    pub fn from_joined(text: &str) -> TagSet {
        TagSet::from_tags(text.split('\n'))
    }
}

impl From<Vec<String>> for TagSet {
    fn from(tags: Vec<String>) -> TagSet {
        TagSet::from_tags(tags)
    }
}

impl From<TagSet> for Vec<String> {
    fn from(tags: TagSet) -> Vec<String> {
        tags.0
    }
}

fn normalise_tag(tag: &str) -> Option<String> {
    let tag: String = tag.trim().chars().filter(|c| !c.is_control()).collect();
    if tag.is_empty() {
        return None;
    }
    if tag.len() <= MAX_TAG_LEN {
        return Some(tag);
    }
    let mut cut = MAX_TAG_LEN;
    while !tag.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(tag[..cut].to_string())
}

/// The statements a source makes about an indicator, apart from when and how often it saw it.
///
/// A source's newest statement replaces its previous one: iocx keeps what each source says now,
/// not a history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Severity (`unknown` when the source gives none).
    #[serde(default)]
    pub severity: Severity,
    /// Reputation 1–10, when the source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<Reputation>,
    /// Tags.
    #[serde(default, skip_serializing_if = "TagSet::is_empty")]
    pub tags: TagSet,
    /// A free-text comment or description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the source says the indicator stops being valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// Whether the source says the indicator is safe (allow-listed, a known good value).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub safe: bool,
    /// A link to the indicator in the source's own console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Attributes {
    /// A 64-bit fingerprint of every attribute: equal attributes give equal fingerprints, and a
    /// change of any attribute changes it with overwhelming probability. Stores compare
    /// fingerprints to skip unchanged re-sightings without reading the stored row.
    pub fn fingerprint(&self) -> u64 {
        let mut h = SipHasher13::new_with_keys(0x696f_6378_6670_7631, 0x6174_7472_6962_7574);
        self.severity.code().hash(&mut h);
        self.reputation.map(Reputation::get).hash(&mut h);
        self.tags.as_slice().hash(&mut h);
        self.comment.hash(&mut h);
        self.expires.map(|t| t.0).hash(&mut h);
        self.safe.hash(&mut h);
        self.link.hash(&mut h);
        h.finish()
    }
}

/// One record of a feed or API: an indicator with what the source says about it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The indicator.
    pub indicator: Indicator,
    /// The source's statements.
    #[serde(flatten)]
    pub attributes: Attributes,
    /// When the source first saw it, when it says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// When the source last saw it, when it says so; otherwise the time of the import or pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// How many times this record counts as seen (1 for a feed line; an alert count for
    /// sighting sources).
    #[serde(default = "one")]
    pub hits: u64,
    /// Whether this record is iocx's own push coming back from the tool it was pushed to (it
    /// then never counts as an independent source).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub echo: bool,
}

fn one() -> u64 {
    1
}

impl Record {
    /// A record of `indicator` with no attributes, seen once.
    pub fn new(indicator: Indicator) -> Record {
        Record {
            indicator,
            attributes: Attributes::default(),
            first_seen: None,
            last_seen: None,
            hits: 1,
            echo: false,
        }
    }
}

/// What one source says about one indicator, accumulated over all its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The source's current statements.
    #[serde(flatten)]
    pub attributes: Attributes,
    /// When the source first reported it.
    pub first_seen: Timestamp,
    /// When the source last reported it.
    pub last_seen: Timestamp,
    /// How many times the source reported it.
    pub hits: u64,
    /// Whether this observation is iocx's own push coming back (it then counts for nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub echo: bool,
}

impl Observation {
    /// The first observation made from `record`, seen at `now` unless the record says when.
    pub fn from_record(record: &Record, now: Timestamp) -> Observation {
        let last_seen = record.last_seen.unwrap_or(now);
        let first_seen = record.first_seen.unwrap_or(last_seen).min(last_seen);
        Observation {
            attributes: record.attributes.clone(),
            first_seen,
            last_seen,
            hits: record.hits,
            echo: false,
        }
    }

    /// Folds a newer record from the same source into this observation. Returns whether the
    /// attributes changed (as opposed to a plain re-sighting that only moves `last_seen` and
    /// `hits`).
    pub fn absorb(&mut self, record: &Record, now: Timestamp) -> bool {
        let seen = record.last_seen.unwrap_or(now);
        self.last_seen = self.last_seen.max(seen);
        if let Some(first) = record.first_seen {
            self.first_seen = self.first_seen.min(first);
        }
        self.first_seen = self.first_seen.min(seen);
        self.hits = self.hits.saturating_add(record.hits);
        if self.attributes != record.attributes {
            self.attributes = record.attributes.clone();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn tagset_normalises() {
        let t = TagSet::from_tags([" b ", "a", "", "a", "c\u{7}"]);
        assert_eq!(t.as_slice(), ["a", "b", "c"]);
        assert_eq!(TagSet::from_joined(&t.joined()), t);
        let long = "x".repeat(500);
        assert_eq!(TagSet::from_tags([long]).as_slice()[0].len(), MAX_TAG_LEN);
    }

    #[test]
    fn fingerprint_tracks_every_attribute() {
        let base = Attributes::default();
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(base.fingerprint()));
        let variants = [
            Attributes {
                severity: Severity::High,
                ..base.clone()
            },
            Attributes {
                reputation: Reputation::new(3),
                ..base.clone()
            },
            Attributes {
                tags: TagSet::from_tags(["x"]),
                ..base.clone()
            },
            Attributes {
                comment: Some("c".into()),
                ..base.clone()
            },
            Attributes {
                expires: Some(Timestamp(5)),
                ..base.clone()
            },
            Attributes {
                safe: true,
                ..base.clone()
            },
            Attributes {
                link: Some("l".into()),
                ..base.clone()
            },
        ];
        for v in variants {
            assert!(seen.insert(v.fingerprint()), "{v:?}");
        }
    }

    #[test]
    fn absorb_moves_times_and_counts() {
        let r = Record::new(Indicator::new(Kind::Md5, "0".repeat(32)));
        let mut o = Observation::from_record(&r, Timestamp(100));
        assert!(!o.absorb(&r, Timestamp(200)));
        assert_eq!(
            (o.first_seen, o.last_seen, o.hits),
            (Timestamp(100), Timestamp(200), 2)
        );
        let mut r2 = r.clone();
        r2.attributes.severity = Severity::Low;
        r2.first_seen = Some(Timestamp(50));
        assert!(o.absorb(&r2, Timestamp(150)));
        assert_eq!(
            (o.first_seen, o.last_seen, o.hits),
            (Timestamp(50), Timestamp(200), 3)
        );
    }
}
