//! The ingest algorithm, shared by both backends.
//!
//! A batch of records becomes, in one transaction:
//!
//! 1. *staged* records: keyed, merged when the batch names one indicator twice, sorted by key
//!    (sorted keys make every index probe and insert land near the previous one);
//! 2. resolved keys: which indicators exist already;
//! 3. four classes of record — a **new** indicator; an existing indicator this source had not
//!    reported (**new observation**); a source's **changed** statement; and an **unchanged
//!    re-sighting** — each written with the cheapest statement that keeps the aggregate right;
//! 4. recomputed aggregates, through [`iocx_model::aggregate`], for every indicator whose
//!    observations changed or that has several observations (under "latest wins" even a plain
//!    re-sighting can change which source's verdict counts).
//!
//! An unchanged re-sighting of a single-source indicator costs two in-place counter updates and
//! no index change; the backends turn runs of consecutive ids into one ranged statement. That is
//! the hot path of real feeds, which re-send everything on every poll.
//!
//! Backends provide the primitive reads and writes through [`WriteTx`]; everything that decides
//! *what* to write lives here, once.

use hashbrown::HashMap;
use iocx_model::{
    Aggregate, Attributes, Indicator, IndicatorKey, KeySecret, Observation, Overrides,
    Reconciliation, Record, SourcedObservation, TagSet, Timestamp, aggregate,
};

use crate::error::Result;
use crate::types::BatchOutcome;

/// Keeps 48 bits of a fingerprint: enough to make a missed change a one-in-10¹⁴ event, and it
/// fits SQLite's 6-byte integer encoding.
pub(crate) fn short_fingerprint(attributes: &Attributes) -> i64 {
    (attributes.fingerprint() & 0xFFFF_FFFF_FFFF) as i64
}

/// One indicator of a batch, after merging duplicates.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub key: IndicatorKey,
    pub indicator: Indicator,
    pub attributes: Attributes,
    pub fp: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub hits: u64,
    /// Input records merged into this one.
    pub records: u64,
    /// Whether a record gave its own first_seen (then an earlier one is a change).
    pub explicit_first_seen: bool,
    /// Whether the (last) record is an echo of iocx's own push.
    pub echo: bool,
}

/// The stored fingerprint of what a source says: its attributes, and whether it is an echo (a
/// change of either is a change of the observation).
fn fingerprint_of(attributes: &Attributes, echo: bool) -> i64 {
    short_fingerprint(attributes) ^ i64::from(echo)
}

/// A batch keyed, merged and sorted, ready to write. Preparing is pure CPU work (hashing,
/// fingerprints, sorting), so an importer does it on its reader thread while the writer thread
/// writes the previous batch.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) staged: Vec<Staged>,
    pub(crate) secret: KeySecret,
    pub(crate) now: Timestamp,
}

impl Prepared {
    /// Prepares `records` for a store whose key secret is `secret`, with `now` as the "seen" time
    /// of records that carry none (it must equal the ingest options' `now`).
    pub fn new(records: Vec<Record>, secret: &KeySecret, now: Timestamp) -> Prepared {
        Prepared {
            staged: stage(records, secret, now),
            secret: *secret,
            now,
        }
    }

