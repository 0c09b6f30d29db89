//! The tenant's Bling account as the check of every Bling id a map names: formas de pagamento,
//! canais de venda (lojas), depósitos and the situações of the Vendas module. A map naming an id
//! the account does not have is refused rather than stored, so a sale is never posted with it.
//!
//! The lists are read through the Bling connector with the tenant's access token (from
//! auth-token), on the account's shared request budget at live priority (a person or an import
//! is waiting), and kept per tenant for [`LIST_TTL`]: an import of many rows reads each list
//! once. An id missing from a kept list is looked for once more in a fresh one before it is
//! refused, because the merchant may have just created it in Bling. Concurrent writes that need
//! the same fresh list share one read of it.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use ponte_connectors::{
    ConnectorError,
    bling::{BlingApi, Caller},
};
use ponte_core::{
    TenantId,
    access::{AccessToken, AccessTokens},
    error::ServiceError,
    ratelimit::Priority,
};
use ponte_proto::v1::Provider;

/// How long a list read from Bling is trusted.
pub const LIST_TTL: Duration = Duration::from_secs(60);

/// How long a caller is asked to wait when Bling is down or out of requests for now.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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
    ids: Arc<HashSet<i64>>,
    /// When the read started: the list holds everything created in Bling before then.
    read_at: Instant,
}

type Key = (TenantId, List);

/// The lists of every tenant's Bling account, read on demand and kept briefly.
#[derive(Clone)]
pub struct BlingLists {
    tokens: AccessTokens,
    api: BlingApi,
    ttl: Duration,
    kept: Arc<Mutex<HashMap<Key, Kept>>>,
    /// One read of a list at a time per tenant; the others wait for it and use what it read.
    reading: Arc<Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>>,
}

impl BlingLists {
    pub fn new(tokens: AccessTokens, api: BlingApi, ttl: Duration) -> Self {
        Self { tokens, api, ttl, kept: Arc::default(), reading: Arc::default() }
    }

    /// `Ok` when `id` is in the tenant's `list`; otherwise INVALID_ARGUMENT naming `field`.
    /// FAILED_PRECONDITION when the tenant has not connected Bling (or must authorize again);
    /// UNAVAILABLE, with a wait, when Bling cannot be asked now.
    pub async fn require(&self, tenant_id: &TenantId, list: List, field: &str, id: i64) -> Result<(), ServiceError> {
        let key = (tenant_id.to_owned(), list);
        let asked_at = Instant::now();
        if self.kept_has(&key, id) {
            return Ok(());
        }
        let gate = self.reading.lock().entry(key.clone()).or_default().clone();
        let _reading = gate.lock().await;
        // Another caller's read may have kept the list meanwhile: it is enough to accept the id,
        // and to refuse it when that read started after this call did.
        if self.kept_has(&key, id) {
            return Ok(());
        }
        let kept = self.kept.lock().get(&key).filter(|k| k.read_at >= asked_at).map(|k| k.ids.clone());
        let ids = match kept {
            Some(ids) => ids,
            None => {
                let read_at = Instant::now();
                let ids = Arc::new(self.read(tenant_id, list, field).await?);
                self.kept.lock().insert(key, Kept { ids: ids.clone(), read_at });
                ids
            }
        };
        if ids.contains(&id) {
            Ok(())
        } else {
            Err(ServiceError::invalid(field, format!("{id} is not a {} of this Bling account", list.noun())))
        }
    }

    /// Whether the tenant's kept list, if still fresh, has `id`.
    fn kept_has(&self, key: &Key, id: i64) -> bool {
        self.kept.lock().get(key).is_some_and(|k| k.read_at.elapsed() < self.ttl && k.ids.contains(&id))
    }

    /// The list as Bling has it now. A refused access token is reported to auth-token and the
    /// renewed one tried once.
    async fn read(&self, tenant_id: &TenantId, list: List, field: &str) -> Result<HashSet<i64>, ServiceError> {
        let cannot_check =
            |why: String| ServiceError::FailedPrecondition(format!("{field} cannot be checked against Bling: {why}"));
        let token = match self.tokens.get_if_connected(tenant_id, Provider::Bling).await {
            Ok(Some(token)) => token,
            Ok(None) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "Bling must be connected first: {field} is checked against the tenant's Bling account, and \
                     tenant '{tenant_id}' has not connected one (ponte connections connect bling --tenant {tenant_id})"
                )));
            }
            Err(ServiceError::FailedPrecondition(why)) => return Err(cannot_check(why)),
            Err(e) => return Err(e),
        };
        let read = match self.fetch(&token, list).await {
            Err(ConnectorError::InvalidToken { .. }) => {
                let renewed = match self.tokens.refused(tenant_id, Provider::Bling, &token).await {
                    Err(ServiceError::FailedPrecondition(why)) => return Err(cannot_check(why)),
                    other => other?,
                };
                self.fetch(&renewed, list).await
            }
            other => other,
        };
        read.map_err(|e| {
            let wait = match &e {
                ConnectorError::RateLimited { retry_after, .. } => *retry_after,
                ConnectorError::BudgetExhausted { renews_in, .. } => *renews_in,
                ConnectorError::Unavailable { .. } | ConnectorError::Protocol { .. } => None,
                ConnectorError::InvalidToken { .. }
                | ConnectorError::InvalidGrant { .. }
                | ConnectorError::Rejected { .. }
                | ConnectorError::NotFound { .. } => {
                    return cannot_check(format!("reading the {}: {e}", list.plural()));
                }
            };
            ServiceError::unavailable(
                format!("{field} cannot be checked now: reading the {}: {e}", list.plural()),
                Some(wait.unwrap_or(RETRY_AFTER)),
            )
        })
    }

    async fn fetch(&self, token: &AccessToken, list: List) -> Result<HashSet<i64>, ConnectorError> {
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
