//! Shipments as stored: one row per Bling order released for shipping (its 360 order, status,
//! tracking, why it waits, what a person must look at, what 360 was last sent), the products of
//! its order, and the products ponte sent to 360 with the hub's verdict on each. The events of
//! one order reach this service one at a time (the gateway keeps an entity's events in order),
//! so a flow reads a shipment, changes it and saves it whole.

use ponte_connectors::envios360::types::ApprovalStatus;
use ponte_core::{
    BlingId, TenantId,
    db::{Database, page},
    error::ServiceError,
    sql::Statement,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{ProductApproval, Shipment as ShipmentProto, ShipmentProduct, ShippingCounts, ShippingStatus};
use rust_decimal::Decimal;

/// A situação ponte wrote in Bling whose echo (`order.updated`) has not come back yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Echo {
    pub situacao: i64,
    /// Unix ms: when ponte wrote it.
    pub at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Shipment {
    pub tenant: TenantId,
    pub order: BlingId,
    pub numero: String,
    /// 360's order id, once the hub has the order.
    pub hub_id: Option<String>,
    /// The hub's status; unspecified while the order has not reached it.
    pub status: ShippingStatus,
    /// The Bling situação ponte last wrote (or saw release the order).
    pub situacao: Option<i64>,
    pub tracking_code: String,
    pub tracking_url: String,
    pub last_error: String,
    pub last_error_time: i64,
    pub waiting_reason: String,
    pub attention: String,
    /// A digest of the last order body 360 accepted.
    pub sent_digest: String,
    /// The Bling order's total when ponte last read it.
    pub bling_total: String,
    pub echo: Option<Echo>,
    /// Unix ms: when the first create at 360 began (0: never). Set before the call, so a retry
    /// after an ambiguous failure looks the order up before creating it again.
    pub create_started: i64,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    bling_order_id: i64,
    bling_numero: String,
    envios360_order_id: Option<String>,
    status: String,
    bling_situacao_id: Option<i64>,
    tracking_code: String,
    tracking_url: String,
    last_error: String,
    last_error_time: i64,
    waiting_reason: String,
    attention: String,
    sent_digest: String,
    bling_total: String,
    echo_situacao_id: i64,
    echo_time: i64,
    create_started: i64,
    create_time: i64,
    update_time: i64,
}

const COLUMNS: &str = "tenant_id, bling_order_id, bling_numero, envios360_order_id, status, bling_situacao_id, \
     tracking_code, tracking_url, last_error, last_error_time, waiting_reason, attention, sent_digest, bling_total, \
     echo_situacao_id, echo_time, create_started, create_time, update_time";

impl TryFrom<Row> for Shipment {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self, ServiceError> {
        let internal = |what: String| ServiceError::Internal(anyhow::anyhow!(what));
        Ok(Self {
            order: BlingId::new(r.bling_order_id)
                .ok_or_else(|| internal(format!("stored order id {} is not a Bling id", r.bling_order_id)))?,
            tenant: TenantId::from_stored(r.tenant_id),
            numero: r.bling_numero,
            hub_id: r.envios360_order_id.filter(|id| !id.is_empty()),
            status: ShippingStatus::from_str_name(&r.status)
                .ok_or_else(|| internal(format!("unknown shipping status '{}' stored", r.status)))?,
            situacao: r.bling_situacao_id,
            tracking_code: r.tracking_code,
            tracking_url: r.tracking_url,
            last_error: r.last_error,
            last_error_time: r.last_error_time,
            waiting_reason: r.waiting_reason,
            attention: r.attention,
            sent_digest: r.sent_digest,
            bling_total: r.bling_total,
            echo: (r.echo_situacao_id != 0).then_some(Echo { situacao: r.echo_situacao_id, at: r.echo_time }),
            create_started: r.create_started,
            create_time: r.create_time,
            update_time: r.update_time,
        })
    }
}

impl Shipment {
    /// A shipment for an order just released, not yet anywhere.
    pub fn new(tenant: &TenantId, order: BlingId) -> Self {
        let now = now_millis();
        Self {
            tenant: tenant.clone(),
            order,
            numero: String::new(),
            hub_id: None,
            status: ShippingStatus::Unspecified,
            situacao: None,
            tracking_code: String::new(),
            tracking_url: String::new(),
            last_error: String::new(),
            last_error_time: 0,
            waiting_reason: String::new(),
            attention: String::new(),
            sent_digest: String::new(),
            bling_total: String::new(),
            echo: None,
            create_started: 0,
            create_time: now,
            update_time: now,
        }
    }

    /// The Bling total last read, as a number.
    pub fn total(&self) -> Option<Decimal> {
        self.bling_total.parse().ok()
    }

    /// A failure to reach either side, kept until the next success.
    pub fn failed(&mut self, why: &str) {
        self.last_error = why.to_owned();
        self.last_error_time = now_millis();
    }

    pub fn to_proto(&self, products: Vec<ShipmentProduct>) -> ShipmentProto {
        ShipmentProto {
            tenant_id: self.tenant.to_string(),
            bling_order_id: self.order.get(),
            bling_numero: self.numero.clone(),
            envios360_order_id: self.hub_id.clone().unwrap_or_default(),
            status: self.status as i32,
            bling_situacao_id: self.situacao.unwrap_or_default(),
            tracking_code: self.tracking_code.clone(),
            tracking_url: self.tracking_url.clone(),
            last_error: self.last_error.clone(),
            create_time: Some(to_timestamp(self.create_time)),
            update_time: Some(to_timestamp(self.update_time)),
            waiting_reason: self.waiting_reason.clone(),
            attention: self.attention.clone(),
            products,
            history: Vec::new(),
        }
    }
}

pub(crate) async fn get(db: &Database, tenant: &TenantId, order: BlingId) -> Result<Option<Shipment>, ServiceError> {
    let sql = format!("SELECT {COLUMNS} FROM shipments WHERE tenant_id = $1 AND bling_order_id = $2");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(order.get())
        .fetch_optional(db.pool())
        .await?;
    row.map(Shipment::try_from).transpose()
}

/// Stores the shipment whole, as of now.
pub(crate) async fn save(db: &Database, s: &mut Shipment) -> Result<(), ServiceError> {
    s.update_time = now_millis();
    let sql = format!(
        "INSERT INTO shipments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19) ON CONFLICT (tenant_id, bling_order_id) DO UPDATE SET bling_numero = excluded.bling_numero, \
         envios360_order_id = excluded.envios360_order_id, status = excluded.status, \
         bling_situacao_id = excluded.bling_situacao_id, tracking_code = excluded.tracking_code, \
         tracking_url = excluded.tracking_url, last_error = excluded.last_error, \
         last_error_time = excluded.last_error_time, waiting_reason = excluded.waiting_reason, \
         attention = excluded.attention, sent_digest = excluded.sent_digest, bling_total = excluded.bling_total, \
         echo_situacao_id = excluded.echo_situacao_id, echo_time = excluded.echo_time, \
         create_started = excluded.create_started, update_time = excluded.update_time"
    );
    let echo = s.echo.unwrap_or(Echo { situacao: 0, at: 0 });
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(s.tenant.as_str())
        .bind(s.order.get())
        .bind(s.numero.clone())
        .bind(s.hub_id.clone())
        .bind(s.status.as_str_name())
        .bind(s.situacao)
        .bind(s.tracking_code.clone())
        .bind(s.tracking_url.clone())
        .bind(s.last_error.clone())
        .bind(s.last_error_time)
        .bind(s.waiting_reason.clone())
        .bind(s.attention.clone())
        .bind(s.sent_digest.clone())
        .bind(s.bling_total.clone())
        .bind(echo.situacao)
        .bind(echo.at)
        .bind(s.create_started)
        .bind(s.create_time)
        .bind(s.update_time)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// One product line of a shipment's order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub product: BlingId,
    pub sku: String,
    pub name: String,
    pub quantity: Decimal,
}

/// Makes `lines` the products of the shipment of `order` (an item repeated sums its quantities).
pub(crate) async fn set_products(
    db: &Database,
    tenant: &TenantId,
    order: BlingId,
    lines: &[Line],
) -> Result<(), ServiceError> {
    let mut merged: Vec<Line> = Vec::new();
    for l in lines {
        match merged.iter_mut().find(|m| m.product == l.product) {
            Some(m) => m.quantity += l.quantity,
            None => merged.push(l.clone()),
        }
    }
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM shipment_products WHERE tenant_id = $1 AND bling_order_id = $2")
        .bind(tenant.as_str())
        .bind(order.get())
        .execute(&mut *tx)
        .await?;
    if !merged.is_empty() {
        let mut s = Statement::new(
            "INSERT INTO shipment_products (tenant_id, bling_order_id, bling_product_id, position, sku, name, quantity) ",
        );
        s.values(merged.iter().enumerate(), |t, (i, l)| {
            t.bind(tenant.to_string())
                .bind(order.get())
                .bind(l.product.get())
                .bind(i as i64)
                .bind(l.sku.clone())
                .bind(l.name.clone())
                .bind(l.quantity.normalize().to_string());
        });
        s.query().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    bling_product_id: i64,
    sku: String,
    name: String,
    quantity: String,
    envios360_product_id: Option<String>,
    approval: Option<String>,
    rejection_reason: Option<String>,
}

fn approval_label(a: ApprovalStatus) -> &'static str {
    match a {
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Rejected => "rejected",
    }
}

fn approval_of(label: Option<&str>) -> ProductApproval {
    match label {
        Some("pending") => ProductApproval::Pending,
        Some("approved") => ProductApproval::Approved,
        Some("rejected") => ProductApproval::Rejected,
        _ => ProductApproval::Unspecified,
    }
}

/// The products of the shipment of `order`, with 360's verdict on each.
pub(crate) async fn products(
    db: &Database,
    tenant: &TenantId,
    order: BlingId,
) -> Result<Vec<ShipmentProduct>, ServiceError> {
    let rows: Vec<ProductRow> = sqlx::query_as(
        "SELECT p.bling_product_id, p.sku, p.name, p.quantity, h.envios360_product_id, h.approval, h.rejection_reason \
         FROM shipment_products p LEFT JOIN hub_products h \
         ON h.tenant_id = p.tenant_id AND h.bling_product_id = p.bling_product_id \
         WHERE p.tenant_id = $1 AND p.bling_order_id = $2 ORDER BY p.position",
    )
    .bind(tenant.as_str())
    .bind(order.get())
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ShipmentProduct {
            bling_product_id: r.bling_product_id,
            envios360_product_id: r.envios360_product_id.unwrap_or_default(),
            sku: r.sku,
            name: r.name,
            quantity: r.quantity,
            approval: approval_of(r.approval.as_deref()) as i32,
            rejection_reason: r.rejection_reason.unwrap_or_default(),
        })
        .collect())
}

