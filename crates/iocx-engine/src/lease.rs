//! Job leases: who runs a job now, how a run keeps its lease, and how a lease left behind by a
//! process that died on this host is taken back without waiting for it to expire.

use std::time::Duration;

use iocx_model::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::{Engine, EngineError};

/// `iocx@HOST:PID`: how leases and runs name this process.
pub fn owner_name() -> String {
    format!("iocx@{}:{}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether the process an owner string names may still be alive. A process on another host
/// cannot be checked from here and counts as alive: its lease expiry decides. A process on this
/// host is alive while a process with its pid runs `iocx`.
pub fn owner_alive(owner: &str) -> bool {
    let Some((host_part, pid)) = owner.rsplit_once(':') else {
        return false;
    };
    if host_part != format!("iocx@{}", hostname()) {
        return true;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() {
        return true;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("iocx"))
        .unwrap_or(false)
}

/// Leases `job` to this process now. `Ok(Err(holder))` when another live process holds it.
/// A lease held by a process on this host that no longer runs is taken over at once (its run
/// was interrupted; the new run resumes from its checkpoint).
///
/// # Errors
/// On store errors.
pub async fn acquire(engine: &Engine, job: &str) -> Result<Result<(), String>, EngineError> {
    let ttl = engine.options.lease_ttl_secs;
    for _ in 0..2 {
        let (j, o) = (job.to_string(), engine.owner.clone());
        if engine
            .store
            .call(move |s| s.lease_job(&j, &o, Timestamp::now(), ttl))
            .await?
        {
            return Ok(Ok(()));
        }
        let j = job.to_string();
        let holder = engine
            .store
            .call(move |s| {
                Ok(s.jobs()?
                    .into_iter()
                    .find(|x| x.name == j)
                    .and_then(|x| x.lease_owner))
            })
            .await?;
        let Some(holder) = holder else {
            continue;
        };
        if owner_alive(&holder) {
            return Ok(Err(holder));
        }
        tracing::info!(
            job,
            holder,
            "Taking over the lease of a process that stopped"
        );
        let j = job.to_string();
        engine
            .store
            .call(move |s| s.release_job(&j, &holder, None))
            .await?;
    }
    Ok(Err("another process".into()))
}

/// Keeps this process's lease on `job` while a run lasts, however long one request takes: a
/// process that stops renewing (it died) loses the job to another after the lease expires. The
/// task ends when `token` is cancelled; it returns true when the lease was lost (and then
/// cancels `token` itself, stopping the run).
pub fn keep(engine: &Engine, job: &str, token: CancellationToken) -> tokio::task::JoinHandle<bool> {
    let (store, job, owner) = (engine.store.clone(), job.to_string(), engine.owner.clone());
    let ttl = engine.options.lease_ttl_secs;
    let every = Duration::from_secs((ttl / 3).max(1) as u64);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = token.cancelled() => return false,
            }
            let until = Timestamp::now().plus(ttl);
            let (j, o) = (job.clone(), owner.clone());
            match store.call(move |s| s.renew_lease(&j, &o, until)).await {
                Ok(true) => {}
                Ok(false) => {
                    token.cancel();
                    return true;
                }
                Err(e) => tracing::warn!(job, error = %e, "Could not renew a lease"),
            }
        }
    })
}
