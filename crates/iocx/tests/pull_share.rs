//! End to end through the real binary: feeds pulled on schedule, killed pulls resumed, jobs
//! shared by two processes on PostgreSQL, and sharings delivering exactly once to a webhook,
//! retracting what expires, and explaining themselves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use iocx_model::{Indicator, Kind, Timestamp};

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(db: &str, data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = iocx();
    c.arg("--database")
        .arg(db)
        .arg("--data")
        .arg(data)
        .env("IOCX_ALLOW_SHORT_INTERVALS", "1")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning iocx")
}

fn domains(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}.feed.example\n"))
        .collect()
}

#[test]
fn a_feed_pulls_on_schedule_and_is_searchable() {
    let (addr, seen) = servers::start();
    seen.lock().unwrap().feeds.insert(
        "a.txt".into(),
        format!("# a feed\n{}not an indicator\n", domains(50, "a")),
    );
    for t in stores() {
        let data = tempdir();
        let db = t.url.as_str();
        let url = format!("http://{addr}/feeds/a.txt");
        ok_in(
            db,
            data.path(),
            &[
                "configs",
                "add",
                "feed",
                "--connector",
                "http_feed",
                "--set",
                &format!("url={url}"),
                "--interval",
                "1s",
            ],
        );
        let mut worker = spawn(db, data.path(), &["worker"], &[]);
        wait_for("two scheduled pulls", Duration::from_secs(60), || {
            t.store
                .runs(Some("feed"), 10)
                .unwrap()
                .iter()
                .filter(|r| r.state == iocx_store::RunState::Succeeded)
                .count()
                >= 2
        });
        worker.kill().unwrap();
        worker.wait().unwrap();
        let runs = t.store.runs(Some("feed"), 10).unwrap();
        let first = runs.last().unwrap();
        assert_eq!(first.counts["new"], 50, "{first:?}");
        assert_eq!(first.counts["rejected"]["unrecognised"], 1, "{first:?}");
        // Later pulls ask with If-None-Match and get 304: nothing is re-read.
        assert_eq!(runs[0].counts["new"], 0);
        assert_eq!(runs[0].counts["unchanged"], 0, "{:?}", runs[0]);
        let listed = ok_in(db, data.path(), &["runs", "feed"]);
        assert!(listed.contains("succeeded"), "{listed}");
        let found = ok_in(db, data.path(), &["search", "a7[.]feed[.]example"]);
        assert!(found.contains("feed: severity unknown"), "{found}");
        let logs = ok_in(db, data.path(), &["logs", "feed"]);
        assert!(logs.contains("run"), "{logs}");
    }
}

#[test]
fn a_killed_pull_resumes_after_its_last_committed_batch() {
    let (addr, seen) = servers::start();
    {
        let mut s = seen.lock().unwrap();
        s.feeds.insert("big.txt".into(), domains(80_000, "b"));
        s.feed_trickle = Some(Duration::from_millis(25));
    }
    for t in stores() {
        let data = tempdir();
        let db = t.url.as_str();
        ok_in(
            db,
            data.path(),
            &[
                "configs",
                "add",
                "big",
                "--connector",
                "http_feed",
                "--set",
                &format!("url=http://{addr}/feeds/big.txt"),
            ],
        );
        let mut pull = spawn(db, data.path(), &["pull", "big"], &[]);
        wait_for("a committed batch", Duration::from_secs(60), || {
            t.store
                .last_checkpoint("pull", "big")
                .unwrap()
                .is_some_and(|c| c.contains("position"))
        });
        pull.kill().unwrap();
        pull.wait().unwrap();
        let before = t.store.stats().unwrap().indicators;
        assert!(before > 0 && before < 80_000, "killed mid-way: {before}");
        ok_in(db, data.path(), &["pull", "big"]);
        let logs = ok_in(db, data.path(), &["logs", "big"]);
        assert!(logs.contains("Resuming the feed after position"), "{logs}");
        assert!(logs.contains("stopped before finishing"), "{logs}");
        let stats = t.store.stats().unwrap();
        assert_eq!(stats.indicators, 80_000);
        // Nothing was counted twice.
        let mut hits = 0;
        t.store
            .export(&iocx_store::ExportFilter::default(), false, &mut |c| {
                hits += c.iter().map(|d| d.aggregate.hits).sum::<u64>();
                Ok(true)
            })
            .unwrap();
        assert_eq!(hits, 80_000);
    }
}