/// Remembers that Bling product `bling` is 360 product `hub_id`, waiting for approval unless the
/// hub said otherwise already.
pub(crate) async fn sent_product(
    db: &Database,
    tenant: &TenantId,
    bling: BlingId,
    hub_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO hub_products (tenant_id, bling_product_id, envios360_product_id, approval, update_time) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, bling_product_id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(bling.get())
    .bind(hub_id)
    .bind(approval_label(ApprovalStatus::Pending))
    .bind(now_millis())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// What recording a verdict came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Recorded,
    /// A newer verdict is recorded already.
    Older,
    /// ponte never sent the product.
    Unknown,
}

/// Records 360's verdict on Bling product `bling`, made at `at` (never over a newer one).
pub(crate) async fn set_approval(
    db: &Database,
    tenant: &TenantId,
    bling: BlingId,
    approval: ApprovalStatus,
    reason: &str,
    at: i64,
) -> Result<Verdict, ServiceError> {
    let updated = sqlx::query(
        "UPDATE hub_products SET approval = $1, rejection_reason = $2, approval_time = $3, update_time = $4 \
         WHERE tenant_id = $5 AND bling_product_id = $6 AND approval_time <= $3",
    )
    .bind(approval_label(approval))
    .bind(reason)
    .bind(at)
    .bind(now_millis())
    .bind(tenant.as_str())
    .bind(bling.get())
    .execute(db.pool())
    .await?
    .rows_affected();
    if updated > 0 {
        return Ok(Verdict::Recorded);
    }
    let known: Option<i64> =
        sqlx::query_scalar("SELECT approval_time FROM hub_products WHERE tenant_id = $1 AND bling_product_id = $2")
            .bind(tenant.as_str())
            .bind(bling.get())
            .fetch_optional(db.pool())
            .await?;
    Ok(if known.is_some() { Verdict::Older } else { Verdict::Unknown })
}

