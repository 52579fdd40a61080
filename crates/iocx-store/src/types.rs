//! The values the store takes and returns.

use std::collections::BTreeMap;

use iocx_model::{Aggregate, Indicator, Kind, Observation, Reconciliation, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// Where observations come from: a configuration, a CLI import name, the API, or a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Store id.
    pub id: i64,
    /// Unique name (a configuration's name, or `--source NAME` of an import).
    pub name: String,
    /// What kind of source it is.
    pub kind: SourceKind,
    /// Days after its last sighting that an observation of this source stops counting.
    pub aging_days: i64,
    /// When the source was first used.
    pub created_at: Timestamp,
}

/// What kind of thing a [`Source`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Files imported with `iocx import --source NAME`.
    Import,
    /// A configured connector.
    Configuration,
    /// Indicators added through the REST API.
    Api,
}

impl SourceKind {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Import => "import",
            SourceKind::Configuration => "configuration",
            SourceKind::Api => "api",
        }
    }

    /// The kind for a stored name.
    pub fn from_name(name: &str) -> Option<SourceKind> {
        Some(match name {
            "import" => SourceKind::Import,
            "configuration" => SourceKind::Configuration,
            "api" => SourceKind::Api,
            _ => return None,
        })
    }
}

/// The default aging criteria in days (as in Netskope CTE).
pub const DEFAULT_AGING_DAYS: i64 = 90;

/// How an ingest session records what it writes.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The time recorded as "seen" for records that do not carry their own.
    pub now: Timestamp,
    /// Whether these records are iocx's own pushes coming back (echoes).
    pub echo: bool,
    /// The run the session belongs to, whose checkpoint and counts each batch updates.
    pub run_id: Option<i64>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Records that created an indicator.
    pub new: u64,
    /// Records that changed what the store knew (a new source for an indicator, or changed
    /// attributes).
    pub updated: u64,
    /// Records that only re-sighted what the store knew.
    pub unchanged: u64,
}

impl BatchOutcome {
    /// Adds another outcome to this one.
    pub fn add(&mut self, other: BatchOutcome) {
        self.new += other.new;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }

    /// Records written.
    pub fn total(&self) -> u64 {
        self.new + self.updated + self.unchanged
    }
}

/// One observation with the name of its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceObservation {
    /// The source's name.
    pub source: String,
    /// What it says.
    #[serde(flatten)]
    pub observation: Observation,
}

/// An indicator with its aggregate and, when asked for, every observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorDetail {
    /// Store id.
    pub id: i64,
    /// The indicator.
    #[serde(flatten)]
    pub indicator: Indicator,
    /// The aggregate over all sources.
    #[serde(flatten)]
    pub aggregate: Aggregate,
    /// Whether it is active now (neither expired nor aged out).
    pub active: bool,
    /// Tags a user put on the indicator.
    pub user_tags: Vec<String>,
    /// A user's safe/unsafe verdict, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_safe: Option<bool>,
    /// When it last changed materially.
    pub changed: Timestamp,
    /// Every source's observation (empty when not asked for).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub observations: Vec<SourceObservation>,
}

impl IndicatorDetail {
    /// The indicator as the feed writers (and the TAXII server) take it.
    pub fn export_row(&self) -> iocx_model::feed::ExportRow<'_> {
        iocx_model::feed::ExportRow {
            indicator: &self.indicator,
            severity: self.aggregate.severity,
            reputation: self.aggregate.reputation.get(),
            tags: self.aggregate.tags.as_slice(),
            first_seen: self.aggregate.first_seen,
            last_seen: self.aggregate.last_seen,
            modified: self.changed,
            expires: self.aggregate.expires,
            hits: self.aggregate.hits,
            sources: self
                .observations
                .iter()
                .filter(|o| !o.observation.echo)
                .map(|o| o.source.as_str())
                .collect(),
            active: self.active,
            safe: self.aggregate.safe,
            comment: self
                .observations
                .iter()
                .find_map(|o| o.observation.attributes.comment.as_deref()),
        }
    }
}

