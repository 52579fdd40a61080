//! URLs: iocx's own canonicaliser.
//!
//! It is written here rather than taken from the `url` crate for two reasons: speed (URLs are a
//! large share of bulk feeds, and this builds the canonical text in one pass and one
//! allocation) and control over the rules, which differ from a browser's where an indicator
//! store needs them to (public-suffix hosts allowed, userinfo dropped, obfuscated IPv4 hosts
//! rejected rather than guessed). The rules are listed in `docs/indicators.md`; the property
//! that matters most is that the canonical form of a canonical URL is itself.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::{Indicator, Kind};

use super::domain::{self, Suffix};
use super::error::{Fail, Problem};
use super::ip;
use super::{Parsed, UrlSchemePolicy};

/// The longest canonical URL, in bytes. Browsers and gateways cope with longer ones, but an
/// indicator that long is nearly always a tracking URL or junk, and it bounds storage per row.
pub const MAX_URL_LEN: usize = 4096;

/// Splits `scheme://rest`, with the scheme as RFC 3986 defines it (a letter, then letters,
/// digits, `+`, `-` or `.`).
pub(crate) fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    bytes[end..]
        .starts_with(b"://")
        .then(|| (&s[..end], &s[end + 3..]))
}

/// The port a scheme uses when none is given, which the canonical form leaves out.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// Parses `s` as a URL; a scheme-less one (`evil.example/path`) is handled by `policy`.
pub(crate) fn parse(s: &str, policy: UrlSchemePolicy) -> Result<Parsed, Fail> {
    if let Some((scheme, rest)) = split_scheme(s) {
        return build(scheme, rest).map(Parsed::One);
    }
    // A protocol-relative reference (`//evil.example/x`) is scheme-less too.
    let rest = s.strip_prefix("//").unwrap_or(s);
    match policy {
        UrlSchemePolicy::Http => build("http", rest).map(Parsed::One),
        UrlSchemePolicy::Https => build("https", rest).map(Parsed::One),
        UrlSchemePolicy::Both => Ok(Parsed::Two(build("http", rest)?, build("https", rest)?)),
        UrlSchemePolicy::Reject => Err(Fail::of(Kind::Url, Problem::SchemeMissing)),
    }
}

/// The canonical URL with `scheme` and the text after `://`.
fn build(scheme: &str, rest: &str) -> Result<Indicator, Fail> {
    // Browsers end the authority at a backslash too, so `http://evil.example\@good.example/`
    // goes to evil.example; reading it any other way would hide the real host.
    let mut auth_end = rest.len();
    let mut last_at = None;
    for (i, b) in rest.bytes().enumerate() {
        match b {
            b'/' | b'?' | b'#' | b'\\' => {
                auth_end = i;
                break;
            }
            b'@' => last_at = Some(i),
            _ => {}
        }
    }
    let tail = &rest[auth_end..];
    // Userinfo is dropped: it is never sent in the request, so gateways never see it, and
    // `http://bank.example@evil.example/` is the same threat as `http://evil.example/`.
    let host_port = &rest[last_at.map_or(0, |at| at + 1)..auth_end];
    let (host_text, port_text) = split_port(host_port)?;
    let host = canonical_host(host_text).map_err(|p| Fail::in_part(Kind::Url, host_text, p))?;
    let scheme: Cow<str> = if scheme.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(scheme.to_ascii_lowercase())
    } else {
        Cow::Borrowed(scheme)
    };
    let port = match port_text {
        Some(text) => parse_port(text)?,
        None => None,
    }
    .filter(|p| Some(*p) != default_port(&scheme));

    let (path, query) = match memchr::memchr2(b'?', b'#', tail.as_bytes()) {
        None => (tail, None),
        Some(i) if tail.as_bytes()[i] == b'#' => (&tail[..i], None),
        Some(i) => {
            let query = &tail[i + 1..];
            let end = memchr::memchr(b'#', query.as_bytes()).unwrap_or(query.len());
            (&tail[..i], Some(&query[..end]))
        }
    };

    let mut out = String::with_capacity(scheme.len() + 3 + host.len() + 6 + tail.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port {
        // Writing to a String cannot fail.
        let _ = write!(out, ":{port}");
    }
    if path.is_empty() {
        out.push('/');
    } else {
        push_encoded(&mut out, path, Part::Path);
    }
    if let Some(query) = query
        && !query.is_empty()
    {
        out.push('?');
        push_encoded(&mut out, query, Part::Query);
    }
    if out.len() > MAX_URL_LEN {
        return Err(Fail::of(
            Kind::Url,
            Problem::TooLong {
                len: out.len(),
                max: MAX_URL_LEN,
            },
        ));
    }
    Ok(Indicator::new(Kind::Url, out))
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_port(host_port: &str) -> Result<(&str, Option<&str>), Fail> {
    if host_port.starts_with('[') {
        let Some(close) = host_port.find(']') else {
            return Err(Fail::in_part(
                Kind::Url,
                host_port,
                Problem::Ipv6Syntax {
                    detail: "the '[' before the IPv6 host is not closed".to_owned(),
                },
            ));
        };
        let (host, after) = host_port.split_at(close + 1);
        return match after.strip_prefix(':') {
            _ if after.is_empty() => Ok((host, None)),
            Some(port) => Ok((host, Some(port))),
            None => Err(Fail::in_part(Kind::Url, host_port, Problem::AfterBracket)),
        };
    }
    let bytes = host_port.as_bytes();
    match memchr::memrchr(b':', bytes) {
        None => Ok((host_port, None)),
        Some(i) if memchr::memchr(b':', &bytes[..i]).is_some() => Err(Fail::in_part(
            Kind::Url,
            host_port,
            Problem::Ipv6WithoutBrackets,
        )),
        Some(i) => Ok((&host_port[..i], Some(&host_port[i + 1..]))),
    }
}

/// A port: decimal, leading zeros ignored, at most 65535; empty means none (as browsers read
/// `http://host:/`).
fn parse_port(text: &str) -> Result<Option<u16>, Fail> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Fail::of(
            Kind::Url,
            Problem::Port {
                text: super::error::shorten(text),
            },
        )
    };
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(bad());
    }
    if digits.is_empty() {
        return Ok(Some(0));
    }
    digits.parse::<u16>().map(Some).map_err(|_| bad())
}

