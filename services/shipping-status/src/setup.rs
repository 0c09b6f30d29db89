//! Setting a tenant up for shipping, in one idempotent step: the situações of Bling's Vendas
//! module the cycle needs ("Em romaneio", "Aguardando coleta", "Em rota de entrega", each
//! inheriting from the default "Em andamento": the order is still in progress at Bling until it
//! is delivered), found by name — a merchant's own situação of that name is adopted, never
//! duplicated — or created; then the situação ⇄ shipping status map written into mapping,
//! with the release situação ("Em andamento" unless the request names another) and Bling's
//! defaults Atendido (delivered) and Cancelado (cancelled). An entry the tenant already maps
//! otherwise is kept as it is and reported. Asked to, it also finds or creates the cycle's
//! transitions (each step to the next, and to Cancelado from each step before transit), which
//! run no stock action. A dry run reads and reports, and writes nothing.

use ponte_connectors::bling::{
    resources::{IdRef, NovaSituacao, Situacao},
    situacoes::NovaTransicao,
};
use ponte_core::{TenantId, error::ServiceError};
use ponte_proto::v1::{SetUpAction, SetUpShippingRequest, SetUpStep, ShippingStatus, SituacaoMap};
use tonic::Code;

use crate::context::Context;

/// The name Bling gives the module of sales-order situações.
const MODULO_VENDAS: &str = "Vendas";
/// The default situação the cycle's own situações inherit from.
const EM_ANDAMENTO: &str = "Em andamento";
/// The situações ponte creates when missing: name, colour, the status each stands for.
const CYCLE: [(&str, &str, ShippingStatus); 3] = [
    ("Em romaneio", "#8E44AD", ShippingStatus::InPackingList),
    ("Aguardando coleta", "#F39C12", ShippingStatus::AwaitingShipment),
    ("Em rota de entrega", "#2980B9", ShippingStatus::InTransit),
];
/// Bling's defaults the cycle ends at.
const ENDS: [(&str, ShippingStatus); 2] =
    [("Atendido", ShippingStatus::Delivered), ("Cancelado", ShippingStatus::Cancelled)];
/// Who the mapping audit trail says wrote the map.
const ACTOR: &str = "ponte shipping setup";

/// A name as Bling compares them: trimmed, without case or accents.
fn folded(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        })
        .collect()
}

fn find<'a>(list: &'a [Situacao], name: &str) -> Option<&'a Situacao> {
    list.iter().find(|s| folded(&s.nome) == folded(name))
}

fn step(subject: String, action: SetUpAction, situacao: i64, detail: impl Into<String>) -> SetUpStep {
    SetUpStep { subject, action: action as i32, bling_situacao_id: situacao, detail: detail.into() }
}

/// A situação of the cycle: its id (0 when a dry run would create it) and name.
struct Target {
    id: i64,
    name: String,
    status: ShippingStatus,
    releases: bool,
}

pub(crate) async fn set_up(
    ctx: &Context,
    tenant: &TenantId,
    req: &SetUpShippingRequest,
) -> Result<Vec<SetUpStep>, ServiceError> {
    let release_name = match req.release_situacao_name.trim() {
        "" => EM_ANDAMENTO,
        name => name,
    };
    let modulos = ctx.modulos(tenant).await?;
    let vendas = modulos.iter().find(|m| folded(&m.nome) == folded(MODULO_VENDAS)).ok_or_else(|| {
        ServiceError::FailedPrecondition(format!("the Bling account of tenant '{tenant}' has no Vendas module"))
    })?;
    let list = ctx.situacoes(tenant, vendas.id).await?;
    let required = |name: &str, field: &str| {
        find(&list, name).cloned().ok_or_else(|| {
            ServiceError::invalid(field, format!("Bling's Vendas module of tenant '{tenant}' has no situação '{name}'"))
        })
    };
    let release = required(release_name, "release_situacao_name")?;
    let andamento = required(EM_ANDAMENTO, "release_situacao_name")?;
    let mut steps = Vec::new();
    let mut targets =
        vec![Target { id: release.id, name: release.nome.clone(), status: ShippingStatus::Received, releases: true }];
    for (name, cor, status) in CYCLE {
        let subject = format!("situação '{name}'");
        let id = match find(&list, name) {
            Some(found) => {
                let whose =
                    if found.id_herdado.unwrap_or_default() == andamento.id { "" } else { " (the merchant's own)" };
                steps.push(step(subject, SetUpAction::Found, found.id, format!("already in Bling{whose}")));
                found.id
            }
            None if req.dry_run => {
                steps.push(step(
                    subject,
                    SetUpAction::WouldCreate,
                    0,
                    format!("would create, inheriting from '{EM_ANDAMENTO}'"),
                ));
                0
            }
            None => {
                let nova = NovaSituacao {
                    id_modulo_sistema: vendas.id,
                    nome: name.into(),
                    id_herdado: andamento.id,
                    cor: cor.into(),
                };
                let id = ctx.create_situacao(tenant, &nova).await?;
                steps.push(step(
                    subject,
                    SetUpAction::Created,
                    id,
                    format!("created, inheriting from '{EM_ANDAMENTO}'"),
                ));
                id
            }
        };
        targets.push(Target { id, name: name.into(), status, releases: false });
    }
    for (name, status) in ENDS {
        let s = required(name, "release_situacao_name")?;
        targets.push(Target { id: s.id, name: s.nome.clone(), status, releases: false });
    }
    map(ctx, tenant, &targets, req.dry_run, &mut steps).await?;
    if req.transitions {
        transitions(ctx, tenant, vendas.id, &targets, req.dry_run, &mut steps).await?;
    }
    if !req.dry_run {
        ctx.mapping.forget(tenant).await;
    }
    Ok(steps)
}

