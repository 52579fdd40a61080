//! One share run: what a sharing's rule selects now, compared with what its ledger says was
//! delivered, becomes additions, updates and retractions at the destination, in batches within
//! the target's limits, each recorded per item.
//!
//! Exactly once: before a batch is handed to the destination it is written to the outbox with
//! its items marked pending; its outcomes and the outbox removal commit together afterwards. A
//! run killed in between leaves the batch in the outbox, and the next run sends it again with the
//! same batch id, which destinations that support it (the webhook connector's `Idempotency-Key`)
//! use to drop the repeat; value-keyed destinations (every vendor API) are idempotent anyway.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use iocx_connectors::{
    Connector, Context, DeliveryMode, ItemOutcome, LogLevel, LogSink, PushItem, TargetCall,
    TargetSpec, Values, http::chunk_by_budget,
};
use iocx_model::{Kind, Timestamp};
use iocx_store::{
    Candidate, CandidateQuery, Delivery, DeliveryState, IndicatorDetail, NewRun, OutboxBatch, Run,
    RunState, SharingRow, SqlValue, Store,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::runlog::RunLog;
use crate::{Engine, EngineError, configs};

/// A rule compiled for one run: the SQL that selects candidates, and the in-memory exclusions
/// applied to them.
pub trait Selector: Send + Sync {
    /// A boolean SQL expression over `indicator i` in the store's dialect, and its parameters.
    fn sql(&self) -> (String, Vec<SqlValue>);
    /// The allow-list entry that excludes this indicator, as `list: entry`, if any.
    fn excluded(&self, kind: Kind, value: &str) -> Option<String>;
}

/// What a share run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// Bring the destination in line with what the rule selects now.
    Regular,
    /// "Share existing IoCs": also send again what was already shared, for indicators last seen
    /// since `since` (all when `None`).
    Sync {
        /// The window's start.
        since: Option<Timestamp>,
    },
}

/// What a share run did (or, counting, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareCounts {
    /// Indicators the rule selected.
    pub selected: u64,
    /// Delivered in this run.
    pub shared: u64,
    /// Already delivered and unchanged.
    pub unchanged: u64,
    /// Refused or lost; retried later with backoff.
    pub failed: u64,
    /// Not sent, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Removed from the destination.
    pub retracted: u64,
    /// Excluded by allow-lists, by list.
    pub excluded: BTreeMap<String, u64>,
    /// Batches sent again after an interrupted run.
    pub resumed_batches: u64,
}

/// The fingerprint of what a target is sent about an indicator: a delivery is repeated only
/// when it changes.
pub fn delivery_version(c: &Candidate, params_hash: u64) -> i64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.indicator.kind.code().hash(&mut h);
    c.indicator.value.hash(&mut h);
    c.severity.code().hash(&mut h);
    c.reputation.hash(&mut h);
    c.tagset.hash(&mut h);
    c.expires.map(|t| t.0).hash(&mut h);
    c.safe.hash(&mut h);
    params_hash.hash(&mut h);
    (h.finish() & 0x7FFF_FFFF_FFFF_FFFF) as i64
}

/// How long after `attempts` failures a delivery is tried again: 1, 2, 4 … minutes, at most an
/// hour.
pub fn retry_delay(attempts: i64) -> i64 {
    60i64
        .saturating_mul(1i64 << attempts.clamp(0, 6))
        .min(3_600)
}

/// Everything a share run works with, resolved once.
pub struct Plan {
    /// The sharing.
    pub sharing: SharingRow,
    /// The destination's connector.
    pub connector: &'static dyn Connector,
    /// Its context.
    pub ctx: Context,
    /// The target.
    pub target: TargetSpec,
    /// The target's parameters.
    pub params: Values,
    /// The destination configuration's id.
    pub destination_id: i64,
    /// The destination's own source (its reports are echoes for it).
    pub destination_source_id: Option<i64>,
    /// Source ids the sharing reads from (empty: all).
    pub source_ids: Vec<i64>,
    /// The compiled rule.
    pub selector: Arc<dyn Selector>,
}

