//! Where the server keeps its state: one [`Store`] trait, two implementations.
//!
//! - [`sqlite`]: the embedded default (a file, or memory). One instance owns it, so users,
//!   streams and rate-limit buckets are served from memory and written through to SQLite.
//! - [`postgres`]: the shared store for several instances behind a load balancer. Every check
//!   reads the database, rate-limit buckets are rows updated atomically, and refresh-token
//!   rotation is a conditional update, so bans, stream ends, rate limits and refresh-token
//!   families hold across instances. Room kicks reach the other instances through
//!   `LISTEN`/`NOTIFY`.
//!
//! Credentials (API keys, client secrets, codes, refresh tokens) are stored as sha256 hashes
//! only; no method takes or returns a plaintext credential.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::RateLimit;

/// Which database the server uses (`--db`).
///
/// `Debug` and `Display` never show a password in a PostgreSQL URL.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Database {
    /// SQLite in memory: state is lost when the server stops (the default).
    #[default]
    Memory,
    /// A SQLite file, created with its schema on first start. One server instance at a time.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host/db`): several instances may share it.
    Postgres(String),
}

impl Database {
    /// `postgres://…` and `postgresql://…` select PostgreSQL; anything else is a SQLite path.
    ///
    /// ```
    /// use tokenkeeper_server::Database;
    /// assert!(matches!(Database::parse("postgres://tk@127.0.0.1/tk"), Database::Postgres(_)));
    /// assert!(matches!(Database::parse("state.sqlite"), Database::Sqlite(_)));
    /// ```
    pub fn parse(s: &str) -> Self {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Self::Postgres(s.to_owned())
        } else {
            Self::Sqlite(PathBuf::from(s))
        }
    }
}

/// A PostgreSQL URL with its password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable url>".into();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let shown = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{user}:***@{host}")
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_owned(),
    };
    // A password may also come as a query parameter.
    let tail = match tail.find("password=") {
        Some(i) => format!("{}password=***", &tail[..i]),
        None => tail.to_owned(),
    };
    format!("{scheme}://{shown}{tail}")
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("SQLite in memory"),
            Self::Sqlite(p) => write!(f, "SQLite file {}", p.display()),
            Self::Postgres(url) => write!(f, "PostgreSQL {}", redact_url(url)),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A database failure. The message names the operation; it never holds a credential.
#[derive(Debug, thiserror::Error)]
#[error("database ({op}): {detail}")]
pub struct StoreError {
    op: &'static str,
    detail: String,
}

impl StoreError {
    pub(crate) fn new(op: &'static str, detail: impl fmt::Display) -> Self {
        Self {
            op,
            detail: detail.to_string(),
        }
    }
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// A user as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub id: String,
    pub uid: u32,
    pub name: String,
    pub banned: bool,
}

/// A user to create. `uid: None` takes the next free uid from 1000.
#[derive(Debug, Clone)]
pub(crate) struct NewUserRow {
    pub id: String,
    pub uid: Option<u32>,
    pub name: String,
    pub key_hash: String,
}

/// Why a user could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserConflict {
    Id,
    Uid,
    Key,
}

/// A stream as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stream {
    pub owner: String,
    pub live: bool,
}

/// The answer of a rate-limit bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed,
    /// Empty bucket: retry after this many whole seconds. `first` is true for the first
    /// refusal since the last allowed request (only that one is audited).
    Denied {
        retry_after_secs: u64,
        first: bool,
    },
}

/// An OAuth client (`secret_hash: None` for a public client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientRec {
    pub client_id: String,
    pub secret_hash: Option<String>,
    /// Registered redirect URIs (exact match); empty: the client registered none.
    pub redirect_uris: Vec<String>,
}

/// An authorization code (stored under the sha256 of the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeRec {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    pub redirect_uri: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// The token family issued from this code once it was redeemed.
    pub family_id: Option<String>,
}

/// A refresh-token family: every token descended from one authorization. Revoking it revokes
/// its refresh tokens and the access tokens issued from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FamilyRec {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
}

/// A refresh token to store (under the sha256 of the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewRefresh {
    pub token_hash: String,
    pub family_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A stored refresh token with the state of its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshView {
    pub family: FamilyRec,
    pub expires_at: i64,
    pub used: bool,
    /// The family's revocation reason, when revoked.
    pub revoked: Option<String>,
}

/// One audit-log entry. It never holds a token; every text field is bounded (see
/// [`AUDIT_FIELD_MAX`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Server time (unix ms).
    pub ts_ms: i64,
    /// `rtc_issue`, `rtc_refresh`, `oauth_authorization_code`, `oauth_refresh`, `room_token`.
    pub kind: &'static str,
    /// The authenticated user (or the room token's `ud`), when known.
    pub user_id: Option<String>,
    /// `agora`, `zego`, `jwt`, or `oauth`; only values the server knows.
    pub vendor: Option<String>,
    /// Channel or room (validated: at most 64 bytes).
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

/// Longest text an audit field keeps (longer values are cut at a character boundary).
pub const AUDIT_FIELD_MAX: usize = 64;

fn bound(s: Option<String>) -> Option<String> {
    s.map(|mut s| {
        if s.len() > AUDIT_FIELD_MAX {
            let cut = (0..=AUDIT_FIELD_MAX)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            s.truncate(cut);
        }
        s
    })
}

