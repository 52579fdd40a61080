//! Why a raw value is not an indicator: [`ParseError`] and its [`Problem`]s.
//!
//! Every error carries the raw value (shortened to [`MAX_SHOWN`] bytes so that a feed of long
//! garbage does not fill logs), the kind it was read as, the part at fault when that is not the
//! whole value (the host of a URL, the domain of an e-mail address), and a typed [`Problem`].
//! `Display` renders a sentence a user can act on; [`ParseError::reason`] gives a short, stable
//! code that import summaries count rejections by.

use std::fmt;

use crate::{Kind, UnknownKind};

/// How many bytes of a rejected value an error keeps for display.
pub const MAX_SHOWN: usize = 120;

/// Why a raw value is not an indicator.
///
/// `Display` is a sentence naming the value, what it was read as, and what is wrong with it, e.g.
/// `"10.0.0.300" is not an IPv4 address: octet 4 (300) is above 255`. [`ParseError::reason`] is
/// a stable snake_case code for grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing is left once spaces, quotes and enclosing brackets are removed.
    Empty,
    /// The raw value is longer than [`MAX_RAW_LEN`](super::MAX_RAW_LEN) bytes.
    TooLong {
        /// The raw length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A declared kind name that names no kind (see [`Kind`]'s `FromStr`).
    UnknownKind {
        /// The name as given.
        name: String,
    },
    /// Kind detection found nothing the value could be.
    Unrecognised {
        /// The raw value (shortened).
        value: String,
    },
    /// The value was read as `kind` and broke one of its rules.
    Invalid {
        /// The raw value (shortened).
        value: String,
        /// The kind the value was read as; `None` for a value that looks like a hash of no
        /// known length.
        kind: Option<Kind>,
        /// The part at fault when it is not the whole value: the host of a URL or the domain of
        /// an e-mail address.
        part: Option<String>,
        /// What is wrong.
        problem: Problem,
    },
}

