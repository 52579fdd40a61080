//! Table-driven tests of every parsing rule and every error reason.

use std::collections::BTreeSet;

use super::*;

const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a table row expects.
enum Want {
    /// One indicator of this kind and value.
    One(Kind, &'static str),
    /// Two URLs.
    Two(&'static str, &'static str),
    /// An error with this reason code.
    Err(&'static str),
}
use Want::{Err as Fails, One, Two};

/// A row: raw value, declared kind, URL scheme policy, expectation.
type Row = (&'static str, Option<Kind>, UrlSchemePolicy, Want);

const D: Option<Kind> = None;
const HTTP: UrlSchemePolicy = UrlSchemePolicy::Http;

fn rows() -> Vec<Row> {
    use Kind::*;
    vec![
        // --- hashes ---
        (MD5, D, HTTP, One(Md5, MD5)),
        ("D41D8CD98F00B204E9800998ECF8427E", D, HTTP, One(Md5, MD5)),
        (SHA1, D, HTTP, One(Sha1, SHA1)),
        (SHA256, D, HTTP, One(Sha256, SHA256)),
        (
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            D,
            HTTP,
            One(Sha256, SHA256),
        ),
        (
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            D,
            HTTP,
            One(Sha256, SHA256),
        ),
        (
            "MD5:d41d8cd98f00b204e9800998ecf8427e",
            D,
            HTTP,
            One(Md5, MD5),
        ),
        (
            "sha-1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
            Some(Sha1),
            HTTP,
            One(Sha1, SHA1),
        ),
        (
            " \"d41d8cd98f00b204e9800998ecf8427e\" ",
            D,
            HTTP,
            One(Md5, MD5),
        ),
        (MD5, Some(Md5), HTTP, One(Md5, MD5)),
        (MD5, Some(Sha256), HTTP, Fails("bad_hash_length")),
        (
            "d41d8cd98f00b204e9800998ecf8427",
            Some(Md5),
            HTTP,
            Fails("bad_hash_length"),
        ),
        (
            "d41d8cd98f00b204e9800998ecf8427",
            D,
            HTTP,
            Fails("bad_hash_length"),
        ),
        ("deadbeefdeadbeef", D, HTTP, Fails("bad_hash_length")),
        (
            "d41d8cd98f00b204e9800998ecf8427g",
            D,
            HTTP,
            Fails("non_hex"),
        ),
        (
            "d41d8cd98f00b204-9800998ecf8427e",
            Some(Md5),
            HTTP,
            Fails("non_hex"),
        ),
        (
            "sha256:d41d8cd98f00b204e9800998ecf8427e",
            Some(Md5),
            HTTP,
            Fails("kind_mismatch"),
        ),
        ("sha256:xyz", D, HTTP, Fails("non_hex")),
        // --- IPv4 ---
        ("1.2.3.4", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("1[.]2[.]3[.]4", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("(1.2.3.4)", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("0.0.0.0", D, HTTP, One(Ipv4, "0.0.0.0")),
        (
            "255.255.255.255",
            Some(Ipv4),
            HTTP,
            One(Ipv4, "255.255.255.255"),
        ),
        ("10.0.0.300", D, HTTP, Fails("bad_ipv4")),
        ("010.1.1.1", D, HTTP, Fails("leading_zero")),
        ("1.2.3.04", Some(Ipv4), HTTP, Fails("leading_zero")),
        ("1.2.3", D, HTTP, Fails("bad_ipv4")),
        ("1.2.3.4.5", D, HTTP, Fails("bad_ipv4")),
        ("1..2.3", D, HTTP, Fails("bad_ipv4")),
        ("1.2.3.4:80", Some(Ipv4), HTTP, Fails("bad_ipv4")),
        ("example.com", Some(Ipv4), HTTP, Fails("bad_ipv4")),
        // --- IPv6 ---
        ("2001:db8::1", D, HTTP, One(Ipv6, "2001:db8::1")),
        (
            "2001:0DB8:0000:0000:0000:0000:0000:0001",
            D,
            HTTP,
            One(Ipv6, "2001:db8::1"),
        ),
        (
            "2001:db8:0:0:1:0:0:1",
            D,
            HTTP,
            One(Ipv6, "2001:db8::1:0:0:1"),
        ),
        (
            "2001:db8:0:1:1:1:1:1",
            D,
            HTTP,
            One(Ipv6, "2001:db8:0:1:1:1:1:1"),
        ),
        ("[2001:db8::1]", D, HTTP, One(Ipv6, "2001:db8::1")),
        ("::1", D, HTTP, One(Ipv6, "::1")),
        ("::", D, HTTP, One(Ipv6, "::")),
        ("2001:db8::1", Some(Ipv4), HTTP, One(Ipv6, "2001:db8::1")),
        ("1.2.3.4", Some(Ipv6), HTTP, One(Ipv4, "1.2.3.4")),
        ("::ffff:1.2.3.4", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("::FFFF:102:304", Some(Ipv6), HTTP, One(Ipv4, "1.2.3.4")),
        ("::1.2.3.4", D, HTTP, One(Ipv6, "::102:304")),
        ("fe80::1%1", D, HTTP, Fails("bad_ipv6")),
        ("1:2:3:4:5:6:7:8:9", D, HTTP, Fails("bad_ipv6")),
        ("1::2::3", D, HTTP, Fails("bad_ipv6")),
        ("12345::1", D, HTTP, Fails("bad_ipv6")),
        ("2001:db8::g", Some(Ipv6), HTTP, Fails("bad_ipv6")),
        ("::ffff:1.2.3.300", D, HTTP, Fails("bad_ipv6")),
        // --- CIDR ---
        ("10.1.2.3/8", D, HTTP, One(Cidr, "10.0.0.0/8")),
        ("10[.]1.2.3/8", D, HTTP, One(Cidr, "10.0.0.0/8")),
        (
            "192.168.1.77/24",
            Some(Cidr),
            HTTP,
            One(Cidr, "192.168.1.0/24"),
        ),
        ("0.0.0.0/0", D, HTTP, One(Cidr, "0.0.0.0/0")),
        ("1.2.3.4/0", D, HTTP, One(Cidr, "0.0.0.0/0")),
        ("1.2.3.4/31", D, HTTP, One(Cidr, "1.2.3.4/31")),
        ("1.2.3.4/32", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("1.2.3.4/32", Some(Cidr), HTTP, One(Ipv4, "1.2.3.4")),
        ("1.2.3.4/032", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("10.0.0.0/8", Some(Ipv4), HTTP, One(Cidr, "10.0.0.0/8")),
        ("1.2.3.4", Some(Cidr), HTTP, One(Ipv4, "1.2.3.4")),
        ("10.9.8.7/255.255.0.0", D, HTTP, One(Cidr, "10.9.0.0/16")),
        ("10.0.0.0/255.0.255.0", D, HTTP, Fails("bad_prefix")),
        ("10.0.0.0/33", D, HTTP, Fails("bad_prefix")),
        ("10.0.0.0/1000", D, HTTP, Fails("bad_prefix")),
        ("10.0.0.0/", Some(Cidr), HTTP, Fails("bad_prefix")),
        ("10.0.0.256/8", D, HTTP, Fails("bad_ipv4")),
        ("2001:db8::1/32", D, HTTP, One(Cidr, "2001:db8::/32")),
        ("[2001:db8::1]/48", D, HTTP, One(Cidr, "2001:db8::/48")),
        ("2001:db8::1/128", D, HTTP, One(Ipv6, "2001:db8::1")),
        ("2001:db8::/129", D, HTTP, Fails("bad_prefix")),
        ("::/0", D, HTTP, One(Cidr, "::/0")),
        ("::ffff:10.1.2.3/104", D, HTTP, One(Cidr, "10.0.0.0/8")),
        ("::ffff:10.1.2.3/96", D, HTTP, One(Cidr, "0.0.0.0/0")),
        ("::ffff:1.2.3.4/128", D, HTTP, One(Ipv4, "1.2.3.4")),
        ("::ffff:0:0/95", D, HTTP, One(Cidr, "::fffe:0:0/95")),
        // --- domains ---
        ("example.com", D, HTTP, One(Domain, "example.com")),
        ("Example.COM", D, HTTP, One(Domain, "example.com")),
        ("example.com.", D, HTTP, One(Domain, "example.com")),
        ("example[.]com", D, HTTP, One(Domain, "example.com")),
        ("example[dot]com", D, HTTP, One(Domain, "example.com")),
        ("example(DOT)com", D, HTTP, One(Domain, "example.com")),
        ("<example.com>", D, HTTP, One(Domain, "example.com")),
        (
            "bücher.example",
            D,
            HTTP,
            One(Domain, "xn--bcher-kva.example"),
        ),
        (
            "BÜCHER.Example",
            D,
            HTTP,
            One(Domain, "xn--bcher-kva.example"),
        ),
        (
            "XN--BCHER-KVA.example",
            D,
            HTTP,
            One(Domain, "xn--bcher-kva.example"),
        ),
        (
            "例え.テスト",
            D,
            HTTP,
            One(Domain, "xn--r8jz45g.xn--zckzah"),
        ),
        (
            "例え。テスト",
            D,
            HTTP,
            One(Domain, "xn--r8jz45g.xn--zckzah"),
        ),
        ("ＥＸＡＭＰＬＥ.com", D, HTTP, One(Domain, "example.com")),
        (
            "_dmarc.example.com",
            D,
            HTTP,
            One(Domain, "_dmarc.example.com"),
        ),
        ("a_b.example.com", D, HTTP, One(Domain, "a_b.example.com")),
        (
            "r3---sn-4g5e6nez.googlevideo.com",
            D,
            HTTP,
            One(Domain, "r3---sn-4g5e6nez.googlevideo.com"),
        ),
        ("user.github.io", D, HTTP, One(Domain, "user.github.io")),
        ("example.co.uk", D, HTTP, One(Domain, "example.co.uk")),
        ("evil.unknowntld", D, HTTP, One(Domain, "evil.unknowntld")),
        ("1.2.3.4.example", D, HTTP, One(Domain, "1.2.3.4.example")),
        (
            "example.com",
            Some(Domain),
            HTTP,
            One(Domain, "example.com"),
        ),
        ("xn--a.example", D, HTTP, Fails("bad_idn")),
        ("a\u{0}b.example", Some(Domain), HTTP, Fails("bad_domain")),
        ("example.co_m", D, HTTP, Fails("bad_domain")),
        ("-bad.example.com", D, HTTP, Fails("bad_domain")),
        ("bad-.example.com", D, HTTP, Fails("bad_domain")),
        ("a..example.com", D, HTTP, Fails("bad_domain")),
        ("exa mple.com", D, HTTP, Fails("bad_domain")),
        ("exa%mple.com", D, HTTP, Fails("bad_domain")),
        ("com", D, HTTP, Fails("public_suffix")),
        ("COM.", D, HTTP, Fails("public_suffix")),
        ("co.uk", D, HTTP, Fails("public_suffix")),
        ("github.io", D, HTTP, Fails("public_suffix")),
        ("com", Some(Domain), HTTP, Fails("public_suffix")),
        ("example.123", D, HTTP, Fails("numeric_tld")),
        ("1.2.3.4", Some(Domain), HTTP, Fails("numeric_tld")),
        ("*.example.com", D, HTTP, Fails("wildcard")),
        (".example.com", D, HTTP, Fails("wildcard")),
        ("localhost", D, HTTP, Fails("unrecognised")),
        ("localhost", Some(Domain), HTTP, Fails("single_label")),
        ("hello world", D, HTTP, Fails("unrecognised")),
        // --- e-mail ---
        (
            "User.Name+tag@Example.COM",
            D,
            HTTP,
            One(Email, "User.Name+tag@example.com"),
        ),
        ("mailto:a@example.com", D, HTTP, One(Email, "a@example.com")),
        (
            "MAILTO:a@example.com?subject=hi",
            D,
            HTTP,
            One(Email, "a@example.com"),
        ),
        ("a[at]example[.]com", D, HTTP, One(Email, "a@example.com")),
        ("a[@]example[dot]com", D, HTTP, One(Email, "a@example.com")),
        ("a(at)example(dot)com", D, HTTP, One(Email, "a@example.com")),
        ("<a@example.com>", D, HTTP, One(Email, "a@example.com")),
        (
            "a@bücher.example",
            D,
            HTTP,
            One(Email, "a@xn--bcher-kva.example"),
        ),
        (
            "jürgen@example.com",
            D,
            HTTP,
            One(Email, "jürgen@example.com"),
        ),
        (
            "a@example.com.",
            Some(Email),
            HTTP,
            One(Email, "a@example.com"),
        ),
        ("a@com", D, HTTP, Fails("public_suffix")),
        ("a@co.uk", D, HTTP, Fails("public_suffix")),
        ("a@localhost", D, HTTP, Fails("single_label")),
        ("@example.com", D, HTTP, Fails("bad_email")),
        ("a..b@example.com", D, HTTP, Fails("bad_email")),
        (".a@example.com", D, HTTP, Fails("bad_email")),
        ("a b@example.com", D, HTTP, Fails("bad_email")),
        ("\"a\"@example.com", D, HTTP, Fails("bad_email")),
        ("a@[1.2.3.4]", D, HTTP, Fails("bad_email")),
        ("a@*.example.com", D, HTTP, Fails("bad_domain")),
        ("mailto:\u{200b}a@example.com", D, HTTP, Fails("bad_email")),
        (
            "mailto:fxp{a@example.com",
            D,
            HTTP,
            One(Email, "fxp{a@example.com"),
        ),
        ("a@.example.com", D, HTTP, Fails("bad_domain")),
        ("example.com", Some(Email), HTTP, Fails("bad_email")),
        // --- URLs with a scheme ---
        (
            "HTTP://Example.COM",
            D,
            HTTP,
            One(Url, "http://example.com/"),
        ),
        (
            "http://example.com:80/",
            D,
            HTTP,
            One(Url, "http://example.com/"),
        ),
        (
            "https://example.com:443/a",
            D,
            HTTP,
            One(Url, "https://example.com/a"),
        ),
        (
            "ftp://example.com:21/x",
            D,
            HTTP,
            One(Url, "ftp://example.com/x"),
        ),
        (
            "https://example.com:80/",
            D,
            HTTP,
            One(Url, "https://example.com:80/"),
        ),
        (
            "http://example.com:8080",
            D,
            HTTP,
            One(Url, "http://example.com:8080/"),
        ),
        (
            "http://example.com:08080/",
            D,
            HTTP,
            One(Url, "http://example.com:8080/"),
        ),
        (
            "http://example.com:/",
            D,
            HTTP,
            One(Url, "http://example.com/"),
        ),
        (
            "http://example.com/Path/To?Q=A#frag",
            D,
            HTTP,
            One(Url, "http://example.com/Path/To?Q=A"),
        ),
        (
            "http://example.com?",
            D,
            HTTP,
            One(Url, "http://example.com/"),
        ),
        (
            "http://example.com#top",
            D,
            HTTP,
            One(Url, "http://example.com/"),
        ),
        (
            "hxxp://evil[.]example/payload.exe",
            D,
            HTTP,
            One(Url, "http://evil.example/payload.exe"),
        ),
        (
            "hXXps[:]//evil[.]example",
            D,
            HTTP,
            One(Url, "https://evil.example/"),
        ),
        (
            "hxxps[://]evil(.)example/x",
            D,
            HTTP,
            One(Url, "https://evil.example/x"),
        ),
        (
            "fxp://files.example/a",
            D,
            HTTP,
            One(Url, "ftp://files.example/a"),
        ),
        (
            "http://user:pass@evil.example/",
            D,
            HTTP,
            One(Url, "http://evil.example/"),
        ),
        (
            "http://bank.example@evil.example/login",
            D,
            HTTP,
            One(Url, "http://evil.example/login"),
        ),
        (
            "http://evil.example\\@good.example/",
            D,
            HTTP,
            One(Url, "http://evil.example/@good.example/"),
        ),
        (
            "http://bücher.example/ä b",
            D,
            HTTP,
            One(Url, "http://xn--bcher-kva.example/%C3%A4%20b"),
        ),
        (
            "http://example.com/%7euser",
            D,
            HTTP,
            One(Url, "http://example.com/%7Euser"),
        ),
        (
            "http://example.com/a%zz%4",
            D,
            HTTP,
            One(Url, "http://example.com/a%zz%4"),
        ),
        (
            "http://example.com/a b|c",
            D,
            HTTP,
            One(Url, "http://example.com/a%20b%7Cc"),
        ),
        (
            "http://example.com/a\tb\r\n",
            Some(Url),
            HTTP,
            One(Url, "http://example.com/ab"),
        ),
        (
            "http://example.com/q?a=b&c=d/e?f",
            D,
            HTTP,
            One(Url, "http://example.com/q?a=b&c=d/e?f"),
        ),
        (
            "http://example.com/?a[]=1\\",
            D,
            HTTP,
            One(Url, "http://example.com/?a%5B%5D=1%5C"),
        ),
        (
            "http://example.com/./a/../b",
            D,
            HTTP,
            One(Url, "http://example.com/./a/../b"),
        ),
        ("http://1.2.3.4/x", D, HTTP, One(Url, "http://1.2.3.4/x")),
        (
            "http://[2001:DB8::1]:8080/",
            D,
            HTTP,
            One(Url, "http://[2001:db8::1]:8080/"),
        ),
        (
            "http://[::ffff:1.2.3.4]/",
            D,
            HTTP,
            One(Url, "http://1.2.3.4/"),
        ),
        ("http://github.io/", D, HTTP, One(Url, "http://github.io/")),
        (
            "http://example.com./",
            D,
            HTTP,
            One(Url, "http://example.com/"),
        ),
        (
            "tcp://1.2.3.4:4444",
            D,
            HTTP,
            One(Url, "tcp://1.2.3.4:4444/"),
        ),
        (
            "WSS://Example.com:443/s",
            D,
            HTTP,
            One(Url, "wss://example.com/s"),
        ),
        ("http://010.1.1.1/", D, HTTP, Fails("leading_zero")),
        ("http://2130706433/", D, HTTP, Fails("bad_ipv4")),
        ("http://1.2.3.300/", D, HTTP, Fails("bad_ipv4")),
        ("http://example.com:99999/", D, HTTP, Fails("bad_port")),
        ("http://example.com:abc/", D, HTTP, Fails("bad_port")),
        ("http://2001:db8::1/", D, HTTP, Fails("bad_ipv6")),
        ("http://[2001:db8::1/", D, HTTP, Fails("bad_ipv6")),
        ("http://[2001:db8::1]x/", D, HTTP, Fails("bad_url")),
        ("http:///x", D, HTTP, Fails("bad_url")),
        ("http://localhost/", D, HTTP, Fails("single_label")),
        ("http://*.example.com/", D, HTTP, Fails("wildcard")),
        ("http://exa mple.com/", D, HTTP, Fails("bad_domain")),
        // --- URLs without a scheme ---
        (
            "evil.example/path",
            D,
            HTTP,
            One(Url, "http://evil.example/path"),
        ),
        (
            "evil.example/path",
            D,
            UrlSchemePolicy::Https,
            One(Url, "https://evil.example/path"),
        ),
        (
            "evil.example/path",
            D,
            UrlSchemePolicy::Both,
            Two("http://evil.example/path", "https://evil.example/path"),
        ),
        (
            "evil.example/path",
            D,
            UrlSchemePolicy::Reject,
            Fails("scheme_missing"),
        ),
        (
            "evil.example:8080/x",
            D,
            HTTP,
            One(Url, "http://evil.example:8080/x"),
        ),
        (
            "evil.example:8080",
            D,
            HTTP,
            One(Url, "http://evil.example:8080/"),
        ),
        (
            "evil.example:443",
            D,
            UrlSchemePolicy::Both,
            Two("http://evil.example:443/", "https://evil.example/"),
        ),
        (
            "evil.example?q=1",
            D,
            HTTP,
            One(Url, "http://evil.example/?q=1"),
        ),
        (
            "//evil.example/x",
            D,
            HTTP,
            One(Url, "http://evil.example/x"),
        ),
        ("1.2.3.4:8080", D, HTTP, One(Url, "http://1.2.3.4:8080/")),
        ("1.2.3.4/abc", D, HTTP, One(Url, "http://1.2.3.4/abc")),
        ("10.0.0.0/", D, HTTP, One(Url, "http://10.0.0.0/")),
        (
            "user@evil.example/x",
            D,
            HTTP,
            One(Url, "http://evil.example/x"),
        ),
        (
            "evil[.]example[/]x",
            D,
            HTTP,
            One(Url, "http://evil.example/x"),
        ),
        (
            "evil.example",
            Some(Url),
            HTTP,
            One(Url, "http://evil.example/"),
        ),
        (
            "evil.example",
            Some(Url),
            UrlSchemePolicy::Reject,
            Fails("scheme_missing"),
        ),
        ("evil.example:abc", D, HTTP, Fails("bad_port")),
        // --- anything ---
        ("", D, HTTP, Fails("empty")),
        ("   ", Some(Domain), HTTP, Fails("empty")),
        ("[]", D, HTTP, Fails("empty")),
        ("\"\"", D, HTTP, Fails("empty")),
        ("xyzzy", D, HTTP, Fails("unrecognised")),
    ]
}

fn check_row((raw, declared, policy, want): &Row) {
    let options = ParseOptions {
        url_scheme: *policy,
    };
    let got = parse(raw, *declared, &options);
    let context = format!("parse({raw:?}, {declared:?}, {policy:?}) = {got:?}");
    match want {
        One(kind, value) => assert_eq!(
            got,
            Ok(Parsed::One(Indicator::new(*kind, *value))),
            "{context}"
        ),
        Two(a, b) => assert_eq!(
            got,
            Ok(Parsed::Two(
                Indicator::new(Kind::Url, *a),
                Indicator::new(Kind::Url, *b)
            )),
            "{context}"
        ),
        Fails(reason) => match &got {
            Err(e) => assert_eq!(e.reason(), *reason, "{context}: {e}"),
            Ok(_) => panic!("{context}: expected {reason}"),
        },
    }
    if let Err(e) = check_invariants(raw) {
        panic!("{e}");
    }
}

#[test]
fn table() {
    for row in rows() {
        check_row(&row);
    }
}

#[test]
fn every_reason_is_covered_by_the_table() {
    let mut seen: BTreeSet<&str> = rows()
        .iter()
        .filter_map(|(_, _, _, want)| match want {
            Fails(reason) => Some(*reason),
            _ => None,
        })
        .collect();
    // The two that need more than a short literal are covered by their own tests below.
    seen.extend(["too_long", "unknown_kind"]);
    let all: BTreeSet<&str> = ParseError::REASONS.iter().copied().collect();
    assert_eq!(seen, all);
}

#[test]
fn long_values_are_too_long() {
    let options = ParseOptions::default();
    let raw = "a".repeat(MAX_RAW_LEN + 1);
    let e = parse(&raw, None, &options).unwrap_err();
    assert_eq!(e.reason(), "too_long");
    assert_eq!(
        e.to_string(),
        "the value is 8193 bytes long; at most 8192 are accepted"
    );

    let url = format!("http://example.com/{}", "a".repeat(MAX_URL_LEN));
    let e = parse(&url, None, &options).unwrap_err();
    assert_eq!(e.reason(), "too_long");
    assert!(e.to_string().contains("at most 4096"), "{e}");
    // The error keeps a short excerpt of the value, not all of it.
    assert!(e.to_string().len() < 400, "{e}");

    let label = "a".repeat(63);
    let domain = [label.as_str(); 4].join(".") + ".com";
    let e = parse(&domain, None, &options).unwrap_err();
    assert_eq!(e.reason(), "too_long");

    let e = parse(&format!("{}@example.com", "a".repeat(65)), None, &options).unwrap_err();
    assert_eq!(e.reason(), "bad_email");
    let e = parse(&format!("a@{}", "a".repeat(64)), None, &options).unwrap_err();
    assert_eq!(e.reason(), "bad_domain");
}

#[test]
fn unknown_kind_names_convert() {
    let e: ParseError = "registry-key".parse::<Kind>().unwrap_err().into();
    assert_eq!(e.reason(), "unknown_kind");
    assert!(e.to_string().contains("registry-key"));
}

#[test]
fn messages_say_what_and_why() {
    let options = ParseOptions::default();
    let message =
        |raw: &str, kind: Option<Kind>| parse(raw, kind, &options).unwrap_err().to_string();
    assert_eq!(
        message("10.0.0.300", None),
        r#""10.0.0.300" is not an IPv4 address: octet 4 (300) is above 255"#
    );
    assert_eq!(
        message("com", None),
        r#""com" is a public suffix, not a domain; give a name below it such as example.com"#
    );
    assert_eq!(
        message("d41d8cd98f00b204e9800998ecf8427", Some(Kind::Md5)),
        r#""d41d8cd98f00b204e9800998ecf8427" is not an md5: expected 32 hex digits, found 31"#
    );
    assert_eq!(
        message("010.1.1.1", None),
        r#""010.1.1.1" is not an IPv4 address: octet 1 (010) has a leading zero, which some tools read as octal; write it without leading zeros"#
    );
    assert_eq!(
        message("a@co.uk", None),
        r#""a@co.uk" is not an e-mail address: its domain "co.uk" is a public suffix; give a name below it such as example.co.uk"#
    );
    assert_eq!(
        message("hxxp://evil[.]example:99999/", None),
        r#""hxxp://evil[.]example:99999/" is not a URL: port "99999" is not a number from 0 to 65535"#
    );
    assert_eq!(
        message("http://1.2.3.300/", None),
        r#""http://1.2.3.300/" is not a URL: in its host "1.2.3.300", octet 4 (300) is above 255"#
    );
    assert_eq!(
        message("*.example.com", None),
        r#""*.example.com" is not a domain: wildcards and leading dots are not indicators; give the domain itself, "example.com""#
    );
    assert_eq!(
        message("deadbeefdeadbeef", None),
        r#""deadbeefdeadbeef" is not a hash: expected 32 (md5), 40 (sha1) or 64 (sha256) hex digits, found 16"#
    );
    assert_eq!(
        message("12345::1", None),
        r#""12345::1" is not an IPv6 address: group "12345" has more than 4 hex digits"#
    );
    assert_eq!(
        message("sha256:d41d8cd98f00b204e9800998ecf8427e", Some(Kind::Md5)),
        r#""sha256:d41d8cd98f00b204e9800998ecf8427e" is not an md5: its prefix says sha256; declare it as sha256 or remove the prefix"#
    );
}

#[test]
fn parsed_iterates_in_order() {
    let a = Indicator::new(Kind::Url, "http://a.example/");
    let b = Indicator::new(Kind::Url, "https://a.example/");
    let two = Parsed::Two(a.clone(), b.clone());
    assert_eq!(two.len(), 2);
    assert_eq!(two.first(), &a);
    assert_eq!(
        two.iter().cloned().collect::<Vec<_>>(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(two.into_iter().collect::<Vec<_>>(), vec![a.clone(), b]);
    let one = Parsed::One(a.clone());
    assert_eq!((one.len(), one.is_empty()), (1, false));
    assert_eq!(one.into_iter().collect::<Vec<_>>(), vec![a]);
}

#[test]
fn canonical_inputs_are_not_copied_more_than_once() {
    // Refanging borrows clean input; the checks below pin that the fast paths stay fast paths.
    assert!(matches!(refang::refang("example.com"), Cow::Borrowed(_)));
    assert!(matches!(
        domain::canonical("example.com", domain::Suffix::Reject),
        Ok(Cow::Borrowed(_))
    ));
    assert!(matches!(
        domain::canonical("xn--bcher-kva.example", domain::Suffix::Reject),
        Ok(Cow::Borrowed(_))
    ));
}

/// Regression tests, named after the bug they pin: each input once broke idempotence.
mod regressions {
    use super::*;

    fn holds(raw: &str) {
        if let Err(e) = check_invariants(raw) {
            panic!("{e}");
        }
    }

    #[test]
    fn zero_width_space_opening_a_mailbox_was_trimmed_on_reparse() {
        holds("mailto:\u{200b}a@example.com");
    }

    #[test]
    fn tab_inside_a_defang_token_joined_it_after_refanging() {
        holds("http://x.example/(\t.)");
        holds("exa\nmple[\n.]com");
    }

    #[test]
    fn defanged_scheme_before_a_brace_rewrote_a_mailbox() {
        holds("mailto:fxp{a@example.com");
    }
}
