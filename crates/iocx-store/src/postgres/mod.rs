//! The PostgreSQL backend, for installations that outgrow one machine: several iocx nodes share
//! one database.
//!
//! Bulk writes use binary `COPY` and array parameters (`= ANY($1)`, `unnest`) so a batch costs a
//! handful of round trips whatever its size. Ids of new indicators are drawn from the sequence
//! in one statement, so indicator and observation rows can both be copied in.

mod exchange;
mod ingest;

use std::sync::RwLock;

use iocx_model::{Indicator, KeySecret, Reconciliation, TagSet, Timestamp};
use postgres::{Client, NoTls, Row};

use crate::cache::{SourceCache, TagCache};
use crate::error::{Result, StoreError};
use crate::ingest::{BatchContext, Prepared, write_batch};
use crate::pool::Pool;
use crate::rows::{self, INDICATOR_COLUMNS, INDICATOR_COLUMNS_I, OBSERVATION_COLUMNS, RowAccess};
use crate::types::*;
use crate::{Progress, meta};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../migrations/postgres/0001_indicators.sql"),
    ),
    (
        2,
        include_str!("../../migrations/postgres/0002_exchange.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_severity_index.sql"),
    ),
    (4, include_str!("../../migrations/postgres/0004_access.sql")),
];

/// A lock id for migrations, so that nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x0069_6f63_786d_6967;

/// How often a batch is retried when another node inserted one of its indicators first.
const CONFLICT_RETRIES: usize = 5;

/// The PostgreSQL store.
pub struct PgStore {
    url_display: String,
    pool: Pool<Client>,
    secret: KeySecret,
    settings: RwLock<Settings>,
    tags: TagCache,
    sources: SourceCache,
}

/// The URL with any password replaced, for messages.
pub(crate) fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "postgres://…".to_string(),
    }
}

