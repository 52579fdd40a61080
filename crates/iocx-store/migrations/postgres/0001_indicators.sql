-- The indicator store: one row per indicator, one per (indicator, source) observation.
-- Times are Unix seconds (bigint). Flags are 0/1 smallints so that rule SQL is the same on
-- SQLite and PostgreSQL.

CREATE TABLE meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE source (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL,
    aging_days  bigint NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE tagset (
    id    bigserial PRIMARY KEY,
    tags  text NOT NULL UNIQUE
);
INSERT INTO tagset (id, tags) VALUES (0, '');
CREATE TABLE tagset_member (
    tag        text NOT NULL,
    tagset_id  bigint NOT NULL,
    PRIMARY KEY (tag, tagset_id)
);

CREATE TABLE indicator (
    id           bigserial PRIMARY KEY,
    key          bytea NOT NULL,
    kind         smallint NOT NULL,
    value        text NOT NULL,
    severity     smallint NOT NULL,
    reputation   smallint NOT NULL,
    safe         smallint NOT NULL,
    hits         bigint NOT NULL,
    first_seen   bigint NOT NULL,
    last_seen    bigint NOT NULL,
    seen_day     bigint NOT NULL,
    sources      integer NOT NULL,
    nobs         integer NOT NULL,
    expires      bigint,
    aged_at      bigint NOT NULL,
    tagset       bigint NOT NULL,
    user_tagset  bigint NOT NULL DEFAULT 0,
    user_safe    smallint,
    changed      bigint NOT NULL
) WITH (fillfactor = 90);
CREATE UNIQUE INDEX indicator_key ON indicator (key);
CREATE INDEX indicator_seen_day ON indicator (seen_day);

CREATE TABLE observation (
    indicator_id  bigint NOT NULL,
    source_id     bigint NOT NULL,
    fp            bigint NOT NULL,
    severity      smallint NOT NULL,
    reputation    smallint,
    safe          smallint NOT NULL,
    echo          smallint NOT NULL,
    hits          bigint NOT NULL,
    first_seen    bigint NOT NULL,
    last_seen     bigint NOT NULL,
    expires       bigint,
    tagset        bigint NOT NULL,
    comment       text,
    link          text,
    PRIMARY KEY (indicator_id, source_id)
) WITH (fillfactor = 90);

CREATE TABLE run (
    id           bigserial PRIMARY KEY,
    job          text NOT NULL,
    source_id    bigint,
    subject      text NOT NULL,
    identity     text,
    state        text NOT NULL,
    observed_at  bigint NOT NULL,
    started_at   bigint NOT NULL,
    ended_at     bigint,
    heartbeat_at bigint NOT NULL,
    owner        text NOT NULL,
    checkpoint   text,
    counts       text NOT NULL DEFAULT '{}',
    error        text
);
CREATE INDEX run_subject ON run (subject, id);
CREATE INDEX run_identity ON run (identity) WHERE identity IS NOT NULL;

CREATE TABLE run_log (
    run_id   bigint NOT NULL,
    seq      bigint NOT NULL,
    at       bigint NOT NULL,
    level    text NOT NULL,
    message  text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE ingest_hour (
    hour       bigint NOT NULL,
    source_id  bigint NOT NULL,
    new        bigint NOT NULL,
    updated    bigint NOT NULL,
    unchanged  bigint NOT NULL,
    PRIMARY KEY (hour, source_id)
);