/// The per-indicator decision of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Send,
    Keep,
    Skip(&'static str),
}

/// What a run decided: `(id, version)` to send, `(id, version)` to retract, and the counts.
pub type Decided = (Vec<(i64, i64)>, Vec<(i64, i64)>, ShareCounts);

/// Walks the candidates and decides, without touching the destination. Returns the ids to
/// send (with their versions), the ids to retract, and the counts.
pub fn decide(
    store: &Store,
    plan: &Plan,
    mode: ShareMode,
    now: Timestamp,
) -> Result<Decided, EngineError> {
    let (filter_sql, filter_params) = plan.selector.sql();
    let params_hash = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&plan.sharing.params)
            .unwrap_or_default()
            .hash(&mut h);
        plan.sharing.target.hash(&mut h);
        h.finish()
    };
    let delivery = &plan.target.delivery;
    let query = CandidateQuery {
        sharing_id: plan.sharing.id,
        filter_sql,
        filter_params,
        source_ids: plan.source_ids.clone(),
        destination_source_id: plan.destination_source_id,
        now,
        since: None,
        include_inactive: false,
    };
    let mut counts = ShareCounts::default();
    let mut desired: Vec<Candidate> = Vec::new();
    store.share_candidates(&query, &mut |c| {
        counts.selected += 1;
        if let Some(entry) = plan.selector.excluded(c.indicator.kind, &c.indicator.value) {
            let list = entry.split(':').next().unwrap_or("allow-list").to_string();
            *counts.excluded.entry(list).or_default() += 1;
            return Ok(true);
        }
        if !delivery.kinds.contains(&c.indicator.kind) {
            *counts
                .skipped
                .entry(format!(
                    "kind {} not supported by the target",
                    c.indicator.kind
                ))
                .or_default() += 1;
            return Ok(true);
        }
        if c.from_destination {
            *counts
                .skipped
                .entry("echo: the destination reported it".into())
                .or_default() += 1;
            return Ok(true);
        }
        desired.push(c);
        Ok(true)
    })?;

    // Capacity: the highest priority first (severity, hits, recency), the rest reported.
    let cap = delivery.capacity;
    if cap.per_kind.is_some() || cap.total.is_some() || cap.total_bytes.is_some() {
        desired.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.hits.cmp(&a.hits))
                .then(b.last_seen.cmp(&a.last_seen))
                .then(a.id.cmp(&b.id))
        });
        let mut per_kind: HashMap<Kind, u64> = HashMap::new();
        let (mut total, mut bytes) = (0u64, 0u64);
        let mut kept = Vec::with_capacity(desired.len());
        for c in desired {
            let k = per_kind.entry(c.indicator.kind).or_default();
            let size = c.indicator.value.len() as u64 + 1;
            let fits = cap.per_kind.is_none_or(|m| *k < m)
                && cap.total.is_none_or(|m| total < m)
                && cap.total_bytes.is_none_or(|m| bytes + size <= m);
            if fits {
                *k += 1;
                total += 1;
                bytes += size;
                kept.push(c);
            } else {
                *counts.skipped.entry("over capacity".into()).or_default() += 1;
            }
        }
        desired = kept;
    }
    // In id order: batches then read neighbouring rows.
    desired.sort_unstable_by_key(|c| c.id);

    let since = match mode {
        ShareMode::Sync { since } => Some(since.unwrap_or(Timestamp(i64::MIN))),
        ShareMode::Regular => None,
    };
    let mut send = Vec::new();
    let desired_ids: HashSet<i64> = desired.iter().map(|c| c.id).collect();
    for c in &desired {
        let version = delivery_version(c, params_hash);
        let forced = since.is_some_and(|s| c.last_seen >= s);
        let decision = match &c.delivery {
            _ if forced => Decision::Send,
            None => Decision::Send,
            Some(d) => match d.state {
                DeliveryState::Shared | DeliveryState::Pending if d.version == version => {
                    Decision::Keep
                }
                DeliveryState::Skipped if d.version == version => {
                    Decision::Skip("skipped by the destination")
                }
                DeliveryState::Failed
                    if d.version == version && d.next_attempt_at.is_some_and(|t| t > now) =>
                {
                    Decision::Skip("waiting to retry")
                }
                _ => Decision::Send,
            },
        };
        match decision {
            Decision::Send => send.push((c.id, version)),
            Decision::Keep => counts.unchanged += 1,
            Decision::Skip(reason) => *counts.skipped.entry(reason.into()).or_default() += 1,
        }
    }

    // What was delivered but is no longer wanted (no longer matching, inactive, excluded, over
    // capacity) is retracted where the target can remove.
    let mut retract = Vec::new();
    store.deliveries_in_states(
        plan.sharing.id,
        &[DeliveryState::Shared, DeliveryState::Pending],
        &mut |d| {
            if !desired_ids.contains(&d.indicator_id) {
                retract.push((d.indicator_id, d.version));
            }
            Ok(())
        },
    )?;
    if !delivery.removal && !retract.is_empty() {
        *counts
            .skipped
            .entry("no longer selected; the target cannot remove".into())
            .or_default() += retract.len() as u64;
        retract.clear();
    }
    // A full-state target takes the whole selected set whenever anything changed.
    if delivery.mode == DeliveryMode::FullState && (!send.is_empty() || !retract.is_empty()) {
        send = desired
            .iter()
            .map(|c| (c.id, delivery_version(c, params_hash)))
            .collect();
        counts.unchanged = 0;
    }
    Ok((send, retract, counts))
}

