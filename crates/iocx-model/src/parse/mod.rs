//! Parsing raw text into canonical indicators.
//!
//! [`parse`] refangs the raw text, then detects its kind (or checks the declared one), and
//! returns the canonical indicator: two spellings of one IoC give the same [`Indicator`], and
//! parsing a canonical value gives it back unchanged. `docs/indicators.md` describes every rule
//! for users; this module keeps the reasons for them beside the code.
//!
//! The pipeline:
//! 1. Refang (`refang.rs`): trim, unwrap `<…>`/`"…"`/`[…]`, undo `hxxp`, `[.]`, `(at)` and their
//!    relatives, to a fixed point.
//! 2. Detect the kind (in the fixed order documented on [`parse`]), or take the declared
//!    one. Detection only chooses which kind's parser runs; the parsers are the same under
//!    both, which is what makes "detect, then parse as the detected kind" agree with
//!    detection.
//! 3. Canonicalise with that kind's rules (`hash.rs`, `ip.rs`, `domain.rs`, `email.rs`,
//!    `url.rs`).
//!
//! Design decisions:
//! - The IP kinds correct one another: a value declared `ipv4` that is IPv6 comes back as
//!   `ipv6`, a `/32` as the plain address, a network as `cidr` (vendors label IP fields
//!   loosely). Hash kinds do not: a 64-digit value declared `md5` is an error, since a wrong
//!   hash label usually means a shifted column.
//! - Speed: values already in canonical form (lowercase hashes, lowercase ASCII domains,
//!   dotted quads, clean URLs) are checked in one pass and copied once into the indicator;
//!   IDNA runs only for labels that are non-ASCII or start with `xn--`.
//! - Limits: [`MAX_RAW_LEN`] bytes of raw text, [`MAX_URL_LEN`] bytes of canonical URL,
//!   253 characters of domain, 254 bytes of e-mail address.

mod domain;
mod email;
mod error;
mod hash;
mod invariants;
mod ip;
mod refang;
#[cfg(test)]
mod tests;
mod url;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{Indicator, Kind};

pub use domain::MAX_DOMAIN_LEN;
pub use email::MAX_EMAIL_LEN;
pub use error::{MAX_SHOWN, ParseError, Problem};
#[doc(hidden)]
pub use invariants::check_invariants;
pub use url::MAX_URL_LEN;

use error::Fail;

/// The longest raw value accepted, in bytes, before any refanging: longer text is not one
/// indicator, and the cap bounds the work one value can cost.
pub const MAX_RAW_LEN: usize = 8 * 1024;

/// What to do with a URL that has no scheme (`evil.example/path`), as Trend Vision One's and
/// ThreatQ's "URL scheme handling" options do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlSchemePolicy {
    /// Prefix `http://` (the default).
    #[default]
    Http,
    /// Prefix `https://`.
    Https,
    /// Produce both the `http://` and the `https://` URL.
    Both,
    /// Reject the value.
    Reject,
}

/// Options of the parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Scheme-less URL handling.
    pub url_scheme: UrlSchemePolicy,
}

/// The result of parsing one raw value: one indicator, or two when a scheme-less URL is
/// expanded under [`UrlSchemePolicy::Both`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One indicator.
    One(Indicator),
    /// Two indicators (`http://…` then `https://…`).
    Two(Indicator, Indicator),
}

impl Parsed {
    /// The indicators, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Indicator> {
        let (first, second) = match self {
            Parsed::One(a) => (a, None),
            Parsed::Two(a, b) => (a, Some(b)),
        };
        std::iter::once(first).chain(second)
    }

    /// The first (for [`Parsed::One`], the only) indicator.
    pub fn first(&self) -> &Indicator {
        match self {
            Parsed::One(a) | Parsed::Two(a, _) => a,
        }
    }

    /// How many indicators: 1 or 2.
    pub fn len(&self) -> usize {
        match self {
            Parsed::One(_) => 1,
            Parsed::Two(..) => 2,
        }
    }

    /// Always false: a parse yields at least one indicator.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl IntoIterator for Parsed {
    type Item = Indicator;
    type IntoIter = std::iter::Chain<std::iter::Once<Indicator>, std::option::IntoIter<Indicator>>;

    fn into_iter(self) -> Self::IntoIter {
        let (first, second) = match self {
            Parsed::One(a) => (a, None),
            Parsed::Two(a, b) => (a, Some(b)),
        };
        std::iter::once(first).chain(second)
    }
}

