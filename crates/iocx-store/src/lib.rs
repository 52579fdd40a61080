//! # iocx-store
//!
//! Where iocx keeps what it knows: indicators, each source's observations of them, runs and their
//! logs, and installation settings. Two backends sit behind one [`Store`]:
//!
//! - **SQLite** (the default): one file in the data directory, WAL mode, one writer connection
//!   and a pool of readers. Nothing to install; millions of indicators on a small machine.
//! - **PostgreSQL**, chosen by a `postgres://` URL, when several iocx nodes share one database.
//!
//! Design decisions, with their reasons:
//! - **Static dispatch.** [`Store`] is an enum over the two backends; the hot paths inside each
//!   backend are monomorphic (see [`ingest`]'s `WriteTx`), and the algorithm that decides what to
//!   write exists once, for both.
//! - **Blocking inside, async outside.** Database work runs on blocking threads: SQLite is a
//!   blocking library anyway, and the synchronous PostgreSQL client keeps the two backends' code the
//!   same shape. Async callers use [`Store::call`], which moves the work to a blocking thread.
//! - **Indicators are found by key, not by text.** The `key` column holds a keyed 128-bit hash of
//!   kind and canonical value ([`iocx_model::IndicatorKey`]); its unique index is a third the size
//!   of one on the text and keeps bulk inserts cheap.
//! - **Aggregates are written, not computed on read**, so rules and listings over millions of
//!   indicators read one row per indicator. Activity is derived from `expires` and `aged_at`, so
//!   the passing of time needs no writes.
//! - **Every batch is one transaction with its checkpoint**, so a process killed at any point
//!   leaves a consistent store and the next run resumes after the last committed batch.

#![forbid(unsafe_code)]

mod access;
mod cache;
mod db;
mod error;
mod ingest;
mod meta;
mod pool;
pub mod postgres;
mod rows;
mod share_queries;
pub mod sqlite;
mod tables;
#[doc(hidden)]
pub mod testing;
mod types;

use std::path::Path;
use std::sync::Arc;

use iocx_model::{Indicator, KeySecret, Reconciliation, Record, Timestamp};

pub use error::{Result, StoreError};
pub use ingest::Prepared;
pub use types::*;

/// A run's progress, saved in the same transaction as the batch it follows.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Where to resume (connector- or importer-defined text).
    pub checkpoint: Option<String>,
    /// The run's counts so far.
    pub counts: serde_json::Value,
}

#[allow(clippy::large_enum_variant)] // one per process, behind an Arc
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// The store. Cheap to clone (an `Arc` inside); every method blocks, see [`Store::call`].
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.describe())
    }
}

/// Runs `$body` with `$db` bound to a write transaction of whichever backend.
macro_rules! write_db {
    ($self:ident, $db:ident => $body:expr) => {
        match &*$self.backend {
            Backend::Sqlite(b) => b.write_db(|$db| $body),
            Backend::Postgres(b) => b.write_db(|$db| $body),
        }
    };
}

