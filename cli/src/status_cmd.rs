//! `ponte status --tenant T`: the merchant's "data sync" tab, through a running catalog-sync
//! over gRPC: per flow, the last successful sync, the last error, and the counts that explain
//! why Bling's list and the target's differ.

use std::fmt::Write;

use anyhow::Context;
use ponte_proto::v1::{
    CatalogCounts, Flow, FlowStatus, GetSyncStatusRequest, SalesCounts, ShippingCounts,
    catalog_sync_service_client::CatalogSyncServiceClient,
};

fn flow_name(flow: i32) -> &'static str {
    match Flow::try_from(flow) {
        Ok(Flow::BlingToBitrix24Products) => "Bling → Bitrix24 products",
        Ok(Flow::BlingToBitrix24Orders) => "Bling → Bitrix24 orders",
        Ok(Flow::Bitrix24ToBlingProducts) => "Bitrix24 → Bling products",
        Ok(Flow::BlingToCplugProducts) => "Bling → CPLUG products",
        Ok(Flow::CplugSalesToBling) => "CPLUG sales → Bling orders and stock",
        Ok(Flow::BlingToEnvios360Orders) => "Bling orders → 360Envios",
        Ok(Flow::Envios360ToBlingStatus) => "360Envios status → Bling situações",
        _ => "unknown flow",
    }
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.map(|t| ponte_core::time::to_datetime(ponte_core::time::from_timestamp(t)).to_rfc3339())
        .unwrap_or_else(|| "never".into())
}

/// The status as the command prints it.
pub fn render(flows: &[FlowStatus]) -> String {
    let mut out = String::new();
    for f in flows {
        let _ = writeln!(out, "{}", flow_name(f.flow));
        let _ = writeln!(out, "  last success: {}", time(f.last_success_time.as_ref()));
        if f.last_error.is_empty() {
            let _ = writeln!(out, "  last error:   none");
        } else {
            let _ = writeln!(out, "  last error:   {} ({})", f.last_error, time(f.last_error_time.as_ref()));
        }
        match (&f.sales, &f.shipping) {
            (Some(s), _) => sales(&mut out, s),
            (None, Some(s)) => shipping(&mut out, s),
            (None, None) => catalog(&mut out, &f.counts.unwrap_or_default()),
        }
    }
    out
}

fn catalog(out: &mut String, c: &CatalogCounts) {
    let _ = writeln!(
        out,
        "  in Bling:     {} products + {} variations ({} active, {} inactive)",
        c.products, c.variations, c.active, c.inactive
    );
    let _ = writeln!(
        out,
        "  written:      {} created, {} updated, {} unchanged, {} failed",
        c.created, c.updated, c.unchanged, c.failed
    );
}

fn sales(out: &mut String, s: &SalesCounts) {
    let _ = writeln!(
        out,
        "  sales:        {} posted, {} waiting, {} failed, {} cancelled",
        s.posted, s.received, s.failed, s.cancelled
    );
    let parked = [
        (s.parked_unmapped_payment_method, "unmapped payment method"),
        (s.parked_unknown_sku, "unknown SKU"),
        (s.parked_unmapped_store, "unmapped store"),
        (s.parked_not_connected, "Bling not connected"),
        (s.parked_rejected_by_bling, "refused by Bling"),
    ];
    let total: u64 = parked.iter().map(|(n, _)| n).sum();
    let why: Vec<String> = parked.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
    if total == 0 {
        let _ = writeln!(out, "  parked:       none");
    } else {
        let _ = writeln!(out, "  parked:       {total} ({})", why.join(", "));
    }
    for store in &s.stores {
        let _ = writeln!(
            out,
            "  store {}: {} posted, last at {}",
            store.cplug_store_id,
            store.posted,
            time(store.last_posted_time.as_ref())
        );
    }
}

fn shipping(out: &mut String, s: &ShippingCounts) {
    let _ = writeln!(
        out,
        "  shipments:    {} waiting, {} received, {} in romaneio, {} awaiting pickup, {} in transit, {} delivered, \
         {} cancelled, {} failed",
        s.waiting, s.received, s.in_packing_list, s.awaiting_shipment, s.in_transit, s.delivered, s.cancelled, s.failed
    );
}

pub async fn status(tenant: String, catalog_sync_url: String) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(catalog_sync_url.clone())
        .with_context(|| format!("--catalog-sync-url '{catalog_sync_url}' is not a URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach catalog-sync at {catalog_sync_url}"))?;
    let channel = crate::with_token(channel)?;
    let flows = CatalogSyncServiceClient::new(channel)
        .get_sync_status(GetSyncStatusRequest { tenant_id: tenant })
        .await
        .map_err(|e| anyhow::anyhow!("{:?}: {}", e.code(), e.message()))?
        .into_inner()
        .flows;
    print!("{}", render(&flows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use ponte_proto::v1::StoreSales;

    use super::*;

    #[test]
    fn a_flow_prints_its_times_error_and_counts() {
        let f = FlowStatus {
            flow: Flow::BlingToBitrix24Products as i32,
            last_success_time: Some(ponte_core::time::to_timestamp(1_700_000_000_000)),
            last_error: "backfill: Bitrix24 is not connected".into(),
            last_error_time: Some(ponte_core::time::to_timestamp(1_700_000_000_000)),
            counts: Some(CatalogCounts {
                products: 700,
                variations: 300,
                active: 880,
                inactive: 120,
                created: 999,
                failed: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render(&[f]);
        assert!(text.starts_with("Bling → Bitrix24 products\n  last success: 2023-11-14T22:13:20+00:00"), "{text}");
        assert!(text.contains("700 products + 300 variations (880 active, 120 inactive)"), "{text}");
        assert!(text.contains("999 created, 0 updated, 0 unchanged, 1 failed"), "{text}");
        assert!(text.contains("last error:   backfill: Bitrix24 is not connected"), "{text}");
    }

    #[test]
    fn the_sales_flow_prints_parked_sales_by_reason_and_each_store() {
        let f = FlowStatus {
            flow: Flow::CplugSalesToBling as i32,
            sales: Some(SalesCounts {
                posted: 40,
                parked_unmapped_payment_method: 2,
                parked_unknown_sku: 1,
                stores: vec![StoreSales { cplug_store_id: "loja-centro".into(), posted: 40, ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render(&[f]);
        assert!(text.starts_with("CPLUG sales → Bling orders and stock\n"), "{text}");
        assert!(text.contains("40 posted, 0 waiting, 0 failed, 0 cancelled"), "{text}");
        assert!(text.contains("parked:       3 (2 unmapped payment method, 1 unknown SKU)"), "{text}");
        assert!(text.contains("store loja-centro: 40 posted, last at never"), "{text}");
    }
}
