//! The functions compiled rules call on SQLite, and the in-memory evaluator calls directly, so
//! the two always agree: [`regexp`], [`within`] and [`host`].
//!
//! The model crate does not depend on `rusqlite`; the store registers every entry of
//! [`sqlite_functions`] on each SQLite connection through a small adapter that converts
//! arguments to [`FnArg`] and the [`FnResult`] back.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::Kind;

/// How many compiled patterns each thread keeps for [`regexp`].
const REGEX_CACHE: usize = 64;

/// Whether `text` contains a match of `pattern` (Rust `regex` syntax, as the rule compiler
/// writes it: the portable subset inside `(?s:…)`). Compiled patterns are cached per thread,
/// so calling this for every row of a table compiles the pattern once.
///
/// # Errors
/// When `pattern` does not compile (the rule compiler never produces such a pattern).
pub fn regexp(pattern: &str, text: &str) -> Result<bool, String> {
    thread_local! {
        static CACHE: RefCell<HashMap<String, regex::Regex>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return Ok(re.is_match(text));
        }
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("regexp: {e}"))?;
        let found = re.is_match(text);
        if cache.len() >= REGEX_CACHE {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re);
        Ok(found)
    })
}

/// The network address of `ip/prefix` (host bits cleared).
pub fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// The address and prefix length of an IP or CIDR value (`10.0.0.1` is `10.0.0.1/32`).
pub fn ip_prefix(value: &str) -> Option<(IpAddr, u8)> {
    match value.split_once('/') {
        Some((a, p)) => {
            let ip: IpAddr = a.parse().ok()?;
            let p: u8 = p.parse().ok()?;
            (p <= if ip.is_ipv4() { 32 } else { 128 }).then_some((ip, p))
        }
        None => {
            let ip: IpAddr = value.parse().ok()?;
            Some((ip, if ip.is_ipv4() { 32 } else { 128 }))
        }
    }
}

/// Whether an IP or CIDR value (kind `ipv4`, `ipv6` or `cidr`) lies inside `range/prefix`
/// (`range` being a network address): the same family, a prefix at least as long, and the same
/// network bits. PostgreSQL's `inet <<= inet` gives the same answer.
pub fn within(kind: Kind, value: &str, range: IpAddr, prefix: u8) -> bool {
    if !kind.is_ip() {
        return false;
    }
    let Some((ip, own)) = ip_prefix(value) else {
        return false;
    };
    ip.is_ipv4() == range.is_ipv4() && own >= prefix && network(ip, prefix) == range
}

/// The host name a value carries, for `subdomain_of` and domain-suffix allow-list entries: a
/// domain itself, the host of a URL (empty when the host is an IP address), the domain of an
/// e-mail address, and empty for other kinds.
///
/// Works on canonical values: a URL is `scheme://host[:port]/…` (userinfo already dropped, an
/// IPv6 host in brackets), an e-mail address has one `@`.
pub fn host(kind: Kind, value: &str) -> &str {
    match kind {
        Kind::Domain => value,
        Kind::Email => value.rsplit_once('@').map_or("", |(_, d)| d),
        Kind::Url => {
            let Some((_, rest)) = value.split_once("://") else {
                return "";
            };
            let h = &rest[..rest.find([':', '/']).unwrap_or(rest.len())];
            if h.starts_with('[') || h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                ""
            } else {
                h
            }
        }
        _ => "",
    }
}

