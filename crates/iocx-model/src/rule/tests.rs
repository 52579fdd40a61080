#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::{Kind, Severity};

const NOW: Timestamp = Timestamp(1_790_000_000);

fn view(kind: Kind, value: &str) -> IndicatorView {
    IndicatorView {
        kind: Some(kind),
        value: value.into(),
        severity: Severity::High,
        reputation: 3,
        tags: vec!["apt".into(), "TLP:AMBER".into()],
        sources: vec!["edr".into(), "intel".into()],
        hits: 12,
        first_seen: Timestamp(NOW.0 - 20 * 86_400),
        last_seen: Timestamp(NOW.0 - 3_600),
        expires: None,
        aged_at: Timestamp(NOW.0 + 86_400),
        safe: false,
        shared_with: vec!["tv1".into()],
    }
}

fn holds(rule: &str, v: &IndicatorView) -> bool {
    Rule::parse(rule)
        .unwrap_or_else(|e| panic!("{rule}: {e}"))
        .matches(v, NOW)
}

#[test]
fn every_field_and_operator() {
    let d = view(Kind::Domain, "a.evil.example");
    let cases = [
        ("kind = domain", true),
        ("kind == DOMAIN", true),
        ("kind in (url, domain)", true),
        ("kind not in (url)", true),
        ("kind != domain", false),
        ("type = domain", true),
        ("value = \"a.evil.example\"", true),
        ("value = A.EVIL.EXAMPLE", true),
        ("value != a.evil.example", false),
        ("value contains \"evil\"", true),
        ("value contains \"EVIL\"", false),
        ("value contains \"\"", true),
        ("value starts_with \"a.\"", true),
        ("value ends_with \".example\"", true),
        ("value ends_with \"%\"", false),
        ("value matches /^a\\.evil/", true),
        ("value matches /^A\\.EVIL/i", true),
        ("value matches /^A\\.EVIL/", false),
        ("value matches /^b/", false),
        ("value matches \"^a\"", true),
        ("value subdomain_of evil.example", true),
        ("value subdomain_of EVIL.example.", true),
        ("value subdomain_of a.evil.example", true),
        ("value subdomain_of vil.example", false),
        ("value within 10.0.0.0/8", false),
        ("value in (\"x.example\", \"a.evil.example\")", true),
        ("value not in (\"x.example\", \"A.evil.example\")", false),
        ("severity >= high", true),
        ("severity > high", false),
        ("severity < critical", true),
        ("severity <= medium", false),
        ("severity = HIGH", true),
        ("severity in (low, high)", true),
        ("severity not in (low, high)", false),
        ("reputation <= 3", true),
        ("reputation in (1, 2)", false),
        ("sources = 2", true),
        ("sources > 2", false),
        ("hits >= 10", true),
        ("hits in (1, 12)", true),
        ("hits <> 12", false),
        ("tags contains \"apt\"", true),
        ("tags contains apt", true),
        ("tags contains \"APT\"", false),
        ("tags = \"TLP:AMBER\"", true),
        ("tags != \"apt\"", false),
        ("tags in (\"x\", \"apt\")", true),
        ("tags not in (\"x\", \"y\")", true),
        ("tags all (\"x\", \"apt\")", false),
        ("tags all (\"TLP:AMBER\", \"apt\")", true),
        ("source = edr", true),
        ("source = \"other\"", false),
        ("source in (other, intel)", true),
        ("source all (edr, intel)", true),
        ("source all (edr, other)", false),
        ("source not in (other)", true),
        ("shared_with = tv1", true),
        ("shared_with != tv1", false),
        ("sharedWith in (a, b)", false),
        ("last_seen > now - 2h", true),
        ("last_seen > now-30m", false),
        ("last_seen >= now - 1h", true),
        ("first_seen < now - 7d", true),
        ("first_seen < now - 3w", false),
        ("first_seen >= 2026-01-01", true),
        ("first_seen >= \"2026-01-01T00:00:00+02:00\"", true),
        ("last_seen < now + 1d", true),
        ("expires > now", true),
        ("expires >= now + 520w", true),
        ("expires < now + 365d", false),
        ("expires = now", false),
        ("expires != now", true),
        ("active", true),
        ("ACTIVE = true", true),
        ("active = false", false),
        ("active != true", false),
        ("not safe", true),
        ("safe", false),
        ("safe = false", true),
    ];
    for (rule, want) in cases {
        assert_eq!(holds(rule, &d), want, "{rule}");
    }
    let ip = view(Kind::Ipv4, "10.1.2.3");
    assert!(holds("value within 10.0.0.0/8", &ip));
    assert!(holds("value within 10.1.2.3", &ip));
    assert!(!holds("value within 192.168.0.0/16", &ip));
    assert!(!holds("value within ::/0", &ip));
    let net = view(Kind::Cidr, "2001:db8::/48");
    assert!(holds("value within 2001:db8::/32", &net));
    assert!(!holds("value within 2001:db8::/64", &net));
    let url = view(Kind::Url, "http://x.evil.example:8080/a?b");
    assert!(holds("value subdomain_of evil.example", &url));
    assert!(holds("value subdomain_of example", &url));
    let ip_url = view(Kind::Url, "http://10.1.2.3/a");
    assert!(!holds("value within 10.0.0.0/8", &ip_url));
    let mail = view(Kind::Email, "ceo@mail.evil.example");
    assert!(holds("value subdomain_of evil.example", &mail));
    let hash = view(Kind::Md5, "5d41402abc4b2a76b9719d911017c592");
    assert!(holds("value = 5d41402abc4b2a76b9719d911017c592", &hash));
    assert!(holds("value = 5D41402ABC4B2A76B9719D911017C592", &hash));
}

