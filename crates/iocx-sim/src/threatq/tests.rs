//! Unit tests of the pieces that need no server: value checks, the query language, relative
//! dates, field selection and the value hash. The HTTP behaviour is tested against a real server
//! in `tests/threatq.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone as _, Utc};
use serde_json::json;

use super::query::{parse_api_query, resolve_date};
use super::*;

fn type_named(name: &str) -> IndicatorType {
    indicator_types(0)
        .into_iter()
        .find(|t| t.name == name)
        .unwrap()
}

fn indicator(value: &str, type_name: &str, status: &str, score: f64) -> Indicator {
    let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    Indicator {
        id: 7,
        value: value.into(),
        indicator_type: type_named(type_name),
        status: status_by_name(status).unwrap(),
        description: Some("Seen in a phishing wave".into()),
        manual_score: None,
        generated_score: score,
        sources: vec![SourceLink {
            id: 1,
            source_id: 1,
            name: "abuse.ch URLhaus".into(),
            source_type: "connectors".into(),
            tlp_id: Some(3),
            published_at: t0,
            created_at: t0,
        }],
        attributes: vec![Attribute {
            id: 2,
            attribute_id: 1,
            name: "Confidence".into(),
            value: "High".into(),
            created_at: t0,
            updated_at: t0,
        }],
        tags: vec![Tag {
            id: 1,
            name: "phishing".into(),
        }],
        created_at: t0,
        updated_at: t0 + Duration::days(1),
        touched_at: t0,
        published_at: t0,
        expires_at: None,
        expired_at: None,
    }
}

#[test]
fn values_are_checked_and_canonicalised_per_type() {
    assert_eq!(
        type_named("IP Address")
            .canonical(" 198.51.100.7 ")
            .unwrap(),
        "198.51.100.7"
    );
    assert!(type_named("IP Address").canonical("2001:db8::1").is_err());
    assert_eq!(
        type_named("IPv6 Address")
            .canonical("2001:DB8:0::1")
            .unwrap(),
        "2001:db8::1"
    );
    assert_eq!(
        type_named("FQDN").canonical("Evil.Example.").unwrap(),
        "evil.example"
    );
    assert!(type_named("FQDN").canonical("no spaces.example").is_err());
    assert_eq!(
        type_named("SHA-256").canonical(&"AB".repeat(32)).unwrap(),
        "ab".repeat(32)
    );
    assert!(type_named("MD5").canonical("abc").is_err());
    assert!(type_named("CIDR Block").canonical("10.0.0.0/33").is_err());
    assert!(type_named("CIDR Block").canonical("10.0.0.0/8").is_ok());
    assert!(type_named("Email Address").canonical("a@b.example").is_ok());
    assert!(type_named("Email Address").canonical("nobody").is_err());
    assert!(type_named("URL").canonical("http://x.example/a").is_ok());
    assert!(type_named("URL").canonical("has space").is_err());
    assert!(type_named("Mutex").canonical("").is_err());
}

#[test]
fn type_ids_follow_the_offset() {
    let plain = indicator_types(0);
    let shifted = indicator_types(100);
    assert_eq!(plain[0].id, 1);
    assert_eq!(shifted[0].id, 101);
    assert!(plain.iter().any(|t| t.name == "SHA-1"));
}

#[test]
fn query_language_evaluates_groups_operators_and_dates() {
    let now = Utc.with_ymd_and_hms(2024, 5, 10, 0, 0, 0).unwrap();
    let ind = indicator("login.evil.example", "FQDN", "Active", 8.0);
    let eval = |q: serde_json::Value| parse_api_query(&q, now).unwrap().matches(&ind);
    assert!(eval(json!({})));
    assert!(eval(json!({"criteria": {}, "filters": {}})));
    assert!(eval(json!({"filters": {"type_name": "FQDN"}})));
    assert!(eval(json!({"filters": {"type_name": ["URL", "fqdn"]}})));
    assert!(!eval(json!({"filters": {"status_name": "Expired"}})));
    assert!(eval(json!({"filters": {"score": {"+gte": 7, "+lt": 9}}})));
    assert!(!eval(json!({"filters": {"score": {"+gt": 8}}})));
    assert!(eval(
        json!({"criteria": {"+or": [{"mentions": "nothing"}, {"mentions": "EVIL"}]}})
    ));
    assert!(eval(json!({"criteria": {"mentions": "phishing wave"}})));
    assert!(eval(json!({"filters": {"+and": [
        {"created_at": {"+gt": "2024-04-30", "+lt": "NOW"}},
        {"source_name": "abuse.ch URLhaus"},
        {"tags": "phishing"},
        {"attribute": {"name": "Confidence", "value": "high"}}
    ]}})));
    assert!(!eval(
        json!({"filters": {"updated_at": {"+gt": "-2 days"}}})
    ));
    assert!(eval(
        json!({"filters": {"updated_at": {"+gt": "10 days ago"}}})
    ));
    assert!(eval(json!({"filters": {"+not": {"type_name": "URL"}}})));
    assert!(eval(json!({"criteria": {"value": {"+like": "%evil%"}}})));
    assert!(eval(json!({"criteria": {"value": "LOGIN.evil.example"}})));
}