/// Which indicators an export or listing covers.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only these kinds (all when empty).
    pub kinds: Vec<Kind>,
    /// Only indicators reported by one of these sources (all when empty).
    pub sources: Vec<String>,
    /// Only indicators active at this time.
    pub active_at: Option<Timestamp>,
}

/// Counts over the store, for `iocx stats` and the dashboard.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Indicators.
    pub indicators: u64,
    /// Active indicators.
    pub active: u64,
    /// Observations.
    pub observations: u64,
    /// Indicators by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Indicators by aggregate severity.
    pub by_severity: BTreeMap<String, u64>,
    /// Observations by source.
    pub by_source: BTreeMap<String, u64>,
    /// Bytes the store occupies.
    pub size_bytes: u64,
    /// The backend (`sqlite` or `postgresql`).
    pub backend: String,
    /// The reconciliation policy in force.
    pub reconciliation: String,
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Running (or its process died and nobody has noticed yet).
    Running,
    /// Finished without error.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Its process stopped before the end; what it committed is kept and a new run resumes.
    Interrupted,
}

impl RunState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }

    /// The state for a stored name.
    pub fn from_name(name: &str) -> Option<RunState> {
        Some(match name {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "interrupted" => RunState::Interrupted,
            _ => return None,
        })
    }
}

/// One execution of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Store id.
    pub id: i64,
    /// `import`, `pull`, `share`, `retract` or `age`.
    pub job: String,
    /// What ran: a source, configuration or sharing name.
    pub subject: String,
    /// What it read, when it can resume (an import's file identity).
    pub identity: Option<String>,
    /// The state.
    pub state: RunState,
    /// The time recorded as "seen" for its records.
    pub observed_at: Timestamp,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// The last sign of life of its process.
    pub heartbeat_at: Timestamp,
    /// The process that runs it.
    pub owner: String,
    /// The last committed checkpoint.
    pub checkpoint: Option<String>,
    /// Counts (new, updated, unchanged, rejected by reason, …) as of the last commit.
    pub counts: serde_json::Value,
    /// The error it ended with.
    pub error: Option<String>,
}

/// A new run.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// `import`, `pull`, `share`, `retract` or `age`.
    pub job: String,
    /// What runs.
    pub subject: String,
    /// The source it writes observations for, if any.
    pub source_id: Option<i64>,
    /// What it reads, when it can resume.
    pub identity: Option<String>,
    /// The time to record as "seen".
    pub observed_at: Timestamp,
    /// The process that runs it.
    pub owner: String,
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The run.
    pub run_id: i64,
    /// Order within the run.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

/// Installation-wide settings kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// How sources that disagree are reconciled.
    pub reconciliation: Reconciliation,
}

/// Severity used where a record gives none and nothing overrides it.
pub const DEFAULT_SEVERITY: Severity = Severity::Unknown;

/// A configured instance of a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// Store id.
    pub id: i64,
    /// Unique name (also the name of the source its pulls write as).
    pub name: String,
    /// The connector's registry name.
    pub connector: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Non-secret field values.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Secret field values, sealed (see the engine's vault); never returned by the API.
    #[serde(skip)]
    pub secrets: Option<Vec<u8>>,
    /// The platform's settings.
    #[serde(flatten)]
    pub platform: Platform,
    /// The source its pulls write as.
    pub source_id: i64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// The platform fields every configuration has, whatever its connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// Seconds between pulls.
    pub interval_secs: i64,
    /// Days after its last sighting that an observation of this configuration stops counting.
    pub aging_days: i64,
    /// A reputation that replaces whatever the source says (1–10).
    pub override_reputation: Option<u8>,
    /// Days back the first pull starts.
    pub initial_range_days: i64,
    /// Whether it pulls.
    pub polling: bool,
    /// Whether TLS certificates are verified.
    pub verify_tls: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca_bundle: Option<String>,
    /// An HTTP(S) proxy URL.
    pub proxy: Option<String>,
    /// Seconds before one request times out.
    pub timeout_secs: i64,
}

