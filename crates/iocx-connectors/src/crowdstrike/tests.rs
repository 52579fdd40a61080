//! The connector against the Falcon emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Timestamp};
use iocx_sim::common::SimHandle;
use iocx_sim::crowdstrike::{self as sim, Args, Emulator};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

const ID: &str = "cs-client";
const SECRET: &str = "cs-secret-value";

async fn start(args: Args) -> (SimHandle, Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle) -> Context {
    let (mut ctx, _) = testing::context(
        &SPEC,
        json!({ "base_url": handle.base_url, "client_id": ID, "client_secret": SECRET }),
    );
    ctx.settings.initial_range_days = 365;
    ctx
}

fn call(params: Value) -> TargetCall {
    testing::target_call(&SPEC, "ioc_management", params)
}

fn item(kind: Kind, value: &str) -> PushItem {
    PushItem {
        tags: vec!["phishing".into()],
        expires: Some(Timestamp::now().plus_days(10)),
        sources: vec!["netskope".into()],
        ..testing::push_item(kind, value)
    }
}

fn held(emulator: &Emulator) -> Vec<Value> {
    emulator.state.snapshot(chrono::Utc::now())["indicators"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn pushes_map_each_item_pulls_page_past_the_offset_window_and_retract_only_our_own() {
    let mut args = Args::new(ID, SECRET);
    args.iocs = 2_300;
    args.offset_window = 1_000;
    let (handle, emulator) = start(args).await;
    let ctx = ctx(&handle);
    assert!(CrowdStrike.validate(&ctx).await.unwrap().contains("2300"));

    let pulled = drain(&CrowdStrike, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    assert_eq!(
        pulled.records() as u64 + pulled.rejected().values().sum::<u64>(),
        2_300
    );
    assert!(pulled.batches.len() >= 2);

    let items = vec![
        item(Kind::Sha256, &"c".repeat(64)),
        item(Kind::Domain, "evil.example"),
        item(Kind::Ipv4, "203.0.113.5"),
        item(Kind::Url, "http://evil.example/x"),
    ];
    let target = call(json!({ "action": "prevent" }));
    let out = CrowdStrike.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(items.len(), &out);
    assert_eq!(
        &out[..3],
        &[
            ItemOutcome::Shared,
            ItemOutcome::Shared,
            ItemOutcome::Shared
        ]
    );
    assert!(matches!(&out[3], ItemOutcome::Skipped(r) if r.contains("not supported")));
    let ours: Vec<Value> = held(&emulator)
        .into_iter()
        .filter(|i| i["source"].as_str().is_some_and(is_echo))
        .collect();
    assert_eq!(ours.len(), 3);
    let hash = ours.iter().find(|i| i["type"] == "sha256").unwrap();
    assert_eq!(hash["action"], "prevent");
    let domain = ours.iter().find(|i| i["type"] == "domain").unwrap();
    assert_eq!(domain["action"], "detect", "prevent applies to hashes only");
    assert_eq!(domain["severity"], "high");

    // Pushed again: Falcon already holds them, which counts as shared.
    let again = CrowdStrike.push(&ctx, &target, &items[..3]).await.unwrap();
    assert_eq!(again, vec![ItemOutcome::Shared; 3]);

    // Pulled back, they are echoes. (A pull's window ends at the start of its second, so what
    // changed in the same second comes with the next pull.)
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let cp = pulled.checkpoint();
    let more = drain(&CrowdStrike, &ctx, cp.clone(), None).await;
    assert!(more.finished, "{:?} {cp:?}", more.error);
    let recs: Vec<_> = more.batches.iter().flat_map(|b| &b.records).collect();
    assert_eq!(recs.len(), 3, "only what changed since the last pull");
    assert!(recs.iter().all(|r| r.echo));

    let before = held(&emulator).len();
    let out = CrowdStrike.retract(&ctx, &target, &items).await.unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared), "{out:?}");
    assert_eq!(held(&emulator).len(), before - 3);
    handle.stop().await;
}

#[tokio::test]
async fn tokens_are_renewed_and_capacity_skips_the_rest() {
    let mut args = Args::new(ID, SECRET);
    args.token_lifetime_secs = 2;
    args.capacity = 2_500;
    let (handle, emulator) = start(args).await;
    let ctx = ctx(&handle);
    let items: Vec<PushItem> = (0..3_000)
        .map(|i| item(Kind::Domain, &format!("d{i}.evil.example")))
        .collect();
    let out = CrowdStrike
        .push(&ctx, &call(json!({})), &items[..2_000])
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared));
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    // The token has expired: the connector gets a new one; the create passes the capacity.
    let out = CrowdStrike
        .push(&ctx, &call(json!({})), &items[2_000..])
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, ItemOutcome::Skipped(r) if r.contains("capacity reached"))),
        "{:?}",
        &out[..1]
    );
    assert_eq!(held(&emulator).len(), 2_000);

    let (bad, _) = testing::context(
        &SPEC,
        json!({ "base_url": handle.base_url, "client_id": ID, "client_secret": "wrong" }),
    );
    let e = CrowdStrike.validate(&bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(!e.message.contains("wrong"));
    handle.stop().await;
}

#[tokio::test]
async fn detections_are_sightings_of_their_indicators() {
    let mut args = Args::new(ID, SECRET);
    args.alerts = 50;
    let (handle, _emulator) = start(args).await;
    let ctx = ctx(&handle);
    let pulled = drain(&CrowdStrike, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    let hits: u64 = pulled
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .filter(|r| r.attributes.tags.contains("crowdstrike:detection"))
        .map(|r| r.hits)
        .sum();
    let rejected: u64 = pulled.rejected().values().sum();
    assert_eq!(hits + rejected, 50, "{:?}", pulled.rejected());
    // The finished checkpoint reads neither IOCs nor detections again.
    let again = drain(&CrowdStrike, &ctx, pulled.checkpoint(), None).await;
    assert_eq!(again.records(), 0);
    handle.stop().await;
}
