//! The store's behaviour, held to the same tests on SQLite and PostgreSQL.
//!
//! Each test is a plain function over a `&Store`; the `conformance!` macro runs it once per
//! backend (PostgreSQL when `IOCX_TEST_POSTGRES` names a database).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::{
    Attributes, Indicator, Kind, Reconciliation, Record, Reputation, Severity, TagSet, Timestamp,
};
use iocx_store::testing::TestStore;
use iocx_store::*;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    let t = iocx_store::testing::TestStore::sqlite();
                    super::$name(&t.store);
                }
                #[test]
                fn postgres() {
                    if let Some(t) = iocx_store::testing::TestStore::postgres() {
                        super::$name(&t.store);
                    }
                }
            }
        )*
    };
}

conformance!(
    new_indicators_are_stored_with_their_aggregate,
    re_sighting_counts_without_changing_attributes,
    changed_statement_replaces_the_sources_attributes,
    second_source_merges_into_the_aggregate,
    reconciliation_policies_pick_the_master,
    echoes_are_not_independent_sources,
    duplicates_within_a_batch_are_merged,
    large_batches_and_ranges_of_resightings,
    expiry_and_aging_drive_activity,
    export_streams_with_filters,
    stats_count_by_kind_severity_and_source,
    runs_keep_progress_and_logs,
    interrupted_runs_are_claimed_once,
    tags_are_interned_and_merged,
    every_resolution_path_agrees,
    configurations_round_trip_and_own_a_source,
    leases_go_to_one_owner_and_expire,
    snapshot_feeds_retire_what_disappears,
    changing_aging_recomputes_activity,
    rules_lists_and_sharings_round_trip,
    the_ledger_and_outbox_record_batches,
    users_tokens_sessions_and_audit,
    user_marks_outrank_sources,
);

const T0: i64 = 1_790_000_000;

fn rec(kind: Kind, value: &str) -> Record {
    Record::new(Indicator::new(kind, value))
}

fn opts(now: i64) -> IngestOptions {
    IngestOptions {
        now: Timestamp(now),
        echo: false,
        run_id: None,
    }
}

fn one(store: &Store, kind: Kind, value: &str) -> IndicatorDetail {
    store
        .lookup(&[Indicator::new(kind, value)], true)
        .unwrap()
        .pop()
        .flatten()
        .expect("indicator stored")
}

fn new_indicators_are_stored_with_their_aggregate(store: &Store) {
    let feed = store
        .ensure_source("feed", SourceKind::Import, None)
        .unwrap();
    let mut r = rec(Kind::Domain, "evil.example");
    r.attributes.severity = Severity::High;
    r.attributes.reputation = Reputation::new(2);
    r.attributes.comment = Some("phishing kit".into());
    let out = store
        .ingest(
            &feed,
            &opts(T0),
            vec![r, rec(Kind::Ipv4, "192.0.2.7")],
            None,
        )
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 2,
            updated: 0,
            unchanged: 0
        }
    );
    let d = one(store, Kind::Domain, "evil.example");
    assert_eq!(d.aggregate.severity, Severity::High);
    assert_eq!(d.aggregate.reputation.get(), 2);
    assert_eq!((d.aggregate.hits, d.aggregate.sources), (1, 1));
    assert_eq!(
        (d.aggregate.first_seen.0, d.aggregate.last_seen.0),
        (T0, T0)
    );
    assert_eq!(
        d.aggregate.aged_at,
        Timestamp(T0).plus_days(DEFAULT_AGING_DAYS)
    );
    assert_eq!(d.observations.len(), 1);
    assert_eq!(d.observations[0].source, "feed");
    assert_eq!(
        d.observations[0].observation.attributes.comment.as_deref(),
        Some("phishing kit")
    );
    assert_eq!(
        one(store, Kind::Ipv4, "192.0.2.7").aggregate.reputation,
        Reputation::DEFAULT
    );
    assert!(
        store
            .lookup(&[Indicator::new(Kind::Domain, "other.example")], false)
            .unwrap()[0]
            .is_none()
    );
}

fn re_sighting_counts_without_changing_attributes(store: &Store) {
    let feed = store
        .ensure_source("feed", SourceKind::Import, Some(30))
        .unwrap();
    let batch = || {
        vec![
            rec(Kind::Md5, &"a".repeat(32)),
            rec(Kind::Md5, &"b".repeat(32)),
        ]
    };
    store.ingest(&feed, &opts(T0), batch(), None).unwrap();
    let out = store
        .ingest(&feed, &opts(T0 + 3600), batch(), None)
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 0,
            updated: 0,
            unchanged: 2
        }
    );
    // A later day moves the indexed day too.
    let out = store
        .ingest(&feed, &opts(T0 + 3 * 86_400), batch(), None)
        .unwrap();
    assert_eq!(out.unchanged, 2);
    let d = one(store, Kind::Md5, &"a".repeat(32));
    assert_eq!(d.aggregate.hits, 3);
    assert_eq!(
        (d.aggregate.first_seen.0, d.aggregate.last_seen.0),
        (T0, T0 + 3 * 86_400)
    );
    assert_eq!(
        d.aggregate.aged_at,
        Timestamp(T0 + 3 * 86_400).plus_days(30)
    );
    assert_eq!(d.observations[0].observation.hits, 3);
    assert_eq!(d.observations[0].observation.last_seen.0, T0 + 3 * 86_400);
    // An older sighting never moves last_seen back.
    store.ingest(&feed, &opts(T0 - 100), batch(), None).unwrap();
    let d = one(store, Kind::Md5, &"a".repeat(32));
    assert_eq!(
        (d.aggregate.hits, d.aggregate.last_seen.0),
        (4, T0 + 3 * 86_400)
    );
}

