//! Unit tests of the pieces that need no server: the filter grammar, item validation, ordering and
//! paging of the lists, and the per-type cap. The HTTP behaviour is tested against a real server
//! in `tests/trend_vision_one.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone as _, Utc};
use serde_json::json;

use super::data::{CapacityOverflow, Config, DeleteMissing, DuplicateAdd};
use super::*;

fn config() -> Config {
    Config {
        capacity_per_type: 5,
        exception_capacity_per_type: 5,
        capacity_overflow: CapacityOverflow::Reject,
        duplicate_add: DuplicateAdd::Update,
        delete_missing: DeleteMissing::NotFound,
        list_expired: false,
        never_expires_as: NEVER_EXPIRES_AS.to_string(),
    }
}

fn rules() -> ItemRules {
    ItemRules {
        ignore_unknown_fields: false,
        zero_days: ZeroDays::Invalid,
        default_scan_action: ScanAction::Block,
        default_days: 30,
    }
}

fn subject(t: ObjectType, v: &str, r: RiskLevel) -> (ObjectType, String, RiskLevel) {
    (t, t.identity(v), r)
}

fn eval(filter: &str, item: &(ObjectType, String, RiskLevel)) -> bool {
    let f = parse_filter(filter, ListKind::Suspicious).unwrap().unwrap();
    f.matches(&Subject {
        object_type: item.0,
        identity: &item.1,
        scan_action: Some(ScanAction::Log),
        risk_level: Some(item.2),
    })
}

#[test]
fn filter_grammar_evaluates_and_or_not_and_parentheses() {
    let url_high = subject(ObjectType::Url, "http://a.example/x", RiskLevel::High);
    let ip_low = subject(ObjectType::Ip, "198.51.100.7", RiskLevel::Low);
    assert!(eval("type eq 'url'", &url_high));
    assert!(!eval("type eq 'url'", &ip_low));
    assert!(eval("type eq 'url' AND riskLevel eq 'high'", &url_high));
    assert!(!eval("type eq 'url' and riskLevel eq 'low'", &url_high));
    assert!(eval("type eq 'ip' or riskLevel eq 'high'", &ip_low));
    assert!(eval("not type eq 'url'", &ip_low));
    assert!(eval(
        "(type eq 'ip' or type eq 'url') and not (riskLevel eq 'medium')",
        &ip_low
    ));
    assert!(eval("ip eq '198.51.100.7'", &ip_low));
    assert!(eval("scanAction eq 'log'", &ip_low));
    // `and` binds tighter than `or`.
    assert!(eval(
        "type eq 'ip' or type eq 'url' and riskLevel eq 'low'",
        &ip_low
    ));
    assert!(!eval(
        "(type eq 'ip' or type eq 'url') and riskLevel eq 'high'",
        &ip_low
    ));
}

#[test]
fn filter_values_compare_by_identity() {
    let sha = subject(ObjectType::FileSha1, &"AB".repeat(20), RiskLevel::High);
    assert!(eval(&format!("fileSha1 eq '{}'", "ab".repeat(20)), &sha));
    let v6 = subject(ObjectType::Ip, "2001:db8:0:0::1", RiskLevel::High);
    assert!(eval("ip eq '2001:db8::1'", &v6));
    let quoted = subject(ObjectType::Url, "http://x.example/it's", RiskLevel::High);
    assert!(eval("url eq 'http://x.example/it''s'", &quoted));
}

#[test]
fn filter_refuses_syntax_outside_the_grammar() {
    for bad in [
        "type ne 'url'",
        "type eq url",
        "type eq 'url' and",
        "(type eq 'url'",
        "type eq 'url')",
        "contains(url, 'x')",
        "type eq 'bogus'",
        "riskLevel eq 'critical'",
        "value eq 'x'",
        "type eq 'url",
        "type in ('url')",
    ] {
        assert!(
            parse_filter(bad, ListKind::Suspicious).is_err(),
            "{bad} should be refused"
        );
    }
    assert!(parse_filter("riskLevel eq 'high'", ListKind::Exceptions).is_err());
    let long = format!("url eq '{}'", "a".repeat(MAX_FILTER_CHARS));
    assert!(parse_filter(&long, ListKind::Suspicious).is_err());
    assert_eq!(parse_filter("   ", ListKind::Suspicious), Ok(None));
    let e = parse_filter("type ne 'url'", ListKind::Suspicious).unwrap_err();
    assert_eq!(e.column, 6, "{e}");
}