#[test]
fn query_language_names_what_it_does_not_know() {
    let now = Utc::now();
    let e = parse_api_query(&json!({"filters": {"colour": "red"}}), now).unwrap_err();
    assert!(e.0.contains("colour"), "{e}");
    assert!(parse_api_query(&json!({"filters": {"score": {"+gt": "high"}}}), now).is_err());
    assert!(
        parse_api_query(
            &json!({"filters": {"created_at": {"+gt": "whenever"}}}),
            now
        )
        .is_err()
    );
    assert!(parse_api_query(&json!({"filters": {"score": {"+between": 1}}}), now).is_err());
    assert!(parse_api_query(&json!({"filters": []}), now).is_ok());
    assert!(parse_api_query(&json!({"filters": "x"}), now).is_err());
    // Deep nesting is refused, not a stack overflow.
    let mut deep = json!({"value": "x"});
    for _ in 0..200 {
        deep = json!({"+and": [deep]});
    }
    assert!(parse_api_query(&json!({"filters": deep}), now).is_err());
}

#[test]
fn relative_dates_resolve() {
    let now = Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap();
    assert_eq!(resolve_date("NOW", now), Some(now));
    assert_eq!(resolve_date("-7 days", now), Some(now - Duration::days(7)));
    assert_eq!(
        resolve_date("7 days ago", now),
        Some(now - Duration::days(7))
    );
    assert_eq!(resolve_date("+1 hour", now), Some(now + Duration::hours(1)));
    assert_eq!(
        resolve_date("2024-01-02 03:04:05", now),
        Some(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap())
    );
    assert_eq!(resolve_date("soon", now), None);
    assert_eq!(resolve_date("99999999999 years ago", now), None);
}

#[test]
fn fields_flatten_type_status_and_tags() {
    let ind = indicator("198.51.100.7", "IP Address", "Expired", 4.0);
    let fields: Vec<String> = ["id", "value", "type", "score", "status", "tags", "nonsense"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let v = indicator_fields(&ind, &fields, false);
    assert_eq!(
        v,
        json!({"id": 7, "value": "198.51.100.7", "type": "IP Address", "score": 4,
               "status": "Expired", "tags": ["phishing"]})
    );
    let objects = indicator_fields(&ind, &["tags".to_string()], true);
    assert_eq!(objects, json!({"tags": [{"id": 1, "name": "phishing"}]}));
}

#[test]
fn whole_objects_carry_embedded_type_status_and_score_forms() {
    let mut ind = indicator("198.51.100.7", "IP Address", "Active", 4.0);
    ind.manual_score = Some(9.0);
    let list = indicator_wire(&ind, &Render::default());
    assert_eq!(list["type"]["name"], "IP Address");
    assert_eq!(list["status"]["name"], "Active");
    assert_eq!(list["score"], 9);
    assert!(list.get("attributes").is_none());
    assert_eq!(list["created_at"], "2024-05-01 12:00:00");
    let single = indicator_wire(
        &ind,
        &Render {
            score_object: true,
            with: [Relation::Attributes, Relation::Sources]
                .into_iter()
                .collect(),
        },
    );
    assert_eq!(single["score"]["manual_score"], 9);
    assert_eq!(single["score"]["generated_score"], 4);
    assert_eq!(single["attributes"][0]["name"], "Confidence");
    assert_eq!(single["sources"][0]["tlp_id"], 3);
}

#[test]
fn value_hash_is_md5() {
    assert_eq!(value_hash(""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        value_hash("The quick brown fox jumps over the lazy dog"),
        "9e107d9d372bb6826bd81d3542a419d6"
    );
    assert_eq!(value_hash(&"a".repeat(200)).len(), 32);
}

#[test]
fn create_items_report_errors_by_field_and_position() {
    let types = indicator_types(0);
    let err = parse_new_indicator(&json!({"value": "x"}), &types, "2.").unwrap_err();
    assert_eq!(
        err["2.type"],
        vec!["The type field is required.".to_string()]
    );
    let err = parse_new_indicator(&json!({"value": "1.2.3", "type": "IP Address"}), &types, "")
        .unwrap_err();
    assert!(err["value"][0].contains("IP Address"));
    let err = parse_new_indicator(&json!({"value": "a.example", "type": "Nope"}), &types, "")
        .unwrap_err();
    assert_eq!(
        err["type"],
        vec!["The selected type is invalid.".to_string()]
    );
    let ok = parse_new_indicator(
        &json!({"value": "a.example", "type": {"name": "FQDN"}, "status": {"name": "Active"},
                "sources": [{"name": "Feed", "tlp": "AMBER"}], "tags": ["x", {"name": "y"}],
                "attributes": [{"name": "Severity", "value": 5}]}),
        &types,
        "",
    )
    .unwrap();
    assert_eq!(ok.sources, vec![("Feed".to_string(), Some(2))]);
    assert_eq!(ok.tags, vec!["x".to_string(), "y".to_string()]);
    assert_eq!(
        ok.attributes,
        vec![("Severity".to_string(), "5".to_string())]
    );
}

#[test]
fn seed_is_realistic_and_repeatable() {
    let (_, a) = build(&Args {
        indicators: 300,
        ..Args::new("id", "secret")
    })
    .unwrap();
    let (_, b) = build(&Args {
        indicators: 300,
        ..Args::new("id", "secret")
    })
    .unwrap();
    assert!(a.state.len() >= 290, "{}", a.state.len());
    let sa = a.state.snapshot();
    let sb = b.state.snapshot();
    let values = |s: &serde_json::Value| -> Vec<String> {
        s["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["value"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&sa), values(&sb));
    let types: std::collections::BTreeSet<String> = sa["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"]["name"].as_str().unwrap().to_string())
        .collect();
    for t in [
        "FQDN",
        "IP Address",
        "URL",
        "SHA-256",
        "MD5",
        "SHA-1",
        "Email Address",
    ] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }
    assert_eq!(sa["saved_searches"].as_array().unwrap().len(), 4);
}
