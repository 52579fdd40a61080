//! The connector against the emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{Kind, Severity, Timestamp};
use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::trend_vision_one::{self as sim, Args, Emulator};
use serde_json::{Value, json};

use super::*;
use crate::testing::{self, check_outcomes, drain};

const TOKEN: &str = "tv1-test-token";

async fn start(args: Args) -> (SimHandle, Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &args).await.unwrap()
}

fn ctx(handle: &SimHandle, extra: Value) -> (Context, std::sync::Arc<testing::MemoryLog>) {
    let mut values = json!({ "base_url": handle.base_url, "token": TOKEN, "page_size": "50" });
    if let (Some(v), Value::Object(e)) = (values.as_object_mut(), extra) {
        v.extend(e);
    }
    testing::context(&SPEC, values)
}

fn call(target: &str, params: Value) -> TargetCall {
    testing::target_call(&SPEC, target, params)
}

fn item(kind: Kind, value: &str, severity: Severity) -> PushItem {
    PushItem {
        severity,
        tags: vec!["phishing".into()],
        sources: vec!["feed-a".into()],
        ..testing::push_item(kind, value)
    }
}

fn listed(emulator: &Emulator, list: &str) -> Vec<Value> {
    emulator.state.snapshot()[list]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[tokio::test]
async fn pushes_map_every_item_and_pull_reads_them_back_as_echoes() {
    let (handle, emulator) = start(Args::new(TOKEN)).await;
    let (ctx, _log) = ctx(&handle, json!({}));
    assert!(
        TrendVisionOne
            .validate(&ctx)
            .await
            .unwrap()
            .contains("listed 0")
    );
    let items = vec![
        item(Kind::Domain, "evil.example", Severity::Critical),
        item(Kind::Url, "http://evil.example/login", Severity::Medium),
        item(Kind::Ipv4, "203.0.113.9", Severity::Low),
        item(Kind::Ipv6, "2001:db8::9", Severity::High),
        item(Kind::Sha256, &"a".repeat(64), Severity::High),
        item(Kind::Email, "bad@evil.example", Severity::High),
        item(Kind::Md5, &"b".repeat(32), Severity::High),
        item(
            Kind::Url,
            &format!("http://long.example/{}", "x".repeat(2100)),
            Severity::High,
        ),
    ];
    let target = call(
        "suspicious_objects",
        json!({ "scan_action": "log", "expiration": "never", "description": "{severity} via {sources}" }),
    );
    let out = TrendVisionOne.push(&ctx, &target, &items).await.unwrap();
    check_outcomes(items.len(), &out);
    assert!(
        out[..6].iter().all(|o| *o == ItemOutcome::Shared),
        "{out:?}"
    );
    assert!(matches!(&out[6], ItemOutcome::Skipped(r) if r.contains("not supported")));
    assert!(matches!(&out[7], ItemOutcome::Skipped(r) if r.contains("too long")));

    let objects = listed(&emulator, "suspiciousObjects");
    assert_eq!(objects.len(), 6);
    let domain = objects.iter().find(|o| o["type"] == "domain").unwrap();
    assert_eq!(domain["riskLevel"], "high");
    assert_eq!(domain["scanAction"], "log");
    let d = domain["description"].as_str().unwrap();
    assert!(d.starts_with("critical via feed-a"), "{d}");
    assert!(is_echo(d), "{d}");
    let url = objects.iter().find(|o| o["type"] == "url").unwrap();
    assert_eq!(url["riskLevel"], "medium");

    // Pulled back, every object is recognised as iocx's own.
    let pulled = drain(&TrendVisionOne, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    assert_eq!(pulled.records(), 6);
    let all: Vec<_> = pulled.batches.iter().flat_map(|b| &b.records).collect();
    assert!(all.iter().all(|r| r.echo));
    assert!(
        all.iter()
            .any(|r| r.indicator.kind == Kind::Ipv6 && r.indicator.value == "2001:db8::9")
    );
    assert!(all.iter().all(|r| r.attributes.expires.is_none()));

    // Retraction removes them; objects Trend no longer holds count as removed.
    let out = TrendVisionOne
        .retract(&ctx, &target, &items[..6])
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared), "{out:?}");
    assert!(listed(&emulator, "suspiciousObjects").is_empty());
    let again = TrendVisionOne
        .retract(&ctx, &target, &items[..1])
        .await
        .unwrap();
    assert_eq!(again, vec![ItemOutcome::Shared]);
    handle.stop().await;
}

