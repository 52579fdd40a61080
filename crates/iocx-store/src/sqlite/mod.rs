//! The embedded SQLite backend: one database file in WAL mode, one writer, pooled readers.

mod exchange;
mod ingest;
mod keys;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use iocx_model::{Indicator, KeySecret, Reconciliation, TagSet, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::cache::{SourceCache, TagCache};
use crate::error::{Result, StoreError};
use crate::ingest::{BatchContext, Prepared, write_batch};
use crate::pool::Pool;
use crate::rows::{self, INDICATOR_COLUMNS, INDICATOR_COLUMNS_I, OBSERVATION_COLUMNS};
use crate::types::*;
use crate::{Progress, meta};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../migrations/sqlite/0001_indicators.sql"),
    ),
    (2, include_str!("../../migrations/sqlite/0002_exchange.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_severity_index.sql"),
    ),
    (4, include_str!("../../migrations/sqlite/0004_access.sql")),
];

/// Page cache of the writer connection (KiB, negative as SQLite wants it): big enough to hold
/// the hot part of the key index of a ten-million-indicator store.
const WRITER_CACHE_KIB: i64 = 256 * 1024;
const READER_CACHE_KIB: i64 = 32 * 1024;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Pool<Connection>,
    secret: KeySecret,
    settings: RwLock<Settings>,
    tags: TagCache,
    sources: SourceCache,
    keys: Mutex<keys::KeyCache>,
    /// Whether the last batch was mostly new indicators (see `SqliteTx::resolve`).
    mostly_new: AtomicBool,
}

fn configure(conn: &Connection, cache_kib: i64) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    // WAL: readers never block the writer; synchronous=NORMAL: a process crash (even SIGKILL)
    // loses nothing committed, only a power cut can lose the last transactions.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Checkpoint less often than the default 1,000 pages: bulk loads dirty many pages per
    // commit, and each checkpoint copies them back.
    conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
    Ok(())
}

fn open_connection(path: &Path, cache_kib: i64) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn, cache_kib)?;
    register_rule_functions(&conn)?;
    Ok(conn)
}

