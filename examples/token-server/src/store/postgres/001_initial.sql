-- The reference backend's state, shared by every instance.
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    uid        BIGINT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    banned     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE TABLE streams (
    channel    TEXT PRIMARY KEY,
    owner      TEXT NOT NULL REFERENCES users(id),
    live       BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    secret_hash   TEXT,
    redirect_uris TEXT[] NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL
);
CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT,
    redirect_uri   TEXT,
    expires_at     BIGINT NOT NULL,
    used           BOOLEAN NOT NULL DEFAULT FALSE,
    family_id      TEXT
);
CREATE TABLE oauth_families (
    family_id      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX oauth_families_user ON oauth_families(user_id);
CREATE INDEX oauth_families_client ON oauth_families(client_id);
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES oauth_families(family_id),
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE TABLE rate_buckets (
    key           TEXT PRIMARY KEY,
    tokens        DOUBLE PRECISION NOT NULL,
    updated_ms    BIGINT NOT NULL,
    denied_streak BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE audit (
    id         BIGSERIAL PRIMARY KEY,
    ts_ms      BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    vendor     TEXT,
    channel    TEXT,
    role       TEXT,
    status     INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    expires_at BIGINT
);
