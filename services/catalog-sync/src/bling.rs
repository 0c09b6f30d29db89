//! What flows read from and write to a tenant's Bling account: products and sales orders, one
//! or a page at a time, through the tenant's token (renewed once when Bling refuses it) and on
//! the account's shared budget at the caller's priority. A record Bling no longer has is `None`.

use ponte_connectors::{
    CallError,
    bling::{
        Caller,
        resources::{PedidoVenda, Produto, ProdutoResumo},
    },
};
use ponte_core::{BlingId, TenantId, access::AccessToken, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::Provider;
use serde_json::Value;

use crate::context::Context;

/// Who calls Bling with `token`: its account's budget, at `priority`.
fn caller(token: &AccessToken, priority: Priority) -> Caller<'_> {
    Caller { account: &token.account, priority, token: token.secret() }
}

impl Context {
    /// The product as Bling has it now; `None` when Bling no longer has it.
    pub async fn produto(
        &self,
        tenant_id: &TenantId,
        id: BlingId,
        priority: Priority,
    ) -> Result<Option<Produto>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant_id, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.produto(caller(&t, priority), id).await?)
        });
        found(read.await)
    }

    /// The sales order as Bling has it now; `None` when Bling no longer has it.
    pub async fn pedido(
        &self,
        tenant_id: &TenantId,
        id: BlingId,
        priority: Priority,
    ) -> Result<Option<PedidoVenda>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant_id, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.pedido(caller(&t, priority), id).await?)
        });
        found(read.await)
    }

    /// One page of the product list, every product (active, inactive, deleted) included.
    pub async fn produtos_page(&self, tenant_id: &TenantId, page: u32) -> Result<Vec<ProdutoResumo>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant_id, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.produtos_page(caller(&t, Priority::Backfill), page, &[]).await?)
        });
        Ok(read.await?)
    }

    /// One page of the sales orders, as Bling lists them.
    pub async fn pedidos_page(&self, tenant_id: &TenantId, page: u32) -> Result<Vec<PedidoVenda>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant_id, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.pedidos_page(caller(&t, Priority::Backfill), page).await?)
        });
        Ok(read.await?)
    }

    /// Creates a product; its id.
    pub async fn create_produto(
        &self,
        tenant_id: &TenantId,
        body: &Value,
        priority: Priority,
    ) -> Result<BlingId, ServiceError> {
        let api = &self.bling;
        let created = self.tokens.with_token(tenant_id, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.create_produto(caller(&t, priority), body).await?)
        });
        Ok(created.await?)
    }

    /// Replaces product `id` with `body`.
    pub async fn update_produto(
        &self,
        tenant_id: &TenantId,
        id: BlingId,
        body: &Value,
        priority: Priority,
    ) -> Result<(), ServiceError> {
        let api = &self.bling;
        let updated = self.tokens.with_token(tenant_id, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.update_produto(caller(&t, priority), id, body).await?)
        });
        Ok(updated.await?)
    }
}

/// A read's answer, with "Bling has no such record" as `None`.
fn found<T>(read: Result<T, CallError>) -> Result<Option<T>, ServiceError> {
    match read {
        Ok(t) => Ok(Some(t)),
        Err(CallError::Outside(e)) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
