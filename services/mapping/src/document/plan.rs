//! What an import changes: the diff between what the service holds and the document, as deletes
//! then creates, each shown as one diff line.

use std::collections::{BTreeMap, HashMap};

use ponte_core::error::ServiceError;
use serde::Serialize;

use super::{
    check::validate,
    format::{Document, PaymentMethod, Situacao, Store},
};
use crate::fields::{self, Spec, Target};

/// One change an import makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    DeletePaymentMethod(PaymentMethod),
    DeleteStore(Store),
    DeleteSituacao(Situacao),
    /// The mapping and its id.
    DeleteFieldMapping(Spec, String),
    CreatePaymentMethod(PaymentMethod),
    CreateStore(Store),
    CreateSituacao(Situacao),
    CreateFieldMapping(Spec),
}

fn compact<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl std::fmt::Display for Change {
    /// One diff line: `-` or `+`, the section, the entry's key, the entry as JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field_key = |s: &Spec| format!("{} {}", s.target.label(), s.target_field);
        match self {
            Self::DeletePaymentMethod(p) => write!(f, "- payment_methods {}: {}", p.cplug_method, compact(p)),
            Self::CreatePaymentMethod(p) => write!(f, "+ payment_methods {}: {}", p.cplug_method, compact(p)),
            Self::DeleteStore(s) => write!(f, "- stores {}: {}", s.cplug_store_id, compact(s)),
            Self::CreateStore(s) => write!(f, "+ stores {}: {}", s.cplug_store_id, compact(s)),
            Self::DeleteSituacao(s) => write!(f, "- situacoes {}: {}", s.bling_situacao_id, compact(s)),
            Self::CreateSituacao(s) => write!(f, "+ situacoes {}: {}", s.bling_situacao_id, compact(s)),
            Self::DeleteFieldMapping(s, _) => write!(f, "- field_mappings {}: {}", field_key(s), compact(s)),
            Self::CreateFieldMapping(s) => write!(f, "+ field_mappings {}: {}", field_key(s), compact(s)),
        }
    }
}

/// What the service holds for a tenant: the document, and the ids of its field mappings.
#[derive(Debug, Clone)]
pub struct Current {
    pub document: Document,
    /// (target, target field) → mapping id.
    pub field_mapping_ids: HashMap<(Target, String), String>,
}

/// Entries of `wanted` keyed like those of `current`; deletes for keys only in `current`,
/// creates for keys only in `wanted`, both for keys whose entries differ.
fn diff_section<T: Clone + PartialEq>(
    current: &[T],
    wanted: &[T],
    key: impl Fn(&T) -> String,
    delete: impl Fn(&T) -> Change,
    create: impl Fn(&T) -> Change,
    out: &mut (Vec<Change>, Vec<Change>),
) {
    let have: BTreeMap<String, &T> = current.iter().map(|e| (key(e), e)).collect();
    let want: BTreeMap<String, &T> = wanted.iter().map(|e| (key(e), e)).collect();
    for (k, e) in &have {
        if want.get(k) != Some(e) {
            out.0.push(delete(e));
        }
    }
    for (k, e) in &want {
        if have.get(k) != Some(e) {
            out.1.push(create(e));
        }
    }
}

/// The changes that make the service hold `wanted`: every delete, then every create. Checks
/// `wanted` first.
pub fn plan(current: &Current, wanted: &Document) -> Result<Vec<Change>, ServiceError> {
    validate(wanted)?;
    let mut out = (Vec::new(), Vec::new());
    let have = &current.document;
    if let Some(w) = &wanted.payment_methods {
        let trimmed: Vec<PaymentMethod> =
            w.iter().map(|p| PaymentMethod { cplug_method: p.cplug_method.trim().to_owned(), ..p.clone() }).collect();
        diff_section(
            have.payment_methods.as_deref().unwrap_or_default(),
            &trimmed,
            |p| p.cplug_method.clone(),
            |p| Change::DeletePaymentMethod(p.clone()),
            |p| Change::CreatePaymentMethod(p.clone()),
            &mut out,
        );
    }
    if let Some(w) = &wanted.stores {
        let trimmed: Vec<Store> =
            w.iter().map(|s| Store { cplug_store_id: s.cplug_store_id.trim().to_owned(), ..s.clone() }).collect();
        diff_section(
            have.stores.as_deref().unwrap_or_default(),
            &trimmed,
            |s| s.cplug_store_id.clone(),
            |s| Change::DeleteStore(s.clone()),
            |s| Change::CreateStore(s.clone()),
            &mut out,
        );
    }
    if let Some(w) = &wanted.situacoes {
        let trimmed: Vec<Situacao> = w
            .iter()
            .map(|s| Situacao { bling_situacao_name: s.bling_situacao_name.trim().to_owned(), ..s.clone() })
            .collect();
        diff_section(
            have.situacoes.as_deref().unwrap_or_default(),
            &trimmed,
            |s| s.bling_situacao_id.to_string(),
            |s| Change::DeleteSituacao(s.clone()),
            |s| Change::CreateSituacao(s.clone()),
            &mut out,
        );
    }
    if let Some(w) = &wanted.field_mappings {
        let builtins: Vec<Spec> = fields::builtins().into_iter().map(|(_, s)| s).collect();
        let own: Vec<Spec> = w
            .iter()
            .map(|s| Spec {
                bling_field: s.bling_field.trim().to_owned(),
                target_field: s.target_field.trim().to_owned(),
                ..s.clone()
            })
            .filter(|s| !builtins.contains(s))
            .collect();
        let key = |s: &Spec| format!("{}\u{0}{}", s.target.to_proto().as_str_name(), s.target_field);
        let id_of =
            |s: &Spec| current.field_mapping_ids.get(&(s.target, s.target_field.clone())).cloned().unwrap_or_default();
        diff_section(
            have.field_mappings.as_deref().unwrap_or_default(),
            &own,
            key,
            |s| Change::DeleteFieldMapping(s.clone(), id_of(s)),
            |s| Change::CreateFieldMapping(s.clone()),
            &mut out,
        );
    }
    let (mut deletes, creates) = out;
    deletes.extend(creates);
    Ok(deletes)
}
