//! Configurations, jobs and their leases on SQLite.

use std::collections::{BTreeMap, HashMap};

use iocx_model::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::types::*;

const CONFIGURATION_COLUMNS: &str = "id, name, connector, enabled, params, secrets, interval_secs, aging_days, \
     override_reputation, initial_range_days, polling, verify_tls, ca_bundle, proxy, timeout_secs, source_id, \
     created_at, updated_at";

fn configuration(row: &Row<'_>) -> Result<Configuration> {
    let params: String = row.get(4)?;
    let params: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&params).map_err(|e| StoreError::Corrupt {
            table: "configuration",
            detail: format!("params: {e}"),
        })?;
    Ok(Configuration {
        id: row.get(0)?,
        name: row.get(1)?,
        connector: row.get(2)?,
        enabled: row.get(3)?,
        params,
        secrets: row.get(5)?,
        platform: Platform {
            interval_secs: row.get(6)?,
            aging_days: row.get(7)?,
            override_reputation: row
                .get::<_, Option<i64>>(8)?
                .and_then(|v| u8::try_from(v).ok()),
            initial_range_days: row.get(9)?,
            polling: row.get(10)?,
            verify_tls: row.get(11)?,
            ca_bundle: row.get(12)?,
            proxy: row.get(13)?,
            timeout_secs: row.get(14)?,
        },
        source_id: row.get(15)?,
        created_at: Timestamp(row.get(16)?),
        updated_at: Timestamp(row.get(17)?),
    })
}

fn read_configuration(conn: &Connection, name: &str) -> Result<Option<Configuration>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONFIGURATION_COLUMNS} FROM configuration WHERE name = ?1"
    ))?;
    let mut rows = stmt.query([name])?;
    match rows.next()? {
        Some(row) => Ok(Some(configuration(row)?)),
        None => Ok(None),
    }
}

fn params_json(params: &BTreeMap<String, serde_json::Value>) -> Result<String> {
    serde_json::to_string(params).map_err(|e| StoreError::Task(format!("encoding parameters: {e}")))
}

