//! E-mail addresses.

use crate::{Indicator, Kind};

use super::Parsed;
use super::domain::{self, Suffix};
use super::error::{Fail, Problem};

/// The longest local part (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;

/// The longest address (RFC 5321's path limit less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Whether `s` starts with `mailto:` (any case).
pub(crate) fn has_mailto(s: &str) -> bool {
    s.len() >= 7 && s.as_bytes()[..7].eq_ignore_ascii_case(b"mailto:")
}

/// Parses `s` as an e-mail address: the local part kept exactly as written (mail systems may
/// treat it case-sensitively), the domain canonical like a `domain` indicator.
pub(crate) fn parse(s: &str) -> Result<Parsed, Fail> {
    let fail = |p| Fail::of(Kind::Email, p);
    let body = if has_mailto(s) {
        // A mailto: URL may carry headers (`?subject=…`); they are not part of the address.
        let rest = &s[7..];
        rest.split_once('?').map_or(rest, |(addr, _)| addr)
    } else {
        s
    };
    let (local, domain_text) = body
        .rsplit_once('@')
        .ok_or_else(|| fail(Problem::MissingAt))?;
    check_local(local).map_err(fail)?;
    if domain_text.starts_with('[') {
        return Err(fail(Problem::DomainLiteral));
    }
    let domain = domain::canonical(domain_text, Suffix::Reject).map_err(|p| {
        // `*.` and a leading dot mean "and subdomains" in a domain list; after an @ they are
        // just malformed.
        let p = match p {
            Problem::Wildcard { .. } if domain_text.starts_with('*') => Problem::LabelChar {
                label: "*".to_owned(),
                found: '*',
            },
            Problem::Wildcard { .. } => Problem::EmptyLabel,
            p => p,
        };
        Fail::in_part(Kind::Email, domain_text, p)
    })?;
    let len = local.len() + 1 + domain.len();
    if len > MAX_EMAIL_LEN {
        return Err(fail(Problem::TooLong {
            len,
            max: MAX_EMAIL_LEN,
        }));
    }
    let mut value = String::with_capacity(len);
    value.push_str(local);
    value.push('@');
    value.push_str(&domain);
    Ok(Parsed::One(Indicator::new(Kind::Email, value)))
}

/// Checks a local part: RFC 5322's dot-atom (with RFC 6531's non-ASCII characters), less `/`,
/// `?` and `#`, which would make the address read as a URL path, and without quoted forms.
fn check_local(local: &str) -> Result<(), Problem> {
    let detail = |d| Err(Problem::LocalPart { detail: d });
    if local.is_empty() {
        return detail("is empty");
    }
    if local.len() > MAX_LOCAL_LEN {
        return detail("is longer than 64 bytes");
    }
    if local.starts_with('.') || local.ends_with('.') {
        return detail("starts or ends with a dot");
    }
    if local.contains("..") {
        return detail("has two dots in a row");
    }
    let allowed = |c: char| {
        if c.is_ascii() {
            c.is_ascii_alphanumeric() || "!$%&'*+-=^_`{|}~.".contains(c)
        } else {
            // Invisible characters that refanging trims from the ends of a value would be
            // trimmed from a canonical address that starts with one (`mailto:\u{200b}a@…`),
            // breaking idempotence; no real mailbox uses them.
            !c.is_whitespace() && !c.is_control() && !matches!(c, '\u{feff}' | '\u{200b}')
        }
    };
    match local.chars().find(|c| !allowed(*c)) {
        Some(found) => Err(Problem::LocalPartChar { found }),
        None => Ok(()),
    }
}