#[test]
fn expiry_and_activity() {
    let mut v = view(Kind::Domain, "x.example");
    v.expires = Some(Timestamp(NOW.0 + 60));
    assert!(holds("expires < now + 2m", &v));
    assert!(holds("active", &v));
    v.expires = Some(NOW);
    assert!(!holds("active", &v), "expiring now is expired");
    v.expires = None;
    v.aged_at = NOW;
    assert!(!holds("active", &v), "ageing out now is aged out");
}

#[test]
fn precedence_and_grouping() {
    let p = |t: &str| Rule::parse(t).unwrap().expr().clone();
    let c = |t: &str| match p(t) {
        Expr::Cond(c) => Expr::Cond(c),
        other => panic!("{t}: {other:?}"),
    };
    let (a, b, x) = (c("kind = url"), c("safe"), c("hits > 1"));
    // not > and > or
    assert_eq!(
        p("kind = url or safe and hits > 1"),
        Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), x.clone()])])
    );
    assert_eq!(
        p("(kind = url or safe) and hits > 1"),
        Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), x.clone()])
    );
    assert_eq!(
        p("not kind = url and safe"),
        Expr::And(vec![Expr::Not(Box::new(a.clone())), b.clone()])
    );
    assert_eq!(
        p("NOT (kind = url OR safe)"),
        Expr::Not(Box::new(Expr::Or(vec![a.clone(), b.clone()])))
    );
    assert_eq!(
        p("kind = url and safe and hits > 1"),
        Expr::And(vec![a.clone(), b.clone(), x.clone()])
    );
    assert_eq!(p("((kind = url))"), a);
    assert_eq!(
        p("not not safe"),
        Expr::Not(Box::new(Expr::Not(Box::new(b))))
    );
    let d = view(Kind::Domain, "a.example");
    assert!(holds(
        "kind = url or kind = domain and severity >= high",
        &d
    ));
    assert!(!holds(
        "(kind = url or kind = domain) and severity >= critical",
        &d
    ));
}

#[test]
fn comments_and_lines() {
    let r = Rule::parse(
        "# share only what matters\nkind in (url, domain)   # web\n  and severity >= high\n",
    )
    .unwrap();
    assert_eq!(r.to_string(), "kind in (url, domain) and severity >= high");
}

