//! What shipping reads from and writes to a tenant's Bling account: sales orders and products
//! (re-read, events are only notifications), situação moves, and the Vendas module's situações
//! and transitions for setup; each through the tenant's token (renewed once when Bling refuses it) on the
//! account's shared budget, at live priority (an event or a person is waiting).

use ponte_connectors::{
    CallError,
    bling::{
        Caller,
        resources::{Modulo, NovaSituacao, PedidoVenda, Produto, Situacao},
        situacoes::{NovaTransicao, Transicao},
    },
};
use ponte_core::{BlingId, TenantId, access::AccessToken, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::Provider;

use crate::context::Context;

fn caller(token: &AccessToken) -> Caller<'_> {
    Caller { account: &token.account, priority: Priority::Live, token: token.secret() }
}

/// A read's answer, with "Bling has no such record" as `None`.
fn found<T>(read: Result<T, CallError>) -> Result<Option<T>, ServiceError> {
    match read {
        Ok(t) => Ok(Some(t)),
        Err(CallError::Outside(e)) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Context {
    /// The sales order as Bling has it now; `None` when Bling no longer has it.
    pub async fn pedido(&self, tenant: &TenantId, id: BlingId) -> Result<Option<PedidoVenda>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.pedido(caller(&t), id).await?)
        });
        found(read.await)
    }

    /// The product as Bling has it now; `None` when Bling no longer has it.
    pub async fn produto(&self, tenant: &TenantId, id: BlingId) -> Result<Option<Produto>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.produto(caller(&t), id).await?)
        });
        found(read.await)
    }

    /// Moves order `pedido` to `situacao` (no change, and no webhook, when it is there already).
    pub async fn mudar_situacao(&self, tenant: &TenantId, pedido: BlingId, situacao: i64) -> Result<(), CallError> {
        let api = &self.bling;
        self.tokens
            .with_token(tenant, Provider::Bling, |t| async move {
                Ok::<_, CallError>(api.mudar_situacao(caller(&t), pedido.get(), situacao).await?)
            })
            .await
    }

    /// The account's modules of situações.
    pub async fn modulos(&self, tenant: &TenantId) -> Result<Vec<Modulo>, ServiceError> {
        let api = &self.bling;
        let read = self
            .tokens
            .with_token(tenant, Provider::Bling, |t| async move { Ok::<_, CallError>(api.modulos(caller(&t)).await?) });
        Ok(read.await?)
    }

    /// The situações of module `modulo`.
    pub async fn situacoes(&self, tenant: &TenantId, modulo: i64) -> Result<Vec<Situacao>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.situacoes(caller(&t), modulo).await?)
        });
        Ok(read.await?)
    }

    /// Creates a situação; its id.
    pub async fn create_situacao(&self, tenant: &TenantId, nova: &NovaSituacao) -> Result<i64, ServiceError> {
        let api = &self.bling;
        let created = self.tokens.with_token(tenant, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.create_situacao(caller(&t), nova).await?)
        });
        Ok(created.await?)
    }

    /// The transitions of module `modulo`.
    pub async fn transicoes(&self, tenant: &TenantId, modulo: i64) -> Result<Vec<Transicao>, ServiceError> {
        let api = &self.bling;
        let read = self.tokens.with_token(tenant, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.transicoes(caller(&t), modulo).await?)
        });
        Ok(read.await?)
    }

    /// Creates a transition; its id.
    pub async fn create_transicao(&self, tenant: &TenantId, nova: &NovaTransicao) -> Result<i64, ServiceError> {
        let api = &self.bling;
        let created = self.tokens.with_token(tenant, Provider::Bling, |t| async move {
            Ok::<_, CallError>(api.create_transicao(caller(&t), nova).await?)
        });
        Ok(created.await?)
    }
}