/// Converts a stored indicator to what destinations are sent.
pub fn push_item(d: &IndicatorDetail) -> PushItem {
    PushItem {
        indicator: d.indicator.clone(),
        severity: d.aggregate.severity,
        reputation: d.aggregate.reputation.get(),
        tags: d.aggregate.tags.as_slice().to_vec(),
        comment: d
            .observations
            .iter()
            .find_map(|o| o.observation.attributes.comment.clone()),
        expires: d.aggregate.expires,
        first_seen: d.aggregate.first_seen,
        last_seen: d.aggregate.last_seen,
        hits: d.aggregate.hits,
        sources: d
            .observations
            .iter()
            .filter(|o| !o.observation.echo)
            .map(|o| o.source.clone())
            .collect(),
        safe: d.aggregate.safe,
    }
}

fn estimated_size(item: &PushItem) -> usize {
    // What a JSON encoding of the item costs, roughly: the value, tags, comment and fixed fields.
    64 + item.indicator.value.len()
        + item.tags.iter().map(|t| t.len() + 3).sum::<usize>()
        + item.comment.as_ref().map_or(0, String::len)
}

/// Sends `items` (`(id, version)`) to the destination with `action`, batch by batch, each
/// through the outbox; records every outcome. Stops at the first whole-call failure (the
/// destination is down): what was not attempted stays as it was, for the next run.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    engine: &Engine,
    plan: &Plan,
    action: &str,
    items: &[(i64, i64)],
    counts: &mut ShareCounts,
    log: &RunLog,
    cancel: &CancellationToken,
    resumed_batch: Option<String>,
) -> Result<(), EngineError> {
    let delivery = &plan.target.delivery;
    let batch_size = if delivery.mode == DeliveryMode::FullState {
        usize::MAX
    } else {
        delivery.batch_size.max(1)
    };
    // Load details a slice at a time, so memory stays bounded however many items there are.
    for slice in items.chunks(batch_size.min(5_000)) {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled("the share was stopped".into()));
        }
        let ids: Vec<i64> = slice.iter().map(|(id, _)| *id).collect();
        let details = engine.store.call(move |s| s.details(&ids, true)).await?;
        let versions: HashMap<i64, i64> = slice.iter().copied().collect();
        let found: Vec<(i64, PushItem)> = details.iter().map(|d| (d.id, push_item(d))).collect();
        let full_state_all = delivery.mode == DeliveryMode::FullState;
        let ranges = if full_state_all {
            std::iter::once(0..found.len()).collect::<Vec<_>>()
        } else {
            chunk_by_budget(&found, batch_size, delivery.byte_budget, |(_, item)| {
                estimated_size(item)
            })
        };
        for range in ranges {
            let part = &found[range];
            let batch_id = resumed_batch
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let batch = OutboxBatch {
                batch: batch_id.clone(),
                action: action.to_string(),
                items: part
                    .iter()
                    .map(|(id, _)| (*id, versions.get(id).copied().unwrap_or(0)))
                    .collect(),
                created_at: Timestamp::now(),
            };
            // The ledger rows as they were before this batch: marking the items pending must not
            // lose their failure count, which sets the retry backoff.
            let prior = {
                let (sid, ids) = (
                    plan.sharing.id,
                    part.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
                );
                engine
                    .store
                    .call(move |s| s.deliveries_of(sid, &ids))
                    .await?
            };
            let now = Timestamp::now();
            let pending: Vec<Delivery> = batch
                .items
                .iter()
                .map(|(id, version)| Delivery {
                    sharing_id: plan.sharing.id,
                    indicator_id: *id,
                    state: DeliveryState::Pending,
                    version: *version,
                    reason: None,
                    attempts: prior.get(id).map_or(0, |d| d.attempts),
                    next_attempt_at: None,
                    updated_at: now,
                })
                .collect();
            if resumed_batch.is_none() {
                let (sid, did, b, p) = (
                    plan.sharing.id,
                    plan.destination_id,
                    batch.clone(),
                    pending.clone(),
                );
                engine
                    .store
                    .call(move |s| s.begin_batch(sid, did, &b, &p))
                    .await?;
            }
            let call = TargetCall {
                target: plan.target.name.clone(),
                params: plan.params.clone(),
                sharing: plan.sharing.name.clone(),
                batch: Some(batch_id.clone()),
            };
            let to_send: Vec<PushItem> = part.iter().map(|(_, item)| item.clone()).collect();
            let result = if action == "remove" {
                plan.connector.retract(&plan.ctx, &call, &to_send).await
            } else {
                plan.connector.push(&plan.ctx, &call, &to_send).await
            };
            let (outcomes, failure) = match result {
                Ok(o) if o.len() == to_send.len() => (o, None),
                Ok(o) => {
                    let reason = format!(
                        "the connector answered {} results for {} items",
                        o.len(),
                        to_send.len()
                    );
                    (
                        vec![ItemOutcome::Failed(reason.clone()); to_send.len()],
                        Some(reason),
                    )
                }
                Err(e) => (
                    vec![ItemOutcome::Failed(e.to_string()); to_send.len()],
                    Some(e.to_string()),
                ),
            };
            let now = Timestamp::now();
            let mut rows = Vec::with_capacity(part.len());
            for ((id, _), outcome) in part.iter().zip(outcomes) {
                let version = versions.get(id).copied().unwrap_or(0);
                let attempts = prior.get(id).map_or(0, |d| d.attempts);
                let (state, reason, attempts, next) = match (action, outcome) {
                    ("remove", ItemOutcome::Shared) => {
                        counts.retracted += 1;
                        (DeliveryState::Retracted, None, 0, None)
                    }
                    ("remove", ItemOutcome::Failed(r) | ItemOutcome::Skipped(r)) => {
                        counts.failed += 1;
                        (
                            DeliveryState::Shared,
                            Some(format!("retraction failed: {r}")),
                            attempts + 1,
                            None,
                        )
                    }
                    (_, ItemOutcome::Shared) => {
                        counts.shared += 1;
                        (DeliveryState::Shared, None, 0, None)
                    }
                    (_, ItemOutcome::Failed(r)) => {
                        counts.failed += 1;
                        (
                            DeliveryState::Failed,
                            Some(r),
                            attempts + 1,
                            Some(now.plus(retry_delay(attempts))),
                        )
                    }
                    (_, ItemOutcome::Skipped(r)) => {
                        *counts.skipped.entry(r.clone()).or_default() += 1;
                        (DeliveryState::Skipped, Some(r), 0, None)
                    }
                };
                rows.push(Delivery {
                    sharing_id: plan.sharing.id,
                    indicator_id: *id,
                    state,
                    version,
                    reason,
                    attempts,
                    next_attempt_at: next,
                    updated_at: now,
                });
            }
            let (sid, did) = (plan.sharing.id, plan.destination_id);
            engine
                .store
                .call(move |s| s.finish_batch(sid, did, &batch_id, &rows))
                .await?;
            if let Some(reason) = failure {
                log.log(
                    LogLevel::Error,
                    &format!(
                        "The destination refused a batch of {}: {reason}",
                        part.len()
                    ),
                );
                return Err(EngineError::Delivery(reason));
            }
        }
    }
    Ok(())
}

