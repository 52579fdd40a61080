-- Configurations, jobs, rules, sharings and the delivery ledger.

CREATE TABLE configuration (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    connector           text NOT NULL,
    enabled             bigint NOT NULL,
    params              text NOT NULL,     -- JSON: non-secret field values
    secrets             bytea,              -- XChaCha20-Poly1305 sealed JSON of secret values
    interval_secs       bigint NOT NULL,
    aging_days          bigint NOT NULL,
    override_reputation bigint,
    initial_range_days  bigint NOT NULL,
    polling             bigint NOT NULL,
    verify_tls          bigint NOT NULL,
    ca_bundle           text,
    proxy               text,
    timeout_secs        bigint NOT NULL,
    source_id           bigint NOT NULL,  -- the source its pulls write as
    created_at          bigint NOT NULL,
    updated_at          bigint NOT NULL
);

-- Scheduled work, leased so that one node runs a job at a time.
CREATE TABLE job (
    name         text PRIMARY KEY,         -- pull:NAME, share:NAME, age, …
    next_run_at  bigint NOT NULL,
    lease_owner  text,
    lease_until  bigint NOT NULL DEFAULT 0
);

CREATE TABLE rule (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    expression  text NOT NULL,
    description text NOT NULL DEFAULT '',
    exclusions  text NOT NULL DEFAULT '[]', -- JSON: names of allow-lists
    muted       bigint NOT NULL DEFAULT 0,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);

-- Allow-lists (exclusions): values, CIDR ranges and domain suffixes.
CREATE TABLE allowlist (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    builtin     bigint NOT NULL DEFAULT 0,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);
CREATE TABLE allowlist_entry (
    allowlist_id bigint NOT NULL,
    entry        text NOT NULL,             -- a value, a CIDR, or .suffix
    comment      text NOT NULL DEFAULT '',
    PRIMARY KEY (allowlist_id, entry)
);

CREATE TABLE sharing (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    description    text NOT NULL DEFAULT '',
    enabled        bigint NOT NULL,
    sources        text NOT NULL,           -- JSON: configuration names, or [] for all
    rule_id        bigint NOT NULL,
    destination_id bigint NOT NULL,
    target         text NOT NULL,
    params         text NOT NULL,           -- JSON: the target's parameters
    interval_secs  bigint NOT NULL,
    after_pull     bigint NOT NULL,
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL
);

-- The delivery ledger: per (sharing, indicator), what was delivered and its state.
CREATE TABLE delivery (
    sharing_id      bigint NOT NULL,
    indicator_id    bigint NOT NULL,
    destination_id  bigint NOT NULL,
    state           text NOT NULL,          -- shared | failed | skipped | retracted
    version         bigint NOT NULL,       -- fingerprint of the fields the target was sent
    reason          text,
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint,
    updated_at      bigint NOT NULL,
    PRIMARY KEY (sharing_id, indicator_id)
);
CREATE INDEX delivery_indicator ON delivery (indicator_id);

-- Batches handed to a destination and not yet recorded: a share killed in between re-sends them
-- with the same batch id (the idempotency key), so the destination can drop the repeat.
CREATE TABLE outbox (
    sharing_id  bigint NOT NULL,
    batch       text NOT NULL,
    action      text NOT NULL,
    items       text NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (sharing_id, batch)
);