#[test]
fn errors_say_where_and_what() {
    let cases = [
        (
            "",
            1,
            1,
            "expected a condition such as `severity >= high`, found end of input",
        ),
        (
            "severity >=",
            1,
            12,
            "expected a severity after `>=`, found end of input",
        ),
        (
            "hits >= ",
            1,
            9,
            "expected a whole number after `>=`, found end of input",
        ),
        (
            "severity > urgent",
            1,
            12,
            "unknown severity `urgent`; severities are unknown, low",
        ),
        (
            "kind = file",
            1,
            8,
            "unknown kind `file`; kinds are url, domain",
        ),
        (
            "hits contains \"x\"",
            1,
            6,
            "`contains` cannot be used with `hits`",
        ),
        ("colour = red", 1, 1, "unknown field `colour`"),
        ("sevrity = high", 1, 1, "did you mean `severity`?"),
        (
            "kind = url and",
            1,
            15,
            "expected a field such as `severity` or `tags`, found end of input",
        ),
        (
            "kind = url\n  and (severity >= high",
            2,
            24,
            "expected `)` to close the `(` at line 2, column 7",
        ),
        ("value matches /a(?=b)/", 1, 17, "lookaround"),
        ("value matches /\\w+/", 1, 16, "different things"),
        ("value\n  matches /ab\\/c\\p{L}/", 2, 17, "Unicode classes"),
        ("value matches /abc", 1, 15, "never closed"),
        ("value matches /a/x", 1, 18, "unknown regex flag `x`"),
        (
            "value within 10.0.0.0/40",
            1,
            14,
            "prefix length must be 0 to 32",
        ),
        (
            "value within evil.example",
            1,
            14,
            "not an IP address or CIDR range",
        ),
        ("value subdomain_of 10.0.0.1", 1, 20, "not a domain name"),
        ("value subdomain_of .example.com", 1, 20, "without `.`"),
        ("last_seen > 7d", 1, 13, "write `now - 7d`"),
        ("last_seen > now - 7", 1, 19, "needs a unit"),
        ("last_seen > now - 7y", 1, 19, "unknown time unit `y`"),
        ("last_seen > yesterday", 1, 13, "not a time"),
        ("first_seen < 1700000000", 1, 14, "expected a time"),
        ("value = \"open", 1, 9, "never closed"),
        ("tags = \"a\\qb\"", 1, 10, "unknown escape"),
        (
            "kind = url kind = domain",
            1,
            12,
            "expected `and`, `or` or the end of the rule after `url`",
        ),
        (
            "tags in (\"a\",)",
            1,
            14,
            "expected a tag in the list, found `)`",
        ),
        (
            "tags in (\"a\" \"b\")",
            1,
            14,
            "expected `,` or `)` in the list",
        ),
        (
            "tags in \"a\"",
            1,
            9,
            "expected `(` and a list of a tag after `in`",
        ),
        ("kind = (url)", 1, 8, "a list in parentheses goes with `in`"),
        (
            "reputation > 11",
            1,
            14,
            "reputation from 1 (malicious) to 10",
        ),
        ("hits > -1", 1, 8, "a count of hits (0 or more)"),
        ("active = yes", 1, 10, "expected true or false"),
        (
            "source contains x",
            1,
            8,
            "`source` takes = != in (…) not in (…) all (…)",
        ),
        ("severity", 1, 9, "expected an operator after `severity`"),
        (
            "kind ! url",
            1,
            6,
            "write `!=` to compare or `not` to negate",
        ),
        (
            "(kind = url",
            1,
            12,
            "expected `)` to close the `(` at line 1, column 1",
        ),
        (
            "kind = url)",
            1,
            11,
            "expected `and`, `or` or the end of the rule",
        ),
        ("and kind = url", 1, 1, "expected a field"),
    ];
    for (rule, line, column, text) in cases {
        let e = Rule::parse(rule).expect_err(rule);
        assert_eq!((e.line, e.column), (line, column), "{rule:?}: {e}");
        assert!(e.message.contains(text), "{rule:?}: {e}");
    }
    // The error reads as the brief shows it.
    assert_eq!(
        Rule::parse("severity >= high and hits >=")
            .unwrap_err()
            .to_string(),
        "line 1, column 29: expected a whole number after `>=`, found end of input"
    );
}

