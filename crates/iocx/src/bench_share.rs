//! `iocx bench share`: rule previews and sharing deltas over a large store.
//!
//! The store holds `--indicators` indicators from two sources: `bulk` (severity low) and
//! `intel` (`--matching` of them, severity high), both generated with distinct, canonical
//! values and imported by the real `iocx import`. The store is kept in `--dir` and reused when
//! it already holds what was asked, because building ten million indicators takes minutes.
//!
//! Measured, each the median of `--runs` runs:
//! - `rules preview` of typical rules: compiling, counting and a sample of ten;
//! - a first share of a sharing whose rule selects the `intel` indicators to the `discard`
//!   connector: the delta (everything new), every batch handed to the destination and every
//!   outcome recorded in the ledger, each run with a new sharing (an empty ledger);
//! - a second share of the same sharing, with nothing changed (the delta is empty);
//! - the peak resident memory of the process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use iocx_engine::configs::{self, ConfigChange};
use iocx_engine::share::{ShareMode, run_share};
use iocx_engine::{Engine, Vault, rules};
use iocx_model::Timestamp;
use iocx_store::{SharingSpec, Store};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::bench::{generate_feed_with, import_child_with};
use crate::common::{Global, peak_rss_bytes, print_json, thousands};

/// `iocx bench share` arguments.
#[derive(Debug, clap::Args)]
pub struct ShareArgs {
    /// Indicators in the store.
    #[arg(long, default_value_t = 10_000_000)]
    pub indicators: u64,
    /// How many of them the sharing's rule selects.
    #[arg(long, default_value_t = 1_000_000)]
    pub matching: u64,
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub runs: u64,
    /// Where the store is kept and reused (default: a new temporary directory, removed).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The rules whose previews are timed.
const PREVIEWS: [&str; 3] = [
    "severity >= high",
    "severity >= high and kind in (url, domain, sha256) and last_seen > now - 30d",
    "source = intel and not safe and reputation <= 5",
];

#[derive(Debug, Serialize)]
struct Preview {
    expression: String,
    matching: u64,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    indicators: u64,
    selected: u64,
    previews: Vec<Preview>,
    first_share_seconds: f64,
    first_share_per_sec: f64,
    unchanged_share_seconds: f64,
    runs: Vec<(f64, f64)>,
    peak_rss_bytes: u64,
}

/// Runs the benchmark.
pub fn run(global: &Global, args: ShareArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.matching <= args.indicators,
        "--matching must not exceed --indicators"
    );
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let url = match &global.database {
        Some(u) if u.starts_with("postgres") => u.clone(),
        _ => dir.join("iocx.db").display().to_string(),
    };
    let store = Store::open(&url).context("opening the store")?;
    build(global, &store, &url, &dir, &args)?;
    let engine = Engine::new(store.clone(), Vault::open(&dir)?);
    let previews = time_previews(&store, args.runs)?;
    let (runs, selected) = time_shares(&engine, args.runs, global.json)?;
    let mut firsts: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let mut agains: Vec<f64> = runs.iter().map(|r| r.1).collect();
    let first = median(&mut firsts);
    let report = Report {
        backend: if url.starts_with("postgres") {
            "postgresql".into()
        } else {
            "sqlite".into()
        },
        indicators: store.stats()?.indicators,
        selected,
        previews,
        first_share_seconds: first,
        first_share_per_sec: selected as f64 / first.max(1e-9),
        unchanged_share_seconds: median(&mut agains),
        runs,
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
    };
    if global.json {
        print_json(&report)?;
    } else {
        println!(
            "{} indicators on {}; the sharing's rule selects {}",
            thousands(report.indicators),
            report.backend,
            thousands(report.selected)
        );
        for p in &report.previews {
            println!(
                "preview {:.3} s ({} match): {}",
                p.seconds,
                thousands(p.matching),
                p.expression
            );
        }
        println!(
            "first share (all new) {:.2} s = {} indicators/s; unchanged share {:.2} s; peak RSS {} MiB",
            report.first_share_seconds,
            thousands(report.first_share_per_sec as u64),
            report.unchanged_share_seconds,
            report.peak_rss_bytes >> 20
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Fills the store unless it already holds what was asked.
pub(crate) fn build(
    global: &Global,
    store: &Store,
    url: &str,
    dir: &std::path::Path,
    args: &ShareArgs,
) -> anyhow::Result<()> {
    // A store this benchmark built records what it was built for (a few generated values
    // collide, so the count alone cannot tell).
    let marker = dir.join("bench-share.json");
    let wanted = serde_json::json!({ "indicators": args.indicators, "matching": args.matching });
    let have = store.stats()?.indicators;
    let built: Option<serde_json::Value> = std::fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if built.as_ref() == Some(&wanted) {
        if !global.json {
            eprintln!(
                "reusing the store in {} ({} indicators)",
                dir.display(),
                thousands(have)
            );
        }
        return Ok(());
    }
    anyhow::ensure!(
        have == 0,
        "{url} holds {have} indicators that this benchmark did not generate for --indicators {} \
         --matching {}; give an empty --dir",
        args.indicators,
        args.matching
    );
    let bulk = args.indicators - args.matching;
    let t0 = Timestamp::now().0 - 86_400;
    for (name, lines, seed, severity) in [
        ("bulk", 0..bulk, 0xb01c, "low"),
        ("intel", bulk..args.indicators, 0x1e7e1, "high"),
    ] {
        if lines.is_empty() {
            continue;
        }
        let feed = dir.join(format!("{name}.txt"));
        let n = lines.end - lines.start;
        generate_feed_with(&feed, lines, seed, false)?;
        let started = Instant::now();
        import_child_with(
            global,
            url,
            &feed,
            t0,
            &[
                "--source",
                name,
                "--severity",
                severity,
                "--reputation",
                "3",
            ],
        )?;
        if !global.json {
            eprintln!(
                "imported {} {name} indicators in {:.0} s",
                thousands(n),
                started.elapsed().as_secs_f64()
            );
        }
        let _ = std::fs::remove_file(&feed);
    }
    store.checkpoint()?;
    std::fs::write(&marker, wanted.to_string())?;
    Ok(())
}

fn time_previews(store: &Store, runs: u64) -> anyhow::Result<Vec<Preview>> {
    let mut out = Vec::new();
    for expression in PREVIEWS {
        let rule = rule_row(expression);
        let mut times = Vec::new();
        let mut matching = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let compiled = rules::compile(store, &rule, Timestamp::now())?;
            matching = store.count_matching(&compiled.sql, &compiled.params)?;
            let ids = store.select_ids(&compiled.sql, &compiled.params, 0, 10)?;
            let _sample = store.details(&ids, false)?;
            times.push(started.elapsed().as_secs_f64());
        }
        out.push(Preview {
            expression: expression.to_string(),
            matching,
            seconds: median(&mut times),
        });
    }
    Ok(out)
}

fn rule_row(expression: &str) -> iocx_store::RuleRow {
    iocx_store::RuleRow {
        id: 0,
        name: "(bench)".into(),
        expression: expression.into(),
        description: String::new(),
        exclusions: Vec::new(),
        muted: false,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

/// Each run shares to a new sharing (an empty ledger), then shares again with nothing
/// changed; returns the seconds of both per run, and how many the rule selected.
fn time_shares(engine: &Engine, runs: u64, quiet: bool) -> anyhow::Result<(Vec<(f64, f64)>, u64)> {
    let store = &engine.store;
    store.save_rule("bench-intel", PREVIEWS[0], "iocx bench share", &[], false)?;
    if store.configuration("bench-null")?.is_none() {
        configs::create(
            store,
            &engine.vault,
            "bench-null",
            "discard",
            &ConfigChange::default(),
        )?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let mut out = Vec::new();
    let mut selected = 0;
    for n in 1..=runs {
        let name = format!("bench-{}-{n}", std::process::id());
        store.save_sharing(
            None,
            &SharingSpec {
                name: name.clone(),
                description: "iocx bench share".into(),
                enabled: false,
                sources: Vec::new(),
                rule: "bench-intel".into(),
                destination: "bench-null".into(),
                target: "drop".into(),
                params: Default::default(),
                interval_secs: 3_600,
                after_pull: false,
            },
        )?;
        let share = || {
            let started = Instant::now();
            let (_, counts) = runtime.block_on(run_share(
                engine,
                &name,
                ShareMode::Regular,
                false,
                CancellationToken::new(),
            ))?;
            anyhow::Ok((started.elapsed().as_secs_f64(), counts))
        };
        let (first, counts) = share()?;
        anyhow::ensure!(
            counts.shared == counts.selected,
            "the first share delivered {} of {}",
            counts.shared,
            counts.selected
        );
        let (again, counts_again) = share()?;
        anyhow::ensure!(
            counts_again.shared == 0,
            "the unchanged share delivered {}",
            counts_again.shared
        );
        selected = counts.selected;
        if !quiet {
            eprintln!(
                "run {n}: first share {first:.2} s ({} shared), unchanged share {again:.2} s",
                thousands(counts.shared)
            );
        }
        store.delete_sharing(&name)?;
        out.push((first, again));
    }
    Ok((out, selected))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
