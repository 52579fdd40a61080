//! The connector against the Carbon Black Cloud emulator, over HTTPS on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Severity};
use iocx_sim::carbon_black::{
    self as sim, Args, DEFAULT_API_ID, DEFAULT_API_SECRET, DEFAULT_ORG_KEY,
};
use iocx_sim::common::SimHandle;
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

async fn start(args: Args) -> (SimHandle, sim::Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle, secret: &str) -> Context {
    let settings = crate::Settings {
        verify_tls: false,
        initial_range_days: 365,
        ..testing::settings()
    };
    testing::context_with(
        &SPEC,
        json!({
            "url": handle.base_url,
            "org_key": DEFAULT_ORG_KEY,
            "api_id": DEFAULT_API_ID,
            "api_secret": secret,
        }),
        settings,
    )
    .0
}

fn feed_values(emulator: &sim::Emulator, name: &str) -> Vec<String> {
    let state = emulator.state.snapshot();
    let feed = state["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feedinfo"]["name"] == name)
        .cloned()
        .unwrap_or(Value::Null);
    let mut values: Vec<String> = feed["reports"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["iocs_v2"].as_array().cloned().unwrap_or_default())
        .flat_map(|i| i["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    values.sort();
    values
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn the_feed_holds_exactly_the_selection_and_alerts_are_sightings() {
    let args = Args {
        alerts: 60,
        ..Args::default()
    };
    let (handle, emulator) = start(args).await;
    let ctx = ctx(&handle, DEFAULT_API_SECRET);
    assert!(CarbonBlack.validate(&ctx).await.unwrap().contains("feed"));

    let pulled = drain(&CarbonBlack, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    let hits: u64 = pulled
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .filter(|r| r.indicator.kind == Kind::Sha256)
        .map(|r| r.hits)
        .sum();
    assert!(hits > 0 && hits <= 60, "{hits}");

    let mut items: Vec<PushItem> = (0..1_500)
        .map(|i| testing::push_item(Kind::Sha256, &format!("{i:064x}")))
        .collect();
    items.push(PushItem {
        severity: Severity::Critical,
        ..testing::push_item(Kind::Domain, "evil.example")
    });
    items.push(testing::push_item(Kind::Url, "http://evil.example/x"));
    let target = testing::target_call(&SPEC, "feed", json!({ "feed_name": "iocx-test" }));
    let out = CarbonBlack.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(items.len(), &out);
    assert!(out[..1_501].iter().all(|o| *o == ItemOutcome::Shared));
    assert!(matches!(&out[1_501], ItemOutcome::Skipped(_)));
    assert_eq!(feed_values(&emulator, "iocx-test").len(), 1_501);

    // A smaller selection replaces the feed's content.
    let out = CarbonBlack.push(&ctx, &target, &items[..10]).await.unwrap();
    assert_eq!(out.len(), 10);
    assert_eq!(feed_values(&emulator, "iocx-test").len(), 10);

    let bad = ctx_with_secret(&handle);
    let e = CarbonBlack.validate(&bad).await.unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::Auth, "{e}");
    handle.stop().await;
}

fn ctx_with_secret(handle: &SimHandle) -> Context {
    ctx(handle, "WRONGSECRET")
}
