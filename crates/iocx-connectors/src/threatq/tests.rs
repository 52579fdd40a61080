//! The connector against the ThreatQ emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Severity};
use iocx_sim::common::SimHandle;
use iocx_sim::threatq::{self as sim, Args};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

async fn start(args: Args) -> (SimHandle, sim::Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle, extra: Value) -> Context {
    let mut values = json!({
        "url": handle.base_url,
        "client_id": "tq-client",
        "client_secret": "tq-secret",
        "collection": "Active Indicators",
    });
    if let (Some(v), Value::Object(e)) = (values.as_object_mut(), extra) {
        v.extend(e);
    }
    testing::context(&SPEC, values).0
}

fn indicators(emulator: &sim::Emulator) -> Vec<Value> {
    emulator.state.snapshot()["indicators"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn a_collection_is_pulled_whole_and_pushes_are_upserted() {
    let mut args = Args::new("tq-client", "tq-secret");
    args.indicators = 1_500;
    args.token_lifetime_secs = 1;
    let (handle, emulator) = start(args).await;
    let ctx = ctx(&handle, json!({}));
    assert!(
        ThreatQ
            .validate(&ctx)
            .await
            .unwrap()
            .contains("Active Indicators")
    );

    let active = indicators(&emulator)
        .iter()
        .filter(|i| i["status"]["name"] == "Active" || i["status"] == "Active")
        .count() as u64;
    let pulled = drain(&ThreatQ, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    assert_eq!(
        pulled.records() as u64 + pulled.rejected().values().sum::<u64>(),
        active,
        "{:?}",
        pulled.rejected()
    );
    assert!(pulled.batches.len() >= 2);

    // The token lives a second: the connector gets another when it is refused.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let items = vec![
        PushItem {
            severity: Severity::Critical,
            ..testing::push_item(Kind::Domain, "pushed.evil.example")
        },
        PushItem {
            safe: true,
            ..testing::push_item(Kind::Ipv4, "198.51.100.77")
        },
    ];
    let target = testing::target_call(&SPEC, "threat_library", json!({}));
    let out = ThreatQ.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(2, &out);
    assert_eq!(out, vec![ItemOutcome::Shared; 2]);
    let held = indicators(&emulator);
    let domain = held
        .iter()
        .find(|i| i["value"] == "pushed.evil.example")
        .unwrap();
    assert!(domain.to_string().contains("iocx"), "{domain}");
    let ip = held.iter().find(|i| i["value"] == "198.51.100.77").unwrap();
    assert!(ip.to_string().contains("Whitelisted"), "{ip}");
    handle.stop().await;
}

#[tokio::test]
async fn an_unknown_collection_and_bad_credentials_say_so() {
    let (handle, _emulator) = start(Args::new("tq-client", "tq-secret")).await;
    let e = ThreatQ
        .validate(&ctx(&handle, json!({ "collection": "Nope" })))
        .await
        .unwrap_err();
    assert!(e.message.contains("Nope"), "{e}");
    let e = ThreatQ
        .validate(&ctx(&handle, json!({ "client_secret": "wrong" })))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    handle.stop().await;
}