fn changed_statement_replaces_the_sources_attributes(store: &Store) {
    let feed = store
        .ensure_source("feed", SourceKind::Import, None)
        .unwrap();
    let mut r = rec(Kind::Url, "http://evil.example/x");
    r.attributes.severity = Severity::Critical;
    r.attributes.tags = TagSet::from_tags(["a"]);
    store
        .ingest(&feed, &opts(T0), vec![r.clone()], None)
        .unwrap();
    r.attributes.severity = Severity::Low;
    r.attributes.tags = TagSet::from_tags(["b"]);
    let out = store.ingest(&feed, &opts(T0 + 10), vec![r], None).unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 0,
            updated: 1,
            unchanged: 0
        }
    );
    let d = one(store, Kind::Url, "http://evil.example/x");
    assert_eq!(d.aggregate.severity, Severity::Low);
    assert_eq!(d.aggregate.tags.as_slice(), ["b"]);
    assert_eq!(d.aggregate.hits, 2);
    assert_eq!(d.aggregate.last_seen.0, T0 + 10);
}

fn second_source_merges_into_the_aggregate(store: &Store) {
    let a = store
        .ensure_source("edr", SourceKind::Configuration, Some(10))
        .unwrap();
    let b = store
        .ensure_source("intel", SourceKind::Configuration, Some(60))
        .unwrap();
    let mut ra = rec(Kind::Sha256, &"c".repeat(64));
    ra.attributes.severity = Severity::Medium;
    let mut rb = ra.clone();
    rb.attributes.severity = Severity::Critical;
    rb.attributes.tags = TagSet::from_tags(["apt"]);
    store.ingest(&a, &opts(T0), vec![ra.clone()], None).unwrap();
    let out = store.ingest(&b, &opts(T0 + 100), vec![rb], None).unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 0,
            updated: 1,
            unchanged: 0
        }
    );
    // A plain re-sighting of a multi-source indicator still recomputes.
    store.ingest(&a, &opts(T0 + 200), vec![ra], None).unwrap();
    let d = one(store, Kind::Sha256, &"c".repeat(64));
    assert_eq!(d.aggregate.sources, 2);
    assert_eq!(d.aggregate.severity, Severity::Critical);
    assert_eq!(d.aggregate.hits, 3);
    assert_eq!(
        (d.aggregate.first_seen.0, d.aggregate.last_seen.0),
        (T0, T0 + 200)
    );
    assert_eq!(d.aggregate.tags.as_slice(), ["apt"]);
    let aged = Timestamp(T0 + 200)
        .plus_days(10)
        .max(Timestamp(T0 + 100).plus_days(60));
    assert_eq!(d.aggregate.aged_at, aged);
    let names: Vec<&str> = d.observations.iter().map(|o| o.source.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"edr") && names.contains(&"intel"));
}

fn reconciliation_policies_pick_the_master(store: &Store) {
    let a = store
        .ensure_source("trusted", SourceKind::Configuration, None)
        .unwrap();
    let b = store
        .ensure_source("noisy", SourceKind::Configuration, None)
        .unwrap();
    let value = "safe.example";
    let mut ra = rec(Kind::Domain, value);
    ra.attributes.safe = true;
    ra.attributes.reputation = Reputation::new(9);
    let mut rb = rec(Kind::Domain, value);
    rb.attributes.severity = Severity::High;
    rb.attributes.reputation = Reputation::new(1);
    store.ingest(&a, &opts(T0), vec![ra.clone()], None).unwrap();
    store
        .ingest(&b, &opts(T0 + 50), vec![rb.clone()], None)
        .unwrap();
    let d = one(store, Kind::Domain, value);
    assert!(!d.aggregate.safe, "latest (noisy) wins by default");
    assert_eq!(d.aggregate.reputation.get(), 1);

    store
        .set_reconciliation(&Reconciliation::TrustedSources(vec!["trusted".into()]))
        .unwrap();
    assert_eq!(
        store.settings().reconciliation,
        Reconciliation::TrustedSources(vec!["trusted".into()])
    );
    store.ingest(&b, &opts(T0 + 60), vec![rb], None).unwrap();
    let d = one(store, Kind::Domain, value);
    assert!(d.aggregate.safe, "the trusted source's safe verdict wins");
    assert_eq!(d.aggregate.reputation.get(), 9);
    // The policy survives reopening.
    let reopened = Store::open(&store_url(store)).unwrap();
    assert_eq!(
        reopened.settings().reconciliation,
        Reconciliation::TrustedSources(vec!["trusted".into()])
    );
}

fn store_url(store: &Store) -> String {
    // describe() is "sqlite PATH" or "postgresql URL"; tests only reopen SQLite files by path and
    // PostgreSQL by the masked URL (no password in the test URL).
    store
        .describe()
        .split_once(' ')
        .map(|(_, u)| u.to_string())
        .unwrap()
}

