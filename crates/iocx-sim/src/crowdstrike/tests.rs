//! Unit tests of the pieces that need no server: FQL, value and item validation, sorting and
//! both kinds of paging, duplicates and the capacity. The HTTP behaviour is tested against a
//! real server in `tests/crowdstrike.rs`, and falconpy in `tests/sdk_crowdstrike.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone as _, Utc};
use serde_json::json;

use super::data::{Config, PageStart, Sort};
use super::fql::{self, FieldValue, Subject};
use super::model::*;
use super::*;

struct Fields(Vec<(&'static str, FieldValue)>);

impl Subject for Fields {
    fn field(&self, field: &str) -> FieldValue {
        self.0
            .iter()
            .find(|(k, _)| *k == field)
            .map_or(FieldValue::Null, |(_, v)| v.clone())
    }
}

const NAMES: &[&str] = &["type", "value", "tags", "modified_on", "n"];

fn subject() -> Fields {
    let t = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    Fields(vec![
        ("type", FieldValue::Str("sha256".into())),
        ("value", FieldValue::Str("Evil.Example".into())),
        (
            "tags",
            FieldValue::Strs(vec!["a".into(), "netskope-ce".into()]),
        ),
        ("modified_on", FieldValue::Time(t)),
        ("n", FieldValue::Int(2048)),
    ])
}

fn eval(filter: &str) -> bool {
    fql::parse(filter, NAMES)
        .unwrap()
        .unwrap()
        .matches(&subject())
}

#[test]
fn fql_evaluates_the_forms_netskope_sends() {
    assert!(eval("type: ['sha256', 'md5']"));
    assert!(!eval("type:!['sha256','md5']"));
    assert!(eval("modified_on:>='2024-05-01T10:00:00.000000Z'"));
    assert!(!eval("modified_on:>'2024-05-01T10:00:00Z'"));
    assert!(eval("modified_on:<'2024-05-02'"));
    assert!(!eval("tags:!'netskope-ce'"));
    assert!(eval("tags:'A'"));
    assert!(eval("value:'evil.example'+type:'sha256'"));
    assert!(eval("type:'md5',value:*'*.example'"));
    assert!(!eval("value:!*'evil*'"));
    assert!(eval("value:~'IL.EX'"));
    assert!(eval("(type:'md5',type:'sha256')+n:>=2048"));
    assert!(!eval("n:![2048, 4096]"));
    // A `+` that arrived as a space still means AND.
    assert!(!eval("type:'sha256' n:<100"));
    assert!(eval("value:\"Evil.Example\""));
}

#[test]
fn fql_refuses_what_it_cannot_read() {
    for bad in [
        "",
        "type",
        "type:",
        "colour:'x'",
        "type:'x'+",
        "type:['x'",
        "(type:'x'",
        "type:'x')",
        "type:'unterminated",
    ] {
        let parsed = fql::parse(bad, NAMES);
        if bad.is_empty() {
            assert_eq!(parsed, Ok(None));
        } else {
            assert!(parsed.is_err(), "{bad}");
        }
    }
    let deep = format!("{}type:'x'{}", "(".repeat(40), ")".repeat(40));
    assert!(fql::parse(&deep, NAMES).is_err());
    assert!(fql::parse(&"x".repeat(fql::MAX_FILTER_BYTES + 1), NAMES).is_err());
}

#[test]
fn fql_pins_value_lists_for_look_ups() {
    let f = fql::parse("value: ['a', 'b']+type:'md5'", NAMES)
        .unwrap()
        .unwrap();
    assert_eq!(
        f.pinned_values("value"),
        Some(&["a".to_string(), "b".to_string()][..])
    );
    let f = fql::parse("value:!'a'", NAMES).unwrap().unwrap();
    assert_eq!(f.pinned_values("value"), None);
    let f = fql::parse("value:'a',type:'md5'", NAMES).unwrap().unwrap();
    assert_eq!(f.pinned_values("value"), None);
}

#[test]
fn wildcards_match_like_globs() {
    assert!(fql::wildcard_match("Netskope*", "netskope - cloud"));
    assert!(fql::wildcard_match(
        "*exchange*",
        "Cloud Threat Exchange | x"
    ));
    assert!(!fql::wildcard_match("a*c", "abd"));
    assert!(fql::wildcard_match("*", ""));
}

fn rules() -> ItemRules {
    ItemRules {
        severity_optional: false,
        reject_uppercase: false,
    }
}

#[test]
fn values_are_checked_and_normalised_per_type() {
    let r = rules();
    assert_eq!(
        normalize_value(IocType::Md5, &"AB".repeat(16), &r).unwrap(),
        "ab".repeat(16)
    );
    assert!(normalize_value(IocType::Sha256, &"a".repeat(63), &r).is_err());
    assert!(normalize_value(IocType::Ipv4, "1.2.3.256", &r).is_err());
    assert_eq!(
        normalize_value(IocType::Ipv6, "2001:DB8::1", &r).unwrap(),
        "2001:db8::1"
    );
    assert!(normalize_value(IocType::Domain, "https://evil.example/x", &r).is_err());
    assert!(normalize_value(IocType::Domain, "*.evil.example", &r).is_err());
    assert!(normalize_value(IocType::Domain, "localhost", &r).is_err());
    assert!(normalize_value(IocType::Domain, "198.51.100.1", &r).is_err());
    let strict = ItemRules {
        reject_uppercase: true,
        ..r
    };
    assert!(normalize_value(IocType::Md5, &"AB".repeat(16), &strict).is_err());
}

#[test]
fn create_items_follow_the_field_rules() {
    let now = Utc::now();
    let base = json!({"type": "sha256", "value": "a".repeat(64), "action": "prevent", "severity": "HIGH",
        "platforms": ["windows"], "applied_globally": true});
    let ok = parse_create(&base, &rules(), now).unwrap();
    assert_eq!(ok.fields.severity, Some(Some(Severity::High)));
    let refuse = |patch: serde_json::Value, field: &str| {
        let mut item = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                item.as_object_mut().unwrap().remove(k);
            } else {
                item[k] = v.clone();
            }
        }
        let e = parse_create(&item, &rules(), now).unwrap_err();
        assert_eq!(e.field, field, "{item}: {e:?}");
    };
    refuse(json!({"type": "url"}), "type");
    refuse(json!({"type": null}), "type");
    refuse(json!({"action": null}), "action");
    refuse(json!({"type": "domain", "value": "x.example"}), "action");
    refuse(json!({"severity": null}), "severity");
    refuse(json!({"platforms": ["beos"]}), "platforms");
    refuse(json!({"platforms": []}), "platforms");
    refuse(json!({"applied_globally": false}), "applied_globally");
    refuse(json!({"host_groups": ["g1"]}), "host_groups");
    refuse(json!({"source": ""}), "source");
    refuse(json!({"source": "x".repeat(257)}), "source");
    refuse(json!({"expiration": "tomorrow"}), "expiration");
    refuse(
        json!({"expiration": (now - Duration::days(1)).to_rfc3339()}),
        "expiration",
    );
    refuse(json!({"tags": "a"}), "tags");
    let lenient = ItemRules {
        severity_optional: true,
        ..rules()
    };
    let mut item = base.clone();
    item.as_object_mut().unwrap().remove("severity");
    assert!(parse_create(&item, &lenient, now).is_ok());
    let mut item = base;
    item["applied_globally"] = json!(false);
    item["host_groups"] = json!(["0123456789abcdef0123456789abcdef"]);
    assert!(parse_create(&item, &rules(), now).is_ok());
}

