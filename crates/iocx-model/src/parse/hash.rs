//! File hashes: md5, sha1 and sha256 as lowercase hex.

use crate::{Indicator, Kind};

use super::Parsed;
use super::error::{Fail, Problem};

/// Prefixes some tools write before a hash (`sha256:…`, `MD5:…`), with the kind each names.
const PREFIXES: [(&str, Kind); 5] = [
    ("md5:", Kind::Md5),
    ("sha1:", Kind::Sha1),
    ("sha-1:", Kind::Sha1),
    ("sha256:", Kind::Sha256),
    ("sha-256:", Kind::Sha256),
];

/// The kind named by a hash prefix of `s`, and the text after it.
pub(crate) fn split_prefix(s: &str) -> Option<(Kind, &str)> {
    let bytes = s.as_bytes();
    // Every prefix has its colon within the first 8 bytes; most hashes have none.
    memchr::memchr(b':', &bytes[..bytes.len().min(8)])?;
    PREFIXES.iter().find_map(|(prefix, kind)| {
        (bytes.len() >= prefix.len()
            && bytes[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))
        .then(|| (*kind, &s[prefix.len()..]))
    })
}

const NOT_HEX: u8 = 1;
const UPPER_HEX: u8 = 2;

/// [`NOT_HEX`] or [`UPPER_HEX`] for each byte value, 0 for `0-9a-f`.
static HEX_FLAGS: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_digit() || matches!(c, b'a'..=b'f') {
            table[b] = 0;
        } else if matches!(c, b'A'..=b'F') {
            table[b] = UPPER_HEX;
        }
        b += 1;
    }
    table
};

/// The hash kind with `len` hex digits.
fn kind_of_len(len: usize) -> Option<Kind> {
    match len {
        32 => Some(Kind::Md5),
        40 => Some(Kind::Sha1),
        64 => Some(Kind::Sha256),
        _ => None,
    }
}

/// The hex length of a hash kind.
fn len_of(kind: Kind) -> usize {
    match kind {
        Kind::Md5 => 32,
        Kind::Sha1 => 40,
        _ => 64,
    }
}

/// The indicator for `s` when the caller has checked it is all lowercase hex digits, without
/// checking again; `None` for a length no hash kind has. Gives what [`parse`] gives.
pub(crate) fn already_canonical(s: &str) -> Option<Parsed> {
    let kind = kind_of_len(s.len())?;
    Some(Parsed::One(Indicator::new(kind, s)))
}

/// Parses `s` as a hash of kind `declared`, or of the kind its prefix or length says.
///
/// Checks run in the order a user fixes them: a prefix that contradicts the declared kind,
/// then a non-hex character, then the length.
pub(crate) fn parse(s: &str, declared: Option<Kind>) -> Result<Parsed, Fail> {
    let (prefix, digits) = match split_prefix(s) {
        Some((kind, rest)) => (Some(kind), rest),
        None => (None, s),
    };
    let error_kind = declared.or(prefix).or_else(|| kind_of_len(digits.len()));
    if let (Some(declared), Some(prefix)) = (declared, prefix)
        && declared != prefix
    {
        return Err(Fail::of(declared, Problem::HashPrefix { prefix }));
    }
    // One branch-free pass over the bytes: bit 1 marks a non-hex byte, bit 2 an uppercase
    // hex digit. Only a failure pays for finding the character.
    let flags = digits
        .bytes()
        .fold(0u8, |acc, b| acc | HEX_FLAGS[usize::from(b)]);
    if flags & NOT_HEX != 0 {
        let (i, found) = digits
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
            .unwrap_or((0, '?'));
        return Err(Fail::Invalid {
            kind: error_kind,
            part: None,
            problem: Problem::NonHex {
                position: i + 1,
                found,
            },
        });
    }
    let lowercase = flags & UPPER_HEX == 0;
    let kind = match error_kind {
        Some(kind) if len_of(kind) == digits.len() => kind,
        kind => {
            return Err(Fail::Invalid {
                kind,
                part: None,
                problem: Problem::HashLength {
                    expected: kind.map(len_of),
                    found: digits.len(),
                },
            });
        }
    };
    let value = if lowercase {
        digits.to_owned()
    } else {
        digits.to_ascii_lowercase()
    };
    Ok(Parsed::One(Indicator { kind, value }))
}
