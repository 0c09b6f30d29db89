//! `ponte sales list|show|parked|replay|cancel|move`: a tenant's point-of-sale sales through a
//! running sales-ingest, as tables (or JSON with `--output json`): where each sale stands, why
//! a parked one waits, its history, and the actions a person takes on them.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use ponte_core::grpc::TracedChannel as Channel;
use ponte_core::time::{from_timestamp, to_datetime};
use ponte_proto::v1::{
    CancelSaleRequest, GetSaleRequest, ListParkedSalesRequest, ListSalesRequest, MoveSaleRequest, ParkReason,
    ReplayParkedRequest, SaleRecord, SaleState, sales_ingest_service_client::SalesIngestServiceClient,
};
use serde_json::{Value, json};

/// Where sales-ingest is.
#[derive(Args, Debug)]
pub struct SalesAddr {
    /// sales-ingest's gRPC address (default: where `ponte dev` puts it).
    #[arg(long, env = "PONTE_SALES_INGEST_URL", default_value = "http://127.0.0.1:50054")]
    pub sales_ingest_url: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StateArg {
    Received,
    Posted,
    Parked,
    Failed,
    Cancelled,
}

impl From<StateArg> for SaleState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Received => SaleState::Received,
            StateArg::Posted => SaleState::Posted,
            StateArg::Parked => SaleState::Parked,
            StateArg::Failed => SaleState::Failed,
            StateArg::Cancelled => SaleState::Cancelled,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ReasonArg {
    UnmappedPaymentMethod,
    UnknownSku,
    UnmappedStore,
    NotConnected,
    RejectedByBling,
}

impl From<ReasonArg> for ParkReason {
    fn from(r: ReasonArg) -> Self {
        match r {
            ReasonArg::UnmappedPaymentMethod => ParkReason::UnmappedPaymentMethod,
            ReasonArg::UnknownSku => ParkReason::UnknownSku,
            ReasonArg::UnmappedStore => ParkReason::UnmappedStore,
            ReasonArg::NotConnected => ParkReason::NotConnected,
            ReasonArg::RejectedByBling => ParkReason::RejectedByBling,
        }
    }
}

/// The options every sales command takes.
#[derive(Args, Debug)]
pub struct Common {
    #[arg(long)]
    tenant: String,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    addr: SalesAddr,
}

#[derive(Subcommand, Debug)]
pub enum SalesCommand {
    /// Lists sales, newest first: id, store, state, total, Bling order, received, reason.
    List {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Shows one sale with its items, payments and history.
    Show {
        sale_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Lists parked sales, oldest first, with what a person must fix.
    Parked {
        #[arg(long, value_enum)]
        reason: Option<ReasonArg>,
        #[command(flatten)]
        common: Common,
    },
    /// Tries parked sales again: the ones named, or every parked sale of the tenant.
    Replay {
        sale_ids: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Cancels a sale: reversed in Bling when it was posted, locally otherwise.
    Cancel {
        sale_id: String,
        #[arg(long, default_value = "cancelada pelo operador")]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Moves a posted sale to another store: its stock returned to the old depósito and
    /// written off the new store's.
    Move {
        sale_id: String,
        /// The CPLUG store the sale was really made at.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        common: Common,
    },
}

async fn client(addr: &SalesAddr) -> anyhow::Result<SalesIngestServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(addr.sales_ingest_url.clone())
        .with_context(|| format!("--sales-ingest-url '{}' is not a URL", addr.sales_ingest_url))?
        .connect()
        .await
        .with_context(|| format!("cannot reach sales-ingest at {}", addr.sales_ingest_url))?;
    let channel = crate::with_token(channel)?;
    Ok(SalesIngestServiceClient::new(channel))
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

fn when(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map(|t| to_datetime(from_timestamp(t)).to_rfc3339()).unwrap_or_default()
}

fn state_name(s: SaleState) -> &'static str {
    match s {
        SaleState::Received => "received",
        SaleState::Posted => "posted",
        SaleState::Parked => "parked",
        SaleState::Failed => "failed",
        SaleState::Cancelled => "cancelled",
        SaleState::Unspecified => "-",
    }
}

fn reais(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

/// A sale as the JSON output shows it.
fn to_json(r: &SaleRecord) -> Value {
    let sale = r.sale.clone().unwrap_or_default();
    let mut v = json!({
        "sale_id": sale.sale_id, "store_id": r.cplug_store_id, "state": state_name(r.state()),
        "total": reais(sale.total_cents), "bling_order_id": r.bling_order_id,
        "stock_written_off": r.stock_written_off, "bling_deposito_id": r.bling_deposito_id,
        "received": when(r.receive_time.as_ref()), "updated": when(r.update_time.as_ref()),
        "parked_reason": r.parked_reason, "failure": r.failure, "cancel_requested": r.cancel_requested,
        "items": sale.items.iter().map(|i| json!({"sku": i.sku, "quantity": i.quantity,
            "unit_price": reais(i.unit_price_cents), "discount": reais(i.discount_cents), "name": i.name})).collect::<Vec<_>>(),
        "payments": sale.payments.iter().map(|p| json!({"method": p.method, "amount": reais(p.amount_cents),
            "installments": p.installments})).collect::<Vec<_>>(),
    });
    if !r.history.is_empty() {
        v["history"] = r
            .history
            .iter()
            .map(|h| {
                json!({"time": when(h.time.as_ref()), "action": h.action, "outcome": h.outcome,
                "detail": h.detail, "trace_id": h.trace_id})
            })
            .collect();
    }
    v
}

fn reason(r: &SaleRecord) -> &str {
    if !r.parked_reason.is_empty() { &r.parked_reason } else { &r.failure }
}

/// Prints `rows` under `headers`, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn print_list(records: &[SaleRecord], output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&records.iter().map(to_json).collect::<Vec<_>>())?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let sale = r.sale.clone().unwrap_or_default();
            let order = if r.bling_order_id > 0 { r.bling_order_id.to_string() } else { "-".into() };
            vec![
                sale.sale_id,
                r.cplug_store_id.clone(),
                state_name(r.state()).into(),
                reais(sale.total_cents),
                order,
                when(r.receive_time.as_ref()),
                reason(r).to_owned(),
            ]
        })
        .collect();
    table(&["SALE", "STORE", "STATE", "TOTAL", "BLING ORDER", "RECEIVED", "REASON"], &rows);
    if records.is_empty() {
        eprintln!("no sales");
    }
    Ok(())
}

fn print_one(r: &SaleRecord, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&to_json(r))?);
        return Ok(());
    }
    let sale = r.sale.clone().unwrap_or_default();
    let fields = [
        ("sale", sale.sale_id.clone()),
        ("store", r.cplug_store_id.clone()),
        ("state", state_name(r.state()).into()),
        ("total", reais(sale.total_cents)),
        ("bling order", r.bling_order_id.to_string()),
        (
            "stock written off",
            if r.stock_written_off { format!("depósito {}", r.bling_deposito_id) } else { "no".into() },
        ),
        ("received", when(r.receive_time.as_ref())),
        ("reason", reason(r).to_owned()),
    ];
    table(&["FIELD", "VALUE"], &fields.iter().map(|(k, v)| vec![(*k).to_owned(), v.clone()]).collect::<Vec<_>>());
    if !sale.items.is_empty() {
        println!();
        let items: Vec<Vec<String>> = sale
            .items
            .iter()
            .map(|i| {
                vec![
                    i.sku.clone(),
                    i.quantity.clone(),
                    reais(i.unit_price_cents),
                    reais(i.discount_cents),
                    i.name.clone(),
                ]
            })
            .collect();
        table(&["SKU", "QUANTITY", "UNIT PRICE", "DISCOUNT", "NAME"], &items);
        println!();
        let payments: Vec<Vec<String>> = sale
            .payments
            .iter()
            .map(|p| vec![p.method.clone(), reais(p.amount_cents), p.installments.to_string()])
            .collect();
        table(&["PAYMENT", "AMOUNT", "INSTALLMENTS"], &payments);
    }
    if !r.history.is_empty() {
        println!();
        let history: Vec<Vec<String>> = r
            .history
            .iter()
            .map(|h| {
                vec![when(h.time.as_ref()), h.action.clone(), h.outcome.clone(), h.detail.clone(), h.trace_id.clone()]
            })
            .collect();
        table(&["TIME", "ACTION", "OUTCOME", "DETAIL", "TRACE"], &history);
    }
    Ok(())
}

