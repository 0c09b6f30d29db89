//! The YAML form of a tenant's mapping tables, as `ponte mapping export|import` moves them: the
//! document, reading it from a running mapping service over gRPC, the changes an import makes
//! (shown as a diff, and all a dry run does), and applying them.
//!
//! A document holds payment methods, stores, situações and the tenant's own field mappings (the
//! builtin set is fixed, so it is not exported; an imported entry equal to a builtin is accepted
//! and changes nothing). The link registry is data, not configuration, and is not part of it.
//! A section present in the file is the whole table: entries missing from it are deleted. A
//! section left out is not touched. The service has no update calls, so a changed entry is
//! deleted and created again. The whole file is checked before anything is changed (the Bling
//! ids of payment methods, stores and situações by the service, against the tenant's Bling
//! account); the changes are then made one call at a time (deletes first), and the first refusal
//! stops the import.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use ponte_core::error::ServiceError;
use ponte_proto::v1::{
    CreateFieldMappingRequest, CreatePaymentMethodMapRequest, CreateSituacaoMapRequest, CreateStoreMapRequest,
    DeleteFieldMappingRequest, DeletePaymentMethodMapRequest, DeleteSituacaoMapRequest, DeleteStoreMapRequest,
    ListFieldMappingsRequest, ListPaymentMethodMapsRequest, ListSituacaoMapsRequest, ListStoreMapsRequest,
    PaymentMethodMap, ShippingStatus, SituacaoMap, StoreMap, mapping_service_client::MappingServiceClient,
};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::{
    audit::ACTOR_METADATA,
    fields::{self, Spec, Target},
    payment_methods, situacoes, stores,
};

/// The document format's version; a file of another version is refused.
pub const VERSION: u32 = 1;

/// A tenant's mapping tables. `None` sections are absent from the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<PaymentMethod>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stores: Option<Vec<Store>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub situacoes: Option<Vec<Situacao>>,
    /// Transforms are written as `- value_map: {...}`, one key naming the kind.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub field_mappings: Option<Vec<Spec>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub cplug_method: String,
    pub bling_forma_pagamento_id: i64,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub cplug_store_id: String,
    pub bling_loja_id: i64,
    pub bling_deposito_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Situacao {
    pub bling_situacao_id: i64,
    pub bling_situacao_name: String,
    pub shipping_status: Status,
    #[serde(default)]
    pub releases_to_shipping: bool,
}

/// A shipping status by its short name (`received` for `SHIPPING_STATUS_RECEIVED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Received,
    InPackingList,
    AwaitingShipment,
    InTransit,
    Delivered,
    Cancelled,
}

impl Status {
    fn to_proto(self) -> ShippingStatus {
        match self {
            Self::Received => ShippingStatus::Received,
            Self::InPackingList => ShippingStatus::InPackingList,
            Self::AwaitingShipment => ShippingStatus::AwaitingShipment,
            Self::InTransit => ShippingStatus::InTransit,
            Self::Delivered => ShippingStatus::Delivered,
            Self::Cancelled => ShippingStatus::Cancelled,
        }
    }

    fn from_proto(s: ShippingStatus) -> Option<Self> {
        Some(match s {
            ShippingStatus::Unspecified => return None,
            ShippingStatus::Received => Self::Received,
            ShippingStatus::InPackingList => Self::InPackingList,
            ShippingStatus::AwaitingShipment => Self::AwaitingShipment,
            ShippingStatus::InTransit => Self::InTransit,
            ShippingStatus::Delivered => Self::Delivered,
            ShippingStatus::Cancelled => Self::Cancelled,
        })
    }
}

impl PaymentMethod {
    fn to_proto(&self, tenant_id: &str) -> PaymentMethodMap {
        PaymentMethodMap {
            tenant_id: tenant_id.to_owned(),
            cplug_method: self.cplug_method.clone(),
            bling_forma_pagamento_id: self.bling_forma_pagamento_id,
            is_default: self.is_default,
            create_time: None,
        }
    }
}

impl Store {
    fn to_proto(&self, tenant_id: &str) -> StoreMap {
        StoreMap {
            tenant_id: tenant_id.to_owned(),
            cplug_store_id: self.cplug_store_id.clone(),
            bling_loja_id: self.bling_loja_id,
            bling_deposito_id: self.bling_deposito_id,
            create_time: None,
        }
    }
}

