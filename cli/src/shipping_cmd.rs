//! `ponte shipping setup` and `ponte shipments list|show`: setting a tenant up for 360Envios
//! and looking at its shipments, through a running shipping-status over gRPC. Lists print as
//! aligned tables by default and as JSON with `--output json`.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use ponte_core::grpc::TracedChannel as Channel;
use ponte_core::time::{from_timestamp, to_datetime};
use ponte_proto::v1::{
    EventOutcome, GetShipmentRequest, ListShipmentsRequest, ProductApproval, SetUpAction, SetUpShippingRequest,
    SetUpStep, Shipment, ShippingStatus, shipping_status_service_client::ShippingStatusServiceClient,
};
use serde_json::{Value, json};
use tonic::Code;

/// Where shipping-status is.
#[derive(Args, Debug)]
pub struct ShippingAddr {
    /// shipping-status's gRPC address (default: where `ponte dev` puts it).
    #[arg(long, env = "PONTE_SHIPPING_STATUS_URL", default_value = "http://127.0.0.1:50055")]
    pub shipping_status_url: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// A shipment's status at 360Envios.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatusArg {
    Received,
    InPackingList,
    AwaitingShipment,
    InTransit,
    Delivered,
    Cancelled,
}

impl From<StatusArg> for ShippingStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Received => Self::Received,
            StatusArg::InPackingList => Self::InPackingList,
            StatusArg::AwaitingShipment => Self::AwaitingShipment,
            StatusArg::InTransit => Self::InTransit,
            StatusArg::Delivered => Self::Delivered,
            StatusArg::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ShippingCommand {
    /// Finds or creates the situações the 360Envios cycle needs in the tenant's Bling (Em
    /// romaneio, Aguardando coleta, Em rota de entrega) and maps them to 360's statuses. Safe to
    /// run again: what exists is adopted, nothing is created twice.
    Setup {
        #[arg(long)]
        tenant: String,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The situação that releases an order to 360Envios.
        #[arg(long, default_value = "Em andamento")]
        release_situacao: String,
        /// Also find or create the cycle's transitions between those situações.
        #[arg(long)]
        transitions: bool,
        #[command(flatten)]
        addr: ShippingAddr,
    },
}

#[derive(Subcommand, Debug)]
pub enum ShipmentsCommand {
    /// A tenant's shipments, newest first: Bling order, number, status, 360 order, tracking,
    /// last change, and what a person should look at.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        status: Option<StatusArg>,
        /// Only those waiting for the merchant, needing attention, or with an error.
        #[arg(long)]
        stuck: bool,
        /// Only those whose last error contains this text.
        #[arg(long, default_value = "")]
        error_contains: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        addr: ShippingAddr,
    },
    /// One shipment: its state, products (with 360's approval) and history.
    Show {
        /// The Bling order id.
        order: i64,
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        addr: ShippingAddr,
    },
}

async fn client(addr: &ShippingAddr) -> anyhow::Result<ShippingStatusServiceClient<Channel>> {
    let url = &addr.shipping_status_url;
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .with_context(|| format!("--shipping-status-url '{url}' is not a URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach shipping-status at {url}"))?;
    let channel = crate::with_token(channel)?;
    Ok(ShippingStatusServiceClient::new(channel))
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

fn when(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map(|t| to_datetime(from_timestamp(t)).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
}

/// A shipment's status as people say it: the hub's, or "waiting" before the hub has the order.
fn status_words(s: &Shipment) -> String {
    match s.status() {
        ShippingStatus::Unspecified => "waiting".into(),
        other => other.as_str_name().trim_start_matches("SHIPPING_STATUS_").to_lowercase().replace('_', " "),
    }
}

/// What a person should look at first.
fn note(s: &Shipment) -> &str {
    [&s.waiting_reason, &s.attention, &s.last_error].into_iter().find(|n| !n.is_empty()).map_or("", |n| n.as_str())
}

fn approval_words(a: ProductApproval) -> &'static str {
    match a {
        ProductApproval::Pending => "pending",
        ProductApproval::Approved => "approved",
        ProductApproval::Rejected => "rejected",
        ProductApproval::Unspecified => "-",
    }
}

/// A history line's outcome; a failure (retried by the gateway) has none of its own.
fn outcome_words(o: EventOutcome) -> &'static str {
    match o {
        EventOutcome::Unspecified => "failed",
        other => other.label(),
    }
}