pub async fn sales(cmd: SalesCommand) -> anyhow::Result<()> {
    match cmd {
        SalesCommand::List { state, limit, common } => {
            let mut c = client(&common.addr).await?;
            let (mut token, mut records) = (String::new(), Vec::new());
            loop {
                let page = c
                    .list_sales(ListSalesRequest {
                        tenant_id: common.tenant.clone(),
                        state: state.map_or(0, |s| SaleState::from(s) as i32),
                        page_size: (limit - records.len()).clamp(1, 1000) as u32,
                        page_token: token,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                records.extend(page.records);
                if page.next_page_token.is_empty() || records.len() >= limit {
                    break;
                }
                token = page.next_page_token;
            }
            print_list(&records, common.output)
        }
        SalesCommand::Show { sale_id, common } => {
            let req = GetSaleRequest { tenant_id: common.tenant.clone(), sale_id };
            let r = client(&common.addr).await?.get_sale(req).await.map_err(status)?.into_inner().record;
            print_one(&r.unwrap_or_default(), common.output)
        }
        SalesCommand::Parked { reason, common } => {
            let mut c = client(&common.addr).await?;
            let (mut token, mut records) = (String::new(), Vec::new());
            loop {
                let page = c
                    .list_parked_sales(ListParkedSalesRequest {
                        tenant_id: common.tenant.clone(),
                        park_reason: reason.map_or(0, |r| ParkReason::from(r) as i32),
                        page_size: 1000,
                        page_token: token,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                records.extend(page.records);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            print_list(&records, common.output)
        }
        SalesCommand::Replay { sale_ids, common } => {
            let req = ReplayParkedRequest { tenant_id: common.tenant.clone(), sale_ids };
            let records = client(&common.addr).await?.replay_parked(req).await.map_err(status)?.into_inner().records;
            print_list(&records, common.output)?;
            let posted = records.iter().filter(|r| r.state() == SaleState::Posted).count();
            eprintln!("replayed {} sale(s): {posted} posted, the others as listed", records.len());
            Ok(())
        }
        SalesCommand::Cancel { sale_id, reason, common } => {
            let req = CancelSaleRequest { tenant_id: common.tenant.clone(), sale_id, reason };
            let r = client(&common.addr).await?.cancel_sale(req).await.map_err(status)?.into_inner().record;
            print_one(&r.unwrap_or_default(), common.output)
        }
        SalesCommand::Move { sale_id, to, common } => {
            let req = MoveSaleRequest { tenant_id: common.tenant.clone(), sale_id, to_store_id: to };
            let r = client(&common.addr).await?.move_sale(req).await.map_err(status)?.into_inner().record;
            print_one(&r.unwrap_or_default(), common.output)
        }
    }
}