#[test]
fn nesting_and_length_are_bounded() {
    let deep = format!(
        "{}safe{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(
        Rule::parse(&deep)
            .unwrap_err()
            .message
            .contains("nests deeper")
    );
    let ok = format!(
        "{}safe{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(Rule::parse(&ok).is_ok());
    let nots = format!("{}safe", "not ".repeat(MAX_DEPTH + 1));
    assert!(Rule::parse(&nots).is_err());
    let long = format!("tags in ({})", vec!["\"a\""; MAX_RULE_LEN / 3].join(","));
    assert!(
        Rule::parse(&long)
            .unwrap_err()
            .message
            .contains("longer than")
    );
}

#[test]
fn canonical_text_round_trips() {
    for (rule, canonical) in [
        (
            "KIND IN (URL, Domain) AND severity>=high AND last_seen>now-7d",
            "kind in (url, domain) and severity >= high and last_seen > now - 1w",
        ),
        (
            "not (value within 10.1.2.3/8 or value subdomain_of Corp.Example) and active = true",
            "not (value within 10.0.0.0/8 or value subdomain_of corp.example) and active",
        ),
        (
            "tags all ('a', \"b\\\"c\") or source = x and hits > 3",
            "tags all (\"a\", \"b\\\"c\") or source = \"x\" and hits > 3",
        ),
        (
            "value matches /a\\/b\\d+/i and expires < 2030-01-01",
            "value matches /a\\/b\\d+/i and expires < \"2030-01-01T00:00:00Z\"",
        ),
        ("not not safe", "not not safe"),
        (
            "safe = false or active != false",
            "safe = false or active != false",
        ),
        ("(a_and = 1)", ""),
    ] {
        let Ok(r) = Rule::parse(rule) else {
            assert!(canonical.is_empty(), "{rule}");
            continue;
        };
        let text = r.to_string();
        assert_eq!(text, canonical, "{rule}");
        assert_eq!(Rule::parse(&text).unwrap(), r, "{rule} → {text}");
        assert_eq!(Rule::from_expr(r.expr().clone()).unwrap(), r);
    }
    // A tree the parser could not have produced is refused.
    let odd = Expr::And(vec![Expr::Cond(Cond {
        field: Field::Safe,
        op: Op::Eq,
        value: Value::Bool(true),
    })]);
    assert!(Rule::from_expr(odd).is_err());
    let wrong = Expr::Cond(Cond {
        field: Field::Hits,
        op: Op::Contains,
        value: Value::Int(1),
    });
    assert!(Rule::from_expr(wrong).is_err());
}

#[test]
fn explain_names_every_term() {
    let d = view(Kind::Domain, "a.example");
    let r =
        Rule::parse("kind = domain and (severity >= critical or hits > 5) and not safe").unwrap();
    let e = r.explain(&d, NOW);
    assert!(e.holds);
    assert_eq!(e.term, r.to_string());
    assert_eq!(e.parts.len(), 3);
    assert_eq!(e.parts[1].term, "severity >= critical or hits > 5");
    assert_eq!(e.parts[1].parts[0].term, "severity >= critical");
    assert!(!e.parts[1].parts[0].holds);
    assert_eq!(
        e.parts[1].parts[0].found.as_deref(),
        Some("severity is high")
    );
    assert!(e.parts[1].parts[1].holds);
    assert_eq!(e.parts[2].term, "not safe");
    assert_eq!(e.parts[2].parts[0].found.as_deref(), Some("safe is false"));
    let failed: Vec<&str> = e
        .conditions(false)
        .iter()
        .map(|c| c.term.as_str())
        .collect();
    assert_eq!(failed, ["severity >= critical", "safe"]);
    assert_eq!(
        e.to_lines(),
        [
            "✓ kind = domain and (severity >= critical or hits > 5) and not safe",
            "  ✓ kind = domain  (kind is domain)",
            "  ✓ severity >= critical or hits > 5",
            "    ✗ severity >= critical  (severity is high)",
            "    ✓ hits > 5  (hits are 12)",
            "  ✓ not safe",
            "    ✗ safe  (safe is false)",
        ]
    );
    let r = Rule::parse("source all (edr, other) or value subdomain_of b.example").unwrap();
    let e = r.explain(&d, NOW);
    assert!(!e.holds);
    assert_eq!(
        e.parts[0].found.as_deref(),
        Some("sources: \"edr\", \"intel\"")
    );
    assert_eq!(e.parts[1].found.as_deref(), Some("host is \"a.example\""));
    // The JSON form, as `iocx explain --json` prints it.
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["parts"][0]["holds"], false);
}

