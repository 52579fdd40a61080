//! Property tests of the parser: idempotence (`canonical(canonical(x)) == canonical(x)`) and
//! "detect, then parse as the detected kind, agrees", over realistic indicators in every
//! spelling feeds use, defanged variants, near-misses, and arbitrary Unicode.
//!
//! Both properties are checked by `check_invariants`, the same function the fuzz target and the
//! corpus replay use.

use iocx_model::{Kind, ParseOptions, check_invariants, parse};
use proptest::prelude::*;
use proptest::sample::select;

/// 1500 cases per property by default; `PROPTEST_CASES=100000` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 1500;
    }
    config
}

/// Hex digits in random case, of a hash length or a near miss.
fn hash() -> impl Strategy<Value = String> {
    let len = select(vec![16usize, 31, 32, 32, 33, 40, 40, 63, 64, 64, 64, 65]);
    let prefix = select(vec!["", "", "", "md5:", "SHA1:", "sha256:", "sha-256:"]);
    (len, prefix).prop_flat_map(|(len, prefix)| {
        let digit = prop_oneof![
            30 => select(b"0123456789abcdef".to_vec()),
            6 => select(b"ABCDEF".to_vec()),
            1 => select(b"gG-".to_vec()),
        ];
        proptest::collection::vec(digit, len)
            .prop_map(move |digits| format!("{prefix}{}", String::from_utf8_lossy(&digits)))
    })
}

/// IPv4 text: mostly valid dotted quads, with leading zeros, big octets and wrong counts.
fn ipv4() -> impl Strategy<Value = String> {
    let octet = prop_oneof![
        30 => (0u16..=255).prop_map(|n| n.to_string()),
        1 => (0u16..=999).prop_map(|n| format!("{n:03}")),
        1 => (256u16..=9999).prop_map(|n| n.to_string()),
    ];
    let count = prop_oneof![8 => Just(4usize), 1 => 2usize..=5];
    count.prop_flat_map(move |n| {
        proptest::collection::vec(octet.clone(), n).prop_map(|o| o.join("."))
    })
}

/// IPv6 text: random addresses in full, compressed, mixed-case and IPv4-mapped forms.
fn ipv6() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|n| std::net::Ipv6Addr::from(n).to_string()),
        // Few distinct groups, so `::` compression and its tie rules get exercised.
        proptest::collection::vec(select(vec![0u16, 0, 0, 1, 0xffff, 0xdb8, 0x2001]), 8).prop_map(
            |g| g
                .iter()
                .map(|x| format!("{x:04X}"))
                .collect::<Vec<_>>()
                .join(":")
        ),
        any::<[u8; 4]>().prop_map(|o| format!("::ffff:{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        any::<[u8; 4]>()
            .prop_map(|o| format!("::FFFF:{:x}{:02x}:{:x}{:02x}", o[0], o[1], o[2], o[3])),
    ]
}

/// CIDR ranges of both families, with host bits set and out-of-range prefixes.
fn cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (ipv4(), 0u8..=34).prop_map(|(a, p)| format!("{a}/{p}")),
        (ipv6(), 0u8..=130).prop_map(|(a, p)| format!("{a}/{p}")),
        (ipv4(), any::<u32>()).prop_map(|(a, m)| format!("{a}/{}", std::net::Ipv4Addr::from(m))),
    ]
}

/// A domain label: plain, mixed case, Unicode, punycode, underscores, hyphens in odd places.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9]{1,12}",
        2 => "[a-zA-Z0-9_-]{1,12}",
        1 => select(vec![
            "bücher", "xn--bcher-kva", "XN--BCHER-KVA", "例え", "テスト", "münchen", "ß",
            "straße", "ＥＸＡＭＰＬＥ", "xn--a", "xn--", "r3---sn-4g5e6nez", "_dmarc", "-x", "x-",
            "", "*", "a b", "%41", "ǅ", "\u{200d}", "ﬁ", "①",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{1,6}",
        1 => "[a-z]{63,64}",
    ]
}

/// Domains: labels over a real or made-up suffix, public suffixes alone, trailing dots.
fn domain() -> impl Strategy<Value = String> {
    let suffix = select(vec![
        "com",
        "org",
        "co.uk",
        "github.io",
        "example",
        "de",
        "xn--fiqs8s",
        "123",
        "ck",
        "co_m",
        "COM",
        "unknowntld",
        "中国",
    ]);
    (
        proptest::collection::vec(label(), 0..4),
        suffix,
        select(vec!["", "", "", "", "", "", "", "", ".", "*.", "."]),
        any::<bool>(),
    )
        .prop_map(|(labels, suffix, edge, trailing)| {
            let mut d = labels.join(".");
            if !d.is_empty() {
                d.push('.');
            }
            d.push_str(suffix);
            if edge == "." && trailing {
                d.push('.');
            } else if !edge.is_empty() {
                d.insert_str(0, edge);
            }
            d
        })
}

