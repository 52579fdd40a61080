//! One pull run: lease the job, stream the connector's batches into the store (each batch in
//! one transaction with its checkpoint), keep the lease alive, and record the run.
//!
//! A pull may run for as long as it likes (a listening connector runs until it is stopped):
//! the lease is renewed while it runs. When it is stopped (shutdown, a lost lease), the
//! connector gets [`STOP_GRACE`] to hand over the batches it already holds; they are committed,
//! and the run ends as interrupted.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use iocx_connectors::{ConnectorError, ErrorKind, LogLevel, LogSink, PullBatch};
use iocx_model::{Reputation, Timestamp};
use iocx_store::{
    BatchOutcome, IngestOptions, NewRun, Progress, Run, RunState, Source, SourceKind,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::runlog::RunLog;
use crate::{Engine, EngineError, configs};

/// How long a stopped pull may still hand over batches it already holds.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// What a pull run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullCounts {
    /// Batches committed.
    pub batches: u64,
    /// Records that created an indicator.
    pub new: u64,
    /// Records that changed what the store knew.
    pub updated: u64,
    /// Re-sightings.
    pub unchanged: u64,
    /// Records that were iocx's own pushes coming back.
    pub echoes: u64,
    /// Items the source sent that did not become records, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Observations retired because they left a full-snapshot feed.
    pub retired: u64,
}