impl Situacao {
    fn to_proto(&self, tenant_id: &str) -> SituacaoMap {
        SituacaoMap {
            tenant_id: tenant_id.to_owned(),
            bling_situacao_id: self.bling_situacao_id,
            bling_situacao_name: self.bling_situacao_name.clone(),
            shipping_status: self.shipping_status.to_proto() as i32,
            releases_to_shipping: self.releases_to_shipping,
            create_time: None,
        }
    }
}

/// The document as YAML, under a comment saying whose it is.
pub fn to_yaml(doc: &Document, tenant_id: &str) -> anyhow::Result<String> {
    let body = serde_yaml_ng::to_string(doc).context("writing the mapping document as YAML")?;
    Ok(format!("# ponte mapping export of tenant '{tenant_id}'\n{body}"))
}

/// Reads a document, refusing unknown keys and other versions.
pub fn from_yaml(text: &str) -> anyhow::Result<Document> {
    let doc: Document = serde_yaml_ng::from_str(text).context("reading the mapping document")?;
    if doc.version != VERSION {
        anyhow::bail!("the mapping document is version {}; this ponte reads version {VERSION}", doc.version);
    }
    Ok(doc)
}

/// Moves a validation error from the service's field names (`map.x`) to the document's
/// (`stores[2].x`).
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
            payment_methods::validate(&p.to_proto("")).map_err(|e| at(e, &here))?;
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
            stores::validate(&here, &s.to_proto(""))?;
            once(&mut seen, s.cplug_store_id.trim().to_owned(), &here, "stores", i)?;
        }
    }
    if let Some(list) = &doc.situacoes {
        let (mut ids, mut statuses) = (HashMap::new(), HashMap::new());
        let mut release = None;
        for (i, s) in list.iter().enumerate() {
            let here = format!("situacoes[{i}]");
            situacoes::validate(&here, &s.to_proto(""))?;
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
                            label(b),
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

fn label(s: &Spec) -> &'static str {
    match s.target {
        Target::Bitrix24 => "Bitrix24",
        Target::Cplug => "CPLUG",
    }
}

fn same_key(a: &Spec, b: &Spec) -> bool {
    a.target == b.target && a.target_field == b.target_field
}

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
        let field_key = |s: &Spec| format!("{} {}", label(s), s.target_field);
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

fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

/// Reads a tenant's tables from the mapping service.
pub async fn read(client: &mut MappingServiceClient<Channel>, tenant_id: &str) -> anyhow::Result<Current> {
    let tenant = tenant_id.to_owned();
    let payment_methods = client
        .list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: tenant.clone() })
        .await
        .map_err(status)?
        .into_inner()
        .maps
        .into_iter()
        .map(|m| PaymentMethod {
            cplug_method: m.cplug_method,
            bling_forma_pagamento_id: m.bling_forma_pagamento_id,
            is_default: m.is_default,
        })
        .collect();
    let stores = client
        .list_store_maps(ListStoreMapsRequest { tenant_id: tenant.clone() })
        .await
        .map_err(status)?
        .into_inner()
        .maps
        .into_iter()
        .map(|m| Store {
            cplug_store_id: m.cplug_store_id,
            bling_loja_id: m.bling_loja_id,
            bling_deposito_id: m.bling_deposito_id,
        })
        .collect();
    let mut situacoes = Vec::new();
    for m in client
        .list_situacao_maps(ListSituacaoMapsRequest { tenant_id: tenant.clone() })
        .await
        .map_err(status)?
        .into_inner()
        .maps
    {
        let shipping_status = Status::from_proto(m.shipping_status())
            .with_context(|| format!("situação {} has no shipping status", m.bling_situacao_id))?;
        situacoes.push(Situacao {
            bling_situacao_id: m.bling_situacao_id,
            bling_situacao_name: m.bling_situacao_name,
            shipping_status,
            releases_to_shipping: m.releases_to_shipping,
        });
    }
    let mut field_mappings = Vec::new();
    let mut field_mapping_ids = HashMap::new();
    for m in client
        .list_field_mappings(ListFieldMappingsRequest { tenant_id: tenant, target: 0 })
        .await
        .map_err(status)?
        .into_inner()
        .mappings
        .into_iter()
        .filter(|m| !m.builtin)
    {
        let spec = Spec::from_proto("mapping", &m).map_err(|e| anyhow::anyhow!("mapping {}: {e}", m.mapping_id))?;
        field_mapping_ids.insert((spec.target, spec.target_field.clone()), m.mapping_id);
        field_mappings.push(spec);
    }
    Ok(Current {
        document: Document {
            version: VERSION,
            payment_methods: Some(payment_methods),
            stores: Some(stores),
            situacoes: Some(situacoes),
            field_mappings: Some(field_mappings),
        },
        field_mapping_ids,
    })
}