fn echoes_are_not_independent_sources(store: &Store) {
    let a = store
        .ensure_source("a", SourceKind::Configuration, None)
        .unwrap();
    let b = store
        .ensure_source("b", SourceKind::Configuration, None)
        .unwrap();
    store
        .ingest(&a, &opts(T0), vec![rec(Kind::Ipv4, "198.51.100.1")], None)
        .unwrap();
    let echo = IngestOptions {
        echo: true,
        ..opts(T0 + 5)
    };
    store
        .ingest(&b, &echo, vec![rec(Kind::Ipv4, "198.51.100.1")], None)
        .unwrap();
    let d = one(store, Kind::Ipv4, "198.51.100.1");
    assert_eq!(d.aggregate.sources, 1);
    assert_eq!(d.observations.len(), 2);
    assert!(d.observations.iter().any(|o| o.observation.echo));
}

fn duplicates_within_a_batch_are_merged(store: &Store) {
    let feed = store
        .ensure_source("feed", SourceKind::Import, None)
        .unwrap();
    let r = rec(Kind::Domain, "dup.example");
    let out = store
        .ingest(&feed, &opts(T0), vec![r.clone(), r.clone(), r], None)
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 1,
            updated: 0,
            unchanged: 2
        }
    );
    assert_eq!(one(store, Kind::Domain, "dup.example").aggregate.hits, 3);
}

fn large_batches_and_ranges_of_resightings(store: &Store) {
    let feed = store
        .ensure_source("big", SourceKind::Import, None)
        .unwrap();
    let other = store
        .ensure_source("other", SourceKind::Import, None)
        .unwrap();
    let batch = |n: usize| {
        (0..n)
            .map(|i| rec(Kind::Domain, &format!("h{i}.example")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        store
            .ingest(&feed, &opts(T0), batch(20_000), None)
            .unwrap()
            .new,
        20_000
    );
    // Another source reports every tenth one, so re-sightings of `feed` are no longer all
    // single-source and runs of ids are broken up.
    let tenth: Vec<Record> = (0..20_000)
        .step_by(10)
        .map(|i| rec(Kind::Domain, &format!("h{i}.example")))
        .collect();
    assert_eq!(
        store
            .ingest(&other, &opts(T0 + 1), tenth, None)
            .unwrap()
            .updated,
        2_000
    );
    let out = store
        .ingest(&feed, &opts(T0 + 2), batch(20_000), None)
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 0,
            updated: 0,
            unchanged: 20_000
        }
    );
    for i in [0usize, 1, 9, 10, 19_999] {
        let d = one(store, Kind::Domain, &format!("h{i}.example"));
        let expect_hits = if i % 10 == 0 { 3 } else { 2 };
        assert_eq!(d.aggregate.hits, expect_hits, "h{i}");
        assert_eq!(d.aggregate.last_seen.0, T0 + 2, "h{i}");
        let mine = d.observations.iter().find(|o| o.source == "big").unwrap();
        assert_eq!(mine.observation.hits, 2, "h{i}");
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.indicators, 20_000);
    assert_eq!(stats.observations, 22_000);
}

fn expiry_and_aging_drive_activity(store: &Store) {
    let feed = store
        .ensure_source("short", SourceKind::Import, Some(1))
        .unwrap();
    let now = Timestamp::now().0;
    let mut expired = rec(Kind::Domain, "expired.example");
    expired.attributes.expires = Some(Timestamp(now - 10));
    let mut old = rec(Kind::Domain, "old.example");
    old.last_seen = Some(Timestamp(now - 3 * 86_400));
    let fresh = rec(Kind::Domain, "fresh.example");
    store
        .ingest(&feed, &opts(now), vec![expired, old, fresh], None)
        .unwrap();
    assert!(!one(store, Kind::Domain, "expired.example").active);
    assert!(!one(store, Kind::Domain, "old.example").active);
    assert!(one(store, Kind::Domain, "fresh.example").active);
    let stats = store.stats().unwrap();
    assert_eq!((stats.indicators, stats.active), (3, 1));
}

fn export_streams_with_filters(store: &Store) {
    let a = store.ensure_source("a", SourceKind::Import, None).unwrap();
    let b = store.ensure_source("b", SourceKind::Import, None).unwrap();
    let recs: Vec<Record> = (0..2_500)
        .map(|i| rec(Kind::Ipv4, &format!("10.0.{}.{}", i / 250, i % 250)))
        .collect();
    store
        .ingest(&a, &opts(Timestamp::now().0), recs, None)
        .unwrap();
    store
        .ingest(
            &b,
            &opts(Timestamp::now().0),
            vec![rec(Kind::Domain, "b.example"), rec(Kind::Ipv4, "10.0.0.0")],
            None,
        )
        .unwrap();
    let collect = |filter: ExportFilter, obs: bool| {
        let mut all = Vec::new();
        let mut chunks = 0;
        store
            .export(&filter, obs, &mut |chunk| {
                chunks += 1;
                all.extend(chunk);
                Ok(true)
            })
            .unwrap();
        (all, chunks)
    };
    let (all, chunks) = collect(ExportFilter::default(), true);
    assert_eq!(all.len(), 2_501);
    assert!(chunks >= 2, "exports stream in chunks");
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let shared = all
        .iter()
        .find(|d| d.indicator.value == "10.0.0.0")
        .unwrap();
    assert_eq!(shared.observations.len(), 2);
    let (domains, _) = collect(
        ExportFilter {
            kinds: vec![Kind::Domain],
            ..Default::default()
        },
        false,
    );
    assert_eq!(domains.len(), 1);
    let (from_b, _) = collect(
        ExportFilter {
            sources: vec!["b".into()],
            ..Default::default()
        },
        false,
    );
    assert_eq!(from_b.len(), 2);
    let (active, _) = collect(
        ExportFilter {
            active_at: Some(Timestamp::now()),
            ..Default::default()
        },
        false,
    );
    assert_eq!(active.len(), 2_501);
    let mut stopped = 0;
    store
        .export(&ExportFilter::default(), false, &mut |c| {
            stopped += c.len();
            Ok(false)
        })
        .unwrap();
    assert!(stopped < 2_501, "a sink can stop the stream");
    let unknown = ExportFilter {
        sources: vec!["nope".into()],
        ..Default::default()
    };
    assert!(matches!(
        store.export(&unknown, false, &mut |_| Ok(true)),
        Err(StoreError::NotFound { .. })
    ));
}