/// The orders whose shipments hold Bling product `bling`.
pub(crate) async fn orders_with(
    db: &Database,
    tenant: &TenantId,
    bling: BlingId,
) -> Result<Vec<BlingId>, ServiceError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT bling_order_id FROM shipment_products WHERE tenant_id = $1 AND bling_product_id = $2 \
         ORDER BY bling_order_id",
    )
    .bind(tenant.as_str())
    .bind(bling.get())
    .fetch_all(db.pool())
    .await?;
    Ok(ids.into_iter().filter_map(BlingId::new).collect())
}

/// Which shipments a list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub status: Option<ShippingStatus>,
    pub stuck: bool,
    pub last_error_contains: String,
}

/// A page of the tenant's shipments, newest first, and the token of the next page.
pub(crate) async fn list(
    db: &Database,
    tenant: &TenantId,
    filter: &Filter,
    page_size: u32,
    page_token: &str,
) -> Result<(Vec<Shipment>, String), ServiceError> {
    let after = page::decode(page_token)?;
    let size = page::size(page_size);
    let mut s = Statement::new(format!("SELECT {COLUMNS} FROM shipments WHERE tenant_id = "));
    s.bind(tenant.to_string());
    if let Some(status) = filter.status {
        s.push(" AND status = ").bind(status.as_str_name());
    }
    if filter.stuck {
        s.push(" AND (waiting_reason <> '' OR attention <> '' OR last_error <> '')");
    }
    if !filter.last_error_contains.is_empty() {
        let escaped = filter.last_error_contains.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        s.push(" AND last_error LIKE ").bind(format!("%{escaped}%")).push(" ESCAPE '\\'");
    }
    if !after.is_empty() {
        let (time, order) = after
            .split_once(':')
            .and_then(|(t, o)| Some((t.parse::<i64>().ok()?, o.parse::<i64>().ok()?)))
            .ok_or_else(|| ServiceError::invalid("page_token", "is not a token this service issued"))?;
        s.push(" AND (create_time < ").bind(time);
        s.push(" OR (create_time = ").bind(time).push(" AND bling_order_id < ").bind(order).push("))");
    }
    s.push(" ORDER BY create_time DESC, bling_order_id DESC LIMIT ").bind(size + 1);
    let rows: Vec<Row> = s.query_as().fetch_all(db.pool()).await?;
    let mut shipments = rows.into_iter().map(Shipment::try_from).collect::<Result<Vec<_>, _>>()?;
    let next = if shipments.len() as i64 > size {
        shipments.truncate(size as usize);
        shipments.last().map(|s| page::encode(&format!("{}:{}", s.create_time, s.order))).unwrap_or_default()
    } else {
        String::new()
    };
    Ok((shipments, next))
}

