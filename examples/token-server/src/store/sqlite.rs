//! The embedded store: SQLite (a file or memory), for one server instance.
//!
//! Users and streams are cached in memory and written through; rate-limit buckets live in
//! memory. The connection sits behind a mutex and is only used from blocking tasks, so a slow
//! write never stalls the async workers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AuditEntry, AuditRow, ClientRec, CodeRec, Decision, FamilyRec, KickNotice, NewRefresh,
    NewUserRow, RefreshView, Store, StoreError, StoreResult, Stream, User, UserConflict,
};
use crate::config::RateLimit;
use crate::limiter::RateLimiter;

/// Schema versions, applied in order; `PRAGMA user_version` records the last one applied.
/// Version 1 is the schema of the first release (files made by it open as version 0 with
/// these tables already there, hence `IF NOT EXISTS`).
const MIGRATIONS: &[&str] = &[
    include_str!("sqlite/001_initial.sql"),
    include_str!("sqlite/002_oauth_families.sql"),
];

#[derive(Debug, Default)]
struct Directory {
    users: HashMap<String, User>,
    /// sha256(api key) → user id.
    keys: HashMap<String, String>,
    /// Agora uid → user id.
    uids: HashMap<u32, String>,
    streams: HashMap<String, Stream>,
}

/// SQLite store (see the module docs).
#[derive(Debug)]
pub(crate) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    dir: RwLock<Directory>,
    limiter: RateLimiter,
}

fn err(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::new(op, e)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
        if v > version {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", v)?;
            tx.commit()?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (or creates) the database and migrates its schema. `None`: in memory.
    pub fn open(path: Option<&Path>) -> StoreResult<Self> {
        let open = err("open");
        let mut conn = match path {
            Some(p) => {
                let c = Connection::open(p).map_err(&open)?;
                c.pragma_update(None, "journal_mode", "WAL")
                    .map_err(&open)?;
                c.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(&open)?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(&open)?;
                c
            }
            None => Connection::open_in_memory().map_err(&open)?,
        };
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&open)?;
        migrate(&mut conn).map_err(err("migrate"))?;
        let mut dir = Directory::default();
        {
            let mut st = conn
                .prepare("SELECT id, uid, name, key_hash, banned FROM users")
                .map_err(&open)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        User {
                            id: r.get(0)?,
                            uid: r.get(1)?,
                            name: r.get(2)?,
                            banned: r.get(4)?,
                        },
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(&open)?;
            for row in rows {
                let (u, key_hash) = row.map_err(&open)?;
                dir.keys.insert(key_hash, u.id.clone());
                dir.uids.insert(u.uid, u.id.clone());
                dir.users.insert(u.id.clone(), u);
            }
            let mut st = conn
                .prepare("SELECT channel, owner, live FROM streams")
                .map_err(&open)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Stream {
                            owner: r.get(1)?,
                            live: r.get(2)?,
                        },
                    ))
                })
                .map_err(&open)?;
            for row in rows {
                let (channel, s) = row.map_err(&open)?;
                dir.streams.insert(channel, s);
            }
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            dir: RwLock::new(dir),
            limiter: RateLimiter::default(),
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|e| StoreError::new(op, e))?
            .map_err(err(op))
    }
}

fn uris_to_text(uris: &[String]) -> String {
    uris.join("\n")
}

fn uris_from_text(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn insert_refresh(c: &Connection, fam: &FamilyRec, r: &NewRefresh) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![r.token_hash, r.family_id, fam.client_id, fam.user_id, fam.scope, r.issued_at, r.expires_at],
    )?;
    Ok(())
}

fn family_of(c: &Connection, family_id: &str) -> rusqlite::Result<Option<FamilyRec>> {
    c.query_row(
        "SELECT family_id, client_id, user_id, scope FROM oauth_families WHERE family_id = ?1",
        params![family_id],
        |r| {
            Ok(FamilyRec {
                family_id: r.get(0)?,
                client_id: r.get(1)?,
                user_id: r.get(2)?,
                scope: r.get(3)?,
            })
        },
    )
    .optional()
}

