//! `ponte history --tenant T --entity product:123`: one record's whole history (the gateway's
//! inbox and the owning service's log, merged), with the trace of each step.

use anyhow::Context;
use ponte_proto::v1::{GetRecordHistoryRequest, RecordHistoryEntry, inbox_service_client::InboxServiceClient};
use serde_json::{Value, json};

use crate::{
    dlq_cmd::GatewayAddr,
    output::{Output, table, when},
};

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The tenant the record belongs to.
    #[arg(long)]
    tenant: String,
    /// The record: product:<bling id>, order:<bling id>, sale:<sale id>, bitrix24_product:<id>.
    #[arg(long)]
    entity: String,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    addr: GatewayAddr,
}

pub async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let url = &args.addr.gateway_url;
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .with_context(|| format!("--gateway-url '{url}' is not a URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach the gateway at {url} (start it, or pass --gateway-url)"))?;
    let entries = InboxServiceClient::new(crate::with_token(channel)?)
        .get_record_history(GetRecordHistoryRequest { tenant_id: args.tenant.clone(), entity: args.entity.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .entries;
    print!("{}", render(&entries, args.output)?);
    if entries.is_empty() && args.output == Output::Table {
        eprintln!("no history for {} of tenant {}", args.entity, args.tenant);
    }
    Ok(())
}

fn to_json(e: &RecordHistoryEntry) -> Value {
    json!({
        "time": when(e.time.as_ref()),
        "component": e.component,
        "action": e.action,
        "outcome": e.outcome,
        "detail": e.detail,
        "event_id": e.event_id,
        "trace_id": e.trace_id,
        "trace_url": e.trace_url,
    })
}

/// The entries as a table (the trace's link when there is one, else its id) or a JSON array.
pub fn render(entries: &[RecordHistoryEntry], output: Output) -> anyhow::Result<String> {
    if output == Output::Json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&entries.iter().map(to_json).collect::<Vec<_>>())?));
    }
    let dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                when(e.time.as_ref()),
                e.component.clone(),
                e.action.clone(),
                dash(&e.outcome),
                dash(&e.detail),
                dash(if e.trace_url.is_empty() { &e.trace_id } else { &e.trace_url }),
            ]
        })
        .collect();
    Ok(table(&["TIME", "BY", "ACTION", "OUTCOME", "DETAIL", "TRACE"], &rows))
}
