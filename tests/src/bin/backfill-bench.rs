//! A full catalog backfill against the sandboxes at the real rate limits, with time sped up:
//! the Bling sandbox (3 requests/s), a Bitrix24 sandbox portal (2 requests/s, burst 50) and
//! ponte's own quotas all run `--scale` times faster. Reports the elapsed time against the floor
//! those limits imply for the calls the backfill made: the larger of Bling's calls ÷ 3/s and
//! Bitrix24's calls beyond its burst ÷ 2/s, divided by the scale.
//!
//! `backfill-bench [--products N] [--scale F]` (default 10,000 items, 30% of them variations,
//! at the real limits, scale 1: about two minutes) prints one JSON line. Needs PostgreSQL and
//! Redis (scripts/services.sh).

use std::time::{Duration, Instant};

use ponte_proto::v1::{
    BackfillState, SetApiCredentialsRequest, auth_token_service_client::AuthTokenServiceClient,
    set_api_credentials_request::Credentials,
};
use ponte_sandbox::{
    bitrix24::{self, Bitrix24},
    bling,
};
use ponte_tests::{
    Mesh,
    webhooks::{BlingWorld, TENANT},
};
use serde_json::json;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC];

/// A full catalog backfill against the sandboxes at their rate limits, sped up; prints one JSON line.
#[derive(clap::Parser, Debug)]
#[command(name = "backfill-bench")]
struct Args {
    /// Items in the Bling catalog (30% of them variations).
    #[arg(long, default_value_t = 10_000)]
    products: u64,
    /// How many times faster than real time the rate limits run.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { products: items, scale } = clap::Parser::parse();
    anyhow::ensure!(items > 0 && scale > 0.0, "--products and --scale must be greater than 0");

    let w = BlingWorld::start_with(
        SPECS,
        bling::Config { time_scale: scale, ..bling::Config::default() },
        &ponte_tests::redis_url(),
    )
    .await;
    let portal = Bitrix24::new(bitrix24::Config { time_scale: scale, ..bitrix24::Config::default() })
        .spawn(None)
        .await
        .map_err(|e| anyhow::anyhow!("Bitrix24 sandbox: {e}"))?;
    AuthTokenServiceClient::new(w.mesh.channel("auth-token").await)
        .set_api_credentials(SetApiCredentialsRequest {
            tenant_id: TENANT.into(),
            credentials: Some(Credentials::Bitrix24Webhook(ponte_proto::v1::Bitrix24WebhookCredentials {
                webhook_url: portal.webhook_url.clone(),
                application_token: portal.portal.config().application_token.clone(),
            })),
        })
        .await?;
    // The same deployment again, with ponte's quotas scaled like the sandboxes'.
    let env = w.mesh.env.clone().with("PONTE_RATE_LIMIT_SCALE", &scale.to_string());
    let BlingWorld { bling, mesh } = w;
    let database_url = mesh.database_url.clone();
    mesh.shutdown().await;
    let mesh = Mesh::start_on(SPECS, &ponte_tests::redis_url(), env, database_url).await;

    // 60% simple products, 10% parents with three variations each (30% of the items).
    let b = &bling.bling;
    let parents = items / 10;
    for i in 0..items - parents * 4 {
        b.seed_product(json!({"nome": format!("Produto {i}"), "codigo": format!("SKU-{i}"), "preco": 10.5,
            "situacao": if i % 5 == 0 { "I" } else { "A" }}));
    }
    for g in 0..parents {
        let parent = b.seed_product(json!({"nome": format!("Camiseta {g}"), "codigo": format!("CAM-{g}"),
            "preco": 59.9, "formato": "V"}));
        for cor in ["Azul", "Verde", "Preta"] {
            b.seed_product(json!({"nome": format!("Camiseta {g} {cor}"), "codigo": format!("CAM-{g}-{cor}"),
                "preco": 59.9, "variacao": {"nome": format!("Cor:{cor}"), "produtoPai": {"id": parent}}}));
        }
    }

    let (bling_before, portal_before) = (b.stats().api_requests, portal.portal.stats().requests);
    let began = Instant::now();
    let last = ponte_tests::backfill_products_to_bitrix24(mesh.channel("catalog-sync").await).await?;
    let elapsed = began.elapsed();
    anyhow::ensure!(last.state == BackfillState::Succeeded as i32, "backfill ended {:?}: {}", last.state, last.reason);

    let bling_calls = b.stats().api_requests - bling_before;
    let portal_stats = portal.portal.stats();
    let portal_calls = portal_stats.requests - portal_before;
    let bling_floor = bling_calls as f64 / 3.0;
    let portal_floor = portal_calls.saturating_sub(50) as f64 / 2.0;
    let floor = Duration::from_secs_f64(bling_floor.max(portal_floor) / scale);
    let c = last.counts.unwrap_or_default();
    println!(
        "{}",
        json!({
            "items": items, "scale": scale, "pages": last.pages_done,
            "products": c.products, "variations": c.variations, "created": c.created, "failed": c.failed,
            "bling_calls": bling_calls, "bitrix24_calls": portal_calls,
            "bitrix24_refused": portal_stats.query_limit_exceeded + portal_stats.operation_time_limit,
            "bling_refused": b.stats().rate_limited,
            "binding_limit": if portal_floor >= bling_floor { "bitrix24" } else { "bling" },
            "floor_s": floor.as_secs_f64(), "elapsed_s": elapsed.as_secs_f64(),
            "elapsed_over_floor": elapsed.as_secs_f64() / floor.as_secs_f64(),
        })
    );
    Ok(())
}
