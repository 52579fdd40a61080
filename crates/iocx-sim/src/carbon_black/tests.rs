//! Unit tests of the pieces that need no server: report and watchlist validation, the alert
//! search grammar, the limits and the seed data. The HTTP behaviour is tested against a real
//! server in `tests/carbon_black.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone as _, Utc};
use serde_json::json;

use super::*;

fn report(values: &[&str]) -> serde_json::Value {
    json!({"id": "r", "timestamp": 1, "title": "t", "description": "", "severity": 5,
           "iocs_v2": [{"id": "i", "match_type": "equality", "field": "netconn_domain", "values": values}]})
}

#[test]
fn reports_are_read_with_their_iocs() {
    let r = parse_report(&report(&["a.example", "b.example"]), "reports[0]", None).unwrap();
    assert_eq!(r.iocs_v2[0].match_type, MatchType::Equality);
    assert_eq!(r.ioc_count(IocCounting::Values), 2);
    assert_eq!(r.ioc_count(IocCounting::Entries), 1);
    let e = parse_report(&report(&[]), "reports[3]", None).unwrap_err();
    assert_eq!(
        e.0,
        "reports[3].iocs_v2[0].values: must hold at least one value"
    );
    let e = parse_report(&json!("x"), "reports[0]", None).unwrap_err();
    assert!(e.0.contains("must be an object"));
    let mut no_id = report(&["x"]);
    no_id.as_object_mut().unwrap().remove("id");
    let make = || "made".to_string();
    assert_eq!(parse_report(&no_id, "r", Some(&make)).unwrap().id, "made");
    // A float timestamp is not an integer.
    let mut float = report(&["x"]);
    float["timestamp"] = json!(1.5);
    assert!(parse_report(&float, "r", None).is_err());
}

#[test]
fn feedinfo_and_watchlists_are_validated() {
    let ok = parse_feedinfo(
        &json!({"name": "n", "provider_url": "", "summary": "", "category": "c", "access": "private"}),
        "feedinfo",
    )
    .unwrap();
    assert_eq!(ok.access, Some(Access::Private));
    for bad in [
        json!({"provider_url": "", "summary": "", "category": ""}),
        json!({"name": "", "provider_url": "", "summary": "", "category": ""}),
        json!({"name": "n", "summary": "", "category": ""}),
        json!({"name": "n", "provider_url": "", "summary": "", "category": "", "access": "world"}),
        json!({"name": 5, "provider_url": "", "summary": "", "category": ""}),
    ] {
        assert!(parse_feedinfo(&bad, "feedinfo").is_err(), "{bad}");
    }
    let w = parse_watchlist(&json!({"name": "w", "classifier": {"key": "feed_id", "value": "f"}}))
        .unwrap();
    assert!(w.tags_enabled && !w.alerts_enabled);
    assert!(
        parse_watchlist(&json!({"name": "w", "classifier": {"key": "other", "value": "f"}}))
            .is_err()
    );
}

fn limits() -> SearchLimits {
    SearchLimits { window: 10_000 }
}