/// What is wrong with a value read as some kind. Each problem's `Display` is a clause that
/// completes "… is not a domain: ".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A hash of the wrong length.
    HashLength {
        /// The length the kind has; `None` when the kind was being detected (32, 40 or 64).
        expected: Option<usize>,
        /// The number of characters found.
        found: usize,
    },
    /// A hash with a character that is not a hex digit.
    NonHex {
        /// The 1-based character position.
        position: usize,
        /// The character.
        found: char,
    },
    /// A hash whose prefix (`sha256:`) names another kind than the declared one.
    HashPrefix {
        /// The kind the prefix names.
        prefix: Kind,
    },
    /// An IPv4 address without exactly four dot-separated octets.
    OctetCount {
        /// The number of parts found.
        found: usize,
    },
    /// An empty IPv4 octet (`1..2.3`).
    EmptyOctet {
        /// The 1-based octet number.
        index: usize,
    },
    /// An IPv4 octet that is not a decimal number.
    OctetNotDecimal {
        /// The 1-based octet number.
        index: usize,
        /// The octet as written.
        text: String,
    },
    /// An IPv4 octet above 255.
    OctetAbove255 {
        /// The 1-based octet number.
        index: usize,
        /// The octet as written.
        text: String,
    },
    /// An IPv4 octet with a leading zero, which some tools read as octal (`010` = 8).
    LeadingZero {
        /// The 1-based octet number.
        index: usize,
        /// The octet as written.
        text: String,
    },
    /// An IP address followed by a port (`1.2.3.4:80`).
    IpWithPort,
    /// Malformed IPv6 text.
    Ipv6Syntax {
        /// What is malformed.
        detail: String,
    },
    /// An IPv6 address with a zone index (`fe80::1%eth0`).
    ZoneIndex,
    /// An IPv6 URL host without brackets (`http://2001:db8::1/`).
    Ipv6WithoutBrackets,
    /// A CIDR prefix length that is not a number in range.
    PrefixLength {
        /// The prefix as written.
        text: String,
        /// The largest prefix of the address family (32 or 128).
        max: u8,
    },
    /// A dotted IPv4 netmask that is malformed or not contiguous.
    Netmask {
        /// The netmask as written.
        text: String,
    },
    /// An empty domain label (`a..b`).
    EmptyLabel,
    /// A domain label longer than 63 characters.
    LabelTooLong {
        /// The label.
        label: String,
        /// Its length.
        len: usize,
    },
    /// A character that is not allowed in a domain label.
    LabelChar {
        /// The label.
        label: String,
        /// The character.
        found: char,
    },
    /// A label that starts or ends with a hyphen.
    LabelHyphen {
        /// The label.
        label: String,
    },
    /// An underscore in the top-level label.
    UnderscoreInTld {
        /// The top-level label.
        label: String,
    },
    /// A domain longer than 253 characters.
    DomainTooLong {
        /// Its length.
        len: usize,
    },
    /// A domain with a single label.
    SingleLabel,
    /// A domain whose top-level label is all digits.
    NumericTld {
        /// The top-level label.
        tld: String,
    },
    /// A public suffix (`com`, `co.uk`, `github.io`), which names no one owner.
    PublicSuffix,
    /// A wildcard (`*.example.com`) or "and subdomains" (`.example.com`) pattern.
    Wildcard {
        /// The domain to give instead.
        suggestion: String,
    },
    /// A name that UTS-46 (IDNA) rejects: a disallowed character or a malformed `xn--` label.
    Idna,
    /// An e-mail address without `@`.
    MissingAt,
    /// An e-mail local part that breaks a structural rule.
    LocalPart {
        /// What is wrong ("is empty", "has two dots in a row", …).
        detail: &'static str,
    },
    /// An e-mail local part with a character iocx does not accept.
    LocalPartChar {
        /// The character.
        found: char,
    },
    /// An e-mail address whose domain is an address literal (`a@[1.2.3.4]`).
    DomainLiteral,
    /// A scheme-less URL under [`super::UrlSchemePolicy::Reject`].
    SchemeMissing,
    /// A URL with no host (`http:///x`).
    EmptyHost,
    /// Text after a bracketed IPv6 URL host that is not a port.
    AfterBracket,
    /// A URL port that is not a number from 0 to 65535.
    Port {
        /// The port as written.
        text: String,
    },
    /// A value longer than its kind allows once canonical.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl ParseError {
    /// Every code [`ParseError::reason`] can return.
    pub const REASONS: &'static [&'static str] = &[
        "empty",
        "too_long",
        "unknown_kind",
        "unrecognised",
        "bad_hash_length",
        "non_hex",
        "kind_mismatch",
        "bad_ipv4",
        "leading_zero",
        "bad_ipv6",
        "bad_prefix",
        "bad_domain",
        "single_label",
        "numeric_tld",
        "public_suffix",
        "wildcard",
        "bad_idn",
        "bad_email",
        "scheme_missing",
        "bad_url",
        "bad_port",
    ];

    /// A short, stable snake_case code for why the value was rejected (one of
    /// [`ParseError::REASONS`]), for counting rejections by reason in import summaries.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::TooLong { .. } => "too_long",
            ParseError::UnknownKind { .. } => "unknown_kind",
            ParseError::Unrecognised { .. } => "unrecognised",
            ParseError::Invalid { problem, .. } => problem.reason(),
        }
    }

    /// The problem, for an [`ParseError::Invalid`] value.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ParseError::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

impl Problem {
    /// The [`ParseError::reason`] code of this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::HashLength { .. } => "bad_hash_length",
            Problem::NonHex { .. } => "non_hex",
            Problem::HashPrefix { .. } => "kind_mismatch",
            Problem::OctetCount { .. }
            | Problem::EmptyOctet { .. }
            | Problem::OctetNotDecimal { .. }
            | Problem::OctetAbove255 { .. }
            | Problem::IpWithPort => "bad_ipv4",
            Problem::LeadingZero { .. } => "leading_zero",
            Problem::Ipv6Syntax { .. } | Problem::ZoneIndex | Problem::Ipv6WithoutBrackets => {
                "bad_ipv6"
            }
            Problem::PrefixLength { .. } | Problem::Netmask { .. } => "bad_prefix",
            Problem::EmptyLabel
            | Problem::LabelTooLong { .. }
            | Problem::LabelChar { .. }
            | Problem::LabelHyphen { .. }
            | Problem::UnderscoreInTld { .. } => "bad_domain",
            Problem::DomainTooLong { .. } | Problem::TooLong { .. } => "too_long",
            Problem::SingleLabel => "single_label",
            Problem::NumericTld { .. } => "numeric_tld",
            Problem::PublicSuffix => "public_suffix",
            Problem::Wildcard { .. } => "wildcard",
            Problem::Idna => "bad_idn",
            Problem::MissingAt
            | Problem::LocalPart { .. }
            | Problem::LocalPartChar { .. }
            | Problem::DomainLiteral => "bad_email",
            Problem::SchemeMissing => "scheme_missing",
            Problem::EmptyHost | Problem::AfterBracket => "bad_url",
            Problem::Port { .. } => "bad_port",
        }
    }
}

