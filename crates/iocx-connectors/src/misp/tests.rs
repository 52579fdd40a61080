//! The connector against the MISP emulator, over real HTTP on 127.0.0.1, and the feed it
//! writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Severity};
use iocx_sim::common::SimHandle;
use iocx_sim::misp::{self as sim, Args};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

const KEY: &str = "misp-test-key";

async fn start(args: Args) -> (SimHandle, sim::Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle, extra: Value) -> Context {
    let mut values = json!({"url": handle.base_url, "api_key": KEY});
    if let (Some(v), Value::Object(e)) = (values.as_object_mut(), extra) {
        v.extend(e);
    }
    testing::context(&SPEC, values).0
}

fn add_event(emulator: &sim::Emulator, body: Value) -> sim::Event {
    emulator
        .state
        .add_event(&body, chrono::Utc::now() - chrono::Duration::seconds(60))
        .unwrap()
        .0
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[test]
fn composite_and_network_types_map_to_kinds() {
    let one = |kind: &str, value: &str| {
        records(
            &json!({"type": kind, "value": value, "to_ids": true}),
            Some(1),
            "http://m",
        )
        .map(|rs| {
            rs.iter()
                .map(|r| (r.indicator.kind, r.indicator.value.clone()))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        one("ip-dst|port", "10.1.2.3|443").unwrap(),
        vec![(Kind::Ipv4, "10.1.2.3".into())]
    );
    assert_eq!(one("ip-src", "10.0.0.0/8").unwrap()[0].0, Kind::Cidr);
    assert_eq!(one("ip-src", "2001:db8::1").unwrap()[0].0, Kind::Ipv6);
    assert_eq!(
        one("domain|ip", "evil.example|10.0.0.9").unwrap(),
        vec![
            (Kind::Domain, "evil.example".into()),
            (Kind::Ipv4, "10.0.0.9".into())
        ]
    );
    assert_eq!(
        one("hostname|port", "c2.evil.example|8443").unwrap()[0].1,
        "c2.evil.example"
    );
    let sha = "ab".repeat(32);
    assert_eq!(
        one("filename|sha256", &format!("a.exe|{sha}")).unwrap(),
        vec![(Kind::Sha256, sha)]
    );
    assert_eq!(
        one("email-src", "bad@evil.example").unwrap()[0].0,
        Kind::Email
    );
    assert_eq!(one("mutex", "Global\\x").unwrap_err(), "unsupported_type");
    assert_eq!(one("ip-dst", "evil.example").unwrap_err(), "bad_ip");
    let r = &records(
        &json!({"type": "url", "value": "http://evil.example/x", "to_ids": "0", "event_id": "7",
            "comment": "landing", "Event": {"info": "Phish wave"}, "Tag": [{"name": "tlp:green"}]}),
        Some(2),
        "http://m",
    )
    .unwrap()[0];
    assert_eq!(r.attributes.severity, Severity::Medium);
    assert_eq!(
        r.attributes.comment.as_deref(),
        Some("Phish wave — landing")
    );
    assert_eq!(r.attributes.link.as_deref(), Some("http://m/events/view/7"));
    let tags: Vec<String> = r.attributes.tags.clone().into();
    assert!(tags.contains(&"tlp:green".to_string()), "{tags:?}");
    assert!(tags.iter().any(|t| t.contains("to_ids")), "{tags:?}");
}

#[tokio::test]
async fn attributes_are_pulled_by_page_with_filters_and_a_timestamp_checkpoint() {
    let (handle, emulator) = start(Args::new(KEY)).await;
    // 2,300 IDS attributes in one high-threat event: three pages of 1,000.
    let many: Vec<Value> = (0..2_300)
        .map(|i| json!({"type": "ip-dst", "value": format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256)}))
        .collect();
    let big = add_event(
        &emulator,
        json!({"info": "Scanner fleet", "threat_level_id": 1, "published": true,
            "Tag": [{"name": "tlp:green"}], "Attribute": many}),
    );
    add_event(
        &emulator,
        json!({"info": "Mixed bag", "threat_level_id": 3, "Tag": [{"name": "tlp:red"}],
        "Attribute": [
            {"type": "domain", "value": "red.evil.example"},
        ]}),
    );
    add_event(
        &emulator,
        json!({"info": "Low event", "threat_level_id": 3, "Tag": [{"name": "tlp:amber"}],
        "Attribute": [
            {"type": "domain|ip", "value": "amber.evil.example|192.0.2.7"},
            {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "to_ids": false},
            {"type": "mutex", "value": "Global\\evil"},
        ]}),
    );
    let ctx = ctx(&handle, json!({"tags_exclude": "tlp:red"}));
    assert!(Misp.validate(&ctx).await.unwrap().contains("MISP 2.5"));

    let pulled = drain(&Misp, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    assert_eq!(pulled.batches.len(), 3, "pages of 1,000 until a short page");
    let values = pulled.values();
    assert!(values.contains(&"amber.evil.example".to_string()));
    assert!(values.contains(&"192.0.2.7".to_string()));
    assert!(
        !values.contains(&"red.evil.example".to_string()),
        "tlp:red is excluded"
    );
    assert!(
        !values.contains(&"d41d8cd98f00b204e9800998ecf8427e".to_string()),
        "to_ids only by default"
    );
    assert_eq!(pulled.records(), 2_300 + 2);
    assert!(pulled.rejected().is_empty(), "{:?}", pulled.rejected());
    let first = &pulled.batches[0].records[0];
    assert_eq!(first.attributes.severity, Severity::High);
    assert!(first.attributes.comment.as_deref() == Some("Scanner fleet"));
    let tags: Vec<String> = first.attributes.tags.clone().into();
    assert!(
        tags.contains(&"tlp:green".into()),
        "event tags are inherited: {tags:?}"
    );
    assert_eq!(
        first.attributes.link.as_deref(),
        Some(format!("{}/events/view/{}", handle.base_url, big.id).as_str())
    );

    // The middle checkpoint names the next page of the same window; resuming there reads the
    // rest only.
    let middle = pulled.batches[0].checkpoint.clone();
    assert_eq!(middle["page"], 2, "{middle}");
    let resumed = drain(&Misp, &ctx, Some(middle), None).await;
    assert_eq!(resumed.records(), pulled.records() - 1_000);

    // The final checkpoint starts the next window: nothing new, nothing pulled.
    let last = pulled.checkpoint().unwrap();
    assert!(
        last["since"].as_i64().is_some() && last.get("page").is_none(),
        "{last}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let again = drain(&Misp, &ctx, Some(last.clone()), None).await;
    assert!(again.finished);
    assert_eq!(again.records(), 0, "{:?}", again.values());
    // A new attribute after the checkpoint is pulled.
    emulator
        .state
        .add_attributes(
            &big.id.to_string(),
            &json!({"type": "url", "value": "http://late.evil.example/x"}),
            chrono::Utc::now(),
        )
        .unwrap();
    let later = drain(&Misp, &ctx, Some(last), None).await;
    assert_eq!(
        later.values(),
        vec!["http://late.evil.example/x".to_string()]
    );

    // The request carried the filters the configuration asks for.
    let searches: Vec<_> = emulator
        .log
        .snapshot()
        .into_iter()
        .filter(|r| r.path == "/attributes/restSearch")
        .collect();
    assert!(!searches.is_empty());
    handle.stop().await;
}

#[tokio::test]
async fn values_iocx_cannot_parse_are_counted_and_logged() {
    let (handle, emulator) = start(Args::new(KEY)).await;
    // MISP takes a CIDR with host bits and a public suffix as a domain; iocx does not.
    add_event(
        &emulator,
        json!({"info": "Odd values", "Attribute": [
            {"type": "domain", "value": "co.uk"},
            {"type": "domain", "value": "fine.evil.example"},
        ]}),
    );
    let (ctx, log) = testing::context(&SPEC, json!({"url": handle.base_url, "api_key": KEY}));
    let pulled = drain(&Misp, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    assert_eq!(pulled.values(), vec!["fine.evil.example".to_string()]);
    assert_eq!(
        pulled.rejected().values().sum::<u64>(),
        1,
        "{:?}",
        pulled.rejected()
    );
    assert!(log.contains("co.uk"), "{}", log.text());
    handle.stop().await;
}

#[tokio::test]
async fn a_wrong_key_and_a_wrong_url_say_so() {
    let (handle, _emulator) = start(Args::new(KEY)).await;
    let e = Misp
        .validate(&ctx(&handle, json!({"api_key": "wrong"})))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(e.message.contains("API key"), "{e}");
    let pulled = drain(
        &Misp,
        &ctx(&handle, json!({"api_key": "wrong"})),
        None,
        None,
    )
    .await;
    assert_eq!(pulled.error.unwrap().kind, ErrorKind::Auth);
    let e = Misp
        .validate(&testing::context(&SPEC, json!({"url": "ftp://x", "api_key": KEY})).0)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    handle.stop().await;
}

#[tokio::test]
async fn the_feed_is_written_whole_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let feed_dir = dir.path().join("feed");
    let ctx = testing::context(&SPEC, json!({})).0;
    let target = testing::target_call(
        &SPEC,
        "feed",
        json!({"directory": feed_dir.to_string_lossy(), "tlp": "tlp:green"}),
    );
    let items = vec![
        PushItem {
            severity: Severity::Critical,
            tags: vec!["ransomware".into()],
            ..testing::push_item(Kind::Domain, "c2.evil.example")
        },
        testing::push_item(Kind::Ipv4, "198.51.100.9"),
        PushItem {
            severity: Severity::Low,
            ..testing::push_item(Kind::Sha256, &"ab".repeat(32))
        },
        PushItem {
            safe: true,
            ..testing::push_item(Kind::Domain, "good.example")
        },
    ];
    let out = Misp.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(4, &out);
    assert_eq!(
        out[..3],
        [
            ItemOutcome::Shared,
            ItemOutcome::Shared,
            ItemOutcome::Shared
        ]
    );
    assert!(matches!(out[3], ItemOutcome::Skipped(_)));

    let read = |name: &str| std::fs::read_to_string(feed_dir.join(name)).unwrap();
    let manifest: Value = serde_json::from_str(&read("manifest.json")).unwrap();
    let events = manifest.as_object().unwrap();
    assert_eq!(events.len(), 2, "high and low threat events: {manifest}");
    let (high_uuid, high) = events
        .iter()
        .find(|(_, e)| e["threat_level_id"] == 1)
        .unwrap();
    assert_eq!(high["Tag"][0]["name"], "tlp:green");
    let event: Value = serde_json::from_str(&read(&format!("{high_uuid}.json"))).unwrap();
    let attrs = event["Event"]["Attribute"].as_array().unwrap();
    assert_eq!(attrs.len(), 2);
    let domain = attrs.iter().find(|a| a["type"] == "domain").unwrap();
    assert_eq!(domain["value"], "c2.evil.example");
    assert_eq!(domain["Tag"][0]["name"], "ransomware");
    assert!(is_echo(domain["comment"].as_str().unwrap()));
    assert!(attrs.iter().any(|a| a["type"] == "ip-dst"));
    let hashes = read("hashes.csv");
    assert_eq!(hashes.lines().count(), 3);
    assert!(hashes.contains(&format!("{},{high_uuid}", md5_hex("c2.evil.example"))));
    // md5("c2.evil.example") computed independently.
    assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");

    // The same set again leaves the events' timestamps alone (MISP fetches nothing); a change
    // moves the timestamp of the event that changed only.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    Misp.push(&ctx, &target, &items).await.unwrap();
    let again: Value = serde_json::from_str(&read("manifest.json")).unwrap();
    assert_eq!(again, manifest, "an unchanged feed keeps its timestamps");
    let mut changed = items.clone();
    changed[2].tags = vec!["new-tag".into()];
    Misp.push(&ctx, &target, &changed).await.unwrap();
    let moved: Value = serde_json::from_str(&read("manifest.json")).unwrap();
    assert_eq!(moved[high_uuid], manifest[high_uuid]);
    let low_uuid = events.keys().find(|k| *k != high_uuid).unwrap();
    assert!(
        moved[low_uuid]["timestamp"].as_i64() > manifest[low_uuid]["timestamp"].as_i64(),
        "{moved}"
    );

    // Full state: the next push replaces everything; the low event's file goes away, the high
    // event keeps its UUID, and no temporary file is left behind.
    let out = Misp.push(&ctx, &target, &items[..1]).await.unwrap();
    assert_eq!(out, vec![ItemOutcome::Shared]);
    let manifest: Value = serde_json::from_str(&read("manifest.json")).unwrap();
    assert_eq!(
        manifest.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![high_uuid]
    );
    let mut names: Vec<String> = std::fs::read_dir(&feed_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        format!("{high_uuid}.json"),
        "hashes.csv".to_string(),
        "manifest.json".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected);

    // The feed reads back through the pull mapping of an emulated MISP's feed files: an
    // emulator loaded with the event serves the same values.
    let (handle, emulator) = start(Args::new(KEY)).await;
    let event: Value = serde_json::from_str(&read(&format!("{high_uuid}.json"))).unwrap();
    let mut body = event.clone();
    body["Event"]["published"] = json!(true);
    add_event(&emulator, body);
    let served: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/feed/{high_uuid}.json", handle.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["Event"]["Attribute"][0]["value"], "c2.evil.example");
    handle.stop().await;
}

#[tokio::test]
async fn an_unwritable_directory_fails_the_push_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let ctx = testing::context(&SPEC, json!({})).0;
    let target = testing::target_call(
        &SPEC,
        "feed",
        json!({"directory": file.join("feed").to_string_lossy()}),
    );
    let e = Misp
        .push(
            &ctx,
            &target,
            &[testing::push_item(Kind::Domain, "x.evil.example")],
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("not-a-dir"), "{e}");
}

/// The published feed loads in PyMISP (`MISPEvent().load_file`). Runs when `IOCX_TEST_PYTHON`
/// names a Python with `tests/sdk/misp_feed/requirements.txt` installed; says so and passes
/// otherwise.
#[tokio::test]
async fn pymisp_loads_the_published_feed() {
    use std::io::Write as _;
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        let _ = writeln!(
            std::io::stderr(),
            "PyMISP feed check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-connectors/tests/sdk/misp_feed/requirements.txt installed)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = testing::context(&SPEC, json!({})).0;
    let target = testing::target_call(
        &SPEC,
        "feed",
        json!({"directory": dir.path().to_string_lossy()}),
    );
    let items: Vec<PushItem> = [
        (Kind::Ipv4, "198.51.100.1", Severity::High),
        (Kind::Cidr, "203.0.113.0/24", Severity::Medium),
        (Kind::Ipv6, "2001:db8::1", Severity::Low),
        (Kind::Domain, "c2.evil.example", Severity::Critical),
        (Kind::Url, "http://evil.example/x.php", Severity::Unknown),
        (Kind::Email, "billing@evil.example", Severity::Medium),
    ]
    .into_iter()
    .map(|(k, v, severity)| PushItem {
        severity,
        tags: vec!["phishing".into()],
        comment: Some("from a test".into()),
        ..testing::push_item(k, v)
    })
    .chain([
        testing::push_item(Kind::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
        testing::push_item(Kind::Sha1, &"1".repeat(40)),
        testing::push_item(Kind::Sha256, &"2".repeat(64)),
    ])
    .collect();
    let out = Misp.push(&ctx, &target, &items).await.unwrap();
    assert_eq!(out, vec![ItemOutcome::Shared; items.len()]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/misp_feed/check_feed.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("feed check passed"),
        "the PyMISP feed check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("9 attributes"), "{stdout}");
}
