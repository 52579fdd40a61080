//! IP addresses and CIDR ranges.
//!
//! The three kinds correct one another: whatever IP kind was declared, the value comes back as
//! what it is (an IPv6 address declared `ipv4` is `ipv6`; `10.0.0.0/8` declared `ip` is a
//! `cidr`; `1.2.3.4/32` is the `ipv4` address `1.2.3.4`). Vendors label these fields loosely
//! ("ip", "address"), and one spelling must give one indicator whatever the label said.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{Indicator, Kind};

use super::Parsed;
use super::error::{Fail, Problem};

/// Whether `s` looks like an IPv4 address: digits and dots, with at least one dot.
fn v4_shaped(s: &[u8]) -> bool {
    s.contains(&b'.') && s.iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// Whether `s` looks like an IPv6 address: hex digits, colons and dots, with two colons or more
/// (one colon is a host and a port).
fn v6_shaped(s: &[u8]) -> bool {
    let mut colons = 0;
    for b in s {
        match b {
            b':' => colons += 1,
            b'.' | b'%' => {}
            b if b.is_ascii_hexdigit() => {}
            _ => return false,
        }
    }
    colons >= 2
}

/// `s` without one pair of enclosing brackets (`[2001:db8::]/32`).
fn unbracket(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(s)
}

/// Splits `address/prefix` at the first slash.
fn split_prefix(s: &str) -> (&str, Option<&str>) {
    match memchr::memchr(b'/', s.as_bytes()) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Whether kind detection should read `s` as an IP address or CIDR range: an address-shaped
/// text, optionally followed by `/` and a prefix length or dotted netmask.
pub(crate) fn looks_like(s: &str) -> bool {
    let (addr, prefix) = split_prefix(s);
    if let Some(prefix) = prefix
        && (prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    {
        return false;
    }
    let addr = unbracket(addr).as_bytes();
    v4_shaped(addr) || v6_candidate(addr)
}

/// Whether detection should read `s` as (possibly malformed) IPv6: two colons or more, and
/// otherwise only letters, digits, dots and `%`. Looser than [`v6_shaped`] so that a typo
/// (`2001:db8::g`) or a zone (`fe80::1%eth0`) is reported as bad IPv6; nothing else has two
/// colons without an `@` or a `/` (a URL's userinfo or path).
fn v6_candidate(s: &[u8]) -> bool {
    let mut colons = 0;
    for b in s {
        match b {
            b':' => colons += 1,
            b'.' | b'%' => {}
            b if b.is_ascii_alphanumeric() => {}
            _ => return false,
        }
    }
    colons >= 2
}

/// Parses a dotted-quad IPv4 address strictly: exactly four decimal octets, none above 255,
/// none with a leading zero (`010` is 8 to some tools and 10 to others).
pub(crate) fn parse_v4(s: &str) -> Result<Ipv4Addr, Problem> {
    match quick_v4(s.as_bytes()) {
        Some(addr) => Ok(addr),
        None => describe_v4(s),
    }
}

/// [`parse_v4`] in one pass over the bytes, for the valid addresses that bulk feeds are made of;
/// `None` for anything else, which [`describe_v4`] then explains.
fn quick_v4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut index = 0;
    let mut value = 0u16;
    let mut digits = 0;
    for &b in s {
        if b.is_ascii_digit() {
            if digits == 3 || (digits == 1 && value == 0) {
                return None;
            }
            value = value * 10 + u16::from(b - b'0');
            digits += 1;
        } else if b == b'.' && digits > 0 && index < 3 {
            octets[index] = u8::try_from(value).ok()?;
            index += 1;
            value = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if index != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// [`parse_v4`] part by part, saying which part is wrong.
fn describe_v4(s: &str) -> Result<Ipv4Addr, Problem> {
    let mut octets = [0u8; 4];
    let mut count = 0;
    for (i, part) in s.split('.').enumerate() {
        count += 1;
        if i >= 4 {
            continue;
        }
        let index = i + 1;
        if part.is_empty() {
            return Err(Problem::EmptyOctet { index });
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::OctetNotDecimal {
                index,
                text: part.to_owned(),
            });
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(Problem::LeadingZero {
                index,
                text: part.to_owned(),
            });
        }
        match part.parse::<u8>() {
            Ok(n) => octets[i] = n,
            Err(_) => {
                return Err(Problem::OctetAbove255 {
                    index,
                    text: part.to_owned(),
                });
            }
        }
    }
    if count != 4 {
        return Err(Problem::OctetCount { found: count });
    }
    Ok(Ipv4Addr::from(octets))
}

/// Parses IPv6 text (RFC 4291 forms, as the standard library reads them), explaining what is
/// wrong when it is not one.
pub(crate) fn parse_v6(s: &str) -> Result<Ipv6Addr, Problem> {
    if let Ok(addr) = s.parse::<Ipv6Addr>() {
        return Ok(addr);
    }
    Err(diagnose_v6(s))
}

/// Why `s` is not IPv6 text (only called once the standard parser has said it is not).
fn diagnose_v6(s: &str) -> Problem {
    if s.contains('%') {
        return Problem::ZoneIndex;
    }
    let detail = |d: String| Problem::Ipv6Syntax { detail: d };
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_hexdigit() || *c == ':' || *c == '.'))
    {
        return detail(format!("character {c:?} is not allowed in an IPv6 address"));
    }
    if s.matches("::").count() > 1 {
        return detail("it has '::' more than once".to_owned());
    }
    if s.contains(":::") {
        return detail("it has three colons in a row".to_owned());
    }
    let groups: Vec<&str> = s.split(':').collect();
    if let Some(g) = groups.iter().find(|g| g.len() > 4 && !g.contains('.')) {
        return detail(format!("group {g:?} has more than 4 hex digits"));
    }
    if let Some(last) = groups.last()
        && last.contains('.')
        && let Err(p) = parse_v4(last)
    {
        return detail(format!("its embedded IPv4 part {last:?} is invalid: {p}"));
    }
    detail(format!(
        "it has {} groups; an IPv6 address has 8, or fewer with one '::'",
        groups.iter().filter(|g| !g.is_empty()).count()
    ))
}

/// The kind an error about `s` is reported as.
fn error_kind(addr: &str, has_prefix: bool) -> Kind {
    if has_prefix {
        Kind::Cidr
    } else if addr.contains(':') {
        Kind::Ipv6
    } else {
        Kind::Ipv4
    }
}

/// An address of either family, as parsed.
enum Addr {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// Parses an IPv4 or IPv6 address or CIDR range into the IP kind it is (see the module docs).
pub(crate) fn parse(s: &str) -> Result<Parsed, Fail> {
    let (addr_text, prefix_text) = split_prefix(s);
    let bracketed = unbracket(addr_text);
    let fail = |p| Fail::of(error_kind(bracketed, prefix_text.is_some()), p);
    let addr = if bracketed.contains(':') {
        if !v6_shaped(bracketed.as_bytes())
            && let Some((host, _port)) = bracketed.split_once(':')
            && v4_shaped(host.as_bytes())
        {
            return Err(Fail::of(Kind::Ipv4, Problem::IpWithPort));
        }
        Addr::V6(parse_v6(bracketed).map_err(fail)?)
    } else {
        Addr::V4(parse_v4(bracketed).map_err(fail)?)
    };
    let indicator = match (addr, prefix_text) {
        (Addr::V4(a), None) => {
            // The strict parser accepts only canonical dotted quads, so the text is the value.
            if bracketed.len() == addr_text.len() {
                Indicator::new(Kind::Ipv4, bracketed)
            } else {
                v4(a)
            }
        }
        (Addr::V6(a), None) => single_v6(a),
        (Addr::V4(a), Some(p)) => {
            let prefix = v4_prefix(p).map_err(fail)?;
            cidr_v4(a, prefix)
        }
        (Addr::V6(a), Some(p)) => {
            let prefix = prefix_len(p, 128).map_err(fail)?;
            cidr_v6(a, prefix)
        }
    };
    Ok(Parsed::One(indicator))
}

/// A prefix length of up to `max`.
fn prefix_len(p: &str, max: u8) -> Result<u8, Problem> {
    let bad = || Problem::PrefixLength {
        text: p.to_owned(),
        max,
    };
    if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad()),
    }
}

/// An IPv4 prefix: a length, or a dotted netmask (`255.255.0.0` is `/16`).
fn v4_prefix(p: &str) -> Result<u8, Problem> {
    if !p.contains('.') {
        return prefix_len(p, 32);
    }
    let bad = || Problem::Netmask { text: p.to_owned() };
    let mask = u32::from(parse_v4(p).map_err(|_| bad())?);
    let ones = mask.leading_ones();
    if ones + mask.trailing_zeros() != 32 {
        return Err(bad());
    }
    u8::try_from(ones).map_err(|_| bad())
}

fn v4(a: Ipv4Addr) -> Indicator {
    Indicator::new(Kind::Ipv4, a.to_string())
}

/// A single IPv6 address; an IPv4-mapped one (`::ffff:1.2.3.4`) is the IPv4 address.
fn single_v6(a: Ipv6Addr) -> Indicator {
    match a.to_ipv4_mapped() {
        Some(v4addr) => v4(v4addr),
        None => Indicator::new(Kind::Ipv6, a.to_string()),
    }
}

fn cidr_v4(a: Ipv4Addr, prefix: u8) -> Indicator {
    if prefix == 32 {
        return v4(a);
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let net = Ipv4Addr::from(u32::from(a) & mask);
    let mut value = String::with_capacity(18);
    // Writing to a String cannot fail.
    let _ = write!(value, "{net}/{prefix}");
    Indicator::new(Kind::Cidr, value)
}

fn cidr_v6(a: Ipv6Addr, prefix: u8) -> Indicator {
    if prefix == 128 {
        return single_v6(a);
    }
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    let net = Ipv6Addr::from(u128::from(a) & mask);
    // A range of IPv4-mapped addresses is exactly an IPv4 range when the prefix covers the
    // whole ::ffff:0:0/96 block; a shorter prefix also holds addresses that are not mapped.
    if prefix >= 96
        && let Some(v4net) = net.to_ipv4_mapped()
    {
        return cidr_v4(v4net, prefix - 96);
    }
    let mut value = String::with_capacity(44);
    let _ = write!(value, "{net}/{prefix}");
    Indicator::new(Kind::Cidr, value)
}