impl PgStore {
    /// Connects to `url` and applies pending migrations.
    ///
    /// # Errors
    /// When the server cannot be reached or holds a newer schema.
    pub fn open(url: &str) -> Result<PgStore> {
        let config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| StoreError::BadUrl {
                    url: mask_url(url),
                    reason: e.to_string(),
                })?;
        let connect = {
            let config = config.clone();
            move || -> Result<Client> {
                let mut client = config.connect(NoTls)?;
                client.batch_execute("SET TIME ZONE 'UTC'; SET application_name = 'iocx'")?;
                Ok(client)
            }
        };
        let mut first = connect().map_err(|e| StoreError::BadUrl {
            url: mask_url(url),
            reason: e.to_string(),
        })?;
        migrate(&mut first)?;
        let secret = load_secret(&mut first)?;
        let pool = Pool::new(8, connect).with_check(|c: &mut Client| !c.is_closed());
        drop(first);
        let store = PgStore {
            url_display: mask_url(url),
            pool,
            secret,
            settings: RwLock::new(Settings::default()),
            tags: TagCache::default(),
            sources: SourceCache::default(),
        };
        store.reload()?;
        Ok(store)
    }

    /// The URL, password masked.
    pub fn url(&self) -> &str {
        &self.url_display
    }

    fn reload(&self) -> Result<()> {
        let mut client = self.pool.get()?;
        let policy: Option<String> = client
            .query_opt("SELECT value FROM meta WHERE name = 'reconciliation'", &[])?
            .map(|r| r.get(0));
        let reconciliation = meta::decode_policy(policy.as_deref())?;
        if let Ok(mut s) = self.settings.write() {
            s.reconciliation = reconciliation;
        }
        self.sources.replace(read_sources(&mut client)?);
        for row in client.query("SELECT id, tags FROM tagset WHERE id <> 0", &[])? {
            self.tags.learn(row.get(0), row.get(1));
        }
        Ok(())
    }

    pub(crate) fn secret(&self) -> KeySecret {
        self.secret
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn set_reconciliation(&self, policy: &Reconciliation) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute(
            "INSERT INTO meta (name, value) VALUES ('reconciliation', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&meta::encode_policy(policy)?],
        )?;
        if let Ok(mut s) = self.settings.write() {
            s.reconciliation = policy.clone();
        }
        Ok(())
    }

    pub(crate) fn ensure_source(
        &self,
        name: &str,
        kind: SourceKind,
        aging_days: Option<i64>,
    ) -> Result<Source> {
        let mut client = self.pool.get()?;
        client.execute(
            "INSERT INTO source (name, kind, aging_days, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            &[&name, &kind.as_str(), &aging_days.unwrap_or(DEFAULT_AGING_DAYS), &Timestamp::now().0],
        )?;
        if let Some(days) = aging_days {
            client.execute(
                "UPDATE source SET aging_days = $2 WHERE name = $1 AND aging_days <> $2",
                &[&name, &days],
            )?;
        }
        let sources = read_sources(&mut client)?;
        let found = sources.iter().find(|s| s.name == name).cloned();
        self.sources.replace(sources);
        found.ok_or_else(|| StoreError::NotFound {
            what: "source",
            name: name.to_string(),
        })
    }

    pub(crate) fn sources(&self) -> Result<Vec<Source>> {
        let mut client = self.pool.get()?;
        let sources = read_sources(&mut client)?;
        self.sources.replace(sources.clone());
        Ok(sources)
    }

    pub(crate) fn ingest(
        &self,
        source: &Source,
        options: &IngestOptions,
        prepared: &Prepared,
        progress: Option<&dyn Fn(&BatchOutcome) -> Progress>,
    ) -> Result<BatchOutcome> {
        let staged = &prepared.staged;
        let settings = self.settings();
        let mut client = self.pool.get()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Another node may have added a source since we last looked.
            if !staged.is_empty() && self.sources.get(source.id).is_none() {
                self.sources.replace(read_sources(&mut client)?);
            }
            let naming = self.sources.naming();
            let ctx = BatchContext {
                source_id: source.id,
                aging_days: source.aging_days,
                now: options.now,
                echo: options.echo,
                policy: &settings.reconciliation,
                sources: &naming,
            };
            let result = (|| -> Result<(BatchOutcome, Vec<(i64, String)>)> {
                let mut tx = client.transaction()?;
                // A crash of the database server may lose the last batches, never corrupt them;
                // the checkpoint is in the same transaction, so a resumed run redoes exactly those.
                tx.batch_execute("SET LOCAL synchronous_commit = off")?;
                let (outcome, learned) = {
                    let mut w = ingest::PgTx::new(&mut tx, &self.tags);
                    let outcome = write_batch(&mut w, &ctx, staged)?;
                    (outcome, w.into_learned())
                };
                if let (Some(run_id), Some(p)) = (options.run_id, progress) {
                    save_progress(&mut tx, run_id, &p(&outcome))?;
                }
                tx.commit()?;
                Ok((outcome, learned))
            })();
            match result {
                Ok((outcome, learned)) => {
                    for (id, joined) in learned {
                        self.tags.learn(id, joined);
                    }
                    return Ok(outcome);
                }
                Err(StoreError::Postgres(e))
                    if attempt < CONFLICT_RETRIES
                        && matches!(
                            e.code(),
                            Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
                                | Some(&postgres::error::SqlState::T_R_SERIALIZATION_FAILURE)
                                | Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED)
                        ) =>
                {
                    tracing::debug!(attempt, error = %e, "Retrying a batch that raced another writer");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn tagset(&self, client: &mut Client, id: i64) -> Result<TagSet> {
        if let Some(t) = self.tags.set_of(id) {
            return Ok(t);
        }
        let row = client
            .query_opt("SELECT tags FROM tagset WHERE id = $1", &[&id])?
            .ok_or_else(|| StoreError::Corrupt {
                table: "tagset",
                detail: format!("tag set {id} is missing"),
            })?;
        let joined: String = row.get(0);
        self.tags.learn(id, joined.clone());
        Ok(TagSet::from_joined(&joined))
    }

    fn tags_for(&self, client: &mut Client, rows: &[Row], cols: &[usize]) -> Result<()> {
        for row in rows {
            for &c in cols {
                let id = row.int(c)?;
                if self.tags.set_of(id).is_none() {
                    self.tagset(client, id)?;
                }
            }
        }
        Ok(())
    }

    fn cached_tagset(&self, id: i64) -> Result<TagSet> {
        self.tags.set_of(id).ok_or_else(|| StoreError::Corrupt {
            table: "tagset",
            detail: format!("tag set {id} is missing"),
        })
    }

    pub(crate) fn lookup(
        &self,
        indicators: &[Indicator],
        with_observations: bool,
    ) -> Result<Vec<Option<IndicatorDetail>>> {
        let mut client = self.pool.get()?;
        let now = Timestamp::now();
        let stmt = client.prepare(&format!(
            "SELECT {INDICATOR_COLUMNS} FROM indicator WHERE key = $1"
        ))?;
        let obs_stmt = client.prepare(&format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id = $1 ORDER BY source_id"
        ))?;
        let mut out = Vec::with_capacity(indicators.len());
        for indicator in indicators {
            let key = indicator.key(&self.secret);
            let rows = client.query(&stmt, &[&&key.0[..]])?;
            let Some(row) = rows.first() else {
                out.push(None);
                continue;
            };
            self.tags_for(&mut client, &rows, &[12, 13])?;
            let mut detail = rows::indicator_detail(row, now, &mut |id| self.cached_tagset(id))?;
            if with_observations {
                let obs = client.query(&obs_stmt, &[&detail.id])?;
                self.tags_for(&mut client, &obs, &[10])?;
                for row in &obs {
                    let (_, source_id, observation) =
                        rows::observation(row, 0, &mut |id| self.cached_tagset(id))?;
                    detail.observations.push(SourceObservation {
                        source: self.sources.name(source_id),
                        observation,
                    });
                }
            }
            out.push(Some(detail));
        }
        Ok(out)
    }

    pub(crate) fn export(
        &self,
        filter: &ExportFilter,
        with_observations: bool,
        sink: &mut dyn FnMut(Vec<IndicatorDetail>) -> Result<bool>,
    ) -> Result<()> {
        let (clause, source_ids) = self.export_clause(filter)?;
        let now = Timestamp::now();
        let mut client = self.pool.get()?;
        let mut obs_client = if with_observations {
            Some(self.pool.get()?)
        } else {
            None
        };
        // Keyset pages: constant memory and no long-held cursor.
        let mut after = 0i64;
        let page = 1_024i64;
        loop {
            let sql = format!(
                "SELECT {INDICATOR_COLUMNS_I} FROM indicator i WHERE i.id > $1 AND {clause} ORDER BY i.id LIMIT {page}"
            );
            let rows = client.query(&sql, &[&after, &source_ids])?;
            if rows.is_empty() {
                return Ok(());
            }
            self.tags_for(&mut client, &rows, &[12, 13])?;
            let mut chunk = Vec::with_capacity(rows.len());
            for row in &rows {
                chunk.push(rows::indicator_detail(row, now, &mut |id| {
                    self.cached_tagset(id)
                })?);
            }
            let (lo, hi) = (
                chunk.first().map_or(0, |d| d.id),
                chunk.last().map_or(0, |d| d.id),
            );
            after = hi;
            if let Some(oc) = obs_client.as_mut() {
                let obs = oc.query(
                    &format!(
                        "SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id BETWEEN $1 AND $2 ORDER BY indicator_id, source_id"
                    ),
                    &[&lo, &hi],
                )?;
                self.tags_for(oc, &obs, &[10])?;
                let mut at = 0;
                for row in &obs {
                    let (iid, sid, o) =
                        rows::observation(row, 0, &mut |id| self.cached_tagset(id))?;
                    while at < chunk.len() && chunk[at].id < iid {
                        at += 1;
                    }
                    if let Some(d) = chunk.get_mut(at).filter(|d| d.id == iid) {
                        d.observations.push(SourceObservation {
                            source: self.sources.name(sid),
                            observation: o,
                        });
                    }
                }
            }
            if !sink(chunk)? {
                return Ok(());
            }
        }
    }

    fn export_clause(&self, filter: &ExportFilter) -> Result<(String, Vec<i64>)> {
        let mut clauses = vec!["1 = 1".to_string()];
        if !filter.kinds.is_empty() {
            let codes: Vec<String> = filter.kinds.iter().map(|k| k.code().to_string()).collect();
            clauses.push(format!("i.kind IN ({})", codes.join(", ")));
        }
        if let Some(at) = filter.active_at {
            clauses.push(format!(
                "i.aged_at > {0} AND (i.expires IS NULL OR i.expires > {0})",
                at.0
            ));
        }
        let mut ids = Vec::new();
        if !filter.sources.is_empty() {
            let known = self.sources()?;
            for name in &filter.sources {
                let source =
                    known
                        .iter()
                        .find(|s| &s.name == name)
                        .ok_or_else(|| StoreError::NotFound {
                            what: "source",
                            name: name.clone(),
                        })?;
                ids.push(source.id);
            }
            clauses.push(
                "EXISTS (SELECT 1 FROM observation o WHERE o.indicator_id = i.id AND o.source_id = ANY($2))".to_string(),
            );
        } else {
            // Keep $2 bound in every statement.
            clauses.push("cardinality($2::bigint[]) >= 0".to_string());
        }
        Ok((clauses.join(" AND "), ids))
    }

    pub(crate) fn stats(&self) -> Result<Stats> {
        let mut client = self.pool.get()?;
        let now = Timestamp::now().0;
        let mut stats = Stats {
            backend: "postgresql".into(),
            reconciliation: self.settings().reconciliation.to_string(),
            ..Stats::default()
        };
        for row in client.query(
            "SELECT kind, severity, count(*), count(*) FILTER (WHERE aged_at > $1 AND (expires IS NULL OR expires > $1)) \
             FROM indicator GROUP BY kind, severity",
            &[&now],
        )? {
            let n = u64::try_from(row.int(2)?).unwrap_or(0);
            stats.indicators += n;
            stats.active += u64::try_from(row.int(3)?).unwrap_or(0);
            *stats.by_kind.entry(rows::kind(row.int(0)?)?.to_string()).or_default() += n;
            *stats.by_severity.entry(rows::severity(row.int(1)?)?.to_string()).or_default() += n;
        }
        for row in client.query(
            "SELECT source_id, count(*) FROM observation GROUP BY source_id",
            &[],
        )? {
            let n = u64::try_from(row.int(1)?).unwrap_or(0);
            stats.observations += n;
            stats.by_source.insert(self.sources.name(row.int(0)?), n);
        }
        let size: i64 = client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                &[],
            )?
            .get(0);
        stats.size_bytes = u64::try_from(size).unwrap_or(0);
        Ok(stats)
    }

    // ----- runs -----

    pub(crate) fn create_run(&self, new: &NewRun) -> Result<Run> {
        let now = Timestamp::now().0;
        let mut client = self.pool.get()?;
        let id: i64 = client
            .query_one(
                "INSERT INTO run (job, source_id, subject, identity, state, observed_at, started_at, heartbeat_at, owner) \
                 VALUES ($1, $2, $3, $4, 'running', $5, $6, $6, $7) RETURNING id",
                &[&new.job, &new.source_id, &new.subject, &new.identity, &new.observed_at.0, &now, &new.owner],
            )?
            .get(0);
        read_run(&mut client, id)?.ok_or_else(|| StoreError::NotFound {
            what: "run",
            name: id.to_string(),
        })
    }

    pub(crate) fn run(&self, id: i64) -> Result<Option<Run>> {
        let mut client = self.pool.get()?;
        read_run(&mut client, id)
    }

    pub(crate) fn find_unfinished(&self, job: &str, identity: &str) -> Result<Option<Run>> {
        let mut client = self.pool.get()?;
        let id: Option<i64> = client
            .query_opt(
                "SELECT id FROM run WHERE identity = $1 AND job = $2 AND state IN ('running', 'interrupted') ORDER BY id DESC LIMIT 1",
                &[&identity, &job],
            )?
            .map(|r| r.get(0));
        match id {
            Some(id) => read_run(&mut client, id),
            None => Ok(None),
        }
    }

    pub(crate) fn claim_run(&self, id: i64, owner: &str, stale_before: Timestamp) -> Result<bool> {
        let mut client = self.pool.get()?;
        let n = client.execute(
            "UPDATE run SET owner = $2, state = 'running', heartbeat_at = $3 \
             WHERE id = $1 AND (state = 'interrupted' OR (state = 'running' AND heartbeat_at < $4))",
            &[&id, &owner, &Timestamp::now().0, &stale_before.0],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn save_progress(&self, run_id: i64, progress: &Progress) -> Result<()> {
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        save_progress(&mut tx, run_id, progress)?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn finish_run(
        &self,
        id: i64,
        state: RunState,
        counts: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute(
            "UPDATE run SET state = $2, counts = $3, error = $4, ended_at = $5, heartbeat_at = $5 WHERE id = $1",
            &[&id, &state.as_str(), &counts.to_string(), &error, &Timestamp::now().0],
        )?;
        Ok(())
    }

    pub(crate) fn runs(&self, subject: Option<&str>, limit: i64) -> Result<Vec<Run>> {
        let mut client = self.pool.get()?;
        let ids: Vec<i64> = client
            .query(
                "SELECT id FROM run WHERE ($1::text IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2",
                &[&subject, &limit],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(run) = read_run(&mut client, id)? {
                out.push(run);
            }
        }
        Ok(out)
    }

    pub(crate) fn log(&self, run_id: i64, level: &str, message: &str) -> Result<()> {
        let mut client = self.pool.get()?;
        client.execute(
            "INSERT INTO run_log (run_id, seq, at, level, message) \
             VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM run_log WHERE run_id = $1), $2, $3, $4)",
            &[&run_id, &Timestamp::now().0, &level, &message],
        )?;
        Ok(())
    }

    pub(crate) fn logs(&self, run_id: i64) -> Result<Vec<LogLine>> {
        let mut client = self.pool.get()?;
        Ok(client
            .query("SELECT run_id, seq, at, level, message FROM run_log WHERE run_id = $1 ORDER BY seq", &[&run_id])?
            .iter()
            .map(|r| LogLine { run_id: r.get(0), seq: r.get(1), at: Timestamp(r.get(2)), level: r.get(3), message: r.get(4) })
            .collect())
    }
}

fn save_progress(
    tx: &mut postgres::Transaction<'_>,
    run_id: i64,
    progress: &Progress,
) -> Result<()> {
    tx.execute(
        "UPDATE run SET checkpoint = $2, counts = $3, heartbeat_at = $4 WHERE id = $1",
        &[
            &run_id,
            &progress.checkpoint,
            &progress.counts.to_string(),
            &Timestamp::now().0,
        ],
    )?;
    Ok(())
}

fn read_sources(client: &mut Client) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for row in client.query(
        "SELECT id, name, kind, aging_days, created_at FROM source ORDER BY name",
        &[],
    )? {
        let kind: String = row.get(2);
        out.push(Source {
            id: row.get(0),
            name: row.get(1),
            kind: SourceKind::from_name(&kind).ok_or_else(|| StoreError::Corrupt {
                table: "source",
                detail: format!("unknown kind {kind:?}"),
            })?,
            aging_days: row.get(3),
            created_at: Timestamp(row.get(4)),
        });
    }
    Ok(out)
}

fn read_run(client: &mut Client, id: i64) -> Result<Option<Run>> {
    let row = client.query_opt(
        "SELECT id, job, subject, identity, state, observed_at, started_at, ended_at, heartbeat_at, owner, checkpoint, counts, error \
         FROM run WHERE id = $1",
        &[&id],
    )?;
    row.map(|r| {
        meta::run_from_parts((
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
            r.get(10),
            r.get(11),
            r.get(12),
        ))
    })
    .transpose()
}

fn load_secret(client: &mut Client) -> Result<KeySecret> {
    client.execute(
        "INSERT INTO meta (name, value) VALUES ('key_secret', $1) ON CONFLICT (name) DO NOTHING",
        &[&meta::fresh_secret_hex()],
    )?;
    let value: String = client
        .query_one("SELECT value FROM meta WHERE name = 'key_secret'", &[])?
        .get(0);
    meta::decode_secret(&value)
}

fn migrate(client: &mut Client) -> Result<()> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_at bigint NOT NULL)")?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    if version > known {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known,
        });
    }
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > version) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[v, &Timestamp::now().0],
        )?;
        tracing::info!(version = v, "Applied PostgreSQL migration");
    }
    tx.commit()?;
    Ok(())
}

/// A plain client for administrative statements (creating and dropping schemas in tests and
/// benchmarks).
pub struct AdminClient(Client);

impl AdminClient {
    /// Connects to `url`.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub fn connect(url: &str) -> Result<AdminClient> {
        Ok(AdminClient(Client::connect(url, NoTls)?))
    }

    /// Runs statements separated by `;`.
    ///
    /// # Errors
    /// On database errors.
    pub fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.batch_execute(sql)?)
    }
}