/// Resolves everything a run of `sharing` needs.
///
/// # Errors
/// When the rule, the destination or the target is missing or invalid.
pub async fn plan(
    engine: &Engine,
    sharing: SharingRow,
    log: Arc<dyn LogSink>,
    cancel: CancellationToken,
) -> Result<Plan, EngineError> {
    let now = Timestamp::now();
    let rule_name = sharing.rule.clone();
    let rule = engine
        .store
        .call(move |s| s.rule(&rule_name))
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("rule {:?}", sharing.rule)))?;
    let selector = crate::rules::selector(engine, &rule, now).await?;
    let dest_name = sharing.destination.clone();
    let destination = engine
        .store
        .call(move |s| s.configuration(&dest_name))
        .await?
        .ok_or_else(|| {
            EngineError::NotFound(format!(
                "destination configuration {:?}",
                sharing.destination
            ))
        })?;
    let (connector, ctx) = configs::context(&engine.vault, &destination, log, None, cancel)?;
    if !connector.spec().capabilities.push {
        return Err(EngineError::Invalid(iocx_connectors::FieldErrors(vec![
            iocx_connectors::FieldError::new(
                "destination",
                format!(
                    "{} ({}) cannot receive indicators",
                    destination.name, destination.connector
                ),
            ),
        ])));
    }
    let targets = connector.targets(&ctx).await?;
    let target = targets
        .into_iter()
        .find(|t| t.name == sharing.target)
        .ok_or_else(|| {
            EngineError::Invalid(iocx_connectors::FieldErrors(vec![
                iocx_connectors::FieldError::new(
                    "target",
                    format!(
                        "{} has no target {:?}",
                        destination.connector, sharing.target
                    ),
                ),
            ]))
        })?;
    let params = Values::validate(&target.fields, &sharing.params).map_err(EngineError::Invalid)?;
    let sources = engine.store.call(|s| s.sources()).await?;
    let mut source_ids = Vec::new();
    for name in &sharing.sources {
        match sources.iter().find(|s| &s.name == name) {
            Some(s) => source_ids.push(s.id),
            None => {
                return Err(EngineError::NotFound(format!(
                    "source {name:?} of sharing {:?}",
                    sharing.name
                )));
            }
        }
    }
    let destination_source_id = sources
        .iter()
        .find(|s| s.name == destination.name)
        .map(|s| s.id);
    Ok(Plan {
        sharing,
        connector,
        ctx,
        target,
        params,
        destination_id: destination.id,
        destination_source_id,
        source_ids,
        selector,
    })
}

