//! The connector against the TippingPoint SMS emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::Kind;
use iocx_sim::common::SimHandle;
use iocx_sim::tippingpoint_sms::{self as sim, Args};
use serde_json::json;

use super::*;
use crate::testing::{self, check_outcomes, drain};

const KEY: &str = "sms-key";

async fn start() -> (SimHandle, sim::Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &Args::new(KEY)).await.unwrap()
}

fn ctx(handle: &SimHandle, key: &str) -> Context {
    testing::context(&SPEC, json!({ "url": handle.base_url, "api_key": key })).0
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[test]
fn alert_exports_become_hits_per_device() {
    let csv = "SEQUENCE_NUM,DEVICE_ID,END_TIME,HIT_COUNT,SEVERITY,MESSAGE_PARMS\n\
               1,dev-a,1717416001000,3,3,198.51.100.7\n\
               2,dev-a,1717416002000,2,3,198.51.100.7\n\
               3,dev-b,1717416003000,1,4,\"evil.example\"\n\
               4,dev-b,1717416004000,1,4,\n";
    let (records, rejected) = alert_records(csv);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].hits, 5);
    assert!(records[0].attributes.tags.contains("device:dev-a"));
    assert_eq!(records[1].attributes.severity, Severity::Critical);
    assert_eq!(rejected.get("no_matched_entry"), Some(&1));
}

#[tokio::test]
async fn entries_are_added_imported_hit_and_deleted() {
    let (handle, emulator) = start().await;
    let ctx = ctx(&handle, KEY);
    assert!(
        TippingPointSms
            .validate(&ctx)
            .await
            .unwrap()
            .contains("SMS")
    );
    let target = testing::target_call(&SPEC, "reputation", json!({ "scan_action": "log" }));

    // A few: single adds.
    let few = vec![
        testing::push_item(Kind::Ipv4, "198.51.100.7"),
        testing::push_item(Kind::Domain, "evil.example"),
        testing::push_item(Kind::Url, "http://evil.example/a"),
        testing::push_item(Kind::Sha256, &"f".repeat(64)),
    ];
    let out = TippingPointSms.push(&ctx, &target, &few).await.unwrap();
    check_outcomes(4, &out);
    assert_eq!(
        &out[..3],
        &[
            ItemOutcome::Shared,
            ItemOutcome::Shared,
            ItemOutcome::Shared
        ]
    );
    assert!(matches!(&out[3], ItemOutcome::Skipped(_)));
    let entry = emulator.state.find_for_value("198.51.100.7").unwrap();
    let tags = format!("{:?}", entry.tags);
    assert!(
        tags.contains("Reputation Entries TTL") && tags.contains("\"log\""),
        "{tags}"
    );

    // Many: import files.
    let many: Vec<PushItem> = (0..300)
        .map(|i| testing::push_item(Kind::Domain, &format!("m{i}.bulk.example")))
        .collect();
    let out = TippingPointSms.push(&ctx, &target, &many).await.unwrap();
    assert!(
        out.iter().all(|o| *o == ItemOutcome::Shared),
        "{:?}",
        &out[..1]
    );
    assert!(emulator.state.find_for_value("m299.bulk.example").is_some());
    assert_eq!(emulator.state.len(), 303);

    // Hits on an entry come back as sightings.
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/_sim/events", handle.base_url))
        .json(&json!({ "value": "198.51.100.7", "count": 4, "device": "ips-edge-02" }))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
    // A pull's window ends (exclusively) at the millisecond it starts: hits of that very
    // millisecond belong to the next pull. Step past it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pulled = drain(&TippingPointSms, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    let hit = pulled
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .find(|r| r.indicator.value == "198.51.100.7")
        .expect("a sighting of the hit entry");
    assert!(hit.hits >= 4, "{}", hit.hits);
    assert!(
        hit.attributes
            .tags
            .as_slice()
            .iter()
            .any(|t| t.starts_with("device:"))
    );

    let out = TippingPointSms.retract(&ctx, &target, &many).await.unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared));
    assert_eq!(emulator.state.len(), 3);

    let e = TippingPointSms
        .validate(&self::ctx(&handle, "wrong"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    handle.stop().await;
}
