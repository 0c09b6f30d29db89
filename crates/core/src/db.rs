//! Storage: one sqlx pool per service over PostgreSQL (production) or SQLite (`ponte dev`).
//!
//! Each service owns its tables. On PostgreSQL they live in the service's own schema
//! (`search_path` is set on every connection, so queries name tables unqualified); on SQLite
//! each service has its own file. Queries use `$1`-style parameters, which both accept.
//! Timestamps are stored as Unix milliseconds (`BIGINT`) so one query serves both.

use std::{sync::Once, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use crate::config::{ConfigError, redact_url};

/// Which database a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A service's migrations, one set per backend (their SQL dialects differ).
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

/// A connection pool bound to one service's schema.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    schema: String,
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

impl Database {
    /// Connects to `url` for the service owning `schema` (a lowercase identifier), waiting up to
    /// `startup_timeout` for the server to answer. Errors name `DATABASE_URL` and never its password.
    pub async fn connect(
        url: &str,
        schema: &str,
        max_connections: u32,
        startup_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        install_drivers();
        if !schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') || schema.is_empty() {
            return Err(ConfigError::new("schema", format!("'{schema}' is not a lowercase identifier")));
        }
        let fail = |e: &dyn std::fmt::Display| {
            ConfigError::new("DATABASE_URL", format!("cannot use the database at {}: {e}", redact_url(url)))
        };
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let options: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| fail(&e))?;
        let deadline = tokio::time::Instant::now() + startup_timeout;
        let mut wait = Duration::from_millis(100);
        let schema_owned = schema.to_owned();
        loop {
            let schema = schema_owned.clone();
            let attempt = AnyPoolOptions::new()
                .max_connections(if backend == Backend::Sqlite { max_connections.min(4) } else { max_connections })
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(5))
                .idle_timeout(Duration::from_secs(300))
                .after_connect(move |conn, _| {
                    let schema = schema.clone();
                    Box::pin(async move {
                        match backend {
                            Backend::Postgres => {
                                // The schema name was checked to be a lowercase identifier above.
                                // No DDL here: the schema is made by `migrate`, so a role
                                // without CREATE can run the service once `ponte migrate` ran.
                                conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}"))).await?;
                            }
                            Backend::Sqlite => {
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA busy_timeout = 5000").await?;
                                conn.execute("PRAGMA synchronous = NORMAL").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                            }
                        }
                        Ok(())
                    })
                })
                .connect_with(options.clone())
                .await;
            match attempt {
                Ok(pool) => return Ok(Self { pool, backend, schema: schema_owned }),
                Err(e) if is_transient(&e) && tokio::time::Instant::now() + wait < deadline => {
                    tracing::warn!(error = %e, "database not reachable yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    let waited = if is_transient(&e) {
                        format!(" (waited {}s)", startup_timeout.as_secs())
                    } else {
                        String::new()
                    };
                    return Err(fail(&format!("{e}{waited}")));
                }
            }
        }
    }

    /// A private SQLite database file under `dir`, named for the schema (the `ponte dev` layout).
    pub async fn sqlite_in(dir: &std::path::Path, schema: &str) -> Result<Self, ConfigError> {
        let path = dir.join(format!("{schema}.db"));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url, schema, 4, Duration::from_secs(5)).await
    }

    /// Applies the backend's migrations (PostgreSQL takes an advisory lock, so replicas
    /// starting together apply them once).
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), sqlx::migrate::MigrateError> {
        if self.backend == Backend::Postgres {
            // The connections' search_path names it already; PostgreSQL picks it up once made.
            // `CREATE SCHEMA IF NOT EXISTS` is not safe against itself: two replicas starting
            // together can both pass the check and one fails on pg_namespace's unique index. A
            // transaction-scoped advisory lock on the schema's name serialises them.
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind(format!("ponte schema {}", self.schema))
                .fetch_one(&mut *tx)
                .await?;
            tx.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {}", self.schema))).await?;
            tx.commit().await?;
        }
        self.migrator(migrations).run(&self.pool).await
    }

    fn migrator(&self, migrations: &Migrations) -> &'static Migrator {
        match self.backend {
            Backend::Postgres => migrations.postgres,
            Backend::Sqlite => migrations.sqlite,
        }
    }

    /// The versions of `migrations` not applied yet (all of them when the schema has none).
    pub async fn pending_migrations(&self, migrations: &Migrations) -> Result<Vec<i64>, sqlx::Error> {
        let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await
        {
            Ok(v) => v,
            // No table: nothing applied yet.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(self
            .migrator(migrations)
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| m.version)
            .collect())
    }

    /// Waits up to `timeout` for `migrations` to be applied by someone else (`ponte migrate`, as
    /// a Job, when `PONTE_MIGRATE_ON_START=false`): a process never serves an older schema than
    /// its code expects.
    pub async fn wait_for_migrations(&self, migrations: &Migrations, timeout: Duration) -> Result<(), ConfigError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self.pending_migrations(migrations).await.map_err(|e| {
                ConfigError::new("DATABASE_URL", format!("reading the {} schema's migrations: {e}", self.schema))
            })?;
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let list: Vec<String> = pending.iter().map(ToString::to_string).collect();
                return Err(ConfigError::new(
                    "PONTE_MIGRATE_ON_START",
                    format!(
                        "is false and the {} schema still lacks migrations {} after {}s: run `ponte migrate` first",
                        self.schema,
                        list.join(", "),
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.pool.execute("SELECT 1").await.map(|_| ())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Whether an error is a unique-constraint violation (the database's word on duplicates).
    pub fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
}

/// Opaque page tokens: the last key of the previous page, base64url-encoded.
pub mod page {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use crate::error::ServiceError;

    /// The page size to use: `requested`, or 100 when zero, at most 1000.
    pub fn size(requested: u32) -> i64 {
        i64::from(if requested == 0 { 100 } else { requested.min(1000) })
    }

    pub fn encode(last_key: &str) -> String {
        URL_SAFE_NO_PAD.encode(last_key)
    }

    /// The key to continue after; empty for the first page.
    pub fn decode(token: &str) -> Result<String, ServiceError> {
        if token.is_empty() {
            return Ok(String::new());
        }
        URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ServiceError::invalid("page_token", "is not a token this service issued"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_per_schema_runs_queries_with_dollar_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::sqlite_in(dir.path(), "mapping").await.unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        db.ping().await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)").execute(db.pool()).await.unwrap();
        sqlx::query("INSERT INTO t (k, v) VALUES ($1, $2)").bind("a").bind(7_i64).execute(db.pool()).await.unwrap();
        let dup = sqlx::query("INSERT INTO t (k, v) VALUES ($1, $2)").bind("a").bind(8_i64).execute(db.pool()).await;
        assert!(Database::is_unique_violation(&dup.unwrap_err()));
        assert!(dir.path().join("mapping.db").exists());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_config_error_without_the_password() {
        let err = Database::connect("postgres://u:hunter2@127.0.0.1:1/x", "svc", 1, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        assert_eq!(page::decode(&page::encode("tenant-9")).unwrap(), "tenant-9");
        assert!(page::decode("%%%").is_err());
        assert_eq!(page::size(0), 100);
        assert_eq!(page::size(5000), 1000);
    }
}