fn state(capacity: usize) -> State {
    State::new(
        Config {
            capacity,
            partial_create: PartialCreate::StoreValid,
            after_at_end: AfterAtEnd::Empty,
            rules: rules(),
        },
        7,
    )
}

fn new_item(n: usize) -> (serde_json::Value, Result<NewIndicator, ItemError>) {
    let raw = json!({"type": "md5", "value": format!("{n:032x}"), "action": "detect", "severity": "low",
        "platforms": ["linux"], "applied_globally": true});
    let parsed = parse_create(&raw, &rules(), Utc::now());
    (raw, parsed)
}

#[test]
fn creates_refuse_duplicates_and_respect_the_capacity() {
    let s = state(3);
    let now = Utc::now();
    let out = s
        .create(vec![new_item(1), new_item(2), new_item(1)], now, "me")
        .unwrap();
    assert_eq!(out.written, 2);
    assert_eq!(out.errors[0]["code"], 409);
    assert_eq!(out.resources[2]["message_type"], "error");
    assert!(s.create(vec![new_item(3), new_item(4)], now, "me").is_err());
    assert_eq!(s.count(), 2);
    // Only duplicates: nothing new, so the capacity is not in the way.
    let out = s.create(vec![new_item(1)], now, "me").unwrap();
    assert_eq!(out.written, 0);
    assert_eq!(s.create(vec![new_item(3)], now, "me").unwrap().written, 1);
}

