//! Allow-lists (exclusions): values, address ranges and domain suffixes a rule never selects.
//!
//! Exclusions are applied in memory, after the rule's SQL has selected candidates, and each
//! lookup says which entry matched (for `explain` and the per-entry "suppressed" counters).
//! Compiled so that a lookup costs the same whatever the list's size:
//!
//! - values: one hash probe;
//! - ranges: per address family, an ordered map of the outermost ranges only (CIDR ranges either
//!   nest or are disjoint, so the outermost ones never overlap), searched for the last range
//!   starting at or before the address: one `O(log n)` probe;
//! - domain suffixes: one hash probe per suffix length the list holds (a list whose suffixes
//!   all have two labels probes `example.com` for `a.b.example.com`, and nothing else).
//!
//! Hash maps use `foldhash` (through `hashbrown`): entries come from administrators, and a
//! lookup is a few nanoseconds cheaper than with SipHash, which counts at 10 million lookups.

use std::collections::{BTreeMap, HashSet};

use hashbrown::HashMap;
use std::fmt;
use std::net::IpAddr;

use super::sql_functions::{host, ip_prefix, network};
use crate::Kind;

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entry {
    /// A canonical indicator value, matched exactly (any kind).
    Value(String),
    /// An address range (network address, prefix length): matches IP addresses and CIDR
    /// ranges inside it.
    Range(IpAddr, u8),
    /// A domain suffix, stored without its leading dot: matches domains, URL hosts and e-mail
    /// domains equal to it or below it.
    Suffix(String),
}

impl Entry {
    /// Parses an entry: `.example.com` (a domain suffix), `ADDRESS/PREFIX` (a range), or an
    /// indicator value (made canonical: `EVIL.example` → `evil.example`).
    ///
    /// # Errors
    /// [`BadEntry`] when the text is none of these.
    pub fn parse(text: &str) -> Result<Entry, BadEntry> {
        let e = text.trim();
        let bad = |reason: String| BadEntry {
            entry: e.to_string(),
            reason,
        };
        if let Some(suffix) = e.strip_prefix('.') {
            let s = suffix.trim_end_matches('.').to_ascii_lowercase();
            let s = match crate::parse(&s, Some(Kind::Domain), &crate::ParseOptions::default()) {
                Ok(p) => p.first().value.clone(),
                Err(_) => s,
            };
            let ok = !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            return if ok {
                Ok(Entry::Suffix(s))
            } else {
                Err(bad("a domain suffix is written .example.com".into()))
            };
        }
        if e.contains('/') && !e.contains("://") {
            return super::parser::parse_cidr(e)
                .map(|(ip, p)| Entry::Range(ip, p))
                .map_err(bad);
        }
        crate::parse(e, None, &crate::ParseOptions::default())
            .map(|p| Entry::Value(p.first().value.clone()))
            .map_err(|err| bad(err.to_string()))
    }
}

impl fmt::Display for Entry {
    /// The entry as written in a list (`evil.example`, `10.0.0.0/8`, `.example.com`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Value(v) => f.write_str(v),
            Entry::Range(ip, p) => write!(f, "{ip}/{p}"),
            Entry::Suffix(s) => write!(f, ".{s}"),
        }
    }
}

/// An entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allow-list entry {entry:?}: {reason}")]
pub struct BadEntry {
    /// The entry as given.
    pub entry: String,
    /// Why it is refused.
    pub reason: String,
}

/// The outermost ranges of one address family: start → (last address, entry index).
#[derive(Debug, Clone, Default)]
struct Ranges<T: Ord + Copy> {
    map: BTreeMap<T, (T, u32)>,
}

impl<T: Ord + Copy> Ranges<T> {
    /// Adds `[lo, hi]` unless an outer range already covers it; drops ranges it covers.
    fn insert(&mut self, lo: T, hi: T, index: u32) {
        if self.covering(lo, hi).is_some() {
            return;
        }
        let inner: Vec<T> = self
            .map
            .range(lo..=hi)
            .filter(|(_, (end, _))| *end <= hi)
            .map(|(start, _)| *start)
            .collect();
        for start in inner {
            self.map.remove(&start);
        }
        self.map.insert(lo, (hi, index));
    }