fn email() -> impl Strategy<Value = String> {
    let local = prop_oneof![
        "[a-zA-Z0-9._+-]{1,20}",
        select(vec![
            "jürgen",
            "a..b",
            ".a",
            "a b",
            "\"q\"",
            "a/b",
            "a:b",
            "a?b",
            "{x}",
            "'o'",
            "\u{200b}a",
            "\u{feff}a",
            "a\u{200b}",
            "fxp{a",
            "\u{a0}a",
            "(a",
            "a)",
        ])
        .prop_map(str::to_owned),
        "\\PC{1,8}",
    ];
    (
        select(vec!["", "", "mailto:", "MAILTO:"]),
        local,
        domain(),
        select(vec!["", "", "?subject=x"]),
    )
        .prop_map(|(m, l, d, q)| format!("{m}{l}@{d}{q}"))
}

/// Text for a URL path, query or fragment: every character class that matters.
fn url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9/._~-]{0,20}",
        "[ -~]{0,20}",
        "(%[0-9a-fA-FgG]{0,2}|[/?#@:\\\\ ]|[a-z]|\\PC){0,12}",
        // Defanging tokens split by what refanging or URL parsing removes.
        "([\\[\\](){}.:/@?#\t\n]|dot|at|%2e|\u{200b}){0,12}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    let scheme = select(vec![
        "http://",
        "https://",
        "HTTP://",
        "ftp://",
        "hxxp://",
        "hXXps[:]//",
        "fxp://",
        "tcp://",
        "",
        "",
        "//",
        "mailto://",
        "sha256://",
        "a.b://",
    ]);
    let host = prop_oneof![
        4 => domain(),
        1 => ipv4(),
        1 => ipv6().prop_map(|a| format!("[{a}]")),
        1 => ipv6(),
    ];
    let userinfo = select(vec![
        "",
        "",
        "",
        "user@",
        "user:pass@",
        "a@b@",
        "bank.example\\@",
    ]);
    let port = select(vec![
        "", "", "", ":80", ":443", ":8080", ":", ":0", ":99999", ":x", ":021",
    ]);
    (scheme, userinfo, host, port, url_text())
        .prop_map(|(s, u, h, p, rest)| format!("{s}{u}{h}{p}{rest}"))
}

/// Ways analysts defang and wrap a value.
fn defang(value: String, style: u8) -> String {
    match style % 8 {
        0 => value.replace('.', "[.]"),
        1 => value.replace('.', "(dot)").replace('@', "[at]"),
        2 => value.replace("http", "hxxp").replace(':', "[:]"),
        3 => format!("<{value}>"),
        4 => format!("  \"{value}\"\t"),
        5 => format!("[{value}]"),
        6 => value.replace('.', "{.}").replace("://", "[://]"),
        _ => value,
    }
}

/// Any indicator-like value, possibly defanged.
fn realistic() -> impl Strategy<Value = String> {
    let value = prop_oneof![hash(), ipv4(), ipv6(), cidr(), domain(), email(), url()];
    (value, any::<u8>()).prop_map(|(v, style)| defang(v, style))
}

/// Short strings over the characters that steer the parser.
fn adversarial() -> impl Strategy<Value = String> {
    "([\\[\\](){}<>.:/?#@%\\\\*_\"' \t-]|[a-fA-F0-9]|x|X|n|dot|at|hxxp|\\PC){0,24}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn realistic_values_keep_the_invariants(raw in realistic()) {
        if let Err(e) = check_invariants(&raw) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn adversarial_values_keep_the_invariants(raw in adversarial()) {
        if let Err(e) = check_invariants(&raw) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn arbitrary_unicode_keeps_the_invariants(raw in any::<String>()) {
        if let Err(e) = check_invariants(&raw) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Spelled-out form of the idempotence property for values that do parse, so a failure
    /// names the kind and the two canonical forms.
    #[test]
    fn canonical_of_canonical_is_canonical(raw in realistic()) {
        let options = ParseOptions::default();
        if let Ok(parsed) = parse(&raw, None, &options) {
            for indicator in parsed.iter() {
                let again = parse(&indicator.value, None, &options);
                prop_assert_eq!(again.map(|p| p.first().clone()), Ok(indicator.clone()));
                let declared = parse(&indicator.value, Some(indicator.kind), &options);
                prop_assert_eq!(declared.map(|p| p.first().clone()), Ok(indicator.clone()));
            }
        }
    }

    /// Detection never picks a kind whose own parser would say something else.
    #[test]
    fn detected_kind_parses_the_same(raw in realistic()) {
        let options = ParseOptions::default();
        if let Ok(parsed) = parse(&raw, None, &options) {
            let kind: Kind = parsed.first().kind;
            prop_assert_eq!(parse(&raw, Some(kind), &options), Ok(parsed));
        }
    }
}