#[test]
fn sql_placeholders_and_shapes() {
    let r = Rule::parse("value = \"x.example\" and tags contains \"a\" and hits > 3").unwrap();
    let s = r.to_sql(Dialect::Postgres, NOW, 2);
    assert_eq!(
        s.sql,
        "((i.value = $3) AND (i.tagset IN (SELECT tagset_id FROM tagset_member WHERE tag = $4)) AND (i.hits > 3))"
    );
    assert_eq!(
        s.params,
        [
            SqlParam::Text("x.example".into()),
            SqlParam::Text("a".into())
        ]
    );
    let s = r.to_sql(Dialect::Sqlite, NOW, 0);
    assert!(s.sql.contains("?1") && s.sql.contains("?2"), "{}", s.sql);
    let s = Rule::parse("last_seen > now - 7d and active")
        .unwrap()
        .to_sql(Dialect::Sqlite, NOW, 0);
    let t = NOW.0 - 7 * 86_400;
    assert_eq!(
        s.sql,
        format!(
            "((i.last_seen > {t} AND i.seen_day >= {}) AND (i.aged_at > {n} AND (i.expires IS NULL OR i.expires > {n})))",
            t / 86_400,
            n = NOW.0
        )
    );
    // Regexes travel in the form each engine runs.
    let r = Rule::parse("value matches /a\\d/i").unwrap();
    assert_eq!(
        r.to_sql(Dialect::Postgres, NOW, 0).params,
        [SqlParam::Text("[aA][0-9]".into())]
    );
    assert_eq!(
        r.to_sql(Dialect::Sqlite, NOW, 0).params,
        [SqlParam::Text("(?s:[aA][0-9])".into())]
    );
    // No `$` may reach SQLite: the store rewrites `$N` to `?N`.
    let all = Rule::parse(
        "value matches /a$/ and value subdomain_of x.example and value within 10.0.0.0/8 \
         and source all (a, b) and shared_with not in (c) and expires < now",
    )
    .unwrap();
    assert!(!all.to_sql(Dialect::Sqlite, NOW, 0).sql.contains('$'));
}

#[test]
fn allow_list_entry_reports_what_matched() {
    let l = AllowList::from_entries("corp", [".corp.example", "10.0.0.0/8"]).unwrap();
    let e = l.matches(Kind::Url, "https://vpn.corp.example/").unwrap();
    assert_eq!(e, &Entry::Suffix("corp.example".into()));
    assert_eq!(e.to_string(), ".corp.example");
    assert_eq!(
        l.matches(Kind::Ipv4, "10.0.0.1"),
        Some(&Entry::Range(IpAddr::from([10, 0, 0, 0]), 8))
    );
}

// ---- property tests: the formatter round trip, and the parser on arbitrary input ----

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "apt",
            "TLP:AMBER",
            "a b",
            "quote\"d",
            "back\\slash",
            "é",
            "7d",
            "12",
            "and",
            "not"
        ])
        .prop_map(str::to_string),
        "[ -~]{0,8}",
    ]
}

fn time() -> impl Strategy<Value = TimeValue> {
    prop_oneof![
        (-100_000i64..100_000).prop_map(|s| TimeValue::Now(s * 7)),
        (0i64..4_000_000_000).prop_map(|s| TimeValue::At(Timestamp(s))),
    ]
}

