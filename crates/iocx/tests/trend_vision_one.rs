//! Trend Vision One end to end through the real binary: one emulated tenant's Suspicious Object
//! List is pulled, a rule selects its high-risk objects, a sharing pushes them to a second
//! tenant, and they are retracted when they leave the rule. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use iocx_model::Timestamp;
use iocx_sim::common::SimHandle;
use iocx_sim::trend_vision_one::{self as sim, Args, Emulator};
use serde_json::Value;

const TOKEN: &str = "e2e-token";

fn start(rt: &tokio::runtime::Runtime, objects: usize) -> (SimHandle, Emulator) {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut args = Args::new(TOKEN);
        args.objects = objects;
        sim::start(listener, &args).await.unwrap()
    })
}

fn objects(emulator: &Emulator) -> Vec<Value> {
    emulator.state.snapshot()["suspiciousObjects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn objects_flow_from_one_tenant_to_another_and_are_retracted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let (a_handle, a) = start(&rt, 120);
        let (b_handle, b) = start(&rt, 0);
        // The seed marks some objects as pushed by iocx: those are echoes, never shared on.
        let high: usize = objects(&a)
            .iter()
            .filter(|o| o["riskLevel"] == "high")
            .filter(|o| {
                !o["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("Shared by iocx"))
            })
            .count();
        assert!(high > 0, "the seed has high-risk objects");
        let data = tempdir();
        let db = t.url.as_str();
        let add = |name: &str, handle: &SimHandle, extra: &[&str]| {
            let base = format!("base_url={}", handle.base_url);
            let token = format!("token={TOKEN}");
            let mut args = vec![
                "configs",
                "add",
                name,
                "--connector",
                "trend_vision_one",
                "--set",
                &base,
                "--secret",
                &token,
            ];
            args.extend_from_slice(extra);
            ok_in(db, data.path(), &args);
        };
        // The seeded objects were modified up to a year ago: keep them from aging out.
        add(
            "tenant-a",
            &a_handle,
            &["--initial-range-days", "365", "--aging-days", "3650"],
        );
        add("tenant-b", &b_handle, &["--no-polling"]);
        let shown = ok_in(db, data.path(), &["configs", "show", "tenant-a", "--json"]);
        assert!(!shown.contains(TOKEN), "the token is never shown: {shown}");
        let tested = ok_in(db, data.path(), &["configs", "test", "tenant-a"]);
        assert!(tested.contains("suspicious object"), "{tested}");

        ok_in(db, data.path(), &["pull", "tenant-a"]);
        let stats: Value =
            serde_json::from_str(&ok_in(db, data.path(), &["stats", "--json"])).unwrap();
        assert_eq!(stats["indicators"], 120, "{stats}");

        ok_in(
            db,
            data.path(),
            &["rules", "add", "high-risk", "severity >= high"],
        );
        ok_in(
            db,
            data.path(),
            &[
                "sharings",
                "add",
                "a-to-b",
                "--source",
                "tenant-a",
                "--rule",
                "high-risk",
                "--destination",
                "tenant-b",
                "--target",
                "suspicious_objects",
                "--param",
                "scan_action=log",
                "--param",
                "expiration=never",
                "--enabled",
            ],
        );
        let out = ok_in(db, data.path(), &["share", "a-to-b"]);
        assert!(
            out.contains(&format!(" {high} shared")),
            "{high} high-risk: {out}"
        );
        let delivered = objects(&b);
        assert_eq!(delivered.len(), high);
        for o in &delivered {
            assert_eq!(o["scanAction"], "log");
            assert_eq!(o["riskLevel"], "high");
            let d = o["description"].as_str().unwrap_or_default();
            assert!(d.contains("Shared by iocx"), "{d}");
        }
        // Nothing changed: nothing is sent again.
        let again = ok_in(db, data.path(), &["share", "a-to-b"]);
        assert!(again.contains("0 shared"), "{again}");

        // Tenant B's list pulled back is iocx's own echo, not a new source.
        ok_in(
            db,
            data.path(),
            &["configs", "edit", "tenant-b", "--polling"],
        );
        ok_in(db, data.path(), &["pull", "tenant-b"]);
        let stats: Value =
            serde_json::from_str(&ok_in(db, data.path(), &["stats", "--json"])).unwrap();
        assert_eq!(stats["indicators"], 120, "{stats}");
        let again = ok_in(db, data.path(), &["share", "a-to-b"]);
        assert!(again.contains("0 shared"), "{again}");

        // Out of the rule, they are taken back out.
        ok_in(
            db,
            data.path(),
            &["rules", "edit", "high-risk", "severity >= critical"],
        );
        let out = ok_in(db, data.path(), &["share", "a-to-b"]);
        assert!(out.contains(&format!("{high} retracted")), "{out}");
        assert!(objects(&b).is_empty());
        rt.block_on(async {
            a_handle.stop().await;
            b_handle.stop().await;
        });
    }
}

fn exceptions(emulator: &Emulator) -> Vec<Value> {
    emulator.state.snapshot()["exceptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn safe_indicators_go_to_exceptions_expired_ones_leave_and_a_full_tenant_gets_the_most_severe() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let (a_handle, _a) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut args = Args::new(TOKEN);
            args.exceptions = 30;
            sim::start(listener, &args).await.unwrap()
        });
        let (b_handle, b) = start(&rt, 0);
        let data = tempdir();
        let db = t.url.as_str();
        let run = |args: &[&str]| ok_in(db, data.path(), args);
        let add = |name: &str, handle: &SimHandle, extra: &[&str]| {
            let base = format!("base_url={}", handle.base_url);
            let token = format!("token={TOKEN}");
            let mut args = vec![
                "configs",
                "add",
                name,
                "--connector",
                "trend_vision_one",
                "--set",
                &base,
                "--secret",
                &token,
            ];
            args.extend_from_slice(extra);
            run(&args);
        };
        add(
            "tenant-a",
            &a_handle,
            &[
                "--set",
                "pull_exceptions=true",
                "--initial-range-days",
                "365",
                "--aging-days",
                "3650",
            ],
        );
        add("tenant-b", &b_handle, &["--no-polling"]);
        run(&["pull", "tenant-a"]);

        // A's exceptions are safe indicators; they go to B's Exception List, through 429s.
        let rule =
            "safe and source = tenant-a and kind in (url, domain, ipv4, ipv6, sha1, sha256, email)";
        let preview = run(&["rules", "preview", rule]);
        let safe: usize = preview
            .split_whitespace()
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert!(safe > 0, "{preview}");
        run(&["rules", "add", "safe", rule]);
        run(&[
            "sharings",
            "add",
            "a-safe-to-b",
            "--source",
            "tenant-a",
            "--rule",
            "safe",
            "--destination",
            "tenant-b",
            "--target",
            "exceptions",
        ]);
        b.faults.set(iocx_sim::common::FaultConfig {
            rate_limit_every: Some(2),
            retry_after_secs: 1,
            ..iocx_sim::common::FaultConfig::default()
        });
        let out = run(&["share", "a-safe-to-b"]);
        assert!(out.contains(&format!(" {safe} shared")), "{safe}: {out}");
        assert_eq!(exceptions(&b).len(), safe);
        b.faults.set(iocx_sim::common::FaultConfig::default());

        // An indicator that expires in iocx leaves B.
        let dir = tempdir();
        let soon = Timestamp(Timestamp::now().0 + 3).to_rfc3339();
        let csv = write(
            dir.path(),
            "manual.csv",
            &format!("value,severity,expires\nexpiring.evil.example,critical,{soon}\n"),
        );
        run(&["import", csv.to_str().unwrap(), "--source", "manual"]);
        run(&["rules", "add", "manual", "source = manual"]);
        run(&[
            "sharings",
            "add",
            "manual-to-b",
            "--source",
            "manual",
            "--rule",
            "manual",
            "--destination",
            "tenant-b",
            "--target",
            "suspicious_objects",
        ]);
        assert!(run(&["share", "manual-to-b"]).contains(" 1 shared"));
        assert_eq!(objects(&b).len(), 1);
        std::thread::sleep(std::time::Duration::from_secs(4));
        let out = run(&["share", "manual-to-b"]);
        assert!(out.contains("1 retracted"), "{out}");
        assert!(objects(&b).is_empty());

        // 10,050 domains for a list that holds 10,000 per type: the critical ones go first and
        // the rest are reported over capacity.
        let mut feed = String::from("value,severity\n");
        for i in 0..10_050 {
            let severity = if i % 100 == 0 { "critical" } else { "high" };
            feed.push_str(&format!("d{i}.bulk.example,{severity}\n"));
        }
        let bulk = write(dir.path(), "bulk.csv", &feed);
        run(&["import", bulk.to_str().unwrap(), "--source", "bulk"]);
        run(&["rules", "add", "bulk", "source = bulk"]);
        run(&[
            "sharings",
            "add",
            "bulk-to-b",
            "--source",
            "bulk",
            "--rule",
            "bulk",
            "--destination",
            "tenant-b",
            "--target",
            "suspicious_objects",
        ]);
        let out = run(&["share", "bulk-to-b"]);
        assert!(out.contains(" 10,000 shared"), "{out}");
        assert!(out.contains("skipped 50: over capacity"), "{out}");
        let held = objects(&b);
        assert_eq!(held.len(), 10_000);
        for i in (0..10_050).step_by(100) {
            let name = format!("d{i}.bulk.example");
            assert!(
                held.iter().any(|o| o["domain"] == name.as_str()),
                "{name} is critical"
            );
        }
        rt.block_on(async {
            a_handle.stop().await;
            b_handle.stop().await;
        });
    }
}