/// Runs `$body` with `$db` bound to a read connection of whichever backend.
macro_rules! read_db {
    ($self:ident, $db:ident => $body:expr) => {
        match &*$self.backend {
            Backend::Sqlite(b) => b.read_db(|$db| $body),
            Backend::Postgres(b) => b.read_db(|$db| $body),
        }
    };
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {
        match &*$self.backend {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl Store {
    /// Opens the store named by `database`: a `postgres://` or `postgresql://` URL, a
    /// `sqlite://PATH` URL, or a plain path to a SQLite file. Applies pending migrations.
    ///
    /// # Errors
    /// When the database cannot be opened or reached, or holds a newer schema.
    pub fn open(database: &str) -> Result<Store> {
        let backend =
            if database.starts_with("postgres://") || database.starts_with("postgresql://") {
                Backend::Postgres(postgres::PgStore::open(database)?)
            } else {
                let path = database.strip_prefix("sqlite://").unwrap_or(database);
                if path.is_empty() {
                    return Err(StoreError::BadUrl {
                        url: database.into(),
                        reason: "no file path given".into(),
                    });
                }
                Backend::Sqlite(sqlite::SqliteStore::open(Path::new(path))?)
            };
        Ok(Store {
            backend: Arc::new(backend),
        })
    }

    /// Runs `f` with this store on a blocking thread, for async callers.
    ///
    /// # Errors
    /// What `f` returns, or [`StoreError::Task`] when the thread panicked.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(format!("store task: {e}")))?
    }

    /// `sqlite FILE` or `postgresql URL` (password masked).
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Sqlite(s) => format!("sqlite {}", s.path().display()),
            Backend::Postgres(p) => format!("postgresql {}", p.url()),
        }
    }

    /// Whether this is the PostgreSQL backend.
    pub fn is_postgres(&self) -> bool {
        matches!(&*self.backend, Backend::Postgres(_))
    }

    /// The secret that keys indicator hashing in this store.
    pub fn key_secret(&self) -> KeySecret {
        dispatch!(self, b => b.secret())
    }

    /// Installation-wide settings.
    pub fn settings(&self) -> Settings {
        dispatch!(self, b => b.settings())
    }

    /// Sets the reconciliation policy. It applies to indicators as they are next written.
    ///
    /// # Errors
    /// On database errors.
    pub fn set_reconciliation(&self, policy: &Reconciliation) -> Result<()> {
        dispatch!(self, b => b.set_reconciliation(policy))
    }

    /// The source called `name`, created with `kind` when absent. `aging_days`, when given,
    /// becomes its aging criteria.
    ///
    /// # Errors
    /// On database errors.
    pub fn ensure_source(
        &self,
        name: &str,
        kind: SourceKind,
        aging_days: Option<i64>,
    ) -> Result<Source> {
        dispatch!(self, b => b.ensure_source(name, kind, aging_days))
    }

    /// Every source, by name.
    ///
    /// # Errors
    /// On database errors.
    pub fn sources(&self) -> Result<Vec<Source>> {
        dispatch!(self, b => b.sources())
    }

    /// Writes one batch of records from `source` in one transaction, together with the run's
    /// progress when `options.run_id` and `progress` are given: `progress` receives the batch's
    /// outcome and returns what to save, so saved counts always include the batch.
    ///
    /// # Errors
    /// On database errors; nothing of the batch is then written.
    pub fn ingest(
        &self,
        source: &Source,
        options: &IngestOptions,
        records: Vec<Record>,
        progress: Option<&dyn Fn(&BatchOutcome) -> Progress>,
    ) -> Result<BatchOutcome> {
        let prepared = Prepared::new(records, &self.key_secret(), options.now);
        self.ingest_prepared(source, options, &prepared, progress)
    }

    /// [`Store::ingest`] for a batch prepared beforehand (on another thread, with this store's
    /// [`Store::key_secret`] and the same `now` as `options`).
    ///
    /// # Errors
    /// On database errors, or when the batch was prepared for another store or time.
    pub fn ingest_prepared(
        &self,
        source: &Source,
        options: &IngestOptions,
        prepared: &Prepared,
        progress: Option<&dyn Fn(&BatchOutcome) -> Progress>,
    ) -> Result<BatchOutcome> {
        if prepared.secret != self.key_secret() || prepared.now != options.now {
            return Err(StoreError::Conflict(
                "the batch was prepared for another store or another time".into(),
            ));
        }
        dispatch!(self, b => b.ingest(source, options, prepared, progress))
    }

    /// Each indicator's detail (with every observation when asked), `None` where unknown.
    ///
    /// # Errors
    /// On database errors.
    pub fn lookup(
        &self,
        indicators: &[Indicator],
        with_observations: bool,
    ) -> Result<Vec<Option<IndicatorDetail>>> {
        dispatch!(self, b => b.lookup(indicators, with_observations))
    }

    /// Streams every indicator matching `filter`, in id order, to `sink` in chunks; `sink`
    /// returns `false` to stop. Memory stays constant whatever the store's size.
    ///
    /// # Errors
    /// On database errors or what `sink` returns.
    pub fn export(
        &self,
        filter: &ExportFilter,
        with_observations: bool,
        sink: &mut dyn FnMut(Vec<IndicatorDetail>) -> Result<bool>,
    ) -> Result<()> {
        dispatch!(self, b => b.export(filter, with_observations, sink))
    }

    /// Counts by kind, severity and source, and the store's size.
    ///
    /// # Errors
    /// On database errors.
    pub fn stats(&self) -> Result<Stats> {
        dispatch!(self, b => b.stats())
    }

    /// Makes the SQLite file self-contained (folds the WAL in), so its size can be measured;
    /// nothing on PostgreSQL.
    ///
    /// # Errors
    /// On database errors.
    pub fn checkpoint(&self) -> Result<()> {
        match &*self.backend {
            Backend::Sqlite(s) => s.checkpoint(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Starts a run.
    ///
    /// # Errors
    /// On database errors.
    pub fn create_run(&self, new: &NewRun) -> Result<Run> {
        dispatch!(self, b => b.create_run(new))
    }

    /// A run by id.
    ///
    /// # Errors
    /// On database errors.
    pub fn run(&self, id: i64) -> Result<Option<Run>> {
        dispatch!(self, b => b.run(id))
    }

    /// The newest unfinished (running or interrupted) run of `job` over `identity`.
    ///
    /// # Errors
    /// On database errors.
    pub fn find_unfinished(&self, job: &str, identity: &str) -> Result<Option<Run>> {
        dispatch!(self, b => b.find_unfinished(job, identity))
    }

    /// Takes over run `id` for `owner` if it is interrupted or its heartbeat is older than
    /// `stale_before`. Returns whether it was taken.
    ///
    /// # Errors
    /// On database errors.
    pub fn claim_run(&self, id: i64, owner: &str, stale_before: Timestamp) -> Result<bool> {
        dispatch!(self, b => b.claim_run(id, owner, stale_before))
    }

    /// Saves a run's progress outside a batch (also a heartbeat).
    ///
    /// # Errors
    /// On database errors.
    pub fn save_progress(&self, run_id: i64, progress: &Progress) -> Result<()> {
        dispatch!(self, b => b.save_progress(run_id, progress))
    }

    /// Ends a run.
    ///
    /// # Errors
    /// On database errors.
    pub fn finish_run(
        &self,
        id: i64,
        state: RunState,
        counts: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        dispatch!(self, b => b.finish_run(id, state, counts, error))
    }

    /// The newest runs, of one subject or all.
    ///
    /// # Errors
    /// On database errors.
    pub fn runs(&self, subject: Option<&str>, limit: i64) -> Result<Vec<Run>> {
        dispatch!(self, b => b.runs(subject, limit))
    }

    /// Appends a line to a run's log.
    ///
    /// # Errors
    /// On database errors.
    pub fn log(&self, run_id: i64, level: &str, message: &str) -> Result<()> {
        dispatch!(self, b => b.log(run_id, level, message))
    }

    /// A run's log.
    ///
    /// # Errors
    /// On database errors.
    pub fn logs(&self, run_id: i64) -> Result<Vec<LogLine>> {
        dispatch!(self, b => b.logs(run_id))
    }
    /// Creates a configuration and the source its pulls write as.
    ///
    /// # Errors
    /// When the name is taken (by a configuration or by another kind of source).
    pub fn create_configuration(&self, new: &NewConfiguration) -> Result<Configuration> {
        dispatch!(self, b => b.create_configuration(new))
    }

    /// Saves a configuration (matched by id); a change of its aging criteria recomputes its
    /// indicators.
    ///
    /// # Errors
    /// When it does not exist, or on database errors.
    pub fn update_configuration(&self, configuration: &Configuration) -> Result<Configuration> {
        dispatch!(self, b => b.update_configuration(configuration))
    }

    /// The configuration called `name`.
    ///
    /// # Errors
    /// On database errors.
    pub fn configuration(&self, name: &str) -> Result<Option<Configuration>> {
        dispatch!(self, b => b.configuration(name))
    }

    /// Every configuration, by name.
    ///
    /// # Errors
    /// On database errors.
    pub fn configurations(&self) -> Result<Vec<Configuration>> {
        dispatch!(self, b => b.configurations())
    }

    /// Deletes a configuration and its pull job; the indicators it reported stay, as reported by
    /// its source. Returns whether it existed.
    ///
    /// # Errors
    /// On database errors.
    pub fn delete_configuration(&self, name: &str) -> Result<bool> {
        dispatch!(self, b => b.delete_configuration(name))
    }

    /// Creates a job due at `next_run_at` unless it exists.
    ///
    /// # Errors
    /// On database errors.
    pub fn ensure_job(&self, name: &str, next_run_at: Timestamp) -> Result<()> {
        dispatch!(self, b => b.ensure_job(name, next_run_at))
    }

    /// Makes a job due at `next_run_at` (creating it if needed).
    ///
    /// # Errors
    /// On database errors.
    pub fn set_job_due(&self, name: &str, next_run_at: Timestamp) -> Result<()> {
        dispatch!(self, b => b.set_job_due(name, next_run_at))
    }

    /// Every job.
    ///
    /// # Errors
    /// On database errors.
    pub fn jobs(&self) -> Result<Vec<Job>> {
        dispatch!(self, b => b.jobs())
    }

    /// Leases up to `limit` due jobs whose lease is free or expired to `owner` for `ttl_secs`;
    /// returns their names. Two nodes asking at once never get the same job.
    ///
    /// # Errors
    /// On database errors.
    pub fn lease_due(
        &self,
        owner: &str,
        now: Timestamp,
        ttl_secs: i64,
        limit: i64,
    ) -> Result<Vec<String>> {
        dispatch!(self, b => b.lease_due(owner, now, ttl_secs, limit))
    }

    /// Leases one job now, due or not, if its lease is free, expired or already `owner`'s.
    ///
    /// # Errors
    /// On database errors.
    pub fn lease_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<bool> {
        dispatch!(self, b => b.lease_job(name, owner, now, ttl_secs))
    }

    /// Extends `owner`'s lease; false when it was lost (expired and taken over).
    ///
    /// # Errors
    /// On database errors.
    pub fn renew_lease(&self, name: &str, owner: &str, until: Timestamp) -> Result<bool> {
        dispatch!(self, b => b.renew_lease(name, owner, until))
    }

    /// Gives a lease back, setting when the job is next due.
    ///
    /// # Errors
    /// On database errors.
    pub fn release_job(
        &self,
        name: &str,
        owner: &str,
        next_run_at: Option<Timestamp>,
    ) -> Result<()> {
        dispatch!(self, b => b.release_job(name, owner, next_run_at))
    }

    /// Deletes a job.
    ///
    /// # Errors
    /// On database errors.
    pub fn delete_job(&self, name: &str) -> Result<()> {
        dispatch!(self, b => b.delete_job(name))
    }

    /// The checkpoint of the newest run of `job` over `subject` that saved one.
    ///
    /// # Errors
    /// On database errors.
    pub fn last_checkpoint(&self, job: &str, subject: &str) -> Result<Option<String>> {
        dispatch!(self, b => b.last_checkpoint(job, subject))
    }

    /// When the newest successful run of `job` over `subject` ended.
    ///
    /// # Errors
    /// On database errors.
    pub fn last_success(&self, job: &str, subject: &str) -> Result<Option<Timestamp>> {
        dispatch!(self, b => b.last_success(job, subject))
    }

    /// Marks the running runs of `job` over `subject` not owned by `except_owner` as
    /// interrupted (their process lost its lease). Returns how many.
    ///
    /// # Errors
    /// On database errors.
    pub fn interrupt_runs(&self, job: &str, subject: &str, except_owner: &str) -> Result<u64> {
        dispatch!(self, b => b.interrupt_runs(job, subject, except_owner))
    }

    /// Recomputes the aggregates of every indicator a source reports.
    ///
    /// # Errors
    /// On database errors.
    pub fn recompute_source(&self, source_id: i64) -> Result<u64> {
        dispatch!(self, b => b.recompute_source(source_id))
    }

    /// Applies a user's marks to indicators (tags added and removed; a safe or unsafe verdict,
    /// or none) and recomputes their aggregates: the marks outrank every source. Returns how
    /// many of `ids` exist.
    ///
    /// # Errors
    /// On database errors.
    pub fn mark_indicators(&self, ids: &[i64], marks: &UserMarks) -> Result<u64> {
        dispatch!(self, b => b.mark_indicators(ids, marks))
    }

    /// Retires a source's observations last seen before `seen_before` (gone from a
    /// full-snapshot feed): they expire now, and the indicators are recomputed. Returns how many.
    ///
    /// # Errors
    /// On database errors.
    pub fn retire_unseen(&self, source_id: i64, seen_before: Timestamp) -> Result<u64> {
        dispatch!(self, b => b.retire_unseen(source_id, seen_before))
    }
    // ----- users, tokens, sessions, audit -----

    /// How many users exist.
    ///
    /// # Errors
    /// On database errors.
    pub fn user_count(&self) -> Result<u64> {
        read_db!(self, db => access::user_count(db))
    }

    /// Creates a user with an already hashed password.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken; database errors.
    pub fn create_user(&self, name: &str, password_hash: &str, role: Role) -> Result<User> {
        write_db!(self, db => access::create_user(db, name, password_hash, role))
    }

    /// The user called `name` and their password hash.
    ///
    /// # Errors
    /// On database errors.
    pub fn user(&self, name: &str) -> Result<Option<(User, String)>> {
        read_db!(self, db => access::user(db, name))
    }

    /// Every user.
    ///
    /// # Errors
    /// On database errors.
    pub fn users(&self) -> Result<Vec<User>> {
        read_db!(self, db => access::users(db))
    }

    /// Changes a user; `None` leaves a field as it is. A new password or disabling ends the
    /// user's sessions. `None` when no such user.
    ///
    /// # Errors
    /// On database errors.
    pub fn update_user(
        &self,
        name: &str,
        role: Option<Role>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<Option<User>> {
        write_db!(self, db => access::update_user(db, name, role, password_hash, disabled))
    }

    /// Deletes a user, their tokens and sessions.
    ///
    /// # Errors
    /// On database errors.
    pub fn delete_user(&self, name: &str) -> Result<bool> {
        write_db!(self, db => access::delete_user(db, name))
    }

    /// Notes a successful login.
    ///
    /// # Errors
    /// On database errors.
    pub fn touch_login(&self, user_id: i64, at: Timestamp) -> Result<()> {
        write_db!(self, db => access::touch_login(db, user_id, at))
    }

    /// Creates an API token (stored as its keyed hash).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user; database errors.
    pub fn create_token(&self, new: &NewToken) -> Result<ApiToken> {
        write_db!(self, db => access::create_token(db, new))
    }

    /// The token whose keyed hash is `hash`, and its user, whatever its state.
    ///
    /// # Errors
    /// On database errors.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<(ApiToken, User)>> {
        read_db!(self, db => access::token_by_hash(db, hash))
    }

    /// The token with `id`.
    ///
    /// # Errors
    /// On database errors.
    pub fn token(&self, id: i64) -> Result<Option<ApiToken>> {
        read_db!(self, db => access::token(db, id))
    }

    /// Tokens, newest first, of one user or of all.
    ///
    /// # Errors
    /// On database errors.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        read_db!(self, db => access::tokens(db, user))
    }

    /// Revokes a token; `false` when unknown or revoked already.
    ///
    /// # Errors
    /// On database errors.
    pub fn revoke_token(&self, id: i64, at: Timestamp) -> Result<bool> {
        write_db!(self, db => access::revoke_token(db, id, at))
    }

    /// Notes a token's use (written at most once a minute).
    ///
    /// # Errors
    /// On database errors.
    pub fn touch_token(&self, id: i64, at: Timestamp) -> Result<()> {
        write_db!(self, db => access::touch_token(db, id, at))
    }

    /// Starts a browser session (and drops expired ones).
    ///
    /// # Errors
    /// On database errors.
    pub fn create_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        write_db!(self, db => access::create_session(db, hash, user_id, csrf, expires_at))
    }

    /// The unexpired session whose keyed hash is `hash`.
    ///
    /// # Errors
    /// On database errors.
    pub fn session(&self, hash: &str, now: Timestamp) -> Result<Option<Session>> {
        read_db!(self, db => access::session(db, hash, now))
    }

    /// Ends a session.
    ///
    /// # Errors
    /// On database errors.
    pub fn delete_session(&self, hash: &str) -> Result<bool> {
        write_db!(self, db => access::delete_session(db, hash))
    }

    /// Appends to the audit log.
    ///
    /// # Errors
    /// On database errors.
    pub fn audit(&self, entry: &NewAudit) -> Result<()> {
        write_db!(self, db => access::audit(db, entry))
    }

    /// Reads the audit log, newest first.
    ///
    /// # Errors
    /// On database errors.
    pub fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        read_db!(self, db => access::audit_log(db, query))
    }

    /// What each source ingested per hour since `since`, oldest first.
    ///
    /// # Errors
    /// On database errors.
    pub fn ingest_hours(&self, since: Timestamp) -> Result<Vec<IngestHour>> {
        read_db!(self, db => access::ingest_hours(db, since))
    }

    /// The ids of the `limit` most sighted indicators (a scan of the store: cache the answer).
    ///
    /// # Errors
    /// On database errors.
    pub fn top_sighted(&self, limit: i64) -> Result<Vec<i64>> {
        read_db!(self, db => access::top_sighted(db, limit))
    }

    // ----- rules and allow-lists -----

    /// The rule called `name`.
    ///
    /// # Errors
    /// On database errors.
    pub fn rule(&self, name: &str) -> Result<Option<RuleRow>> {
        read_db!(self, db => tables::rule(db, name))
    }

    /// Every rule.
    ///
    /// # Errors
    /// On database errors.
    pub fn rules(&self) -> Result<Vec<RuleRow>> {
        read_db!(self, db => tables::rules(db))
    }

    /// Creates or replaces the rule called `name`. The expression is stored as given; callers
    /// parse it first.
    ///
    /// # Errors
    /// On database errors.
    pub fn save_rule(
        &self,
        name: &str,
        expression: &str,
        description: &str,
        exclusions: &[String],
        muted: bool,
    ) -> Result<RuleRow> {
        write_db!(self, db => tables::save_rule(db, name, expression, description, exclusions, muted))
    }

    /// Deletes a rule; refused while a sharing uses it.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming the sharings that use it.
    pub fn delete_rule(&self, name: &str) -> Result<bool> {
        write_db!(self, db => tables::delete_rule(db, name))
    }

    /// The allow-list called `name`, with its entries.
    ///
    /// # Errors
    /// On database errors.
    pub fn allowlist(&self, name: &str) -> Result<Option<AllowListRow>> {
        read_db!(self, db => tables::allowlist(db, name))
    }

    /// Every allow-list.
    ///
    /// # Errors
    /// On database errors.
    pub fn allowlists(&self, with_entries: bool) -> Result<Vec<AllowListRow>> {
        read_db!(self, db => tables::allowlists(db, with_entries))
    }

    /// Creates an allow-list, or changes its description.
    ///
    /// # Errors
    /// On database errors.
    pub fn save_allowlist(
        &self,
        name: &str,
        description: &str,
        builtin: bool,
    ) -> Result<AllowListRow> {
        write_db!(self, db => tables::save_allowlist(db, name, description, builtin))
    }

    /// Adds entries to an allow-list; returns how many were new.
    ///
    /// # Errors
    /// When the list does not exist.
    pub fn add_allow_entries(&self, name: &str, entries: &[AllowEntry]) -> Result<u64> {
        write_db!(self, db => tables::add_allow_entries(db, name, entries))
    }

    /// Removes entries from an allow-list; returns how many existed.
    ///
    /// # Errors
    /// When the list does not exist.
    pub fn remove_allow_entries(&self, name: &str, entries: &[String]) -> Result<u64> {
        write_db!(self, db => tables::remove_allow_entries(db, name, entries))
    }

    /// Deletes an allow-list; refused while a rule excludes with it.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming the rules.
    pub fn delete_allowlist(&self, name: &str) -> Result<bool> {
        write_db!(self, db => tables::delete_allowlist(db, name))
    }

    // ----- sharings and the ledger -----

    /// The sharing called `name`.
    ///
    /// # Errors
    /// On database errors.
    pub fn sharing(&self, name: &str) -> Result<Option<SharingRow>> {
        read_db!(self, db => tables::sharing(db, name))
    }

    /// Every sharing.
    ///
    /// # Errors
    /// On database errors.
    pub fn sharings(&self) -> Result<Vec<SharingRow>> {
        read_db!(self, db => tables::sharings(db))
    }

    /// Creates a sharing (`existing` = `None`) or replaces the one called `existing`.
    ///
    /// # Errors
    /// When its rule or destination does not exist, or the name is taken.
    pub fn save_sharing(&self, existing: Option<&str>, spec: &SharingSpec) -> Result<SharingRow> {
        write_db!(self, db => tables::save_sharing(db, existing, spec))
    }

    /// Deletes a sharing with its ledger and outbox.
    ///
    /// # Errors
    /// On database errors.
    pub fn delete_sharing(&self, name: &str) -> Result<bool> {
        write_db!(self, db => tables::delete_sharing(db, name))
    }

    /// Ledger rows of a sharing for these indicators.
    ///
    /// # Errors
    /// On database errors.
    pub fn deliveries_of(
        &self,
        sharing_id: i64,
        ids: &[i64],
    ) -> Result<std::collections::BTreeMap<i64, Delivery>> {
        read_db!(self, db => tables::deliveries_of(db, sharing_id, ids))
    }

    /// Every ledger row of one indicator.
    ///
    /// # Errors
    /// On database errors.
    pub fn deliveries_for_indicator(&self, indicator_id: i64) -> Result<Vec<Delivery>> {
        read_db!(self, db => tables::deliveries_for_indicator(db, indicator_id))
    }

    /// Streams a sharing's ledger rows in the given states, in indicator order.
    ///
    /// # Errors
    /// On database errors, or what `each` returns.
    pub fn deliveries_in_states(
        &self,
        sharing_id: i64,
        states: &[DeliveryState],
        each: &mut dyn FnMut(Delivery) -> Result<()>,
    ) -> Result<()> {
        read_db!(self, db => tables::deliveries_in_states(db, sharing_id, states, each))
    }

    /// Ledger counts of a sharing by state and reason.
    ///
    /// # Errors
    /// On database errors.
    pub fn delivery_counts(
        &self,
        sharing_id: i64,
    ) -> Result<Vec<(DeliveryState, Option<String>, u64)>> {
        read_db!(self, db => tables::delivery_counts(db, sharing_id))
    }

    /// Puts a batch in the outbox and marks its items pending, in one transaction: done before
    /// the batch is handed to the destination.
    ///
    /// # Errors
    /// On database errors.
    pub fn begin_batch(
        &self,
        sharing_id: i64,
        destination_id: i64,
        batch: &OutboxBatch,
        pending: &[Delivery],
    ) -> Result<()> {
        write_db!(self, db => {
            tables::outbox_put(db, sharing_id, batch)?;
            tables::record_deliveries(db, destination_id, pending)
        })
    }

    /// Records a batch's outcomes and removes it from the outbox, in one transaction.
    ///
    /// # Errors
    /// On database errors.
    pub fn finish_batch(
        &self,
        sharing_id: i64,
        destination_id: i64,
        batch: &str,
        outcomes: &[Delivery],
    ) -> Result<()> {
        write_db!(self, db => {
            tables::record_deliveries(db, destination_id, outcomes)?;
            tables::outbox_delete(db, sharing_id, batch)
        })
    }

    /// Writes ledger rows outside a batch (skips decided without calling the destination).
    ///
    /// # Errors
    /// On database errors.
    pub fn record_deliveries(&self, destination_id: i64, rows: &[Delivery]) -> Result<()> {
        write_db!(self, db => tables::record_deliveries(db, destination_id, rows))
    }

    /// The outbox of a sharing: batches handed over but not recorded (a run was killed).
    ///
    /// # Errors
    /// On database errors.
    pub fn outbox(&self, sharing_id: i64) -> Result<Vec<OutboxBatch>> {
        read_db!(self, db => tables::outbox(db, sharing_id))
    }
    /// The SQL dialect of this store (for compiling rules).
    pub fn dialect(&self) -> Dialect {
        match &*self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Streams the indicators a share run considers, in no particular order, with their ledger rows;
    /// `each` returns false to stop. Memory stays bounded whatever the number of matches.
    ///
    /// # Errors
    /// On database errors (a malformed filter among them), or what `each` returns.
    pub fn share_candidates(
        &self,
        query: &CandidateQuery,
        each: &mut dyn FnMut(Candidate) -> Result<bool>,
    ) -> Result<()> {
        read_db!(self, db => share_queries::share_candidates(db, query, each))
    }

    /// Indicators by id, in the order asked, with every observation when asked.
    ///
    /// # Errors
    /// On database errors.
    pub fn details(&self, ids: &[i64], with_observations: bool) -> Result<Vec<IndicatorDetail>> {
        dispatch!(self, b => b.details(ids, with_observations))
    }
    /// The ids of the indicators a compiled filter selects (a boolean SQL expression over
    /// `indicator i` in this store's dialect), in id order, at most `limit`.
    ///
    /// # Errors
    /// On database errors, a malformed filter among them.
    pub fn select_ids(
        &self,
        filter_sql: &str,
        params: &[SqlValue],
        after: i64,
        limit: i64,
    ) -> Result<Vec<i64>> {
        read_db!(self, db => share_queries::select_ids(db, filter_sql, params, after, limit))
    }

    /// The ids of every indicator a compiled rule selects (`SELECT i.id FROM indicator i
    /// WHERE <filter>`), in id order. The filter must be compiled for this store's dialect
    /// with an offset of 0.
    ///
    /// # Errors
    /// On database errors, a filter for the other dialect among them.
    pub fn matching_ids(&self, filter: &iocx_model::rule::SqlFilter) -> Result<Vec<i64>> {
        use iocx_model::rule::SqlParam;
        let params: Vec<SqlValue> = filter
            .params
            .iter()
            .map(|p| match p {
                SqlParam::Int(i) => SqlValue::Int(*i),
                SqlParam::Text(t) => SqlValue::Text(t.clone()),
            })
            .collect();
        // Ids start at 1 on both backends.
        self.select_ids(&filter.sql, &params, 0, i64::MAX)
    }

    /// `(id, changed)` of the indicators a compiled filter selects, ordered by their last
    /// material change then id, after the `(changed, id)` position `after`, at most `limit`.
    ///
    /// # Errors
    /// On database errors, a malformed filter among them.
    pub fn select_changed(
        &self,
        filter_sql: &str,
        params: &[SqlValue],
        after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<(i64, i64)>> {
        read_db!(self, db => share_queries::select_changed(db, filter_sql, params, after, limit))
    }

    /// The time of the latest material change of any indicator (0 when the store is empty).
    ///
    /// # Errors
    /// On database errors.
    pub fn last_change(&self) -> Result<i64> {
        read_db!(self, db => share_queries::last_change(db))
    }

    /// How many indicators a compiled filter selects.
    ///
    /// # Errors
    /// On database errors, a malformed filter among them.
    pub fn count_matching(&self, filter_sql: &str, params: &[SqlValue]) -> Result<u64> {
        read_db!(self, db => share_queries::count_matching(db, filter_sql, params))
    }
}