fn request<T>(message: T, actor: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(ACTOR_METADATA, actor.parse().with_context(|| format!("actor '{actor}'"))?);
    Ok(req)
}

/// Whether the service checks a change against the tenant's Bling account.
fn checked_in_bling(change: &Change) -> bool {
    matches!(change, Change::CreatePaymentMethod(_) | Change::CreateStore(_) | Change::CreateSituacao(_))
}

/// Sends one change as `actor`; with `validate_only`, a create is checked and not made.
async fn send(
    client: &mut MappingServiceClient<Channel>,
    tenant_id: &str,
    change: &Change,
    actor: &str,
    validate_only: bool,
) -> anyhow::Result<Result<(), tonic::Status>> {
    let t = || tenant_id.to_owned();
    Ok(match change {
        Change::DeletePaymentMethod(p) => client
            .delete_payment_method_map(request(
                DeletePaymentMethodMapRequest { tenant_id: t(), cplug_method: p.cplug_method.clone() },
                actor,
            )?)
            .await
            .map(drop),
        Change::DeleteStore(s) => client
            .delete_store_map(request(
                DeleteStoreMapRequest { tenant_id: t(), cplug_store_id: s.cplug_store_id.clone() },
                actor,
            )?)
            .await
            .map(drop),
        Change::DeleteSituacao(s) => client
            .delete_situacao_map(request(
                DeleteSituacaoMapRequest { tenant_id: t(), bling_situacao_id: s.bling_situacao_id },
                actor,
            )?)
            .await
            .map(drop),
        Change::DeleteFieldMapping(_, id) => client
            .delete_field_mapping(request(DeleteFieldMappingRequest { tenant_id: t(), mapping_id: id.clone() }, actor)?)
            .await
            .map(drop),
        Change::CreatePaymentMethod(p) => client
            .create_payment_method_map(request(
                CreatePaymentMethodMapRequest { map: Some(p.to_proto(tenant_id)), validate_only },
                actor,
            )?)
            .await
            .map(drop),
        Change::CreateStore(s) => client
            .create_store_map(request(
                CreateStoreMapRequest { map: Some(s.to_proto(tenant_id)), validate_only },
                actor,
            )?)
            .await
            .map(drop),
        Change::CreateSituacao(s) => client
            .create_situacao_map(request(
                CreateSituacaoMapRequest { map: Some(s.to_proto(tenant_id)), validate_only },
                actor,
            )?)
            .await
            .map(drop),
        Change::CreateFieldMapping(s) => client
            .create_field_mapping(request(
                CreateFieldMappingRequest { mapping: Some(s.to_proto(tenant_id, "", false, None)) },
                actor,
            )?)
            .await
            .map(drop),
    })
}

/// Has the service check every payment method, store and situação `changes` create, their Bling
/// ids against the tenant's Bling account included, without making any change; stops at the
/// first refusal. (The rest of the document was checked whole by [`plan`].)
pub async fn check(
    client: &mut MappingServiceClient<Channel>,
    tenant_id: &str,
    changes: &[Change],
    actor: &str,
) -> anyhow::Result<()> {
    for change in changes.iter().filter(|c| checked_in_bling(c)) {
        send(client, tenant_id, change, actor, true)
            .await?
            .map_err(status)
            .with_context(|| format!("{change} (no change was made)"))?;
    }
    Ok(())
}

