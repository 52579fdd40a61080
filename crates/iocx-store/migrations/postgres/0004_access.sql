-- Who may use the service: local users, API tokens, browser sessions, and the audit log.

CREATE TABLE app_user (
    id            bigserial PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,             -- PHC string (argon2id)
    role          TEXT NOT NULL,             -- admin | analyst | viewer
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login_at BIGINT
);

-- Tokens are stored only as a keyed hash; `prefix` (the first characters) identifies one in lists.
CREATE TABLE api_token (
    id           bigserial PRIMARY KEY,
    name         TEXT NOT NULL,
    user_id      BIGINT NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE app_session (
    hash       TEXT PRIMARY KEY,             -- keyed hash of the cookie value
    user_id    BIGINT NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit (
    id       bigserial PRIMARY KEY,
    at       BIGINT NOT NULL,               -- milliseconds since the epoch
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
