//! `iocx pull`, `iocx runs`, `iocx logs`, `iocx worker`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use iocx_engine::pull::{PullCounts, Trigger, run_pull};
use iocx_store::Run;
use tokio_util::sync::CancellationToken;

use crate::common::{Global, print_json, show_progress, shutdown_signal, thousands};

/// `iocx pull` arguments.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The configuration to pull now.
    pub name: String,
}

/// `iocx runs` arguments.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only runs of this configuration, source or sharing.
    pub name: Option<String>,
    /// How many (newest first).
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// `iocx logs` arguments.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The run (default: the newest run, of NAME when given).
    #[arg(long)]
    pub run: Option<i64>,
    /// A configuration, source or sharing.
    pub name: Option<String>,
}

/// `iocx worker` arguments.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The most jobs this process runs at once.
    #[arg(long, default_value_t = 4)]
    pub max_jobs: usize,
}

/// Runs `iocx pull NAME`.
pub fn pull(global: &Global, args: PullArgs) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let bar = show_progress(global).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message(format!("pulling {}", args.name));
        bar
    });
    let progress = {
        let bar = bar.clone();
        move |c: &PullCounts| {
            if let Some(bar) = &bar {
                bar.set_message(format!(
                    "batch {}: {} new, {} updated, {} unchanged",
                    c.batches,
                    thousands(c.new),
                    thousands(c.updated),
                    thousands(c.unchanged)
                ));
            }
        }
    };
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        shutdown_signal(cancel.clone());
        run_pull(&engine, &args.name, Trigger::Manual, cancel, &progress).await
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok((run, counts)) => {
            if global.json {
                print_json(&run)?;
            } else {
                println!(
                    "{}: run {} {} — {} new, {} updated, {} unchanged, {} echoes, {} rejected",
                    args.name,
                    run.id,
                    run.state.as_str(),
                    thousands(counts.new),
                    thousands(counts.updated),
                    thousands(counts.unchanged),
                    thousands(counts.echoes),
                    thousands(counts.rejected.values().sum())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("pulling {}", args.name))),
    }
}

/// Runs `iocx runs`.
pub fn runs(global: &Global, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let runs = store.runs(args.name.as_deref(), args.limit.clamp(1, 10_000))?;
    if global.json {
        print_json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<7} {:<24} {:<11} {:<20} {:>7}  COUNTS / ERROR",
        "RUN", "JOB", "SUBJECT", "STATE", "STARTED", "SECONDS"
    );
    for r in &runs {
        println!(
            "{:>6}  {:<7} {:<24} {:<11} {:<20} {:>7}  {}",
            r.id,
            r.job,
            r.subject,
            r.state.as_str(),
            r.started_at,
            r.ended_at
                .map(|e| (e.0 - r.started_at.0).to_string())
                .unwrap_or_else(|| "-".into()),
            summary(r)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(r: &Run) -> String {
    let n = |k: &str| {
        r.counts
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let rejected: u64 = r
        .counts
        .get("rejected")
        .and_then(serde_json::Value::as_object)
        .map(|m| m.values().filter_map(serde_json::Value::as_u64).sum())
        .unwrap_or(0);
    let mut s = format!(
        "{} new, {} updated, {} unchanged, {} rejected",
        n("new"),
        n("updated"),
        n("unchanged"),
        rejected
    );
    if let Some(e) = &r.error {
        s.push_str(" — ");
        s.push_str(e);
    }
    s
}

/// Runs `iocx logs`.
pub fn logs(global: &Global, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let run_id = match args.run {
        Some(id) => id,
        None => store
            .runs(args.name.as_deref(), 1)?
            .first()
            .map(|r| r.id)
            .context("no runs yet")?,
    };
    let run = store
        .run(run_id)?
        .with_context(|| format!("no run {run_id}"))?;
    let lines = store.logs(run_id)?;
    if global.json {
        print_json(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "run {} — {} {} — {} — {}",
        run.id,
        run.job,
        run.subject,
        run.state.as_str(),
        summary(&run)
    );
    for l in &lines {
        println!("{} {:<5} {}", l.at, l.level, l.message);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `iocx worker`: the scheduler without the HTTP server.
pub fn worker(global: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let mut engine = global.engine()?;
    engine.options.max_concurrent = args.max_jobs.max(1);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        shutdown_signal(cancel.clone());
        eprintln!(
            "iocx worker {} on {} — Ctrl-C stops it",
            engine.owner,
            engine.store.describe()
        );
        iocx_engine::scheduler::run(Arc::new(engine), cancel).await;
    });
    Ok(ExitCode::SUCCESS)
}