#[test]
fn two_processes_on_postgres_share_jobs_and_take_over_a_dead_ones() {
    let Some(t) = TestStore::postgres() else {
        return;
    };
    let (addr, seen) = servers::start();
    {
        let mut s = seen.lock().unwrap();
        for i in 0..4 {
            s.feeds
                .insert(format!("f{i}.txt"), domains(20, &format!("f{i}-")));
        }
        s.feed_delay = Duration::from_millis(400);
    }
    let data = tempdir();
    let db = t.url.as_str();
    for i in 0..4 {
        ok_in(
            db,
            data.path(),
            &[
                "configs",
                "add",
                &format!("f{i}"),
                "--connector",
                "http_feed",
                "--set",
                &format!("url=http://{addr}/feeds/f{i}.txt"),
                "--interval",
                "1s",
            ],
        );
    }
    let env = [("IOCX_LEASE_TTL_SECS", "3")];
    let mut a = spawn(db, data.path(), &["worker", "--max-jobs", "2"], &env);
    let mut b = spawn(db, data.path(), &["worker", "--max-jobs", "2"], &env);
    std::thread::sleep(Duration::from_secs(10));
    a.kill().unwrap();
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
    let requests = seen.lock().unwrap().feed_requests.clone();
    for (path, spans) in &requests {
        assert!(spans.len() >= 2, "{path} pulled {} times", spans.len());
        let mut spans = spans.clone();
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "{path} was pulled by two processes at once"
            );
        }
    }
    let owners: std::collections::BTreeSet<String> = t
        .store
        .runs(None, 1000)
        .unwrap()
        .into_iter()
        .map(|r| r.owner)
        .collect();
    assert!(owners.len() >= 2, "both processes ran jobs: {owners:?}");

    // A process dies in the middle of a job: another takes it over once the lease expires.
    {
        let mut s = seen.lock().unwrap();
        s.feeds.insert("slow.txt".into(), domains(5, "slow"));
        s.feed_delay = Duration::from_secs(6);
        s.feed_requests.clear();
    }
    for i in 0..4 {
        ok_in(db, data.path(), &["configs", "disable", &format!("f{i}")]);
    }
    ok_in(
        db,
        data.path(),
        &[
            "configs",
            "add",
            "slow",
            "--connector",
            "http_feed",
            "--set",
            &format!("url=http://{addr}/feeds/slow.txt"),
            "--interval",
            "1h",
        ],
    );
    let mut a = spawn(db, data.path(), &["worker"], &env);
    wait_for(
        "the first process to start the slow pull",
        Duration::from_secs(30),
        || {
            t.store
                .runs(Some("slow"), 5)
                .unwrap()
                .iter()
                .any(|r| r.state == iocx_store::RunState::Running)
        },
    );
    let dead_owner = t.store.runs(Some("slow"), 1).unwrap()[0].owner.clone();
    a.kill().unwrap();
    a.wait().unwrap();
    seen.lock().unwrap().feed_delay = Duration::from_millis(10);
    let mut b = spawn(db, data.path(), &["worker"], &env);
    wait_for(
        "the second process to finish the job",
        Duration::from_secs(40),
        || {
            t.store
                .runs(Some("slow"), 5)
                .unwrap()
                .iter()
                .any(|r| r.state == iocx_store::RunState::Succeeded && r.owner != dead_owner)
        },
    );
    b.kill().unwrap();
    b.wait().unwrap();
    let runs = t.store.runs(Some("slow"), 5).unwrap();
    assert!(
        runs.iter()
            .any(|r| r.owner == dead_owner && r.state == iocx_store::RunState::Interrupted),
        "{runs:?}"
    );
    assert!(
        t.store
            .lookup(&[Indicator::new(Kind::Domain, "slow0.feed.example")], false)
            .unwrap()[0]
            .is_some()
    );
}

