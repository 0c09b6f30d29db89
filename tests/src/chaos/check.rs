//! What the sandboxes hold against what the chaos workload implies: every Bitrix24 product
//! (one per Bling product, named as its last change), every Bling order (one per sale, cancelled
//! when the sale was), every stock movement (one write-off per item line of a sale, returned
//! when the sale was cancelled) and every balance; every Bitrix24 deal (one per Bling order, at
//! the stage of its situação), every 360Envios order (one per released order) and the Bling
//! situação of every order the workload made (where the hub's last move put it). Counted as
//! lost, duplicated or wrong.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use ponte_sandbox::bling::Operacao;
use serde::Serialize;

use super::workload::{ATENDIDO, DEPOSITO, EM_ABERTO, EM_ANDAMENTO, Workload};
use crate::procs::ProcessMesh;

/// Bling's Cancelado situação.
const CANCELADO: i64 = 12;

/// The outcome of a chaos run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub seed: u64,
    pub events: usize,
    pub product_changes: usize,
    pub sales: usize,
    pub cancellations: usize,
    pub bling_orders: usize,
    pub hub_moves: usize,
    /// The services whose process was killed, in order.
    pub killed: Vec<&'static str>,
    pub lost: usize,
    pub duplicated: usize,
    pub wrong: usize,
    /// Inbox events not delivered (nor coalesced, nor dead as an event no one subscribes to).
    pub undelivered: i64,
    /// Sales neither posted nor cancelled.
    pub unsettled_sales: i64,
    /// What differed, one line each (the first 50).
    pub differences: Vec<String>,
    pub workload_secs: f64,
    /// From the end of the workload until everything matched; `None`: it never did.
    pub drain_secs: Option<f64>,
    /// What each process cost (a `costs` run only).
    pub costs: Option<crate::costs::Costs>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.wrong == 0
            && self.undelivered == 0
            && self.unsettled_sales == 0
            && self.drain_secs.is_some()
    }

    fn differ(&mut self, what: String) {
        if self.differences.len() < 50 {
            self.differences.push(what);
        }
    }
}

async fn count(mesh: &ProcessMesh, schema: &str, sql: &str) -> i64 {
    // A fresh pool each time: the database may have just restarted.
    match ponte_core::db::Database::connect(&mesh.database_url, schema, 1, Duration::from_secs(5)).await {
        Ok(db) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(db.pool()).await.unwrap_or(-1),
        Err(_) => -1,
    }
}