fn action_words(a: SetUpAction) -> &'static str {
    match a {
        SetUpAction::Created => "created",
        SetUpAction::Found => "found",
        SetUpAction::WouldCreate => "would create",
        SetUpAction::Kept => "kept",
        SetUpAction::Unspecified => "-",
    }
}

/// Rows under their headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n") + "\n"
}

pub fn shipments_table(shipments: &[Shipment]) -> String {
    let rows: Vec<Vec<String>> = shipments
        .iter()
        .map(|s| {
            vec![
                s.bling_order_id.to_string(),
                s.bling_numero.clone(),
                status_words(s),
                s.envios360_order_id.clone(),
                s.tracking_code.clone(),
                when(s.update_time.as_ref()),
                note(s).to_owned(),
            ]
        })
        .collect();
    table(&["ORDER", "NUMBER", "STATUS", "360 ORDER", "TRACKING", "UPDATED", "NOTE"], &rows)
}

pub fn shipment_json(s: &Shipment) -> Value {
    json!({
        "bling_order_id": s.bling_order_id,
        "bling_numero": s.bling_numero,
        "status": status_words(s),
        "envios360_order_id": s.envios360_order_id,
        "bling_situacao_id": s.bling_situacao_id,
        "tracking_code": s.tracking_code,
        "tracking_url": s.tracking_url,
        "waiting_reason": s.waiting_reason,
        "attention": s.attention,
        "last_error": s.last_error,
        "create_time": when(s.create_time.as_ref()),
        "update_time": when(s.update_time.as_ref()),
        "products": s.products.iter().map(|p| json!({
            "bling_product_id": p.bling_product_id, "envios360_product_id": p.envios360_product_id,
            "sku": p.sku, "name": p.name, "quantity": p.quantity,
            "approval": approval_words(p.approval()), "rejection_reason": p.rejection_reason,
        })).collect::<Vec<_>>(),
        "history": s.history.iter().map(|h| json!({
            "time": when(h.time.as_ref()), "trigger": h.trigger, "event_id": h.event_id, "action": h.action,
            "outcome": outcome_words(h.outcome()), "detail": h.detail, "trace_id": h.trace_id,
        })).collect::<Vec<_>>(),
    })
}

pub fn shipment_text(s: &Shipment) -> String {
    let mut out = String::new();
    for (k, v) in [
        ("order", s.bling_order_id.to_string()),
        ("number", s.bling_numero.clone()),
        ("status", status_words(s)),
        ("360 order", s.envios360_order_id.clone()),
        ("situação", s.bling_situacao_id.to_string()),
        ("tracking", format!("{} {}", s.tracking_code, s.tracking_url).trim().to_owned()),
        ("waiting", s.waiting_reason.clone()),
        ("attention", s.attention.clone()),
        ("last error", s.last_error.clone()),
        ("created", when(s.create_time.as_ref())),
        ("updated", when(s.update_time.as_ref())),
    ] {
        if !v.is_empty() {
            out.push_str(&format!("{k:<11} {v}\n"));
        }
    }
    let products: Vec<Vec<String>> = s
        .products
        .iter()
        .map(|p| {
            vec![
                p.bling_product_id.to_string(),
                p.sku.clone(),
                p.quantity.clone(),
                p.envios360_product_id.clone(),
                approval_words(p.approval()).to_owned(),
                p.rejection_reason.clone(),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["PRODUCT", "SKU", "QTY", "360 PRODUCT", "APPROVAL", "REASON"], &products));
    let history: Vec<Vec<String>> = s
        .history
        .iter()
        .map(|h| {
            vec![when(h.time.as_ref()), h.trigger.clone(), outcome_words(h.outcome()).to_owned(), h.action.clone()]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["TIME", "TRIGGER", "OUTCOME", "WHAT PONTE DID"], &history));
    out
}

pub fn steps_table(steps: &[SetUpStep]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let id = if s.bling_situacao_id == 0 { "-".to_owned() } else { s.bling_situacao_id.to_string() };
            vec![action_words(s.action()).to_owned(), s.subject.clone(), id, s.detail.clone()]
        })
        .collect();
    table(&["ACTION", "WHAT", "SITUAÇÃO", "DETAIL"], &rows)
}

