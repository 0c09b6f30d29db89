//! The tenant's Bling account as the check of every Bling id a map names: formas de pagamento,
//! canais de venda (lojas), depósitos and the situações of the Vendas module. A map naming an id
//! the account does not have is refused rather than stored, so a sale is never posted with it.
//!
//! The lists are read through the Bling connector with the tenant's access token (from
//! auth-token), on the account's shared request budget at live priority (a person or an import
//! is waiting), and kept per tenant for [`LIST_TTL`]: an import of many rows reads each list
//! once. An id missing from a kept list is looked for once more in a fresh one before it is
//! refused, because the merchant may have just created it in Bling. Concurrent writes that need
//! the same fresh list share one read of it: the lists are a moka cache, whose compute calls take
//! their turns per key.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{future::Cache, ops::compute::Op};
use ponte_connectors::{
    CallError, ConnectorError,
    bling::{BlingApi, Caller},
};
use ponte_core::{
    BlingId, TenantId,
    access::{AccessToken, AccessTokens},
    error::ServiceError,
    ratelimit::Priority,
};
use ponte_proto::v1::Provider;

/// How long a list read from Bling is trusted.
pub const LIST_TTL: Duration = Duration::from_secs(60);

/// How long a caller is asked to wait when Bling is down or out of requests for now.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Lists kept at most (four per tenant).
const CAPACITY: u64 = 100_000;

/// A list of the account's ids that a map's field must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    FormasPagamento,
    CanaisVenda,
    Depositos,
    /// The situações of the Vendas module (sales orders).
    Situacoes,
}

impl List {
    /// One entry, as messages name it.
    fn noun(self) -> &'static str {
        match self {
            Self::FormasPagamento => "forma de pagamento",
            Self::CanaisVenda => "canal de venda (loja)",
            Self::Depositos => "depósito",
            Self::Situacoes => "situação of the Vendas module",
        }
    }

    /// The list, as messages name it.
    fn plural(self) -> &'static str {
        match self {
            Self::FormasPagamento => "formas de pagamento",
            Self::CanaisVenda => "canais de venda",
            Self::Depositos => "depósitos",
            Self::Situacoes => "situações of the Vendas module",
        }
    }
}

/// The name Bling gives the module of sales-order situações.
const MODULO_VENDAS: &str = "Vendas";

struct Kept {
    ids: HashSet<i64>,
    /// When the read started: the list holds everything created in Bling before then.
    read_at: Instant,
}

/// The lists of every tenant's Bling account, read on demand and kept briefly.
#[derive(Clone)]
pub struct BlingLists {
    tokens: AccessTokens,
    api: BlingApi,
    kept: Cache<(TenantId, List), Arc<Kept>>,
}

impl BlingLists {
    pub fn new(tokens: AccessTokens, api: BlingApi, ttl: Duration) -> Self {
        Self { tokens, api, kept: Cache::builder().max_capacity(CAPACITY).time_to_live(ttl).build() }
    }

    /// `Ok` when `id` is in the tenant's `list`; otherwise INVALID_ARGUMENT naming `field`.
    /// FAILED_PRECONDITION when the tenant has not connected Bling (or must authorize again);
    /// UNAVAILABLE, with a wait, when Bling cannot be asked now.
    pub async fn require(&self, tenant: &TenantId, list: List, field: &str, id: BlingId) -> Result<(), ServiceError> {
        let key = (tenant.clone(), list);
        let asked_at = Instant::now();
        if self.kept.get(&key).await.is_some_and(|k| k.ids.contains(&id.get())) {
            return Ok(());
        }
        let computed = self
            .kept
            .entry(key)
            .and_try_compute_with(|kept| async move {
                match kept {
                    // Another caller's read, kept while this one waited its turn, is enough to
                    // accept the id, and to refuse it when that read started after this call did.
                    Some(k) if k.value().ids.contains(&id.get()) || k.value().read_at >= asked_at => Ok(Op::Nop),
                    _ => {
                        let read_at = Instant::now();
                        let ids = self.read(tenant, list, field).await?;
                        Ok::<_, ServiceError>(Op::Put(Arc::new(Kept { ids, read_at })))
                    }
                }
            })
            .await?;
        let kept = computed.into_entry().map(|e| e.into_value()).ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!(
                "the {} of tenant '{tenant}' were neither kept nor read",
                list.plural()
            ))
        })?;
        if kept.ids.contains(&id.get()) {
            Ok(())
        } else {
            Err(ServiceError::invalid(field, format!("{id} is not a {} of this Bling account", list.noun())))
        }
    }

    /// The list as Bling has it now, read with the tenant's token (renewed once if Bling refuses it).
    async fn read(&self, tenant: &TenantId, list: List, field: &str) -> Result<HashSet<i64>, ServiceError> {
        let cannot_check =
            |why: String| ServiceError::FailedPrecondition(format!("{field} cannot be checked against Bling: {why}"));
        let read = self.tokens.with_token_if_connected(tenant, Provider::Bling, |token| self.fetch(token, list)).await;
        let e = match read {
            Ok(Some(ids)) => return Ok(ids),
            Ok(None) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "Bling must be connected first: {field} is checked against the tenant's Bling account, and \
                     tenant '{tenant}' has not connected one (ponte connections connect bling --tenant {tenant})"
                )));
            }
            Err(CallError::Service(ServiceError::FailedPrecondition(why))) => return Err(cannot_check(why)),
            Err(CallError::Service(e)) => return Err(e),
            Err(CallError::Outside(e)) => e,
        };
        let wait = match &e {
            ConnectorError::RateLimited { retry_after, .. } => *retry_after,
            ConnectorError::BudgetExhausted { renews_in, .. } => *renews_in,
            ConnectorError::Unavailable { .. } | ConnectorError::Protocol { .. } => None,
            ConnectorError::InvalidToken { .. }
            | ConnectorError::InvalidGrant { .. }
            | ConnectorError::Rejected { .. }
            | ConnectorError::NotFound { .. } => {
                return Err(cannot_check(format!("reading the {}: {e}", list.plural())));
            }
        };
        Err(ServiceError::unavailable(
            format!("{field} cannot be checked now: reading the {}: {e}", list.plural()),
            Some(wait.unwrap_or(RETRY_AFTER)),
        ))
    }

    async fn fetch(&self, token: AccessToken, list: List) -> Result<HashSet<i64>, CallError> {
        let caller = Caller { account: &token.account, priority: Priority::Live, token: token.secret() };
        Ok(match list {
            List::FormasPagamento => self.api.formas_pagamento(caller).await?.into_iter().map(|f| f.id).collect(),
            List::CanaisVenda => self.api.canais_venda(caller).await?.into_iter().map(|c| c.id).collect(),
            List::Depositos => self.api.depositos(caller).await?.into_iter().map(|d| d.id).collect(),
            List::Situacoes => {
                // Every account has the module; one without it has no situação to map either.
                let modulos = self.api.modulos(caller).await?;
                match modulos.iter().find(|m| m.nome.eq_ignore_ascii_case(MODULO_VENDAS)) {
                    Some(vendas) => self.api.situacoes(caller, vendas.id).await?.into_iter().map(|s| s.id).collect(),
                    None => HashSet::new(),
                }
            }
        })
    }
}
