//! `ponte dlq list|show|replay`: the gateway's dead letters, through its inbox API over gRPC.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use ponte_core::grpc::TracedChannel as Channel;
use ponte_core::time::{from_timestamp, to_datetime};
use ponte_proto::v1::{
    DeadLetterFilter, EventState, GetEventRequest, InboxEvent, ListDeadLettersRequest, Provider, ReplayRequest,
    inbox_service_client::InboxServiceClient, replay_request::Target,
};
use serde_json::{Value, json};

use crate::output::Output;

/// Where the gateway's gRPC side is.
#[derive(Args, Debug)]
pub struct GatewayAddr {
    /// The gateway's gRPC address (default: where `ponte dev` puts it).
    #[arg(long, env = "PONTE_GATEWAY_URL", default_value = "http://127.0.0.1:50056")]
    pub gateway_url: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Source {
    Bling,
    Envios360,
    Cplug,
    Bitrix24,
}

impl From<Source> for Provider {
    fn from(s: Source) -> Self {
        match s {
            Source::Bling => Provider::Bling,
            Source::Envios360 => Provider::Envios360,
            Source::Cplug => Provider::Cplug,
            Source::Bitrix24 => Provider::Bitrix24,
        }
    }
}

/// Which dead letters.
#[derive(Args, Debug)]
pub struct Filter {
    #[arg(long, default_value = "")]
    tenant: String,
    #[arg(long)]
    source: Option<Source>,
    /// Only those whose reason contains this text.
    #[arg(long, default_value = "")]
    reason: String,
}

impl Filter {
    fn proto(&self) -> DeadLetterFilter {
        DeadLetterFilter {
            tenant_id: self.tenant.clone(),
            source: self.source.map_or(0, |s| Provider::from(s) as i32),
            reason_contains: self.reason.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Lists dead letters, newest first: id, received, source, tenant, type, entity, reason.
    List {
        #[command(flatten)]
        filter: Filter,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Tab-separated lines, or JSON.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        addr: GatewayAddr,
    },
    /// Shows one inbox event: its state, deliveries and payload.
    Show {
        event_id: String,
        #[command(flatten)]
        addr: GatewayAddr,
    },
    /// Queues dead letters for delivery again: one by id, or with --all every one the filter matches.
    Replay {
        /// The event to replay.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        event_id: Option<String>,
        /// Every dead letter matching --tenant, --source and --reason.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: Filter,
        #[command(flatten)]
        addr: GatewayAddr,
    },
}

async fn client(addr: &GatewayAddr) -> anyhow::Result<InboxServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(addr.gateway_url.clone())
        .with_context(|| format!("--gateway-url '{}' is not a URL", addr.gateway_url))?
        .connect()
        .await
        .with_context(|| format!("cannot reach the gateway at {}", addr.gateway_url))?;
    let channel = crate::with_token(channel)?;
    Ok(InboxServiceClient::new(channel))
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

fn when(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map(|t| to_datetime(from_timestamp(t)).to_rfc3339()).unwrap_or_else(|| "-".into())
}

fn source_name(p: i32) -> &'static str {
    match Provider::try_from(p) {
        Ok(Provider::Bling) => "bling",
        Ok(Provider::Envios360) => "envios360",
        Ok(Provider::Cplug) => "cplug",
        Ok(Provider::Bitrix24) => "bitrix24",
        _ => "-",
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn state_name(s: EventState) -> &'static str {
    match s {
        EventState::Pending => "pending",
        EventState::Delivered => "delivered",
        EventState::Dead => "dead",
        EventState::Coalesced => "coalesced",
        EventState::Ignored => "ignored",
        EventState::Held => "held",
        EventState::Unspecified => "-",
    }
}

/// A dead letter as `--output json` shows it.
fn event_json(e: &InboxEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "receive_time": when(e.receive_time.as_ref()),
        "source": source_name(e.source),
        "tenant_id": e.tenant_id,
        "event_type": e.event_type,
        "entity_key": e.entity_key,
        "state": state_name(e.state()),
        "dead_reason": e.dead_reason,
        "deliveries": e.deliveries.iter().map(|d| json!({
            "subscriber": d.subscriber,
            "attempts": d.attempts,
            "last_error": d.last_error,
        })).collect::<Vec<_>>(),
    })
}

fn line(e: &InboxEvent) -> String {
    [
        e.event_id.as_str(),
        &when(e.receive_time.as_ref()),
        source_name(e.source),
        or_dash(&e.tenant_id),
        or_dash(&e.event_type),
        or_dash(&e.entity_key),
        &e.dead_reason,
    ]
    .join("\t")
}

pub async fn dlq(cmd: DlqCommand) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { filter, limit, output, addr } => {
            let mut inbox = client(&addr).await?;
            let (mut token, mut shown) = (String::new(), 0);
            let mut all = Vec::new();
            loop {
                let page = inbox
                    .list_dead_letters(ListDeadLettersRequest {
                        filter: Some(filter.proto()),
                        page_size: (limit - shown).clamp(1, 1000) as u32,
                        page_token: token,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                for e in &page.events {
                    match output {
                        Output::Table => println!("{}", line(e)),
                        Output::Json => all.push(event_json(e)),
                    }
                }
                shown += page.events.len();
                if page.next_page_token.is_empty() || shown >= limit {
                    break;
                }
                token = page.next_page_token;
            }
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&Value::Array(all))?);
            } else if shown == 0 {
                eprintln!("no dead letters");
            }
        }
        DlqCommand::Show { event_id, addr } => {
            let e = client(&addr)
                .await?
                .get_event(GetEventRequest { event_id })
                .await
                .map_err(status)?
                .into_inner()
                .event
                .unwrap_or_default();
            println!("event\t{}", e.event_id);
            println!("state\t{}", state_name(e.state()));
            println!("source\t{}\t{}", source_name(e.source), e.source_event_id);
            println!("tenant\t{}", or_dash(&e.tenant_id));
            println!("type\t{}", or_dash(&e.event_type));
            println!("entity\t{}", or_dash(&e.entity_key));
            println!("received\t{}", when(e.receive_time.as_ref()));
            if !e.dead_reason.is_empty() {
                println!("reason\t{}", e.dead_reason);
            }
            if !e.held_reason.is_empty() {
                println!("reason\t{}", e.held_reason);
            }
            for d in &e.deliveries {
                println!(
                    "delivery\t{}\t{}\tattempts={}\toutcome={}\t{}",
                    d.subscriber,
                    state_name(d.state()),
                    d.attempts,
                    d.outcome().label(),
                    d.last_error
                );
            }
            println!("payload\t{}", String::from_utf8_lossy(&e.payload));
        }
        DlqCommand::Replay { event_id, all: _, filter, addr } => {
            let target = match event_id {
                Some(id) => Target::EventId(id),
                None => Target::Filter(filter.proto()),
            };
            let queued = client(&addr)
                .await?
                .replay(ReplayRequest { target: Some(target) })
                .await
                .map_err(status)?
                .into_inner()
                .event_ids;
            for id in &queued {
                println!("{id}");
            }
            eprintln!("queued {} event(s) for delivery again", queued.len());
        }
    }
    Ok(())
}
