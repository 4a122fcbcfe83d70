//! Server configuration: address, database, vendor secrets, lifetimes, limits.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distributions::Alphanumeric;
use tokenkeeper::clock::{Clock, SystemClock};

use crate::store::Database;

/// Shows a secret as its first four characters and its length, never the whole value.
pub(crate) fn redact(secret: &str) -> String {
    let prefix: String = secret.chars().take(4).collect();
    format!("{prefix}…({} chars)", secret.chars().count())
}

/// A random alphanumeric string from the OS-seeded thread RNG.
pub(crate) fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// The secrets the server signs with. `Debug` shows only a prefix and a length of each.
///
/// [`Secrets::generate`] (the default) makes fresh random values on every start, which is what
/// a loopback demo wants; pass fixed values to make tokens verifiable across restarts.
#[derive(Clone)]
pub struct Secrets {
    /// Agora App ID (32 hex characters).
    pub agora_app_id: String,
    /// Agora App Certificate (32 hex characters).
    pub agora_app_certificate: String,
    /// ZEGO AppID.
    pub zego_app_id: u32,
    /// ZEGO ServerSecret (32 characters: the AES-256 key).
    pub zego_server_secret: String,
    /// HS256 key of `vendor: "jwt"` RTC tokens (the room server verifies them with it).
    pub jwt_key: String,
    /// HS256 key of OAuth access tokens.
    pub oauth_signing_key: String,
    /// Digital Samba-style team id (`td` claim).
    pub samba_team_id: String,
    /// Digital Samba-style developer key: the Bearer credential of
    /// `POST /api/v1/rooms/{room}/token` and the HS256 key of the tokens it returns.
    pub samba_developer_key: String,
    /// Bearer credential of the `/admin/...` endpoints.
    pub admin_key: String,
}

impl Secrets {
    /// Fresh random secrets of the right shapes.
    pub fn generate() -> Self {
        Self {
            agora_app_id: random_hex(16),
            agora_app_certificate: random_hex(16),
            zego_app_id: rand::thread_rng().gen_range(1_000_000_000..=u32::MAX),
            zego_server_secret: random_hex(16),
            jwt_key: random_string(48),
            oauth_signing_key: random_string(48),
            samba_team_id: format!("team-{}", random_hex(4)),
            samba_developer_key: format!("dsk_{}", random_string(40)),
            admin_key: format!("adm_{}", random_string(40)),
        }
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Self::generate()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("agora_app_id", &self.agora_app_id)
            .field(
                "agora_app_certificate",
                &redact(&self.agora_app_certificate),
            )
            .field("zego_app_id", &self.zego_app_id)
            .field("zego_server_secret", &redact(&self.zego_server_secret))
            .field("jwt_key", &redact(&self.jwt_key))
            .field("oauth_signing_key", &redact(&self.oauth_signing_key))
            .field("samba_team_id", &self.samba_team_id)
            .field("samba_developer_key", &redact(&self.samba_developer_key))
            .field("admin_key", &redact(&self.admin_key))
            .finish()
    }
}

/// Per-user rate limit of the RTC token endpoint: a token bucket.
///
/// Default: 20 requests per second with bursts of 40. A request over the limit gets
/// `429 Too Many Requests` with `Retry-After` (whole seconds, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateLimit {
    /// Sustained requests per second per user.
    pub per_sec: f64,
    /// Bucket size: requests allowed at once after a quiet period.
    pub burst: u32,
}

