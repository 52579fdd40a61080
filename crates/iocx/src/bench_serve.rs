//! `iocx bench serve`: the service under load, over loopback, against a large store.
//!
//! The store is the one `iocx bench share` builds (`--indicators`, of which `--matching` come
//! from the source `intel` with severity high), kept in `--dir` and reused. The benchmark
//! starts the real `iocx serve` as a child process on it, with an EDL list of `--edl-capacity`
//! entries over the `intel` rule, and measures:
//! - **idle RSS** of the server after start, and again after the load;
//! - **lookup by value**: an open-loop load generator sends `GET /api/v1/indicators?value=…`
//!   for random stored values at `--rate` requests per second for `--seconds`; latency is
//!   measured from each request's scheduled time, so a stall counts against every request it
//!   delays (no coordinated omission);
//! - **EDL**: `GET /edl/bench.txt` from the cache, `--edl-requests` times, one at a time;
//! - **TAXII**: pages of 1,000 objects of the `intel` collection, following `next`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use iocx_store::Store;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::bench_share::{ShareArgs, build};
use crate::common::{Global, print_json, thousands};

/// `iocx bench serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Indicators in the store.
    #[arg(long, default_value_t = 10_000_000)]
    pub indicators: u64,
    /// How many come from the `intel` source (the EDL's and TAXII collection's rule).
    #[arg(long, default_value_t = 1_000_000)]
    pub matching: u64,
    /// Lookup requests per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of lookup load.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Entries in the EDL list.
    #[arg(long, default_value_t = 150_000)]
    pub edl_capacity: u64,
    /// EDL requests to time.
    #[arg(long, default_value_t = 200)]
    pub edl_requests: u64,
    /// TAXII pages of 1,000 objects to time.
    #[arg(long, default_value_t = 20)]
    pub taxii_pages: u64,
    /// Where the store is kept and reused (shared with `iocx bench share`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Latency {
    requests: usize,
    errors: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    indicators: u64,
    idle_rss_bytes: u64,
    rss_after_load_bytes: u64,
    lookup_rate: u64,
    lookup: Latency,
    edl_entries: usize,
    edl_bytes: usize,
    edl_first_build_ms: f64,
    edl: Latency,
    taxii_page_objects: usize,
    taxii: Latency,
}

fn latency(mut ms: Vec<f64>, errors: usize) -> Latency {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if ms.is_empty() {
            0.0
        } else {
            ms[((ms.len() as f64 - 1.0) * q).round() as usize]
        }
    };
    Latency {
        requests: ms.len(),
        errors,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
    }
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |k| k * 1024)
}