fn cond() -> impl Strategy<Value = Cond> {
    let ord = proptest::sample::select(vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge]);
    let set_op = proptest::sample::select(vec![Op::In, Op::NotIn]);
    let kinds = proptest::sample::subsequence(Kind::ALL.to_vec(), 1..4);
    let values = proptest::sample::select(vec![
        "evil.example",
        "http://evil.example/a?b=1",
        "10.0.0.1",
        "2001:db8::/32",
        "a@b.example",
        "d41d8cd98f00b204e9800998ecf8427e",
        "not an indicator",
    ])
    .prop_map(str::to_string);
    let regexes = proptest::sample::select(vec![
        "^a",
        "b$",
        "a\\/b",
        "[a-z]+\\d{2,3}",
        "(?:x|y)*?",
        "\\.exe$",
        "é",
        "",
    ]);
    prop_oneof![
        (proptest::sample::select(Kind::ALL.to_vec()), any::<bool>()).prop_map(|(k, ne)| Cond {
            field: Field::Kind,
            op: if ne { Op::Ne } else { Op::Eq },
            value: Value::Kind(k),
        }),
        (kinds, set_op.clone()).prop_map(|(ks, op)| Cond {
            field: Field::Kind,
            op,
            value: Value::Kinds(ks),
        }),
        (values.clone(), any::<bool>()).prop_map(|(v, ne)| Cond {
            field: Field::Value,
            op: if ne { Op::Ne } else { Op::Eq },
            value: Value::Text(v),
        }),
        (proptest::collection::vec(values, 1..4), set_op.clone()).prop_map(|(vs, op)| Cond {
            field: Field::Value,
            op,
            value: Value::Texts(vs),
        }),
        (
            proptest::sample::select(vec![Op::Contains, Op::StartsWith, Op::EndsWith]),
            name()
        )
            .prop_map(|(op, t)| Cond {
                field: Field::Value,
                op,
                value: Value::Text(t),
            }),
        (regexes, any::<bool>()).prop_map(|(re, ci)| Cond {
            field: Field::Value,
            op: Op::Matches,
            value: Value::Regex(Pattern::new(re, ci).unwrap()),
        }),
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| Cond {
            field: Field::Value,
            op: Op::Within,
            value: Value::Cidr(sql_functions::network(IpAddr::from(a.to_be_bytes()), p), p),
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| Cond {
            field: Field::Value,
            op: Op::Within,
            value: Value::Cidr(sql_functions::network(IpAddr::from(a.to_be_bytes()), p), p),
        }),
        proptest::sample::select(vec![
            "example",
            "evil.example",
            "xn--bcher-kva.example",
            "a_b.example"
        ])
        .prop_map(|d| Cond {
            field: Field::Value,
            op: Op::SubdomainOf,
            value: Value::Domain(d.to_string()),
        }),
        (
            ord.clone(),
            proptest::sample::select(Severity::ALL.to_vec())
        )
            .prop_map(|(op, s)| Cond {
                field: Field::Severity,
                op,
                value: Value::Severity(s),
            }),
        (
            set_op.clone(),
            proptest::sample::subsequence(Severity::ALL.to_vec(), 1..3)
        )
            .prop_map(|(op, ss)| Cond {
                field: Field::Severity,
                op,
                value: Value::Severities(ss),
            }),
        (
            ord.clone(),
            1i64..=10,
            proptest::sample::select(vec![Field::Reputation, Field::Sources, Field::Hits])
        )
            .prop_map(|(op, n, field)| Cond {
                field,
                op,
                value: Value::Int(n),
            }),
        (set_op, proptest::collection::vec(1i64..=10, 1..4)).prop_map(|(op, ns)| Cond {
            field: Field::Hits,
            op,
            value: Value::Ints(ns),
        }),
        (
            proptest::sample::select(vec![Field::Tags, Field::Source, Field::SharedWith]),
            proptest::sample::select(vec![Op::Eq, Op::Ne, Op::Contains]),
            name()
        )
            .prop_map(|(field, op, t)| Cond {
                field,
                op: if field != Field::Tags && op == Op::Contains {
                    Op::Eq
                } else {
                    op
                },
                value: Value::Text(t),
            }),
        (
            proptest::sample::select(vec![Field::Tags, Field::Source, Field::SharedWith]),
            proptest::sample::select(vec![Op::In, Op::NotIn, Op::All]),
            proptest::collection::vec(name(), 1..4)
        )
            .prop_map(|(field, op, ts)| Cond {
                field,
                op,
                value: Value::Texts(ts),
            }),
        (
            ord,
            time(),
            proptest::sample::select(vec![Field::FirstSeen, Field::LastSeen, Field::Expires])
        )
            .prop_map(|(op, t, field)| Cond {
                field,
                op,
                value: Value::Time(t),
            }),
        (
            proptest::sample::select(vec![Field::Active, Field::Safe]),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(field, b, eq)| Cond {
                field,
                op: if eq { Op::Eq } else { Op::Ne },
                value: Value::Bool(b),
            }),
    ]
}

/// Random trees of the shape the parser produces: `And`/`Or` of two or more parts, never an
/// `And` directly inside an `And` (nor `Or` in `Or`), since the text would flatten them.
fn expr() -> impl Strategy<Value = Expr> {
    cond()
        .prop_map(Expr::Cond)
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 2..4).prop_map(|ps| Expr::And(
                    ps.into_iter()
                        .flat_map(|p| match p {
                            Expr::And(v) => v,
                            p => vec![p],
                        })
                        .collect()
                )),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(|ps| Expr::Or(
                    ps.into_iter()
                        .flat_map(|p| match p {
                            Expr::Or(v) => v,
                            p => vec![p],
                        })
                        .collect()
                )),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
}

