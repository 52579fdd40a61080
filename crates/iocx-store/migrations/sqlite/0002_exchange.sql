-- Configurations, jobs, rules, sharings and the delivery ledger.

CREATE TABLE configuration (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    connector           TEXT NOT NULL,
    enabled             INTEGER NOT NULL,
    params              TEXT NOT NULL,     -- JSON: non-secret field values
    secrets             BLOB,              -- XChaCha20-Poly1305 sealed JSON of secret values
    interval_secs       INTEGER NOT NULL,
    aging_days          INTEGER NOT NULL,
    override_reputation INTEGER,
    initial_range_days  INTEGER NOT NULL,
    polling             INTEGER NOT NULL,
    verify_tls          INTEGER NOT NULL,
    ca_bundle           TEXT,
    proxy               TEXT,
    timeout_secs        INTEGER NOT NULL,
    source_id           INTEGER NOT NULL,  -- the source its pulls write as
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- Scheduled work, leased so that one node runs a job at a time.
CREATE TABLE job (
    name         TEXT PRIMARY KEY,         -- pull:NAME, share:NAME, age, …
    next_run_at  INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE rule (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    expression  TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    exclusions  TEXT NOT NULL DEFAULT '[]', -- JSON: names of allow-lists
    muted       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Allow-lists (exclusions): values, CIDR ranges and domain suffixes.
CREATE TABLE allowlist (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    builtin     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE allowlist_entry (
    allowlist_id INTEGER NOT NULL,
    entry        TEXT NOT NULL,             -- a value, a CIDR, or .suffix
    comment      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (allowlist_id, entry)
) WITHOUT ROWID;

CREATE TABLE sharing (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL DEFAULT '',
    enabled        INTEGER NOT NULL,
    sources        TEXT NOT NULL,           -- JSON: configuration names, or [] for all
    rule_id        INTEGER NOT NULL,
    destination_id INTEGER NOT NULL,
    target         TEXT NOT NULL,
    params         TEXT NOT NULL,           -- JSON: the target's parameters
    interval_secs  INTEGER NOT NULL,
    after_pull     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- The delivery ledger: per (sharing, indicator), what was delivered and its state.
CREATE TABLE delivery (
    sharing_id      INTEGER NOT NULL,
    indicator_id    INTEGER NOT NULL,
    destination_id  INTEGER NOT NULL,
    state           TEXT NOT NULL,          -- shared | failed | skipped | retracted
    version         INTEGER NOT NULL,       -- fingerprint of the fields the target was sent
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (sharing_id, indicator_id)
) WITHOUT ROWID;
CREATE INDEX delivery_indicator ON delivery (indicator_id);

-- Batches handed to a destination and not yet recorded: a share killed in between re-sends them
-- with the same batch id (the idempotency key), so the destination can drop the repeat.
CREATE TABLE outbox (
    sharing_id  INTEGER NOT NULL,
    batch       TEXT NOT NULL,
    action      TEXT NOT NULL,              -- add | remove
    items       TEXT NOT NULL,              -- JSON: [[indicator id, version], …]
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (sharing_id, batch)
) WITHOUT ROWID;