/// Default per-user rate limit (20/s, burst 40).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    per_sec: 20.0,
    burst: 40,
};
/// Default lifetime of RTC tokens: 60 s.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Default longest lifetime a client may ask for with `ttl_secs`: 24 h.
pub const DEFAULT_MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default lifetime of OAuth access tokens: 1 h.
pub const DEFAULT_OAUTH_ACCESS_TTL: Duration = Duration::from_secs(3600);
/// Default lifetime of OAuth refresh tokens: 30 days.
pub const DEFAULT_OAUTH_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default lifetime of OAuth authorization codes: 60 s.
pub const DEFAULT_OAUTH_CODE_TTL: Duration = Duration::from_secs(60);
/// Default room warning: `will_expire` is sent 30 s before a member's token expires
/// (at once, if less remains when it joins or renews).
pub const DEFAULT_ROOM_WARN_BEFORE: Duration = Duration::from_secs(30);
/// Default time a WebSocket client has to send `join`: 10 s.
pub const DEFAULT_ROOM_JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request body cap: 64 KiB (larger bodies get `413`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default time a client has to send a request's headers (and, on a kept-alive connection,
/// the next request's): 15 s. Slower connections are closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time a client has to send a request body: 15 s (`408 body_timeout` after that).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Default cap on open HTTP connections: 4096, lowered at start to fit the process's open-file
/// limit (`ulimit -n`) with room for the database and the log. Past the cap, new connections
/// wait in the listen backlog until one closes.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default throttle of failed authentications (wrong API key, admin key, developer key or
/// OAuth client credentials), per client address and per OAuth client: bursts of 10, then one
/// every two seconds. Past it: `429` with `Retry-After`, even for the right credential.
pub const DEFAULT_AUTH_FAILURE_LIMIT: RateLimit = RateLimit {
    per_sec: 0.5,
    burst: 10,
};

/// Everything [`crate::Server::start`] needs. `ServerConfig::default()` is a loopback server on
/// an ephemeral port with an in-memory database and random secrets.
///
/// ```
/// use std::time::Duration;
/// let config = tokenkeeper_server::ServerConfig {
///     token_ttl: Duration::from_secs(3),
///     rate_limit: None,
///     ..Default::default()
/// };
/// assert_eq!(config.addr.ip().to_string(), "127.0.0.1");
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address. Default `127.0.0.1:0` (loopback, ephemeral port).
    pub addr: SocketAddr,
    /// Where the state lives. Default [`Database::Memory`] (SQLite in memory, lost when the
    /// server stops); [`Database::Sqlite`] for a file, [`Database::Postgres`] for several
    /// instances sharing one database.
    pub db: Database,
    /// Signing secrets and API keys. Default: random.
    pub secrets: Secrets,
    /// Lifetime of RTC tokens when the request names none. Default [`DEFAULT_TOKEN_TTL`].
    pub token_ttl: Duration,
    /// Upper bound of a requested `ttl_secs`. Default [`DEFAULT_MAX_TOKEN_TTL`].
    pub max_token_ttl: Duration,
    /// Per-user rate limit of the RTC token endpoint; `None` turns it off.
    /// Default [`DEFAULT_RATE_LIMIT`].
    pub rate_limit: Option<RateLimit>,
    /// OAuth access-token lifetime. Default [`DEFAULT_OAUTH_ACCESS_TTL`].
    pub oauth_access_ttl: Duration,
    /// OAuth refresh-token lifetime. Default [`DEFAULT_OAUTH_REFRESH_TTL`].
    pub oauth_refresh_ttl: Duration,
    /// OAuth authorization-code lifetime. Default [`DEFAULT_OAUTH_CODE_TTL`].
    pub oauth_code_ttl: Duration,
    /// How long before expiry the room server sends `will_expire`. Default [`DEFAULT_ROOM_WARN_BEFORE`].
    pub room_warn_before: Duration,
    /// How long a WebSocket client may take to send `join`. Default [`DEFAULT_ROOM_JOIN_TIMEOUT`].
    pub room_join_timeout: Duration,
    /// Request body cap in bytes. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// Time to send request headers. Default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Time to send a request body. Default [`DEFAULT_BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// Open HTTP connections at most. Default [`DEFAULT_MAX_CONNECTIONS`] (fitted to the
    /// open-file limit at start).
    pub max_connections: usize,
    /// Throttle of failed authentications. Default [`DEFAULT_AUTH_FAILURE_LIMIT`].
    pub auth_failure_limit: RateLimit,
    /// Wall clock the server reads (the injected skew is added on top). Default: the system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: Database::Memory,
            secrets: Secrets::generate(),
            token_ttl: DEFAULT_TOKEN_TTL,
            max_token_ttl: DEFAULT_MAX_TOKEN_TTL,
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            oauth_access_ttl: DEFAULT_OAUTH_ACCESS_TTL,
            oauth_refresh_ttl: DEFAULT_OAUTH_REFRESH_TTL,
            oauth_code_ttl: DEFAULT_OAUTH_CODE_TTL,
            room_warn_before: DEFAULT_ROOM_WARN_BEFORE,
            room_join_timeout: DEFAULT_ROOM_JOIN_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            auth_failure_limit: DEFAULT_AUTH_FAILURE_LIMIT,
            clock: Arc::new(SystemClock::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_debug_shows_prefix_and_length_only() {
        let s = Secrets::generate();
        let shown = format!("{s:?}");
        assert!(!shown.contains(&s.jwt_key));
        assert!(!shown.contains(&s.admin_key));
        assert!(!shown.contains(&s.zego_server_secret));
        assert!(shown.contains("(48 chars)"));
    }

    #[test]
    fn generated_secrets_have_vendor_shapes() {
        let s = Secrets::generate();
        assert_eq!(s.agora_app_id.len(), 32);
        assert_eq!(s.agora_app_certificate.len(), 32);
        assert_eq!(s.zego_server_secret.len(), 32);
        assert!(s.zego_app_id >= 1_000_000_000);
    }
}
