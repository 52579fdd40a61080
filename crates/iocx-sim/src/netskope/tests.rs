//! In-process tests of the entry rules and the tenant state (the HTTP behaviour is tested in
//! `tests/netskope.rs` against a real server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};

use super::model::{AlertType, EntryCheck, ListType, check_entry, hash_kind, json_array_bytes};
use super::*;
use crate::common::{FaultConfig, Faults};

fn valid(s: &str) -> bool {
    matches!(check_entry(s, ListType::Exact, true), EntryCheck::Valid(_))
}

fn invalid(s: &str) -> bool {
    matches!(
        check_entry(s, ListType::Exact, true),
        EntryCheck::Invalid(_)
    )
}

#[test]
fn exact_entries_follow_the_tenant_rules() {
    for ok in [
        "example.com",
        "www.example.com",
        "*.example.com",
        "https://example.com/path/a.php?x=1",
        "http://*.example.co.uk/",
        "example.com:8080/login",
        "203.0.113.7",
        "xn--bcher-kva.example",
        "  padded.example.com  ",
    ] {
        assert!(valid(ok), "{ok} should be accepted");
    }
    for bad in [
        "exa mple.com",
        "exämple.com",
        "ex*ample.com",
        "*example.com",
        "*.*.example.com",
        "www.*.example.com",
        "example.com/*",
        "user:pass@example.com",
        "https://user@example.com/",
        "[2001:db8::1]",
        "2001:db8::1",
        "localhost",
        "-bad.example.com",
        "example.com:99999",
        "*.203.0.113.7",
        "1.2.3.999",
    ] {
        assert!(invalid(bad), "{bad} should be refused");
    }
    for skipped in ["", "   ", "# a comment", "; another"] {
        assert_eq!(
            check_entry(skipped, ListType::Exact, true),
            EntryCheck::Ignored
        );
    }
    assert!(matches!(
        check_entry("203.0.113.7", ListType::Exact, false),
        EntryCheck::Invalid(_)
    ));
}

#[test]
fn regex_entries_must_compile() {
    assert!(matches!(
        check_entry(
            r"^https?://[a-z0-9-]+\.evil\.example/.*$",
            ListType::Regex,
            true
        ),
        EntryCheck::Valid(_)
    ));
    assert!(matches!(
        check_entry("(unclosed", ListType::Regex, true),
        EntryCheck::Invalid(_)
    ));
    assert!(matches!(
        check_entry("a b", ListType::Regex, true),
        EntryCheck::Invalid(_)
    ));
}

#[test]
fn json_size_matches_serde() {
    let entries: Vec<String> = vec![
        "a.example".into(),
        "quote\"d".into(),
        "back\\slash".into(),
        "ctl\u{1}".into(),
    ];
    assert_eq!(
        json_array_bytes(&entries),
        serde_json::to_vec(&entries).unwrap().len()
    );
    assert_eq!(json_array_bytes(&[]), 2);
}

#[test]
fn hash_kinds() {
    assert!(hash_kind(&"a".repeat(32)).is_some());
    assert!(hash_kind(&"F".repeat(64)).is_some());
    assert!(hash_kind(&"a".repeat(40)).is_none());
    assert!(hash_kind(&"g".repeat(32)).is_none());
}

#[test]
fn operations_parse() {
    assert_eq!(Operation::parse("head"), Some(Operation::Head));
    assert_eq!(
        Operation::parse("1658502533"),
        Some(Operation::Epoch(1658502533))
    );
    assert_eq!(Operation::parse("-5"), None);
    assert_eq!(Operation::parse("Next"), None);
    assert_eq!(Operation::parse(""), None);
}

#[test]
fn default_args_match_the_flag_defaults() {
    assert_eq!(
        format!("{:?}", Args::default()),
        format!("{:?}", Args::fallback())
    );
}

fn state(args: Args) -> State {
    State::new(&args, Faults::new(FaultConfig::default()))
}