/// Runs setup, waiting as asked while Bling is busy (setup is safe to repeat).
async fn set_up(addr: &ShippingAddr, req: SetUpShippingRequest) -> anyhow::Result<Vec<SetUpStep>> {
    let mut c = client(addr).await?;
    for _ in 0..10 {
        match c.set_up_shipping(req.clone()).await {
            Ok(r) => return Ok(r.into_inner().steps),
            Err(s) if s.code() == Code::Unavailable => {
                let wait = ponte_core::error::retry_after(&s).unwrap_or(Duration::from_secs(1));
                eprintln!("{}; trying again in {} ms", s.message(), wait.as_millis());
                tokio::time::sleep(wait).await;
            }
            Err(s) => return Err(status(s)),
        }
    }
    anyhow::bail!("Bling stayed busy; run the setup again later (nothing is created twice)")
}

pub async fn shipping(cmd: ShippingCommand) -> anyhow::Result<()> {
    let ShippingCommand::Setup { tenant, dry_run, release_situacao, transitions, addr } = cmd;
    let req = SetUpShippingRequest { tenant_id: tenant, dry_run, release_situacao_name: release_situacao, transitions };
    let steps = set_up(&addr, req).await?;
    print!("{}", steps_table(&steps));
    let count = |a: SetUpAction| steps.iter().filter(|s| s.action() == a).count();
    if dry_run {
        eprintln!(
            "dry run: {} to create, {} already there, {} kept as the tenant has them",
            count(SetUpAction::WouldCreate),
            count(SetUpAction::Found),
            count(SetUpAction::Kept)
        );
    } else {
        eprintln!(
            "{} created, {} already there, {} kept as the tenant has them",
            count(SetUpAction::Created),
            count(SetUpAction::Found),
            count(SetUpAction::Kept)
        );
    }
    Ok(())
}

pub async fn shipments(cmd: ShipmentsCommand) -> anyhow::Result<()> {
    match cmd {
        ShipmentsCommand::List { tenant, status: wanted, stuck, error_contains, limit, output, addr } => {
            let mut c = client(&addr).await?;
            let (mut all, mut token) = (Vec::new(), String::new());
            loop {
                let page = c
                    .list_shipments(ListShipmentsRequest {
                        tenant_id: tenant.clone(),
                        status: wanted.map_or(0, |s| ShippingStatus::from(s) as i32),
                        page_size: (limit - all.len()).clamp(1, 1000) as u32,
                        page_token: token,
                        stuck,
                        last_error_contains: error_contains.clone(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                all.extend(page.shipments);
                if page.next_page_token.is_empty() || all.len() >= limit {
                    break;
                }
                token = page.next_page_token;
            }
            match output {
                Output::Json => println!("{}", Value::Array(all.iter().map(shipment_json).collect())),
                Output::Table if all.is_empty() => eprintln!("no shipments"),
                Output::Table => print!("{}", shipments_table(&all)),
            }
        }
        ShipmentsCommand::Show { order, tenant, output, addr } => {
            let s = client(&addr)
                .await?
                .get_shipment(GetShipmentRequest { tenant_id: tenant, bling_order_id: order })
                .await
                .map_err(status)?
                .into_inner()
                .shipment
                .unwrap_or_default();
            match output {
                Output::Json => println!("{}", shipment_json(&s)),
                Output::Table => print!("{}", shipment_text(&s)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