#[test]
fn offset_and_after_pages_cover_everything_in_order() {
    let s = state(1000);
    s.seed(37, 0, 3, Utc::now(), "me");
    let sort = Sort::parse("value|desc", data::INDICATOR_SORT_FIELDS).unwrap();
    let now = Utc::now();
    let mut seen = Vec::new();
    let mut start = PageStart::After(None);
    loop {
        let page = s.list(None, &sort, &start, 10, now);
        assert_eq!(page.total, 37);
        seen.extend(page.items.iter().map(|i| i.value.clone()));
        match page.next {
            Some(t) => start = PageStart::After(Some(t)),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 37);
    let page = s.list(None, &sort, &PageStart::Offset(30), 10, now);
    assert_eq!(page.items.len(), 7);
    assert!(page.next.is_none());
    assert_eq!(page.items[0].value, seen[30]);
}

#[test]
fn sorts_and_tokens_round_trip() {
    assert_eq!(
        Sort::parse("modified_on|asc", data::INDICATOR_SORT_FIELDS)
            .unwrap()
            .text(),
        "modified_on.asc"
    );
    assert_eq!(
        Sort::parse("value.desc", data::INDICATOR_SORT_FIELDS)
            .unwrap()
            .text(),
        "value.desc"
    );
    assert!(Sort::parse("value|sideways", data::INDICATOR_SORT_FIELDS).is_none());
    assert!(Sort::parse("colour", data::INDICATOR_SORT_FIELDS).is_none());
    let t = data::AfterToken {
        resource: "i".into(),
        sort: "value.asc".into(),
        key: data::SortValue::Text("x".into()),
        seq: 9,
        end: false,
    };
    assert_eq!(data::AfterToken::decode(&t.encode()), Some(t));
    assert_eq!(data::AfterToken::decode("%%%"), None);
}

#[test]
fn seeded_data_is_valid_reproducible_and_distinct() {
    let now = Utc::now();
    let a = state(100_000);
    a.seed(2000, 20, 5, now, "me");
    let b = state(100_000);
    b.seed(2000, 20, 5, now, "me");
    let (ia, ib) = (a.indicators(), b.indicators());
    assert_eq!(ia.len(), 2000);
    assert_eq!(
        ia.iter().map(|i| &i.value).collect::<Vec<_>>(),
        ib.iter().map(|i| &i.value).collect::<Vec<_>>()
    );
    for i in &ia {
        assert_eq!(
            normalize_value(i.ioc_type, &i.value, &rules()).unwrap(),
            i.value
        );
        assert!(!i.action.hash_only() || i.ioc_type.is_hash());
        assert!(i.modified_on >= i.created_on);
    }
    assert_eq!(a.alerts().len(), 20);
}
