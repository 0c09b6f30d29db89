//! Bling ids a sale needs that do not change once known, so that a steady-state sale costs no
//! look-up: products by SKU and contacts by CPF/CNPJ, kept in the service's tables (for every
//! replica and restart) and in moka caches in front of them (each load single-flight: a burst
//! of sales with a new SKU or customer asks Bling once). Unknown SKUs are looked up with
//! `codigos[]`, all of a sale's at once; a customer Bling does not have is created.

use std::{collections::HashMap, sync::Arc};

use ponte_connectors::{CallError, bling::resources::NovoContato};
use ponte_core::{BlingId, TenantId, db::Database, error::ServiceError, time::now_millis};

use crate::{context::Context, sale::Customer};

/// A table of Bling ids known by a key of the tenant's (a SKU, a CPF/CNPJ).
struct Known {
    table: &'static str,
    /// The Bling id's column.
    column: &'static str,
    key: &'static str,
}

const PRODUCTS: Known = Known { table: "known_products", column: "bling_product_id", key: "sku" };
const CONTACTS: Known = Known { table: "known_contacts", column: "bling_contact_id", key: "document" };

impl Known {
    async fn stored(&self, db: &Database, tenant: &TenantId, value: &str) -> Result<Option<BlingId>, ServiceError> {
        let Self { table, column, key } = self;
        let id: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {column} FROM {table} WHERE tenant_id = $1 AND {key} = $2"
        )))
        .bind(tenant.as_str())
        .bind(value)
        .fetch_optional(db.pool())
        .await?;
        Ok(id.and_then(BlingId::new))
    }

    async fn remember(&self, db: &Database, tenant: &TenantId, value: &str, id: BlingId) -> Result<(), ServiceError> {
        let Self { table, column, key } = self;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (tenant_id, {key}, {column}, update_time) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, {key}) DO UPDATE SET {column} = excluded.{column}, \
             update_time = excluded.update_time"
        )))
        .bind(tenant.as_str())
        .bind(value)
        .bind(id.get())
        .bind(now_millis())
        .execute(db.pool())
        .await?;
        Ok(())
    }
}

impl Context {
    /// The Bling product of each SKU; SKUs Bling does not have are left out.
    pub async fn products(&self, tenant: &TenantId, skus: &[String]) -> Result<HashMap<String, BlingId>, CallError> {
        let mut found = HashMap::new();
        let mut unknown = Vec::new();
        for sku in skus {
            let key = (tenant.clone(), sku.clone());
            if let Some(id) = self.known.products.get(&key).await {
                found.insert(sku.clone(), id);
            } else if let Some(id) = PRODUCTS.stored(&self.db, tenant, sku).await? {
                self.known.products.insert(key, id).await;
                found.insert(sku.clone(), id);
            } else {
                unknown.push(sku.clone());
            }
        }
        for chunk in unknown.chunks(ponte_connectors::bling::PAGE_SIZE as usize) {
            let listed = self.products_by_sku(tenant, chunk).await?;
            for sku in chunk {
                // An active product wins over an inactive one; an excluded one is no product.
                let best = listed
                    .iter()
                    .filter(|p| &p.codigo == sku && p.situacao != "E")
                    .min_by_key(|p| (p.situacao != "A", p.id));
                if let Some(p) = best {
                    PRODUCTS.remember(&self.db, tenant, sku, p.id).await?;
                    self.known.products.insert((tenant.clone(), sku.clone()), p.id).await;
                    found.insert(sku.clone(), p.id);
                }
            }
        }
        Ok(found)
    }

    /// The Bling contact of `customer`, found by CPF/CNPJ or created; the consumidor final
    /// for an anonymous sale.
    pub async fn contact(&self, tenant: &TenantId, customer: Option<&Customer>) -> Result<BlingId, CallError> {
        let Some(customer) = customer else {
            let load = async {
                self.consumidor_final(tenant).await?.ok_or_else(|| {
                    CallError::Service(ServiceError::FailedPrecondition(
                        "o Bling não informou o contato consumidor final da conta".into(),
                    ))
                })
            };
            return self
                .known
                .consumidor_final
                .try_get_with(tenant.clone(), load)
                .await
                .map_err(|e: Arc<CallError>| (*e).clone());
        };
        let key = (tenant.clone(), customer.document.clone());
        let load = async {
            if let Some(id) = CONTACTS.stored(&self.db, tenant, &customer.document).await? {
                return Ok(id);
            }
            let id = match self.contact_by_document(tenant, &customer.document).await? {
                Some(id) => id,
                None => {
                    let nome = if customer.name.is_empty() {
                        format!("Cliente {}", customer.document)
                    } else {
                        customer.name.clone()
                    };
                    let tipo = if customer.document.len() == 14 { "J" } else { "F" };
                    let novo = NovoContato {
                        nome,
                        tipo: tipo.into(),
                        situacao: "A".into(),
                        numero_documento: customer.document.clone(),
                    };
                    self.create_contact(tenant, &novo).await?
                }
            };
            CONTACTS.remember(&self.db, tenant, &customer.document, id).await?;
            Ok::<_, CallError>(id)
        };
        self.known.contacts.try_get_with(key, load).await.map_err(|e: Arc<CallError>| (*e).clone())
    }
}