    /// The entry index of the range that covers `[lo, hi]`, if any.
    fn covering(&self, lo: T, hi: T) -> Option<u32> {
        let (_, (end, index)) = self.map.range(..=lo).next_back()?;
        (*end >= hi).then_some(*index)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A compiled allow-list: a named set of [`Entry`] values.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    name: String,
    entries: Vec<Entry>,
    values: HashMap<String, u32>,
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    ranges: HashSet<(IpAddr, u8)>,
    suffixes: HashMap<String, u32>,
    /// Bit `n` is set when some suffix has `n` labels (`n` < 64; longer ones set bit 63).
    suffix_labels: u64,
}

/// The first and last address of `ip/prefix`, as integers.
fn bounds_v4(ip: u32, prefix: u8) -> (u32, u32) {
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (ip & !host, ip | host)
}

fn bounds_v6(ip: u128, prefix: u8) -> (u128, u128) {
    let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (ip & !host, ip | host)
}

impl AllowList {
    /// An empty list called `name`.
    pub fn new(name: &str) -> AllowList {
        AllowList {
            name: name.to_string(),
            ..AllowList::default()
        }
    }

    /// The list's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks an entry and gives its canonical text (see [`Entry::parse`]).
    ///
    /// # Errors
    /// When the entry does not parse.
    pub fn normalise(entry: &str) -> Result<String, BadEntry> {
        Entry::parse(entry).map(|e| e.to_string())
    }

    /// Adds an entry (parsed with [`Entry::parse`]); adding one already present changes nothing.
    ///
    /// # Errors
    /// When it does not parse.
    pub fn add(&mut self, entry: &str) -> Result<(), BadEntry> {
        self.insert(Entry::parse(entry)?);
        Ok(())
    }

    /// Adds a parsed entry.
    pub fn insert(&mut self, entry: Entry) {
        let index = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let fresh = match &entry {
            Entry::Value(v) => {
                if self.values.contains_key(v) {
                    false
                } else {
                    self.values.insert(v.clone(), index);
                    true
                }
            }
            Entry::Suffix(s) => {
                if self.suffixes.contains_key(s) {
                    false
                } else {
                    self.suffixes.insert(s.clone(), index);
                    let labels = s.split('.').count().min(63);
                    self.suffix_labels |= 1 << labels;
                    true
                }
            }
            Entry::Range(ip, p) if !self.ranges.insert((*ip, *p)) => false,
            Entry::Range(IpAddr::V4(a), p) => {
                let (lo, hi) = bounds_v4(u32::from(*a), *p);
                self.v4.insert(lo, hi, index);
                true
            }
            Entry::Range(IpAddr::V6(a), p) => {
                let (lo, hi) = bounds_v6(u128::from(*a), *p);
                self.v6.insert(lo, hi, index);
                true
            }
        };
        if fresh {
            self.entries.push(entry);
        }
    }

    /// A list from entries.
    ///
    /// # Errors
    /// The first entry that does not parse.
    pub fn from_entries<'a>(
        name: &str,
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<AllowList, BadEntry> {
        let mut list = AllowList::new(name);
        for e in entries {
            list.add(e)?;
        }
        Ok(list)
    }

    /// The built-in list called `name` (`private`, `reserved` or `documentation`).
    pub fn builtin(name: &str) -> Option<AllowList> {
        let (_, _, entries) = BUILTIN.iter().find(|(n, _, _)| *n == name)?;
        AllowList::from_entries(name, entries.iter().copied()).ok()
    }

    /// Private address ranges: RFC 1918 and RFC 4193 unique local addresses.
    pub fn private() -> AllowList {
        AllowList::builtin("private").unwrap_or_default()
    }

    /// Reserved and special-purpose ranges: "this network", shared address space, loopback,
    /// link-local, IETF protocol assignments, benchmarking, multicast, future use, broadcast,
    /// and their IPv6 counterparts.
    pub fn reserved() -> AllowList {
        AllowList::builtin("reserved").unwrap_or_default()
    }

    /// Documentation ranges and names: RFC 5737, RFC 3849, RFC 9637, RFC 2606 and RFC 6761.
    pub fn documentation() -> AllowList {
        AllowList::builtin("documentation").unwrap_or_default()
    }

