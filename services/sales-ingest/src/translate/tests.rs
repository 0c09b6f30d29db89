use proptest::prelude::*;

use super::*;
use crate::sale::{Item, Payment, Sale};

fn id(n: i64) -> BlingId {
    BlingId::new(n).unwrap()
}

fn resolved(sale: &Sale) -> Resolved {
    Resolved {
        loja: id(204),
        deposito: id(14),
        formas: sale.payments.iter().enumerate().map(|(i, _)| id(11_010_299 + i as i64)).collect(),
        products: sale.items.iter().enumerate().map(|(i, it)| (it.sku.clone(), id(77 + i as i64))).collect(),
        contato: id(5),
        situacao: id(9),
        offset: offset_of(DEFAULT_TIME_ZONE).unwrap(),
    }
}

fn sale(items: Vec<(Decimal, i64, i64)>, payments: Vec<(i64, u32)>, discount_cents: i64, total_cents: i64) -> Sale {
    Sale {
        sale_id: "V-1".into(),
        store_id: "loja-centro".into(),
        register_id: "caixa-1".into(),
        number: 1,
        customer: None,
        items: items
            .into_iter()
            .enumerate()
            .map(|(i, (quantity, unit_price_cents, discount_cents))| Item {
                sku: format!("SKU-{i}"),
                quantity,
                unit_price_cents,
                discount_cents,
                name: String::new(),
            })
            .collect(),
        payments: payments
            .into_iter()
            .map(|(amount_cents, installments)| Payment {
                method: "CREDITO".into(),
                method_name: String::new(),
                amount_cents,
                installments,
            })
            .collect(),
        discount_cents,
        total_cents,
        // 2026-03-02 01:30 UTC: still the 1st in São Paulo.
        occurred_ms: 1_772_415_000_000,
    }
}

#[test]
fn the_contracts_sale_becomes_one_order_with_three_parcelas() {
    let s = sale(vec![(Decimal::from(2), 5990, 0)], vec![(11_980, 3)], 0, 11_980);
    let o = order(&s, &resolved(&s));
    assert_eq!((o.data.as_str(), o.numero_loja.as_str()), ("2026-03-01", "V-1"), "the store's day, not UTC's");
    assert_eq!((o.loja, o.situacao, o.contato), (Some(IdRef { id: 204 }), Some(IdRef { id: 9 }), IdRef { id: 5 }));
    let valores: Vec<Decimal> = o.parcelas.iter().map(|p| p.valor).collect();
    assert_eq!(valores, [Decimal::new(3994, 2), Decimal::new(3993, 2), Decimal::new(3993, 2)]);
    let dates: Vec<&str> = o.parcelas.iter().map(|p| p.data_vencimento.as_str()).collect();
    assert_eq!(dates, ["2026-03-31", "2026-04-30", "2026-05-30"]);
    assert_eq!((o.desconto, o.outras_despesas), (None, None));
    assert_eq!(o.itens[0].produto, IdRef { id: 77 });
}

#[test]
fn discounts_become_one_order_discount_in_reais() {
    let s = sale(vec![(Decimal::from(2), 5990, 980), (Decimal::new(75, 2), 1099, 0)], vec![(11_724, 1)], 100, 11_724);
    let o = order(&s, &resolved(&s));
    assert_eq!(o.desconto.as_ref().map(|d| (d.valor, d.unidade.as_str())), Some((Decimal::new(1080, 2), "REAL")));
    assert_eq!(bling_total(&o.itens, o.desconto.map(|d| d.valor), o.outras_despesas), Decimal::new(11_724, 2));
    assert_eq!(o.parcelas[0].data_vencimento, "2026-03-01", "paid at once: due on the sale's day");
}

#[test]
fn zones_are_the_brazilian_ones() {
    assert_eq!(offset_of("America/Manaus").unwrap().local_minus_utc(), -4 * 3600);
    assert!(offset_of("Europe/Lisbon").is_none() && offset_of("america/sao_paulo").is_none());
    assert_eq!(split(100, 3), [34, 33, 33]);
    assert_eq!(split(2, 2), [1, 1]);
}

proptest! {
    #[test]
    fn parcelas_always_add_up_to_the_total_bling_computes(
        items in prop::collection::vec((1u32..=20_000, 0i64..=100_000, 0i64..=5_000), 1..8),
        cuts in prop::collection::vec((1u32..=100, 1u32..=12), 1..5),
        sale_discount in 0i64..=2_000,
    ) {
        let items: Vec<(Decimal, i64, i64)> = items
            .into_iter()
            .map(|(q, price, disc)| {
                let quantity = Decimal::new(i64::from(q), 3);
                let gross = crate::sale::line_cents(quantity, price, 0).unwrap();
                (quantity, price, disc.min(gross))
            })
            .collect();
        let lines: i64 = items.iter().map(|(q, p, d)| crate::sale::line_cents(*q, *p, *d).unwrap()).sum();
        let total = lines - sale_discount.min(lines);
        prop_assume!(total > 0);
        // The total split over payments by weight, each payment at least its installments in cents.
        let weights: u32 = cuts.iter().map(|c| c.0).sum();
        let mut payments: Vec<(i64, u32)> = cuts
            .iter()
            .map(|(w, n)| (total * i64::from(*w) / i64::from(weights), *n))
            .collect();
        let given: i64 = payments.iter().map(|p| p.0).sum();
        payments[0].0 += total - given;
        payments.retain(|p| p.0 > 0);
        for p in &mut payments {
            p.1 = p.1.min(u32::try_from(p.0).unwrap_or(u32::MAX));
        }
        let s = sale(items, payments, sale_discount.min(lines), total);
        let o = order(&s, &resolved(&s));
        let sum: Decimal = o.parcelas.iter().map(|p| p.valor).sum();
        prop_assert_eq!(sum, Decimal::new(total, 2));
        prop_assert!(o.parcelas.iter().all(|p| p.valor > Decimal::ZERO));
        prop_assert_eq!(bling_total(&o.itens, o.desconto.as_ref().map(|d| d.valor), o.outras_despesas), Decimal::new(total, 2));
        prop_assert!(o.desconto.as_ref().is_none_or(|d| d.valor > Decimal::ZERO));
    }
}

#[test]
fn a_sum_ending_in_half_a_cent_still_reaches_an_odd_cent_total() {
    // 7.333 × R$ 305,00 = R$ 2.236,565: the line rounds up, and Bling's total with it.
    let quantity = Decimal::new(7333, 3);
    let line = crate::sale::line_cents(quantity, 30_500, 3_438).unwrap();
    assert_eq!(line, 220_219);
    let total = line - 337;
    let s = sale(vec![(quantity, 30_500, 3_438)], vec![(total, 1)], 337, total);
    let o = order(&s, &resolved(&s));
    assert_eq!(bling_total(&o.itens, o.desconto.as_ref().map(|d| d.valor), o.outras_despesas), Decimal::new(total, 2));
    assert_eq!(to_cents(Decimal::new(2_198_815, 3)), Decimal::new(219_882, 2), "half a cent goes up, not to even");
}