#[async_trait]
impl Store for SqliteStore {
    async fn user_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<User>> {
        let dir = self.dir.read();
        Ok(dir
            .keys
            .get(key_hash)
            .and_then(|id| dir.users.get(id))
            .cloned())
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(self.dir.read().users.get(id).cloned())
    }

    async fn user_by_uid(&self, uid: u32) -> StoreResult<Option<User>> {
        let dir = self.dir.read();
        Ok(dir.uids.get(&uid).and_then(|id| dir.users.get(id)).cloned())
    }

    async fn insert_user(
        &self,
        new: NewUserRow,
        now_ms: i64,
    ) -> StoreResult<Result<User, UserConflict>> {
        // The directory's write lock is held across the insert so concurrent creations cannot
        // race for a uid (the blocking insert is short; this is an admin path).
        let mut dir = self.dir.write();
        if dir.users.contains_key(&new.id) {
            return Ok(Err(UserConflict::Id));
        }
        if dir.keys.contains_key(&new.key_hash) {
            return Ok(Err(UserConflict::Key));
        }
        let uid = match new.uid {
            Some(u) if dir.uids.contains_key(&u) => return Ok(Err(UserConflict::Uid)),
            Some(u) => u,
            None => match (1000u32..=u32::MAX).find(|u| !dir.uids.contains_key(u)) {
                Some(u) => u,
                None => return Ok(Err(UserConflict::Uid)),
            },
        };
        let user = User {
            id: new.id.clone(),
            uid,
            name: new.name.clone(),
            banned: false,
        };
        self.conn
            .lock()
            .execute(
                "INSERT INTO users (id, uid, name, key_hash, banned, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![new.id, uid, new.name, new.key_hash, now_ms],
            )
            .map_err(err("insert user"))?;
        dir.keys.insert(new.key_hash, new.id.clone());
        dir.uids.insert(uid, new.id.clone());
        dir.users.insert(new.id, user.clone());
        Ok(Ok(user))
    }

    async fn set_banned(&self, id: &str, banned: bool) -> StoreResult<bool> {
        let mut dir = self.dir.write();
        let Some(user) = dir.users.get_mut(id) else {
            return Ok(false);
        };
        self.conn
            .lock()
            .execute(
                "UPDATE users SET banned = ?2 WHERE id = ?1",
                params![id, banned],
            )
            .map_err(err("ban"))?;
        user.banned = banned;
        Ok(true)
    }

    async fn stream(&self, channel: &str) -> StoreResult<Option<Stream>> {
        Ok(self.dir.read().streams.get(channel).cloned())
    }

    async fn upsert_stream(&self, channel: &str, owner: &str, now_ms: i64) -> StoreResult<()> {
        let mut dir = self.dir.write();
        self.conn
            .lock()
            .execute(
                "INSERT INTO streams (channel, owner, live, created_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT(channel) DO UPDATE SET owner = ?2, live = 1, created_at = ?3, ended_at = NULL",
                params![channel, owner, now_ms],
            )
            .map_err(err("upsert stream"))?;
        dir.streams.insert(
            channel.to_owned(),
            Stream {
                owner: owner.to_owned(),
                live: true,
            },
        );
        Ok(())
    }

    async fn end_stream(&self, channel: &str, now_ms: i64) -> StoreResult<bool> {
        let mut dir = self.dir.write();
        let Some(stream) = dir.streams.get_mut(channel) else {
            return Ok(false);
        };
        self.conn
            .lock()
            .execute(
                "UPDATE streams SET live = 0, ended_at = ?2 WHERE channel = ?1",
                params![channel, now_ms],
            )
            .map_err(err("end stream"))?;
        stream.live = false;
        Ok(true)
    }