/// Values in `value =` and `value in` are canonical in a parsed tree.
fn canonicalise(e: Expr) -> Expr {
    match e {
        Expr::And(ps) => Expr::And(ps.into_iter().map(canonicalise).collect()),
        Expr::Or(ps) => Expr::Or(ps.into_iter().map(canonicalise).collect()),
        Expr::Not(p) => Expr::Not(Box::new(canonicalise(*p))),
        Expr::Cond(mut c) => {
            if c.field == Field::Value {
                c.value = match c.value {
                    Value::Text(t) if matches!(c.op, Op::Eq | Op::Ne) => {
                        Value::Text(parser::canonical_value(&t))
                    }
                    Value::Texts(ts) => {
                        Value::Texts(ts.iter().map(|t| parser::canonical_value(t)).collect())
                    }
                    v => v,
                };
            }
            Expr::Cond(c)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn formatter_round_trips(e in expr()) {
        let e = canonicalise(e);
        let text = display::to_text(&e);
        let parsed = Rule::parse(&text).map_err(|err| TestCaseError::fail(format!("{text}\n{err}")))?;
        prop_assert_eq!(parsed.expr(), &e, "text: {}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn parser_never_panics(text in "[ -~\\n]{0,60}") {
        let _ = Rule::parse(&text);
    }

    #[test]
    fn parser_never_panics_near_the_language(
        words in proptest::collection::vec(proptest::sample::select(vec![
            "kind", "value", "tags", "hits", "last_seen", "expires", "active", "=", "!=", ">=", "in",
            "not", "and", "or", "(", ")", ",", "\"x\"", "url", "high", "now", "-", "7d", "matches",
            "/a/", "/[/", "within", "10.0.0.0/8", "subdomain_of", "all", "#", "\n",
        ]), 0..12)
    ) {
        let _ = Rule::parse(&words.join(" "));
    }
}

// ---- measurements (run with `--ignored --nocapture`, in release for real figures) ----

#[test]
#[ignore = "a measurement; run explicitly"]
fn bench_in_memory_evaluation() {
    use std::time::Instant;
    let views: Vec<IndicatorView> = (0..200_000u32)
        .map(|i| {
            let mut v = view(
                if i % 3 == 0 { Kind::Url } else { Kind::Domain },
                &format!("http://h{i}.evil{}.example/p", i % 100),
            );
            v.severity = Severity::ALL[(i % 5) as usize];
            v.last_seen = Timestamp(NOW.0 - i64::from(i % 30) * 86_400);
            v
        })
        .collect();
    for rule in [
        "severity >= high and kind in (url, domain)",
        "last_seen > now - 7d",
        "tags contains \"apt\"",
        "value matches /evil[0-9]+\\.example/ and not value subdomain_of evil7.example",
        "kind in (url, domain) and severity >= high and last_seen > now - 7d and source all (edr, intel) and not tags contains \"test\"",
    ] {
        let r = Rule::parse(rule).unwrap();
        let start = Instant::now();
        let mut n = 0usize;
        for _ in 0..5 {
            n += views.iter().filter(|v| r.matches(v, NOW)).count();
        }
        let per = start.elapsed().as_nanos() as f64 / (5.0 * views.len() as f64);
        println!("in-memory  {per:>7.1} ns/indicator  ({n} matched)  {rule}");
    }
}

#[test]
#[ignore = "a measurement; run explicitly"]
fn bench_allow_list_lookups() {
    use std::time::Instant;
    // 100k entries: a third each of values, ranges and suffixes.
    let mut entries = Vec::new();
    for i in 0..33_334u32 {
        entries.push(format!("host{i}.listed.example"));
        let [a, b, c, _] = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
        entries.push(format!("{}.{b}.{c}.0/24", a.max(1)));
        entries.push(format!(".zone{i}.example"));
    }
    let start = Instant::now();
    let list = AllowList::from_entries("big", entries.iter().map(String::as_str)).unwrap();
    println!(
        "allow-list built from {} entries in {:?}",
        list.len(),
        start.elapsed()
    );
    let probes: Vec<(Kind, String)> = (0..1_000_000u32)
        .map(|i| match i % 4 {
            0 => (Kind::Domain, format!("host{}.listed.example", i % 60_000)),
            1 => {
                let [a, b, c, d] = i.wrapping_mul(2_246_822_519).to_be_bytes();
                (Kind::Ipv4, format!("{a}.{b}.{c}.{d}"))
            }
            2 => (
                Kind::Url,
                format!("https://www.a.zone{}.example/x", i % 60_000),
            ),
            _ => (Kind::Sha256, format!("{i:064x}")),
        })
        .collect();
    let start = Instant::now();
    let hits = probes
        .iter()
        .filter(|(k, v)| list.matches(*k, v).is_some())
        .count();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "allow-list {:.1} M lookups/s ({:.0} ns each; {hits} of {} matched), by kind:",
        probes.len() as f64 / secs / 1e6,
        secs * 1e9 / probes.len() as f64,
        probes.len()
    );
    for kind in [Kind::Domain, Kind::Ipv4, Kind::Url, Kind::Sha256] {
        let some: Vec<&(Kind, String)> = probes.iter().filter(|(k, _)| *k == kind).collect();
        let start = Instant::now();
        let hits = some
            .iter()
            .filter(|(k, v)| list.matches(*k, v).is_some())
            .count();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "  {kind:<7} {:>5.0} ns each ({hits} of {} matched)",
            secs * 1e9 / some.len() as f64,
            some.len()
        );
    }
}

#[test]
#[ignore = "scratch"]
fn scratch_pieces() {
    use std::time::Instant;
    let urls: Vec<String> = (0..250_000u32)
        .map(|i| format!("https://www.a.zone{}.example/x", i % 60_000))
        .collect();
    let ips: Vec<String> = (0..250_000u32)
        .map(|i| {
            let [a, b, c, d] = i.wrapping_mul(2_246_822_519).to_be_bytes();
            format!("{a}.{b}.{c}.{d}")
        })
        .collect();
    let t = Instant::now();
    let n: usize = urls
        .iter()
        .map(|u| sql_functions::host(Kind::Url, u).len())
        .sum();
    println!(
        "host(url) {:.0} ns ({n})",
        t.elapsed().as_nanos() as f64 / 250_000.0
    );
    let t = Instant::now();
    let n = ips
        .iter()
        .filter(|u| sql_functions::ip_prefix(u).is_some())
        .count();
    println!(
        "ip_prefix {:.0} ns ({n})",
        t.elapsed().as_nanos() as f64 / 250_000.0
    );
    let mut m: hashbrown::HashMap<String, u32> = hashbrown::HashMap::new();
    for i in 0..33_000u32 {
        m.insert(format!("zone{i}.example"), i);
    }
    let t = Instant::now();
    let n = urls.iter().filter(|u| m.get(u.as_str()).is_some()).count();
    println!(
        "miss probe {:.0} ns ({n})",
        t.elapsed().as_nanos() as f64 / 250_000.0
    );
    let keys: Vec<String> = (0..250_000u32)
        .map(|i| format!("zone{}.example", i % 60_000))
        .collect();
    let t = Instant::now();
    let n = keys.iter().filter(|u| m.get(u.as_str()).is_some()).count();
    println!(
        "hit-ish probe {:.0} ns ({n})",
        t.elapsed().as_nanos() as f64 / 250_000.0
    );
    let mut b: std::collections::BTreeMap<u32, (u32, u32)> = std::collections::BTreeMap::new();
    for i in 0..33_000u32 {
        let x = i.wrapping_mul(2_654_435_761) & !0xff;
        b.insert(x, (x | 0xff, i));
    }
    let ipn: Vec<u32> = (0..250_000u32)
        .map(|i| i.wrapping_mul(2_246_822_519))
        .collect();
    let t = Instant::now();
    let n = ipn
        .iter()
        .filter(|x| {
            b.range(..=**x)
                .next_back()
                .is_some_and(|(_, (e, _))| e >= x)
        })
        .count();
    println!(
        "btree {:.0} ns ({n})",
        t.elapsed().as_nanos() as f64 / 250_000.0
    );
}

/// Found by the API fuzzer: a word of multi-byte characters used to be sliced at byte 3.
#[test]
fn multibyte_words_are_errors_not_panics() {
    for text in [
        "»ö\u{82da8}",
        "\u{c6392}",
        "Æ£\u{80}\u{93}",
        "nöw-7d",
        "now-7d",
        "ñow+1h",
    ] {
        let _ = Rule::parse(text);
    }
    assert!(Rule::parse("last_seen >= now-7d").is_ok());
}