#[test]
fn searches_are_parsed_and_refused_precisely() {
    let now = Utc.with_ymd_and_hms(2024, 6, 15, 0, 0, 0).unwrap();
    let s = parse_search(&json!({}), now, limits()).unwrap();
    assert_eq!((s.start, s.rows), (1, 100));
    let s = parse_search(&json!({"start": 0, "rows": 5}), now, limits()).unwrap();
    assert_eq!(s.start, 1);
    let e = parse_search(&json!({"rows": 2000, "start": 8002}), now, limits()).unwrap_err();
    assert!(e.beyond_window);
    let e = parse_search(&json!({"query": "a:b OR c:d"}), now, limits()).unwrap_err();
    assert!(e.malformed_query);
    let e = parse_search(&json!({"query": "nope:1"}), now, limits()).unwrap_err();
    assert!(e.malformed_query);
    assert!(parse_search(&json!({"query": "\"unbalanced"}), now, limits()).is_err());
    assert!(parse_search(&json!({"time_range": {"range": "-3x"}}), now, limits()).is_err());
    assert!(
        parse_search(
            &json!({"time_range": {"start": "2024-02-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}}),
            now,
            limits()
        )
        .is_err()
    );
    assert!(
        parse_search(
            &json!({"criteria": {"device_os": "WINDOWS"}}),
            now,
            limits()
        )
        .is_err()
    );
    assert!(parse_time("2024-01-01T00:00:00.123456Z").is_some());
    assert!(parse_time("2024-01-01T00:00:00").is_some());
    assert!(parse_time("2024-01-01").is_some());
    assert!(parse_time("soon").is_none());
}

#[test]
fn limits_count_reports_and_values() {
    let state = State::new(
        Config {
            org_key: "ORG".into(),
            max_reports_per_feed: 2,
            max_iocs_per_report: 3,
            ioc_counting: IocCounting::Values,
            search: limits(),
        },
        1,
    );
    let r = |id: &str, n: usize| {
        let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let mut v = report(&[]);
        v["id"] = json!(id);
        v["iocs_v2"][0]["values"] = json!(values);
        parse_report(&v, "r", None).unwrap()
    };
    assert!(state.check_reports(&[r("a", 3), r("b", 1)]).is_ok());
    assert!(state.check_reports(&[r("a", 4)]).is_err());
    assert!(
        state
            .check_reports(&[r("a", 1), r("b", 1), r("c", 1)])
            .is_err()
    );
    assert!(state.check_reports(&[r("a", 1), r("a", 1)]).is_err());
}

#[test]
fn seeded_alerts_are_realistic_and_deterministic() {
    let now = Utc.with_ymd_and_hms(2024, 6, 15, 0, 0, 0).unwrap();
    let config = || Config {
        org_key: "ORG".into(),
        max_reports_per_feed: 10,
        max_iocs_per_report: 10,
        ioc_counting: IocCounting::Values,
        search: limits(),
    };
    let a = State::new(config(), 9);
    a.seed(2, 3, 50, now);
    let b = State::new(config(), 9);
    b.seed(2, 3, 50, now);
    assert_eq!(a.snapshot(), b.snapshot());
    let all = a.search_alerts(&parse_search(&json!({"rows": 100}), now, limits()).unwrap());
    assert_eq!(all.num_found, 50);
    for alert in &all.results {
        for key in [
            "id",
            "type",
            "backend_timestamp",
            "severity",
            "process_sha256",
            "process_reputation",
        ] {
            assert!(!alert[key].is_null(), "{key} missing in {alert}");
        }
        for key in alert.as_object().unwrap().keys() {
            assert!(
                ALERT_FIELDS.contains(&key.as_str()),
                "{key} is not searchable"
            );
        }
        let sev = alert["severity"].as_i64().unwrap();
        assert!((1..=10).contains(&sev));
        assert!(REPUTATIONS.contains(&alert["process_reputation"].as_str().unwrap()));
    }
    assert_eq!(a.list_feeds(false).len(), 2);
    assert!(a.list_feeds(true).len() > 2);
}

#[test]
fn error_codes_are_screaming_snake_case() {
    let r = render_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "m");
    assert_eq!(r.status(), 429);
    assert_eq!(screaming("TooManyRequests"), "TOO_MANY_REQUESTS");
    assert_eq!(screaming("NOT_FOUND"), "NOT_FOUND");
    assert_eq!(screaming("ServiceUnavailable"), "SERVICE_UNAVAILABLE");
}

#[test]
fn args_defaults_match_the_flags() {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }
    let parsed = Wrapper::try_parse_from(["carbon-black"]).unwrap().args;
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Args::default()));
    assert_eq!(
        Args::default().auth_token(),
        format!("{DEFAULT_API_SECRET}/{DEFAULT_API_ID}")
    );
    assert_eq!(format!("{:?}", Secret::from("x")), "Secret(****)");
}