async fn rows(mesh: &ProcessMesh, schema: &str, sql: &str) -> Vec<String> {
    match ponte_core::db::Database::connect(&mesh.database_url, schema, 1, Duration::from_secs(5)).await {
        Ok(db) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(db.pool()).await.unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// Waits (at most `within`) until the inbox and the sales are settled and the sandboxes hold
/// what the workload implies; how long that took.
pub async fn drain(mesh: &ProcessMesh, w: &Workload, within: Duration) -> Option<Duration> {
    let began = Instant::now();
    while began.elapsed() < within {
        if compare(mesh, w).await.ok_but_timing() {
            return Some(began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

impl Report {
    fn ok_but_timing(&self) -> bool {
        Self { drain_secs: Some(0.0), ..self.clone() }.ok()
    }
}

/// Compares the sandboxes with the workload.
pub async fn compare(mesh: &ProcessMesh, w: &Workload) -> Report {
    let mut r = Report {
        product_changes: w.changes,
        sales: w.sales.len(),
        cancellations: w.cancellations,
        bling_orders: w.orders.len(),
        hub_moves: w.hub_moves,
        ..Default::default()
    };
    r.undelivered = count(
        mesh,
        "gateway",
        "SELECT COUNT(*) FROM inbox_events WHERE state NOT IN ('delivered', 'coalesced') \
         AND NOT (state = 'dead' AND (event_type LIKE 'stock.%' OR event_type LIKE 'invoice.%'))",
    )
    .await;
    r.unsettled_sales =
        count(mesh, "sales_ingest", "SELECT COUNT(*) FROM sales WHERE state NOT IN ('posted', 'cancelled')").await;
    if r.unsettled_sales > 0 {
        for line in rows(
            mesh,
            "sales_ingest",
            "SELECT sale_id || ': ' || state || ' (attempts ' || attempts || ', lease ' || lease_owner || ' until ' || \
             lease_until || ', next ' || next_attempt_time || ', cancel ' || cancel_requested || ') ' || reason || ' ' || \
             last_error FROM sales WHERE state NOT IN ('posted', 'cancelled') ORDER BY sale_id LIMIT 10",
        )
        .await
        {
            r.differ(format!("unsettled sale {line}"));
        }
    }
    if r.undelivered > 0 {
        for line in rows(
            mesh,
            "gateway",
            "SELECT e.source || ' ' || e.event_type || ' ' || e.source_event_id || ': ' || e.state || ' ' || \
             e.dead_reason || ' [' || COALESCE((SELECT string_agg(d.subscriber || ' ' || d.state || ' after ' || \
             d.attempts || ': ' || d.last_error, '; ') FROM inbox_deliveries d WHERE d.event_id = e.event_id), '') || \
             ']' FROM inbox_events e WHERE e.state NOT IN ('delivered', 'coalesced') LIMIT 10",
        )
        .await
        {
            r.differ(format!("undelivered {line}"));
        }
    }

    // Bitrix24: one product per Bling product, named as its last change.
    let mut crm: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for p in mesh.portal.portal.products() {
        let name = p.get("NAME").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        match name.strip_prefix('P').and_then(|s| s.split(' ').next()).and_then(|i| i.parse().ok()) {
            Some(i) => crm.entry(i).or_default().push(name),
            None => {
                r.wrong += 1;
                r.differ(format!("Bitrix24 product {name:?} is no Bling product's"));
            }
        }
    }
    for (i, expected) in w.names.iter().enumerate() {
        let Some(expected) = expected else {
            if let Some(names) = crm.get(&i) {
                r.wrong += names.len();
                r.differ(format!("product {i}: never changed, yet in Bitrix24 as {names:?}"));
            }
            continue;
        };
        match crm.get(&i).map(Vec::as_slice).unwrap_or_default() {
            [] => {
                r.lost += 1;
                r.differ(format!("product {i}: not in Bitrix24"));
            }
            [one] if one == expected => {}
            [one] => {
                r.wrong += 1;
                r.differ(format!("product {i}: Bitrix24 has {one:?}, the last change was {expected:?}"));
            }
            many => {
                r.duplicated += many.len() - 1;
                r.differ(format!("product {i}: {} Bitrix24 products {many:?}", many.len()));
            }
        }
    }

    // Bling: one order per sale, its stock written off once (and returned once if cancelled).
    let b = &mesh.bling.bling;
    let mut orders: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let made: std::collections::HashSet<i64> = w.orders.iter().map(|o| o.id).collect();
    for o in b.orders() {
        if made.contains(&o["id"].as_i64().unwrap_or(0)) {
            // Made through Bling's API by the workload: compared below.
            continue;
        }
        let numero = o["numeroLoja"].as_str().unwrap_or_default().to_owned();
        orders
            .entry(numero)
            .or_default()
            .push((o["id"].as_i64().unwrap_or(0), o["situacao"]["id"].as_i64().unwrap_or(0)));
    }
    let movements = b.movements();
    let moved =
        |order: i64, op: Operacao| movements.iter().filter(|m| m.pedido == Some(order) && m.operacao == op).count();
    for (id, sale) in &w.sales {
        let found = orders.remove(id).unwrap_or_default();
        match (found.as_slice(), sale.cancelled) {
            ([], false) => {
                r.lost += 1;
                r.differ(format!("sale {id}: no Bling order"));
            }
            ([], true) => {}
            ([(order, situacao)], cancelled) => {
                let (out, back) = (moved(*order, Operacao::Saida), moved(*order, Operacao::Entrada));
                let lines = sale.lines.len();
                if cancelled && *situacao != CANCELADO {
                    r.wrong += 1;
                    r.differ(format!("sale {id}: cancelled, its order {order} is in situação {situacao}"));
                }
                if !cancelled && *situacao == CANCELADO {
                    r.wrong += 1;
                    r.differ(format!("sale {id}: not cancelled, its order {order} is"));
                }
                if cancelled {
                    // Written off and returned alike, or (cancelled before its write-off) neither.
                    if out > lines || back > lines {
                        r.duplicated += out.saturating_sub(lines) + back.saturating_sub(lines);
                        r.differ(format!("sale {id}: {out} write-offs and {back} returns for {lines} lines"));
                    } else if out != back {
                        r.wrong += 1;
                        r.differ(format!("sale {id}: cancelled, {out} write-offs but {back} returns"));
                    }
                } else if back > 0 || out > lines {
                    r.duplicated += out.saturating_sub(lines) + back;
                    r.differ(format!("sale {id}: {out} write-offs and {back} returns for {lines} lines"));
                } else if out < lines {
                    r.lost += 1;
                    r.differ(format!("sale {id}: {out} write-offs for {lines} lines"));
                }
            }
            (many, _) => {
                r.duplicated += many.len() - 1;
                r.differ(format!("sale {id}: {} Bling orders", many.len()));
            }
        }
    }
    // What ponte knows of the sales that differ.
    let suspects: Vec<&String> = w
        .sales
        .keys()
        .filter(|id| r.differences.iter().any(|d| d.starts_with(&format!("sale {id}:"))))
        .take(5)
        .collect();
    for id in suspects {
        let sale = rows(
            mesh,
            "sales_ingest",
            &format!(
                "SELECT state || ' order ' || bling_order_id || ' cancel ' || cancel_requested || ' attempts ' || \
                 attempts || ' ' || reason FROM sales WHERE sale_id = '{id}'"
            ),
        )
        .await;
        let events = rows(
            mesh,
            "gateway",
            &format!(
                "SELECT event_type || ' ' || state FROM inbox_events WHERE source = 'cplug' AND entity_key LIKE \
                 '%{id}%' ORDER BY receive_time"
            ),
        )
        .await;
        let history = rows(
            mesh,
            "sales_ingest",
            &format!(
                "SELECT action || ' ' || outcome || ' ' || detail FROM sale_history WHERE sale_id = '{id}' ORDER BY seq"
            ),
        )
        .await;
        r.differ(format!("  history of sale {id}: {history:?}"));
        // What the till's sender saw: each attempt's answer, per event.
        let sent: Vec<String> = mesh
            .pos
            .cplug
            .deliveries()
            .into_iter()
            .filter(|d| &d.sale_id == id)
            .map(|d| format!("{} #{} {:?}", d.event, d.attempt, d.status))
            .collect();
        r.differ(format!("  ponte's record of sale {id}: {sale:?}; inbox: {events:?}; sent: {sent:?}"));
    }
    for (numero, extra) in orders {
        r.wrong += extra.len();
        r.differ(format!("Bling order(s) {extra:?} with numeroLoja {numero:?} come from no sale"));
    }
    orders_deals_and_shipments(mesh, w, &mut r);
    // What shipping-status knows of the orders that differ.
    let odd: Vec<i64> = w
        .orders
        .iter()
        .map(|o| o.id)
        .filter(|id| r.differences.iter().any(|d| d.starts_with(&format!("order {id}:"))))
        .take(3)
        .collect();
    for id in odd {
        let shipment = rows(
            mesh,
            "shipping_status",
            &format!(
                "SELECT status || ' hub ' || COALESCE(envios360_order_id, '-') || ' situação ' || \
                 COALESCE(bling_situacao_id, 0) || ' ' || last_error || ' ' || waiting_reason FROM shipments \
                 WHERE bling_order_id = {id}"
            ),
        )
        .await;
        let history = rows(
            mesh,
            "shipping_status",
            &format!(
                "SELECT trigger_name || ' | ' || action || ' | ' || outcome || ' | ' || detail || ' ' || problem \
                 FROM history WHERE bling_order_id = {id} ORDER BY id"
            ),
        )
        .await;
        r.differ(format!("  shipment of order {id}: {shipment:?}; history: {history:?}"));
    }
    for (i, expected) in w.expected_stock().into_iter().enumerate() {
        let held = b.stock(w.products[i], DEPOSITO);
        if held != expected {
            r.wrong += 1;
            r.differ(format!("product {i}: stock {held}, expected {expected}"));
        }
    }
    r
}

/// The default stage of Bling's default situações; `None` for the others (the deal keeps its
/// stage: NEW for a new one, EXECUTING for one that was Em andamento).
fn default_stage(situacao: i64) -> Option<&'static str> {
    match situacao {
        EM_ABERTO => Some("NEW"),
        EM_ANDAMENTO => Some("EXECUTING"),
        ATENDIDO => Some("WON"),
        CANCELADO => Some("LOSE"),
        _ => None,
    }
}

/// One Bitrix24 deal per Bling order at its situação's stage; one 360Envios order per released
/// order the workload made, none for the others; each of those at the situação the hub's last
/// move implies.
fn orders_deals_and_shipments(mesh: &ProcessMesh, w: &Workload, r: &mut Report) {
    let b = &mesh.bling.bling;
    let mut deals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in mesh.portal.portal.deals() {
        let origin = d.get("ORIGIN_ID").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let stage = d.get("STAGE_ID").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        deals.entry(origin).or_default().push(stage);
    }
    for o in b.orders() {
        let id = o["id"].as_i64().unwrap_or(0);
        let situacao = o["situacao"]["id"].as_i64().unwrap_or(0);
        match deals.remove(&id.to_string()).unwrap_or_default().as_slice() {
            [] => {
                r.lost += 1;
                r.differ(format!("Bling order {id}: no Bitrix24 deal"));
            }
            [stage] => {
                let fits = match default_stage(situacao) {
                    Some(expected) => stage == expected,
                    None => stage == "NEW" || stage == "EXECUTING",
                };
                if !fits {
                    r.wrong += 1;
                    r.differ(format!("Bling order {id} at situação {situacao}: its deal is at {stage}"));
                }
            }
            many => {
                r.duplicated += many.len() - 1;
                r.differ(format!("Bling order {id}: {} deals {many:?}", many.len()));
            }
        }
    }
    for (origin, extra) in deals {
        r.wrong += extra.len();
        r.differ(format!("deal(s) {extra:?} with ORIGIN_ID {origin:?} come from no Bling order"));
    }

    let mut at_hub: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in mesh.hub.hub.orders() {
        let external = o["external_id"].as_str().unwrap_or_default().to_owned();
        at_hub.entry(external).or_default().push(o["status"].as_str().unwrap_or_default().to_owned());
    }
    for made in &w.orders {
        let found = at_hub.remove(&made.id.to_string()).unwrap_or_default();
        match (found.len(), made.released) {
            (0, true) => {
                r.lost += 1;
                r.differ(format!("order {}: released, not at 360Envios", made.id));
            }
            (1, true) | (0, false) => {}
            (n, true) => {
                r.duplicated += n - 1;
                r.differ(format!("order {}: {n} 360Envios orders", made.id));
            }
            (n, false) => {
                r.wrong += n;
                r.differ(format!("order {}: never released, yet {n} 360Envios orders", made.id));
            }
        }
        let expected = w.expected_situacao(made);
        let held = b.order(made.id).and_then(|o| o["situacao"]["id"].as_i64()).unwrap_or(0);
        if held != expected {
            r.wrong += 1;
            r.differ(format!(
                "order {}: Bling situação {held}, expected {expected} (hub at {})",
                made.id, made.hub_status
            ));
        }
    }
    for (external, extra) in at_hub {
        r.wrong += extra.len();
        r.differ(format!("360Envios order(s) {extra:?} with external_id {external:?} come from no released order"));
    }
}
