//! Unit tests of the pieces that need no server: IOC validation and validity, identities,
//! cursors, the Python-literal detail, and the seed data. The HTTP behaviour is tested against
//! a real server in `tests/sentinelone.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use serde_json::json;

use super::model::*;
use super::*;

fn rules() -> IocRules {
    IocRules {
        reject_over_cap: false,
    }
}

fn item(t: &str, v: &str) -> serde_json::Value {
    json!({"type": t, "value": v, "method": "EQUALS", "source": "test"})
}

#[test]
fn values_are_checked_per_type() {
    let now = Utc::now();
    for (t, v) in [
        ("MD5", "a".repeat(32)),
        ("SHA1", "B".repeat(40)),
        ("SHA256", "c".repeat(64)),
        ("IPV4", "198.51.100.1".into()),
        ("IPV6", "2001:db8::1".into()),
        ("DNS", "evil.example".into()),
        ("URL", "https://evil.example/a?b=c".into()),
    ] {
        assert!(parse_ioc(&item(t, &v), &rules(), now).is_ok(), "{t} {v}");
    }
    for (t, v) in [
        ("MD5", "a".repeat(31)),
        ("SHA1", "g".repeat(40)),
        ("IPV4", "2001:db8::1".into()),
        ("IPV6", "198.51.100.1".into()),
        ("DNS", "not a domain".into()),
        ("URL", "has space".into()),
        ("md5", "a".repeat(32)),
        ("HASH", "a".repeat(32)),
    ] {
        let e = parse_ioc(&item(t, &v), &rules(), now).unwrap_err();
        assert_eq!(e.value, v);
        assert_eq!(e.ioc_type, t);
    }
}

#[test]
fn required_fields_and_validity_rules() {
    let now = Utc::now();
    let mut i = item("MD5", &"a".repeat(32));
    i.as_object_mut().unwrap().remove("method");
    assert!(
        parse_ioc(&i, &rules(), now)
            .unwrap_err()
            .message
            .starts_with("method")
    );
    let mut i = item("MD5", &"a".repeat(32));
    i["source"] = json!("");
    assert!(
        parse_ioc(&i, &rules(), now)
            .unwrap_err()
            .message
            .starts_with("source")
    );
    let mut i = item("MD5", &"a".repeat(32));
    i["severity"] = json!(8);
    assert!(parse_ioc(&i, &rules(), now).is_err());
    let mut i = item("IPV4", "198.51.100.1");
    i["validUntil"] = json!((now + Duration::days(90)).to_rfc3339());
    assert_eq!(
        parse_ioc(&i, &rules(), now).unwrap().valid_until,
        now + Duration::days(30)
    );
    let strict = IocRules {
        reject_over_cap: true,
    };
    assert!(parse_ioc(&i, &strict, now).is_err());
    let mut i = item("URL", "https://x.example");
    i["labels"] = json!(["a", 1]);
    assert!(parse_ioc(&i, &rules(), now).is_err());
    assert!(parse_ioc(&json!("x"), &rules(), now).is_err());
}

#[test]
fn identities_ignore_case_and_ip_spelling() {
    assert_eq!(IocType::Md5.identity("AB"), IocType::Md5.identity("ab"));
    assert_eq!(
        IocType::Ipv6.identity("2001:DB8:0::1"),
        IocType::Ipv6.identity("2001:db8::1")
    );
    assert_ne!(
        IocType::Url.identity("https://A.example"),
        IocType::Url.identity("https://a.example")
    );
}

#[test]
fn cursors_round_trip_and_forgeries_fail() {
    let c = Cursor {
        resource: "iocs".into(),
        sort_by: "id".into(),
        desc: true,
        key: SortValue::Int(5),
        seq: 5,
    };
    assert_eq!(Cursor::decode(&c.encode()), Some(c));
    assert_eq!(Cursor::decode("not base64!"), None);
}

#[test]
fn python_repr_writes_dict_literals() {
    let v = json!({"errors": [{"value": "it's", "ok": true, "n": null}]});
    assert_eq!(
        python_repr(&v),
        "{'errors': [{'n': None, 'ok': True, 'value': 'it\\'s'}]}"
    );
}

#[test]
fn site_ids_follow_the_account_id() {
    let sites = Args::new("t").site_list();
    assert_eq!(sites[0].id, "1100000000000000002");
    assert_eq!(sites[1].name, "iocx lab");
    assert!(sites.iter().all(|s| s.id.parse::<u64>().unwrap() >= MIN_ID));
}

#[test]
fn seeded_data_is_valid_and_reproducible() {
    let build = || {
        let mut a = Args::new("t");
        a.iocs = 700;
        a.threats = 30;
        a.seed = 9;
        build(&a).1
    };
    let (a, b) = (build(), build());
    let (ia, ib) = (a.state.iocs(), b.state.iocs());
    assert_eq!(ia.len(), 700);
    assert_eq!(
        ia.iter().map(|i| &i.value).collect::<Vec<_>>(),
        ib.iter().map(|i| &i.value).collect::<Vec<_>>()
    );
    let now = Utc::now();
    for i in &ia {
        assert!(
            i.ioc_type.check(&i.value).is_ok(),
            "{:?} {}",
            i.ioc_type,
            i.value
        );
        assert!(i.valid_until > now);
    }
    let threats = a.state.snapshot()["threats"].as_array().unwrap().len();
    assert_eq!(threats, 30);
}