/// Parses `raw` (refanging it first) as `declared`, or detects its kind when `declared` is
/// `None`, and returns the canonical indicator(s).
///
/// A declared IP kind (`ipv4`, `ipv6`, `cidr`) is corrected to the IP kind the value is; any
/// other declared kind is a requirement. Without a declared kind, detection tries these in
/// order, and the first that matches decides which kind's parser runs:
///
/// 1. **hash**: no dot or colon, and either all hex digits and at least 16 long, or letters and
///    digits exactly 32, 40 or 64 long (so a typo in a sha256 reads as a bad hash, not a bad
///    domain); or a hash prefix (`sha256:`) followed by text with no `/`, `.` or `:`.
///    The length then picks md5, sha1 or sha256.
/// 2. **email** with a `mailto:` prefix.
/// 3. **url** with a scheme: `letters://`.
/// 4. **ip / cidr**: digits and dots with a dot (IPv4), or hex digits, dots and at least two
///    colons (IPv6), optionally in brackets and followed by `/prefix` or `/netmask`. The result
///    is `ipv4`, `ipv6` or `cidr` by what the value is.
/// 5. **email**: an `@` and no `/`, `?`, `#` or `:`.
/// 6. **url** without a scheme: a `/`, `?`, `#` or `:` (a path, query, fragment or port);
///    the [`UrlSchemePolicy`] decides the scheme.
/// 7. **domain**: everything else. A text without a dot that is not a public suffix is not
///    reported as a bad domain but as unrecognised.
///
/// Canonical values of each kind fall in their own kind's step (no canonical domain has a
/// colon or is all digits and dots; no canonical e-mail has `/`), which is what makes detection
/// of a canonical value give the same indicator back.
///
/// # Errors
/// A [`ParseError`] with a reason a user can act on: see [`ParseError::reason`] for the codes.
pub fn parse(
    raw: &str,
    declared: Option<Kind>,
    options: &ParseOptions,
) -> Result<Parsed, ParseError> {
    if raw.len() > MAX_RAW_LEN {
        return Err(ParseError::TooLong {
            len: raw.len(),
            max: MAX_RAW_LEN,
        });
    }
    // One pass classifies the bytes; when it shows nothing to refang (the common case in bulk
    // feeds) the same classes serve detection, and refanging costs nothing more.
    let shape = Shape::of(raw);
    let (text, shape) = if refang::is_clean(raw, shape.any & REFANG != 0) {
        debug_assert_eq!(
            refang::refang(raw),
            raw,
            "is_clean promised nothing to refang"
        );
        (Cow::Borrowed(raw), shape)
    } else {
        let text = refang::refang(raw);
        let shape = Shape::of(&text);
        (text, shape)
    };
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let result = match declared {
        Some(kind) => parse_as(&text, &shape, kind, options),
        None => detect(&text, &shape, options),
    };
    result.map_err(|fail| fail.into_error(raw))
}

/// Parses refanged `s`, whose bytes have `shape`, with the parser of `kind`.
fn parse_as(s: &str, shape: &Shape, kind: Kind, options: &ParseOptions) -> Result<Parsed, Fail> {
    match kind {
        Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
            if shape.all & HEX != 0
                && shape.any & UPPER == 0
                && let Some(parsed) = hash::already_canonical(s)
                && parsed.first().kind == kind
            {
                return Ok(parsed);
            }
            hash::parse(s, Some(kind))
        }
        Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr => ip::parse(s),
        Kind::Domain => domain::parse(s),
        Kind::Email => email::parse(s),
        Kind::Url => url::parse(s, options.url_scheme),
    }
}

