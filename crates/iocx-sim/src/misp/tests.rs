//! Unit tests of the value checks, the filter language and the feed rendering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone as _, Utc};
use serde_json::json;

use super::search::{Filters, ListFilter, Range, like, loose_bool, resolve_time};
use super::*;

#[test]
fn values_are_checked_and_stored_as_misp_stores_them() {
    let t = |name: &str| attribute_type(name).unwrap();
    assert_eq!(
        t("md5")
            .check(" D41D8CD98F00B204E9800998ECF8427E ")
            .unwrap(),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert!(t("md5").check("d41d8cd98f00b204").is_err());
    assert_eq!(t("ip-dst").check("10.0.0.1").unwrap(), "10.0.0.1");
    assert_eq!(t("ip-dst").check("10.0.0.0/8").unwrap(), "10.0.0.0/8");
    assert!(t("ip-dst").check("10.0.0.0/33").is_err());
    assert!(t("ip-src").check("evil.example").is_err());
    assert_eq!(
        t("ip-dst|port").check("10.0.0.1|443").unwrap(),
        "10.0.0.1|443"
    );
    assert!(t("ip-dst|port").check("10.0.0.1|99999").is_err());
    assert_eq!(
        t("domain|ip").check("Evil.Example|10.0.0.1").unwrap(),
        "evil.example|10.0.0.1"
    );
    assert_eq!(t("domain").check("Evil.EXAMPLE").unwrap(), "evil.example");
    assert!(t("domain").check("no_dot").is_err());
    assert!(t("email-src").check("a b@x.example").is_err());
    assert!(t("url").check("http://x.example/a b").is_err());
    assert_eq!(
        t("filename|sha256")
            .check(&format!("a.exe|{}", "AB".repeat(32)))
            .unwrap(),
        format!("a.exe|{}", "ab".repeat(32))
    );
    assert!(t("comment").check("   ").is_err());
    assert!(attribute_type("no-such-type").is_none());
}

#[test]
fn list_filters_negate_wildcard_and_combine() {
    let f = ListFilter::parse(&json!(["tlp:%", "!tlp:red"]), "tags")
        .unwrap()
        .unwrap();
    assert!(f.matches(&["tlp:amber"]));
    assert!(!f.matches(&["tlp:amber", "tlp:red"]));
    assert!(!f.matches(&["osint"]));
    let f = ListFilter::parse(&json!({"AND": ["a", "b"], "NOT": "c"}), "tags")
        .unwrap()
        .unwrap();
    assert!(f.matches(&["a", "b"]));
    assert!(!f.matches(&["a"]));
    assert!(!f.matches(&["a", "b", "c"]));
    // Only negations: no positive list, still a filter.
    let f = ListFilter::parse(&json!(["!x"]), "tags").unwrap().unwrap();
    assert!(f.matches(&["y"]) && !f.matches(&["x"]));
    assert!(ListFilter::parse(&json!([]), "tags").unwrap().is_none());
    assert!(ListFilter::parse(&json!({"XOR": ["a"]}), "tags").is_err());
    assert!(like("Evil.Example", "%example"));
    assert!(like("abc", "a%c"));
    assert!(!like("abd", "a%c"));
}

#[test]
fn times_take_epochs_dates_and_spans() {
    let now = Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
    assert_eq!(resolve_time(&json!("1700000000"), now), Some(1_700_000_000));
    assert_eq!(resolve_time(&json!(5), now), Some(5));
    assert_eq!(
        resolve_time(&json!("1d"), now),
        Some(now.timestamp() - 86_400)
    );
    assert_eq!(
        resolve_time(&json!("2026-01-09"), now),
        Some(
            Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0)
                .unwrap()
                .timestamp()
        )
    );
    assert_eq!(resolve_time(&json!("soon"), now), None);
    assert!(
        Range {
            from: Some(5),
            to: Some(9)
        }
        .contains(9)
    );
    assert!(
        !Range {
            from: Some(5),
            to: None
        }
        .contains(4)
    );
    assert_eq!(loose_bool(Some(&json!("1"))).unwrap(), Some(true));
    assert_eq!(loose_bool(Some(&json!([0, 1]))).unwrap(), None);
    assert!(loose_bool(Some(&json!("maybe"))).is_err());
}

#[test]
fn filters_refuse_bad_shapes_with_the_field_name() {
    let now = Utc::now();
    let body = |v: serde_json::Value| v.as_object().unwrap().clone();
    let f = Filters::parse(
        &body(json!({"page": "2", "limit": 50, "to_ids": 1, "timestamp": "1700000000"})),
        now,
    )
    .unwrap();
    assert_eq!((f.page, f.limit, f.to_ids), (Some(2), Some(50), Some(true)));
    assert_eq!(f.timestamp.unwrap().from, Some(1_700_000_000));
    let e = Filters::parse(&body(json!({"limit": -1})), now).unwrap_err();
    assert!(e.0.contains("limit"), "{e:?}");
    let e = Filters::parse(&body(json!({"timestamp": "whenever"})), now).unwrap_err();
    assert!(e.0.contains("timestamp"), "{e:?}");
}

#[test]
fn events_round_trip_into_the_feed_format() {
    let (_, emulator) = build(&Args::new("k")).unwrap();
    let state = emulator.state;
    let (event, dropped) = state
        .add_event(
            &json!({"Event": {"info": "feed test", "published": true, "threat_level_id": "2",
            "Tag": [{"name": "tlp:green"}, {"name": "local-only", "local": 1}],
            "Attribute": [
                {"type": "domain|ip", "value": "evil.example|10.0.0.1"},
                {"type": "md5", "value": "not-a-hash"},
            ]}}),
            Utc::now(),
        )
        .unwrap();
    assert!(dropped.is_some(), "the bad md5 is reported");
    assert_eq!(event.attributes.len(), 1);
    let manifest = state.feed_manifest();
    let entry = &manifest[&event.uuid];
    assert_eq!(entry["info"], "feed test");
    assert_eq!(entry["threat_level_id"], 2);
    assert_eq!(
        entry["Tag"].as_array().unwrap().len(),
        1,
        "local tags stay out of feeds"
    );
    let feed = state.feed_event(&event.uuid).unwrap();
    assert_eq!(
        feed["Event"]["Attribute"][0]["value"],
        "evil.example|10.0.0.1"
    );
    let hashes = state.feed_hashes();
    assert_eq!(
        hashes.lines().count(),
        2,
        "one line per part of a composite value: {hashes}"
    );
    assert!(hashes.lines().all(|l| l.ends_with(&event.uuid)));
    assert!(build(&Args::new(" ")).is_err());
}

#[test]
fn the_flags_parse_and_default_as_args_new() {
    use clap::{CommandFactory as _, Parser as _};
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "sim",
        "--key",
        "k",
        "--events",
        "3",
        "--tags-include-event",
        "false",
    ])
    .unwrap();
    assert_eq!(cli.args.events, 3);
    assert!(!cli.args.tags_include_event);
    let defaults = Cli::try_parse_from(["sim", "--key", "k"]).unwrap().args;
    let new = Args::new("k");
    assert_eq!(
        (
            defaults.misp_version,
            defaults.max_limit,
            defaults.validation_status,
            defaults.serve_feed
        ),
        (
            new.misp_version,
            new.max_limit,
            new.validation_status,
            new.serve_feed
        )
    );
    assert!(Cli::try_parse_from(["sim"]).is_err(), "--key is required");
}