/// Counts what a run in `mode` would send, without sending ("Fetch" in the seeds' Sync flow).
///
/// # Errors
/// As [`plan`], and store errors.
pub async fn preview(
    engine: &Engine,
    name: &str,
    mode: ShareMode,
) -> Result<(ShareCounts, u64, u64), EngineError> {
    let n = name.to_string();
    let sharing = engine
        .store
        .call(move |s| s.sharing(&n))
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("sharing {name:?}")))?;
    let plan = plan(
        engine,
        sharing,
        Arc::new(iocx_connectors::TracingLog),
        CancellationToken::new(),
    )
    .await?;
    let store = engine.store.clone();
    let plan = Arc::new(plan);
    let p = plan.clone();
    let (send, retract, counts) =
        tokio::task::spawn_blocking(move || decide(&store, &p, mode, Timestamp::now()))
            .await
            .map_err(|e| EngineError::Cancelled(format!("preview task: {e}")))??;
    Ok((counts, send.len() as u64, retract.len() as u64))
}

/// Runs one share of `name`, leasing its job.
///
/// # Errors
/// When the sharing is unknown or disabled (scheduled runs), the job is leased elsewhere, or
/// the run fails (its record then holds the error; what was delivered stays recorded).
pub async fn run_share(
    engine: &Engine,
    name: &str,
    mode: ShareMode,
    scheduled: bool,
    cancel: CancellationToken,
) -> Result<(Run, ShareCounts), EngineError> {
    let job = format!("share:{name}");
    if let Err(holder) = crate::lease::acquire(engine, &job).await? {
        return Err(EngineError::Busy(format!(
            "{name} is being shared by {holder}"
        )));
    }
    let run_cancel = cancel.child_token();
    let heartbeat = crate::lease::keep(engine, &job, run_cancel.clone());
    let result = share_leased(engine, name, mode, scheduled, run_cancel.clone()).await;
    run_cancel.cancel();
    let lost = heartbeat.await.unwrap_or(false);
    let n = name.to_string();
    let interval = engine
        .store
        .call(move |s| Ok(s.sharing(&n)?.map(|s| s.interval_secs)))
        .await
        .ok()
        .flatten()
        .unwrap_or(300);
    let next = if matches!(result, Err(EngineError::Delivery(_))) {
        // The destination failed: try again sooner than the interval, not later.
        Timestamp::now().plus(interval.min(300))
    } else {
        Timestamp::now().plus(interval)
    };
    let (j, o) = (job.clone(), engine.owner.clone());
    let _ = engine
        .store
        .call(move |s| s.release_job(&j, &o, Some(next)))
        .await;
    if lost {
        return Err(EngineError::Busy(format!(
            "{name}: the lease was lost to another node"
        )));
    }
    result
}