#[derive(sqlx::FromRow)]
struct CountRow {
    status: String,
    waiting: i64,
    failed: i64,
    n: i64,
}

/// Where the tenant's shipments stand.
pub(crate) async fn counts(db: &Database, tenant: &TenantId) -> Result<ShippingCounts, ServiceError> {
    let rows: Vec<CountRow> = sqlx::query_as(
        "SELECT status, \
         CAST(SUM(CASE WHEN envios360_order_id IS NULL AND status <> 'SHIPPING_STATUS_CANCELLED' THEN 1 ELSE 0 END) \
           AS BIGINT) AS waiting, \
         CAST(SUM(CASE WHEN last_error <> '' OR attention <> '' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
         CAST(COUNT(*) AS BIGINT) AS n FROM shipments WHERE tenant_id = $1 GROUP BY status",
    )
    .bind(tenant.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut c = ShippingCounts::default();
    for r in rows {
        let n = u64::try_from(r.n).unwrap_or_default();
        c.waiting += u64::try_from(r.waiting).unwrap_or_default();
        c.failed += u64::try_from(r.failed).unwrap_or_default();
        match ShippingStatus::from_str_name(&r.status) {
            Some(ShippingStatus::Received) => c.received += n,
            Some(ShippingStatus::InPackingList) => c.in_packing_list += n,
            Some(ShippingStatus::AwaitingShipment) => c.awaiting_shipment += n,
            Some(ShippingStatus::InTransit) => c.in_transit += n,
            Some(ShippingStatus::Delivered) => c.delivered += n,
            Some(ShippingStatus::Cancelled) => c.cancelled += n,
            _ => {}
        }
    }
    Ok(c)
}
