-- Who may use the service: local users, API tokens, browser sessions, and the audit log.

CREATE TABLE app_user (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,             -- PHC string (argon2id)
    role          TEXT NOT NULL,             -- admin | analyst | viewer
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER
);

-- Tokens are stored only as a keyed hash; `prefix` (the first characters) identifies one in lists.
CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE app_session (
    hash       TEXT PRIMARY KEY,             -- keyed hash of the cookie value
    user_id    INTEGER NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,               -- milliseconds since the epoch
    actor    TEXT NOT NULL,                  -- user:NAME, token:NAME (user), cli:USER@HOST
    action   TEXT NOT NULL,                  -- e.g. configuration.update
    target   TEXT NOT NULL,
    before   TEXT,                           -- JSON, secrets masked
    after    TEXT
);
CREATE INDEX audit_at ON audit (at);

-- TAXII collections and API listings page through indicators in order of their last material
-- change; re-sightings do not change it, so ingest rarely touches this index.
CREATE INDEX indicator_changed ON indicator (changed, id);
