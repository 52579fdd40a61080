//! `iocx bench`: measurements on this machine, printed in the form `BENCHMARKS.md` quotes.
//!
//! `iocx bench ingest` generates a realistic mixed feed (kinds in realistic proportions, 2%
//! malformed lines, some repeats, some defanged and mixed-case values), then runs the real
//! `iocx import` as a child process twice on a fresh store: once into the empty store (new
//! indicators) and once more (re-sightings). It reports rates, the importer's peak resident
//! memory and the store's bytes per indicator, as the median of `--runs` runs, and, for SQLite,
//! the same rows loaded by the `sqlite3` shell's own `.import` into an equivalently indexed table
//! (the storage engine's own limit on this machine).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use iocx_store::{ExportFilter, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::common::{Global, print_json, thousands};

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Bulk ingest: new indicators per second, re-sightings per second, memory, disk.
    Ingest(IngestArgs),
    /// Sharing: rule previews and the delta of a sharing over a large store, to a null
    /// destination.
    Share(crate::bench_share::ShareArgs),
    /// The service: lookup latency under load, EDL and TAXII pages, idle memory.
    Serve(crate::bench_serve::ServeArgs),
}

/// `iocx bench ingest` arguments.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Lines in the generated feed.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub runs: u64,
    /// Working directory for the feed and stores (default: a new temporary directory, removed).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Skip the sqlite3 shell comparison.
    #[arg(long)]
    pub no_sqlite3: bool,
}

#[derive(Debug, Clone, Serialize)]
struct RunFigures {
    new_per_sec: f64,
    new: u64,
    new_seconds: f64,
    resightings_per_sec: f64,
    resightings: u64,
    resight_seconds: f64,
    rejected: u64,
    peak_rss_bytes: u64,
    indicators: u64,
    size_bytes: u64,
    bytes_per_indicator: f64,
    sqlite3_rows_per_sec: Option<f64>,
}

#[derive(Debug, Serialize)]
struct IngestReport {
    backend: String,
    lines: u64,
    runs: Vec<RunFigures>,
    median: RunFigures,
}

/// Runs a benchmark.
pub fn run(global: &Global, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Ingest(args) => ingest(global, args),
        Command::Share(args) => crate::bench_share::run(global, args),
        Command::Serve(args) => crate::bench_serve::run(global, args),
    }
}

