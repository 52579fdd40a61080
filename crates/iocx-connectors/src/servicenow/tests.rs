//! The connector against the ServiceNow emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Severity};
use iocx_sim::common::SimHandle;
use iocx_sim::servicenow::{self as sim, Args, DEFAULT_PASSWORD, DEFAULT_USER};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

async fn start(args: Args) -> (SimHandle, sim::Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle, extra: Value) -> Context {
    let mut values = json!({
        "instance": handle.base_url,
        "username": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
    });
    if let (Some(v), Value::Object(e)) = (values.as_object_mut(), extra) {
        v.extend(e);
    }
    let (mut ctx, _) = testing::context(&SPEC, values);
    ctx.settings.initial_range_days = 365;
    ctx
}

fn rows(emulator: &sim::Emulator, table: &str) -> Vec<Value> {
    emulator.state.snapshot()["tables"][table]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn observables_are_pulled_pushed_in_batches_and_retracted() {
    let args = Args {
        records: 1_200,
        ..Args::default()
    };
    let (handle, emulator) = start(args).await;
    let ctx = ctx(&handle, json!({}));
    assert!(ServiceNow.validate(&ctx).await.unwrap().contains("1200"));
    let pulled = drain(&ServiceNow, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    assert_eq!(
        pulled.records() as u64 + pulled.rejected().values().sum::<u64>(),
        1_200
    );
    assert!(pulled.batches.len() >= 2, "pages of 1,000");

    emulator.log.clear();
    let mut items: Vec<PushItem> = (0..1_100)
        .map(|i| testing::push_item(Kind::Domain, &format!("o{i}.evil.example")))
        .collect();
    items.push(testing::push_item(Kind::Cidr, "10.0.0.0/8"));
    let target = testing::target_call(&SPEC, "observables", json!({}));
    let out = ServiceNow.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(items.len(), &out);
    assert!(
        out[..1_100].iter().all(|o| *o == ItemOutcome::Shared),
        "{:?}",
        &out[..2]
    );
    assert!(matches!(&out[1_100], ItemOutcome::Skipped(_)));
    let requests = emulator.log.snapshot().len();
    assert!(
        requests <= 10,
        "batched, not one request per IoC: {requests}"
    );
    let ours: Vec<Value> = rows(&emulator, "sn_ti_observable")
        .into_iter()
        .filter(|r| r["notes"].as_str().is_some_and(is_echo))
        .collect();
    assert_eq!(ours.len(), 1_100);

    // Pushed again: they exist, nothing is created twice.
    let again = ServiceNow.push(&ctx, &target, &items[..5]).await.unwrap();
    assert_eq!(again, vec![ItemOutcome::Shared; 5]);
    assert_eq!(rows(&emulator, "sn_ti_observable").len(), 1_200 + 1_100);

    let out = ServiceNow
        .retract(&ctx, &target, &items[..100])
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared));
    assert_eq!(rows(&emulator, "sn_ti_observable").len(), 1_200 + 1_000);
    handle.stop().await;
}

#[tokio::test]
async fn incidents_are_opened_and_oauth_works() {
    let args = Args {
        client_id: Some("iocx-client".into()),
        client_secret: Some("iocx-client-secret".into()),
        ..Args::default()
    };
    let (handle, emulator) = start(args).await;
    let ctx = ctx(
        &handle,
        json!({ "auth": "oauth", "client_id": "iocx-client", "client_secret": "iocx-client-secret" }),
    );
    let items = vec![PushItem {
        severity: Severity::Critical,
        ..testing::push_item(Kind::Sha256, &"e".repeat(64))
    }];
    let target = testing::target_call(&SPEC, "incidents", json!({}));
    let out = ServiceNow.push(&ctx, &target, &items).await.unwrap();
    assert_eq!(out, vec![ItemOutcome::Shared]);
    let incidents = rows(&emulator, "sn_si_incident");
    assert!(
        incidents.iter().any(|i| i["priority"] == "1"
            && i["short_description"]
                .as_str()
                .unwrap_or("")
                .contains("eeee")),
        "{incidents:?}"
    );
    let bad = self::ctx(&handle, json!({ "password": "wrong" }));
    let e = ServiceNow.validate(&bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    handle.stop().await;
}
