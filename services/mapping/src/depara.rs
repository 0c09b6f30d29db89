//! The DE-PARA tables (payment methods, stores, situações) as one piece: a tenant's rows keyed
//! by one column, checked before they are stored, each create and delete audited in the
//! transaction that makes it. [`Depara`] describes a table (its columns, its key, its checks, its
//! messages); the create, read, list and delete here serve all three.

use std::{fmt, future::Future};

use ponte_core::{BlingId, TenantId, db::Database, error::ServiceError, time::now_millis};
use serde::Serialize;
use sqlx::{
    Any, AnyConnection, Executor, FromRow,
    any::{AnyArguments, AnyRow},
    query::Query,
};

use crate::{
    audit::{self, Change},
    bling::List,
};

/// A statement being bound.
pub type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// A stored column besides `tenant_id` and `create_time`.
pub struct Column {
    name: &'static str,
    /// Read as an integer: the Any driver cannot decode SQLite's BOOLEAN (PostgreSQL casts too).
    boolean: bool,
}

impl Column {
    pub const fn plain(name: &'static str) -> Self {
        Self { name, boolean: false }
    }

    pub const fn boolean(name: &'static str) -> Self {
        Self { name, boolean: true }
    }

    fn select(&self) -> String {
        if self.boolean { format!("CAST({0} AS INTEGER) AS {0}", self.name) } else { self.name.to_owned() }
    }
}

/// A row's key within its tenant: a CPLUG id (text) or a Bling id.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Text(&'a str),
    Bling(BlingId),
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Bling(id) => write!(f, "{id}"),
        }
    }
}

/// One DE-PARA table. Implemented by the checked form of its rows, which is also what the audit
/// trail records (as JSON).
pub trait Depara: Serialize + Send + Sync + Sized {
    /// The message callers send and are answered with.
    type Proto: Send;
    /// A row as read, `create_time` included.
    type Row: for<'r> FromRow<'r, AnyRow> + Send + Unpin;

    const TABLE: &'static str;
    const AUDIT: audit::Table;
    /// The stored columns besides `tenant_id` and `create_time`, the key first (rows are listed
    /// in its order).
    const COLUMNS: &'static [Column];

    fn tenant_of(proto: &Self::Proto) -> &str;
    /// Reads and checks a proto map, naming a bad field under `at` (`map`, `stores[2]`).
    fn prepare(at: &str, proto: Self::Proto) -> Result<Self, ServiceError>;
    fn from_row(row: Self::Row) -> Result<(Self, i64), ServiceError>;
    fn to_proto(&self, tenant: &TenantId, create_time: Option<i64>) -> Self::Proto;
    fn key(&self) -> Key<'_>;
    /// Binds the values of [`Depara::COLUMNS`], in their order.
    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q>;
    /// A row as messages name it by its key (`payment method 'PIX'`).
    fn noun(key: Key<'_>) -> String;
    /// The Bling ids the row names: the list each must be in, and the request field holding it.
    fn bling_ids(&self) -> Vec<(List, &'static str, BlingId)>;
    /// Why a unique index refused the row; `key_taken` when a row with its key exists.
    fn duplicate(&self, tenant: &TenantId, key_taken: bool) -> String;

    /// Why the row cannot join the tenant's table, found before it is inserted; by default the
    /// unique indexes alone decide.
    fn taken<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _tenant: &'a TenantId,
    ) -> impl Future<Output = Result<Option<String>, ServiceError>> + Send + 'a {
        async { Ok(None) }
    }
}

/// A row as stored, with its creation time (Unix ms).
pub struct Stored<T> {
    pub map: T,
    pub create_time: i64,
}

impl<T: Depara> Stored<T> {
    pub fn to_proto(&self, tenant: &TenantId) -> T::Proto {
        self.map.to_proto(tenant, Some(self.create_time))
    }
}

/// A text field trimmed, required, and at most `max` characters.
pub fn text(field: String, raw: &str, max: usize) -> Result<String, ServiceError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(ServiceError::invalid(field, format!("is longer than {max} characters")));
    }
    Ok(value.to_owned())
}

/// A Bling id field: a positive number.
pub fn bling_id(field: impl Into<String>, raw: i64) -> Result<BlingId, ServiceError> {
    BlingId::new(raw).ok_or_else(|| ServiceError::invalid(field, "must be a Bling id (a positive number)"))
}

/// A Bling id read back from a table, where only checked ids are written.
pub fn stored_id(raw: i64) -> Result<BlingId, ServiceError> {
    BlingId::new(raw).ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("stored Bling id {raw} is not positive")))
}