/// Checks `changes` (see [`check`]), then makes them in order, as `actor`; stops at the first
/// refusal, saying how many were made.
pub async fn apply(
    client: &mut MappingServiceClient<Channel>,
    tenant_id: &str,
    changes: &[Change],
    actor: &str,
) -> anyhow::Result<()> {
    check(client, tenant_id, changes, actor).await?;
    for (done, change) in changes.iter().enumerate() {
        send(client, tenant_id, change, actor, false)
            .await?
            .map_err(status)
            .with_context(|| format!("{change} (after {done} of {} changes)", changes.len()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        fields::Direction,
        transform::{Concatenate, NumberFormat, Text, Transform, Truncate, ValueMap},
    };

    fn sample() -> Document {
        Document {
            version: VERSION,
            payment_methods: Some(vec![
                PaymentMethod { cplug_method: "CREDITO".into(), bling_forma_pagamento_id: 1234, is_default: false },
                PaymentMethod { cplug_method: "yes".into(), bling_forma_pagamento_id: 7, is_default: true },
            ]),
            stores: Some(vec![Store { cplug_store_id: "007".into(), bling_loja_id: 203, bling_deposito_id: 14 }]),
            situacoes: Some(vec![
                Situacao {
                    bling_situacao_id: 15,
                    bling_situacao_name: "Em andamento".into(),
                    shipping_status: Status::Received,
                    releases_to_shipping: true,
                },
                Situacao {
                    bling_situacao_id: 24,
                    bling_situacao_name: "Em romaneio: lote #2".into(),
                    shipping_status: Status::InPackingList,
                    releases_to_shipping: false,
                },
            ]),
            field_mappings: Some(vec![
                Spec {
                    target: Target::Bitrix24,
                    bling_field: "marca".into(),
                    target_field: "PROPERTY_104".into(),
                    direction: Direction::TwoWay,
                    transforms: vec![Transform::ValueMap(ValueMap {
                        values: [("N".into(), "no".into()), ("Y".into(), "null".into()), ("~".into(), "1.0".into())]
                            .into(),
                        pass_unmapped: false,
                    })],
                },
                Spec {
                    target: Target::Cplug,
                    bling_field: "nome".into(),
                    target_field: "variation.name".into(),
                    direction: Direction::OneWay,
                    transforms: vec![
                        Transform::Concatenate(Concatenate {
                            source_fields: vec!["codigo".into()],
                            separator: " - ".into(),
                        }),
                        Transform::Truncate(Truncate { max_chars: 60 }),
                        Transform::DefaultValue(Text { value: "sem nome\n\"ação\"".into() }),
                        Transform::NumberFormat(NumberFormat { decimals: 2, decimal_separator: ',' }),
                        Transform::Constant(Text { value: String::new() }),
                    ],
                },
            ]),
        }
    }

    #[test]
    fn yaml_round_trips_and_reads_like_the_proto() {
        let doc = sample();
        let yaml = to_yaml(&doc, "loja-1").unwrap();
        assert!(yaml.starts_with("# ponte mapping export of tenant 'loja-1'\n"), "{yaml}");
        assert!(yaml.contains("- value_map:"), "{yaml}");
        assert!(yaml.contains("shipping_status: in_packing_list"), "{yaml}");
        assert!(yaml.contains("direction: two_way"), "{yaml}");
        assert_eq!(from_yaml(&yaml).unwrap(), doc);
        validate(&doc).unwrap();
    }

    #[test]
    fn unknown_keys_other_versions_and_absent_sections() {
        assert!(from_yaml("version: 1\nstores: []\nstorez: []\n").is_err());
        assert!(from_yaml("version: 2\n").unwrap_err().to_string().contains("version 2"));
        let typo = "version: 1\nfield_mappings:\n- target: cplug\n  bling_field: a\n  target_field: b\n  \
                    direction: one_way\n  transforms:\n  - truncate: {max_char: 3}\n";
        assert!(from_yaml(typo).is_err());
        let only_stores = from_yaml("version: 1\nstores: []\n").unwrap();
        assert_eq!(only_stores.stores, Some(vec![]));
        assert_eq!(only_stores.payment_methods, None);
    }

    #[test]
    fn validation_names_the_entry_in_the_document() {
        let mut doc = sample();
        doc.stores.as_mut().unwrap()[0].bling_deposito_id = 0;
        assert!(validate(&doc).unwrap_err().to_string().starts_with("stores[0].bling_deposito_id: "));
        let mut doc = sample();
        doc.payment_methods.as_mut().unwrap()[0].bling_forma_pagamento_id = -1;
        assert!(validate(&doc).unwrap_err().to_string().starts_with("payment_methods[0].bling_forma_pagamento_id: "));
        let mut doc = sample();
        doc.payment_methods.as_mut().unwrap()[0].is_default = true;
        assert!(validate(&doc).unwrap_err().to_string().starts_with("payment_methods[1].is_default: "));
        let mut doc = sample();
        doc.situacoes.as_mut().unwrap()[1].shipping_status = Status::Received;
        assert!(validate(&doc).unwrap_err().to_string().starts_with("situacoes[1].shipping_status: repeats"));
        let mut doc = sample();
        let fm = doc.field_mappings.as_mut().unwrap();
        fm[0].transforms.push(Transform::Truncate(Truncate { max_chars: 3 }));
        assert!(validate(&doc).unwrap_err().to_string().starts_with("field_mappings[0].transforms[1].truncate: "));
        let mut doc = sample();
        let fm = doc.field_mappings.as_mut().unwrap();
        fm[0].target_field = "NAME".into();
        assert!(validate(&doc).unwrap_err().to_string().contains("builtin-nome"));
        let mut doc = sample();
        let fm = doc.field_mappings.as_mut().unwrap();
        fm.push(fm[1].clone());
        assert!(validate(&doc).unwrap_err().to_string().starts_with("field_mappings[2]: "));
        // A builtin written out as it is changes nothing.
        let mut doc = sample();
        doc.field_mappings.as_mut().unwrap().push(fields::builtins().remove(1).1);
        validate(&doc).unwrap();
    }

    #[test]
    fn the_plan_deletes_what_is_gone_and_recreates_what_changed() {
        let current = Current { document: sample(), field_mapping_ids: HashMap::new() };
        assert_eq!(plan(&current, &sample()).unwrap(), vec![]);
        let mut wanted = sample();
        wanted.stores.as_mut().unwrap()[0].bling_deposito_id = 15;
        wanted.payment_methods.as_mut().unwrap().remove(0);
        wanted.situacoes = None;
        let mut builtin_too = wanted.field_mappings.clone().unwrap();
        builtin_too.push(fields::builtins().remove(0).1);
        wanted.field_mappings = Some(builtin_too);
        let changes = plan(&current, &wanted).unwrap();
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                r#"- payment_methods CREDITO: {"cplug_method":"CREDITO","bling_forma_pagamento_id":1234,"is_default":false}"#,
                r#"- stores 007: {"cplug_store_id":"007","bling_loja_id":203,"bling_deposito_id":14}"#,
                r#"+ stores 007: {"cplug_store_id":"007","bling_loja_id":203,"bling_deposito_id":15}"#,
            ]
        );
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::sample::select(vec![
                "", "Y", "N", "yes", "no", "on", "off", "null", "~", "1.0", "0x1F", "007", "-", "- a", ": b", "#c",
                "'q'", "\"dq\"", " lead", "trail ", "a\nb", "\t", "…", "ação"
            ])
            .prop_map(str::to_owned),
        ]
    }

    proptest! {
        /// Whatever the strings hold, YAML gives back the same document.
        #[test]
        fn any_document_round_trips_through_yaml(
            methods in prop::collection::vec((text(), any::<i64>(), any::<bool>()), 0..4),
            stores in prop::collection::vec((text(), any::<i64>(), any::<i64>()), 0..3),
            names in prop::collection::vec((any::<i64>(), text(), any::<bool>()), 0..3),
            values in prop::collection::btree_map(text(), text(), 0..4),
            strings in prop::collection::vec(text(), 4),
            n in any::<u32>(),
            comma in any::<bool>(),
        ) {
            let doc = Document {
                version: VERSION,
                payment_methods: Some(methods.into_iter().map(|(m, id, d)| PaymentMethod {
                    cplug_method: m, bling_forma_pagamento_id: id, is_default: d }).collect()),
                stores: Some(stores.into_iter().map(|(s, l, d)| Store {
                    cplug_store_id: s, bling_loja_id: l, bling_deposito_id: d }).collect()),
                situacoes: Some(names.into_iter().map(|(id, name, r)| Situacao {
                    bling_situacao_id: id, bling_situacao_name: name, shipping_status: Status::Delivered,
                    releases_to_shipping: r }).collect()),
                field_mappings: Some(vec![Spec {
                    target: Target::Cplug,
                    bling_field: strings[0].clone(),
                    target_field: strings[1].clone(),
                    direction: Direction::OneWay,
                    transforms: vec![
                        Transform::ValueMap(ValueMap { values, pass_unmapped: comma }),
                        Transform::Concatenate(Concatenate {
                            source_fields: vec![strings[2].clone()],
                            separator: strings[3].clone(),
                        }),
                        Transform::NumberFormat(NumberFormat { decimals: n, decimal_separator: if comma { ',' } else { '.' } }),
                        Transform::Truncate(Truncate { max_chars: n }),
                        Transform::Constant(Text { value: strings[3].clone() }),
                    ],
                }]),
            };
            let yaml = to_yaml(&doc, "t").unwrap();
            prop_assert_eq!(from_yaml(&yaml).unwrap(), doc);
        }
    }
}
