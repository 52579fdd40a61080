//! The scheduler: every enabled configuration pulls at its interval, on whichever node leases
//! its job first.

use std::sync::Arc;
use std::time::Duration;

use iocx_model::Timestamp;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::pull::{Trigger, run_pull};
use crate::{Engine, EngineError};

/// Runs the scheduler until `cancel`: keeps a pull job for every enabled, polling
/// configuration, leases due jobs (at most `max_concurrent` at once on this node) and runs
/// them. On cancellation, running pulls are stopped; what they committed stays, and their jobs
/// are due again at once (for this or another node).
pub async fn run(engine: Arc<Engine>, cancel: CancellationToken) {
    let mut running: JoinSet<()> = JoinSet::new();
    let mut last_sync = None::<std::time::Instant>;
    tracing::info!(owner = %engine.owner, "Scheduler started");
    loop {
        if last_sync.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            if let Err(e) = sync_jobs(&engine).await {
                tracing::warn!(error = %e, "Could not update the job list");
            }
            last_sync = Some(std::time::Instant::now());
        }
        while running.try_join_next().is_some() {}
        let free = engine.options.max_concurrent.saturating_sub(running.len());
        if free > 0 {
            let (owner, ttl) = (engine.owner.clone(), engine.options.lease_ttl_secs);
            match engine
                .store
                .call(move |s| s.lease_due(&owner, Timestamp::now(), ttl, free as i64))
                .await
            {
                Ok(jobs) => {
                    for job in jobs {
                        let engine = engine.clone();
                        let cancel = cancel.clone();
                        running.spawn(async move { run_job(&engine, &job, cancel).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Could not lease due jobs"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(engine.options.tick) => {}
            _ = cancel.cancelled() => break,
        }
    }
    tracing::info!("Scheduler stopping; waiting for running jobs to stop");
    while running.join_next().await.is_some() {}
}

/// Makes sure every enabled, polling configuration whose connector pulls has a job.
async fn sync_jobs(engine: &Engine) -> Result<(), EngineError> {
    let configurations = engine.store.call(|s| s.configurations()).await?;
    for c in configurations {
        let pulls =
            iocx_connectors::connector(&c.connector).is_some_and(|k| k.spec().capabilities.pull);
        let job = format!("pull:{}", c.name);
        if c.enabled && c.platform.polling && pulls {
            engine
                .store
                .call(move |s| s.ensure_job(&job, Timestamp::now()))
                .await?;
        }
    }
    let sharings = engine.store.call(|s| s.sharings()).await?;
    for sh in sharings.into_iter().filter(|s| s.enabled) {
        let job = format!("share:{}", sh.name);
        engine
            .store
            .call(move |s| s.ensure_job(&job, Timestamp::now()))
            .await?;
    }
    Ok(())
}

/// Makes the share jobs of sharings that read from `configuration` (or from every source) and
/// run after pulls due now.
///
/// # Errors
/// On store errors.
pub async fn after_pull(engine: &Engine, configuration: &str) -> Result<(), EngineError> {
    let sharings = engine.store.call(|s| s.sharings()).await?;
    for sh in sharings {
        if sh.enabled
            && sh.after_pull
            && (sh.sources.is_empty() || sh.sources.iter().any(|s| s == configuration))
        {
            let job = format!("share:{}", sh.name);
            engine
                .store
                .call(move |s| s.set_job_due(&job, Timestamp::now()))
                .await?;
        }
    }
    Ok(())
}

async fn run_job(engine: &Engine, job: &str, cancel: CancellationToken) {
    if let Some(name) = job.strip_prefix("share:") {
        match crate::share::run_share(engine, name, crate::share::ShareMode::Regular, true, cancel)
            .await
        {
            Ok((run, c)) => tracing::info!(
                sharing = name,
                run = run.id,
                shared = c.shared,
                failed = c.failed,
                retracted = c.retracted,
                "Share finished"
            ),
            Err(EngineError::NotFound(_)) => {
                let j = job.to_string();
                let _ = engine.store.call(move |s| s.delete_job(&j)).await;
            }
            Err(EngineError::Disabled(_)) => {}
            Err(e) => tracing::warn!(sharing = name, error = %e, "Share failed"),
        }
        return;
    }
    let Some(name) = job.strip_prefix("pull:") else {
        tracing::warn!(job, "Unknown job kind; releasing it for an hour");
        let (j, o) = (job.to_string(), engine.owner.clone());
        let _ = engine
            .store
            .call(move |s| s.release_job(&j, &o, Some(Timestamp::now().plus(3600))))
            .await;
        return;
    };
    // The lease taken by the scheduler is renewed and released by the run itself.
    match run_pull(engine, name, Trigger::Schedule, cancel, &|_| {}).await {
        Ok((run, counts)) => {
            tracing::info!(
                configuration = name,
                run = run.id,
                new = counts.new,
                updated = counts.updated,
                unchanged = counts.unchanged,
                "Pull finished"
            );
            if counts.new + counts.updated + counts.retired > 0
                && let Err(e) = after_pull(engine, name).await
            {
                tracing::warn!(configuration = name, error = %e, "Could not schedule the sharings of a pull");
            }
        }
        Err(EngineError::NotFound(_)) => {
            let j = job.to_string();
            let _ = engine.store.call(move |s| s.delete_job(&j)).await;
        }
        Err(EngineError::Disabled(_)) => {}
        Err(e) => tracing::warn!(configuration = name, error = %e, "Pull failed"),
    }
}