/// Runs the benchmark.
pub fn run(global: &Global, args: ServeArgs) -> anyhow::Result<ExitCode> {
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
    let share_args = ShareArgs {
        indicators: args.indicators,
        matching: args.matching,
        runs: 1,
        dir: Some(dir.clone()),
    };
    build(global, &store, &url, &dir, &share_args)?;
    let indicators = store.stats()?.indicators;
    if store.rule("bench-intel")?.is_none() {
        store.save_rule("bench-intel", "source = intel", "", &[], false)?;
    }
    // Values to look up: random stored indicators.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut values = Vec::new();
    while values.len() < 5000 {
        let ids: Vec<i64> = (0..500)
            .map(|_| rng.gen_range(1..=indicators.max(1) as i64))
            .collect();
        values.extend(
            store
                .details(&ids, false)?
                .into_iter()
                .map(|d| d.indicator.value),
        );
    }
    drop(store);

    // The server, as a child process.
    let exe = std::env::current_exe().context("finding the iocx binary")?;
    let mut child = std::process::Command::new(exe)
        .arg("--database")
        .arg(&url)
        .arg("--data")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("IOCX_ADMIN_PASSWORD", "bench-admin-password")
        .env("IOCX__SCHEDULER__ENABLED", "false")
        .env("IOCX__LOG__LEVEL", "warn")
        .env("IOCX__EDL__BENCH__RULE", "bench-intel")
        .env("IOCX__EDL__BENCH__CAPACITY", args.edl_capacity.to_string())
        .env("IOCX__TAXII__COLLECTIONS", "[\"bench-intel\"]")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting iocx serve")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .context("the server stopped before listening")??;
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let result = measure(global, &args, &dir, &url, &base, pid, values, indicators);
    let _ = child.kill();
    let _ = child.wait();
    let report = result?;
    if global.json {
        print_json(&report)?;
    } else {
        println!(
            "{} indicators; server idle RSS {} MiB ({} MiB after the load)",
            thousands(report.indicators),
            report.idle_rss_bytes >> 20,
            report.rss_after_load_bytes >> 20
        );
        let l = &report.lookup;
        println!(
            "lookup by value at {}/s: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms over {} requests ({} errors)",
            report.lookup_rate, l.p50_ms, l.p99_ms, l.max_ms, l.requests, l.errors
        );
        let e = &report.edl;
        println!(
            "EDL of {} entries ({} KiB; first build {:.0} ms): p50 {:.2} ms, p99 {:.2} ms from the cache",
            thousands(report.edl_entries as u64),
            report.edl_bytes >> 10,
            report.edl_first_build_ms,
            e.p50_ms,
            e.p99_ms
        );
        let t = &report.taxii;
        println!(
            "TAXII page of {} objects: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} pages",
            report.taxii_page_objects, t.p50_ms, t.p99_ms, t.max_ms, t.requests
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn measure(
    global: &Global,
    args: &ServeArgs,
    dir: &std::path::Path,
    url: &str,
    base: &str,
    pid: u32,
    values: Vec<String>,
    indicators: u64,
) -> anyhow::Result<Report> {
    // A token, through the CLI as an operator would.
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("--database")
        .arg(url)
        .arg("--data")
        .arg(dir)
        .args(["tokens", "create", "bench", "--expires-in-days", "1"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "creating a token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?.trim().to_string();
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss_bytes = rss(pid);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let quiet = global.json;
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?;
        // Warm the reader connections' caches a little, as a running server would be.
        for v in values.iter().take(200) {
            let _ = client
                .get(format!("{base}/api/v1/indicators"))
                .query(&[("value", v)])
                .bearer_auth(&token)
                .send()
                .await;
        }
        // Lookup load, open loop.
        if !quiet {
            eprintln!("lookups: {}/s for {} s …", args.rate, args.seconds);
        }
        let values = Arc::new(values);
        let total = args.rate * args.seconds;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let (client, token, values, base) = (
                client.clone(),
                token.clone(),
                values.clone(),
                base.to_string(),
            );
            tasks.spawn(async move {
                let v = &values[(i as usize * 7919) % values.len()];
                let r = client
                    .get(format!("{base}/api/v1/indicators"))
                    .query(&[("value", v)])
                    .bearer_auth(&token)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                (due.elapsed().as_secs_f64() * 1000.0, ok)
            });
        }
        let mut ms = Vec::new();
        let mut errors = 0;
        while let Some(r) = tasks.join_next().await {
            let (t, ok) = r?;
            if ok { ms.push(t) } else { errors += 1 }
        }
        let lookup = latency(ms, errors);

        // EDL: the first build, then from the cache.
        let t = Instant::now();
        let first = client.get(format!("{base}/edl/bench.txt")).send().await?;
        anyhow::ensure!(first.status().is_success(), "EDL: {}", first.status());
        let body = first.bytes().await?;
        let edl_first_build_ms = t.elapsed().as_secs_f64() * 1000.0;
        let edl_entries = body.iter().filter(|b| **b == b'\n').count();
        let mut ms = Vec::new();
        let mut errors = 0;
        for _ in 0..args.edl_requests {
            let t = Instant::now();
            let ok = match client.get(format!("{base}/edl/bench.txt")).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            if ok {
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            } else {
                errors += 1;
            }
        }
        let edl = latency(ms, errors);

        // TAXII pages of 1,000.
        let collections: serde_json::Value = client
            .get(format!("{base}/taxii2/api/collections/"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let id = collections["collections"][0]["id"]
            .as_str()
            .context("the TAXII collection")?
            .to_string();
        let mut ms = Vec::new();
        let mut errors = 0;
        let mut next: Option<String> = None;
        let mut page_objects = 0;
        for _ in 0..args.taxii_pages {
            let mut q = vec![("limit", "1000".to_string())];
            if let Some(n) = &next {
                q.push(("next", n.clone()));
            }
            let t = Instant::now();
            let r = client
                .get(format!("{base}/taxii2/api/collections/{id}/objects/"))
                .query(&q)
                .bearer_auth(&token)
                .header("accept", "application/taxii+json;version=2.1")
                .send()
                .await?;
            if !r.status().is_success() {
                errors += 1;
                continue;
            }
            let page: serde_json::Value = r.json().await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            page_objects = page["objects"].as_array().map_or(0, Vec::len);
            next = page["next"].as_str().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        let taxii = latency(ms, errors);
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(Report {
            indicators,
            idle_rss_bytes,
            rss_after_load_bytes: rss(pid),
            lookup_rate: args.rate,
            lookup,
            edl_entries,
            edl_bytes: body.len(),
            edl_first_build_ms,
            edl,
            taxii_page_objects: page_objects,
            taxii,
        })
    })
}
