//! The shared store: PostgreSQL, for several server instances behind a load balancer.
//!
//! Nothing is cached: every check reads the database, so a ban or a stream end made through one
//! instance holds on the next request at every instance. Races are decided by the database:
//!
//! - rate limits: one `INSERT … ON CONFLICT DO UPDATE` per request refills and takes from the
//!   bucket under the row lock;
//! - refresh-token rotation and code redemption: `UPDATE … WHERE used_at IS NULL` (resp.
//!   `NOT used`) in a transaction with the successor's insert; of two instances racing on one
//!   token, the second finds the row already used and wins nothing;
//! - room kicks (ban, stream end): `NOTIFY tokenkeeper_kicks`, which every instance `LISTEN`s to.
//!
//! Migrations are SQL files applied in order under an advisory lock, so instances starting
//! together do not race; `schema_migrations` records what was applied.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::{
    AuditEntry, AuditRow, ClientRec, CodeRec, Decision, FamilyRec, KickNotice, NewRefresh,
    NewUserRow, RefreshView, Store, StoreError, StoreResult, Stream, User, UserConflict,
    redact_url,
};
use crate::config::RateLimit;
use crate::limiter::retry_after_secs;

mod kicks;
mod migrate;

use kicks::KICK_CHANNEL;
/// Makes the current transaction's commit wait for the WAL flush again.
const DURABLE: &str = "SET LOCAL synchronous_commit TO on";
/// Pooled connections per instance.
pub const PG_POOL_SIZE: usize = 16;

/// PostgreSQL store (see the module docs).
pub(crate) struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    shown_url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown_url)
            .finish_non_exhaustive()
    }
}

