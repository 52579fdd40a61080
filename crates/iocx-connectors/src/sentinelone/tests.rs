//! The connector against the SentinelOne emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::Kind;
use iocx_sim::common::SimHandle;
use iocx_sim::sentinelone::{self as sim, Args, Emulator};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

const TOKEN: &str = "s1-token";

async fn start(args: Args) -> (SimHandle, Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle) -> Context {
    let (mut ctx, _) =
        testing::context(&SPEC, json!({ "console": handle.base_url, "token": TOKEN }));
    ctx.settings.initial_range_days = 365;
    ctx
}

fn iocs(emulator: &Emulator) -> Vec<Value> {
    emulator.state.snapshot()["iocs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn threats_are_sightings_and_pushes_are_per_item_then_retracted() {
    let mut args = Args::new(TOKEN);
    args.threats = 40;
    let (handle, emulator) = start(args).await;
    let ctx = ctx(&handle);
    assert!(SentinelOne.validate(&ctx).await.unwrap().contains("IOC"));

    let pulled = drain(&SentinelOne, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    let sha256_hits: u64 = pulled
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .filter(|r| r.indicator.kind == Kind::Sha256)
        .map(|r| r.hits)
        .sum();
    let with_sha256 = emulator.state.snapshot()["threats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["threatInfo"]["sha256"]
                .as_str()
                .is_some_and(|h| !h.is_empty())
        })
        .count() as u64;
    assert!(with_sha256 > 0);
    assert_eq!(sha256_hits, with_sha256, "one sighting per threat");

    let items = vec![
        testing::push_item(Kind::Domain, "evil.example"),
        testing::push_item(Kind::Sha1, &"d".repeat(40)),
        testing::push_item(Kind::Url, "http://evil.example/a"),
        testing::push_item(Kind::Email, "x@evil.example"),
    ];
    let target = testing::target_call(&SPEC, "threat_intelligence", json!({}));
    let out = SentinelOne.push(&ctx, &target, &items).await.unwrap();
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
    let held = iocs(&emulator);
    assert_eq!(held.len(), 3);
    let dns = held.iter().find(|i| i["type"] == "DNS").unwrap();
    assert_eq!(dns["externalId"], "evil.example");
    assert_eq!(dns["method"], "EQUALS");
    assert_eq!(dns["severity"], 6);

    let out = SentinelOne.retract(&ctx, &target, &items).await.unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared), "{out:?}");
    assert!(iocs(&emulator).is_empty());
    handle.stop().await;
}

#[tokio::test]
async fn a_site_scope_needs_ids_and_a_bad_token_is_refused() {
    let (handle, _emulator) = start(Args::new(TOKEN)).await;
    let (site, _) = testing::context(
        &SPEC,
        json!({ "console": handle.base_url, "token": TOKEN, "scope": "site" }),
    );
    let target = testing::target_call(&SPEC, "threat_intelligence", json!({}));
    let e = SentinelOne
        .push(
            &site,
            &target,
            &[testing::push_item(Kind::Domain, "a.example")],
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("IDs"), "{e}");
    let (bad, _) = testing::context(
        &SPEC,
        json!({ "console": handle.base_url, "token": "nope" }),
    );
    let e = SentinelOne.validate(&bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    handle.stop().await;
}