#[test]
fn suspicious_add_items_are_validated() {
    let ok = model::parse_suspicious_add(
        &json!({"domain": "*.evil.example", "riskLevel": "low", "scanAction": "log", "daysToExpiration": 7, "description": "d"}),
        &rules(),
    )
    .unwrap();
    assert_eq!(ok.object_type, ObjectType::Domain);
    assert_eq!(ok.risk_level, RiskLevel::Low);
    assert_eq!(ok.days, Some(7));
    let defaults = model::parse_suspicious_add(&json!({"ip": "198.51.100.7"}), &rules()).unwrap();
    assert_eq!(defaults.risk_level, RiskLevel::High);
    assert_eq!(defaults.scan_action, ScanAction::Block);
    assert_eq!(defaults.days, Some(30));
    let never =
        model::parse_suspicious_add(&json!({"ip": "::1", "daysToExpiration": -1}), &rules())
            .unwrap();
    assert_eq!(never.days, None);

    let refused = [
        json!({}),
        json!("http://x.example"),
        json!({"url": "http://x.example", "domain": "x.example"}),
        json!({"url": 5}),
        json!({"url": ""}),
        json!({"url": format!("http://x.example/{}", "a".repeat(2048))}),
        json!({"url": "http://x.example/a*b"}),
        json!({"domain": "no-dot"}),
        json!({"ip": "198.51.100.0/24"}),
        json!({"ip": "999.1.1.1"}),
        json!({"fileSha1": "abc"}),
        json!({"fileSha256": "z".repeat(64)}),
        json!({"senderMailAddress": "nobody"}),
        json!({"ip": "198.51.100.7", "riskLevel": "critical"}),
        json!({"ip": "198.51.100.7", "scanAction": "quarantine"}),
        json!({"ip": "198.51.100.7", "daysToExpiration": 0}),
        json!({"ip": "198.51.100.7", "daysToExpiration": "7"}),
        json!({"ip": "198.51.100.7", "daysToExpiration": 1.5}),
        json!({"ip": "198.51.100.7", "description": "x".repeat(1001)}),
        json!({"ip": "198.51.100.7", "bogus": 1}),
    ];
    for item in refused {
        let e = model::parse_suspicious_add(&item, &rules()).unwrap_err();
        assert_eq!(e.status, 400, "{item}");
        assert!(e.message.starts_with("Invalid request - "), "{}", e.message);
    }
    let lenient = ItemRules {
        ignore_unknown_fields: true,
        zero_days: ZeroDays::Never,
        ..rules()
    };
    let zero = model::parse_suspicious_add(
        &json!({"ip": "198.51.100.7", "daysToExpiration": 0, "bogus": 1}),
        &lenient,
    )
    .unwrap();
    assert_eq!(zero.days, None);
}

#[test]
fn exception_items_allow_patterns_and_refuse_suspicious_fields() {
    for value in [
        json!({"ip": "192.168.35.1-192.168.35.254"}),
        json!({"ip": "192.168.35.0/24"}),
        json!({"domain": "*.example.com"}),
        json!({"url": "https://*.example.com/path1/*"}),
    ] {
        model::parse_exception_add(&value, &rules()).unwrap();
    }
    let e = model::parse_exception_add(&json!({"ip": "10.0.0.1", "riskLevel": "high"}), &rules())
        .unwrap_err();
    assert!(e.message.contains("riskLevel"), "{}", e.message);
    // Deletes ignore everything but the value key.
    let d = model::parse_delete(&json!({"url": "http://x.example", "description": "d"})).unwrap();
    assert_eq!(d.object_type, ObjectType::Url);
}

fn object(t: ObjectType, v: &str, minutes_ago: i64, risk: RiskLevel) -> SuspiciousObject {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    SuspiciousObject {
        object_type: t,
        value: v.to_string(),
        description: None,
        scan_action: ScanAction::Block,
        risk_level: risk,
        last_modified: now - Duration::minutes(minutes_ago),
        expires: None,
        in_exception_list: false,
    }
}

fn query(order: Order, top: usize) -> ListQuery {
    ListQuery {
        order,
        start: None,
        end: Utc::now(),
        filter: None,
        after: None,
        top,
    }
}

