//! A checked sale as the Bling order it becomes, in pure functions: the date in the store's
//! time zone, items by Bling product id at their unit price, the line and sale discounts as one
//! order discount in reais (Bling's item discount is a percentage, which cannot carry a
//! discount in cents exactly), `numeroLoja` = the sale id, and the parcelas: each payment split
//! over its installments to the cent, the remainder on the first, due 30 days apart, so that
//! they always add up to the total Bling computes.

use std::collections::HashMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDate};
use ponte_connectors::bling::resources::{Desconto, IdRef, ItemPedido, NovoPedidoVenda, Parcela};
use ponte_core::BlingId;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::sale::Sale;

/// Where and how a sale is posted: what mapping, the link caches and the settings resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub loja: BlingId,
    pub deposito: BlingId,
    /// The forma de pagamento of each payment, in the sale's order.
    pub formas: Vec<BlingId>,
    /// By SKU.
    pub products: HashMap<String, BlingId>,
    pub contato: BlingId,
    pub situacao: BlingId,
    /// The store's time zone.
    pub offset: FixedOffset,
}

/// The default time zone of a store.
pub(crate) const DEFAULT_TIME_ZONE: &str = "America/Sao_Paulo";

/// The UTC offset of a Brazilian IANA time zone (or `UTC`). Brazil has kept no daylight saving
/// time since 2019, so each zone is one fixed offset; a table of them spares the whole tz
/// database for the sales of a point of sale, which are dated today.
pub(crate) fn offset_of(zone: &str) -> Option<FixedOffset> {
    let hours = match zone {
        "America/Noronha" => -2,
        "America/Sao_Paulo" | "America/Bahia" | "America/Fortaleza" | "America/Recife" | "America/Maceio"
        | "America/Belem" | "America/Araguaina" | "America/Santarem" => -3,
        "America/Manaus" | "America/Cuiaba" | "America/Campo_Grande" | "America/Porto_Velho" | "America/Boa_Vista" => {
            -4
        }
        "America/Rio_Branco" | "America/Eirunepe" => -5,
        "UTC" => 0,
        _ => return None,
    };
    FixedOffset::east_opt(hours * 3600)
}

/// The calendar day of `ms` (Unix ms) at `offset`.
pub(crate) fn local_date(ms: i64, offset: FixedOffset) -> NaiveDate {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&offset).date_naive()
}

/// `amount_cents` over `n` installments: equal parts, the remainder on the first.
pub(crate) fn split(amount_cents: i64, n: u32) -> Vec<i64> {
    let n = i64::from(n.max(1));
    let base = amount_cents / n;
    let mut parts = vec![base; n as usize];
    parts[0] += amount_cents - base * n;
    parts
}

fn reais(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// Each payment's parcelas: one due on the sale date when paid at once; otherwise due 30, 60,
/// … days after it (a card's installments).
pub(crate) fn parcelas(sale: &Sale, formas: &[BlingId], date: NaiveDate) -> Vec<Parcela> {
    let mut out = Vec::new();
    for (p, forma) in sale.payments.iter().zip(formas) {
        let parts = split(p.amount_cents, p.installments);
        let at_once = parts.len() == 1;
        for (k, cents) in parts.into_iter().enumerate() {
            let days = if at_once { 0 } else { 30 * (k as u64 + 1) };
            let due = date.checked_add_days(Days::new(days)).unwrap_or(date);
            out.push(Parcela {
                data_vencimento: due.format("%Y-%m-%d").to_string(),
                valor: reais(cents),
                observacoes: format!("{} {}/{}", p.method, k + 1, p.installments),
                forma_pagamento: IdRef { id: forma.get() },
            });
        }
    }
    out
}

/// Money to the cent as Bling rounds it: half a cent away from zero (PHP's `round`), not to
/// even; with banker's rounding a sum ending in half a cent could never reach an odd-cent total.
pub(crate) fn to_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The order total Bling computes: the items (quantity × unit price), less the discount, plus
/// other expenses, to the cent.
pub(crate) fn bling_total(itens: &[ItemPedido], desconto: Option<Decimal>, outras: Option<Decimal>) -> Decimal {
    let produtos: Decimal = itens.iter().map(|i| i.quantidade * i.valor).sum();
    to_cents(produtos - desconto.unwrap_or_default() + outras.unwrap_or_default())
}

/// The order discount (or, when the point of sale rounded its lines up past Bling's sum, the
/// other expenses) that makes Bling's total the sale's total exactly.
pub(crate) fn adjustment(itens: &[ItemPedido], total_cents: i64) -> (Option<Decimal>, Option<Decimal>) {
    let target = reais(total_cents);
    let produtos: Decimal = itens.iter().map(|i| i.quantidade * i.valor).sum();
    let first = to_cents(produtos) - target;
    // Bling rounds the sum once where the point of sale rounded each line: a cent either way
    // settles it.
    for d in [first, first - Decimal::new(1, 2), first + Decimal::new(1, 2)] {
        let (desconto, outras) = if d >= Decimal::ZERO { (Some(d), None) } else { (None, Some(-d)) };
        let (desconto, outras) = (desconto.filter(|d| !d.is_zero()), outras.filter(|o| !o.is_zero()));
        if bling_total(itens, desconto, outras) == target {
            return (desconto, outras);
        }
    }
    (Some(first).filter(|d| *d > Decimal::ZERO), None)
}

/// The Bling order of `sale` as `r` resolved it.
pub(crate) fn order(sale: &Sale, r: &Resolved) -> NovoPedidoVenda {
    let date = local_date(sale.occurred_ms, r.offset).format("%Y-%m-%d").to_string();
    let itens: Vec<ItemPedido> = sale
        .items
        .iter()
        .map(|i| ItemPedido {
            codigo: i.sku.clone(),
            unidade: String::new(),
            quantidade: i.quantity,
            desconto: None,
            valor: reais(i.unit_price_cents),
            descricao: if i.name.is_empty() { i.sku.clone() } else { i.name.clone() },
            produto: IdRef { id: r.products.get(&i.sku).map(|p| p.get()).unwrap_or_default() },
        })
        .collect();
    let (desconto, outras) = adjustment(&itens, sale.total_cents);
    let parcelas = parcelas(sale, &r.formas, local_date(sale.occurred_ms, r.offset));
    NovoPedidoVenda {
        contato: IdRef { id: r.contato.get() },
        data: date.clone(),
        data_saida: date.clone(),
        data_prevista: date,
        numero_loja: sale.sale_id.clone(),
        loja: Some(IdRef { id: r.loja.get() }),
        situacao: Some(IdRef { id: r.situacao.get() }),
        itens,
        parcelas,
        desconto: desconto.map(|valor| Desconto { valor, unidade: "REAL".into() }),
        outras_despesas: outras,
        observacoes: format!(
            "Venda {} do PDV CPLUG (loja {}, caixa {})",
            sale.sale_id, sale.store_id, sale.register_id
        ),
    }
}

#[cfg(test)]
mod tests;