#[tokio::test]
async fn pulls_page_by_page_and_resume_from_a_checkpoint() {
    let mut args = Args::new(TOKEN);
    args.objects = 230;
    args.exceptions = 20;
    let (handle, _emulator) = start(args).await;
    let (ctx, _log) = ctx(&handle, json!({ "pull_exceptions": true }));
    // Seeded objects may have been modified up to a year back.
    let ctx = Context {
        settings: crate::Settings {
            initial_range_days: 365,
            ..ctx.settings.clone()
        },
        ..ctx
    };
    let whole = drain(&TrendVisionOne, &ctx, None, None).await;
    assert!(whole.finished, "{:?}", whole.error);
    let records: Vec<_> = whole.batches.iter().flat_map(|b| &b.records).collect();
    let objects = records.iter().filter(|r| !r.attributes.safe).count();
    let safe = records.iter().filter(|r| r.attributes.safe).count() as u64;
    let patterns = whole
        .rejected()
        .get("exception_pattern")
        .copied()
        .unwrap_or(0);
    assert_eq!(objects, 230, "rejected: {:?}", whole.rejected());
    assert_eq!(safe + patterns, 20, "rejected: {:?}", whole.rejected());
    assert!(
        whole.batches.len() >= 5,
        "pages of 50: {}",
        whole.batches.len()
    );

    // Killed after two pages, the next run resumes from the second page's checkpoint and
    // reads exactly the rest.
    let first = drain(&TrendVisionOne, &ctx, None, Some(2)).await;
    let cp = first.batches.last().unwrap().checkpoint.clone();
    assert!(cp["next"].is_string(), "{cp}");
    let rest = drain(&TrendVisionOne, &ctx, Some(cp), None).await;
    assert!(rest.finished);
    assert_eq!(first.records() + rest.records(), whole.records());

    // The finished checkpoint reads nothing new.
    let done = whole.checkpoint().unwrap();
    assert!(
        done.get("next").is_none() && !done["objects_since"].is_null(),
        "{done}"
    );
    let nothing = drain(&TrendVisionOne, &ctx, Some(done), None).await;
    assert!(nothing.finished);
    assert_eq!(nothing.records(), 0);
    handle.stop().await;
}

#[tokio::test]
async fn a_full_list_skips_the_rest_and_exceptions_take_batches_of_100() {
    let mut args = Args::new(TOKEN);
    args.capacity_per_type = 1_500;
    let (handle, emulator) = start(args).await;
    let (ctx, _log) = ctx(&handle, json!({}));
    let items: Vec<PushItem> = (0..2_000)
        .map(|i| item(Kind::Domain, &format!("d{i}.evil.example"), Severity::High))
        .collect();
    let target = call("suspicious_objects", json!({}));
    // One engine batch (1,000 items) fits; the second meets the 1,500 cap.
    let first = TrendVisionOne
        .push(&ctx, &target, &items[..1_000])
        .await
        .unwrap();
    assert!(first.iter().all(|o| *o == ItemOutcome::Shared));
    let second = TrendVisionOne
        .push(&ctx, &target, &items[1_000..])
        .await
        .unwrap();
    check_outcomes(1_000, &second);
    assert!(
        second
            .iter()
            .all(|o| matches!(o, ItemOutcome::Skipped(r) if r.starts_with("capacity reached"))),
        "{:?}",
        &second[..2]
    );
    assert_eq!(listed(&emulator, "suspiciousObjects").len(), 1_000);

    // 250 exceptions go in three requests of at most 100.
    emulator.log.clear();
    let safe: Vec<PushItem> = (0..250)
        .map(|i| {
            item(
                Kind::Domain,
                &format!("ok{i}.good.example"),
                Severity::Unknown,
            )
        })
        .collect();
    let out = TrendVisionOne
        .push(&ctx, &call("exceptions", json!({})), &safe)
        .await
        .unwrap();
    assert!(
        out.iter().all(|o| *o == ItemOutcome::Shared),
        "{:?}",
        &out[..2]
    );
    assert_eq!(listed(&emulator, "exceptions").len(), 250);
    let posts = emulator
        .log
        .snapshot()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 3);
    handle.stop().await;
}

#[tokio::test]
async fn rate_limits_are_retried_and_a_bad_token_is_an_auth_error() {
    let (handle, emulator) = start(Args::new(TOKEN)).await;
    emulator.faults.set(FaultConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 1,
        ..FaultConfig::default()
    });
    let (ctx, _log) = ctx(&handle, json!({}));
    let items: Vec<PushItem> = (0..3)
        .map(|i| item(Kind::Domain, &format!("r{i}.evil.example"), Severity::High))
        .collect();
    let out = TrendVisionOne
        .push(&ctx, &call("suspicious_objects", json!({})), &items)
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared), "{out:?}");
    emulator.faults.set(FaultConfig::default());

    let (bad, _) = testing::context(
        &SPEC,
        json!({ "base_url": handle.base_url, "token": "wrong" }),
    );
    let e = TrendVisionOne.validate(&bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(!e.message.contains("wrong"), "the token is redacted: {e}");
    handle.stop().await;
}

#[test]
fn descriptions_keep_the_marker_within_1000_characters() {
    let (ctx, _) = testing::context(&SPEC, json!({ "token": "t" }));
    let mut i = item(Kind::Domain, "evil.example", Severity::High);
    i.comment = Some("c".repeat(5_000));
    let d = description("{comment}", &i, &ctx, "s");
    assert_eq!(d.chars().count(), MAX_DESCRIPTION);
    assert!(is_echo(&d));
    assert_eq!(days_to_expiration("indicator", None, Timestamp(0)), -1);
    assert_eq!(
        days_to_expiration("indicator", Some(Timestamp(86_400 * 3 - 5)), Timestamp(0)),
        3
    );
    assert_eq!(days_to_expiration("45", None, Timestamp(0)), 45);
    assert_eq!(risk_level("severity", Severity::Critical), "high");
    assert_eq!(risk_level("severity", Severity::Unknown), "low");
}
