//! SQLite state: users, streams, OAuth clients/codes/refresh tokens, and the audit log.
//!
//! One connection behind a mutex. Handlers reach it through `spawn_blocking`; the RTC hot path
//! does not touch it at all (users and streams are cached in memory, audit rows are written in
//! batches by a dedicated thread).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Schema, created on first start (idempotent).
const SCHEMA: &str = "
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
";

/// A database failure (the message is logged; clients get a generic 500).
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct DbError(#[from] rusqlite::Error);

/// A user row.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub uid: u32,
    pub name: String,
    pub key_hash: String,
    pub banned: bool,
}

/// A stream row.
#[derive(Debug, Clone)]
pub struct StreamRow {
    pub channel: String,
    pub owner: String,
    pub live: bool,
}

/// An OAuth authorization code row.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    pub used: bool,
}

/// A refresh-token row (the token itself is never stored, only its sha256).
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// One audit-log entry. It never holds a token.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Server time (unix ms).
    pub ts_ms: i64,
    /// `rtc_issue`, `rtc_refresh`, `oauth_authorization_code`, `oauth_refresh`, `room_token`.
    pub kind: &'static str,
    /// The authenticated user (or the room token's `ud`), when known.
    pub user_id: Option<String>,
    /// `agora`, `zego`, `jwt` (as sent), or `oauth`.
    pub vendor: Option<String>,
    /// Channel or room.
    pub channel: Option<String>,
    /// `publisher`/`subscriber` (RTC) or the room role.
    pub role: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// `issued` or the error code.
    pub outcome: String,
    /// Expiry of the issued token (unix s).
    pub expires_at: Option<i64>,
}

/// An audit row as read back (`GET /admin/audit`): an [`AuditEntry`] with its row id.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Row id (ascending in write order).
    pub id: i64,
    /// Server time (unix ms).
    pub ts_ms: i64,
    /// See [`AuditEntry::kind`].
    pub kind: String,
    /// See [`AuditEntry::user_id`].
    pub user_id: Option<String>,
    /// See [`AuditEntry::vendor`].
    pub vendor: Option<String>,
    /// See [`AuditEntry::channel`].
    pub channel: Option<String>,
    /// See [`AuditEntry::role`].
    pub role: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// `issued` or the error code.
    pub outcome: String,
    /// Expiry of the issued token (unix s).
    pub expires_at: Option<i64>,
}

/// The shared connection.
#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (or creates) the database and its schema. `None` opens an in-memory database.
    pub fn open(path: Option<&Path>) -> Result<Self, DbError> {
        let conn = match path {
            Some(p) => {
                let c = Connection::open(p)?;
                c.pragma_update(None, "journal_mode", "WAL")?;
                c.pragma_update(None, "synchronous", "NORMAL")?;
                c
            }
            None => Connection::open_in_memory()?,
        };
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection locked.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn.lock();
        f(&mut conn)
    }

    /// All users (loaded into the in-memory cache at start).
    pub fn load_users(&self) -> Result<Vec<UserRow>, DbError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, uid, name, key_hash, banned FROM users")?;
            let rows = st.query_map([], |r| {
                Ok(UserRow {
                    id: r.get(0)?,
                    uid: r.get(1)?,
                    name: r.get(2)?,
                    key_hash: r.get(3)?,
                    banned: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// All streams (loaded into the in-memory cache at start).
    pub fn load_streams(&self) -> Result<Vec<StreamRow>, DbError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT channel, owner, live FROM streams")?;
            let rows = st.query_map([], |r| {
                Ok(StreamRow {
                    channel: r.get(0)?,
                    owner: r.get(1)?,
                    live: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    pub fn insert_user(&self, u: &UserRow, now_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO users (id, uid, name, key_hash, banned, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![u.id, u.uid, u.name, u.key_hash, u.banned, now_ms],
            )?;
            Ok(())
        })
    }

    pub fn set_banned(&self, user_id: &str, banned: bool) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET banned = ?2 WHERE id = ?1",
                params![user_id, banned],
            )?;
            Ok(())
        })
    }

    pub fn upsert_stream(&self, s: &StreamRow, now_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO streams (channel, owner, live, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(channel) DO UPDATE SET owner = ?2, live = ?3, created_at = ?4, ended_at = NULL",
                params![s.channel, s.owner, s.live, now_ms],
            )?;
            Ok(())
        })
    }

    pub fn end_stream(&self, channel: &str, now_ms: i64) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "UPDATE streams SET live = 0, ended_at = ?2 WHERE channel = ?1",
                params![channel, now_ms],
            )?;
            Ok(())
        })
    }

    pub fn upsert_client(
        &self,
        client_id: &str,
        secret_hash: Option<&str>,
        now_ms: i64,
    ) -> Result<(), DbError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO oauth_clients (client_id, secret_hash, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(client_id) DO UPDATE SET secret_hash = ?2",
                params![client_id, secret_hash, now_ms],
            )?;
            Ok(())
        })
    }

    /// `Some(secret_hash)` if the client exists (`Some(None)` for a public client).
    pub fn client_secret_hash(&self, client_id: &str) -> Result<Option<Option<String>>, DbError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT secret_hash FROM oauth_clients WHERE client_id = ?1",
                params![client_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
        })
    }
}

/// A message to the audit writer thread.
#[derive(Debug)]
pub(crate) enum AuditMsg {
    Entry(AuditEntry),
    /// Write everything queued so far, then acknowledge.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Largest number of rows written in one transaction.
const AUDIT_BATCH: usize = 4096;

/// Starts the audit writer: entries arrive over a channel and are written in batches, one
/// transaction each, so the token endpoint never waits on SQLite. Ends when every sender is dropped.
pub(crate) fn spawn_audit_writer(db: Db) -> (mpsc::Sender<AuditMsg>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<AuditMsg>();
    let handle = std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut entries = Vec::new();
                let mut acks = Vec::new();
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        AuditMsg::Entry(e) => entries.push(e),
                        AuditMsg::Flush(ack) => acks.push(ack),
                    }
                    if entries.len() < AUDIT_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !entries.is_empty() {
                    if let Err(e) = write_batch(&db, &entries) {
                        tracing::error!(error = %e, rows = entries.len(), "audit batch not written");
                    }
                }
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the audit writer thread: {e}"));
    (tx, handle)
}

fn write_batch(db: &Db, entries: &[AuditEntry]) -> Result<(), DbError> {
    db.with(|c| {
        let tx = c.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO audit (ts_ms, kind, user_id, vendor, channel, role, status, outcome, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for e in entries {
                st.execute(params![
                    e.ts_ms, e.kind, e.user_id, e.vendor, e.channel, e.role, e.status, e.outcome, e.expires_at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    })
}

/// The newest `limit` audit rows, newest first.
pub fn read_audit(db: &Db, limit: u32) -> Result<Vec<AuditRow>, DbError> {
    db.with(|c| {
        let mut st = c.prepare(
            "SELECT id, ts_ms, kind, user_id, vendor, channel, role, status, outcome, expires_at
             FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st.query_map(params![limit], |r| {
            Ok(AuditRow {
                id: r.get(0)?,
                ts_ms: r.get(1)?,
                kind: r.get(2)?,
                user_id: r.get(3)?,
                vendor: r.get(4)?,
                channel: r.get(5)?,
                role: r.get(6)?,
                status: r.get(7)?,
                outcome: r.get(8)?,
                expires_at: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}
