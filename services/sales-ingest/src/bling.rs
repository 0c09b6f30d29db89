//! The Bling calls of the sales flow, each through the tenant's token (renewed once when Bling
//! refuses it) on the account's shared budget at live priority: the order and its write-off,
//! the order looked up by `numeroLoja`, stock returned, situação changed, products by SKU,
//! contacts by CPF/CNPJ, and the consumidor final. Errors stay [`CallError`]s, so the flow can
//! tell what waits (a 429, a 5xx) from what a person must fix (a refusal, a lost grant).

use ponte_connectors::{
    CallError,
    bling::{
        Caller,
        estoque::Lancamento,
        resources::{NovoContato, NovoPedidoVenda, ProdutoResumo},
    },
};
use ponte_core::{BlingId, TenantId, access::AccessToken, ratelimit::Priority};
use ponte_proto::v1::Provider;

use crate::context::Context;

fn caller(token: &AccessToken) -> Caller<'_> {
    Caller { account: &token.account, priority: Priority::Live, token: token.secret() }
}

/// Runs one Bling call for `$tenant` with `$api` and a caller `$c`.
macro_rules! bling {
    ($ctx:expr, $tenant:expr, |$api:ident, $c:ident| $call:expr) => {{
        let $api = &$ctx.bling;
        $ctx.tokens
            .with_token($tenant, Provider::Bling, |t| async move {
                let $c = caller(&t);
                Ok::<_, CallError>($call.await?)
            })
            .await
    }};
}

impl Context {
    pub async fn create_order(&self, tenant: &TenantId, order: &NovoPedidoVenda) -> Result<i64, CallError> {
        bling!(self, tenant, |api, c| api.create_pedido(c, order))
    }

    /// The order carrying `numero_loja`, if Bling has one.
    pub async fn order_by_numero_loja(&self, tenant: &TenantId, numero_loja: &str) -> Result<Option<i64>, CallError> {
        let found = bling!(self, tenant, |api, c| api.pedidos_por_numero_loja(c, numero_loja))?;
        Ok(found.into_iter().find(|o| o.numero_loja == numero_loja).map(|o| o.id.get()))
    }

    pub async fn write_off(
        &self,
        tenant: &TenantId,
        order: BlingId,
        deposito: BlingId,
    ) -> Result<Lancamento, CallError> {
        bling!(self, tenant, |api, c| api.lancar_estoque_uma_vez(c, order, deposito))
    }

    pub async fn return_stock(&self, tenant: &TenantId, order: BlingId) -> Result<(), CallError> {
        bling!(self, tenant, |api, c| api.estornar_estoque(c, order.get()))
    }

    pub async fn set_situacao(&self, tenant: &TenantId, order: BlingId, situacao: BlingId) -> Result<(), CallError> {
        bling!(self, tenant, |api, c| api.mudar_situacao(c, order.get(), situacao.get()))
    }

    /// The products with these SKUs (at most 100), every situação listed.
    pub async fn products_by_sku(&self, tenant: &TenantId, skus: &[String]) -> Result<Vec<ProdutoResumo>, CallError> {
        let filter = ponte_connectors::bling::array_filter("codigos[]", skus);
        let filter = &filter;
        bling!(self, tenant, |api, c| api.produtos_page(c, 1, filter))
    }

    pub async fn contact_by_document(&self, tenant: &TenantId, document: &str) -> Result<Option<BlingId>, CallError> {
        let found = bling!(self, tenant, |api, c| api.contatos_por_documento(c, document))?;
        Ok(found.into_iter().find_map(|c| BlingId::new(c.id)))
    }

    pub async fn create_contact(&self, tenant: &TenantId, contato: &NovoContato) -> Result<BlingId, CallError> {
        bling!(self, tenant, |api, c| api.create_contato(c, contato))
    }

    pub async fn consumidor_final(&self, tenant: &TenantId) -> Result<Option<BlingId>, CallError> {
        let c = bling!(self, tenant, |api, c| api.consumidor_final(c))?;
        Ok(BlingId::new(c.id))
    }
}
