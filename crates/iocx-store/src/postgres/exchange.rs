//! Configurations, jobs and their leases on PostgreSQL.
//!
//! Leases are taken with `FOR UPDATE SKIP LOCKED`: nodes asking at the same moment each get
//! different due jobs, never the same one, and a lease that is not renewed expires so that
//! another node takes the job over.

use std::collections::BTreeMap;

use iocx_model::Timestamp;
use postgres::Row;

use super::PgStore;
use crate::error::{Result, StoreError};
use crate::rows::RowAccess;
use crate::types::*;

const CONFIGURATION_COLUMNS: &str = "id, name, connector, enabled, params, secrets, interval_secs, aging_days, \
     override_reputation, initial_range_days, polling, verify_tls, ca_bundle, proxy, timeout_secs, source_id, \
     created_at, updated_at";

fn configuration(row: &Row) -> Result<Configuration> {
    let params: String = row.try_get(4)?;
    let params: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&params).map_err(|e| StoreError::Corrupt {
            table: "configuration",
            detail: format!("params: {e}"),
        })?;
    Ok(Configuration {
        id: row.int(0)?,
        name: row.try_get(1)?,
        connector: row.try_get(2)?,
        enabled: row.int(3)? != 0,
        params,
        secrets: row.try_get(5)?,
        platform: Platform {
            interval_secs: row.int(6)?,
            aging_days: row.int(7)?,
            override_reputation: row.opt_int(8)?.and_then(|v| u8::try_from(v).ok()),
            initial_range_days: row.int(9)?,
            polling: row.int(10)? != 0,
            verify_tls: row.int(11)? != 0,
            ca_bundle: row.try_get(12)?,
            proxy: row.try_get(13)?,
            timeout_secs: row.int(14)?,
        },
        source_id: row.int(15)?,
        created_at: Timestamp(row.int(16)?),
        updated_at: Timestamp(row.int(17)?),
    })
}

fn params_json(params: &BTreeMap<String, serde_json::Value>) -> Result<String> {
    serde_json::to_string(params).map_err(|e| StoreError::Task(format!("encoding parameters: {e}")))
}

fn b(v: bool) -> i64 {
    i64::from(v)
}