fn stats_count_by_kind_severity_and_source(store: &Store) {
    let a = store.ensure_source("a", SourceKind::Import, None).unwrap();
    let mut r = rec(Kind::Sha1, &"d".repeat(40));
    r.attributes.severity = Severity::High;
    store
        .ingest(
            &a,
            &opts(Timestamp::now().0),
            vec![r, rec(Kind::Email, "x@evil.example")],
            None,
        )
        .unwrap();
    let s = store.stats().unwrap();
    assert_eq!(s.indicators, 2);
    assert_eq!(s.by_kind.get("sha1"), Some(&1));
    assert_eq!(s.by_kind.get("email"), Some(&1));
    assert_eq!(s.by_severity.get("high"), Some(&1));
    assert_eq!(s.by_source.get("a"), Some(&2));
    assert!(s.size_bytes > 0);
}

fn runs_keep_progress_and_logs(store: &Store) {
    let feed = store
        .ensure_source("feed", SourceKind::Import, None)
        .unwrap();
    let run = store
        .create_run(&NewRun {
            job: "import".into(),
            subject: "feed".into(),
            source_id: Some(feed.id),
            identity: Some("file:abc".into()),
            observed_at: Timestamp(T0),
            owner: "test".into(),
        })
        .unwrap();
    assert_eq!(run.state, RunState::Running);
    let progress = |o: &BatchOutcome| Progress {
        checkpoint: Some("line=2".into()),
        counts: serde_json::json!({"new": o.new}),
    };
    let o = IngestOptions {
        run_id: Some(run.id),
        ..opts(T0)
    };
    store
        .ingest(
            &feed,
            &o,
            vec![
                rec(Kind::Domain, "a.example"),
                rec(Kind::Domain, "b.example"),
            ],
            Some(&progress),
        )
        .unwrap();
    let saved = store.run(run.id).unwrap().unwrap();
    assert_eq!(saved.checkpoint.as_deref(), Some("line=2"));
    assert_eq!(saved.counts["new"], 2);
    assert_eq!(
        store
            .find_unfinished("import", "file:abc")
            .unwrap()
            .map(|r| r.id),
        Some(run.id)
    );
    store.log(run.id, "info", "Read 2 lines").unwrap();
    store
        .log(run.id, "warn", "Line 3: not an indicator")
        .unwrap();
    let logs = store.logs(run.id).unwrap();
    assert_eq!(logs.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(logs[1].level, "warn");
    store
        .finish_run(
            run.id,
            RunState::Succeeded,
            &serde_json::json!({"new": 2}),
            None,
        )
        .unwrap();
    assert!(
        store
            .find_unfinished("import", "file:abc")
            .unwrap()
            .is_none()
    );
    let runs = store.runs(Some("feed"), 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, RunState::Succeeded);
    assert!(runs[0].ended_at.is_some());
}

fn interrupted_runs_are_claimed_once(store: &Store) {
    let run = store
        .create_run(&NewRun {
            job: "pull".into(),
            subject: "cfg".into(),
            source_id: None,
            identity: Some("cfg".into()),
            observed_at: Timestamp(T0),
            owner: "node-a".into(),
        })
        .unwrap();
    // Fresh heartbeat: not stale yet.
    assert!(
        !store
            .claim_run(run.id, "node-b", Timestamp(run.heartbeat_at.0 - 60))
            .unwrap()
    );
    // Stale: exactly one claimant wins.
    let stale = Timestamp(run.heartbeat_at.0 + 60);
    assert!(store.claim_run(run.id, "node-b", stale).unwrap());
    let after = store.run(run.id).unwrap().unwrap();
    assert_eq!(after.owner, "node-b");
    assert!(
        !store
            .claim_run(run.id, "node-c", Timestamp(after.heartbeat_at.0 - 1))
            .unwrap()
    );
}

fn tags_are_interned_and_merged(store: &Store) {
    let a = store.ensure_source("a", SourceKind::Import, None).unwrap();
    let b = store.ensure_source("b", SourceKind::Import, None).unwrap();
    let tagged = |v: &str, tags: &[&str]| {
        let mut r = rec(Kind::Domain, v);
        r.attributes = Attributes {
            tags: TagSet::from_tags(tags.iter().copied()),
            ..Attributes::default()
        };
        r
    };
    store
        .ingest(
            &a,
            &opts(T0),
            vec![
                tagged("t1.example", &["x", "TLP:AMBER"]),
                tagged("t2.example", &["x", "TLP:AMBER"]),
            ],
            None,
        )
        .unwrap();
    store
        .ingest(&b, &opts(T0), vec![tagged("t1.example", &["y"])], None)
        .unwrap();
    assert_eq!(
        one(store, Kind::Domain, "t1.example")
            .aggregate
            .tags
            .as_slice(),
        ["TLP:AMBER", "x", "y"]
    );
    assert_eq!(
        one(store, Kind::Domain, "t2.example")
            .aggregate
            .tags
            .as_slice(),
        ["TLP:AMBER", "x"]
    );
    // A fresh handle reads the interned sets back from the database.
    let reopened = Store::open(&store_url(store)).unwrap();
    let d = reopened
        .lookup(&[Indicator::new(Kind::Domain, "t1.example")], true)
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(d.aggregate.tags.as_slice(), ["TLP:AMBER", "x", "y"]);
}

#[test]
fn bad_database_urls_are_named() {
    let err = Store::open("postgres://nobody@127.0.0.1:1/none")
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(Store::open("sqlite://").is_err());
    let _ = TestStore::sqlite();
}

/// New-heavy batches skip key lookups, re-sent feeds load the key cache, and keys another writer
/// added behind the cache's back are still found: all paths must give the same answers.
fn every_resolution_path_agrees(store: &Store) {
    let feed = store
        .ensure_source("paths", SourceKind::Import, None)
        .unwrap();
    let batch = |from: usize, to: usize| {
        (from..to)
            .map(|i| rec(Kind::Domain, &format!("p{i}.example")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        store
            .ingest(&feed, &opts(T0), batch(0, 10_000), None)
            .unwrap()
            .new,
        10_000
    );
    // Mostly new again: inserted without lookups, the 5,000 known ones found by the insert.
    let out = store
        .ingest(&feed, &opts(T0 + 1), batch(5_000, 20_000), None)
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 10_000,
            updated: 0,
            unchanged: 5_000
        }
    );
    // Mostly known: looked up, and the key cache loads.
    let out = store
        .ingest(&feed, &opts(T0 + 2), batch(0, 20_000), None)
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 0,
            updated: 0,
            unchanged: 20_000
        }
    );
    // Another handle (as another process would) adds keys the first one's cache never saw.
    let other = Store::open(&store_url(store)).unwrap();
    let other_feed = other
        .ensure_source("paths", SourceKind::Import, None)
        .unwrap();
    assert_eq!(
        other
            .ingest(&other_feed, &opts(T0 + 3), batch(20_000, 20_010), None)
            .unwrap()
            .new,
        10
    );
    let out = store
        .ingest(&feed, &opts(T0 + 4), batch(10_000, 25_000), None)
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            new: 4_990,
            updated: 0,
            unchanged: 10_010
        }
    );
    for (i, hits) in [
        (0usize, 2u64),
        (5_000, 3),
        (15_000, 3),
        (20_005, 2),
        (24_999, 1),
    ] {
        let d = one(store, Kind::Domain, &format!("p{i}.example"));
        assert_eq!(d.aggregate.hits, hits, "p{i}");
    }
    assert_eq!(store.stats().unwrap().indicators, 25_000);
}