impl std::error::Error for ParseError {}

/// "an IPv4 address", "a domain", …: the noun phrase after "is not".
fn a_kind(kind: Option<Kind>) -> &'static str {
    match kind {
        None => "a hash",
        Some(Kind::Url) => "a URL",
        Some(Kind::Domain) => "a domain",
        Some(Kind::Ipv4) => "an IPv4 address",
        Some(Kind::Ipv6) => "an IPv6 address",
        Some(Kind::Cidr) => "a CIDR range",
        Some(Kind::Md5) => "an md5",
        Some(Kind::Sha1) => "a sha1",
        Some(Kind::Sha256) => "a sha256",
        Some(Kind::Email) => "an e-mail address",
    }
}

/// The name of the part of a value of `kind` that [`ParseError::Invalid::part`] holds.
fn part_name(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Email) => "domain",
        _ => "host",
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str(
                "the value is empty (nothing is left once spaces, quotes and brackets are removed)",
            ),
            ParseError::TooLong { len, max } => {
                write!(
                    f,
                    "the value is {len} bytes long; at most {max} are accepted"
                )
            }
            ParseError::UnknownKind { name } => write!(
                f,
                "unknown indicator kind {name:?}; expected one of url, domain, ipv4, ipv6, cidr, \
                 md5, sha1, sha256, email"
            ),
            ParseError::Unrecognised { value } => write!(
                f,
                "{value:?} is not an indicator: it is not a hash, IP address, CIDR range, e-mail \
                 address, URL or domain"
            ),
            ParseError::Invalid {
                value,
                kind,
                part,
                problem,
            } => match (problem, part) {
                (Problem::PublicSuffix, None) => write!(
                    f,
                    "{value:?} is a public suffix, not a domain; give a name below it such as \
                     example.{value}"
                ),
                (Problem::PublicSuffix, Some(part)) => write!(
                    f,
                    "{value:?} is not {}: its {} {part:?} is a public suffix; give a name below \
                     it such as example.{part}",
                    a_kind(*kind),
                    part_name(*kind),
                ),
                (_, None) => write!(f, "{value:?} is not {}: {problem}", a_kind(*kind)),
                (_, Some(part)) => write!(
                    f,
                    "{value:?} is not {}: in its {} {part:?}, {problem}",
                    a_kind(*kind),
                    part_name(*kind),
                ),
            },
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::HashLength {
                expected: Some(n),
                found,
            } => write!(f, "expected {n} hex digits, found {found}"),
            Problem::HashLength {
                expected: None,
                found,
            } => write!(
                f,
                "expected 32 (md5), 40 (sha1) or 64 (sha256) hex digits, found {found}"
            ),
            Problem::NonHex { position, found } => {
                write!(f, "character {position} ({found:?}) is not a hex digit")
            }
            Problem::HashPrefix { prefix } => write!(
                f,
                "its prefix says {prefix}; declare it as {prefix} or remove the prefix"
            ),
            Problem::OctetCount { found } => {
                write!(f, "expected 4 octets separated by dots, found {found}")
            }
            Problem::EmptyOctet { index } => write!(f, "octet {index} is empty"),
            Problem::OctetNotDecimal { index, text } => {
                write!(f, "octet {index} ({text}) is not a decimal number")
            }
            Problem::OctetAbove255 { index, text } => {
                write!(f, "octet {index} ({text}) is above 255")
            }
            Problem::LeadingZero { index, text } => write!(
                f,
                "octet {index} ({text}) has a leading zero, which some tools read as octal; \
                 write it without leading zeros"
            ),
            Problem::IpWithPort => f.write_str(
                "it has a port; an IP indicator has none (declare it as a url to keep the port)",
            ),
            Problem::Ipv6Syntax { detail } => f.write_str(detail),
            Problem::ZoneIndex => f.write_str(
                "it has a zone index (%…), which only means something on one machine; remove it",
            ),
            Problem::Ipv6WithoutBrackets => {
                f.write_str("an IPv6 host must be written in brackets, as in http://[2001:db8::1]/")
            }
            Problem::PrefixLength { text, max } => {
                write!(f, "prefix length /{text} is not a number from 0 to {max}")
            }
            Problem::Netmask { text } => write!(
                f,
                "netmask {text} is not a contiguous IPv4 netmask such as 255.255.255.0"
            ),
            Problem::EmptyLabel => {
                f.write_str("it has an empty label (two dots in a row, or a dot at the start)")
            }
            Problem::LabelTooLong { label, len } => write!(
                f,
                "label {label:?} is {len} characters long; at most 63 are allowed"
            ),
            Problem::LabelChar { label, found } => write!(
                f,
                "label {label:?} contains {found:?}; a domain has only letters, digits, hyphens \
                 and underscores"
            ),
            Problem::LabelHyphen { label } => {
                write!(f, "label {label:?} starts or ends with a hyphen")
            }
            Problem::UnderscoreInTld { label } => write!(
                f,
                "the top-level label {label:?} contains '_'; underscores are allowed only below it"
            ),
            Problem::DomainTooLong { len } => {
                write!(f, "it is {len} characters long; a domain has at most 253")
            }
            Problem::SingleLabel => f.write_str(
                "it has a single label; a domain needs at least two, such as example.com",
            ),
            Problem::NumericTld { tld } => write!(
                f,
                "its last label ({tld}) is all digits, which no top-level domain is (an IP \
                 address? declare it as ipv4)"
            ),
            Problem::PublicSuffix => {
                f.write_str("it is a public suffix; give a name below it such as example.com")
            }
            Problem::Wildcard { suggestion } => write!(
                f,
                "wildcards and leading dots are not indicators; give the domain itself, \
                 {suggestion:?}"
            ),
            Problem::Idna => f.write_str(
                "it is not a valid internationalised name under UTS-46 (a disallowed character, \
                 or a malformed xn-- label)",
            ),
            Problem::MissingAt => f.write_str("it has no @"),
            Problem::LocalPart { detail } => write!(f, "the part before the @ {detail}"),
            Problem::LocalPartChar { found } => write!(
                f,
                "the part before the @ contains {found:?}, which iocx does not accept in an \
                 e-mail address"
            ),
            Problem::DomainLiteral => f.write_str(
                "the part after the @ is an address literal ([…]); only domain names are accepted",
            ),
            Problem::SchemeMissing => f.write_str(
                "it has no scheme and the URL scheme policy is \"reject\"; write it as http://… \
                 or https://…",
            ),
            Problem::EmptyHost => f.write_str("it has no host"),
            Problem::AfterBracket => {
                f.write_str("text after the bracketed IPv6 host is not a port (:8080)")
            }
            Problem::Port { text } => write!(f, "port {text:?} is not a number from 0 to 65535"),
            Problem::TooLong { len, max } => write!(
                f,
                "it is {len} bytes long once canonical; at most {max} are accepted"
            ),
        }
    }
}

