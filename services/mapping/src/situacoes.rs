//! Situação DE-PARA: which Bling order situação (default or custom) is which 360Envios shipping
//! status, and the one situação that releases an order to shipping. Each situação and each
//! shipping status is mapped at most once per tenant, so the table reads both ways.

use ponte_core::{BlingId, TenantId, db::Database, error::ServiceError, time::to_timestamp};
use ponte_proto::v1::{ShippingStatus, SituacaoMap, translate_situacao_request::From as SituacaoFrom};
use serde::{Serialize, Serializer};
use sqlx::AnyConnection;

use crate::{
    audit,
    bling::List,
    depara::{self, AnyQuery, Column, Depara, Key, Stored},
};

/// A checked row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Situacao {
    pub bling_situacao_id: BlingId,
    pub bling_situacao_name: String,
    /// Stored (and audited) by its proto name, `SHIPPING_STATUS_RECEIVED`.
    #[serde(serialize_with = "status_name")]
    pub shipping_status: ShippingStatus,
    pub releases_to_shipping: bool,
}

fn status_name<S: Serializer>(status: &ShippingStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str_name())
}

#[derive(sqlx::FromRow)]
pub struct Row {
    bling_situacao_id: i64,
    bling_situacao_name: String,
    shipping_status: String,
    releases_to_shipping: i64,
    create_time: i64,
}

fn status_of(field: &str, value: i32) -> Result<ShippingStatus, ServiceError> {
    match ShippingStatus::try_from(value) {
        Ok(ShippingStatus::Unspecified) | Err(_) => {
            Err(ServiceError::invalid(field, "must be a shipping status (SHIPPING_STATUS_RECEIVED … _CANCELLED)"))
        }
        Ok(s) => Ok(s),
    }
}

const STATUS: &str = "shipping_status";
const RELEASES: &str = "releases_to_shipping";

impl Depara for Situacao {
    type Proto = SituacaoMap;
    type Row = Row;

    const TABLE: &'static str = "situacao_maps";
    const AUDIT: audit::Table = audit::Table::Situacao;
    const COLUMNS: &'static [Column] = &[
        Column::plain("bling_situacao_id"),
        Column::plain("bling_situacao_name"),
        Column::plain(STATUS),
        Column::boolean(RELEASES),
    ];

    fn tenant_of(proto: &SituacaoMap) -> &str {
        &proto.tenant_id
    }

    fn prepare(at: &str, m: SituacaoMap) -> Result<Self, ServiceError> {
        Ok(Self {
            bling_situacao_id: depara::bling_id(format!("{at}.bling_situacao_id"), m.bling_situacao_id)?,
            bling_situacao_name: depara::text(format!("{at}.bling_situacao_name"), &m.bling_situacao_name, 100)?,
            shipping_status: status_of(&format!("{at}.shipping_status"), m.shipping_status)?,
            releases_to_shipping: m.releases_to_shipping,
        })
    }

    fn from_row(r: Row) -> Result<(Self, i64), ServiceError> {
        let status = ShippingStatus::from_str_name(&r.shipping_status).ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("unknown shipping status '{}' stored", r.shipping_status))
        })?;
        let situacao = Self {
            bling_situacao_id: depara::stored_id(r.bling_situacao_id)?,
            bling_situacao_name: r.bling_situacao_name,
            shipping_status: status,
            releases_to_shipping: r.releases_to_shipping != 0,
        };
        Ok((situacao, r.create_time))
    }

    fn to_proto(&self, tenant: &TenantId, create_time: Option<i64>) -> SituacaoMap {
        SituacaoMap {
            tenant_id: tenant.to_string(),
            bling_situacao_id: self.bling_situacao_id.get(),
            bling_situacao_name: self.bling_situacao_name.clone(),
            shipping_status: self.shipping_status as i32,
            releases_to_shipping: self.releases_to_shipping,
            create_time: create_time.map(to_timestamp),
        }
    }

    fn key(&self) -> Key<'_> {
        Key::Bling(self.bling_situacao_id)
    }

    fn bind<'q>(&self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.bling_situacao_id.get())
            .bind(self.bling_situacao_name.clone())
            .bind(self.shipping_status.as_str_name())
            .bind(self.releases_to_shipping)
    }

    fn noun(key: Key<'_>) -> String {
        format!("situação {key}")
    }

    fn bling_ids(&self) -> Vec<(List, &'static str, BlingId)> {
        vec![(List::Situacoes, "map.bling_situacao_id", self.bling_situacao_id)]
    }

    /// A concurrent create took the situação, the status or the release first.
    fn duplicate(&self, tenant: &TenantId, _key_taken: bool) -> String {
        format!(
            "situação {} or {} of tenant '{tenant}' was mapped meanwhile",
            self.bling_situacao_id,
            self.shipping_status.as_str_name()
        )
    }

    /// The situação, its shipping status, or the release to shipping is already taken.
    async fn taken(&self, conn: &mut AnyConnection, t: &TenantId) -> Result<Option<String>, ServiceError> {
        if let Some(o) = depara::get::<Self, _>(&mut *conn, t, self.key()).await? {
            return Ok(Some(format!(
                "situação {} of tenant '{t}' is already mapped (as '{}')",
                o.map.bling_situacao_id, o.map.bling_situacao_name
            )));
        }
        let status = self.shipping_status.as_str_name();
        if let Some(o) = depara::find::<Self, _, _>(&mut *conn, t, STATUS, status).await? {
            return Ok(Some(format!(
                "{status} of tenant '{t}' is already mapped to situação {} '{}'",
                o.map.bling_situacao_id, o.map.bling_situacao_name
            )));
        }
        if self.releases_to_shipping
            && let Some(o) = depara::find::<Self, _, _>(&mut *conn, t, RELEASES, true).await?
        {
            return Ok(Some(format!(
                "tenant '{t}' already releases orders to shipping at situação {} '{}'",
                o.map.bling_situacao_id, o.map.bling_situacao_name
            )));
        }
        Ok(None)
    }
}

/// The row for a Bling situação, or for a shipping status; NOT_FOUND says which is unmapped.
pub async fn translate(
    db: &Database,
    tenant: &TenantId,
    from: Option<SituacaoFrom>,
) -> Result<Stored<Situacao>, ServiceError> {
    match from {
        None => Err(ServiceError::invalid("from", "set bling_situacao_id or shipping_status")),
        Some(SituacaoFrom::BlingSituacaoId(id)) => {
            let id = depara::bling_id("bling_situacao_id", id)?;
            depara::get(db.pool(), tenant, Key::Bling(id)).await?.ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "Bling situação {id} of tenant '{tenant}' has no shipping status mapped"
                ))
            })
        }
        Some(SituacaoFrom::ShippingStatus(s)) => {
            let status = status_of(STATUS, s)?.as_str_name();
            depara::find(db.pool(), tenant, STATUS, status).await?.ok_or_else(|| {
                ServiceError::NotFound(format!("{status} of tenant '{tenant}' has no Bling situação mapped"))
            })
        }
    }
}