/// The canonical host: an IPv6 literal in brackets (RFC 5952), an IPv4 address (also for
/// IPv4-mapped IPv6), or a domain name canonical as for `domain` but allowed to be a public
/// suffix.
fn canonical_host(host: &str) -> Result<Cow<'_, str>, Problem> {
    if host.is_empty() {
        return Err(Problem::EmptyHost);
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let addr = ip::parse_v6(inner)?;
        return Ok(Cow::Owned(match addr.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{addr}]"),
        }));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Strictly parsed dotted quads are already canonical text. Integer, octal and hex
        // hosts (`http://2130706433/`) are rejected here: tools disagree about them.
        ip::parse_v4(host)?;
        return Ok(Cow::Borrowed(host));
    }
    domain::canonical(host, Suffix::Allow)
}

/// Which part of a URL is being encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Query,
}

/// Bits of [`KEEP`]: the byte stands for itself in a path, in a query.
const KEEP_PATH: u8 = 1;
const KEEP_QUERY: u8 = 2;

/// For each byte, where it stands for itself: RFC 3986's `pchar` and `/` in a path and a
/// query, and `?` in a query too.
static KEEP: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            )
        {
            table[b] = KEEP_PATH | KEEP_QUERY;
        } else if c == b'?' {
            table[b] = KEEP_QUERY;
        }
        b += 1;
    }
    table
};

/// Whether byte `b` stands for itself in `part`.
fn keep(b: u8, part: Part) -> bool {
    let bit = match part {
        Part::Path => KEEP_PATH,
        Part::Query => KEEP_QUERY,
    };
    KEEP[usize::from(b)] & bit != 0
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `text` to `out` with every character RFC 3986 does not allow in `part`
/// percent-encoded (as UTF-8, uppercase hex), the hex digits of existing escapes uppercased,
/// and a backslash in a path read as `/` (as browsers do). Nothing is decoded, so applying
/// this to its own output changes nothing.
fn push_encoded(out: &mut String, text: &str, part: Part) {
    let bytes = text.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if keep(b, part) {
            i += 1;
            continue;
        }
        // `i` is at a character boundary: runs hold ASCII only, and every branch below steps
        // over whole characters.
        out.push_str(&text[run..i]);
        if b == b'%' {
            match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push('%');
                    out.push(char::from(h.to_ascii_uppercase()));
                    out.push(char::from(l.to_ascii_uppercase()));
                    i += 3;
                }
                // A stray `%` stays as it is, as browsers leave it; encoding it instead would
                // also be stable, but would change what a gateway compares against.
                _ => {
                    out.push('%');
                    i += 1;
                }
            }
        } else if b == b'\\' && part == Part::Path {
            out.push('/');
            i += 1;
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            for &byte in &bytes[i..i + len] {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(byte & 0xf)]));
            }
            i += len;
        }
        run = i;
    }
    out.push_str(&text[run..]);
}