#[test]
fn keyset_paging_neither_skips_nor_repeats_while_items_arrive() {
    let state = State::new(Config {
        capacity_per_type: 1000,
        ..config()
    });
    for i in 0..25 {
        state.put_suspicious(object(
            ObjectType::Domain,
            &format!("d{i}.example"),
            i64::from(i % 3),
            RiskLevel::High,
        ));
    }
    let order = Order::parse("lastModifiedDateTime desc", ListKind::Suspicious).unwrap();
    let mut q = query(order, 10);
    let mut seen = Vec::new();
    loop {
        let page = state.list_suspicious(&q, Utc::now());
        for item in &page.items {
            seen.push(item["domain"].as_str().unwrap().to_string());
        }
        // Something new arrives between pages: newest first, so it sorts before the cursor.
        state.put_suspicious(object(
            ObjectType::Domain,
            &format!("late{}.example", seen.len()),
            0,
            RiskLevel::High,
        ));
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no item twice");
    assert_eq!(
        seen.iter().filter(|d| d.starts_with('d')).count(),
        25,
        "every item that was there at the start"
    );
}

#[test]
fn ordering_by_risk_level_and_expiry() {
    let state = State::new(config());
    state.put_suspicious(object(ObjectType::Ip, "198.51.100.1", 1, RiskLevel::Medium));
    state.put_suspicious(object(ObjectType::Ip, "198.51.100.2", 2, RiskLevel::High));
    state.put_suspicious(object(ObjectType::Ip, "198.51.100.3", 3, RiskLevel::Low));
    let asc = Order::parse("riskLevel", ListKind::Suspicious).unwrap();
    let page = state.list_suspicious(&query(asc, 50), Utc::now());
    let risks: Vec<&str> = page
        .items
        .iter()
        .map(|i| i["riskLevel"].as_str().unwrap())
        .collect();
    assert_eq!(risks, ["low", "medium", "high"]);
    assert!(Order::parse("expiredDateTime desc", ListKind::Exceptions).is_none());
    assert!(Order::parse("riskLevel sideways", ListKind::Suspicious).is_none());
}

#[test]
fn per_type_cap_rejects_or_evicts() {
    let now = Utc::now();
    let add = |v: String| {
        Ok(SuspiciousAdd {
            object_type: ObjectType::Domain,
            value: v,
            description: None,
            scan_action: ScanAction::Log,
            risk_level: RiskLevel::Low,
            days: Some(10),
        })
    };
    let state = State::new(config());
    let five: Vec<_> = (0..5).map(|i| add(format!("a{i}.example"))).collect();
    assert_eq!(state.add_suspicious(five, now).unwrap().len(), 5);
    // Re-adding held objects is an update, not growth.
    assert!(
        state
            .add_suspicious(vec![add("a0.example".into())], now)
            .is_ok()
    );
    let e = state
        .add_suspicious(vec![add("b.example".into())], now)
        .unwrap_err();
    assert!(
        e.message
            .contains("The number of objects exceeds the maximum limit"),
        "{}",
        e.message
    );
    assert_eq!(state.suspicious_objects().len(), 5);
    // Another type has its own cap.
    let ip = Ok(SuspiciousAdd {
        object_type: ObjectType::Ip,
        value: "198.51.100.9".into(),
        description: None,
        scan_action: ScanAction::Log,
        risk_level: RiskLevel::Low,
        days: None,
    });
    assert!(state.add_suspicious(vec![ip], now).is_ok());

    let evicting = State::new(Config {
        capacity_overflow: CapacityOverflow::Evict,
        ..config()
    });
    let five: Vec<_> = (0..5).map(|i| add(format!("a{i}.example"))).collect();
    evicting.add_suspicious(five, now).unwrap();
    evicting
        .add_suspicious(vec![add("b.example".into())], now)
        .unwrap();
    let held: Vec<String> = evicting
        .suspicious_objects()
        .into_iter()
        .map(|o| o.value)
        .collect();
    assert_eq!(held.len(), 5);
    assert!(held.contains(&"b.example".to_string()));
}

#[test]
fn skip_tokens_round_trip_and_refuse_garbage() {
    let token = SkipToken {
        list: "so".into(),
        order: Order::parse("lastModifiedDateTime desc", ListKind::Suspicious).unwrap(),
        primary: 1_700_000_000,
        rev: 42,
        filter: Some("type eq 'url'".into()),
    };
    assert_eq!(SkipToken::decode(&token.encode()), Some(token));
    assert_eq!(SkipToken::decode("not a token"), None);
    assert_eq!(SkipToken::decode(""), None);
}

#[test]
fn seeding_makes_every_type_with_varied_fields() {
    let state = State::new(Config {
        capacity_per_type: 10_000,
        ..config()
    });
    state.seed(600, 60, 7, Utc::now());
    let objects = state.suspicious_objects();
    assert_eq!(objects.len(), 600);
    for t in ObjectType::ALL {
        let of_type: Vec<_> = objects.iter().filter(|o| o.object_type == t).collect();
        assert_eq!(of_type.len(), 100, "{t}");
        for o in &of_type {
            model::validate_value(t, &o.value, false).unwrap();
        }
    }
    for r in RiskLevel::ALL {
        assert!(objects.iter().any(|o| o.risk_level == r));
    }
    assert!(objects.iter().any(|o| o.expires.is_none()));
    assert!(objects.iter().any(|o| o.expires.is_some()));
    assert!(objects.iter().any(|o| o.description.is_some()));
    let oldest = objects.iter().map(|o| o.last_modified).min().unwrap();
    assert!(oldest > Utc::now() - Duration::days(31));
    assert!(oldest < Utc::now() - Duration::days(20));
    assert_eq!(state.exceptions().len(), 60);
}

#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

#[test]
fn flags_parse_and_args_new_matches_their_defaults() {
    use clap::{CommandFactory as _, Parser as _};
    Cli::command().debug_assert();
    let parsed = Cli::try_parse_from(["sim", "--token", "t"]).unwrap().args;
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Args::new("t")));
    assert!(
        !format!("{parsed:?}").contains("\"t\""),
        "the token is redacted"
    );
    let parsed = Cli::try_parse_from([
        "sim",
        "--token",
        "t",
        "--objects",
        "50",
        "--default-days-to-expiration",
        "-1",
        "--zero-days-to-expiration",
        "never",
        "--capacity-overflow",
        "evict",
        "--delete-missing",
        "no-content",
        "--duplicate-add",
        "reject",
        "--body-too-large",
        "html",
        "--default-scan-action",
        "log",
        "--lenient-top",
        "--fault-429-every",
        "3",
    ])
    .unwrap()
    .args;
    assert_eq!(parsed.objects, 50);
    assert_eq!(parsed.default_days_to_expiration, -1);
    assert_eq!(parsed.zero_days_to_expiration, ZeroDays::Never);
    assert_eq!(parsed.capacity_overflow, CapacityOverflow::Evict);
    assert_eq!(parsed.delete_missing, DeleteMissing::NoContent);
    assert_eq!(parsed.duplicate_add, DuplicateAdd::Reject);
    assert_eq!(parsed.body_too_large, BodyTooLarge::Html);
    assert_eq!(parsed.default_scan_action, ScanAction::Log);
    assert!(parsed.lenient_top);
    assert_eq!(parsed.faults.rate_limit_every, Some(3));
    assert!(Cli::try_parse_from(["sim"]).is_err(), "--token is required");
}