    /// The entry that covers `(kind, value)`, if any: the value itself; for IP and CIDR values
    /// a range holding the whole address or network; for domains, URLs and e-mail addresses a
    /// suffix of the host name. `value` is canonical, as stored.
    pub fn matches(&self, kind: Kind, value: &str) -> Option<&Entry> {
        let index = self
            .values
            .get(value)
            .copied()
            .or_else(|| self.range_match(kind, value))
            .or_else(|| self.suffix_match(kind, value))?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    fn range_match(&self, kind: Kind, value: &str) -> Option<u32> {
        if !kind.is_ip() || (self.v4.len() == 0 && self.v6.len() == 0) {
            return None;
        }
        let (ip, prefix) = ip_prefix(value)?;
        match network(ip, prefix) {
            IpAddr::V4(a) => {
                let (lo, hi) = bounds_v4(u32::from(a), prefix);
                self.v4.covering(lo, hi)
            }
            IpAddr::V6(a) => {
                let (lo, hi) = bounds_v6(u128::from(a), prefix);
                self.v6.covering(lo, hi)
            }
        }
    }

    fn suffix_match(&self, kind: Kind, value: &str) -> Option<u32> {
        if self.suffixes.is_empty() {
            return None;
        }
        let h = host(kind, value);
        if h.is_empty() {
            return None;
        }
        // Suffixes of the host from the shortest (`com`) to the whole name, probing only the
        // label counts some entry has; report the shortest match (the widest entry).
        let bytes = h.as_bytes();
        let mut labels = 0u32;
        let mut end = bytes.len();
        loop {
            let start = bytes[..end]
                .iter()
                .rposition(|b| *b == b'.')
                .map_or(0, |dot| dot + 1);
            labels += 1;
            if self.suffix_labels & (1u64 << labels.min(63)) != 0
                && let Some(i) = self.suffixes.get(&h[start..])
            {
                return Some(*i);
            }
            if start == 0 {
                return None;
            }
            end = start - 1;
        }
    }

    /// The entries, in the order added (duplicates left out).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many entries the list holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The allow-lists iocx ships, as (name, description, entries).
pub const BUILTIN: [(&str, &str, &[&str]); 3] = [
    (
        "private",
        "Private address ranges (RFC 1918, RFC 4193): never an Internet threat",
        &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
    ),
    (
        "reserved",
        "Reserved and special-purpose ranges (RFC 6890): this network, shared address space, \
         loopback, link-local, IETF protocol assignments, benchmarking, multicast, future use, \
         broadcast, and the IPv6 unspecified, loopback, IPv4-mapped, discard, link-local, \
         site-local and multicast ranges",
        &[
            "0.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "192.0.0.0/24",
            "198.18.0.0/15",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "255.255.255.255/32",
            "::/128",
            "::1/128",
            "::ffff:0:0/96",
            "100::/64",
            "fe80::/10",
            "fec0::/10",
            "ff00::/8",
        ],
    ),
    (
        "documentation",
        "Documentation and test ranges and names (RFC 5737, RFC 3849, RFC 9637, RFC 2606, \
         RFC 6761)",
        &[
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "233.252.0.0/24",
            "2001:db8::/32",
            "3fff::/20",
            ".example.com",
            ".example.net",
            ".example.org",
            ".example",
            ".test",
            ".invalid",
            ".localhost",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(l: &AllowList, kind: Kind, value: &str) -> Option<String> {
        l.matches(kind, value).map(ToString::to_string)
    }

    #[test]
    fn values_ranges_and_suffixes() {
        let l = AllowList::from_entries(
            "t",
            [
                "10.0.0.0/8",
                ".corp.example",
                "EVIL.example",
                "2001:db8::/32",
                "10.1.0.0/16",
            ],
        )
        .unwrap();
        assert_eq!(l.len(), 5);
        assert_eq!(
            hit(&l, Kind::Ipv4, "10.1.2.3").as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(
            hit(&l, Kind::Cidr, "10.1.0.0/16").as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(
            hit(&l, Kind::Cidr, "8.0.0.0/6"),
            None,
            "a wider network is not inside"
        );
        assert_eq!(hit(&l, Kind::Ipv4, "11.0.0.1"), None);
        assert_eq!(hit(&l, Kind::Ipv4, "9.255.255.255"), None);
        assert_eq!(
            hit(&l, Kind::Ipv6, "2001:db8::1").as_deref(),
            Some("2001:db8::/32")
        );
        assert_eq!(hit(&l, Kind::Ipv6, "2001:db9::1"), None);
        assert_eq!(
            hit(&l, Kind::Domain, "a.b.corp.example").as_deref(),
            Some(".corp.example")
        );
        assert_eq!(
            hit(&l, Kind::Domain, "corp.example").as_deref(),
            Some(".corp.example")
        );
        assert_eq!(
            hit(&l, Kind::Url, "http://x.corp.example:8080/p").as_deref(),
            Some(".corp.example")
        );
        assert_eq!(
            hit(&l, Kind::Email, "me@corp.example").as_deref(),
            Some(".corp.example")
        );
        assert_eq!(hit(&l, Kind::Domain, "notcorp.example"), None);
        assert_eq!(
            hit(&l, Kind::Domain, "evil.example").as_deref(),
            Some("evil.example")
        );
        // A value entry matches that value only.
        assert_eq!(hit(&l, Kind::Domain, "a.evil.example"), None);
        // An IP value that is not an IP kind is not looked up as a range.
        assert_eq!(hit(&l, Kind::Domain, "10.0.0.1"), None);
        assert!(AllowList::normalise("not an entry").is_err());
        assert!(AllowList::normalise("10.0.0.0/99").is_err());
        assert_eq!(AllowList::normalise("10.9.9.9/8").unwrap(), "10.0.0.0/8");
        assert_eq!(
            AllowList::normalise(".Corp.Example.").unwrap(),
            ".corp.example"
        );
    }

    #[test]
    fn nested_ranges_keep_the_outermost() {
        let mut l = AllowList::new("n");
        for e in [
            "10.1.2.0/24",
            "10.1.0.0/16",
            "10.0.0.0/8",
            "10.2.0.0/16",
            "0.0.0.0/0",
        ] {
            l.add(e).unwrap();
        }
        assert_eq!(l.v4.len(), 1);
        assert_eq!(
            hit(&l, Kind::Ipv4, "10.1.2.3").as_deref(),
            Some("0.0.0.0/0")
        );
        let mut l = AllowList::new("m");
        for e in ["0.0.0.0/0", "10.0.0.0/8"] {
            l.add(e).unwrap();
        }
        assert_eq!(
            hit(&l, Kind::Ipv4, "255.255.255.255").as_deref(),
            Some("0.0.0.0/0")
        );
        assert_eq!(hit(&l, Kind::Ipv6, "::1"), None);
    }

    #[test]
    fn builtins() {
        for (name, _, entries) in BUILTIN {
            let l = AllowList::from_entries(name, entries.iter().copied()).unwrap();
            assert_eq!(l.len(), entries.len(), "{name}");
        }
        let private = AllowList::private();
        assert!(private.matches(Kind::Ipv4, "192.168.1.1").is_some());
        assert!(private.matches(Kind::Ipv4, "172.31.255.255").is_some());
        assert!(private.matches(Kind::Ipv4, "172.32.0.0").is_none());
        assert!(private.matches(Kind::Ipv6, "fd12:3456::1").is_some());
        assert!(private.matches(Kind::Ipv4, "8.8.8.8").is_none());
        let reserved = AllowList::reserved();
        for (k, v) in [
            (Kind::Ipv4, "127.0.0.1"),
            (Kind::Ipv4, "169.254.1.1"),
            (Kind::Ipv4, "100.64.1.1"),
            (Kind::Ipv4, "0.1.2.3"),
            (Kind::Ipv4, "239.1.1.1"),
            (Kind::Ipv4, "255.255.255.255"),
            (Kind::Ipv6, "::1"),
            (Kind::Ipv6, "::"),
            (Kind::Ipv6, "fe80::1"),
            (Kind::Ipv6, "ff02::1"),
        ] {
            assert!(reserved.matches(k, v).is_some(), "{v}");
        }
        assert!(reserved.matches(Kind::Ipv4, "1.1.1.1").is_none());
        let docs = AllowList::documentation();
        assert!(docs.matches(Kind::Ipv4, "203.0.113.9").is_some());
        assert!(docs.matches(Kind::Domain, "www.example.com").is_some());
        assert!(docs.matches(Kind::Domain, "example.com").is_some());
        assert!(docs.matches(Kind::Url, "https://a.b.test/x").is_some());
        assert!(docs.matches(Kind::Email, "a@mail.example.org").is_some());
        assert!(docs.matches(Kind::Domain, "example.co").is_none());
        assert!(docs.matches(Kind::Ipv6, "2001:db8:1::/48").is_some());
        assert!(AllowList::builtin("nope").is_none());
    }
}
