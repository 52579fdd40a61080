//! Domain names: for the `domain` kind, e-mail domains and URL hosts.

use std::borrow::Cow;

use idna::AsciiDenyList;

use crate::{Indicator, Kind};

use super::Parsed;
use super::error::{Fail, Problem, shorten};

/// The longest domain, in characters, without the trailing dot (RFC 1035's 255 octets on the
/// wire).
pub const MAX_DOMAIN_LEN: usize = 253;

/// The longest label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// Whether a bare public suffix is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suffix {
    /// Reject `co.uk`: a domain or e-mail indicator must name something below a suffix, or it
    /// would match a whole registry's worth of names.
    Reject,
    /// Accept it: as a URL host (`http://github.io/`) it names one web site.
    Allow,
}

/// The canonical form of domain name `d`: lowercase ASCII, internationalised labels in
/// punycode (UTS-46, non-transitional), no trailing dot; checked against the label rules.
///
/// Borrows `d` when it is already canonical: plain lowercase ASCII without `xn--` labels skips
/// IDNA entirely, which is what keeps bulk ingest of domains fast.
pub(crate) fn canonical(d: &str, suffix: Suffix) -> Result<Cow<'_, str>, Problem> {
    // The fast path: one pass proves `d` is lowercase ASCII labels without `xn--`, which is
    // what the slow path below would leave unchanged, so only the name-wide rules remain.
    if let Some(labels) = scan_labels(d.as_bytes(), true) {
        check_name(d, labels, suffix)?;
        return Ok(Cow::Borrowed(d));
    }
    let mut name = if !d.is_ascii() || has_xn_label(d) {
        // UTS-46 maps (case, width, compatibility forms, the ideographic full stop), checks
        // and punycodes. The ASCII deny list is empty because iocx applies its own, more
        // permissive rules (underscores) to the ASCII result below.
        idna::domain_to_ascii_cow(d.as_bytes(), AsciiDenyList::EMPTY).map_err(|_| Problem::Idna)?
    } else if d.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(d.to_ascii_lowercase())
    } else {
        Cow::Borrowed(d)
    };
    if name.ends_with('.') {
        name = match name {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..s.len() - 1]),
            Cow::Owned(mut s) => {
                s.pop();
                Cow::Owned(s)
            }
        };
    }
    if let Some(rest) = name.strip_prefix("*.") {
        return Err(Problem::Wildcard {
            suggestion: shorten(rest),
        });
    }
    if let Some(rest) = name.strip_prefix('.')
        && !rest.is_empty()
        && !rest.starts_with('.')
    {
        return Err(Problem::Wildcard {
            suggestion: shorten(rest),
        });
    }
    validate(&name, suffix)?;
    Ok(name)
}

/// Whether a label of `d` starts with the IDNA ACE prefix `xn--` (in any case): such labels
/// go through IDNA so that malformed punycode is rejected and the case is normalised.
fn has_xn_label(d: &str) -> bool {
    let bytes = d.as_bytes();
    let is_ace = |at: usize| {
        bytes
            .get(at..at + 4)
            .is_some_and(|l| l.eq_ignore_ascii_case(b"xn--"))
    };
    is_ace(0) || memchr::memchr_iter(b'.', bytes).any(|dot| is_ace(dot + 1))
}

/// Whether each byte may appear in a canonical label: `a-z`, `0-9`, `-` and `_`.
static LABEL_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// Where the labels of `name` are: how many, and where the last one starts.
#[derive(Clone, Copy)]
struct Labels {
    count: usize,
    last_start: usize,
}

/// The [`Labels`] of `name` when every label is 1–63 bytes of `[a-z0-9_-]` without a hyphen
/// at either end (and, with `reject_ace`, does not start with `xn--`), found in one pass;
/// `None` when a rule is broken. Split out because this is the bulk-ingest hot path.
fn scan_labels(name: &[u8], reject_ace: bool) -> Option<Labels> {
    let label_ok = |label: &[u8]| {
        matches!(label, [first, .., last] | [first @ last]
            if label.len() <= MAX_LABEL_LEN && *first != b'-' && *last != b'-')
            && !(reject_ace && label.starts_with(b"xn--"))
    };
    let mut count = 1;
    let mut start = 0;
    for (i, &b) in name.iter().enumerate() {
        if b == b'.' {
            if !label_ok(&name[start..i]) {
                return None;
            }
            count += 1;
            start = i + 1;
        } else if !LABEL_BYTE[usize::from(b)] {
            return None;
        }
    }
    label_ok(&name[start..]).then_some(Labels {
        count,
        last_start: start,
    })
}

/// The label rule `name` breaks (called once [`scan_labels`] has said it breaks one).
fn label_problem(name: &str) -> Problem {
    for label in name.split('.') {
        if label.is_empty() {
            return Problem::EmptyLabel;
        }
        if label.len() > MAX_LABEL_LEN {
            return Problem::LabelTooLong {
                label: shorten(label),
                len: label.len(),
            };
        }
        if let Some(found) = label
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
        {
            return Problem::LabelChar {
                label: shorten(label),
                found,
            };
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Problem::LabelHyphen {
                label: shorten(label),
            };
        }
    }
    Problem::EmptyLabel
}

/// Checks lowercase ASCII `name` against the label rules and, under [`Suffix::Reject`], the
/// public suffix list.
fn validate(name: &str, suffix: Suffix) -> Result<(), Problem> {
    match scan_labels(name.as_bytes(), false) {
        Some(labels) => check_name(name, labels, suffix),
        None => Err(label_problem(name)),
    }
}

/// The rules on the whole name, once each label is known to be well formed.
fn check_name(name: &str, labels: Labels, suffix: Suffix) -> Result<(), Problem> {
    let tld = &name[labels.last_start..];
    // Underscores are not hostname characters, but DNS carries them and malware uses them
    // (`_dmarc`, `a_b.evil.example`); a top-level label never has one.
    if tld.contains('_') {
        return Err(Problem::UnderscoreInTld {
            label: tld.to_owned(),
        });
    }
    if name.len() > MAX_DOMAIN_LEN {
        return Err(Problem::DomainTooLong { len: name.len() });
    }
    if labels.count == 1 {
        return Err(if suffix == Suffix::Reject && is_public_suffix(name) {
            Problem::PublicSuffix
        } else {
            Problem::SingleLabel
        });
    }
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::NumericTld {
            tld: tld.to_owned(),
        });
    }
    if suffix == Suffix::Reject && is_public_suffix(name) {
        return Err(Problem::PublicSuffix);
    }
    Ok(())
}

/// Whether `name` (lowercase ASCII) is itself a suffix on the public suffix list, ICANN or
/// private section (`com`, `co.uk`, `github.io`).
pub(crate) fn is_public_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes().len() == name.len())
}

/// Parses `s` as a `domain` indicator.
pub(crate) fn parse(s: &str) -> Result<Parsed, Fail> {
    let name = canonical(s, Suffix::Reject).map_err(|p| Fail::of(Kind::Domain, p))?;
    Ok(Parsed::One(Indicator::new(Kind::Domain, name.into_owned())))
}
