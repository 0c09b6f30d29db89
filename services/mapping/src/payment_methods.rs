//! Payment-method DE-PARA: which Bling forma de pagamento a CPLUG payment method posts as, and
//! the tenant's default for methods it has not mapped.

use ponte_core::{
    BlingId, TenantId,
    db::Database,
    error::{ServiceError, quote},
    time::to_timestamp,
};
use ponte_proto::v1::PaymentMethodMap;
use serde::Serialize;

use crate::{
    audit,
    bling::List,
    depara::{self, AnyQuery, Column, Depara, Key},
};

/// A checked row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Method {
    pub cplug_method: String,
    pub bling_forma_pagamento_id: BlingId,
    pub is_default: bool,
}

#[derive(sqlx::FromRow)]
pub struct Row {
    cplug_method: String,
    bling_forma_pagamento_id: i64,
    is_default: i64,
    create_time: i64,
}

impl Depara for Method {
    type Proto = PaymentMethodMap;
    type Row = Row;

    const TABLE: &'static str = "payment_method_maps";
    const AUDIT: audit::Table = audit::Table::PaymentMethod;
    const COLUMNS: &'static [Column] =
        &[Column::plain("cplug_method"), Column::plain("bling_forma_pagamento_id"), Column::boolean("is_default")];

    fn tenant_of(proto: &PaymentMethodMap) -> &str {
        &proto.tenant_id
    }

    fn prepare(at: &str, m: PaymentMethodMap) -> Result<Self, ServiceError> {
        Ok(Self {
            cplug_method: depara::text(format!("{at}.cplug_method"), &m.cplug_method, 64)?,
            bling_forma_pagamento_id: depara::bling_id(
                format!("{at}.bling_forma_pagamento_id"),
                m.bling_forma_pagamento_id,
            )?,
            is_default: m.is_default,
        })
    }

    fn from_row(r: Row) -> Result<(Self, i64), ServiceError> {
        let method = Self {
            bling_forma_pagamento_id: depara::stored_id(r.bling_forma_pagamento_id)?,
            cplug_method: r.cplug_method,
            is_default: r.is_default != 0,
        };
        Ok((method, r.create_time))
    }

    fn to_proto(&self, tenant: &TenantId, create_time: Option<i64>) -> PaymentMethodMap {
        PaymentMethodMap {
            tenant_id: tenant.to_string(),
            cplug_method: self.cplug_method.clone(),
            bling_forma_pagamento_id: self.bling_forma_pagamento_id.get(),
            is_default: self.is_default,
            create_time: create_time.map(to_timestamp),
        }
    }

    fn key(&self) -> Key<'_> {
        Key::Text(&self.cplug_method)
    }

    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.cplug_method.clone()).bind(self.bling_forma_pagamento_id.get()).bind(self.is_default)
    }

    fn noun(key: Key<'_>) -> String {
        format!("payment method {}", quote(&key.to_string()))
    }

    fn bling_ids(&self) -> Vec<(List, &'static str, BlingId)> {
        vec![(List::FormasPagamento, "map.bling_forma_pagamento_id", self.bling_forma_pagamento_id)]
    }

    fn duplicate(&self, tenant: &TenantId, key_taken: bool) -> String {
        if self.is_default && !key_taken {
            format!("tenant '{tenant}' already has a default payment method")
        } else {
            format!("payment method '{}' of tenant '{tenant}' is already mapped", self.cplug_method)
        }
    }
}

/// The Bling forma de pagamento for a method: its own mapping, else the tenant's default (`true`).
pub async fn translate(
    db: &Database,
    tenant: &TenantId,
    method: &str,
    store: &str,
) -> Result<(BlingId, bool), ServiceError> {
    if let Some(own) = depara::get::<Method, _>(db.pool(), tenant, Key::Text(method)).await? {
        return Ok((own.map.bling_forma_pagamento_id, false));
    }
    match depara::find::<Method, _, _>(db.pool(), tenant, "is_default", true).await? {
        Some(default) => Ok((default.map.bling_forma_pagamento_id, true)),
        None => {
            let of_store = if store.is_empty() { String::new() } else { format!(" of store {}", quote(store)) };
            Err(ServiceError::NotFound(format!(
                "payment method {}{of_store} has no Bling mapping and tenant '{tenant}' has no default",
                quote(method)
            )))
        }
    }
}