fn new_configuration(name: &str) -> NewConfiguration {
    NewConfiguration {
        name: name.into(),
        connector: "http_feed".into(),
        enabled: true,
        params: std::collections::BTreeMap::from([(
            "url".to_string(),
            serde_json::json!("https://feed.example/x"),
        )]),
        secrets: Some(vec![1, 2, 3]),
        platform: Platform {
            interval_secs: 600,
            aging_days: 30,
            ..Platform::default()
        },
    }
}

fn configurations_round_trip_and_own_a_source(store: &Store) {
    let created = store
        .create_configuration(&new_configuration("feed-a"))
        .unwrap();
    assert_eq!(created.platform.aging_days, 30);
    assert_eq!(created.secrets.as_deref(), Some(&[1u8, 2, 3][..]));
    let source = store
        .sources()
        .unwrap()
        .into_iter()
        .find(|s| s.name == "feed-a")
        .unwrap();
    assert_eq!(
        (source.kind, source.aging_days, source.id),
        (SourceKind::Configuration, 30, created.source_id)
    );
    assert!(matches!(
        store.create_configuration(&new_configuration("feed-a")),
        Err(StoreError::Conflict(_))
    ));
    store
        .ensure_source("imported", SourceKind::Import, None)
        .unwrap();
    let clash = store
        .create_configuration(&new_configuration("imported"))
        .unwrap_err()
        .to_string();
    assert!(clash.contains("source of kind import"), "{clash}");

    let mut edited = created.clone();
    edited.enabled = false;
    edited.platform.override_reputation = Some(2);
    edited.platform.proxy = Some("http://proxy.example:3128".into());
    edited
        .params
        .insert("format".into(), serde_json::json!("csv"));
    let saved = store.update_configuration(&edited).unwrap();
    assert!(!saved.enabled);
    assert_eq!(saved.platform.override_reputation, Some(2));
    assert_eq!(saved.params.get("format"), Some(&serde_json::json!("csv")));
    assert_eq!(store.configuration("feed-a").unwrap().unwrap(), saved);
    assert_eq!(store.configurations().unwrap().len(), 1);
    assert!(store.delete_configuration("feed-a").unwrap());
    assert!(store.configuration("feed-a").unwrap().is_none());
    assert!(!store.delete_configuration("feed-a").unwrap());
}