impl AuditEntry {
    /// The entry with every text field cut to [`AUDIT_FIELD_MAX`] bytes.
    pub(crate) fn bounded(self) -> Self {
        Self {
            user_id: bound(self.user_id),
            vendor: bound(self.vendor),
            channel: bound(self.channel),
            role: bound(self.role),
            outcome: bound(Some(self.outcome)).unwrap_or_default(),
            ..self
        }
    }
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

/// A room kick to deliver on every instance (ban, stream end).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct KickNotice {
    /// The instance that already kicked its own members.
    pub origin: String,
    /// `user` (ban) or `room` (stream end).
    pub what: String,
    /// User id or room name.
    pub id: String,
}

/// The server's state. Every method is one atomic step; the ones that decide a race
/// (`claim_code`, `rotate_refresh`, `take`) are conditional updates, so two instances on one
/// PostgreSQL database cannot both win.
#[async_trait]
pub(crate) trait Store: Send + Sync + fmt::Debug {
    // ---- directory ----
    async fn user_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<User>>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_uid(&self, uid: u32) -> StoreResult<Option<User>>;
    async fn insert_user(
        &self,
        new: NewUserRow,
        now_ms: i64,
    ) -> StoreResult<Result<User, UserConflict>>;
    /// `false` when the user does not exist.
    async fn set_banned(&self, id: &str, banned: bool) -> StoreResult<bool>;
    async fn stream(&self, channel: &str) -> StoreResult<Option<Stream>>;
    async fn upsert_stream(&self, channel: &str, owner: &str, now_ms: i64) -> StoreResult<()>;
    /// `false` when the stream does not exist.
    async fn end_stream(&self, channel: &str, now_ms: i64) -> StoreResult<bool>;

    // ---- rate limits ----
    /// Takes one request from `key`'s token bucket.
    async fn take(&self, key: &str, limit: RateLimit, now_ms: i64) -> StoreResult<Decision>;
    /// Without taking anything: `Some(retry_after_secs)` when `key`'s bucket holds less than
    /// one request now.
    async fn blocked(&self, key: &str, limit: RateLimit, now_ms: i64) -> StoreResult<Option<u64>>;

    // ---- OAuth ----
    async fn upsert_client(&self, client: &ClientRec, now_ms: i64) -> StoreResult<()>;
    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRec>>;
    async fn insert_code(&self, code_hash: &str, code: &CodeRec) -> StoreResult<()>;
    async fn code(&self, code_hash: &str) -> StoreResult<Option<CodeRec>>;
    /// Marks the code redeemed, creates its family and first refresh token, all or nothing.
    /// `false` when the code was already redeemed (another request won).
    async fn claim_code(
        &self,
        code_hash: &str,
        family: &FamilyRec,
        first: &NewRefresh,
        now: i64,
    ) -> StoreResult<bool>;
    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshView>>;
    /// Marks the token used and stores its successor, all or nothing. `false` when the token
    /// was already used or its family revoked (another request won, or a revocation).
    async fn rotate_refresh(
        &self,
        token_hash: &str,
        successor: &NewRefresh,
        now: i64,
    ) -> StoreResult<bool>;
    /// Revokes one family (if not yet revoked); returns whether it changed.
    async fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> StoreResult<bool>;
    /// Revokes every live family of `user_id` and/or `client_id` (both `None`: all).
    async fn revoke_families(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64>;
    /// `None` for an unknown family, else its revocation reason (`Some(None)`: live).
    async fn family_revoked(&self, family_id: &str) -> StoreResult<Option<Option<String>>>;

    // ---- audit ----
    async fn write_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    async fn read_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>>;

    // ---- several instances ----
    /// Tells the other instances to kick room members (PostgreSQL `NOTIFY`; no-op on SQLite).
    async fn publish_kick(&self, notice: &KickNotice) -> StoreResult<()>;
    /// Delivers kicks published by any instance to `tx` until the server stops
    /// (PostgreSQL `LISTEN`; SQLite returns at once).
    async fn listen_kicks(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<KickNotice>,
    ) -> StoreResult<()>;
    /// Drops stale rate-limit buckets and long-expired codes.
    async fn maintain(&self, now_ms: i64) -> StoreResult<()>;
}

/// Opens `db` (creating or migrating its schema).
pub(crate) async fn open(db: &Database) -> StoreResult<Arc<dyn Store>> {
    Ok(match db {
        Database::Memory => Arc::new(sqlite::SqliteStore::open(None)?),
        Database::Sqlite(p) => Arc::new(sqlite::SqliteStore::open(Some(p))?),
        Database::Postgres(url) => Arc::new(postgres::PgStore::connect(url).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_never_show_the_password() {
        let db = Database::parse("postgres://tk:hunter2secret@127.0.0.1:5432/tk?sslmode=disable");
        let shown = format!("{db:?} {db}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(shown.contains("tk:***@127.0.0.1:5432/tk"), "{shown}");
        let q = redact_url("postgresql://tk@localhost/tk?password=hunter2secret");
        assert_eq!(q, "postgresql://tk@localhost/tk?password=***");
    }

    #[test]
    fn audit_fields_are_cut_to_the_bound_at_a_char_boundary() {
        let e = AuditEntry {
            ts_ms: 0,
            kind: "rtc_issue",
            user_id: Some("é".repeat(100)),
            vendor: None,
            channel: Some("x".repeat(70_000)),
            role: None,
            status: 400,
            outcome: "invalid_channel".into(),
            expires_at: None,
        }
        .bounded();
        assert_eq!(e.channel.as_deref().map(str::len), Some(AUDIT_FIELD_MAX));
        assert_eq!(e.user_id.as_deref().map(str::len), Some(AUDIT_FIELD_MAX));
    }
}