    /// Distinct indicators in the batch.
    pub fn len(&self) -> usize {
        self.staged.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Input records the batch holds (duplicates counted).
    pub fn records(&self) -> u64 {
        self.staged.iter().map(|s| s.records).sum()
    }

    /// The greatest key in the batch.
    pub fn last_key(&self) -> Option<IndicatorKey> {
        self.staged.last().map(|s| s.key)
    }

    /// Drops every indicator whose key is at most `key` (already written by an interrupted run).
    pub fn skip_through(&mut self, key: IndicatorKey) {
        let from = self.staged.partition_point(|s| s.key <= key);
        self.staged.drain(..from);
    }

    /// Splits the batch into batches of at most `max` indicators, each a contiguous range of
    /// keys. Writing a large sorted batch as such ranges touches each page of the key index
    /// about once, instead of once per transaction.
    pub fn split(self, max: usize) -> Vec<Prepared> {
        let max = max.max(1);
        let (secret, now) = (self.secret, self.now);
        let mut out = Vec::with_capacity(self.staged.len() / max + 1);
        let mut rest = self.staged;
        while rest.len() > max {
            let tail = rest.split_off(max);
            out.push(Prepared {
                staged: rest,
                secret,
                now,
            });
            rest = tail;
        }
        if !rest.is_empty() {
            out.push(Prepared {
                staged: rest,
                secret,
                now,
            });
        }
        out
    }
}

/// Keys, merges and sorts a batch. The last record's attributes win within a batch, as they
/// would across batches.
pub(crate) fn stage(records: Vec<Record>, secret: &KeySecret, now: Timestamp) -> Vec<Staged> {
    let mut by_key: HashMap<IndicatorKey, usize> = HashMap::with_capacity(records.len());
    let mut out: Vec<Staged> = Vec::with_capacity(records.len());
    for record in records {
        let key = record.indicator.key(secret);
        let last = record.last_seen.unwrap_or(now).0;
        let first = record.first_seen.map(|t| t.0).unwrap_or(last).min(last);
        match by_key.get(&key) {
            Some(&at) => {
                let s = &mut out[at];
                s.first_seen = s.first_seen.min(first);
                s.last_seen = s.last_seen.max(last);
                s.hits = s.hits.saturating_add(record.hits);
                s.records += 1;
                s.explicit_first_seen |= record.first_seen.is_some();
                if s.attributes != record.attributes || s.echo != record.echo {
                    s.fp = fingerprint_of(&record.attributes, record.echo);
                    s.attributes = record.attributes;
                    s.echo = record.echo;
                }
            }
            None => {
                by_key.insert(key, out.len());
                out.push(Staged {
                    key,
                    fp: fingerprint_of(&record.attributes, record.echo),
                    echo: record.echo,
                    indicator: record.indicator,
                    attributes: record.attributes,
                    first_seen: first,
                    last_seen: last,
                    hits: record.hits,
                    records: 1,
                    explicit_first_seen: record.first_seen.is_some(),
                });
            }
        }
    }
    out.sort_unstable_by_key(|s| s.key);
    out
}

/// The facts about the writing source and the installation a batch needs.
#[derive(Debug, Clone)]
pub(crate) struct BatchContext<'a> {
    pub source_id: i64,
    pub aging_days: i64,
    pub now: Timestamp,
    pub echo: bool,
    pub policy: &'a Reconciliation,
    /// Every source: id → (name, aging days).
    pub sources: &'a HashMap<i64, (String, i64)>,
}

/// This source's stored observation of an indicator, as far as classification needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObsMeta {
    pub fp: i64,
    pub first_seen: i64,
}

/// What a batch needs to know about an existing indicator's observations.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ObsState {
    /// The writing source's observation, if it has one.
    pub mine: Option<ObsMeta>,
    /// Whether other sources have observations too.
    pub others: bool,
}

/// A full observation row.
#[derive(Debug, Clone)]
pub(crate) struct ObsRow<'a> {
    pub indicator_id: i64,
    pub source_id: i64,
    pub fp: i64,
    pub attributes: &'a Attributes,
    pub tagset: i64,
    pub echo: bool,
    pub hits: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// The stored form of an aggregate.
#[derive(Debug, Clone)]
pub(crate) struct AggRow {
    pub severity: i64,
    pub reputation: i64,
    pub safe: bool,
    pub hits: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub sources: i64,
    pub nobs: i64,
    pub expires: Option<i64>,
    pub aged_at: i64,
    pub tagset: i64,
    pub changed: i64,
}

impl AggRow {
    fn from_aggregate(agg: &Aggregate, nobs: usize, tagset: i64, changed: i64) -> AggRow {
        AggRow {
            severity: i64::from(agg.severity.code()),
            reputation: i64::from(agg.reputation.get()),
            safe: agg.safe,
            hits: agg.hits,
            first_seen: agg.first_seen.0,
            last_seen: agg.last_seen.0,
            sources: i64::from(agg.sources),
            nobs: nobs as i64,
            expires: agg.expires.map(|t| t.0),
            aged_at: agg.aged_at.0,
            tagset,
            changed,
        }
    }