#[test]
fn sharings_deliver_exactly_once_retract_what_expires_and_explain_themselves() {
    let (addr, seen) = servers::start();
    let mut csv = String::from("value,severity,expires\n");
    for i in 0..2_600 {
        csv.push_str(&format!("s{i}.bad.example,high,\n"));
    }
    csv.push_str("10.9.9.9,high,\n192.168.7.7,critical,\nlow.bad.example,low,\n");
    seen.lock().unwrap().feeds.insert("s.csv".into(), csv);
    for t in stores() {
        seen.lock().unwrap().batches.clear();
        let data = tempdir();
        let db = t.url.as_str();
        let hook = format!("url=http://{addr}/webhook");
        ok_in(
            db,
            data.path(),
            &[
                "configs",
                "add",
                "intel",
                "--connector",
                "http_feed",
                "--set",
                &format!("url=http://{addr}/feeds/s.csv"),
            ],
        );
        ok_in(db, data.path(), &["pull", "intel"]);
        ok_in(
            db,
            data.path(),
            &[
                "rules",
                "add",
                "high",
                "severity >= high and last_seen > now - 7d",
                "--exclude",
                "private",
            ],
        );
        let preview = ok_in(
            db,
            data.path(),
            &[
                "rules",
                "preview",
                "severity >= high and last_seen > now - 7d",
            ],
        );
        assert!(preview.starts_with("2,602 indicators match"), "{preview}");
        ok_in(
            db,
            data.path(),
            &[
                "configs",
                "add",
                "hook",
                "--connector",
                "webhook",
                "--set",
                &hook,
            ],
        );
        ok_in(
            db,
            data.path(),
            &[
                "sharings",
                "add",
                "to-hook",
                "--source",
                "intel",
                "--rule",
                "high",
                "--destination",
                "hook",
                "--target",
                "send",
            ],
        );
        let count = ok_in(
            db,
            data.path(),
            &["sync", "to-hook", "--days", "7", "--json"],
        );
        let count: serde_json::Value = serde_json::from_str(&count).unwrap();
        assert_eq!(count["to_send"], 2_600, "{count}");
        assert_eq!(count["counts"]["excluded"]["private"], 2, "{count}");
        ok_in(
            db,
            data.path(),
            &["sync", "to-hook", "--days", "7", "--yes"],
        );
        let delivered = seen.lock().unwrap().deliveries("add");
        assert_eq!(delivered.len(), 2_600);
        assert!(delivered.values().all(|n| *n == 1));
        assert!(!delivered.contains_key("10.9.9.9") && !delivered.contains_key("low.bad.example"));
        // A regular run after it sends nothing: every delivery is in the ledger.
        let again = ok_in(db, data.path(), &["share", "to-hook"]);
        assert!(again.contains("0 shared, 2,600 unchanged"), "{again}");

        // Killed mid-way, a second sharing still delivers each indicator exactly once.
        seen.lock().unwrap().batches.clear();
        seen.lock().unwrap().webhook_delay = Duration::from_millis(400);
        ok_in(
            db,
            data.path(),
            &[
                "sharings",
                "add",
                "to-hook-2",
                "--rule",
                "high",
                "--destination",
                "hook",
                "--target",
                "send",
            ],
        );
        let mut share = spawn(db, data.path(), &["share", "to-hook-2"], &[]);
        wait_for("two batches delivered", Duration::from_secs(60), || {
            seen.lock().unwrap().batches.len() >= 2
        });
        share.kill().unwrap();
        share.wait().unwrap();
        seen.lock().unwrap().webhook_delay = Duration::ZERO;
        ok_in(db, data.path(), &["share", "to-hook-2"]);
        let delivered = seen.lock().unwrap().deliveries("add");
        assert_eq!(delivered.len(), 2_600);
        assert!(
            delivered.values().all(|n| *n == 1),
            "some indicator was delivered twice"
        );

        // An indicator that expires is retracted.
        let dir = tempdir();
        let soon = Timestamp(Timestamp::now().0 + 3).to_rfc3339();
        let file = write(
            dir.path(),
            "e.csv",
            &format!("value,severity,expires\nexpiring.bad.example,critical,{soon}\n"),
        );
        ok_in(
            db,
            data.path(),
            &["import", file.to_str().unwrap(), "--source", "intel"],
        );
        ok_in(db, data.path(), &["share", "to-hook"]);
        assert_eq!(
            seen.lock()
                .unwrap()
                .deliveries("add")
                .get("expiring.bad.example"),
            Some(&1)
        );
        std::thread::sleep(Duration::from_secs(4));
        let out = ok_in(db, data.path(), &["share", "to-hook"]);
        assert!(out.contains("1 retracted"), "{out}");
        assert_eq!(
            seen.lock()
                .unwrap()
                .deliveries("remove")
                .get("expiring.bad.example"),
            Some(&1)
        );

        // Explain says why, for each sharing.
        let why = ok_in(db, data.path(), &["explain", "s1[.]bad[.]example"]);
        assert!(why.contains("to-hook → hook/send: DELIVERED"), "{why}");
        let why = ok_in(
            db,
            data.path(),
            &["explain", "192.168.7.7", "--sharing", "to-hook"],
        );
        assert!(why.contains("allow-list private excludes it"), "{why}");
        let why = ok_in(
            db,
            data.path(),
            &["explain", "low.bad.example", "--sharing", "to-hook"],
        );
        assert!(why.contains("✗ severity >= high"), "{why}");
        let why = ok_in(
            db,
            data.path(),
            &["explain", "expiring.bad.example", "--sharing", "to-hook"],
        );
        assert!(why.contains("inactive: it expired"), "{why}");
    }
}
