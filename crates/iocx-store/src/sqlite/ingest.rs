//! [`WriteTx`] on a SQLite transaction.

use hashbrown::HashMap;
use iocx_model::{IndicatorKey, Reputation, TagSet};
use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, Transaction, params};

use super::keys::KeyCache;
use crate::cache::TagCache;
use crate::error::Result;
use crate::ingest::{
    AggRow, NewIndicator, ObsMeta, ObsRow, ObsState, RecomputeInput, Touch, WriteTx,
    consecutive_runs,
};
use crate::rows::{self, OBSERVATION_COLUMNS};
use crate::types::BatchOutcome;

/// Ids spread no wider than this many times their count are read with one range scan.
const DENSE_FACTOR: i64 = 4;
/// Rows per multi-row `INSERT`: fewer statement executions, well under SQLite's parameter limit.
const ROWS_PER_INSERT: usize = 64;
/// A batch at least this large that finds most of its keys stored loads the key cache.
const CACHE_AFTER: usize = 5_000;

const INDICATOR_INSERT: &str = "INSERT INTO indicator (key, kind, value, severity, reputation, safe, \
     hits, first_seen, last_seen, seen_day, sources, nobs, expires, aged_at, tagset, changed) VALUES ";
const INDICATOR_PARAMS: usize = 16;
const OBSERVATION_INSERT: &str = "INSERT INTO observation (indicator_id, source_id, fp, severity, \
     reputation, safe, echo, hits, first_seen, last_seen, expires, tagset, comment, link) VALUES ";
const OBSERVATION_PARAMS: usize = 14;

/// `INSERT … VALUES (?, …), (?, …) …` for `rows` rows of `params` parameters.
fn multi_row(head: &str, rows: usize, params: usize, tail: &str) -> String {
    let one = format!("({})", vec!["?"; params].join(", "));
    format!("{head}{}{tail}", vec![one; rows].join(", "))
}

/// Tag sets interned and keys inserted by a transaction, for the caches after it commits.
pub(crate) type Learned = (Vec<(i64, String)>, Vec<(IndicatorKey, i64)>);

pub(crate) struct SqliteTx<'t, 'c> {
    tx: &'t Transaction<'c>,
    tags: &'t TagCache,
    keys: &'t mut KeyCache,
    /// Whether recent batches were mostly new indicators: then keys are not looked up before
    /// inserting (the insert finds the existing ones anyway).
    mostly_new: bool,
    /// Tag sets this transaction interned, for the cache to learn after commit.
    learned: Vec<(i64, String)>,
    /// Keys this transaction inserted, for the key cache to learn after commit.
    inserted: Vec<(IndicatorKey, i64)>,
}

impl<'t, 'c> SqliteTx<'t, 'c> {
    pub fn new(
        tx: &'t Transaction<'c>,
        tags: &'t TagCache,
        keys: &'t mut KeyCache,
        mostly_new: bool,
    ) -> Self {
        SqliteTx {
            tx,
            tags,
            keys,
            mostly_new,
            learned: Vec::new(),
            inserted: Vec::new(),
        }
    }

    /// The transaction, for statements outside the ingest primitives.
    pub fn tx(&self) -> &Transaction<'c> {
        self.tx
    }

    /// What the caches learn once the transaction has committed.
    pub fn into_learned(self) -> Learned {
        (self.learned, self.inserted)
    }

    fn probe(&self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT id FROM indicator WHERE key = ?1")?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(
                stmt.query_row([&key.0[..]], |r| r.get::<_, i64>(0))
                    .optional()?,
            );
        }
        Ok(out)
    }

    fn tagset(&mut self, id: i64) -> Result<TagSet> {
        if let Some(t) = self.tags.set_of(id) {
            return Ok(t);
        }
        if let Some((_, joined)) = self.learned.iter().find(|(i, _)| *i == id) {
            return Ok(TagSet::from_joined(joined));
        }
        let joined: String =
            self.tx
                .query_row("SELECT tags FROM tagset WHERE id = ?1", [id], |r| r.get(0))?;
        Ok(TagSet::from_joined(&joined))
    }
}