async fn share_leased(
    engine: &Engine,
    name: &str,
    mode: ShareMode,
    scheduled: bool,
    cancel: CancellationToken,
) -> Result<(Run, ShareCounts), EngineError> {
    let n = name.to_string();
    let sharing = engine
        .store
        .call(move |s| s.sharing(&n))
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("sharing {name:?}")))?;
    if scheduled && !sharing.enabled {
        return Err(EngineError::Disabled(format!("sharing {name} is disabled")));
    }
    let new = NewRun {
        job: "share".into(),
        subject: name.to_string(),
        source_id: None,
        identity: Some(format!("share:{name}")),
        observed_at: Timestamp::now(),
        owner: engine.owner.clone(),
    };
    let (n, o) = (name.to_string(), engine.owner.clone());
    engine
        .store
        .call(move |s| s.interrupt_runs("share", &n, &o))
        .await?;
    let run = engine.store.call(move |s| s.create_run(&new)).await?;
    let log = Arc::new(RunLog::new(engine.store.clone(), run.id, name));
    let mut counts = ShareCounts::default();
    let outcome = share_body(engine, sharing, mode, log.clone(), cancel, &mut counts).await;
    let (state, error) = match &outcome {
        Ok(()) => (RunState::Succeeded, None),
        Err(EngineError::Cancelled(m)) => (RunState::Interrupted, Some(m.clone())),
        Err(e) => (RunState::Failed, Some(e.to_string())),
    };
    match &outcome {
        Ok(()) => log.log(
            LogLevel::Info,
            &format!(
                "Selected {}: {} shared, {} unchanged, {} failed, {} retracted, {} skipped",
                counts.selected,
                counts.shared,
                counts.unchanged,
                counts.failed,
                counts.retracted,
                counts.skipped.values().sum::<u64>()
            ),
        ),
        Err(e) => log.log(LogLevel::Error, &e.to_string()),
    }
    log.flush();
    let counts_json = serde_json::to_value(&counts).unwrap_or_default();
    let id = run.id;
    engine
        .store
        .call(move |s| s.finish_run(id, state, &counts_json, error.as_deref()))
        .await?;
    let run = engine.store.call(move |s| s.run(id)).await?.unwrap_or(run);
    let name = run.subject.as_str();
    let labels = [("sharing", name)];
    crate::counters::add("iocx_shared_total", &labels, counts.shared as f64);
    crate::counters::add("iocx_share_failed_total", &labels, counts.failed as f64);
    crate::counters::add("iocx_retracted_total", &labels, counts.retracted as f64);
    crate::counters::add(
        "iocx_share_skipped_total",
        &labels,
        counts.skipped.values().sum::<u64>() as f64,
    );
    crate::counters::add(
        "iocx_runs_total",
        &[
            ("kind", "share"),
            ("subject", name),
            ("state", run.state.as_str()),
        ],
        1.0,
    );
    crate::counters::add(
        "iocx_run_seconds_total",
        &[("kind", "share"), ("subject", name)],
        (run.ended_at.unwrap_or(run.started_at).0 - run.started_at.0).max(0) as f64,
    );
    outcome.map(|()| (run, counts))
}