    async fn take(&self, key: &str, limit: RateLimit, now_ms: i64) -> StoreResult<Decision> {
        Ok(self.limiter.check(key, limit, now_ms))
    }

    async fn blocked(&self, key: &str, limit: RateLimit, now_ms: i64) -> StoreResult<Option<u64>> {
        Ok(self.limiter.blocked(key, limit, now_ms))
    }

    async fn upsert_client(&self, client: &ClientRec, now_ms: i64) -> StoreResult<()> {
        let c = client.clone();
        self.blocking("upsert client", move |conn| {
            conn.execute(
                "INSERT INTO oauth_clients (client_id, secret_hash, redirect_uris, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(client_id) DO UPDATE SET secret_hash = ?2, redirect_uris = ?3",
                params![c.client_id, c.secret_hash, uris_to_text(&c.redirect_uris), now_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRec>> {
        let id = client_id.to_owned();
        self.blocking("read client", move |conn| {
            conn.query_row(
                "SELECT client_id, secret_hash, redirect_uris FROM oauth_clients WHERE client_id = ?1",
                params![id],
                |r| {
                    Ok(ClientRec {
                        client_id: r.get(0)?,
                        secret_hash: r.get(1)?,
                        redirect_uris: uris_from_text(&r.get::<_, String>(2)?),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn insert_code(&self, code_hash: &str, code: &CodeRec) -> StoreResult<()> {
        let (h, c) = (code_hash.to_owned(), code.clone());
        self.blocking("insert code", move |conn| {
            conn.execute(
                "INSERT INTO oauth_codes (code_hash, client_id, user_id, scope, code_challenge, redirect_uri, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![h, c.client_id, c.user_id, c.scope, c.code_challenge, c.redirect_uri, c.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<CodeRec>> {
        let h = code_hash.to_owned();
        self.blocking("read code", move |conn| {
            conn.query_row(
                "SELECT client_id, user_id, scope, code_challenge, redirect_uri, expires_at, family_id, used
                 FROM oauth_codes WHERE code_hash = ?1",
                params![h],
                |r| {
                    let used: bool = r.get(7)?;
                    let family: Option<String> = r.get(6)?;
                    Ok(CodeRec {
                        client_id: r.get(0)?,
                        user_id: r.get(1)?,
                        scope: r.get(2)?,
                        code_challenge: r.get(3)?,
                        redirect_uri: r.get(4)?,
                        expires_at: r.get(5)?,
                        // A code used by the first release has no family: still "used".
                        family_id: family.or_else(|| used.then(String::new)),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn claim_code(
        &self,
        code_hash: &str,
        family: &FamilyRec,
        first: &NewRefresh,
        now: i64,
    ) -> StoreResult<bool> {
        let (h, fam, first) = (code_hash.to_owned(), family.clone(), first.clone());
        self.blocking("claim code", move |conn| {
            let tx = conn.transaction()?;
            let claimed = tx.execute(
                "UPDATE oauth_codes SET used = 1, family_id = ?2 WHERE code_hash = ?1 AND used = 0",
                params![h, fam.family_id],
            )?;
            if claimed != 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO oauth_families (family_id, client_id, user_id, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![fam.family_id, fam.client_id, fam.user_id, fam.scope, now],
            )?;
            insert_refresh(&tx, &fam, &first)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshView>> {
        let h = token_hash.to_owned();
        self.blocking("read refresh token", move |conn| {
            conn.query_row(
                "SELECT f.family_id, f.client_id, f.user_id, f.scope, t.expires_at, t.used_at, f.revoked_reason, f.revoked_at
                 FROM refresh_tokens t JOIN oauth_families f ON f.family_id = t.family_id
                 WHERE t.token_hash = ?1",
                params![h],
                |r| {
                    let revoked_at: Option<i64> = r.get(7)?;
                    let reason: Option<String> = r.get(6)?;
                    Ok(RefreshView {
                        family: FamilyRec {
                            family_id: r.get(0)?,
                            client_id: r.get(1)?,
                            user_id: r.get(2)?,
                            scope: r.get(3)?,
                        },
                        expires_at: r.get(4)?,
                        used: r.get::<_, Option<i64>>(5)?.is_some(),
                        revoked: revoked_at.map(|_| reason.unwrap_or_else(|| "revoked".into())),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        successor: &NewRefresh,
        now: i64,
    ) -> StoreResult<bool> {
        let (h, next) = (token_hash.to_owned(), successor.clone());
        self.blocking("rotate refresh token", move |conn| {
            let tx = conn.transaction()?;
            let used = tx.execute(
                "UPDATE refresh_tokens SET used_at = ?2
                 WHERE token_hash = ?1 AND used_at IS NULL
                   AND EXISTS (SELECT 1 FROM oauth_families f
                               WHERE f.family_id = refresh_tokens.family_id AND f.revoked_at IS NULL)",
                params![h, now],
            )?;
            if used != 1 {
                return Ok(false);
            }
            let Some(fam) = family_of(&tx, &next.family_id)? else {
                return Ok(false);
            };
            insert_refresh(&tx, &fam, &next)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> StoreResult<bool> {
        let (f, reason) = (family_id.to_owned(), reason.to_owned());
        self.blocking("revoke family", move |conn| {
            Ok(conn.execute(
                "UPDATE oauth_families SET revoked_at = ?2, revoked_reason = ?3
                 WHERE family_id = ?1 AND revoked_at IS NULL",
                params![f, now, reason],
            )? == 1)
        })
        .await
    }

    async fn revoke_families(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let (u, c, reason) = (
            user_id.map(str::to_owned),
            client_id.map(str::to_owned),
            reason.to_owned(),
        );
        self.blocking("revoke families", move |conn| {
            let n = conn.execute(
                "UPDATE oauth_families SET revoked_at = ?1, revoked_reason = ?4
                 WHERE revoked_at IS NULL AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR client_id = ?3)",
                params![now, u, c, reason],
            )?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn family_revoked(&self, family_id: &str) -> StoreResult<Option<Option<String>>> {
        let f = family_id.to_owned();
        self.blocking("read family", move |conn| {
            conn.query_row(
                "SELECT revoked_at, revoked_reason FROM oauth_families WHERE family_id = ?1",
                params![f],
                |r| {
                    let at: Option<i64> = r.get(0)?;
                    let reason: Option<String> = r.get(1)?;
                    Ok(at.map(|_| reason.unwrap_or_else(|| "revoked".into())))
                },
            )
            .optional()
        })
        .await
    }

    async fn write_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let entries = entries.to_vec();
        self.blocking("write audit", move |conn| {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO audit (ts_ms, kind, user_id, vendor, channel, role, status, outcome, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for e in &entries {
                    st.execute(params![
                        e.ts_ms, e.kind, e.user_id, e.vendor, e.channel, e.role, e.status, e.outcome, e.expires_at
                    ])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn read_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>> {
        self.blocking("read audit", move |conn| {
            let mut st = conn.prepare(
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
            rows.collect()
        })
        .await
    }

    async fn publish_kick(&self, _notice: &KickNotice) -> StoreResult<()> {
        Ok(())
    }

    async fn listen_kicks(
        &self,
        _tx: tokio::sync::mpsc::UnboundedSender<KickNotice>,
    ) -> StoreResult<()> {
        Ok(())
    }

    async fn maintain(&self, now_ms: i64) -> StoreResult<()> {
        self.limiter
            .forget_older_than(now_ms.saturating_sub(3_600_000));
        let now = now_ms.div_euclid(1000);
        self.blocking("maintain", move |conn| {
            conn.execute(
                "DELETE FROM oauth_codes WHERE used = 0 AND expires_at < ?1",
                params![now.saturating_sub(86_400)],
            )?;
            Ok(())
        })
        .await
    }
}