fn rep(r: Option<Reputation>) -> Option<i64> {
    r.map(|r| i64::from(r.get()))
}

fn hits(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl WriteTx for SqliteTx<'_, '_> {
    fn resolve(&mut self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>> {
        if self.keys.loaded() {
            return Ok(self.keys.lookup(keys));
        }
        if self.mostly_new {
            return Ok(vec![None; keys.len()]);
        }
        let found = self.probe(keys)?;
        let hits = found.iter().filter(|f| f.is_some()).count();
        if keys.len() >= CACHE_AFTER && hits * 2 >= keys.len() {
            // A large feed seen before: the rest of it resolves from memory.
            self.keys.load(self.tx)?;
        }
        Ok(found)
    }

    fn resolve_existing(&mut self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>> {
        self.probe(keys)
    }

    fn tagset_id(&mut self, tags: &TagSet) -> Result<i64> {
        let joined = tags.joined();
        if let Some(id) = self.tags.id_of(&joined) {
            return Ok(id);
        }
        if let Some((id, _)) = self.learned.iter().find(|(_, j)| *j == joined) {
            return Ok(*id);
        }
        let existing: Option<i64> = self
            .tx
            .query_row("SELECT id FROM tagset WHERE tags = ?1", [&joined], |r| {
                r.get(0)
            })
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                self.tx
                    .execute("INSERT INTO tagset (tags) VALUES (?1)", [&joined])?;
                let id = self.tx.last_insert_rowid();
                let mut member = self.tx.prepare_cached(
                    "INSERT OR IGNORE INTO tagset_member (tag, tagset_id) VALUES (?1, ?2)",
                )?;
                for tag in tags.as_slice() {
                    member.execute(params![tag, id])?;
                }
                id
            }
        };
        self.learned.push((id, joined));
        Ok(id)
    }

    fn insert_indicators(&mut self, rows: &[NewIndicator<'_>]) -> Result<Vec<Option<i64>>> {
        let tail = " ON CONFLICT (key) DO NOTHING RETURNING key, id";
        let mut out = Vec::with_capacity(rows.len());
        let mut returned: HashMap<[u8; 16], i64> = HashMap::with_capacity(ROWS_PER_INSERT);
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = if chunk.len() == ROWS_PER_INSERT {
                multi_row(INDICATOR_INSERT, ROWS_PER_INSERT, INDICATOR_PARAMS, tail)
            } else {
                multi_row(INDICATOR_INSERT, 1, INDICATOR_PARAMS, tail)
            };
            let pieces: Vec<&[NewIndicator<'_>]> = if chunk.len() == ROWS_PER_INSERT {
                vec![chunk]
            } else {
                chunk.chunks(1).collect()
            };
            let mut stmt = self.tx.prepare_cached(&sql)?;
            for piece in pieces {
                let mut at = 0;
                for r in piece {
                    let a = &r.agg;
                    let values: [&dyn ToSql; INDICATOR_PARAMS] = [
                        &&r.key.0[..],
                        &r.indicator.kind.code(),
                        &r.indicator.value,
                        &a.severity,
                        &a.reputation,
                        &a.safe,
                        &hits(a.hits),
                        &a.first_seen,
                        &a.last_seen,
                        &a.seen_day(),
                        &a.sources,
                        &a.nobs,
                        &a.expires,
                        &a.aged_at,
                        &a.tagset,
                        &a.changed,
                    ];
                    for v in values {
                        at += 1;
                        stmt.raw_bind_parameter(at, v)?;
                    }
                }
                returned.clear();
                let mut result = stmt.raw_query();
                while let Some(row) = result.next()? {
                    let key = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                    if let Ok(key) = <[u8; 16]>::try_from(key) {
                        returned.insert(key, row.get(1)?);
                    }
                }
                for r in piece {
                    let id = returned.get(&r.key.0).copied();
                    if let Some(id) = id {
                        self.inserted.push((r.key, id));
                    }
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    fn observation_states(&mut self, source_id: i64, ids: &[i64]) -> Result<Vec<ObsState>> {
        let (Some(&lo), Some(&hi)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        let mut out = vec![ObsState::default(); ids.len()];
        let mut note = |at: usize, sid: i64, fp: i64, first_seen: i64| {
            if sid == source_id {
                out[at].mine = Some(ObsMeta { fp, first_seen });
            } else {
                out[at].others = true;
            }
        };
        if hi - lo < DENSE_FACTOR * ids.len() as i64 {
            let mut stmt = self.tx.prepare_cached(
                "SELECT indicator_id, source_id, fp, first_seen FROM observation WHERE indicator_id BETWEEN ?1 AND ?2",
            )?;
            let mut rows = stmt.query(params![lo, hi])?;
            let mut at = 0;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                while at < ids.len() && ids[at] < id {
                    at += 1;
                }
                if at < ids.len() && ids[at] == id {
                    note(at, row.get(1)?, row.get(2)?, row.get(3)?);
                }
            }
        } else {
            let mut stmt = self.tx.prepare_cached(
                "SELECT source_id, fp, first_seen FROM observation WHERE indicator_id = ?1",
            )?;
            for (at, id) in ids.iter().enumerate() {
                let mut rows = stmt.query([id])?;
                while let Some(row) = rows.next()? {
                    note(at, row.get(0)?, row.get(1)?, row.get(2)?);
                }
            }
        }
        Ok(out)
    }

    fn insert_observations(&mut self, rows: &[ObsRow<'_>]) -> Result<()> {
        let many = multi_row(OBSERVATION_INSERT, ROWS_PER_INSERT, OBSERVATION_PARAMS, "");
        let one = multi_row(OBSERVATION_INSERT, 1, OBSERVATION_PARAMS, "");
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut stmt = self.tx.prepare_cached(if chunk.len() == ROWS_PER_INSERT {
                &many
            } else {
                &one
            })?;
            let pieces: Vec<&[ObsRow<'_>]> = if chunk.len() == ROWS_PER_INSERT {
                vec![chunk]
            } else {
                chunk.chunks(1).collect()
            };
            for piece in pieces {
                let mut at = 0;
                for r in piece {
                    let a = r.attributes;
                    let values: [&dyn ToSql; OBSERVATION_PARAMS] = [
                        &r.indicator_id,
                        &r.source_id,
                        &r.fp,
                        &a.severity.code(),
                        &rep(a.reputation),
                        &a.safe,
                        &r.echo,
                        &hits(r.hits),
                        &r.first_seen,
                        &r.last_seen,
                        &a.expires.map(|t| t.0),
                        &r.tagset,
                        &a.comment,
                        &a.link,
                    ];
                    for v in values {
                        at += 1;
                        stmt.raw_bind_parameter(at, v)?;
                    }
                }
                stmt.raw_execute()?;
            }
        }
        Ok(())
    }

    fn update_observations(&mut self, rows: &[ObsRow<'_>]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE observation SET fp = ?3, severity = ?4, reputation = ?5, safe = ?6, echo = ?7, hits = hits + ?8, \
             first_seen = min(first_seen, ?9), last_seen = max(last_seen, ?10), expires = ?11, tagset = ?12, \
             comment = ?13, link = ?14 WHERE indicator_id = ?1 AND source_id = ?2",
        )?;
        for r in rows {
            let a = r.attributes;
            stmt.execute(params![
                r.indicator_id,
                r.source_id,
                r.fp,
                a.severity.code(),
                rep(a.reputation),
                a.safe,
                r.echo,
                hits(r.hits),
                r.first_seen,
                r.last_seen,
                a.expires.map(|t| t.0),
                r.tagset,
                a.comment,
                a.link
            ])?;
        }
        Ok(())
    }

    fn touch_observations(&mut self, source_id: i64, touch: &Touch) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE observation SET last_seen = max(last_seen, ?4), hits = hits + ?5 \
             WHERE indicator_id BETWEEN ?1 AND ?2 AND source_id = ?3",
        )?;
        for (lo, hi) in consecutive_runs(&touch.ids) {
            stmt.execute(params![lo, hi, source_id, touch.seen, hits(touch.hits)])?;
        }
        Ok(())
    }

    fn touch_indicators(&mut self, touch: &Touch) -> Result<()> {
        let day = touch.seen.div_euclid(iocx_model::DAY);
        // Two statements so that the common case (already seen today) leaves the indexed
        // `seen_day` column out of the SET list and SQLite does not touch its index.
        let mut same_day = self.tx.prepare_cached(
            "UPDATE indicator SET last_seen = max(last_seen, ?3), hits = hits + ?4, aged_at = max(aged_at, ?5) \
             WHERE id BETWEEN ?1 AND ?2 AND nobs = 1 AND seen_day >= ?6",
        )?;
        let mut new_day = self.tx.prepare_cached(
            "UPDATE indicator SET last_seen = max(last_seen, ?3), hits = hits + ?4, aged_at = max(aged_at, ?5), seen_day = ?6 \
             WHERE id BETWEEN ?1 AND ?2 AND nobs = 1 AND seen_day < ?6",
        )?;
        for (lo, hi) in consecutive_runs(&touch.ids) {
            let args = params![lo, hi, touch.seen, hits(touch.hits), touch.aged_at, day];
            let changed = same_day.execute(args)?;
            // Only rows last seen on an earlier day are left for the second statement.
            if changed as i64 != hi - lo + 1 {
                new_day.execute(args)?;
            }
        }
        Ok(())
    }

    fn load_for_recompute(&mut self, ids: &[i64]) -> Result<Vec<RecomputeInput>> {
        let mut ind = self
            .tx
            .prepare_cached("SELECT user_tagset, user_safe FROM indicator WHERE id = ?1")?;
        let mut obs = self.tx.prepare_cached(&format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id = ?1"
        ))?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            // Ids that do not exist (a user's stale selection) are skipped.
            let Some((user_tagset, user_safe)) = ind
                .query_row([id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                })
                .optional()?
            else {
                continue;
            };
            let overrides = iocx_model::Overrides {
                tags: self.tagset(user_tagset)?,
                safe: user_safe.map(|v| v != 0),
            };
            let mut observations = Vec::new();
            let mut rows = obs.query([id])?;
            while let Some(row) = rows.next()? {
                let tag_id: i64 = row.get(10)?;
                let tags = self.tagset(tag_id)?;
                let (_, source_id, o) = rows::observation(row, 0, &mut |_| Ok(tags.clone()))?;
                observations.push((source_id, o));
            }
            out.push(RecomputeInput {
                id,
                overrides,
                observations,
            });
        }
        Ok(out)
    }

    fn set_user_marks(&mut self, rows: &[(i64, i64, Option<bool>)]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE indicator SET user_tagset = ?2, user_safe = ?3 WHERE id = ?1",
        )?;
        for (id, tagset, safe) in rows {
            stmt.execute(params![id, tagset, safe.map(i64::from)])?;
        }
        Ok(())
    }

    fn update_aggregates(&mut self, rows: &[(i64, AggRow)]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE indicator SET severity = ?2, reputation = ?3, safe = ?4, hits = ?5, first_seen = ?6, last_seen = ?7, \
             seen_day = ?8, sources = ?9, nobs = ?10, expires = ?11, aged_at = ?12, tagset = ?13, changed = ?14 WHERE id = ?1",
        )?;
        for (id, a) in rows {
            stmt.execute(params![
                id,
                a.severity,
                a.reputation,
                a.safe,
                hits(a.hits),
                a.first_seen,
                a.last_seen,
                a.seen_day(),
                a.sources,
                a.nobs,
                a.expires,
                a.aged_at,
                a.tagset,
                a.changed
            ])?;
        }
        Ok(())
    }

    fn add_ingest_counts(&mut self, hour: i64, source_id: i64, o: &BatchOutcome) -> Result<()> {
        self.tx.execute(
            "INSERT INTO ingest_hour (hour, source_id, new, updated, unchanged) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (hour, source_id) DO UPDATE SET new = new + excluded.new, updated = updated + excluded.updated, \
             unchanged = unchanged + excluded.unchanged",
            params![hour, source_id, hits(o.new), hits(o.updated), hits(o.unchanged)],
        )?;
        Ok(())
    }
}
