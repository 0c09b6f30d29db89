//! Erasing a tenant from a service: `ponte.v1.TenantDataService`, which every service (and the
//! gateway's inbox) serves and auth-token alone calls when a tenant is deleted.
//!
//! The tables are found in the database's catalog, not listed by hand: every table of the
//! service's schema with a `tenant_id` column loses the tenant's rows, so a table added later is
//! erased without anyone remembering to. Tables whose rows belong to a tenant through another
//! table (the inbox's deliveries, through their event) are named in the service's [`ErasePlan`].

use std::sync::Arc;

use ponte_proto::v1::{
    EraseTenantDataRequest, EraseTenantDataResponse, ErasedTable,
    tenant_data_service_server::{TenantDataService, TenantDataServiceServer},
};
use sqlx::Row;
use tonic::{Request, Response, Status};

use crate::{
    TenantId,
    db::{Backend, Database},
    error::ServiceError,
    idempotency::IdempotencyStore,
    service::Deps,
};

/// What a service deletes besides the rows of its tables with a `tenant_id` column.
#[derive(Debug, Default)]
pub struct ErasePlan {
    /// `(table, statement)`: rows of tables without a `tenant_id` column that belong to the
    /// tenant (`$1`), deleted first, in this order.
    pub children: &'static [(&'static str, &'static str)],
    /// Tables with a `tenant_id` column deleted after every other (the ones the others refer to).
    pub last: &'static [&'static str],
    /// A query (`$1` the tenant) answering the idempotency keys the service claimed for the
    /// tenant's records, read before they are deleted.
    pub claims: Option<&'static str>,
}

/// The plan of a service whose tenant data is all in tables with a `tenant_id` column.
pub static PLAIN: ErasePlan = ErasePlan { children: &[], last: &[], claims: None };

/// The tables of the database's schema that have a `tenant_id` column, by name.
pub async fn tenant_tables(db: &Database) -> Result<Vec<String>, ServiceError> {
    let rows = match db.backend() {
        Backend::Postgres => {
            sqlx::query(
                "SELECT c.table_name::text AS name FROM information_schema.columns c \
                 JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                 WHERE c.table_schema = $1 AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' \
                 ORDER BY 1",
            )
            .bind(db.schema())
            .fetch_all(db.pool())
            .await?
        }
        Backend::Sqlite => {
            sqlx::query(
                "SELECT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name = 'tenant_id' ORDER BY 1",
            )
            .fetch_all(db.pool())
            .await?
        }
    };
    rows.iter().map(|r| r.try_get::<String, _>("name").map_err(ServiceError::from)).collect()
}

/// Deletes every row of the tenant in `tx` (children first, then the tables with a `tenant_id`
/// column, the plan's `last` ones at the end). Answers the rows deleted per table (qualified by
/// the schema, tables with none left out) and the claims the plan lists.
pub async fn erase_rows(
    tx: &mut sqlx::AnyConnection,
    db: &Database,
    tenant: &TenantId,
    plan: &ErasePlan,
) -> Result<(Vec<ErasedTable>, Vec<String>), ServiceError> {
    let claims: Vec<String> = match plan.claims {
        Some(sql) => sqlx::query_scalar(sql).bind(tenant.as_str()).fetch_all(&mut *tx).await?,
        None => Vec::new(),
    };
    let mut erased = Vec::new();
    let mut record = |table: &str, rows: u64| {
        if rows > 0 {
            erased.push(ErasedTable { table: format!("{}.{table}", db.schema()), rows: rows as i64 });
        }
    };
    for (table, sql) in plan.children {
        let done = sqlx::query(*sql).bind(tenant.as_str()).execute(&mut *tx).await?;
        record(table, done.rows_affected());
    }
    let mut tables = tenant_tables(db).await?;
    tables.sort_by_key(|t| plan.last.iter().position(|l| l == t).map_or(0, |i| i + 1));
    for table in tables {
        // The name comes from the catalog, quoted as an identifier.
        let sql = format!("DELETE FROM \"{}\" WHERE tenant_id = $1", table.replace('"', "\"\""));
        let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str()).execute(&mut *tx).await?;
        record(&table, done.rows_affected());
    }
    Ok((erased, claims))
}

/// `ponte.v1.TenantDataService` for one service.
#[derive(Clone)]
pub struct TenantData {
    db: Database,
    idempotency: Arc<dyn IdempotencyStore>,
    plan: &'static ErasePlan,
}

impl TenantData {
    pub fn new(deps: &Deps, plan: &'static ErasePlan) -> Self {
        Self { db: deps.db.clone(), idempotency: deps.idempotency.clone(), plan }
    }

    /// The gRPC server, to add to the service's routes.
    pub fn server(deps: &Deps, plan: &'static ErasePlan) -> TenantDataServiceServer<Self> {
        TenantDataServiceServer::new(Self::new(deps, plan))
    }

    /// Erases the tenant's rows in one transaction, and its Redis keys before that transaction
    /// commits: when Redis fails nothing is deleted, and a rerun finds the claims again.
    pub async fn erase(&self, tenant: &TenantId) -> Result<EraseTenantDataResponse, ServiceError> {
        let mut tx = self.db.pool().begin().await?;
        let (tables, claims) = erase_rows(&mut tx, &self.db, tenant, self.plan).await?;
        let redis_keys = self
            .idempotency
            .erase_tenant(tenant.as_str(), &claims)
            .await
            .map_err(|e| ServiceError::unavailable(format!("erasing the tenant's keys: {e}"), None))?;
        tx.commit().await?;
        let rows: i64 = tables.iter().map(|t| t.rows).sum();
        tracing::info!(tenant_id = %tenant, rows, redis_keys, "tenant data erased");
        Ok(EraseTenantDataResponse { tables, redis_keys: redis_keys as i64 })
    }
}

#[tonic::async_trait]
impl TenantDataService for TenantData {
    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn erase_tenant_data(
        &self,
        req: Request<EraseTenantDataRequest>,
    ) -> Result<Response<EraseTenantDataResponse>, Status> {
        let tenant = TenantId::field("tenant_id", &req.into_inner().tenant_id)?;
        Ok(Response::new(self.erase(&tenant).await?))
    }
}
