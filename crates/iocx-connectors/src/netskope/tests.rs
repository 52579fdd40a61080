//! The connector against the Netskope emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Severity};
use iocx_sim::common::SimHandle;
use iocx_sim::netskope::model::AlertType;
use iocx_sim::netskope::{self as sim, Args, Emulator, ListView};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

const TOKEN: &str = "ns-v2";
const V1: &str = "ns-v1";

fn args(alerts: usize) -> Args {
    Args {
        token: TOKEN.into(),
        v1_token: Some(V1.into()),
        alerts,
        page_size: 20,
        wait_time: 0,
        ..Args::default()
    }
}

async fn start(args: Args) -> (SimHandle, Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle) -> Context {
    let (mut ctx, _) = testing::context(
        &SPEC,
        json!({ "tenant": handle.base_url, "token": TOKEN, "v1_token": V1, "index": "test" }),
    );
    // The seeded alerts reach back weeks.
    ctx.settings.initial_range_days = 90;
    ctx
}

fn call(target: &str, params: Value) -> TargetCall {
    testing::target_call(&SPEC, target, params)
}

fn item(kind: Kind, value: &str) -> PushItem {
    testing::push_item(kind, value)
}

fn working(emulator: &Emulator, name: &str) -> Vec<String> {
    emulator
        .state
        .url_lists(ListView::All)
        .into_iter()
        .find(|l| l.name == name)
        .map(|l| l.working.urls)
        .unwrap_or_default()
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn alerts_become_sightings_and_a_killed_pull_loses_nothing() {
    let (handle, emulator) = start(args(150)).await;
    let ctx = ctx(&handle);
    let counts = emulator.state.alert_counts();
    let total: usize = counts.values().sum();
    assert!(total >= 150, "{counts:?}");

    // Two pages, then the run is cut off: the tenant's cursor has moved past a third page only
    // if it served it; resuming must not lose or repeat alerts.
    let first = drain(&Netskope, &ctx, None, Some(2)).await;
    let cp = first.batches.last().unwrap().checkpoint.clone();
    // The tenant served one more page that the killed run never committed.
    let lost = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/events/dataexport/alerts/malware?index=test&operation=next",
            handle.base_url
        ))
        .header("Netskope-Api-Token", TOKEN)
        .send()
        .await
        .unwrap();
    let lost: Value = lost.json().await.unwrap();
    assert!(!lost["result"].as_array().unwrap().is_empty());
    let rest = drain(&Netskope, &ctx, Some(cp.clone()), None).await;
    assert!(rest.finished, "{:?}", rest.error);
    let hits: u64 = first
        .batches
        .iter()
        .chain(&rest.batches)
        .flat_map(|b| &b.records)
        .filter(|r| r.indicator.kind != Kind::Md5)
        .map(|r| r.hits)
        .sum();
    // A malware alert is a hit of its sha256 (and of its local_sha256 when that differs), a
    // malsite alert of its URL.
    let expected: u64 = emulator
        .state
        .alerts(AlertType::Malware)
        .iter()
        .map(|a| {
            let (s, l) = (&a["sha256"], &a["local_sha256"]);
            if l.is_string() && !l.as_str().unwrap().is_empty() && l != s {
                2
            } else {
                1
            }
        })
        .sum::<u64>()
        + emulator.state.alerts(AlertType::Malsite).len() as u64;
    let rejected: u64 = first
        .rejected()
        .values()
        .chain(rest.rejected().values())
        .sum();
    assert_eq!(hits + rejected, expected, "{:?}", rest.rejected());
    let all: Vec<_> = first
        .batches
        .iter()
        .chain(&rest.batches)
        .flat_map(|b| &b.records)
        .collect();
    assert!(all.iter().any(|r| r.indicator.kind == Kind::Md5));
    assert!(all.iter().any(|r| r.indicator.kind == Kind::Url));
    assert!(
        all.iter()
            .all(|r| r.attributes.severity != Severity::Unknown)
    );

    // A run with the finished checkpoint reads only new alerts.
    let done = rest.checkpoint().unwrap();
    let again = drain(&Netskope, &ctx, Some(done.clone()), None).await;
    assert_eq!(again.records(), 0);
    emulator.state.generate_alert();
    let new = drain(&Netskope, &ctx, Some(done), None).await;
    assert!(new.records() >= 1);
    handle.stop().await;
}