fn leases_go_to_one_owner_and_expire(store: &Store) {
    let now = Timestamp(T0);
    store.ensure_job("pull:a", Timestamp(T0 - 10)).unwrap();
    store.ensure_job("pull:b", Timestamp(T0 - 5)).unwrap();
    store.ensure_job("pull:later", Timestamp(T0 + 100)).unwrap();
    let first = store.lease_due("node-1", now, 60, 1).unwrap();
    assert_eq!(first, ["pull:a"]);
    let second = store.lease_due("node-2", now, 60, 10).unwrap();
    assert_eq!(second, ["pull:b"], "a leased job is not leased again");
    assert!(store.lease_due("node-3", now, 60, 10).unwrap().is_empty());
    assert!(!store.lease_job("pull:a", "node-2", now, 60).unwrap());
    assert!(
        store
            .renew_lease("pull:a", "node-1", Timestamp(T0 + 120))
            .unwrap()
    );
    assert!(
        !store
            .renew_lease("pull:a", "node-2", Timestamp(T0 + 120))
            .unwrap()
    );
    // node-1 dies: once its lease expires, another node takes the job.
    assert!(
        store
            .lease_due("node-2", Timestamp(T0 + 121), 60, 10)
            .unwrap()
            .contains(&"pull:a".to_string())
    );
    assert!(
        !store
            .renew_lease("pull:a", "node-1", Timestamp(T0 + 300))
            .unwrap(),
        "the old owner lost it"
    );
    store
        .release_job("pull:a", "node-2", Some(Timestamp(T0 + 1_000)))
        .unwrap();
    let job = store
        .jobs()
        .unwrap()
        .into_iter()
        .find(|j| j.name == "pull:a")
        .unwrap();
    assert_eq!(
        (job.lease_owner, job.next_run_at),
        (None, Timestamp(T0 + 1_000))
    );
    store.delete_job("pull:later").unwrap();
    assert_eq!(store.jobs().unwrap().len(), 2);
}

fn snapshot_feeds_retire_what_disappears(store: &Store) {
    let feed = store
        .ensure_source("snapshot", SourceKind::Import, None)
        .unwrap();
    let now = Timestamp::now().0;
    let all = |n: usize| {
        (0..n)
            .map(|i| rec(Kind::Domain, &format!("s{i}.example")))
            .collect::<Vec<_>>()
    };
    store.ingest(&feed, &opts(now - 100), all(3), None).unwrap();
    // The next snapshot lacks s2.
    store.ingest(&feed, &opts(now - 50), all(2), None).unwrap();
    assert_eq!(
        store.retire_unseen(feed.id, Timestamp(now - 60)).unwrap(),
        1
    );
    assert!(!one(store, Kind::Domain, "s2.example").active);
    assert!(one(store, Kind::Domain, "s1.example").active);
    // It comes back: its observation is restored, not just re-counted.
    store.ingest(&feed, &opts(now), all(3), None).unwrap();
    let back = one(store, Kind::Domain, "s2.example");
    assert!(back.active, "{back:?}");
    assert_eq!(back.aggregate.expires, None);
}

fn changing_aging_recomputes_activity(store: &Store) {
    let mut c = store
        .create_configuration(&new_configuration("aging"))
        .unwrap();
    let source = store
        .sources()
        .unwrap()
        .into_iter()
        .find(|s| s.name == "aging")
        .unwrap();
    let old = Timestamp::now().0 - 10 * 86_400;
    store
        .ingest(
            &source,
            &opts(old),
            vec![rec(Kind::Domain, "aging.example")],
            None,
        )
        .unwrap();
    assert!(
        one(store, Kind::Domain, "aging.example").active,
        "30 days of aging"
    );
    c.platform.aging_days = 5;
    store.update_configuration(&c).unwrap();
    assert!(
        !one(store, Kind::Domain, "aging.example").active,
        "5 days of aging"
    );
}

