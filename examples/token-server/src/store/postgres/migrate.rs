//! Schema migrations: SQL files applied in order, in one transaction, under an advisory lock
//! so that instances starting together do not race; `schema_migrations` records them.

use super::pg;
use crate::store::StoreResult;

/// Schema versions, applied in order.
const MIGRATIONS: &[&str] = &[include_str!("001_initial.sql")];
/// Advisory lock held while migrating (any constant unique to this application).
const MIGRATION_LOCK: i64 = 0x746b_6d69_6772;

/// Applies the migrations `c`'s database has not seen yet.
pub(super) async fn run(c: &mut deadpool_postgres::Object) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(pg("migrate"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg("migrate"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg("migrate"))?;
    let applied: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg("migrate"))?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i32::try_from(i).unwrap_or(i32::MAX).saturating_add(1);
        if v > applied {
            tx.batch_execute(sql).await.map_err(pg("migrate"))?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&v])
                .await
                .map_err(pg("migrate"))?;
            tracing::info!(version = v, "PostgreSQL schema migrated");
        }
    }
    tx.commit().await.map_err(pg("migrate"))
}