/// Whether `host` is `domain` or a name below it (`a.example.com` is below `example.com`,
/// `badexample.com` is not).
pub fn is_subdomain(host: &str, domain: &str) -> bool {
    !host.is_empty()
        && host.len() >= domain.len()
        && host.ends_with(domain)
        && (host.len() == domain.len() || host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// An argument of a SQLite function call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FnArg<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// A blob.
    Blob(&'a [u8]),
}

impl FnArg<'_> {
    fn int(&self) -> Option<i64> {
        match *self {
            FnArg::Int(i) => Some(i),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match *self {
            FnArg::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// The result of a SQLite function call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FnResult {
    /// SQL NULL.
    Null,
    /// An integer (booleans are 0 or 1).
    Int(i64),
    /// Text.
    Text(String),
    /// The call fails the statement with this message.
    Error(String),
}

/// A scalar SQL function for SQLite, as plain data.
#[derive(Debug, Clone, Copy)]
pub struct SqliteFunction {
    /// The SQL name.
    pub name: &'static str,
    /// How many arguments it takes.
    pub n_args: usize,
    /// Whether it always gives the same result for the same arguments (SQLite may then use it
    /// in indexes and factor it out).
    pub deterministic: bool,
    /// The implementation.
    pub call: fn(&[FnArg<'_>]) -> FnResult,
}

fn kind_arg(arg: &FnArg<'_>) -> Option<Kind> {
    arg.int()
        .and_then(|k| u8::try_from(k).ok())
        .and_then(Kind::from_code)
}

fn sql_regexp(args: &[FnArg<'_>]) -> FnResult {
    match (args.first(), args.get(1)) {
        (Some(FnArg::Text(p)), Some(FnArg::Text(t))) => match regexp(p, t) {
            Ok(b) => FnResult::Int(i64::from(b)),
            Err(e) => FnResult::Error(e),
        },
        (Some(FnArg::Text(_)), Some(FnArg::Null)) => FnResult::Null,
        _ => FnResult::Error("regexp(pattern, text) takes two texts".into()),
    }
}

fn sql_within(args: &[FnArg<'_>]) -> FnResult {
    let (Some(kind), Some(value), Some(range)) = (
        args.first(),
        args.get(1).and_then(FnArg::text),
        args.get(2).and_then(FnArg::text),
    ) else {
        return FnResult::Error(
            "iocx_within(kind, value, range) takes an integer and two texts".into(),
        );
    };
    let Ok((ip, prefix)) = super::parser::parse_cidr(range) else {
        return FnResult::Error(format!("iocx_within: {range:?} is not a CIDR range"));
    };
    FnResult::Int(i64::from(
        kind_arg(kind).is_some_and(|k| within(k, value, ip, prefix)),
    ))
}

fn sql_host(args: &[FnArg<'_>]) -> FnResult {
    match (
        args.first().and_then(kind_arg),
        args.get(1).and_then(FnArg::text),
    ) {
        (Some(kind), Some(value)) => FnResult::Text(host(kind, value).to_string()),
        _ => FnResult::Text(String::new()),
    }
}

static SQLITE_FUNCTIONS: [SqliteFunction; 3] = [
    SqliteFunction {
        name: "regexp",
        n_args: 2,
        deterministic: true,
        call: sql_regexp,
    },
    SqliteFunction {
        name: "iocx_within",
        n_args: 3,
        deterministic: true,
        call: sql_within,
    },
    SqliteFunction {
        name: "iocx_host",
        n_args: 2,
        deterministic: true,
        call: sql_host,
    },
];

/// The functions compiled rules call on SQLite, to register on every connection:
///
/// - `regexp(pattern, text)`: 1 when `text` matches (see [`regexp`]); NULL text gives NULL.
/// - `iocx_within(kind, value, range)`: 1 when the IP or CIDR value is inside `range` (see
///   [`within`]); 0 for other kinds.
/// - `iocx_host(kind, value)`: the host name of a domain, URL or e-mail value, else `''`
///   (see [`host`]); never NULL.
pub fn sqlite_functions() -> &'static [SqliteFunction] {
    &SQLITE_FUNCTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_canonical_values() {
        assert_eq!(
            host(Kind::Url, "http://a.evil.example:8080/x?y"),
            "a.evil.example"
        );
        assert_eq!(host(Kind::Url, "https://evil.example/"), "evil.example");
        assert_eq!(host(Kind::Url, "http://10.1.2.3/x"), "");
        assert_eq!(host(Kind::Url, "http://[2001:db8::1]:81/"), "");
        assert_eq!(host(Kind::Email, "üser@mail.example"), "mail.example");
        assert_eq!(host(Kind::Domain, "evil.example"), "evil.example");
        assert_eq!(host(Kind::Md5, "d41d8cd98f00b204e9800998ecf8427e"), "");
        assert!(is_subdomain("a.evil.example", "evil.example"));
        assert!(is_subdomain("evil.example", "evil.example"));
        assert!(!is_subdomain("notevil.example", "evil.example"));
        assert!(!is_subdomain("", "evil.example"));
    }

    #[test]
    fn within_ranges() {
        let (ten, p8) = (IpAddr::from([10, 0, 0, 0]), 8);
        assert!(within(Kind::Ipv4, "10.1.2.3", ten, p8));
        assert!(within(Kind::Cidr, "10.1.0.0/16", ten, p8));
        assert!(!within(Kind::Cidr, "8.0.0.0/6", ten, p8));
        assert!(!within(Kind::Domain, "10.1.2.3", ten, p8));
        assert!(!within(Kind::Ipv6, "::a01:203", ten, p8));
        assert!(within(Kind::Ipv4, "1.2.3.4", IpAddr::from([0, 0, 0, 0]), 0));
    }

    #[test]
    fn registry_calls() {
        let f = |name: &str| {
            sqlite_functions()
                .iter()
                .find(|f| f.name == name)
                .unwrap()
                .call
        };
        assert_eq!(
            f("regexp")(&[FnArg::Text("^a"), FnArg::Text("abc")]),
            FnResult::Int(1)
        );
        assert_eq!(
            f("regexp")(&[FnArg::Text("^a"), FnArg::Null]),
            FnResult::Null
        );
        assert!(matches!(
            f("regexp")(&[FnArg::Text("("), FnArg::Text("x")]),
            FnResult::Error(_)
        ));
        assert_eq!(
            f("iocx_within")(&[
                FnArg::Int(3),
                FnArg::Text("10.9.9.9"),
                FnArg::Text("10.0.0.0/8")
            ]),
            FnResult::Int(1)
        );
        assert_eq!(
            f("iocx_host")(&[FnArg::Int(1), FnArg::Text("http://x.example/")]),
            FnResult::Text("x.example".into())
        );
        assert_eq!(
            f("iocx_host")(&[FnArg::Int(6), FnArg::Text("00")]),
            FnResult::Text(String::new())
        );
    }
}