#[test]
fn duplicate_adds_can_be_refused() {
    let state = State::new(Config {
        duplicate_add: DuplicateAdd::Reject,
        ..config()
    });
    let add = || {
        Ok(SuspiciousAdd {
            object_type: ObjectType::Ip,
            value: "198.51.100.1".into(),
            description: None,
            scan_action: ScanAction::Log,
            risk_level: RiskLevel::Low,
            days: None,
        })
    };
    let first = state.add_suspicious(vec![add()], Utc::now()).unwrap();
    assert_eq!(first, [json!({"status": 201})]);
    let second = state.add_suspicious(vec![add()], Utc::now()).unwrap();
    assert_eq!(second[0]["status"], 400);
}

#[test]
fn expired_objects_leave_the_list_unless_kept() {
    let expired = SuspiciousObject {
        expires: Some(Utc::now() - Duration::minutes(1)),
        ..object(ObjectType::Domain, "gone.example", 90, RiskLevel::Low)
    };
    let state = State::new(config());
    state.put_suspicious(expired.clone());
    assert!(state.suspicious_objects().is_empty());
    let keeping = State::new(Config {
        list_expired: true,
        ..config()
    });
    keeping.put_suspicious(expired);
    assert_eq!(keeping.suspicious_objects().len(), 1);
}