fn rules_lists_and_sharings_round_trip(store: &Store) {
    let r = store
        .save_rule(
            "high",
            "severity >= high",
            "only the bad ones",
            &["private".into()],
            false,
        )
        .unwrap();
    assert_eq!((r.name.as_str(), r.exclusions.len()), ("high", 1));
    let r2 = store
        .save_rule("high", "severity >= critical", "stricter", &[], true)
        .unwrap();
    assert_eq!(
        (r2.id, r2.expression.as_str(), r2.muted),
        (r.id, "severity >= critical", true)
    );
    assert_eq!(store.rules().unwrap().len(), 1);

    let l = store.save_allowlist("mine", "our ranges", false).unwrap();
    assert!(l.entries.is_empty());
    let add = [
        AllowEntry {
            entry: "10.0.0.0/8".into(),
            comment: "office".into(),
        },
        AllowEntry {
            entry: ".corp.example".into(),
            comment: String::new(),
        },
    ];
    assert_eq!(store.add_allow_entries("mine", &add).unwrap(), 2);
    assert_eq!(
        store.add_allow_entries("mine", &add[..1]).unwrap(),
        0,
        "entries are a set"
    );
    assert_eq!(store.allowlist("mine").unwrap().unwrap().entries.len(), 2);
    assert_eq!(
        store
            .remove_allow_entries("mine", &["10.0.0.0/8".into(), "nope".into()])
            .unwrap(),
        1
    );
    store
        .save_rule("uses-mine", "kind = domain", "", &["mine".into()], false)
        .unwrap();
    assert!(matches!(
        store.delete_allowlist("mine"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_allow_entries("none", &add),
        Err(StoreError::NotFound { .. })
    ));

    store
        .create_configuration(&new_configuration("dest"))
        .unwrap();
    let spec = SharingSpec {
        name: "to-dest".into(),
        description: "d".into(),
        enabled: false,
        sources: vec!["feed-a".into()],
        rule: "high".into(),
        destination: "dest".into(),
        target: "push".into(),
        params: std::collections::BTreeMap::from([(
            "scan_action".to_string(),
            serde_json::json!("log"),
        )]),
        interval_secs: 600,
        after_pull: true,
    };
    let s = store.save_sharing(None, &spec).unwrap();
    assert_eq!(
        (s.rule.as_str(), s.destination.as_str(), s.enabled),
        ("high", "dest", false)
    );
    assert!(matches!(
        store.save_sharing(None, &spec),
        Err(StoreError::Conflict(_))
    ));
    let renamed = SharingSpec {
        name: "to-dest-2".into(),
        enabled: true,
        ..spec.clone()
    };
    let s2 = store.save_sharing(Some("to-dest"), &renamed).unwrap();
    assert_eq!((s2.id, s2.enabled), (s.id, true));
    assert!(store.sharing("to-dest").unwrap().is_none());
    let bad = SharingSpec {
        rule: "missing".into(),
        name: "x".into(),
        ..spec
    };
    assert!(matches!(
        store.save_sharing(None, &bad),
        Err(StoreError::NotFound { what: "rule", .. })
    ));
    assert!(matches!(
        store.delete_rule("high"),
        Err(StoreError::Conflict(_))
    ));
    assert!(store.delete_sharing("to-dest-2").unwrap());
    assert!(store.delete_rule("high").unwrap());
}

fn the_ledger_and_outbox_record_batches(store: &Store) {
    let dest = store
        .create_configuration(&new_configuration("dest2"))
        .unwrap();
    store
        .save_rule("all", "kind = domain", "", &[], false)
        .unwrap();
    let spec = SharingSpec {
        name: "s".into(),
        description: String::new(),
        enabled: true,
        sources: vec![],
        rule: "all".into(),
        destination: "dest2".into(),
        target: "t".into(),
        params: Default::default(),
        interval_secs: 300,
        after_pull: false,
    };
    let s = store.save_sharing(None, &spec).unwrap();
    let d = |id: i64, state: DeliveryState| Delivery {
        sharing_id: s.id,
        indicator_id: id,
        state,
        version: 7,
        reason: None,
        attempts: 0,
        next_attempt_at: None,
        updated_at: Timestamp(T0),
    };
    let batch = OutboxBatch {
        batch: "b-1".into(),
        action: "add".into(),
        items: vec![(1, 7), (2, 7)],
        created_at: Timestamp(T0),
    };
    store
        .begin_batch(
            s.id,
            dest.id,
            &batch,
            &[d(1, DeliveryState::Pending), d(2, DeliveryState::Pending)],
        )
        .unwrap();
    assert_eq!(store.outbox(s.id).unwrap(), vec![batch.clone()]);
    let mut failed = d(2, DeliveryState::Failed);
    failed.reason = Some("refused".into());
    failed.attempts = 1;
    failed.next_attempt_at = Some(Timestamp(T0 + 60));
    store
        .finish_batch(
            s.id,
            dest.id,
            "b-1",
            &[d(1, DeliveryState::Shared), failed.clone()],
        )
        .unwrap();
    assert!(store.outbox(s.id).unwrap().is_empty());
    let rows = store.deliveries_of(s.id, &[1, 2, 3]).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[&1].state, DeliveryState::Shared);
    assert_eq!(rows[&2], failed);
    let mut shared = Vec::new();
    store
        .deliveries_in_states(s.id, &[DeliveryState::Shared], &mut |d| {
            shared.push(d.indicator_id);
            Ok(())
        })
        .unwrap();
    assert_eq!(shared, [1]);
    let counts = store.delivery_counts(s.id).unwrap();
    assert!(counts.contains(&(DeliveryState::Failed, Some("refused".into()), 1)));
    assert_eq!(store.deliveries_for_indicator(1).unwrap().len(), 1);
    assert!(store.delete_sharing("s").unwrap());
    assert!(store.deliveries_of(s.id, &[1, 2]).unwrap().is_empty());
}