async fn share_body(
    engine: &Engine,
    sharing: SharingRow,
    mode: ShareMode,
    log: Arc<RunLog>,
    cancel: CancellationToken,
    counts: &mut ShareCounts,
) -> Result<(), EngineError> {
    let plan = Arc::new(plan(engine, sharing, log.clone(), cancel.clone()).await?);
    // First what an interrupted run handed over without recording: again, same batch ids.
    let sid = plan.sharing.id;
    let outbox = engine.store.call(move |s| s.outbox(sid)).await?;
    for batch in outbox {
        log.log(
            LogLevel::Warn,
            &format!(
                "Sending again batch {} of an interrupted run ({} items)",
                batch.batch,
                batch.items.len()
            ),
        );
        counts.resumed_batches += 1;
        deliver(
            engine,
            &plan,
            &batch.action,
            &batch.items,
            counts,
            &log,
            &cancel,
            Some(batch.batch.clone()),
        )
        .await?;
    }
    let store = engine.store.clone();
    let p = plan.clone();
    let (send, retract, decided) =
        tokio::task::spawn_blocking(move || decide(&store, &p, mode, Timestamp::now()))
            .await
            .map_err(|e| EngineError::Cancelled(format!("share task: {e}")))??;
    counts.selected = decided.selected;
    counts.unchanged = decided.unchanged;
    counts.excluded = decided.excluded;
    for (reason, n) in decided.skipped {
        *counts.skipped.entry(reason).or_default() += n;
    }
    let changed = !send.is_empty() || !retract.is_empty();
    if !send.is_empty() {
        deliver(engine, &plan, "add", &send, counts, &log, &cancel, None).await?;
    }
    if !retract.is_empty() && plan.target.delivery.mode == DeliveryMode::Incremental {
        deliver(
            engine, &plan, "remove", &retract, counts, &log, &cancel, None,
        )
        .await?;
    } else if !retract.is_empty() {
        // A full-state target's replace already dropped them — unless nothing is selected any
        // more, when no replace ran: send it the empty set.
        if send.is_empty() {
            let call = TargetCall {
                target: plan.target.name.clone(),
                params: plan.params.clone(),
                sharing: plan.sharing.name.clone(),
                batch: None,
            };
            plan.connector.push(&plan.ctx, &call, &[]).await?;
        }
        let now = Timestamp::now();
        let rows: Vec<Delivery> = retract
            .iter()
            .map(|(id, version)| Delivery {
                sharing_id: plan.sharing.id,
                indicator_id: *id,
                state: DeliveryState::Retracted,
                version: *version,
                reason: None,
                attempts: 0,
                next_attempt_at: None,
                updated_at: now,
            })
            .collect();
        counts.retracted += rows.len() as u64;
        let did = plan.destination_id;
        engine
            .store
            .call(move |s| s.record_deliveries(did, &rows))
            .await?;
    }
    if changed && plan.target.delivery.deploy {
        let call = TargetCall {
            target: plan.target.name.clone(),
            params: plan.params.clone(),
            sharing: plan.sharing.name.clone(),
            batch: None,
        };
        plan.connector.deploy(&plan.ctx, &call).await?;
        log.log(LogLevel::Info, "Deployed the destination's pending changes");
    }
    Ok(())
}