fn select<T: Depara>() -> String {
    let columns: Vec<String> = T::COLUMNS.iter().map(Column::select).collect();
    format!("SELECT {}, create_time FROM {}", columns.join(", "), T::TABLE)
}

fn key_column<T: Depara>() -> &'static str {
    T::COLUMNS[0].name
}

/// The tenant's rows whose `column` holds `value`, the first of them.
pub async fn find<'e, T, V, E>(
    exec: E,
    tenant: &TenantId,
    column: &str,
    value: V,
) -> Result<Option<Stored<T>>, ServiceError>
where
    T: Depara,
    V: sqlx::Encode<'static, Any> + sqlx::Type<Any> + Send + 'static,
    E: Executor<'e, Database = Any>,
{
    let sql = format!("{} WHERE tenant_id = $1 AND {column} = $2", select::<T>());
    let row: Option<T::Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.to_string()).bind(value).fetch_optional(exec).await?;
    row.map(|r| T::from_row(r).map(|(map, create_time)| Stored { map, create_time })).transpose()
}

/// The tenant's row with `key`.
pub async fn get<'e, T, E>(exec: E, tenant: &TenantId, key: Key<'_>) -> Result<Option<Stored<T>>, ServiceError>
where
    T: Depara,
    E: Executor<'e, Database = Any>,
{
    match key {
        Key::Text(s) => find(exec, tenant, key_column::<T>(), s.to_owned()).await,
        Key::Bling(id) => find(exec, tenant, key_column::<T>(), id.get()).await,
    }
}

/// The tenant's rows in key order.
pub async fn list<T: Depara>(db: &Database, tenant: &TenantId) -> Result<Vec<Stored<T>>, ServiceError> {
    let sql = format!("{} WHERE tenant_id = $1 ORDER BY {}", select::<T>(), key_column::<T>());
    let rows: Vec<T::Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str()).fetch_all(db.pool()).await?;
    rows.into_iter().map(|r| T::from_row(r).map(|(map, create_time)| Stored { map, create_time })).collect()
}

/// Stores a checked row, audited; ALREADY_EXISTS says what it collides with.
pub async fn create<T: Depara>(
    db: &Database,
    tenant: &TenantId,
    map: T,
    actor: &str,
) -> Result<Stored<T>, ServiceError> {
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
    if let Some(why) = map.taken(&mut tx, tenant).await? {
        return Err(ServiceError::AlreadyExists(why));
    }
    let names: Vec<&str> = T::COLUMNS.iter().map(|c| c.name).collect();
    let sql = format!(
        "INSERT INTO {} (tenant_id, {}, create_time) VALUES {}",
        T::TABLE,
        names.join(", "),
        ponte_core::sql::tuples(1, names.len() + 2)
    );
    let inserted =
        map.bind(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str())).bind(now).execute(&mut *tx).await;
    match inserted {
        Ok(_) => {}
        Err(e) if Database::is_unique_violation(&e) => {
            // The failed insert ended the transaction (PostgreSQL): look outside it.
            let key_taken = get::<T, _>(db.pool(), tenant, map.key()).await?.is_some();
            return Err(ServiceError::AlreadyExists(map.duplicate(tenant, key_taken)));
        }
        Err(e) => return Err(e.into()),
    }
    let key = map.key().to_string();
    audit::record(&mut tx, Change::create(tenant, T::AUDIT, &key, actor, as_json(&map)?)).await?;
    tx.commit().await?;
    Ok(Stored { map, create_time: now })
}

/// Deletes the tenant's row with `key`, audited; NOT_FOUND when there is none.
pub async fn delete<T: Depara>(
    db: &Database,
    tenant: &TenantId,
    key: Key<'_>,
    actor: &str,
) -> Result<(), ServiceError> {
    let mut tx = db.pool().begin().await?;
    let Some(previous) = get::<T, _>(&mut *tx, tenant, key).await? else {
        return Err(ServiceError::NotFound(format!("{} of tenant '{tenant}' is not mapped", T::noun(key))));
    };
    let sql = format!("DELETE FROM {} WHERE tenant_id = $1 AND {} = $2", T::TABLE, key_column::<T>());
    let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str());
    let q = match key {
        Key::Text(s) => q.bind(s.to_owned()),
        Key::Bling(id) => q.bind(id.get()),
    };
    q.execute(&mut *tx).await?;
    let key = key.to_string();
    audit::record(&mut tx, Change::delete(tenant, T::AUDIT, &key, actor, as_json(&previous.map)?)).await?;
    tx.commit().await?;
    Ok(())
}

fn as_json<T: Serialize>(map: &T) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(map).map_err(|e| ServiceError::Internal(e.into()))
}