fn users_tokens_sessions_and_audit(store: &Store) {
    assert_eq!(store.user_count().unwrap(), 0);
    let admin = store
        .create_user("admin", "$argon2id$h1", Role::Admin)
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(matches!(
        store.create_user("admin", "x", Role::Viewer),
        Err(StoreError::Conflict(_))
    ));
    store
        .create_user("vic", "$argon2id$h2", Role::Viewer)
        .unwrap();
    assert_eq!(store.user_count().unwrap(), 2);
    let (u, hash) = store.user("vic").unwrap().unwrap();
    assert_eq!((u.role, hash.as_str()), (Role::Viewer, "$argon2id$h2"));

    let token = store
        .create_token(&NewToken {
            name: "ci".into(),
            user: "vic".into(),
            role: Role::Viewer,
            hash: "keyed-hash-1".into(),
            prefix: "iocx_ab".into(),
            expires_at: Some(Timestamp(T0 + 86_400)),
        })
        .unwrap();
    let (found, owner) = store.token_by_hash("keyed-hash-1").unwrap().unwrap();
    assert_eq!((found.id, owner.name.as_str()), (token.id, "vic"));
    assert!(store.token_by_hash("other").unwrap().is_none());
    store.touch_token(token.id, Timestamp(T0)).unwrap();
    store.touch_token(token.id, Timestamp(T0 + 10)).unwrap();
    assert_eq!(
        store.token(token.id).unwrap().unwrap().last_used_at,
        Some(Timestamp(T0)),
        "touched at most once a minute"
    );
    assert_eq!(store.tokens(Some("vic")).unwrap().len(), 1);
    assert_eq!(store.tokens(Some("admin")).unwrap().len(), 0);
    assert!(store.revoke_token(token.id, Timestamp(T0 + 5)).unwrap());
    assert!(!store.revoke_token(token.id, Timestamp(T0 + 6)).unwrap());
    assert_eq!(
        store.tokens(None).unwrap()[0].revoked_at,
        Some(Timestamp(T0 + 5))
    );

    let now = Timestamp::now();
    store
        .create_session("sess-1", u.id, "csrf-1", now.plus(3600))
        .unwrap();
    let s = store.session("sess-1", now).unwrap().unwrap();
    assert_eq!((s.user.name.as_str(), s.csrf.as_str()), ("vic", "csrf-1"));
    assert!(
        store.session("sess-1", now.plus(3601)).unwrap().is_none(),
        "expired"
    );
    // A new password ends the user's sessions.
    let changed = store
        .update_user("vic", Some(Role::Analyst), Some("$argon2id$h3"), None)
        .unwrap()
        .unwrap();
    assert_eq!(changed.role, Role::Analyst);
    assert!(store.session("sess-1", now).unwrap().is_none());
    assert!(
        store
            .update_user("nobody", None, None, Some(true))
            .unwrap()
            .is_none()
    );
    assert!(store.delete_user("vic").unwrap());
    assert!(store.token_by_hash("keyed-hash-1").unwrap().is_none());
    assert_eq!(store.users().unwrap().len(), 1);

    for i in 0..5 {
        store
            .audit(&NewAudit {
                actor: "user:admin".into(),
                action: if i % 2 == 0 {
                    "rule.create"
                } else {
                    "sharing.update"
                }
                .into(),
                target: format!("r{i}"),
                before: None,
                after: Some(format!("{{\"n\":{i}}}")),
            })
            .unwrap();
    }
    let all = store
        .audit_log(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].target, "r4", "newest first");
    assert_eq!(all[0].after, Some(serde_json::json!({"n": 4})));
    let page = store
        .audit_log(&AuditQuery {
            before_id: Some(all[1].id),
            action: Some("rule.".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["r2", "r0"]
    );
}

fn user_marks_outrank_sources(store: &Store) {
    let src = store
        .ensure_source("feed", SourceKind::Import, None)
        .unwrap();
    let mut r = rec(Kind::Domain, "marked.example");
    r.attributes.tags = TagSet::from_tags(["from-feed"]);
    store.ingest(&src, &opts(T0), vec![r], None).unwrap();
    let d = one(store, Kind::Domain, "marked.example");
    assert!(!d.aggregate.safe);
    let n = store
        .mark_indicators(
            &[d.id, 999_999],
            &UserMarks {
                add_tags: vec!["triaged".into()],
                remove_tags: vec![],
                safe: Some(Some(true)),
            },
        )
        .unwrap();
    assert_eq!(n, 1, "unknown ids are skipped");
    let d = one(store, Kind::Domain, "marked.example");
    assert!(d.aggregate.safe, "the user's verdict wins");
    assert_eq!(d.user_tags, vec!["triaged".to_string()]);
    assert!(d.aggregate.tags.as_slice().contains(&"triaged".to_string()));
    assert!(
        d.aggregate
            .tags
            .as_slice()
            .contains(&"from-feed".to_string())
    );
    // A new sighting keeps the marks.
    let mut again = rec(Kind::Domain, "marked.example");
    again.attributes.severity = Severity::High;
    store
        .ingest(&src, &opts(T0 + 60), vec![again], None)
        .unwrap();
    let d = one(store, Kind::Domain, "marked.example");
    assert!(d.aggregate.safe);
    store
        .mark_indicators(
            &[d.id],
            &UserMarks {
                add_tags: vec![],
                remove_tags: vec!["triaged".into()],
                safe: Some(None),
            },
        )
        .unwrap();
    let d = one(store, Kind::Domain, "marked.example");
    assert!(!d.aggregate.safe, "verdict cleared");
    assert!(d.user_tags.is_empty());
}