fn ingest(global: &Global, args: IngestArgs) -> anyhow::Result<ExitCode> {
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
    let feed = dir.join("feed.txt");
    let started = Instant::now();
    generate_feed(&feed, args.count)?;
    if !global.json {
        eprintln!(
            "generated {} lines in {:.1} s: {}",
            thousands(args.count),
            started.elapsed().as_secs_f64(),
            feed.display()
        );
    }
    let postgres = global
        .database
        .as_deref()
        .filter(|u| u.starts_with("postgres"));
    let sqlite3 = !args.no_sqlite3 && postgres.is_none() && which("sqlite3");
    let mut runs = Vec::new();
    for n in 1..=args.runs {
        let (url, cleanup) = fresh_database(&dir, postgres, n)?;
        let result = one_run(global, &url, &feed, &dir, sqlite3);
        cleanup();
        let figures = result?;
        if !global.json {
            eprintln!(
                "run {n}: {} new/s, {} re-sightings/s, peak RSS {} MiB, {:.0} B/IoC{}",
                thousands(figures.new_per_sec as u64),
                thousands(figures.resightings_per_sec as u64),
                figures.peak_rss_bytes / (1 << 20),
                figures.bytes_per_indicator,
                figures
                    .sqlite3_rows_per_sec
                    .map(|r| format!(", sqlite3 .import {} rows/s", thousands(r as u64)))
                    .unwrap_or_default()
            );
        }
        runs.push(figures);
    }
    let median = median_of(&runs);
    let report = IngestReport {
        backend: if postgres.is_some() {
            "postgresql".into()
        } else {
            "sqlite".into()
        },
        lines: args.count,
        runs,
        median,
    };
    if global.json {
        print_json(&report)?;
    } else {
        let m = &report.median;
        println!(
            "iocx bench ingest --count {} ({}, median of {} runs)",
            args.count,
            report.backend,
            report.runs.len()
        );
        println!(
            "  new indicators      {:>12}/s  ({} in {:.2} s)",
            thousands(m.new_per_sec as u64),
            thousands(m.new),
            m.new_seconds
        );
        println!(
            "  re-sightings        {:>12}/s  ({} in {:.2} s)",
            thousands(m.resightings_per_sec as u64),
            thousands(m.resightings),
            m.resight_seconds
        );
        println!("  rejected lines      {:>12}", thousands(m.rejected));
        println!(
            "  importer peak RSS   {:>12} MiB",
            m.peak_rss_bytes / (1 << 20)
        );
        println!(
            "  store size          {:>12} MiB  ({:.0} bytes per indicator)",
            m.size_bytes / (1 << 20),
            m.bytes_per_indicator
        );
        if let Some(r) = m.sqlite3_rows_per_sec {
            println!(
                "  sqlite3 .import     {:>12}/s  (same rows, equivalently indexed table)",
                thousands(r as u64)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn which(program: &str) -> bool {
    Process::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

type Cleanup = Box<dyn FnOnce()>;

fn fresh_database(dir: &Path, postgres: Option<&str>, n: u64) -> anyhow::Result<(String, Cleanup)> {
    match postgres {
        None => {
            let run_dir = dir.join(format!("run-{n}"));
            let _ = std::fs::remove_dir_all(&run_dir);
            std::fs::create_dir_all(&run_dir)?;
            let url = run_dir.join("iocx.db").display().to_string();
            Ok((
                url,
                Box::new(move || drop(std::fs::remove_dir_all(run_dir))),
            ))
        }
        Some(base) => {
            let schema = format!("iocx_bench_{}_{n}", std::process::id());
            let mut admin = postgres_admin(base)?;
            admin.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))?;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            let base = base.to_string();
            Ok((
                url,
                Box::new(move || {
                    if let Ok(mut admin) = postgres_admin(&base) {
                        let _ =
                            admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                    }
                }),
            ))
        }
    }
}

fn postgres_admin(url: &str) -> anyhow::Result<iocx_store::postgres::AdminClient> {
    iocx_store::postgres::AdminClient::connect(url).context("connecting to PostgreSQL")
}

/// What `iocx import --json` reports.
#[derive(serde::Deserialize)]
pub struct ImportReport {
    files: Vec<ImportFile>,
    /// The importer's peak resident memory.
    pub peak_rss_bytes: Option<u64>,
}

#[derive(serde::Deserialize)]
struct ImportFile {
    new: u64,
    unchanged: u64,
    rejected: std::collections::BTreeMap<String, u64>,
    error: Option<String>,
}

fn import_child(
    global: &Global,
    url: &str,
    feed: &Path,
    seen_at: i64,
) -> anyhow::Result<(ImportReport, f64)> {
    import_child_with(global, url, feed, seen_at, &["--source", "bench"])
}

/// Runs `iocx import FEED ARGS…` as a child process; its JSON report and the seconds it took.
pub fn import_child_with(
    global: &Global,
    url: &str,
    feed: &Path,
    seen_at: i64,
    args: &[&str],
) -> anyhow::Result<(ImportReport, f64)> {
    let exe = std::env::current_exe().context("finding the iocx executable")?;
    let started = Instant::now();
    let output = Process::new(exe)
        .arg("--database")
        .arg(url)
        .arg("--json")
        .arg("--log")
        .arg(&global.log)
        .arg("import")
        .arg(feed)
        .args(args)
        .args(["--seen-at", &seen_at.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running iocx import")?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "iocx import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: ImportReport =
        serde_json::from_slice(&output.stdout).context("reading the import's JSON report")?;
    if let Some(e) = report.files.first().and_then(|f| f.error.clone()) {
        bail!("iocx import reported: {e}");
    }
    Ok((report, seconds))
}

fn one_run(
    global: &Global,
    url: &str,
    feed: &Path,
    dir: &Path,
    sqlite3: bool,
) -> anyhow::Result<RunFigures> {
    let t0 = 1_790_000_000;
    let (first, new_seconds) = import_child(global, url, feed, t0)?;
    let (second, resight_seconds) = import_child(global, url, feed, t0 + 3_600)?;
    let f1 = first
        .files
        .first()
        .context("no file in the import report")?;
    let f2 = second
        .files
        .first()
        .context("no file in the import report")?;
    let store = Store::open(url)?;
    store.checkpoint()?;
    let stats = store.stats()?;
    let sqlite3_rows_per_sec = if sqlite3 {
        Some(sqlite3_import(&store, dir)?)
    } else {
        None
    };
    Ok(RunFigures {
        new_per_sec: f1.new as f64 / new_seconds,
        new: f1.new,
        new_seconds,
        resightings_per_sec: f2.unchanged as f64 / resight_seconds,
        resightings: f2.unchanged,
        resight_seconds,
        rejected: f1.rejected.values().sum(),
        peak_rss_bytes: first
            .peak_rss_bytes
            .unwrap_or(0)
            .max(second.peak_rss_bytes.unwrap_or(0)),
        indicators: stats.indicators,
        size_bytes: stats.size_bytes,
        bytes_per_indicator: stats.size_bytes as f64 / stats.indicators.max(1) as f64,
        sqlite3_rows_per_sec,
    })
}

/// Loads the store's canonical rows with the sqlite3 shell's `.import` into a staging table and
/// then, with `INSERT OR IGNORE`, into a table indexed like iocx's (unique indicator, an index on
/// the day last seen); returns rows per second over both steps.
fn sqlite3_import(store: &Store, dir: &Path) -> anyhow::Result<f64> {
    let csv = dir.join("sqlite3-rows.csv");
    let mut out = BufWriter::new(File::create(&csv)?);
    let mut rows = 0u64;
    store.export(&ExportFilter::default(), false, &mut |chunk| {
        for d in chunk {
            let a = &d.aggregate;
            let _ = writeln!(
                out,
                "{},\"{}\",{},{},{},{},{}",
                d.indicator.kind.code(),
                d.indicator.value.replace('"', "\"\""),
                a.severity.code(),
                a.reputation.get(),
                a.hits,
                a.first_seen.0,
                a.last_seen.0
            );
            rows += 1;
        }
        Ok(true)
    })?;
    out.flush()?;
    drop(out);
    let db = dir.join("sqlite3-compare.db");
    let _ = std::fs::remove_file(&db);
    let script = format!(
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n\
         CREATE TABLE stage(kind INTEGER, value TEXT, severity INTEGER, reputation INTEGER, hits INTEGER, first_seen INTEGER, last_seen INTEGER);\n\
         CREATE TABLE indicator(id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, value TEXT NOT NULL, severity INTEGER, reputation INTEGER, hits INTEGER, first_seen INTEGER, last_seen INTEGER, seen_day INTEGER);\n\
         CREATE UNIQUE INDEX indicator_value ON indicator(kind, value);\n\
         CREATE INDEX indicator_seen_day ON indicator(seen_day);\n\
         .mode csv\n.import {}\n\
         INSERT OR IGNORE INTO indicator(kind, value, severity, reputation, hits, first_seen, last_seen, seen_day) \
         SELECT kind, value, severity, reputation, hits, first_seen, last_seen, last_seen / 86400 FROM stage;\n",
        csv.display().to_string().replace(' ', "\\ ") + " stage"
    );
    let started = Instant::now();
    let mut child = Process::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running sqlite3")?;
    child
        .stdin
        .take()
        .context("sqlite3 stdin")?
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_file(&csv);
    let _ = std::fs::remove_file(&db);
    Ok(rows as f64 / seconds)
}

fn median_of(runs: &[RunFigures]) -> RunFigures {
    let med = |f: &dyn Fn(&RunFigures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let first = runs.first();
    RunFigures {
        new_per_sec: med(&|r| r.new_per_sec),
        new: first.map_or(0, |r| r.new),
        new_seconds: med(&|r| r.new_seconds),
        resightings_per_sec: med(&|r| r.resightings_per_sec),
        resightings: first.map_or(0, |r| r.resightings),
        resight_seconds: med(&|r| r.resight_seconds),
        rejected: first.map_or(0, |r| r.rejected),
        peak_rss_bytes: runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0),
        indicators: first.map_or(0, |r| r.indicators),
        size_bytes: med(&|r| r.size_bytes as f64) as u64,
        bytes_per_indicator: med(&|r| r.bytes_per_indicator),
        sqlite3_rows_per_sec: runs
            .iter()
            .any(|r| r.sqlite3_rows_per_sec.is_some())
            .then(|| med(&|r| r.sqlite3_rows_per_sec.unwrap_or(0.0))),
    }
}

const TLDS: [&str; 16] = [
    "com", "net", "org", "ru", "cn", "info", "xyz", "top", "io", "co.uk", "de", "br", "in",
    "online", "site", "biz",
];
const WORDS: [&str; 16] = [
    "login", "secure", "update", "account", "verify", "mail", "cdn", "static", "api", "docs",
    "pay", "bank", "shop", "cloud", "portal", "files",
];

/// Writes a realistic mixed feed of `count` lines: URLs 30%, domains 25%, IPv4 20%, SHA-256
/// 12%, MD5 6%, SHA-1 3%, IPv6 2%, e-mail 1%, CIDR 1%; 2% malformed lines; about 3% repeats of
/// recent lines; some defanged, upper-case and trailing-dot spellings.
pub fn generate_feed(path: &Path, count: u64) -> anyhow::Result<()> {
    generate_feed_with(path, 0..count, 0x010c_5eed, true)
}

/// Writes a feed of the lines numbered `lines`, from `seed`; without `messy`, every line is a
/// distinct valid indicator in canonical spelling (for stores of an exact size; feeds of
/// disjoint line ranges hold disjoint indicators).
pub fn generate_feed_with(
    path: &Path,
    lines: std::ops::Range<u64>,
    seed: u64,
    messy: bool,
) -> anyhow::Result<()> {
    let count = lines.end - lines.start;
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut recent: Vec<String> = Vec::with_capacity(1024);
    writeln!(out, "# iocx bench feed: {count} lines")?;
    for i in lines {
        let line = if !messy {
            clean_value(&mut rng, i)
        } else if rng.gen_ratio(3, 100) && !recent.is_empty() {
            recent[rng.gen_range(0..recent.len())].clone()
        } else if rng.gen_ratio(2, 100) {
            malformed(&mut rng)
        } else {
            value(&mut rng, i)
        };
        writeln!(out, "{line}")?;
        if recent.len() < 1024 {
            recent.push(line);
        } else {
            let at = rng.gen_range(0..1024);
            recent[at] = line;
        }
    }
    out.flush()?;
    Ok(())
}

fn label(rng: &mut SmallRng, i: u64) -> String {
    let w = WORDS[rng.gen_range(0..WORDS.len())];
    format!("{w}-{:x}{}", rng.r#gen::<u32>(), i % 97)
}

fn domain(rng: &mut SmallRng, i: u64) -> String {
    let tld = TLDS[rng.gen_range(0..TLDS.len())];
    if rng.gen_ratio(1, 4) {
        format!(
            "{}.{}.{tld}",
            WORDS[rng.gen_range(0..WORDS.len())],
            label(rng, i)
        )
    } else {
        format!("{}.{tld}", label(rng, i))
    }
}

fn hex(rng: &mut SmallRng, len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..len)
        .map(|_| HEX[rng.gen_range(0..16)] as char)
        .collect()
}

fn value(rng: &mut SmallRng, i: u64) -> String {
    let (roll, v) = raw_value(rng, i);
    // Real feeds are messy: defanged, upper-case and trailing-dot spellings of the same values.
    match rng.gen_range(0..100) {
        0..3 => v.replacen("http", "hxxp", 1).replacen('.', "[.]", 1),
        3..6 => v.to_ascii_uppercase(),
        6..7 if (30..55).contains(&roll) => format!("{v}."),
        _ => v,
    }
}

/// A value unique by construction: addresses and hashes carry the line number.
fn clean_value(rng: &mut SmallRng, i: u64) -> String {
    let (roll, v) = raw_value(rng, i);
    match roll {
        55..75 => {
            let n = i as u32;
            format!(
                "{}.{}.{}.{}",
                11 + (n >> 24) % 200,
                (n >> 16) & 255,
                (n >> 8) & 255,
                n & 255
            )
        }
        75..96 => format!("{:016x}{}", i, &v[16.min(v.len())..]),
        _ => v,
    }
}

/// A kind roll and a value of that kind.
fn raw_value(rng: &mut SmallRng, i: u64) -> (u32, String) {
    let roll = rng.gen_range(0..100);
    let v = match roll {
        0..30 => {
            let scheme = if rng.gen_ratio(1, 2) { "http" } else { "https" };
            let port = if rng.gen_ratio(1, 20) {
                format!(":{}", rng.gen_range(1024..65535))
            } else {
                String::new()
            };
            let query = if rng.gen_ratio(1, 3) {
                format!("?id={}", rng.r#gen::<u32>())
            } else {
                String::new()
            };
            format!(
                "{scheme}://{}{port}/{}/{}.php{query}",
                domain(rng, i),
                WORDS[rng.gen_range(0..16)],
                hex(rng, 8)
            )
        }
        30..55 => domain(rng, i),
        55..75 => format!(
            "{}.{}.{}.{}",
            rng.gen_range(11..=223),
            rng.r#gen::<u8>(),
            rng.r#gen::<u8>(),
            rng.gen_range(1..=254)
        ),
        75..87 => hex(rng, 64),
        87..93 => hex(rng, 32),
        93..96 => hex(rng, 40),
        96..98 => format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.r#gen::<u16>(),
            rng.r#gen::<u16>(),
            rng.r#gen::<u16>()
        ),
        98 => format!("{}@{}", label(rng, i), domain(rng, i)),
        _ => format!(
            "{}.{}.{}.0/24",
            rng.gen_range(11..=223),
            rng.r#gen::<u8>(),
            rng.r#gen::<u8>()
        ),
    };
    (roll, v)
}

fn malformed(rng: &mut SmallRng) -> String {
    match rng.gen_range(0..6) {
        0 => format!(
            "{}.{}.{}.{}",
            rng.gen_range(256..999),
            rng.r#gen::<u8>(),
            rng.r#gen::<u8>(),
            rng.r#gen::<u8>()
        ),
        1 => hex(rng, 63),
        2 => "http://".to_string(),
        3 => format!("not an indicator {}", rng.r#gen::<u16>()),
        4 => "com".to_string(),
        _ => format!("{}..example", hex(rng, 6)),
    }
}