    /// `last_seen / 86400`, the indexed day.
    pub fn seen_day(&self) -> i64 {
        self.last_seen.div_euclid(iocx_model::DAY)
    }
}

/// A new indicator row.
#[derive(Debug, Clone)]
pub(crate) struct NewIndicator<'a> {
    pub key: IndicatorKey,
    pub indicator: &'a Indicator,
    pub agg: AggRow,
}

/// A re-sighting to count on many rows at once: every id gets `hits` more and a `last_seen` of
/// at least `seen`. Ids are sorted.
#[derive(Debug, Clone)]
pub(crate) struct Touch {
    pub ids: Vec<i64>,
    pub hits: u64,
    pub seen: i64,
    /// For indicators: the `aged_at` the sighting implies.
    pub aged_at: i64,
}

/// What a backend reads back to recompute an aggregate.
#[derive(Debug, Clone)]
pub(crate) struct RecomputeInput {
    pub id: i64,
    pub overrides: Overrides,
    pub observations: Vec<(i64, Observation)>,
}

/// The primitive operations of one write transaction.
pub(crate) trait WriteTx {
    /// The ids of the indicators with these keys (sorted, unique). `None` means "not known to
    /// exist": a backend may answer `None` without looking when it expects new indicators, since
    /// [`WriteTx::insert_indicators`] reports the keys that did exist.
    fn resolve(&mut self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>>;
    /// The ids of indicators that exist with these keys, looked up for certain.
    fn resolve_existing(&mut self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>>;
    /// The id of a tag set, interning it when new.
    fn tagset_id(&mut self, tags: &TagSet) -> Result<i64>;
    /// Inserts new indicators; returns their ids in order, `None` for a key that already existed
    /// (nothing is written for it).
    fn insert_indicators(&mut self, rows: &[NewIndicator<'_>]) -> Result<Vec<Option<i64>>>;
    /// This source's observation of each indicator (ids sorted) and whether others have one,
    /// aligned with `ids`.
    fn observation_states(&mut self, source_id: i64, ids: &[i64]) -> Result<Vec<ObsState>>;
    /// Inserts observations.
    fn insert_observations(&mut self, rows: &[ObsRow<'_>]) -> Result<()>;
    /// Replaces the attributes of existing observations and adds their sightings.
    fn update_observations(&mut self, rows: &[ObsRow<'_>]) -> Result<()>;
    /// Counts re-sightings on this source's observations.
    fn touch_observations(&mut self, source_id: i64, touch: &Touch) -> Result<()>;
    /// Counts re-sightings on single-observation indicators.
    fn touch_indicators(&mut self, touch: &Touch) -> Result<()>;
    /// Every observation and the user's overrides of these indicators (sorted ids).
    fn load_for_recompute(&mut self, ids: &[i64]) -> Result<Vec<RecomputeInput>>;
    /// Writes recomputed aggregates.
    fn update_aggregates(&mut self, rows: &[(i64, AggRow)]) -> Result<()>;
    /// Sets the user's tags (an interned tag set) and safe verdict of indicators.
    fn set_user_marks(&mut self, rows: &[(i64, i64, Option<bool>)]) -> Result<()>;
    /// Adds to the hourly ingest counts.
    fn add_ingest_counts(
        &mut self,
        hour: i64,
        source_id: i64,
        outcome: &BatchOutcome,
    ) -> Result<()>;
}

/// Writes one staged batch through `tx`.
pub(crate) fn write_batch<T: WriteTx>(
    tx: &mut T,
    ctx: &BatchContext<'_>,
    staged: &[Staged],
) -> Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    if staged.is_empty() {
        return Ok(outcome);
    }
    let now = ctx.now.0;
    let keys: Vec<IndicatorKey> = staged.iter().map(|s| s.key).collect();
    let mut clock = PhaseClock::new();
    let resolved = tx.resolve(&keys)?;
    clock.lap("resolve");

    // Tag sets, interned once per distinct set in the batch.
    let mut tag_ids: HashMap<&TagSet, i64> = HashMap::new();
    for s in staged {
        if !tag_ids.contains_key(&s.attributes.tags) {
            let id = tx.tagset_id(&s.attributes.tags)?;
            tag_ids.insert(&s.attributes.tags, id);
        }
    }
    let tag_of = |t: &TagSet| tag_ids.get(t).copied().unwrap_or(0);

    // New indicators: their aggregate is their one observation.
    let mut new_rows = Vec::new();
    let mut new_staged = Vec::new();
    for (s, id) in staged.iter().zip(&resolved) {
        if id.is_none() {
            let observation = observation_of(s, ctx.echo);
            let one = [SourcedObservation {
                source: source_name(ctx, ctx.source_id),
                aging_days: ctx.aging_days,
                observation: &observation,
            }];
            let Some(agg) = aggregate(&one, ctx.policy, &Overrides::default()) else {
                continue;
            };
            new_rows.push(NewIndicator {
                key: s.key,
                indicator: &s.indicator,
                agg: AggRow::from_aggregate(&agg, 1, tag_of(&s.attributes.tags), now),
            });
            new_staged.push(s);
            outcome.new += 1;
            outcome.unchanged += s.records - 1;
        }
    }
    let mut new_obs = Vec::with_capacity(new_rows.len());
    let mut late: Vec<(i64, &Staged)> = Vec::new();
    if !new_rows.is_empty() {
        clock.lap("prepare");
        let ids = tx.insert_indicators(&new_rows)?;
        clock.lap("insert_indicators");
        let mut conflicts = Vec::new();
        for (s, id) in new_staged.iter().zip(ids) {
            match id {
                Some(id) => new_obs.push(obs_row(id, ctx, s, tag_of(&s.attributes.tags))),
                None => conflicts.push(*s),
            }
        }
        // Keys that existed after all (the backend did not look them up, or another writer
        // added them): count them again as records about existing indicators.
        if !conflicts.is_empty() {
            let keys: Vec<IndicatorKey> = conflicts.iter().map(|s| s.key).collect();
            for (s, id) in conflicts.into_iter().zip(tx.resolve_existing(&keys)?) {
                let Some(id) = id else {
                    return Err(crate::StoreError::Conflict(format!(
                        "indicator {} was reported to exist but cannot be found",
                        s.indicator
                    )));
                };
                outcome.new -= 1;
                outcome.unchanged -= s.records - 1;
                late.push((id, s));
            }
        }
    }

    // Existing indicators: what did this source say before?
    let mut existing: Vec<(i64, &Staged)> = staged
        .iter()
        .zip(&resolved)
        .filter_map(|(s, id)| id.map(|id| (id, s)))
        .collect();
    existing.extend(late);
    existing.sort_unstable_by_key(|(id, _)| *id);
    let ids: Vec<i64> = existing.iter().map(|(id, _)| *id).collect();
    let before = if ids.is_empty() {
        Vec::new()
    } else {
        let states = tx.observation_states(ctx.source_id, &ids)?;
        clock.lap("observation_states");
        states
    };

    let mut changed_obs = Vec::new();
    let mut recompute: Vec<i64> = Vec::new();
    let mut touches: Vec<Touch> = Vec::new();
    let mut multi: Vec<i64> = Vec::new();
    for ((id, s), state) in existing.iter().zip(before) {
        match state.mine {
            None => {
                new_obs.push(obs_row(*id, ctx, s, tag_of(&s.attributes.tags)));
                recompute.push(*id);
                outcome.updated += 1;
                outcome.unchanged += s.records - 1;
            }
            Some(meta)
                if meta.fp != s.fp || (s.explicit_first_seen && s.first_seen < meta.first_seen) =>
            {
                changed_obs.push(obs_row(*id, ctx, s, tag_of(&s.attributes.tags)));
                recompute.push(*id);
                outcome.updated += 1;
                outcome.unchanged += s.records - 1;
            }
            Some(_) => {
                if state.others {
                    multi.push(*id);
                }
                // Group plain re-sightings by what they add, so each group is one statement
                // (in a re-polled feed, all of them add one hit at the same time).
                let aged_at = s
                    .last_seen
                    .saturating_add(ctx.aging_days.saturating_mul(iocx_model::DAY));
                match touches
                    .iter_mut()
                    .find(|t| t.hits == s.hits && t.seen == s.last_seen)
                {
                    Some(t) => t.ids.push(*id),
                    None => touches.push(Touch {
                        ids: vec![*id],
                        hits: s.hits,
                        seen: s.last_seen,
                        aged_at,
                    }),
                }
                outcome.unchanged += s.records;
            }
        }
    }

    if !new_obs.is_empty() {
        clock.lap("classify");
        tx.insert_observations(&new_obs)?;
        clock.lap("insert_observations");
    }
    if !changed_obs.is_empty() {
        tx.update_observations(&changed_obs)?;
        clock.lap("update_observations");
    }
    // Plain re-sightings: count them on the observation; single-source indicators take the
    // counts directly, indicators with several sources are recomputed (their master may change).
    for touch in &touches {
        tx.touch_observations(ctx.source_id, touch)?;
        if multi.is_empty() {
            tx.touch_indicators(touch)?;
        } else {
            let single: Vec<i64> = touch
                .ids
                .iter()
                .copied()
                .filter(|id| multi.binary_search(id).is_err())
                .collect();
            if !single.is_empty() {
                tx.touch_indicators(&Touch {
                    ids: single,
                    ..touch.clone()
                })?;
            }
        }
    }
    recompute.extend(&multi);

    recompute_aggregates(tx, ctx, &mut recompute)?;

    clock.lap("touch_and_recompute");
    tx.add_ingest_counts(now.div_euclid(3600) * 3600, ctx.source_id, &outcome)?;
    clock.finish(staged.len());
    Ok(outcome)
}

/// Recomputes the aggregates of `ids` from their observations (sorting and de-duplicating
/// `ids` first): after observations changed, or when the policy or a source's aging changed.
pub(crate) fn recompute_aggregates<T: WriteTx>(
    tx: &mut T,
    ctx: &BatchContext<'_>,
    ids: &mut Vec<i64>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    let inputs = tx.load_for_recompute(ids)?;
    let mut rows = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let sourced: Vec<SourcedObservation<'_>> = input
            .observations
            .iter()
            .map(|(source_id, o)| SourcedObservation {
                source: source_name(ctx, *source_id),
                aging_days: ctx
                    .sources
                    .get(source_id)
                    .map_or(crate::types::DEFAULT_AGING_DAYS, |s| s.1),
                observation: o,
            })
            .collect();
        let Some(agg) = aggregate(&sourced, ctx.policy, &input.overrides) else {
            continue;
        };
        let tagset = tx.tagset_id(&agg.tags)?;
        rows.push((
            input.id,
            AggRow::from_aggregate(&agg, sourced.len(), tagset, ctx.now.0),
        ));
    }
    tx.update_aggregates(&rows)
}

/// Applies a user's marks to `ids` (tags added and removed, a safe verdict set or cleared) and
/// recomputes their aggregates; returns how many indicators exist among `ids`.
pub(crate) fn mark_indicators<T: WriteTx>(
    tx: &mut T,
    ctx: &BatchContext<'_>,
    ids: &mut Vec<i64>,
    marks: &crate::types::UserMarks,
) -> Result<u64> {
    ids.sort_unstable();
    ids.dedup();
    let inputs = tx.load_for_recompute(ids)?;
    let mut rows = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let tags = TagSet::from_tags(
            input
                .overrides
                .tags
                .as_slice()
                .iter()
                .filter(|t| !marks.remove_tags.contains(t))
                .chain(marks.add_tags.iter())
                .map(String::as_str),
        );
        let safe = match marks.safe {
            Some(verdict) => verdict,
            None => input.overrides.safe,
        };
        rows.push((input.id, tx.tagset_id(&tags)?, safe));
    }
    tx.set_user_marks(&rows)?;
    let mut existing: Vec<i64> = inputs.iter().map(|i| i.id).collect();
    recompute_aggregates(tx, ctx, &mut existing)?;
    Ok(existing.len() as u64)
}

fn source_name<'a>(ctx: &BatchContext<'a>, id: i64) -> &'a str {
    ctx.sources.get(&id).map_or("", |s| s.0.as_str())
}

fn observation_of(s: &Staged, echo: bool) -> Observation {
    Observation {
        attributes: s.attributes.clone(),
        first_seen: Timestamp(s.first_seen),
        last_seen: Timestamp(s.last_seen),
        hits: s.hits,
        echo: echo || s.echo,
    }
}

fn obs_row<'a>(
    indicator_id: i64,
    ctx: &BatchContext<'_>,
    s: &'a Staged,
    tagset: i64,
) -> ObsRow<'a> {
    ObsRow {
        indicator_id,
        source_id: ctx.source_id,
        fp: s.fp,
        attributes: &s.attributes,
        tagset,
        echo: ctx.echo || s.echo,
        hits: s.hits,
        first_seen: s.first_seen,
        last_seen: s.last_seen,
    }
}

/// Times the phases of a batch, logged at debug level (`--log iocx_store=debug`): where a slow
/// import spends its time.
struct PhaseClock {
    last: std::time::Instant,
    phases: Vec<(&'static str, std::time::Duration)>,
    enabled: bool,
}

impl PhaseClock {
    fn new() -> PhaseClock {
        PhaseClock {
            last: std::time::Instant::now(),
            phases: Vec::new(),
            enabled: tracing::enabled!(tracing::Level::DEBUG),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        if self.enabled {
            let now = std::time::Instant::now();
            self.phases.push((phase, now - self.last));
            self.last = now;
        }
    }

    fn finish(self, indicators: usize) {
        if self.enabled {
            let phases: Vec<String> = self
                .phases
                .iter()
                .map(|(p, d)| format!("{p}={:.1}ms", d.as_secs_f64() * 1e3))
                .collect();
            tracing::debug!(indicators, phases = %phases.join(" "), "Wrote a batch");
        }
    }
}

/// Splits sorted ids into maximal runs of consecutive integers, as `(first, last)` pairs.
pub(crate) fn consecutive_runs(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut iter = ids.iter().copied();
    let Some(first) = iter.next() else {
        return runs;
    };
    let (mut start, mut end) = (first, first);
    for id in iter {
        if id == end + 1 {
            end = id;
        } else {
            runs.push((start, end));
            start = id;
            end = id;
        }
    }
    runs.push((start, end));
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use iocx_model::Kind;

    #[test]
    fn runs_split_at_gaps() {
        assert_eq!(consecutive_runs(&[]), vec![]);
        assert_eq!(
            consecutive_runs(&[1, 2, 3, 5, 7, 8]),
            vec![(1, 3), (5, 5), (7, 8)]
        );
    }

    #[test]
    fn staging_merges_duplicates_and_sorts() {
        let secret = KeySecret([7; 16]);
        let a = Indicator::new(Kind::Domain, "a.example");
        let b = Indicator::new(Kind::Domain, "b.example");
        let mut r2 = Record::new(a.clone());
        r2.attributes.severity = iocx_model::Severity::High;
        r2.last_seen = Some(Timestamp(50));
        let staged = stage(
            vec![Record::new(a.clone()), Record::new(b), r2],
            &secret,
            Timestamp(100),
        );
        assert_eq!(staged.len(), 2);
        assert!(staged[0].key < staged[1].key);
        let merged = staged.iter().find(|s| s.indicator == a).unwrap();
        assert_eq!(
            (
                merged.records,
                merged.hits,
                merged.first_seen,
                merged.last_seen
            ),
            (2, 2, 50, 100)
        );
        assert_eq!(merged.attributes.severity, iocx_model::Severity::High);
    }
}