/// A driver error as a [`StoreError`]: the SQLSTATE and the server's message, never the query
/// parameters (PostgreSQL's `DETAIL` can quote them).
pub(super) fn pg(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| match e.as_db_error() {
        Some(db) => StoreError::new(op, format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::new(op, e),
    }
}

fn pool_err(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> StoreError {
    move |e| match e {
        deadpool_postgres::PoolError::Backend(e) => pg(op)(e),
        other => StoreError::new(op, other),
    }
}

fn row_user(r: &tokio_postgres::Row) -> Result<User, tokio_postgres::Error> {
    let uid: i64 = r.try_get("uid")?;
    Ok(User {
        id: r.try_get("id")?,
        uid: u32::try_from(uid).unwrap_or(0),
        name: r.try_get("name")?,
        banned: r.try_get("banned")?,
    })
}

impl PgStore {
    /// Connects, migrates the schema and returns the store.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let shown_url = redact_url(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::new(
                "parse url",
                format!("{shown_url} is not a PostgreSQL URL ({e}); use postgres://user:password@host:port/database"),
            )
        })?;
        // Most writes are rate-limit buckets and audit rows: losing the last fraction of a second
        // of them in a crash is harmless, waiting for a WAL flush on each request is not. So the
        // pool's sessions commit asynchronously, and every write that must survive a crash
        // (users, streams, bans, clients, codes, token families, rotations) turns the flush
        // back on for its own transaction (`durable`).
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c synchronous_commit=off"),
            _ => "-c synchronous_commit=off".to_owned(),
        };
        config.options(&options);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(PG_POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::new("pool", e))?;
        let store = Self {
            pool,
            config,
            shown_url,
        };
        store.migrate().await.map_err(|e| {
            StoreError::new(
                "connect",
                format!(
                    "{e}; check that PostgreSQL runs at {} and that the user may create tables",
                    store.shown_url
                ),
            )
        })?;
        Ok(store)
    }

    /// Runs one write that must survive a crash: in a transaction with `synchronous_commit`
    /// on (pool connections run with it off, see [`PgStore::connect`]).
    async fn durable(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<u64> {
        let mut c = self.client(op).await?;
        let tx = c.transaction().await.map_err(pg(op))?;
        tx.batch_execute(DURABLE).await.map_err(pg(op))?;
        let n = tx.execute(sql, params).await.map_err(pg(op))?;
        tx.commit().await.map_err(pg(op))?;
        Ok(n)
    }

    async fn client(&self, op: &'static str) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err(op))
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut c = self.client("migrate").await?;
        migrate::run(&mut c).await
    }

    async fn one_user(
        &self,
        sql: &str,
        arg: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> StoreResult<Option<User>> {
        let c = self.client("read user").await?;
        let st = c.prepare_cached(sql).await.map_err(pg("read user"))?;
        let row = c.query_opt(&st, &[arg]).await.map_err(pg("read user"))?;
        row.as_ref()
            .map(row_user)
            .transpose()
            .map_err(pg("read user"))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn user_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<User>> {
        self.one_user(
            "SELECT id, uid, name, banned FROM users WHERE key_hash = $1",
            &key_hash,
        )
        .await
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.one_user("SELECT id, uid, name, banned FROM users WHERE id = $1", &id)
            .await
    }

    async fn user_by_uid(&self, uid: u32) -> StoreResult<Option<User>> {
        self.one_user(
            "SELECT id, uid, name, banned FROM users WHERE uid = $1",
            &i64::from(uid),
        )
        .await
    }

    async fn insert_user(
        &self,
        new: NewUserRow,
        now_ms: i64,
    ) -> StoreResult<Result<User, UserConflict>> {
        let mut c = self.client("insert user").await?;
        let uid = new.uid.map(i64::from);
        // Instances may race for the next free uid: the unique index decides, and the loser
        // tries again with the next one.
        for _ in 0..8 {
            let tx = c.transaction().await.map_err(pg("insert user"))?;
            tx.batch_execute(DURABLE).await.map_err(pg("insert user"))?;
            let r = tx
                .query_one(
                    "INSERT INTO users (id, uid, name, key_hash, banned, created_at)
                     VALUES ($1, COALESCE($2,
                        CASE WHEN NOT EXISTS (SELECT 1 FROM users WHERE uid = 1000) THEN 1000
                        ELSE (SELECT MIN(u.uid) + 1 FROM users u WHERE u.uid >= 1000
                              AND NOT EXISTS (SELECT 1 FROM users v WHERE v.uid = u.uid + 1)) END),
                        $3, $4, FALSE, $5)
                     RETURNING id, uid, name, banned",
                    &[&new.id, &uid, &new.name, &new.key_hash, &now_ms],
                )
                .await;
            match r {
                Ok(row) => {
                    let user = row_user(&row).map_err(pg("insert user"))?;
                    if i64::from(user.uid) != row.get::<_, i64>("uid") {
                        // past the u32 range: rolled back when `tx` drops
                        return Ok(Err(UserConflict::Uid));
                    }
                    tx.commit().await.map_err(pg("insert user"))?;
                    return Ok(Ok(user));
                }
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    let constraint = e
                        .as_db_error()
                        .and_then(|d| d.constraint())
                        .unwrap_or("")
                        .to_owned();
                    match constraint.as_str() {
                        "users_pkey" => return Ok(Err(UserConflict::Id)),
                        "users_key_hash_key" => return Ok(Err(UserConflict::Key)),
                        _ if uid.is_some() => return Ok(Err(UserConflict::Uid)),
                        _ => continue,
                    }
                }
                Err(e) => return Err(pg("insert user")(e)),
            }
        }
        Ok(Err(UserConflict::Uid))
    }

    async fn set_banned(&self, id: &str, banned: bool) -> StoreResult<bool> {
        let n = self
            .durable(
                "ban",
                "UPDATE users SET banned = $2 WHERE id = $1",
                &[&id, &banned],
            )
            .await?;
        Ok(n == 1)
    }

    async fn stream(&self, channel: &str) -> StoreResult<Option<Stream>> {
        let c = self.client("read stream").await?;
        let st = c
            .prepare_cached("SELECT owner, live FROM streams WHERE channel = $1")
            .await
            .map_err(pg("read stream"))?;
        let row = c
            .query_opt(&st, &[&channel])
            .await
            .map_err(pg("read stream"))?;
        Ok(row.map(|r| Stream {
            owner: r.get(0),
            live: r.get(1),
        }))
    }

    async fn upsert_stream(&self, channel: &str, owner: &str, now_ms: i64) -> StoreResult<()> {
        self.durable(
            "upsert stream",
            "INSERT INTO streams (channel, owner, live, created_at) VALUES ($1, $2, TRUE, $3)
             ON CONFLICT (channel) DO UPDATE SET owner = $2, live = TRUE, created_at = $3, ended_at = NULL",
            &[&channel, &owner, &now_ms],
        )
        .await?;
        Ok(())
    }

    async fn end_stream(&self, channel: &str, now_ms: i64) -> StoreResult<bool> {
        let n = self
            .durable(
                "end stream",
                "UPDATE streams SET live = FALSE, ended_at = $2 WHERE channel = $1",
                &[&channel, &now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    async fn take(&self, key: &str, limit: RateLimit, now_ms: i64) -> StoreResult<Decision> {
        let c = self.client("rate limit").await?;
        let st = c
            .prepare_cached(
                "INSERT INTO rate_buckets AS b (key, tokens, updated_ms, denied_streak)
                 VALUES ($1, $2::float8 - 1, $3, 0)
                 ON CONFLICT (key) DO UPDATE SET
                   tokens = CASE
                     WHEN LEAST($2::float8, b.tokens + GREATEST(0::float8, $3::float8 - b.updated_ms::float8) / 1000.0 * $4::float8) >= 1
                     THEN LEAST($2::float8, b.tokens + GREATEST(0::float8, $3::float8 - b.updated_ms::float8) / 1000.0 * $4::float8) - 1
                     ELSE LEAST($2::float8, b.tokens + GREATEST(0::float8, $3::float8 - b.updated_ms::float8) / 1000.0 * $4::float8) END,
                   updated_ms = GREATEST(b.updated_ms, $3),
                   denied_streak = CASE
                     WHEN LEAST($2::float8, b.tokens + GREATEST(0::float8, $3::float8 - b.updated_ms::float8) / 1000.0 * $4::float8) >= 1
                     THEN 0 ELSE b.denied_streak + 1 END
                 RETURNING tokens, denied_streak",
            )
            .await
            .map_err(pg("rate limit"))?;
        let burst = f64::from(limit.burst.max(1));
        let per_sec = limit.per_sec.max(0.0);
        let row = c
            .query_one(&st, &[&key, &burst, &now_ms, &per_sec])
            .await
            .map_err(pg("rate limit"))?;
        let tokens: f64 = row.get(0);
        let streak: i64 = row.get(1);
        Ok(if streak == 0 {
            Decision::Allowed
        } else {
            Decision::Denied {
                retry_after_secs: retry_after_secs(tokens, limit.per_sec),
                first: streak == 1,
            }
        })
    }

    async fn blocked(&self, key: &str, limit: RateLimit, now_ms: i64) -> StoreResult<Option<u64>> {
        let c = self.client("rate limit").await?;
        let st = c
            .prepare_cached("SELECT tokens, updated_ms FROM rate_buckets WHERE key = $1")
            .await
            .map_err(pg("rate limit"))?;
        let row = c.query_opt(&st, &[&key]).await.map_err(pg("rate limit"))?;
        Ok(row.and_then(|r| {
            let tokens = crate::limiter::refill(r.get(0), r.get(1), now_ms, limit);
            (tokens < 1.0).then(|| retry_after_secs(tokens, limit.per_sec))
        }))
    }

    async fn upsert_client(&self, client: &ClientRec, now_ms: i64) -> StoreResult<()> {
        self.durable(
            "upsert client",
            "INSERT INTO oauth_clients (client_id, secret_hash, redirect_uris, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_id) DO UPDATE SET secret_hash = $2, redirect_uris = $3",
            &[&client.client_id, &client.secret_hash, &client.redirect_uris, &now_ms],
        )
        .await?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRec>> {
        let c = self.client("read client").await?;
        let row = c
            .query_opt(
                "SELECT client_id, secret_hash, redirect_uris FROM oauth_clients WHERE client_id = $1",
                &[&client_id],
            )
            .await
            .map_err(pg("read client"))?;
        Ok(row.map(|r| ClientRec {
            client_id: r.get(0),
            secret_hash: r.get(1),
            redirect_uris: r.get(2),
        }))
    }

    async fn insert_code(&self, code_hash: &str, code: &CodeRec) -> StoreResult<()> {
        self.durable(
            "insert code",
            "INSERT INTO oauth_codes (code_hash, client_id, user_id, scope, code_challenge, redirect_uri, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&code_hash, &code.client_id, &code.user_id, &code.scope, &code.code_challenge, &code.redirect_uri, &code.expires_at],
        )
        .await?;
        Ok(())
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<CodeRec>> {
        let c = self.client("read code").await?;
        let row = c
            .query_opt(
                "SELECT client_id, user_id, scope, code_challenge, redirect_uri, expires_at, family_id, used
                 FROM oauth_codes WHERE code_hash = $1",
                &[&code_hash],
            )
            .await
            .map_err(pg("read code"))?;
        Ok(row.map(|r| {
            let used: bool = r.get(7);
            let family: Option<String> = r.get(6);
            CodeRec {
                client_id: r.get(0),
                user_id: r.get(1),
                scope: r.get(2),
                code_challenge: r.get(3),
                redirect_uri: r.get(4),
                expires_at: r.get(5),
                family_id: family.or_else(|| used.then(String::new)),
            }
        }))
    }

    async fn claim_code(
        &self,
        code_hash: &str,
        family: &FamilyRec,
        first: &NewRefresh,
        now: i64,
    ) -> StoreResult<bool> {
        let mut c = self.client("claim code").await?;
        let tx = c.transaction().await.map_err(pg("claim code"))?;
        tx.batch_execute(DURABLE).await.map_err(pg("claim code"))?;
        let n = tx
            .execute(
                "UPDATE oauth_codes SET used = TRUE, family_id = $2 WHERE code_hash = $1 AND NOT used",
                &[&code_hash, &family.family_id],
            )
            .await
            .map_err(pg("claim code"))?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO oauth_families (family_id, client_id, user_id, scope, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&family.family_id, &family.client_id, &family.user_id, &family.scope, &now],
        )
        .await
        .map_err(pg("claim code"))?;
        tx.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&first.token_hash, &first.family_id, &first.issued_at, &first.expires_at],
        )
        .await
        .map_err(pg("claim code"))?;
        tx.commit().await.map_err(pg("claim code"))?;
        Ok(true)
    }

    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshView>> {
        let c = self.client("read refresh token").await?;
        let row = c
            .query_opt(
                "SELECT f.family_id, f.client_id, f.user_id, f.scope, t.expires_at, t.used_at, f.revoked_reason, f.revoked_at
                 FROM refresh_tokens t JOIN oauth_families f ON f.family_id = t.family_id
                 WHERE t.token_hash = $1",
                &[&token_hash],
            )
            .await
            .map_err(pg("read refresh token"))?;
        Ok(row.map(|r| {
            let revoked_at: Option<i64> = r.get(7);
            let reason: Option<String> = r.get(6);
            RefreshView {
                family: FamilyRec {
                    family_id: r.get(0),
                    client_id: r.get(1),
                    user_id: r.get(2),
                    scope: r.get(3),
                },
                expires_at: r.get(4),
                used: r.get::<_, Option<i64>>(5).is_some(),
                revoked: revoked_at.map(|_| reason.unwrap_or_else(|| "revoked".into())),
            }
        }))
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        successor: &NewRefresh,
        now: i64,
    ) -> StoreResult<bool> {
        let mut c = self.client("rotate refresh token").await?;
        let tx = c.transaction().await.map_err(pg("rotate refresh token"))?;
        tx.batch_execute(DURABLE)
            .await
            .map_err(pg("rotate refresh token"))?;
        // The row lock taken by this UPDATE makes a concurrent rotation of the same token wait
        // for our commit, then re-check `used_at IS NULL` and update nothing.
        let n = tx
            .execute(
                "UPDATE refresh_tokens SET used_at = $2
                 WHERE token_hash = $1 AND used_at IS NULL
                   AND EXISTS (SELECT 1 FROM oauth_families f
                               WHERE f.family_id = refresh_tokens.family_id AND f.revoked_at IS NULL)",
                &[&token_hash, &now],
            )
            .await
            .map_err(pg("rotate refresh token"))?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&successor.token_hash, &successor.family_id, &successor.issued_at, &successor.expires_at],
        )
        .await
        .map_err(pg("rotate refresh token"))?;
        tx.commit().await.map_err(pg("rotate refresh token"))?;
        Ok(true)
    }

    async fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> StoreResult<bool> {
        let n = self
            .durable(
                "revoke family",
                "UPDATE oauth_families SET revoked_at = $2, revoked_reason = $3
                 WHERE family_id = $1 AND revoked_at IS NULL",
                &[&family_id, &now, &reason],
            )
            .await?;
        Ok(n == 1)
    }

    async fn revoke_families(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        self.durable(
            "revoke families",
            "UPDATE oauth_families SET revoked_at = $1, revoked_reason = $4
             WHERE revoked_at IS NULL AND ($2::text IS NULL OR user_id = $2) AND ($3::text IS NULL OR client_id = $3)",
            &[&now, &user_id, &client_id, &reason],
        )
        .await
    }

    async fn family_revoked(&self, family_id: &str) -> StoreResult<Option<Option<String>>> {
        let c = self.client("read family").await?;
        let st = c
            .prepare_cached(
                "SELECT revoked_at, revoked_reason FROM oauth_families WHERE family_id = $1",
            )
            .await
            .map_err(pg("read family"))?;
        let row = c
            .query_opt(&st, &[&family_id])
            .await
            .map_err(pg("read family"))?;
        Ok(row.map(|r| {
            let at: Option<i64> = r.get(0);
            let reason: Option<String> = r.get(1);
            at.map(|_| reason.unwrap_or_else(|| "revoked".into()))
        }))
    }

    async fn write_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let c = self.client("write audit").await?;
        let ts: Vec<i64> = entries.iter().map(|e| e.ts_ms).collect();
        let kind: Vec<&str> = entries.iter().map(|e| e.kind).collect();
        let user: Vec<Option<&str>> = entries.iter().map(|e| e.user_id.as_deref()).collect();
        let vendor: Vec<Option<&str>> = entries.iter().map(|e| e.vendor.as_deref()).collect();
        let channel: Vec<Option<&str>> = entries.iter().map(|e| e.channel.as_deref()).collect();
        let role: Vec<Option<&str>> = entries.iter().map(|e| e.role.as_deref()).collect();
        let status: Vec<i32> = entries.iter().map(|e| i32::from(e.status)).collect();
        let outcome: Vec<&str> = entries.iter().map(|e| e.outcome.as_str()).collect();
        let exp: Vec<Option<i64>> = entries.iter().map(|e| e.expires_at).collect();
        c.execute(
            "INSERT INTO audit (ts_ms, kind, user_id, vendor, channel, role, status, outcome, expires_at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::bigint[])",
            &[&ts, &kind, &user, &vendor, &channel, &role, &status, &outcome, &exp],
        )
        .await
        .map_err(pg("write audit"))?;
        Ok(())
    }

    async fn read_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>> {
        let c = self.client("read audit").await?;
        let rows = c
            .query(
                "SELECT id, ts_ms, kind, user_id, vendor, channel, role, status, outcome, expires_at
                 FROM audit ORDER BY id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await
            .map_err(pg("read audit"))?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                ts_ms: r.get(1),
                kind: r.get(2),
                user_id: r.get(3),
                vendor: r.get(4),
                channel: r.get(5),
                role: r.get(6),
                status: u16::try_from(r.get::<_, i32>(7)).unwrap_or(0),
                outcome: r.get(8),
                expires_at: r.get(9),
            })
            .collect())
    }

    async fn publish_kick(&self, notice: &KickNotice) -> StoreResult<()> {
        let payload = serde_json::to_string(notice).map_err(|e| StoreError::new("notify", e))?;
        let c = self.client("notify").await?;
        c.execute("SELECT pg_notify($1, $2)", &[&KICK_CHANNEL, &payload])
            .await
            .map_err(pg("notify"))?;
        Ok(())
    }

    async fn listen_kicks(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<KickNotice>,
    ) -> StoreResult<()> {
        kicks::listen(self.config.clone(), tx).await
    }

    async fn maintain(&self, now_ms: i64) -> StoreResult<()> {
        let c = self.client("maintain").await?;
        c.execute(
            "DELETE FROM rate_buckets WHERE updated_ms < $1",
            &[&now_ms.saturating_sub(3_600_000)],
        )
        .await
        .map_err(pg("maintain"))?;
        c.execute(
            "DELETE FROM oauth_codes WHERE NOT used AND expires_at < $1",
            &[&now_ms.div_euclid(1000).saturating_sub(86_400)],
        )
        .await
        .map_err(pg("maintain"))?;
        Ok(())
    }
}