impl SqliteStore {
    pub(crate) fn create_configuration(&self, new: &NewConfiguration) -> Result<Configuration> {
        let now = Timestamp::now().0;
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if read_configuration(&tx, &new.name)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a configuration named {:?} exists already",
                new.name
            )));
        }
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, kind FROM source WHERE name = ?1",
                [&new.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let source_id = match existing {
            Some((_, kind)) if kind != SourceKind::Configuration.as_str() => {
                return Err(StoreError::Conflict(format!(
                    "{:?} already names a source of kind {kind}; choose another configuration name",
                    new.name
                )));
            }
            Some((id, _)) => {
                tx.execute(
                    "UPDATE source SET aging_days = ?2 WHERE id = ?1",
                    params![id, new.platform.aging_days],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO source (name, kind, aging_days, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![new.name, SourceKind::Configuration.as_str(), new.platform.aging_days, now],
                )?;
                tx.last_insert_rowid()
            }
        };
        let p = &new.platform;
        tx.execute(
            &format!(
                "INSERT INTO configuration ({}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
                CONFIGURATION_COLUMNS
            ),
            params![
                new.name,
                new.connector,
                new.enabled,
                params_json(&new.params)?,
                new.secrets,
                p.interval_secs,
                p.aging_days,
                p.override_reputation.map(i64::from),
                p.initial_range_days,
                p.polling,
                p.verify_tls,
                p.ca_bundle,
                p.proxy,
                p.timeout_secs,
                source_id,
                now
            ],
        )?;
        let created = read_configuration(&tx, &new.name)?.ok_or_else(|| StoreError::NotFound {
            what: "configuration",
            name: new.name.clone(),
        })?;
        tx.commit()?;
        drop(conn);
        self.refresh_sources()?;
        Ok(created)
    }

    /// Saves every field of `c` (by id). Returns the stored configuration; when the aging
    /// criteria changed, the source's indicators are recomputed.
    pub(crate) fn update_configuration(&self, c: &Configuration) -> Result<Configuration> {
        let now = Timestamp::now().0;
        let old = {
            let conn = self.writer()?;
            let old: Option<i64> = conn
                .query_row(
                    "SELECT aging_days FROM configuration WHERE id = ?1",
                    [c.id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(old) = old else {
                return Err(StoreError::NotFound {
                    what: "configuration",
                    name: c.name.clone(),
                });
            };
            let p = &c.platform;
            conn.execute(
                "UPDATE configuration SET name = ?2, enabled = ?3, params = ?4, secrets = ?5, interval_secs = ?6, \
                 aging_days = ?7, override_reputation = ?8, initial_range_days = ?9, polling = ?10, verify_tls = ?11, \
                 ca_bundle = ?12, proxy = ?13, timeout_secs = ?14, updated_at = ?15 WHERE id = ?1",
                params![
                    c.id,
                    c.name,
                    c.enabled,
                    params_json(&c.params)?,
                    c.secrets,
                    p.interval_secs,
                    p.aging_days,
                    p.override_reputation.map(i64::from),
                    p.initial_range_days,
                    p.polling,
                    p.verify_tls,
                    p.ca_bundle,
                    p.proxy,
                    p.timeout_secs,
                    now
                ],
            )?;
            conn.execute(
                "UPDATE source SET aging_days = ?2 WHERE id = ?1",
                params![c.source_id, p.aging_days],
            )?;
            old
        };
        self.refresh_sources()?;
        if old != c.platform.aging_days {
            self.recompute_source(c.source_id)?;
        }
        let conn = self.readers.get()?;
        read_configuration(&conn, &c.name)?.ok_or_else(|| StoreError::NotFound {
            what: "configuration",
            name: c.name.clone(),
        })
    }

    pub(crate) fn configuration(&self, name: &str) -> Result<Option<Configuration>> {
        let conn = self.readers.get()?;
        read_configuration(&conn, name)
    }

    pub(crate) fn configurations(&self) -> Result<Vec<Configuration>> {
        let conn = self.readers.get()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {CONFIGURATION_COLUMNS} FROM configuration ORDER BY name"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(configuration(row)?);
        }
        Ok(out)
    }

    pub(crate) fn delete_configuration(&self, name: &str) -> Result<bool> {
        let conn = self.writer()?;
        conn.execute("DELETE FROM job WHERE name = ?1", [format!("pull:{name}")])?;
        Ok(conn.execute("DELETE FROM configuration WHERE name = ?1", [name])? == 1)
    }

    // ----- jobs -----

    pub(crate) fn ensure_job(&self, name: &str, next_run_at: Timestamp) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO job (name, next_run_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, next_run_at.0],
        )?;
        Ok(())
    }

    pub(crate) fn set_job_due(&self, name: &str, next_run_at: Timestamp) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO job (name, next_run_at) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET next_run_at = excluded.next_run_at",
            params![name, next_run_at.0],
        )?;
        Ok(())
    }

    pub(crate) fn jobs(&self) -> Result<Vec<Job>> {
        let conn = self.readers.get()?;
        let mut stmt = conn
            .prepare("SELECT name, next_run_at, lease_owner, lease_until FROM job ORDER BY name")?;
        let jobs = stmt
            .query_map([], |r| {
                Ok(Job {
                    name: r.get(0)?,
                    next_run_at: Timestamp(r.get(1)?),
                    lease_owner: r.get(2)?,
                    lease_until: Timestamp(r.get(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(jobs)
    }

    pub(crate) fn lease_due(
        &self,
        owner: &str,
        now: Timestamp,
        ttl_secs: i64,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let names: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT name FROM job WHERE next_run_at <= ?1 AND lease_until < ?1 ORDER BY next_run_at LIMIT ?2",
            )?;
            stmt.query_map(params![now.0, limit], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for name in &names {
            tx.execute(
                "UPDATE job SET lease_owner = ?2, lease_until = ?3 WHERE name = ?1",
                params![name, owner, now.0 + ttl_secs],
            )?;
        }
        tx.commit()?;
        Ok(names)
    }

    pub(crate) fn lease_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<bool> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO job (name, next_run_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, now.0],
        )?;
        let n = conn.execute(
            "UPDATE job SET lease_owner = ?2, lease_until = ?4 WHERE name = ?1 AND (lease_until < ?3 OR lease_owner = ?2)",
            params![name, owner, now.0, now.0 + ttl_secs],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn renew_lease(&self, name: &str, owner: &str, until: Timestamp) -> Result<bool> {
        let conn = self.writer()?;
        let n = conn.execute(
            "UPDATE job SET lease_until = ?3 WHERE name = ?1 AND lease_owner = ?2",
            params![name, owner, until.0],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn release_job(
        &self,
        name: &str,
        owner: &str,
        next_run_at: Option<Timestamp>,
    ) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE job SET lease_owner = NULL, lease_until = 0, next_run_at = coalesce(?3, next_run_at) \
             WHERE name = ?1 AND lease_owner = ?2",
            params![name, owner, next_run_at.map(|t| t.0)],
        )?;
        Ok(())
    }

    pub(crate) fn delete_job(&self, name: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute("DELETE FROM job WHERE name = ?1", [name])?;
        Ok(())
    }

    // ----- runs of a subject -----

    pub(crate) fn last_checkpoint(&self, job: &str, subject: &str) -> Result<Option<String>> {
        let conn = self.readers.get()?;
        Ok(conn
            .query_row(
                "SELECT checkpoint FROM run WHERE job = ?1 AND subject = ?2 AND checkpoint IS NOT NULL ORDER BY id DESC LIMIT 1",
                params![job, subject],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(crate) fn last_success(&self, job: &str, subject: &str) -> Result<Option<Timestamp>> {
        let conn = self.readers.get()?;
        Ok(conn
            .query_row(
                "SELECT ended_at FROM run WHERE job = ?1 AND subject = ?2 AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
                params![job, subject],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .map(Timestamp))
    }

    pub(crate) fn interrupt_runs(
        &self,
        job: &str,
        subject: &str,
        except_owner: &str,
    ) -> Result<u64> {
        let conn = self.writer()?;
        let n = conn.execute(
            "UPDATE run SET state = 'interrupted', ended_at = ?4 \
             WHERE job = ?1 AND subject = ?2 AND state = 'running' AND owner <> ?3",
            params![job, subject, except_owner, Timestamp::now().0],
        )?;
        Ok(n as u64)
    }
}

impl SqliteStore {
    /// Reloads the source cache from the database.
    pub(crate) fn refresh_sources(&self) -> Result<()> {
        let sources = self.sources()?;
        self.sources.replace(sources);
        Ok(())
    }

    /// Recomputes the aggregate of every indicator `source_id` reports, in chunks of 10,000 per
    /// transaction (after its aging criteria changed).
    pub(crate) fn recompute_source(&self, source_id: i64) -> Result<u64> {
        let mut after = 0i64;
        let mut total = 0u64;
        loop {
            let done = self.with_write_tx(|tx, ctx| {
                let mut ids: Vec<i64> = {
                    let mut stmt = tx.tx().prepare_cached(
                        "SELECT indicator_id FROM observation WHERE source_id = ?1 AND indicator_id > ?2 \
                         ORDER BY indicator_id LIMIT 10000",
                    )?;
                    stmt.query_map(params![source_id, after], |r| r.get(0))?.collect::<Result<_, _>>()?
                };
                let Some(&last) = ids.last() else { return Ok(None) };
                let n = ids.len() as u64;
                crate::ingest::recompute_aggregates(tx, ctx, &mut ids)?;
                Ok(Some((last, n)))
            })?;
            match done {
                Some((last, n)) => {
                    after = last;
                    total += n;
                }
                None => return Ok(total),
            }
        }
    }

    /// Applies a user's marks to indicators, 10,000 per transaction; returns how many exist.
    pub(crate) fn mark_indicators(&self, ids: &[i64], marks: &UserMarks) -> Result<u64> {
        let mut total = 0;
        for chunk in ids.chunks(10_000) {
            total += self.with_write_tx(|tx, ctx| {
                let mut ids = chunk.to_vec();
                crate::ingest::mark_indicators(tx, ctx, &mut ids, marks)
            })?;
        }
        Ok(total)
    }

    /// Retires this source's observations last seen before `seen_before` (they left a
    /// full-snapshot feed): each gets `expires = now`, and a fingerprint that makes its next
    /// sighting count as a change (restoring what the feed says then).
    pub(crate) fn retire_unseen(&self, source_id: i64, seen_before: Timestamp) -> Result<u64> {
        let now = Timestamp::now().0;
        let mut total = 0u64;
        loop {
            let n = self.with_write_tx(|tx, ctx| {
                let mut ids: Vec<i64> = {
                    let mut sel = tx.tx().prepare_cached(
                        "SELECT indicator_id FROM observation WHERE source_id = ?1 AND last_seen < ?2 \
                         AND (expires IS NULL OR expires > ?3) LIMIT 10000",
                    )?;
                    sel.query_map(params![source_id, seen_before.0, now], |r| r.get(0))?.collect::<Result<_, _>>()?
                };
                {
                    let mut upd = tx.tx().prepare_cached(
                        "UPDATE observation SET expires = ?3, fp = -1 WHERE indicator_id = ?1 AND source_id = ?2",
                    )?;
                    for id in &ids {
                        upd.execute(params![id, source_id, now])?;
                    }
                }
                let n = ids.len() as u64;
                crate::ingest::recompute_aggregates(tx, ctx, &mut ids)?;
                Ok(n)
            })?;
            total += n;
            if n < 10_000 {
                return Ok(total);
            }
        }
    }
}

impl SqliteStore {
    /// Runs `f` in one write transaction with the ingest machinery (for recomputing aggregates
    /// outside an ingest), committing when it returns `Ok`.
    pub(crate) fn with_write_tx<T>(
        &self,
        f: impl FnOnce(
            &mut super::ingest::SqliteTx<'_, '_>,
            &crate::ingest::BatchContext<'_>,
        ) -> Result<T>,
    ) -> Result<T> {
        let settings = self.settings();
        let naming = self.sources.naming();
        let ctx = crate::ingest::BatchContext {
            source_id: 0,
            aging_days: DEFAULT_AGING_DAYS,
            now: Timestamp::now(),
            echo: false,
            policy: &settings.reconciliation,
            sources: &naming,
        };
        let mut conn = self.writer()?;
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| StoreError::Task("the key cache is poisoned".into()))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (value, (tags, _)) = {
            let mut w = super::ingest::SqliteTx::new(&tx, &self.tags, &mut keys, false);
            let value = f(&mut w, &ctx)?;
            (value, w.into_learned())
        };
        tx.commit()?;
        for (id, joined) in tags {
            self.tags.learn(id, joined);
        }
        Ok(value)
    }
}

impl SqliteStore {
    /// Runs `f` in a write transaction.
    pub(crate) fn write_db<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.writer()?;
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` on a reader connection.
    pub(crate) fn read_db<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.readers.get()?;
        f(&mut conn)
    }
}

impl SqliteStore {
    /// Indicators by id, in the order asked (missing ids are left out).
    pub(crate) fn details(
        &self,
        ids: &[i64],
        with_observations: bool,
    ) -> Result<Vec<IndicatorDetail>> {
        use crate::rows::{INDICATOR_COLUMNS, OBSERVATION_COLUMNS};
        let mut conn = self.readers.get()?;
        // One read transaction for the whole list (one snapshot, one lock), and one query per
        // few hundred ids rather than two per indicator.
        let conn = conn.transaction()?;
        let now = Timestamp::now();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let mut found: HashMap<i64, IndicatorDetail> = HashMap::with_capacity(chunk.len());
            let mut stmt = conn.prepare(&format!(
                "SELECT {INDICATOR_COLUMNS} FROM indicator WHERE id IN ({list})"
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let detail =
                    crate::rows::indicator_detail(row, now, &mut |t| self.tagset(&conn, t))?;
                found.insert(detail.id, detail);
            }
            drop(rows);
            if with_observations {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id IN ({list}) \
                     ORDER BY indicator_id, source_id"
                ))?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let (indicator_id, source_id, observation) =
                        crate::rows::observation(row, 0, &mut |t| self.tagset(&conn, t))?;
                    if let Some(detail) = found.get_mut(&indicator_id) {
                        detail.observations.push(SourceObservation {
                            source: self.sources.name(source_id),
                            observation,
                        });
                    }
                }
            }
            // In the order asked; an id asked twice is answered twice.
            let mut wanted: HashMap<i64, usize> = HashMap::with_capacity(chunk.len());
            for id in chunk {
                *wanted.entry(*id).or_default() += 1;
            }
            for id in chunk {
                let Some(n) = wanted.get_mut(id) else {
                    continue;
                };
                *n -= 1;
                let detail = if *n == 0 {
                    found.remove(id)
                } else {
                    found.get(id).cloned()
                };
                out.extend(detail);
            }
        }
        Ok(out)
    }
}