/// Byte classes for [`Shape`].
const HEX: u16 = 1;
const ALNUM: u16 = 2;
const DOT: u16 = 4;
const COLON: u16 = 8;
const AT: u16 = 16;
/// `/`, `?` or `#`: the start of a URL path, query or fragment.
const URL_PART: u16 = 32;
/// A decimal digit or a dot, as in a dotted quad.
const V4: u16 = 64;
/// `A`–`Z`.
const UPPER: u16 = 128;
/// A byte that refanging acts on wherever it is: an opening bracket (`[.]`), a tab or a line
/// break.
const REFANG: u16 = 256;

/// The class bits of every byte value.
static CLASS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_digit() {
            HEX | ALNUM | V4
        } else if c.is_ascii_hexdigit() {
            HEX | ALNUM | if c.is_ascii_uppercase() { UPPER } else { 0 }
        } else if c.is_ascii_alphanumeric() {
            ALNUM | if c.is_ascii_uppercase() { UPPER } else { 0 }
        } else {
            match c {
                b'.' => DOT | V4,
                b':' => COLON,
                b'@' => AT,
                b'/' | b'?' | b'#' => URL_PART,
                b'[' | b'(' | b'{' | b'\t' | b'\n' | b'\r' => REFANG,
                _ => 0,
            }
        };
        b += 1;
    }
    table
};

/// Which byte classes a text has (`any`) and which all its bytes share (`all`), from one pass.
struct Shape {
    any: u16,
    all: u16,
}

impl Shape {
    fn of(s: &str) -> Shape {
        let mut any = 0;
        let mut all = u16::MAX;
        for &b in s.as_bytes() {
            let class = CLASS[usize::from(b)];
            any |= class;
            all &= class;
        }
        Shape { any, all }
    }
}

/// Detects the kind of refanged, non-empty `s` and parses it as that kind, in the order
/// documented on [`parse`].
fn detect(s: &str, shape: &Shape, options: &ParseOptions) -> Result<Parsed, Fail> {
    if shape.any & (DOT | COLON) == 0
        && ((shape.all & HEX != 0 && s.len() >= 16)
            || (shape.all & ALNUM != 0 && matches!(s.len(), 32 | 40 | 64)))
    {
        if shape.all & HEX != 0
            && shape.any & UPPER == 0
            && let Some(parsed) = hash::already_canonical(s)
        {
            return Ok(parsed);
        }
        return hash::parse(s, None);
    }
    // Steps 1 (prefixed hash), 2 and 3 all need a colon; most values have none.
    if shape.any & COLON != 0 {
        if let Some((_, rest)) = hash::split_prefix(s)
            && !rest.contains(['/', '.', ':'])
        {
            return hash::parse(s, None);
        }
        if email::has_mailto(s) && !s[7..].starts_with("//") {
            return email::parse(s);
        }
        if url::split_scheme(s).is_some() {
            return url::parse(s, options.url_scheme);
        }
    }
    // An IP or CIDR has a colon (IPv6), a slash (a prefix), or is all digits and dots.
    let ip_shaped =
        shape.any & (COLON | URL_PART) != 0 || (shape.all & V4 != 0 && shape.any & DOT != 0);
    if ip_shaped && ip::looks_like(s) {
        return ip::parse(s);
    }
    if shape.any & AT != 0 && shape.any & (URL_PART | COLON) == 0 {
        return email::parse(s);
    }
    if shape.any & (URL_PART | COLON) != 0 {
        return url::parse(s, options.url_scheme);
    }
    match domain::parse(s) {
        Err(Fail::Invalid { problem: ref p, .. })
            if shape.any & DOT == 0 && *p != Problem::PublicSuffix =>
        {
            Err(Fail::Unrecognised)
        }
        other => other,
    }
}