/// Writes the map entries the tenant lacks; keeps those it maps otherwise.
async fn map(
    ctx: &Context,
    tenant: &TenantId,
    targets: &[Target],
    dry_run: bool,
    steps: &mut Vec<SetUpStep>,
) -> Result<(), ServiceError> {
    let existing = ctx.mapping.situacao_maps(tenant).await?;
    for t in targets {
        let subject = format!("map {} → '{}'", t.status.as_str_name(), t.name);
        let by_situacao = existing.iter().find(|m| t.id != 0 && m.bling_situacao_id == t.id);
        let by_status = existing.iter().find(|m| m.shipping_status == t.status as i32);
        let releasing = existing.iter().find(|m| m.releases_to_shipping);
        let kept = match (by_situacao, by_status) {
            (Some(m), _) if m.shipping_status == t.status as i32 && m.releases_to_shipping == t.releases => {
                steps.push(step(subject, SetUpAction::Found, t.id, "already mapped"));
                continue;
            }
            (Some(m), _) => Some(format!(
                "the tenant maps situação {} to {}{}; left as it is",
                t.id,
                ShippingStatus::try_from(m.shipping_status).unwrap_or_default().as_str_name(),
                if m.releases_to_shipping { " (releasing)" } else { "" }
            )),
            (None, Some(m)) => Some(format!(
                "the tenant maps {} to situação {} '{}'; left as it is",
                t.status.as_str_name(),
                m.bling_situacao_id,
                m.bling_situacao_name
            )),
            (None, None) => releasing.filter(|_| t.releases).map(|m| {
                format!(
                    "the tenant releases orders at situação {} '{}'; left as it is",
                    m.bling_situacao_id, m.bling_situacao_name
                )
            }),
        };
        if let Some(why) = kept {
            steps.push(step(subject, SetUpAction::Kept, t.id, why));
            continue;
        }
        if dry_run {
            steps.push(step(subject, SetUpAction::WouldCreate, t.id, "would map"));
            continue;
        }
        let entry = SituacaoMap {
            tenant_id: tenant.to_string(),
            bling_situacao_id: t.id,
            bling_situacao_name: t.name.clone(),
            shipping_status: t.status as i32,
            releases_to_shipping: t.releases,
            create_time: None,
        };
        match ctx.mapping.create_situacao_map(entry, ACTOR).await {
            Ok(_) => steps.push(step(subject, SetUpAction::Created, t.id, "mapped")),
            // Another run (or a person) mapped it meanwhile.
            Err(s) if s.code() == Code::AlreadyExists => {
                steps.push(step(subject, SetUpAction::Kept, t.id, s.message()))
            }
            Err(s) if ponte_core::error::is_retriable(&s) => {
                return Err(ServiceError::unavailable(format!("mapping: {}", s.message()), None));
            }
            Err(s) => {
                return Err(ServiceError::FailedPrecondition(format!("mapping refused {subject}: {}", s.message())));
            }
        }
    }
    Ok(())
}

/// The cycle's moves, as indexes into the targets (release, the three steps, Atendido,
/// Cancelado): each step to the next, and to Cancelado from each step before transit.
const MOVES: [(usize, usize); 7] = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (1, 5), (2, 5)];

/// Creates the transitions of the cycle the module lacks.
async fn transitions(
    ctx: &Context,
    tenant: &TenantId,
    modulo: i64,
    targets: &[Target],
    dry_run: bool,
    steps: &mut Vec<SetUpStep>,
) -> Result<(), ServiceError> {
    let existing = ctx.transicoes(tenant, modulo).await?;
    for (from, to) in MOVES {
        let (from, to) = (&targets[from], &targets[to]);
        let subject = format!("transição '{}' → '{}'", from.name, to.name);
        let found = existing.iter().find(|t| t.situacao_origem.id == from.id && t.situacao_destino.id == to.id);
        if let Some(t) = found.filter(|_| from.id != 0 && to.id != 0) {
            steps.push(step(subject, SetUpAction::Found, to.id, format!("already in Bling (transição {})", t.id)));
        } else if dry_run {
            steps.push(step(subject, SetUpAction::WouldCreate, to.id, "would create, with no stock action"));
        } else {
            let nova = NovaTransicao {
                situacao_origem: IdRef { id: from.id },
                situacao_destino: IdRef { id: to.id },
                ativo: true,
                acoes: Vec::new(),
            };
            let id = ctx.create_transicao(tenant, &nova).await?;
            steps.push(step(
                subject,
                SetUpAction::Created,
                to.id,
                format!("created (transição {id}), with no stock action"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_as_bling_does() {
        let list = vec![
            Situacao { id: 15, nome: "Em andamento".into(), id_herdado: Some(0), cor: String::new() },
            Situacao { id: 501, nome: " em ROMANEIO ".into(), id_herdado: Some(15), cor: String::new() },
        ];
        assert_eq!(find(&list, "Em romaneio").map(|s| s.id), Some(501));
        assert_eq!(folded("Em Rota de Entrega"), folded("em rota de entrega"));
        assert_eq!(folded("Situação Ação"), "situacao acao");
        assert!(find(&list, "Aguardando coleta").is_none());
    }
}
