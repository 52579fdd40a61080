//! Indicator kinds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of an indicator of compromise.
///
/// The numeric codes (see [`Kind::code`]) are stored in databases and must never change;
/// add new kinds with new codes at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An absolute URL (`http`, `https`, `ftp`, …) in canonical form.
    Url,
    /// A registrable domain or host name below a public suffix.
    Domain,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address (never an IPv4-mapped one: those are [`Kind::Ipv4`]).
    Ipv6,
    /// An IPv4 or IPv6 network in `address/prefix` form, host bits cleared.
    Cidr,
    /// An MD5 file hash, 32 lowercase hex digits.
    Md5,
    /// A SHA-1 file hash, 40 lowercase hex digits.
    Sha1,
    /// A SHA-256 file hash, 64 lowercase hex digits.
    Sha256,
    /// An e-mail address (sender).
    Email,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 9] = [
        Kind::Url,
        Kind::Domain,
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Cidr,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
        Kind::Email,
    ];

    /// The stable numeric code stored in databases.
    pub const fn code(self) -> u8 {
        match self {
            Kind::Url => 1,
            Kind::Domain => 2,
            Kind::Ipv4 => 3,
            Kind::Ipv6 => 4,
            Kind::Cidr => 5,
            Kind::Md5 => 6,
            Kind::Sha1 => 7,
            Kind::Sha256 => 8,
            Kind::Email => 9,
        }
    }

    /// The kind for a numeric code, if it is one.
    pub const fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::Url,
            2 => Kind::Domain,
            3 => Kind::Ipv4,
            4 => Kind::Ipv6,
            5 => Kind::Cidr,
            6 => Kind::Md5,
            7 => Kind::Sha1,
            8 => Kind::Sha256,
            9 => Kind::Email,
            _ => return None,
        })
    }

    /// The lowercase name used in the CLI, the API, rules and exports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Url => "url",
            Kind::Domain => "domain",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Cidr => "cidr",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::Email => "email",
        }
    }

    /// Whether this kind is a file hash.
    pub const fn is_hash(self) -> bool {
        matches!(self, Kind::Md5 | Kind::Sha1 | Kind::Sha256)
    }

    /// Whether this kind is a network address or range.
    pub const fn is_ip(self) -> bool {
        matches!(self, Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown indicator kind {0:?}; expected one of url, domain, ipv4, ipv6, cidr, md5, sha1, sha256, email"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    /// Parses a kind name. Besides the canonical names this accepts the names vendors use
    /// (`ip`, `fqdn`, `hostname`, `sha-256`, `filesha256`, `sendermailaddress`, `ipv4-addr`, …),
    /// case-insensitively. A bare `ip` means "IPv4 or IPv6" and maps to [`Kind::Ipv4`]; the
    /// parser then corrects it to [`Kind::Ipv6`] when the value is one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let compact: String = lower
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect();
        Ok(match compact.as_str() {
            "url" | "uri" | "link" => Kind::Url,
            "domain" | "domainname" | "fqdn" | "hostname" | "host" | "dns" => Kind::Domain,
            "ipv4" | "ip" | "ipaddress" | "ipv4addr" | "ipdst" | "ipsrc" | "address" => Kind::Ipv4,
            "ipv6" | "ipv6addr" => Kind::Ipv6,
            "cidr" | "cidrblock" | "network" | "netblock" | "subnet" | "iprange" => Kind::Cidr,
            "md5" | "filemd5" | "md5hash" => Kind::Md5,
            "sha1" | "filesha1" | "sha1hash" => Kind::Sha1,
            "sha256" | "filesha256" | "sha256hash" => Kind::Sha256,
            "email" | "emailaddress" | "emailaddr" | "sendermailaddress" | "emailsrc"
            | "sender" => Kind::Email,
            _ => return Err(UnknownKind(s.trim().to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for kind in Kind::ALL {
            assert!(seen.insert(kind.code()));
            assert_eq!(Kind::from_code(kind.code()), Some(kind));
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
        assert_eq!(Kind::from_code(0), None);
    }

    #[test]
    fn vendor_names_are_understood() {
        assert_eq!("fileSha256".parse::<Kind>(), Ok(Kind::Sha256));
        assert_eq!("senderMailAddress".parse::<Kind>(), Ok(Kind::Email));
        assert_eq!("IP Address".parse::<Kind>(), Ok(Kind::Ipv4));
        assert_eq!("CIDR Block".parse::<Kind>(), Ok(Kind::Cidr));
        assert_eq!("FQDN".parse::<Kind>(), Ok(Kind::Domain));
        assert!("registry-key".parse::<Kind>().is_err());
    }
}