fn page(answer: ExportAnswer) -> Value {
    match answer {
        ExportAnswer::Page { body, .. } => serde_json::from_str(&body).unwrap(),
        ExportAnswer::TooEarly { .. } => panic!("unexpected TooEarly"),
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn generated_alerts_are_realistic_and_repeat_values() {
    let s = state(Args {
        alerts: 400,
        ..Args::default()
    });
    let malware = s.alerts(AlertType::Malware);
    let malsite = s.alerts(AlertType::Malsite);
    assert_eq!(malware.len() + malsite.len(), 400);
    assert!(malware.len() > 100 && malsite.len() > 100);
    let now = state::now_epoch();
    for a in &malware {
        assert_eq!(a["alert_type"], "Malware");
        assert_eq!(a["md5"].as_str().unwrap().len(), 32);
        assert_eq!(a["sha256"].as_str().unwrap().len(), 64);
        assert!(a["object"].is_string() && a["user"].is_string() && a["severity"].is_string());
        let ts = a["timestamp"].as_i64().unwrap();
        assert!(ts > now - 31 * 86_400 && ts <= now);
    }
    for a in &malsite {
        assert_eq!(a["alert_type"], "malsite");
        assert!(a["url"].as_str().unwrap().contains("://"));
        assert!(!a["malsite_category"].as_array().unwrap().is_empty());
    }
    let distinct: std::collections::HashSet<&str> =
        malware.iter().map(|a| a["md5"].as_str().unwrap()).collect();
    assert!(distinct.len() < malware.len(), "some files repeat");
    let sites: std::collections::HashSet<&str> =
        malsite.iter().map(|a| a["url"].as_str().unwrap()).collect();
    assert!(sites.len() < malsite.len(), "some sites repeat");
    // Every generated malsite URL is a valid exact URL-list entry.
    for url in sites {
        assert!(valid(url), "{url}");
    }
}

#[test]
fn iterator_semantics_in_process() {
    let s = state(Args {
        alerts: 0,
        page_size: 2,
        wait_time: 7,
        ..Args::default()
    });
    for i in 0..5 {
        let mut f = Map::new();
        f.insert("url".into(), json!(format!("https://site{i}.example/")));
        s.inject_alert(AlertType::Malsite, f);
    }
    let p1 = page(s.export("malsite", "a", Operation::Head));
    assert_eq!(ids(&p1).len(), 2);
    assert_eq!(p1["wait_time"], 0);
    let again = page(s.export("malsite", "a", Operation::Resend));
    assert_eq!(ids(&again), ids(&p1));
    let p2 = page(s.export("malsite", "a", Operation::Next));
    let p3 = page(s.export("malsite", "a", Operation::Next));
    assert_eq!(ids(&p3).len(), 1);
    assert_eq!(p3["wait_time"], 7);
    let p4 = page(s.export("malsite", "a", Operation::Next));
    assert!(ids(&p4).is_empty());
    let mut all = ids(&p1);
    all.extend(ids(&p2));
    all.extend(ids(&p3));
    let expected: Vec<String> = s
        .alerts(AlertType::Malsite)
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all, expected);
    // Another index has its own cursor; tail skips everything.
    let b = page(s.export("malsite", "b", Operation::Tail));
    assert!(ids(&b).is_empty());
    assert!(ids(&page(s.export("malsite", "b", Operation::Next))).is_empty());
    assert_eq!(
        ids(&page(s.export("malsite", "c", Operation::Next))).len(),
        2
    );
    // Types other than malware/malsite exist but hold nothing.
    assert!(ids(&page(s.export("dlp", "a", Operation::Head))).is_empty());
}

#[test]
fn url_list_pending_and_deployed_in_process() {
    let s = state(Args::default());
    let urls = |v: &[&str]| v.iter().map(|u| u.to_string()).collect::<Vec<_>>();
    let list = s
        .create_url_list("block", ListType::Exact, &urls(&["a.example.com"]))
        .unwrap();
    assert!(list.pending);
    assert!(s.url_lists(ListView::Applied).is_empty());
    s.deploy();
    let after = s
        .update_url_list(
            list.id,
            UpdateAction::Append,
            None,
            None,
            &urls(&["b.example.com", "a.example.com"]),
        )
        .unwrap();
    assert_eq!(
        after.working.urls,
        urls(&["a.example.com", "b.example.com"])
    );
    assert!(after.pending);
    assert_eq!(
        s.url_lists(ListView::Applied)[0].working.urls,
        urls(&["a.example.com"])
    );
    // Replacing with what is deployed leaves nothing pending.
    let back = s
        .update_url_list(
            list.id,
            UpdateAction::Replace,
            None,
            None,
            &urls(&["a.example.com"]),
        )
        .unwrap();
    assert!(!back.pending);
    let err = s
        .update_url_list(
            list.id,
            UpdateAction::Append,
            None,
            None,
            &urls(&["bad*.example.com", "ok.example.com"]),
        )
        .unwrap_err();
    match err {
        ListError::InvalidEntries(v) => assert_eq!(v[0].0, "bad*.example.com"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_hash_list_in_process() {
    let s = state(Args::default());
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(
        s.update_file_hash_list("iocx-file-hashes", &format!("{md5},{sha}")),
        Ok(2)
    );
    assert_eq!(
        s.update_file_hash_list("iocx-file-hashes", &format!("{},{md5}", sha.to_uppercase())),
        Err(FileHashError::Duplicate)
    );
    assert!(matches!(
        s.update_file_hash_list("nope", md5),
        Err(FileHashError::UnknownList(_))
    ));
    assert!(matches!(
        s.update_file_hash_list("iocx-file-hashes", "xyz"),
        Err(FileHashError::InvalidHashes(_))
    ));
}
