//! Store DE-PARA: which Bling loja (sales channel) and depósito a CPLUG store's sales go to.

use ponte_core::{
    BlingId, TenantId,
    db::Database,
    error::{ServiceError, quote},
    time::to_timestamp,
};
use ponte_proto::v1::StoreMap;
use serde::Serialize;

use crate::{
    audit,
    bling::List,
    depara::{self, AnyQuery, Column, Depara, Key, Stored},
};

/// A checked row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    pub cplug_store_id: String,
    pub bling_loja_id: BlingId,
    pub bling_deposito_id: BlingId,
}

#[derive(sqlx::FromRow)]
pub struct Row {
    cplug_store_id: String,
    bling_loja_id: i64,
    bling_deposito_id: i64,
    create_time: i64,
}

impl Depara for Store {
    type Proto = StoreMap;
    type Row = Row;

    const TABLE: &'static str = "store_maps";
    const AUDIT: audit::Table = audit::Table::Store;
    const COLUMNS: &'static [Column] =
        &[Column::plain("cplug_store_id"), Column::plain("bling_loja_id"), Column::plain("bling_deposito_id")];

    fn tenant_of(proto: &StoreMap) -> &str {
        &proto.tenant_id
    }

    fn prepare(at: &str, m: StoreMap) -> Result<Self, ServiceError> {
        Ok(Self {
            cplug_store_id: depara::text(format!("{at}.cplug_store_id"), &m.cplug_store_id, 64)?,
            bling_loja_id: depara::bling_id(format!("{at}.bling_loja_id"), m.bling_loja_id)?,
            bling_deposito_id: depara::bling_id(format!("{at}.bling_deposito_id"), m.bling_deposito_id)?,
        })
    }

    fn from_row(r: Row) -> Result<(Self, i64), ServiceError> {
        let store = Self {
            cplug_store_id: r.cplug_store_id,
            bling_loja_id: depara::stored_id(r.bling_loja_id)?,
            bling_deposito_id: depara::stored_id(r.bling_deposito_id)?,
        };
        Ok((store, r.create_time))
    }

    fn to_proto(&self, tenant: &TenantId, create_time: Option<i64>) -> StoreMap {
        StoreMap {
            tenant_id: tenant.to_string(),
            cplug_store_id: self.cplug_store_id.clone(),
            bling_loja_id: self.bling_loja_id.get(),
            bling_deposito_id: self.bling_deposito_id.get(),
            create_time: create_time.map(to_timestamp),
        }
    }

    fn key(&self) -> Key<'_> {
        Key::Text(&self.cplug_store_id)
    }

    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.cplug_store_id.clone()).bind(self.bling_loja_id.get()).bind(self.bling_deposito_id.get())
    }

    fn noun(key: Key<'_>) -> String {
        format!("store {}", quote(&key.to_string()))
    }

    fn bling_ids(&self) -> Vec<(List, &'static str, BlingId)> {
        vec![
            (List::CanaisVenda, "map.bling_loja_id", self.bling_loja_id),
            (List::Depositos, "map.bling_deposito_id", self.bling_deposito_id),
        ]
    }

    fn duplicate(&self, tenant: &TenantId, _key_taken: bool) -> String {
        format!("store '{}' of tenant '{tenant}' is already mapped", self.cplug_store_id)
    }
}

/// The Bling loja and depósito of a CPLUG store; NOT_FOUND names the store.
pub async fn resolve(db: &Database, tenant: &TenantId, store: &str) -> Result<Stored<Store>, ServiceError> {
    depara::get(db.pool(), tenant, Key::Text(store)).await?.ok_or_else(|| {
        ServiceError::NotFound(format!(
            "store {} of tenant '{tenant}' has no Bling loja and depósito mapped",
            quote(store)
        ))
    })
}
