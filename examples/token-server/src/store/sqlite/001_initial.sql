-- The schema of the first release.
CREATE TABLE IF NOT EXISTS users (
    id         TEXT PRIMARY KEY,
    uid        INTEGER NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    banned     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    channel    TEXT PRIMARY KEY,
    owner      TEXT NOT NULL REFERENCES users(id),
    live       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at   INTEGER
);
CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT,
    expires_at     INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash     TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family_id);
CREATE TABLE IF NOT EXISTS audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    vendor     TEXT,
    channel    TEXT,
    role       TEXT,
    status     INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    expires_at INTEGER
);