#[tokio::test]
async fn url_lists_are_created_appended_deployed_and_refusals_stay_per_item() {
    let (handle, emulator) = start(args(0)).await;
    let ctx = ctx(&handle);
    assert!(Netskope.validate(&ctx).await.unwrap().contains("URL list"));
    let target = call("url_list", json!({ "list_name": "iocx-block" }));
    let items = vec![
        item(Kind::Url, "http://evil.example/login"),
        item(Kind::Domain, "bad.example"),
        item(Kind::Ipv4, "203.0.113.7"),
        item(Kind::Ipv6, "2001:db8::1"),
        item(Kind::Url, "http://user:pass@evil.example/x"),
    ];
    let out = Netskope.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(items.len(), &out);
    assert_eq!(
        &out[..3],
        &[
            ItemOutcome::Shared,
            ItemOutcome::Shared,
            ItemOutcome::Shared
        ]
    );
    assert!(matches!(&out[3], ItemOutcome::Skipped(r) if r.contains("cannot be a URL list entry")));
    assert!(
        matches!(&out[4], ItemOutcome::Skipped(r) if r.contains("refused")),
        "{out:?}"
    );
    Netskope.deploy(&ctx, &target).await.unwrap();
    let list = emulator.state.url_list_by_name("iocx-block").unwrap();
    assert!(!list.pending);
    assert_eq!(list.working.urls.len(), 3);

    // Append to the existing list, then retract by replacing it without the values.
    let more = vec![item(Kind::Domain, "worse.example")];
    assert_eq!(
        Netskope.push(&ctx, &target, &more).await.unwrap(),
        vec![ItemOutcome::Shared]
    );
    let out = Netskope
        .retract(&ctx, &target, &[items[1].clone(), more[0].clone()])
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared));
    Netskope.deploy(&ctx, &target).await.unwrap();
    let left = working(&emulator, "iocx-block");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        !left
            .iter()
            .any(|u| u == "bad.example" || u == "worse.example")
    );
    // Emptied, the list keeps a placeholder.
    Netskope.retract(&ctx, &target, &items[..3]).await.unwrap();
    assert_eq!(
        working(&emulator, "iocx-block"),
        vec![PLACEHOLDER.to_string()]
    );
    handle.stop().await;
}

#[tokio::test]
async fn the_file_hash_list_is_replaced_and_no_change_is_success() {
    let (handle, emulator) = start(args(0)).await;
    let ctx = ctx(&handle);
    let target = call("file_hash_list", json!({ "list_name": "iocx-file-hashes" }));
    let items = vec![
        item(Kind::Md5, &"a".repeat(32)),
        item(Kind::Sha256, &"b".repeat(64)),
    ];
    let out = Netskope.push(&ctx, &target, &items).await.unwrap();
    assert_eq!(out, vec![ItemOutcome::Shared; 2]);
    let list = emulator.state.file_hash_list("iocx-file-hashes").unwrap();
    assert_eq!(list.hashes.len(), 2);
    // The same set again: the tenant answers "no change", which is a success.
    let out = Netskope.push(&ctx, &target, &items).await.unwrap();
    assert_eq!(out, vec![ItemOutcome::Shared; 2]);
    // A smaller set replaces it.
    Netskope.push(&ctx, &target, &items[..1]).await.unwrap();
    assert_eq!(
        emulator
            .state
            .file_hash_list("iocx-file-hashes")
            .unwrap()
            .hashes,
        vec!["a".repeat(32)]
    );
    // Without the v1 token the target says what is missing.
    let (no_v1, _) = testing::context(&SPEC, json!({ "tenant": handle.base_url, "token": TOKEN }));
    let e = Netskope.push(&no_v1, &target, &items).await.unwrap_err();
    assert!(e.message.contains("v1 token"), "{e}");
    handle.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_an_authentication_error() {
    let (handle, _emulator) = start(args(0)).await;
    let (bad, _) = testing::context(&SPEC, json!({ "tenant": handle.base_url, "token": "nope" }));
    let e = Netskope.validate(&bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    handle.stop().await;
}