impl Default for Platform {
    fn default() -> Platform {
        Platform {
            interval_secs: 300,
            aging_days: DEFAULT_AGING_DAYS,
            override_reputation: None,
            initial_range_days: 7,
            polling: true,
            verify_tls: true,
            ca_bundle: None,
            proxy: None,
            timeout_secs: 30,
        }
    }
}

/// A new configuration.
#[derive(Debug, Clone)]
pub struct NewConfiguration {
    /// Unique name.
    pub name: String,
    /// The connector.
    pub connector: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Non-secret values.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Sealed secret values.
    pub secrets: Option<Vec<u8>>,
    /// Platform settings.
    pub platform: Platform,
}

/// A scheduled job and its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// `pull:NAME`, `share:NAME`, …
    pub name: String,
    /// When it is next due.
    pub next_run_at: Timestamp,
    /// The process holding its lease, if any.
    pub lease_owner: Option<String>,
    /// When the lease ends.
    pub lease_until: Timestamp,
}

/// A business rule: a filter expression plus exclusions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The expression, in the rule language (`docs/rules.md`).
    pub expression: String,
    /// What it is for.
    pub description: String,
    /// Names of the allow-lists whose entries it never selects.
    pub exclusions: Vec<String>,
    /// Muted rules select nothing new (sharings using them pause).
    pub muted: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A named allow-list of values, CIDR ranges and domain suffixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowListRow {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it holds.
    pub description: String,
    /// Shipped with iocx (entries not editable).
    pub builtin: bool,
    /// Its entries.
    pub entries: Vec<AllowEntry>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One allow-list entry: a canonical value, a CIDR range, or `.suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowEntry {
    /// The entry.
    pub entry: String,
    /// Why it is there.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

/// A sharing: source configurations → rule → destination configuration + target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingRow {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Source configuration (or import source) names; empty means every source.
    pub sources: Vec<String>,
    /// The rule's name.
    pub rule: String,
    /// The destination configuration's name.
    pub destination: String,
    /// The target at the destination.
    pub target: String,
    /// The target's parameters.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Seconds between scheduled runs.
    pub interval_secs: i64,
    /// Whether it also runs after each pull of one of its sources.
    pub after_pull: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A new or edited sharing, by names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingSpec {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Source names; empty for all.
    pub sources: Vec<String>,
    /// The rule's name.
    pub rule: String,
    /// The destination configuration's name.
    pub destination: String,
    /// The target.
    pub target: String,
    /// The target's parameters.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Seconds between scheduled runs.
    pub interval_secs: i64,
    /// Whether it runs after each pull of a source.
    pub after_pull: bool,
}

/// The state of one indicator's delivery through one sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Handed to the destination, result not yet recorded.
    Pending,
    /// Delivered.
    Shared,
    /// Refused or lost; retried with backoff.
    Failed,
    /// Not sent, for a reason retrying will not change.
    Skipped,
    /// Removed from the destination.
    Retracted,
}

impl DeliveryState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Shared => "shared",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Retracted => "retracted",
        }
    }

    /// The state for a stored name.
    pub fn from_name(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "shared" => DeliveryState::Shared,
            "failed" => DeliveryState::Failed,
            "skipped" => DeliveryState::Skipped,
            "retracted" => DeliveryState::Retracted,
            _ => return None,
        })
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The sharing.
    pub sharing_id: i64,
    /// The indicator.
    pub indicator_id: i64,
    /// The state.
    pub state: DeliveryState,
    /// A fingerprint of the fields the target was sent.
    pub version: i64,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// Failed attempts in a row.
    pub attempts: i64,
    /// When a failed delivery is tried again.
    pub next_attempt_at: Option<Timestamp>,
    /// When the row last changed.
    pub updated_at: Timestamp,
}

/// A batch handed to a destination and not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxBatch {
    /// The batch id: the idempotency key of its deliveries.
    pub batch: String,
    /// `add` or `remove`.
    pub action: String,
    /// `(indicator id, version)` of each item.
    pub items: Vec<(i64, i64)>,
    /// When it was written.
    pub created_at: Timestamp,
}

/// A parameter of a caller-supplied SQL filter (a compiled rule).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// What a share run asks the store for: the indicators a sharing's rule selects, with their
/// ledger state.
#[derive(Debug, Clone)]
pub struct CandidateQuery {
    /// The sharing.
    pub sharing_id: i64,
    /// The compiled rule: a boolean SQL expression over `indicator i`, in the store's dialect
    /// (`?N` placeholders on SQLite, `$N` on PostgreSQL).
    pub filter_sql: String,
    /// Its parameters.
    pub filter_params: Vec<SqlValue>,
    /// Only indicators some of these sources report independently (all when empty).
    pub source_ids: Vec<i64>,
    /// The destination's own source: indicators it reported are echoes for it.
    pub destination_source_id: Option<i64>,
    /// Activity is judged at this time.
    pub now: Timestamp,
    /// Only indicators last seen since then (a sync window).
    pub since: Option<Timestamp>,
    /// Also indicators that are no longer active (for retraction bookkeeping).
    pub include_inactive: bool,
}

/// One indicator a share run considers.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Store id.
    pub id: i64,
    /// The indicator.
    pub indicator: Indicator,
    /// Aggregate severity.
    pub severity: Severity,
    /// Aggregate reputation.
    pub reputation: u8,
    /// Whether safe.
    pub safe: bool,
    /// The interned tag set's id (tags compare by it).
    pub tagset: i64,
    /// Expiry.
    pub expires: Option<Timestamp>,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Total hits.
    pub hits: u64,
    /// Whether it is active at the query's time.
    pub active: bool,
    /// Whether the destination itself reported it.
    pub from_destination: bool,
    /// Its ledger row for this sharing.
    pub delivery: Option<Delivery>,
}

/// The database dialect a store speaks, for callers compiling SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What a user or token may do. Each role can do everything the one below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything except secrets; changes nothing.
    Viewer,
    /// Also edits indicators (tags, safe marks), rules, allow-lists and sharings, and runs jobs.
    Analyst,
    /// Also manages configurations, users, tokens and settings, and reads the audit log.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// The role called `text`.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A local user (the password hash stays in the store layer's callers that verify it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Store id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Whether logins and the user's tokens are refused.
    pub disabled: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
}

/// An API token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Store id.
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// The user it acts as.
    pub user: String,
    /// Its role (at most its user's).
    pub role: Role,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    /// Created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Last used (to the minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// What it is for.
    pub name: String,
    /// The user it acts as.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// The keyed hash of the token.
    pub hash: String,
    /// The token's first characters.
    pub prefix: String,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
}

/// A browser session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its user.
    pub user: User,
    /// The CSRF token state-changing requests must echo.
    pub csrf: String,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// An audit entry to write.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// Who: `user:NAME`, `token:NAME@USER`, `cli:USER`.
    pub actor: String,
    /// What, e.g. `configuration.update`.
    pub action: String,
    /// On what, e.g. the configuration's name.
    pub target: String,
    /// The state before, as JSON with secrets masked.
    pub before: Option<String>,
    /// The state after, as JSON with secrets masked.
    pub after: Option<String>,
}

/// An audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Store id (increasing).
    pub id: i64,
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Before.
    pub before: Option<serde_json::Value>,
    /// After.
    pub after: Option<serde_json::Value>,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries older than this id (keyset paging).
    pub before_id: Option<i64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only actions starting with this.
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// At most this many (1–1000).
    pub limit: i64,
}

/// What a user changes on indicators.
#[derive(Debug, Clone, Default)]
pub struct UserMarks {
    /// Tags to add.
    pub add_tags: Vec<String>,
    /// Tags to remove.
    pub remove_tags: Vec<String>,
    /// `Some(Some(true))` marks safe, `Some(Some(false))` unsafe, `Some(None)` clears the
    /// verdict, `None` leaves it.
    pub safe: Option<Option<bool>>,
}

/// What one source brought in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestHour {
    /// The hour's start.
    pub hour: Timestamp,
    /// The source.
    pub source: String,
    /// New indicators.
    pub new: u64,
    /// Indicators whose attributes changed.
    pub updated: u64,
    /// Re-sightings.
    pub unchanged: u64,
}