impl From<UnknownKind> for ParseError {
    fn from(e: UnknownKind) -> ParseError {
        ParseError::UnknownKind { name: e.0 }
    }
}

/// A failure inside one kind's parser, before the raw value is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Detection found nothing.
    Unrecognised,
    /// See [`ParseError::Invalid`].
    Invalid {
        kind: Option<Kind>,
        part: Option<String>,
        problem: Problem,
    },
}

impl Fail {
    /// A problem with the whole value read as `kind`.
    pub(crate) fn of(kind: Kind, problem: Problem) -> Fail {
        Fail::Invalid {
            kind: Some(kind),
            part: None,
            problem,
        }
    }

    /// A problem with `part` of a value read as `kind`.
    pub(crate) fn in_part(kind: Kind, part: &str, problem: Problem) -> Fail {
        Fail::Invalid {
            kind: Some(kind),
            part: Some(shorten(part)),
            problem,
        }
    }

    /// The public error for raw value `raw`.
    pub(crate) fn into_error(self, raw: &str) -> ParseError {
        let value = shorten(raw.trim());
        match self {
            Fail::Unrecognised => ParseError::Unrecognised { value },
            Fail::Invalid {
                kind,
                part,
                problem,
            } => ParseError::Invalid {
                value,
                kind,
                part,
                problem,
            },
        }
    }
}

/// `text` cut to at most [`MAX_SHOWN`] bytes at a character boundary, with "…" when cut.
pub(crate) fn shorten(text: &str) -> String {
    if text.len() <= MAX_SHOWN {
        return text.to_owned();
    }
    let mut end = MAX_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = String::with_capacity(end + 3);
    s.push_str(&text[..end]);
    s.push('…');
    s
}
