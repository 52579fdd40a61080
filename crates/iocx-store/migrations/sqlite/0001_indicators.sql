-- The indicator store: one row per indicator, one per (indicator, source) observation.
-- Times are Unix seconds. Flags are 0/1 integers (SQLite stores both in zero payload bytes).

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE source (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    aging_days  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Distinct tag sets, interned: rows refer to a set by id. Set 0 is the empty set.
CREATE TABLE tagset (
    id    INTEGER PRIMARY KEY,
    tags  TEXT NOT NULL UNIQUE
);
INSERT INTO tagset (id, tags) VALUES (0, '');
CREATE TABLE tagset_member (
    tag        TEXT NOT NULL,
    tagset_id  INTEGER NOT NULL,
    PRIMARY KEY (tag, tagset_id)
) WITHOUT ROWID;

CREATE TABLE indicator (
    id           INTEGER PRIMARY KEY,
    key          BLOB NOT NULL,      -- keyed 128-bit hash of (kind, value)
    kind         INTEGER NOT NULL,
    value        TEXT NOT NULL,
    severity     INTEGER NOT NULL,
    reputation   INTEGER NOT NULL,
    safe         INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    seen_day     INTEGER NOT NULL,   -- last_seen / 86400: indexed, moves at most once a day
    sources      INTEGER NOT NULL,   -- independent sources (echoes excluded)
    nobs         INTEGER NOT NULL,   -- observations of any kind
    expires      INTEGER,            -- NULL: never
    aged_at      INTEGER NOT NULL,
    tagset       INTEGER NOT NULL,
    user_tagset  INTEGER NOT NULL DEFAULT 0,
    user_safe    INTEGER,            -- NULL: no user verdict
    changed      INTEGER NOT NULL    -- time of the last material change
);
CREATE UNIQUE INDEX indicator_key ON indicator (key);
CREATE INDEX indicator_seen_day ON indicator (seen_day);

CREATE TABLE observation (
    indicator_id  INTEGER NOT NULL,
    source_id     INTEGER NOT NULL,
    fp            INTEGER NOT NULL,  -- fingerprint of the attributes (48 bits)
    severity      INTEGER NOT NULL,
    reputation    INTEGER,
    safe          INTEGER NOT NULL,
    echo          INTEGER NOT NULL,
    hits          INTEGER NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    expires       INTEGER,
    tagset        INTEGER NOT NULL,
    comment       TEXT,
    link          TEXT,
    PRIMARY KEY (indicator_id, source_id)
) WITHOUT ROWID;

-- Runs: one execution of an import, pull, push, retraction or aging job.
CREATE TABLE run (
    id           INTEGER PRIMARY KEY,
    job          TEXT NOT NULL,       -- import | pull | share | retract | age
    source_id    INTEGER,
    subject      TEXT NOT NULL,       -- what ran: a source, configuration or sharing name
    identity     TEXT,                -- what was read, so an interrupted import can resume
    state        TEXT NOT NULL,       -- running | succeeded | failed | interrupted
    observed_at  INTEGER NOT NULL,    -- the time recorded as "seen" for this run's records
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    heartbeat_at INTEGER NOT NULL,
    owner        TEXT NOT NULL,       -- process that runs it (host:pid:nonce)
    checkpoint   TEXT,
    counts       TEXT NOT NULL DEFAULT '{}',
    error        TEXT
);
CREATE INDEX run_subject ON run (subject, id);
CREATE INDEX run_identity ON run (identity) WHERE identity IS NOT NULL;

CREATE TABLE run_log (
    run_id   INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Ingest counts per hour and source, for the dashboard's "ingested over time".
CREATE TABLE ingest_hour (
    hour       INTEGER NOT NULL,
    source_id  INTEGER NOT NULL,
    new        INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    unchanged  INTEGER NOT NULL,
    PRIMARY KEY (hour, source_id)
) WITHOUT ROWID;
