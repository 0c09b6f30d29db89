//! Migrations applied apart from the services (`ponte migrate` as a Job, services started with
//! `PONTE_MIGRATE_ON_START=false`): a service waits for its schema to be migrated and refuses to
//! start on an older one, naming the setting; once migrated it runs under a database role that
//! may not create anything (the services make no DDL then).

use std::time::Duration;

use ponte_core::config::ConfigError;
use sqlx::{Connection, Executor};

#[tokio::test]
async fn a_service_that_does_not_migrate_waits_for_its_schema_and_needs_no_ddl_rights() {
    let db = ponte_tests::fresh_database().await;
    let spec = &ponte_mapping::SPEC;

    let err = spec.database(&db, 2, Duration::from_secs(1), false).await.unwrap_err();
    let config = err.downcast_ref::<ConfigError>().unwrap_or_else(|| panic!("{err:#}"));
    assert_eq!(config.var, "PONTE_MIGRATE_ON_START");
    assert!(config.problem.contains("ponte migrate"), "{config}");

    // A replica waiting while the migration runs starts once it is done.
    let url = db.url().to_owned();
    let waiting = tokio::spawn(async move { spec.database(&url, 2, Duration::from_secs(30), false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "started before its schema was migrated");
    spec.database(&db, 1, Duration::from_secs(5), true).await.expect("migrate");
    waiting.await.unwrap().expect("started once migrated");

    // The application's role: it may use the schema's tables, not create anything.
    let role = format!("ponte_app_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&db).await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!(
            "REVOKE CREATE ON DATABASE {} FROM PUBLIC",
            db.url().rsplit('/').next().unwrap().split('?').next().unwrap()
        ),
        format!("GRANT USAGE ON SCHEMA mapping TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA mapping TO {role}"),
    ] {
        admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    let mut as_app = url::Url::parse(&db).unwrap();
    as_app.set_username(&role).unwrap();
    let app = spec.database(as_app.as_str(), 2, Duration::from_secs(5), false).await.expect("runs without DDL rights");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(app.pool()).await.unwrap();
    assert!(n > 0);
    let refused = spec.database(as_app.as_str(), 2, Duration::from_secs(5), true).await;
    assert!(refused.is_err(), "the application role could migrate");
    drop(app);
    admin.execute(sqlx::AssertSqlSafe(format!("DROP OWNED BY {role}"))).await.unwrap();
    admin.execute(sqlx::AssertSqlSafe(format!("DROP ROLE {role}"))).await.unwrap();
}
