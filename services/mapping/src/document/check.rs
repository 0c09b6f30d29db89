//! The whole document checked before anything changes: each entry as the service would check
//! it, and the entries against each other.

use std::collections::HashMap;

use ponte_core::error::ServiceError;

use super::format::Document;
use crate::{
    depara::Depara,
    fields::{self, Spec},
    payment_methods::Method,
    situacoes::Situacao,
    stores::Store,
};

/// Moves a field mapping's error from the service's field names (`mapping.x`) to the document's
/// (`field_mappings[2].x`).
fn at(e: ServiceError, prefix: &str) -> ServiceError {
    match e {
        ServiceError::InvalidArgument { field, message } => {
            let rest = field.split_once('.').map(|(_, r)| format!(".{r}")).unwrap_or_default();
            ServiceError::invalid(format!("{prefix}{rest}"), message)
        }
        ServiceError::AlreadyExists(m) => ServiceError::invalid(prefix, m),
        other => other,
    }
}

fn once(
    seen: &mut HashMap<String, usize>,
    key: String,
    here: &str,
    section: &str,
    i: usize,
) -> Result<(), ServiceError> {
    match seen.insert(key.clone(), i) {
        Some(first) => Err(ServiceError::invalid(here, format!("repeats {section}[{first}] ({key})"))),
        None => Ok(()),
    }
}

/// Checks the whole document as the service would check each entry, and the entries against each
/// other (one entry per key, one default, one releasing situação, no conflicting field mappings).
pub fn validate(doc: &Document) -> Result<(), ServiceError> {
    if let Some(list) = &doc.payment_methods {
        let mut seen = HashMap::new();
        let mut default = None;
        for (i, p) in list.iter().enumerate() {
            let here = format!("payment_methods[{i}]");
            Method::prepare(&here, p.to_proto(""))?;
            once(&mut seen, p.cplug_method.trim().to_owned(), &here, "payment_methods", i)?;
            if p.is_default && default.replace(i).is_some() {
                return Err(ServiceError::invalid(
                    format!("{here}.is_default"),
                    "only one payment method can be the default",
                ));
            }
        }
    }
    if let Some(list) = &doc.stores {
        let mut seen = HashMap::new();
        for (i, s) in list.iter().enumerate() {
            let here = format!("stores[{i}]");
            Store::prepare(&here, s.to_proto(""))?;
            once(&mut seen, s.cplug_store_id.trim().to_owned(), &here, "stores", i)?;
        }
    }
    if let Some(list) = &doc.situacoes {
        let (mut ids, mut statuses) = (HashMap::new(), HashMap::new());
        let mut release = None;
        for (i, s) in list.iter().enumerate() {
            let here = format!("situacoes[{i}]");
            Situacao::prepare(&here, s.to_proto(""))?;
            once(&mut ids, s.bling_situacao_id.to_string(), &here, "situacoes", i)?;
            once(
                &mut statuses,
                format!("{:?}", s.shipping_status),
                &format!("{here}.shipping_status"),
                "situacoes",
                i,
            )?;
            if s.releases_to_shipping && release.replace(i).is_some() {
                return Err(ServiceError::invalid(
                    format!("{here}.releases_to_shipping"),
                    "only one situação can release orders to shipping",
                ));
            }
        }
    }
    if let Some(list) = &doc.field_mappings {
        let mut accepted: Vec<(String, Spec)> =
            fields::builtins().into_iter().map(|(id, s)| (id.to_owned(), s)).collect();
        for (i, spec) in list.iter().enumerate() {
            let here = format!("field_mappings[{i}]");
            spec.validate(&here)?;
            if let Some((id, b)) = accepted.iter().find(|(id, b)| fields::is_builtin(id) && same_key(b, spec)) {
                if b != spec {
                    return Err(ServiceError::invalid(
                        here,
                        format!(
                            "{} field '{}' is mapped by the builtin {id}, which cannot be changed",
                            b.target.label(),
                            b.target_field
                        ),
                    ));
                }
                continue;
            }
            fields::check_conflicts("", spec, &accepted).map_err(|e| at(e, &here))?;
            accepted.push((here, spec.clone()));
        }
    }
    Ok(())
}

fn same_key(a: &Spec, b: &Spec) -> bool {
    a.target == b.target && a.target_field == b.target_field
}