impl PgStore {
    pub(crate) fn create_configuration(&self, new: &NewConfiguration) -> Result<Configuration> {
        let now = Timestamp::now().0;
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        let sql = format!("SELECT {CONFIGURATION_COLUMNS} FROM configuration WHERE name = $1");
        if tx.query_opt(&sql, &[&new.name])?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a configuration named {:?} exists already",
                new.name
            )));
        }
        let existing = tx.query_opt(
            "SELECT id, kind FROM source WHERE name = $1 FOR UPDATE",
            &[&new.name],
        )?;
        let source_id: i64 = match existing {
            Some(row) => {
                let kind: String = row.get(1);
                if kind != SourceKind::Configuration.as_str() {
                    return Err(StoreError::Conflict(format!(
                        "{:?} already names a source of kind {kind}; choose another configuration name",
                        new.name
                    )));
                }
                let id: i64 = row.get(0);
                tx.execute("UPDATE source SET aging_days = $2 WHERE id = $1", &[&id, &new.platform.aging_days])?;
                id
            }
            None => tx
                .query_one(
                    "INSERT INTO source (name, kind, aging_days, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&new.name, &SourceKind::Configuration.as_str(), &new.platform.aging_days, &now],
                )?
                .get(0),
        };
        let p = &new.platform;
        let row = tx.query_one(
            &format!(
                "INSERT INTO configuration (name, connector, enabled, params, secrets, interval_secs, aging_days, \
                 override_reputation, initial_range_days, polling, verify_tls, ca_bundle, proxy, timeout_secs, source_id, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) \
                 RETURNING {CONFIGURATION_COLUMNS}"
            ),
            &[
                &new.name,
                &new.connector,
                &b(new.enabled),
                &params_json(&new.params)?,
                &new.secrets,
                &p.interval_secs,
                &p.aging_days,
                &p.override_reputation.map(i64::from),
                &p.initial_range_days,
                &b(p.polling),
                &b(p.verify_tls),
                &p.ca_bundle,
                &p.proxy,
                &p.timeout_secs,
                &source_id,
                &now,
            ],
        )?;
        let created = configuration(&row)?;
        tx.commit()?;
        drop(client);
        self.sources()?;
        Ok(created)
    }

    pub(crate) fn update_configuration(&self, c: &Configuration) -> Result<Configuration> {
        let now = Timestamp::now().0;
        let mut client = self.pool.get()?;
        let old: Option<i64> = client
            .query_opt(
                "SELECT aging_days FROM configuration WHERE id = $1",
                &[&c.id],
            )?
            .map(|r| r.get(0));
        let Some(old) = old else {
            return Err(StoreError::NotFound {
                what: "configuration",
                name: c.name.clone(),
            });
        };
        let p = &c.platform;
        let row = client.query_one(
            &format!(
                "UPDATE configuration SET name = $2, enabled = $3, params = $4, secrets = $5, interval_secs = $6, \
                 aging_days = $7, override_reputation = $8, initial_range_days = $9, polling = $10, verify_tls = $11, \
                 ca_bundle = $12, proxy = $13, timeout_secs = $14, updated_at = $15 WHERE id = $1 \
                 RETURNING {CONFIGURATION_COLUMNS}"
            ),
            &[
                &c.id,
                &c.name,
                &b(c.enabled),
                &params_json(&c.params)?,
                &c.secrets,
                &p.interval_secs,
                &p.aging_days,
                &p.override_reputation.map(i64::from),
                &p.initial_range_days,
                &b(p.polling),
                &b(p.verify_tls),
                &p.ca_bundle,
                &p.proxy,
                &p.timeout_secs,
                &now,
            ],
        )?;
        client.execute(
            "UPDATE source SET aging_days = $2 WHERE id = $1",
            &[&c.source_id, &p.aging_days],
        )?;
        drop(client);
        self.sources()?;
        if old != p.aging_days {
            self.recompute_source(c.source_id)?;
        }
        configuration(&row)
    }

    pub(crate) fn configuration(&self, name: &str) -> Result<Option<Configuration>> {
        let mut client = self.pool.get()?;
        let sql = format!("SELECT {CONFIGURATION_COLUMNS} FROM configuration WHERE name = $1");
        client
            .query_opt(&sql, &[&name])?
            .map(|r| configuration(&r))
            .transpose()
    }

    pub(crate) fn configurations(&self) -> Result<Vec<Configuration>> {
        let mut client = self.pool.get()?;
        let sql = format!("SELECT {CONFIGURATION_COLUMNS} FROM configuration ORDER BY name");
        client.query(&sql, &[])?.iter().map(configuration).collect()
    }

    pub(crate) fn delete_configuration(&self, name: &str) -> Result<bool> {
        let mut client = self.pool.get()?;
        client.execute(
            "DELETE FROM job WHERE name = $1",
            &[&format!("pull:{name}")],
        )?;
        Ok(client.execute("DELETE FROM configuration WHERE name = $1", &[&name])? == 1)
    }

    // ----- jobs -----

    pub(crate) fn ensure_job(&self, name: &str, next_run_at: Timestamp) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute(
            "INSERT INTO job (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &next_run_at.0],
        )?;
        Ok(())
    }

    pub(crate) fn set_job_due(&self, name: &str, next_run_at: Timestamp) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute(
            "INSERT INTO job (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET next_run_at = excluded.next_run_at",
            &[&name, &next_run_at.0],
        )?;
        Ok(())
    }

    pub(crate) fn jobs(&self) -> Result<Vec<Job>> {
        let mut client = self.pool.get()?;
        Ok(client
            .query(
                "SELECT name, next_run_at, lease_owner, lease_until FROM job ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| Job {
                name: r.get(0),
                next_run_at: Timestamp(r.get(1)),
                lease_owner: r.get(2),
                lease_until: Timestamp(r.get(3)),
            })
            .collect())
    }

    pub(crate) fn lease_due(
        &self,
        owner: &str,
        now: Timestamp,
        ttl_secs: i64,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut client = self.pool.get()?;
        Ok(client
            .query(
                "UPDATE job SET lease_owner = $1, lease_until = $3 WHERE name IN ( \
                 SELECT name FROM job WHERE next_run_at <= $2 AND lease_until < $2 \
                 ORDER BY next_run_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING name",
                &[&owner, &now.0, &(now.0 + ttl_secs), &limit],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    pub(crate) fn lease_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<bool> {
        let mut client = self.pool.get()?;
        client.execute(
            "INSERT INTO job (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &now.0],
        )?;
        let n = client.execute(
            "UPDATE job SET lease_owner = $2, lease_until = $4 WHERE name = $1 AND (lease_until < $3 OR lease_owner = $2)",
            &[&name, &owner, &now.0, &(now.0 + ttl_secs)],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn renew_lease(&self, name: &str, owner: &str, until: Timestamp) -> Result<bool> {
        let mut client = self.pool.get()?;
        let n = client.execute(
            "UPDATE job SET lease_until = $3 WHERE name = $1 AND lease_owner = $2",
            &[&name, &owner, &until.0],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn release_job(
        &self,
        name: &str,
        owner: &str,
        next_run_at: Option<Timestamp>,
    ) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute(
            "UPDATE job SET lease_owner = NULL, lease_until = 0, next_run_at = coalesce($3, next_run_at) \
             WHERE name = $1 AND lease_owner = $2",
            &[&name, &owner, &next_run_at.map(|t| t.0)],
        )?;
        Ok(())
    }

    pub(crate) fn delete_job(&self, name: &str) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute("DELETE FROM job WHERE name = $1", &[&name])?;
        Ok(())
    }

    // ----- runs of a subject -----

    pub(crate) fn last_checkpoint(&self, job: &str, subject: &str) -> Result<Option<String>> {
        let mut client = self.pool.get()?;
        Ok(client
            .query_opt(
                "SELECT checkpoint FROM run WHERE job = $1 AND subject = $2 AND checkpoint IS NOT NULL ORDER BY id DESC LIMIT 1",
                &[&job, &subject],
            )?
            .map(|r| r.get(0)))
    }

    pub(crate) fn last_success(&self, job: &str, subject: &str) -> Result<Option<Timestamp>> {
        let mut client = self.pool.get()?;
        Ok(client
            .query_opt(
                "SELECT ended_at FROM run WHERE job = $1 AND subject = $2 AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
                &[&job, &subject],
            )?
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(Timestamp))
    }

    pub(crate) fn interrupt_runs(
        &self,
        job: &str,
        subject: &str,
        except_owner: &str,
    ) -> Result<u64> {
        let mut client = self.pool.get()?;
        Ok(client.execute(
            "UPDATE run SET state = 'interrupted', ended_at = $4 \
             WHERE job = $1 AND subject = $2 AND state = 'running' AND owner <> $3",
            &[&job, &subject, &except_owner, &Timestamp::now().0],
        )?)
    }

    // ----- recomputation -----

    pub(crate) fn recompute_source(&self, source_id: i64) -> Result<u64> {
        let mut after = 0i64;
        let mut total = 0u64;
        loop {
            let done = self.with_write_tx(|tx, ctx| {
                let mut ids: Vec<i64> = tx
                    .tx()
                    .query(
                        "SELECT indicator_id FROM observation WHERE source_id = $1 AND indicator_id > $2 \
                         ORDER BY indicator_id LIMIT 10000",
                        &[&source_id, &after],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
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

    pub(crate) fn retire_unseen(&self, source_id: i64, seen_before: Timestamp) -> Result<u64> {
        let now = Timestamp::now().0;
        let mut total = 0u64;
        loop {
            let n = self.with_write_tx(|tx, ctx| {
                let mut ids: Vec<i64> = tx
                    .tx()
                    .query(
                        "UPDATE observation SET expires = $3, fp = -1 WHERE (indicator_id, source_id) IN ( \
                         SELECT indicator_id, source_id FROM observation WHERE source_id = $1 AND last_seen < $2 \
                         AND (expires IS NULL OR expires > $3) LIMIT 10000 FOR UPDATE) RETURNING indicator_id",
                        &[&source_id, &seen_before.0, &now],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
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

    /// Runs `f` in one write transaction with the ingest machinery.
    pub(crate) fn with_write_tx<T>(
        &self,
        f: impl FnOnce(&mut super::ingest::PgTx<'_, '_>, &crate::ingest::BatchContext<'_>) -> Result<T>,
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
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        let (value, tags) = {
            let mut w = super::ingest::PgTx::new(&mut tx, &self.tags);
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

impl PgStore {
    /// Runs `f` in a transaction.
    pub(crate) fn write_db<T>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        let value = f(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn read_db<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T>,
    ) -> Result<T> {
        let mut client = self.pool.get()?;
        f(&mut client)
    }
}

impl PgStore {
    /// Indicators by id, in the order asked (missing ids are left out).
    pub(crate) fn details(
        &self,
        ids: &[i64],
        with_observations: bool,
    ) -> Result<Vec<IndicatorDetail>> {
        use crate::rows::{INDICATOR_COLUMNS, OBSERVATION_COLUMNS};
        let mut client = self.pool.get()?;
        let now = Timestamp::now();
        let rows = client.query(
            &format!("SELECT {INDICATOR_COLUMNS} FROM indicator WHERE id = ANY($1)"),
            &[&ids],
        )?;
        self.tags_for(&mut client, &rows, &[12, 13])?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let d = crate::rows::indicator_detail(row, now, &mut |t| self.cached_tagset(t))?;
            found.insert(d.id, d);
        }
        if with_observations {
            let obs = client.query(
                &format!("SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id = ANY($1) ORDER BY indicator_id, source_id"),
                &[&ids],
            )?;
            self.tags_for(&mut client, &obs, &[10])?;
            for row in &obs {
                let (iid, sid, o) =
                    crate::rows::observation(row, 0, &mut |t| self.cached_tagset(t))?;
                if let Some(d) = found.get_mut(&iid) {
                    d.observations.push(SourceObservation {
                        source: self.sources.name(sid),
                        observation: o,
                    });
                }
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}