/// The functions compiled rules call on SQLite (`iocx_model::rule::sqlite_functions`),
/// implemented by the same code as the in-memory evaluation so both always agree.
fn register_rule_functions(conn: &Connection) -> Result<()> {
    use iocx_model::rule::{FnArg, FnResult, sqlite_functions};
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value, ValueRef};
    for f in sqlite_functions() {
        let mut flags = FunctionFlags::SQLITE_UTF8;
        if f.deterministic {
            flags |= FunctionFlags::SQLITE_DETERMINISTIC;
        }
        let call = f.call;
        let n_args = i32::try_from(f.n_args).unwrap_or(-1);
        conn.create_scalar_function(f.name, n_args, flags, move |ctx| {
            // No allocation per row: the functions take at most a few arguments.
            let mut args = [FnArg::Null; 4];
            let n = ctx.len().min(args.len());
            for (i, arg) in args.iter_mut().enumerate().take(n) {
                *arg = match ctx.get_raw(i) {
                    ValueRef::Null => FnArg::Null,
                    ValueRef::Integer(n) => FnArg::Int(n),
                    ValueRef::Real(x) => FnArg::Real(x),
                    ValueRef::Text(t) => FnArg::Text(
                        std::str::from_utf8(t)
                            .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?,
                    ),
                    ValueRef::Blob(b) => FnArg::Blob(b),
                };
            }
            match call(&args[..n]) {
                FnResult::Null => Ok(Value::Null),
                FnResult::Int(n) => Ok(Value::Integer(n)),
                FnResult::Text(t) => Ok(Value::Text(t)),
                FnResult::Error(message) => Err(rusqlite::Error::UserFunctionError(message.into())),
            }
        })?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating when absent) the database at `path` and applies pending migrations.
    ///
    /// # Errors
    /// When the file cannot be opened or holds a newer schema.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut writer = open_connection(path, WRITER_CACHE_KIB)?;
        migrate(&mut writer)?;
        let secret = load_secret(&writer)?;
        let reader_path = path.to_path_buf();
        let store = SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Pool::new(4, move || open_connection(&reader_path, READER_CACHE_KIB)),
            secret,
            settings: RwLock::new(Settings::default()),
            tags: TagCache::default(),
            sources: SourceCache::default(),
            keys: Mutex::new(keys::KeyCache::default()),
            mostly_new: AtomicBool::new(false),
        };
        store.reload()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer
            .lock()
            .map_err(|_| StoreError::Task("the writer connection is poisoned".into()))
    }

    /// Re-reads settings, sources and tag sets from the database.
    fn reload(&self) -> Result<()> {
        let conn = self.readers.get()?;
        let policy = conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'reconciliation'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        let reconciliation = meta::decode_policy(policy.as_deref())?;
        if let Ok(mut s) = self.settings.write() {
            s.reconciliation = reconciliation;
        }
        self.sources.replace(read_sources(&conn)?);
        let mut stmt = conn.prepare("SELECT id, tags FROM tagset WHERE id <> 0")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            self.tags.learn(row.get(0)?, row.get(1)?);
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
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('reconciliation', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [meta::encode_policy(policy)?],
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
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO source (name, kind, aging_days, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
            params![name, kind.as_str(), aging_days.unwrap_or(DEFAULT_AGING_DAYS), Timestamp::now().0],
        )?;
        if let Some(days) = aging_days {
            conn.execute(
                "UPDATE source SET aging_days = ?2 WHERE name = ?1 AND aging_days <> ?2",
                params![name, days],
            )?;
        }
        let sources = read_sources(&conn)?;
        drop(conn);
        let found = sources.iter().find(|s| s.name == name).cloned();
        self.sources.replace(sources);
        found.ok_or_else(|| StoreError::NotFound {
            what: "source",
            name: name.to_string(),
        })
    }

    pub(crate) fn sources(&self) -> Result<Vec<Source>> {
        let conn = self.readers.get()?;
        read_sources(&conn)
    }

    pub(crate) fn ingest(
        &self,
        source: &Source,
        options: &IngestOptions,
        prepared: &Prepared,
        progress: Option<&dyn Fn(&BatchOutcome) -> Progress>,
    ) -> Result<BatchOutcome> {
        let settings = self.settings();
        let naming = self.sources.naming();
        let ctx = BatchContext {
            source_id: source.id,
            aging_days: source.aging_days,
            now: options.now,
            echo: options.echo,
            policy: &settings.reconciliation,
            sources: &naming,
        };
        let mut conn = self.writer()?;
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| StoreError::Task("the key cache is poisoned".into()))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let result = (|| {
            let mut w = ingest::SqliteTx::new(
                &tx,
                &self.tags,
                &mut keys,
                self.mostly_new.load(Ordering::Relaxed),
            );
            let outcome = write_batch(&mut w, &ctx, &prepared.staged)?;
            if let (Some(run_id), Some(p)) = (options.run_id, progress) {
                save_progress(&tx, run_id, &p(&outcome))?;
            }
            Ok::<_, StoreError>((outcome, w.into_learned()))
        })();
        let (outcome, (tags, inserted)) = match result {
            Ok(r) => r,
            Err(e) => {
                // Whatever the cache loaded inside the failed transaction is still valid (it was
                // read, not written), but keys inserted there never existed.
                return Err(e);
            }
        };
        tx.commit()?;
        keys.learn(&inserted);
        drop(keys);
        for (id, joined) in tags {
            self.tags.learn(id, joined);
        }
        let total = outcome.total().max(1);
        self.mostly_new
            .store(outcome.new * 2 > total, Ordering::Relaxed);
        Ok(outcome)
    }

    fn tagset(&self, conn: &Connection, id: i64) -> Result<TagSet> {
        if let Some(t) = self.tags.set_of(id) {
            return Ok(t);
        }
        let joined: String = conn
            .query_row("SELECT tags FROM tagset WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt {
                table: "tagset",
                detail: format!("tag set {id} is missing"),
            })?;
        self.tags.learn(id, joined.clone());
        Ok(TagSet::from_joined(&joined))
    }

    pub(crate) fn lookup(
        &self,
        indicators: &[Indicator],
        with_observations: bool,
    ) -> Result<Vec<Option<IndicatorDetail>>> {
        let conn = self.readers.get()?;
        let now = Timestamp::now();
        let mut by_key = conn.prepare_cached(&format!(
            "SELECT {INDICATOR_COLUMNS} FROM indicator WHERE key = ?1"
        ))?;
        let mut obs = conn.prepare_cached(&format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id = ?1 ORDER BY source_id"
        ))?;
        let mut out = Vec::with_capacity(indicators.len());
        for indicator in indicators {
            let key = indicator.key(&self.secret);
            let mut rows = by_key.query([&key.0[..]])?;
            let Some(row) = rows.next()? else {
                out.push(None);
                continue;
            };
            let mut detail = rows::indicator_detail(row, now, &mut |id| self.tagset(&conn, id))?;
            drop(rows);
            if with_observations {
                let mut rows = obs.query([detail.id])?;
                while let Some(row) = rows.next()? {
                    let (_, source_id, observation) =
                        rows::observation(row, 0, &mut |id| self.tagset(&conn, id))?;
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
        let conn = self.readers.get()?;
        let (clause, source_ids) = self.export_clause(filter)?;
        let now = Timestamp::now();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INDICATOR_COLUMNS_I} FROM indicator i WHERE {clause} ORDER BY i.id"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(source_ids.iter()))?;
        // Observations are read in their primary-key order alongside the indicators (a merge
        // join), so an export streams both tables once and holds one chunk in memory.
        let obs_conn = if with_observations {
            Some(self.readers.get()?)
        } else {
            None
        };
        let mut obs_stmt = match &obs_conn {
            Some(c) => Some(c.prepare(&format!(
                "SELECT {OBSERVATION_COLUMNS} FROM observation ORDER BY indicator_id, source_id"
            ))?),
            None => None,
        };
        let mut obs_rows = match obs_stmt.as_mut() {
            Some(s) => Some(s.query([])?),
            None => None,
        };
        let mut pending: Option<(i64, i64, iocx_model::Observation)> = None;
        let mut chunk = Vec::with_capacity(1024);
        while let Some(row) = rows.next()? {
            let mut detail = rows::indicator_detail(row, now, &mut |id| self.tagset(&conn, id))?;
            if let Some(obs_rows) = obs_rows.as_mut() {
                loop {
                    if pending.is_none() {
                        match obs_rows.next()? {
                            Some(r) => {
                                pending =
                                    Some(rows::observation(r, 0, &mut |id| self.tagset(&conn, id))?)
                            }
                            None => break,
                        }
                    }
                    match pending.take() {
                        Some((iid, sid, o)) if iid == detail.id => {
                            detail.observations.push(SourceObservation {
                                source: self.sources.name(sid),
                                observation: o,
                            });
                        }
                        Some(p) if p.0 < detail.id => {}
                        other => {
                            pending = other;
                            break;
                        }
                    }
                }
            }
            chunk.push(detail);
            if chunk.len() == chunk.capacity()
                && !sink(std::mem::replace(&mut chunk, Vec::with_capacity(1024)))?
            {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            sink(chunk)?;
        }
        Ok(())
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
            let marks: Vec<String> = (1..=ids.len()).map(|n| format!("?{n}")).collect();
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM observation o WHERE o.indicator_id = i.id AND o.source_id IN ({}))",
                marks.join(", ")
            ));
        }
        Ok((clauses.join(" AND "), ids))
    }

    pub(crate) fn stats(&self) -> Result<Stats> {
        let conn = self.readers.get()?;
        let now = Timestamp::now().0;
        let mut stats = Stats {
            backend: "sqlite".into(),
            reconciliation: self.settings().reconciliation.to_string(),
            ..Stats::default()
        };
        let mut stmt = conn.prepare(
            "SELECT kind, severity, count(*), sum(aged_at > ?1 AND (expires IS NULL OR expires > ?1)) FROM indicator GROUP BY kind, severity",
        )?;
        let mut rows = stmt.query([now])?;
        while let Some(row) = rows.next()? {
            let (kind, severity, n, active): (i64, i64, i64, i64) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            let n = u64::try_from(n).unwrap_or(0);
            stats.indicators += n;
            stats.active += u64::try_from(active).unwrap_or(0);
            *stats
                .by_kind
                .entry(rows::kind(kind)?.to_string())
                .or_default() += n;
            *stats
                .by_severity
                .entry(rows::severity(severity)?.to_string())
                .or_default() += n;
        }
        let mut stmt =
            conn.prepare("SELECT source_id, count(*) FROM observation GROUP BY source_id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let n = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
            stats.observations += n;
            stats.by_source.insert(self.sources.name(row.get(0)?), n);
        }
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let wal = std::fs::metadata(format!("{}-wal", self.path.display()))
            .map(|m| m.len())
            .unwrap_or(0);
        stats.size_bytes = u64::try_from(pages * page_size).unwrap_or(0) + wal;
        Ok(stats)
    }

    /// Copies the WAL back into the database file and truncates it (used before measuring size).
    pub(crate) fn checkpoint(&self) -> Result<()> {
        let conn = self.writer()?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    // ----- runs -----

    pub(crate) fn create_run(&self, new: &NewRun) -> Result<Run> {
        let now = Timestamp::now().0;
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO run (job, source_id, subject, identity, state, observed_at, started_at, heartbeat_at, owner) \
             VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?6, ?7)",
            params![new.job, new.source_id, new.subject, new.identity, new.observed_at.0, now, new.owner],
        )?;
        let id = conn.last_insert_rowid();
        read_run(&conn, id)?.ok_or_else(|| StoreError::NotFound {
            what: "run",
            name: id.to_string(),
        })
    }

    pub(crate) fn run(&self, id: i64) -> Result<Option<Run>> {
        let conn = self.readers.get()?;
        read_run(&conn, id)
    }

    pub(crate) fn find_unfinished(&self, job: &str, identity: &str) -> Result<Option<Run>> {
        let conn = self.readers.get()?;
        let id: Option<i64> = conn
            .query_row(
                "SELECT id FROM run WHERE identity = ?1 AND job = ?2 AND state IN ('running', 'interrupted') ORDER BY id DESC LIMIT 1",
                params![identity, job],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => read_run(&conn, id),
            None => Ok(None),
        }
    }

    pub(crate) fn claim_run(&self, id: i64, owner: &str, stale_before: Timestamp) -> Result<bool> {
        let conn = self.writer()?;
        let n = conn.execute(
            "UPDATE run SET owner = ?2, state = 'running', heartbeat_at = ?3 \
             WHERE id = ?1 AND (state = 'interrupted' OR (state = 'running' AND heartbeat_at < ?4))",
            params![id, owner, Timestamp::now().0, stale_before.0],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn save_progress(&self, run_id: i64, progress: &Progress) -> Result<()> {
        let conn = self.writer()?;
        save_progress(&conn, run_id, progress)
    }

    pub(crate) fn finish_run(
        &self,
        id: i64,
        state: RunState,
        counts: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        let conn = self.writer()?;
        let now = Timestamp::now().0;
        conn.execute(
            "UPDATE run SET state = ?2, counts = ?3, error = ?4, ended_at = ?5, heartbeat_at = ?5 WHERE id = ?1",
            params![id, state.as_str(), counts.to_string(), error, now],
        )?;
        Ok(())
    }

    pub(crate) fn runs(&self, subject: Option<&str>, limit: i64) -> Result<Vec<Run>> {
        let conn = self.readers.get()?;
        let mut stmt = conn.prepare(
            "SELECT id FROM run WHERE (?1 IS NULL OR subject = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let ids: Vec<i64> = stmt
            .query_map(params![subject, limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(run) = read_run(&conn, id)? {
                out.push(run);
            }
        }
        Ok(out)
    }

    pub(crate) fn log(&self, run_id: i64, level: &str, message: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO run_log (run_id, seq, at, level, message) \
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM run_log WHERE run_id = ?1), ?2, ?3, ?4)",
            params![run_id, Timestamp::now().0, level, message],
        )?;
        Ok(())
    }

    pub(crate) fn logs(&self, run_id: i64) -> Result<Vec<LogLine>> {
        let conn = self.readers.get()?;
        let mut stmt = conn.prepare(
            "SELECT run_id, seq, at, level, message FROM run_log WHERE run_id = ?1 ORDER BY seq",
        )?;
        let lines = stmt
            .query_map([run_id], |r| {
                Ok(LogLine {
                    run_id: r.get(0)?,
                    seq: r.get(1)?,
                    at: Timestamp(r.get(2)?),
                    level: r.get(3)?,
                    message: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(lines)
    }
}

fn save_progress(conn: &Connection, run_id: i64, progress: &Progress) -> Result<()> {
    conn.execute(
        "UPDATE run SET checkpoint = ?2, counts = ?3, heartbeat_at = ?4 WHERE id = ?1",
        params![
            run_id,
            progress.checkpoint,
            progress.counts.to_string(),
            Timestamp::now().0
        ],
    )?;
    Ok(())
}

fn read_sources(conn: &Connection) -> Result<Vec<Source>> {
    let mut stmt =
        conn.prepare("SELECT id, name, kind, aging_days, created_at FROM source ORDER BY name")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let kind: String = row.get(2)?;
        out.push(Source {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: SourceKind::from_name(&kind).ok_or_else(|| StoreError::Corrupt {
                table: "source",
                detail: format!("unknown kind {kind:?}"),
            })?,
            aging_days: row.get(3)?,
            created_at: Timestamp(row.get(4)?),
        });
    }
    Ok(out)
}

fn read_run(conn: &Connection, id: i64) -> Result<Option<Run>> {
    let row = conn
        .query_row(
            "SELECT id, job, subject, identity, state, observed_at, started_at, ended_at, heartbeat_at, owner, checkpoint, counts, error \
             FROM run WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, Option<String>>(12)?,
                ))
            },
        )
        .optional()?;
    row.map(meta::run_from_parts).transpose()
}

fn load_secret(conn: &Connection) -> Result<KeySecret> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'key_secret'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let hex_secret = match existing {
        Some(v) => v,
        None => {
            let fresh = meta::fresh_secret_hex();
            conn.execute("INSERT INTO meta (name, value) VALUES ('key_secret', ?1) ON CONFLICT (name) DO NOTHING", [&fresh])?;
            conn.query_row(
                "SELECT value FROM meta WHERE name = 'key_secret'",
                [],
                |r| r.get(0),
            )?
        }
    };
    meta::decode_secret(&hex_secret)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known,
            });
        }
        let Some((next, sql)) = MIGRATIONS.iter().find(|(v, _)| *v > version) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", next)?;
        tx.commit()?;
        tracing::info!(version = next, "Applied SQLite migration");
    }
}