impl PullCounts {
    fn add(&mut self, o: BatchOutcome) {
        self.new += o.new;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// How a pull is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// By the scheduler, when due.
    Schedule,
    /// By a user (`iocx pull`, "Run now"): runs even when polling is off.
    Manual,
}

/// Runs one pull of `name`, leasing its job so no other process runs it meanwhile. `on_batch`
/// sees the counts after each committed batch (for progress displays).
///
/// # Errors
/// When the configuration is unknown, the job is leased elsewhere, or the run fails (the run
/// record then holds the error, and everything committed before it stays).
pub async fn run_pull(
    engine: &Engine,
    name: &str,
    trigger: Trigger,
    cancel: CancellationToken,
    on_batch: &(dyn Fn(&PullCounts) + Send + Sync),
) -> Result<(Run, PullCounts), EngineError> {
    let job = format!("pull:{name}");
    if let Err(holder) = crate::lease::acquire(engine, &job).await? {
        return Err(EngineError::Busy(format!(
            "{name} is being pulled by {holder}"
        )));
    }
    let run_cancel = cancel.child_token();
    let heartbeat = crate::lease::keep(engine, &job, run_cancel.clone());
    let result = pull_leased(engine, name, trigger, run_cancel.clone(), on_batch).await;
    run_cancel.cancel();
    let lost = heartbeat.await.unwrap_or(false);
    if lost {
        return Err(EngineError::Busy(format!(
            "{name}: the lease was lost to another node; it continues there"
        )));
    }
    // Due again one interval after this run, whatever its outcome.
    let n = name.to_string();
    let interval = engine
        .store
        .call(move |s| Ok(s.configuration(&n)?.map(|c| c.platform.interval_secs)))
        .await
        .ok()
        .flatten()
        .unwrap_or(300);
    let cancelled = matches!(&result, Err(EngineError::Cancelled(_)));
    let next = if cancelled {
        Timestamp::now()
    } else {
        Timestamp::now().plus(interval)
    };
    let (j, o) = (job.clone(), engine.owner.clone());
    if let Err(e) = engine
        .store
        .call(move |s| s.release_job(&j, &o, Some(next)))
        .await
    {
        tracing::warn!(job, error = %e, "Could not release a job lease");
    }
    result
}

async fn pull_leased(
    engine: &Engine,
    name: &str,
    trigger: Trigger,
    cancel: CancellationToken,
    on_batch: &(dyn Fn(&PullCounts) + Send + Sync),
) -> Result<(Run, PullCounts), EngineError> {
    let store = &engine.store;
    let n = name.to_string();
    let configuration = store
        .call(move |s| s.configuration(&n))
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("configuration {name:?}")))?;
    if trigger == Trigger::Schedule && (!configuration.enabled || !configuration.platform.polling) {
        return Err(EngineError::Disabled(format!(
            "{name} is disabled or does not poll"
        )));
    }
    let owner = engine.owner.clone();
    let (n, o) = (name.to_string(), owner.clone());
    let interrupted = store
        .call(move |s| s.interrupt_runs("pull", &n, &o))
        .await?;
    let n = name.to_string();
    let checkpoint: Option<serde_json::Value> = store
        .call(move |s| s.last_checkpoint("pull", &n))
        .await?
        .and_then(|c| serde_json::from_str(&c).ok());
    let n = name.to_string();
    let last_success = store.call(move |s| s.last_success("pull", &n)).await?;
    let source: Source = {
        let n = name.to_string();
        let aging = configuration.platform.aging_days;
        store
            .call(move |s| s.ensure_source(&n, SourceKind::Configuration, Some(aging)))
            .await?
    };
    let run = {
        let new = NewRun {
            job: "pull".into(),
            subject: name.to_string(),
            source_id: Some(source.id),
            identity: Some(format!("pull:{name}")),
            observed_at: Timestamp::now(),
            owner: owner.clone(),
        };
        store.call(move |s| s.create_run(&new)).await?
    };
    let log = Arc::new(RunLog::new(store.clone(), run.id, name));
    if interrupted > 0 {
        log.log(LogLevel::Warn, "A previous run of this pull stopped before finishing; continuing from its last committed batch");
    }
    let started = Timestamp::now();
    let mut counts = PullCounts::default();
    let outcome = stream_batches(
        engine,
        &configuration,
        &source,
        &run,
        log.clone(),
        checkpoint,
        last_success,
        cancel,
        on_batch,
        &mut counts,
    )
    .await
    .map(|()| counts.clone())
    .map_err(|e| (counts.clone(), e));
    let (state, counts, error) = match &outcome {
        Ok(counts) => (RunState::Succeeded, counts.clone(), None),
        Err((counts, e)) => {
            let state = if matches!(e, EngineError::Cancelled(_)) {
                RunState::Interrupted
            } else {
                RunState::Failed
            };
            log.log(LogLevel::Error, &e.to_string());
            (state, counts.clone(), Some(e.to_string()))
        }
    };
    if let Ok(c) = &outcome {
        log.log(
            LogLevel::Info,
            &format!(
                "Pulled {} new, {} updated, {} unchanged in {} batches ({} s)",
                c.new,
                c.updated,
                c.unchanged,
                c.batches,
                Timestamp::now().0 - started.0
            ),
        );
    }
    log.flush();
    let counts_json = serde_json::to_value(&counts).unwrap_or_default();
    let id = run.id;
    store
        .call(move |s| s.finish_run(id, state, &counts_json, error.as_deref()))
        .await?;
    let run = store.call(move |s| s.run(id)).await?.unwrap_or(run);
    let c = &counts;
    let labels = [("configuration", name)];
    crate::counters::add("iocx_pull_new_total", &labels, c.new as f64);
    crate::counters::add("iocx_pull_updated_total", &labels, c.updated as f64);
    crate::counters::add("iocx_pull_unchanged_total", &labels, c.unchanged as f64);
    crate::counters::add("iocx_pull_echoes_total", &labels, c.echoes as f64);
    crate::counters::add(
        "iocx_pull_rejected_total",
        &labels,
        c.rejected.values().sum::<u64>() as f64,
    );
    crate::counters::add("iocx_pull_retired_total", &labels, c.retired as f64);
    let run_labels = [
        ("kind", "pull"),
        ("subject", name),
        ("state", run.state.as_str()),
    ];
    crate::counters::add("iocx_runs_total", &run_labels, 1.0);
    crate::counters::add(
        "iocx_run_seconds_total",
        &[("kind", "pull"), ("subject", name)],
        (Timestamp::now().0 - started.0).max(0) as f64,
    );
    match outcome {
        Ok(counts) => {
            on_batch(&counts);
            Ok((run, counts))
        }
        Err((_, e)) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream_batches(
    engine: &Engine,
    configuration: &iocx_store::Configuration,
    source: &Source,
    run: &Run,
    log: Arc<RunLog>,
    checkpoint: Option<serde_json::Value>,
    last_success: Option<Timestamp>,
    cancel: CancellationToken,
    on_batch: &(dyn Fn(&PullCounts) + Send + Sync),
    counts: &mut PullCounts,
) -> Result<(), EngineError> {
    let run_cancel = cancel.child_token();
    let (connector, ctx) = match configs::context(
        &engine.vault,
        configuration,
        log.clone(),
        last_success,
        run_cancel.clone(),
    ) {
        Ok(v) => v,
        Err(e) => return Err(e),
    };
    if !connector.spec().capabilities.pull {
        return Err(EngineError::Connector(ConnectorError::unsupported(
            "pulling",
        )));
    }
    let pull_started = Timestamp::now();
    let mut stream = connector.pull(&ctx, checkpoint);
    let stopped = || EngineError::Cancelled("the pull was stopped".into());
    // Once stopped, the connector has `STOP_GRACE` to hand over what it already holds (a
    // listening connector's received events) as last batches; they are committed like any.
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let next = match stopping {
            None => tokio::select! {
                next = stream.next() => next,
                _ = run_cancel.cancelled() => {
                    stopping = Some(tokio::time::Instant::now() + STOP_GRACE);
                    continue;
                }
            },
            Some(deadline) => tokio::time::timeout_at(deadline, stream.next())
                .await
                .unwrap_or(None),
        };
        let Some(batch) = next else {
            // A connector that saw the stop first may end its stream before the select above
            // did: still a stopped run.
            if stopping.is_some() || run_cancel.is_cancelled() {
                return Err(stopped());
            }
            break;
        };
        let batch: PullBatch = match batch {
            Ok(b) => b,
            Err(_) if stopping.is_some() => return Err(stopped()),
            Err(e) if e.kind == ErrorKind::Cancelled => return Err(stopped()),
            Err(e) => return Err(EngineError::Connector(e)),
        };
        let PullBatch {
            mut records,
            checkpoint,
            snapshot_complete,
            rejected,
        } = batch;
        if let Some(r) = configuration
            .platform
            .override_reputation
            .and_then(Reputation::new)
        {
            for record in &mut records {
                record.attributes.reputation = Some(r);
            }
        }
        counts.echoes += records.iter().filter(|r| r.echo).count() as u64;
        for (reason, n) in rejected {
            *counts.rejected.entry(reason).or_default() += n;
        }
        counts.batches += 1;
        let before: PullCounts = counts.clone();
        let options = IngestOptions {
            now: Timestamp::now(),
            echo: false,
            run_id: Some(run.id),
        };
        let source_c = source.clone();
        let checkpoint_text = checkpoint.to_string();
        let result = engine
            .store
            .call(move |s| {
                let progress = |o: &BatchOutcome| {
                    let mut after = before.clone();
                    after.add(*o);
                    Progress {
                        checkpoint: Some(checkpoint_text.clone()),
                        counts: serde_json::to_value(&after).unwrap_or_default(),
                    }
                };
                s.ingest(&source_c, &options, records, Some(&progress))
            })
            .await;
        match result {
            Ok(o) => counts.add(o),
            Err(e) => return Err(e.into()),
        }
        if snapshot_complete {
            let id = source.id;
            match engine
                .store
                .call(move |s| s.retire_unseen(id, pull_started))
                .await
            {
                Ok(n) => {
                    counts.retired += n;
                    if n > 0 {
                        log.log(
                            LogLevel::Info,
                            &format!("Retired {n} indicators that left the feed"),
                        );
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        on_batch(counts);
    }
    Ok(())
}
