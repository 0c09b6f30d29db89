//! The calls on Bling's resources the flows make (products, sales orders and their stock,
//! situações, formas de pagamento, depósitos, sales channels, contacts), each one request
//! through [`BlingApi::send`], the account's budget and the error classification.

use ponte_core::BlingId;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::{
    SYSTEM,
    client::{BlingApi, Caller},
    resources::{
        CanalVenda, Contato, Deposito, FormaPagamento, Modulo, MovimentoEstoque, NovaSituacao, NovoPedidoVenda,
        PedidoVenda, Produto, ProdutoResumo, Saldo, Saved, Situacao,
    },
    types::Data,
};
use crate::error::ConnectorError;

/// Bling's largest page.
pub const PAGE_SIZE: u32 = 100;

/// Query pairs for an array filter: `idsProdutos[]=1&idsProdutos[]=2`.
pub fn array_filter(
    name: &'static str,
    values: impl IntoIterator<Item = impl ToString>,
) -> Vec<(&'static str, String)> {
    values.into_iter().map(|v| (name, v.to_string())).collect()
}

impl BlingApi {
    pub(crate) async fn json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        caller: Caller<'_>,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ConnectorError> {
        let body = body
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("encoding {path}: {e}") })?;
        let bytes = self.send(caller, method, path, query, body.as_ref()).await?;
        let data: Data<T> = serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("{path}: {e}") })?;
        Ok(data.data)
    }

    pub(crate) async fn no_content(
        &self,
        caller: Caller<'_>,
        method: Method,
        path: &str,
    ) -> Result<(), ConnectorError> {
        self.send(caller, method, path, &[], None).await.map(|_| ())
    }

    /// Every page of a list, 100 at a time, until a short or empty page.
    pub async fn all_pages<T: DeserializeOwned>(
        &self,
        caller: Caller<'_>,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<T>, ConnectorError> {
        let mut out = Vec::new();
        for pagina in 1.. {
            let mut q = filters.to_vec();
            q.push(("pagina", pagina.to_string()));
            q.push(("limite", PAGE_SIZE.to_string()));
            let page: Vec<T> = self.get(caller, path, &q).await?;
            let short = page.len() < PAGE_SIZE as usize;
            out.extend(page);
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// One page of products. `criterio` 5 (all) unless the filters say otherwise: Bling's
    /// default (1, "last added") hides most of a catalog.
    pub async fn produtos_page(
        &self,
        caller: Caller<'_>,
        pagina: u32,
        filters: &[(&str, String)],
    ) -> Result<Vec<ProdutoResumo>, ConnectorError> {
        let mut q = filters.to_vec();
        if !q.iter().any(|(k, _)| *k == "criterio") {
            q.push(("criterio", "5".into()));
        }
        q.push(("pagina", pagina.max(1).to_string()));
        q.push(("limite", PAGE_SIZE.to_string()));
        self.get(caller, "/produtos", &q).await
    }

    pub async fn produto(&self, caller: Caller<'_>, id: BlingId) -> Result<Produto, ConnectorError> {
        self.get(caller, &format!("/produtos/{id}"), &[]).await
    }

    pub async fn create_produto(
        &self,
        caller: Caller<'_>,
        body: &serde_json::Value,
    ) -> Result<BlingId, ConnectorError> {
        let saved: Saved = self.json(caller, Method::POST, "/produtos", &[], Some(body)).await?;
        BlingId::new(saved.id).ok_or_else(|| ConnectorError::Protocol {
            system: SYSTEM,
            message: format!("POST /produtos: id {}", saved.id),
        })
    }

    pub async fn update_produto(
        &self,
        caller: Caller<'_>,
        id: BlingId,
        body: &serde_json::Value,
    ) -> Result<(), ConnectorError> {
        let _: Saved = self.json(caller, Method::PUT, &format!("/produtos/{id}"), &[], Some(body)).await?;
        Ok(())
    }

    /// A (active), I (inactive) or E (excluded).
    pub async fn set_produto_situacao(
        &self,
        caller: Caller<'_>,
        id: i64,
        situacao: &str,
    ) -> Result<(), ConnectorError> {
        let body = serde_json::json!({"situacao": situacao});
        self.send(caller, Method::PATCH, &format!("/produtos/{id}/situacoes"), &[], Some(&body)).await.map(|_| ())
    }

    /// The orders carrying a `numeroLoja` (how a retried post finds the order it made).
    pub async fn pedidos_por_numero_loja(
        &self,
        caller: Caller<'_>,
        numero_loja: &str,
    ) -> Result<Vec<PedidoVenda>, ConnectorError> {
        self.get(caller, "/pedidos/vendas", &array_filter("numerosLojas[]", [numero_loja])).await
    }

    /// One page of sales orders, newest first as Bling lists them (no items: read each order
    /// for those).
    pub async fn pedidos_page(&self, caller: Caller<'_>, pagina: u32) -> Result<Vec<PedidoVenda>, ConnectorError> {
        let q = [("pagina", pagina.max(1).to_string()), ("limite", PAGE_SIZE.to_string())];
        self.get(caller, "/pedidos/vendas", &q).await
    }

    pub async fn pedido(&self, caller: Caller<'_>, id: BlingId) -> Result<PedidoVenda, ConnectorError> {
        self.get(caller, &format!("/pedidos/vendas/{id}"), &[]).await
    }

    /// Creates an order. Bling has no idempotency: look it up by `numeroLoja` before retrying.
    pub async fn create_pedido(&self, caller: Caller<'_>, pedido: &NovoPedidoVenda) -> Result<i64, ConnectorError> {
        let saved: Saved = self.json(caller, Method::POST, "/pedidos/vendas", &[], Some(pedido)).await?;
        Ok(saved.id)
    }

    pub async fn mudar_situacao(&self, caller: Caller<'_>, pedido: i64, situacao: i64) -> Result<(), ConnectorError> {
        self.no_content(caller, Method::PATCH, &format!("/pedidos/vendas/{pedido}/situacoes/{situacao}")).await
    }

    /// Writes the order's stock off (on `deposito`, or the account's default).
    pub async fn lancar_estoque(
        &self,
        caller: Caller<'_>,
        pedido: i64,
        deposito: Option<i64>,
    ) -> Result<(), ConnectorError> {
        let path = match deposito {
            Some(d) => format!("/pedidos/vendas/{pedido}/lancar-estoque/{d}"),
            None => format!("/pedidos/vendas/{pedido}/lancar-estoque"),
        };
        self.no_content(caller, Method::POST, &path).await
    }

    pub async fn estornar_estoque(&self, caller: Caller<'_>, pedido: i64) -> Result<(), ConnectorError> {
        self.no_content(caller, Method::POST, &format!("/pedidos/vendas/{pedido}/estornar-estoque")).await
    }

    pub async fn modulos(&self, caller: Caller<'_>) -> Result<Vec<Modulo>, ConnectorError> {
        self.get(caller, "/situacoes/modulos", &[]).await
    }

    pub async fn situacoes(&self, caller: Caller<'_>, modulo: i64) -> Result<Vec<Situacao>, ConnectorError> {
        self.get(caller, &format!("/situacoes/modulos/{modulo}"), &[]).await
    }

    /// Creates a custom situação (e.g. "Em romaneio") in a module.
    pub async fn create_situacao(&self, caller: Caller<'_>, nova: &NovaSituacao) -> Result<i64, ConnectorError> {
        let saved: Saved = self.json(caller, Method::POST, "/situacoes", &[], Some(nova)).await?;
        Ok(saved.id)
    }

    pub async fn formas_pagamento(&self, caller: Caller<'_>) -> Result<Vec<FormaPagamento>, ConnectorError> {
        self.all_pages(caller, "/formas-pagamentos", &[]).await
    }

    pub async fn depositos(&self, caller: Caller<'_>) -> Result<Vec<Deposito>, ConnectorError> {
        self.all_pages(caller, "/depositos", &[]).await
    }

    pub async fn canais_venda(&self, caller: Caller<'_>) -> Result<Vec<CanalVenda>, ConnectorError> {
        self.all_pages(caller, "/canais-venda", &[]).await
    }

    /// The "consumidor final" contact anonymous sales are posted to.
    pub async fn consumidor_final(&self, caller: Caller<'_>) -> Result<Contato, ConnectorError> {
        self.get(caller, "/contatos/consumidor-final", &[]).await
    }

    /// Stock balances of products. Bling's default filter hides products with no positive
    /// balance, so zero, positive and negative balances are asked for and merged.
    pub async fn saldos(&self, caller: Caller<'_>, ids: &[i64]) -> Result<Vec<Saldo>, ConnectorError> {
        let mut out: Vec<Saldo> = Vec::new();
        for chunk in ids.chunks(PAGE_SIZE as usize) {
            for filtro in ["0", "1", "2"] {
                let mut q = array_filter("idsProdutos[]", chunk);
                q.push(("filtroSaldoEstoque", filtro.into()));
                let page: Vec<Saldo> = self.get(caller, "/estoques/saldos", &q).await?;
                for s in page {
                    if !out.iter().any(|o| o.produto.id == s.produto.id) {
                        out.push(s);
                    }
                }
            }
        }
        Ok(out)
    }

    pub async fn movimentar_estoque(&self, caller: Caller<'_>, m: &MovimentoEstoque) -> Result<i64, ConnectorError> {
        let saved: Saved = self.json(caller, Method::POST, "/estoques", &[], Some(m)).await?;
        Ok(saved.id)
    }
}
