use super::*;

pub(crate) fn sample() -> pb::Sale {
    pb::Sale {
        sale_id: "V-000123".into(),
        store_id: "loja-centro".into(),
        register_id: "caixa-2".into(),
        number: 123,
        customer: Some(pb::Customer { document: "12345678909".into(), name: "Maria".into() }),
        items: vec![
            pb::SaleItem {
                sku: "CAM-AZ-M".into(),
                quantity: "2".into(),
                unit_price_cents: 5990,
                discount_cents: 0,
                name: "Camiseta azul M".into(),
            },
            pb::SaleItem {
                sku: "QJ-1".into(),
                quantity: "0.750".into(),
                unit_price_cents: 1099,
                discount_cents: 24,
                name: "Queijo".into(),
            },
        ],
        payments: vec![pb::Payment {
            method: "CREDITO".into(),
            method_name: "Cartão".into(),
            amount_cents: 12780,
            installments: 3,
        }],
        discount_cents: 0,
        total_cents: 12780,
        occurred_at: Some(to_timestamp(1_772_471_111_000)),
    }
}

#[test]
fn a_good_sale_is_kept_as_sent() {
    let s = Sale::check(&sample(), 0).unwrap();
    assert_eq!(s.items[1].quantity, Decimal::new(75, 2));
    assert_eq!(s.skus(), ["CAM-AZ-M", "QJ-1"]);
    assert_eq!(Sale::check(&s.to_proto(), 0).unwrap(), s, "round trip");
}

#[test]
fn bad_sales_are_refused_naming_the_field() {
    type Mutate = Box<dyn Fn(&mut pb::Sale)>;
    let cases: Vec<(Mutate, &str)> = vec![
        (Box::new(|s| s.sale_id.clear()), "sale.sale_id"),
        (Box::new(|s| s.sale_id = "V 1".into()), "sale.sale_id"),
        (Box::new(|s| s.store_id = "x".repeat(65)), "sale.store_id"),
        (Box::new(|s| s.items.clear()), "sale.items"),
        (Box::new(|s| s.items[1].quantity = "0".into()), "sale.items[1].quantity"),
        (Box::new(|s| s.items[1].quantity = "1.23456".into()), "sale.items[1].quantity"),
        (Box::new(|s| s.items[0].quantity = "dois".into()), "sale.items[0].quantity"),
        (Box::new(|s| s.items[0].sku = "CAM AZ".into()), "sale.items[0].sku"),
        (Box::new(|s| s.items[0].unit_price_cents = -1), "sale.items[0].unit_price_cents"),
        (Box::new(|s| s.items[0].discount_cents = 20_000), "sale.items[0].discount_cents"),
        (Box::new(|s| s.payments[0].amount_cents = -5), "sale.payments[0].amount_cents"),
        (Box::new(|s| s.payments[0].amount_cents = 100), "sale.payments"),
        (Box::new(|s| s.payments[0].installments = 100), "sale.payments[0].installments"),
        (Box::new(|s| s.payments[0].method = " ".into()), "sale.payments[0].method"),
        (Box::new(|s| s.customer.as_mut().unwrap().document = "12345678900".into()), "sale.customer.document"),
        (
            Box::new(|s| {
                s.total_cents = 12_800;
                s.payments[0].amount_cents = 12_800;
            }),
            "sale.total_cents",
        ),
        (Box::new(|s| s.discount_cents = -1), "sale.discount_cents"),
        (Box::new(|s| s.discount_cents = 1), "sale.total_cents"),
    ];
    for (mutate, field) in cases {
        let mut s = sample();
        mutate(&mut s);
        let err = Sale::check(&s, 0).expect_err(field).to_string();
        assert!(err.starts_with(&format!("{field}: ")), "{field}: {err}");
    }
}

#[test]
fn an_anonymous_sale_has_no_customer_and_unset_installments_are_one() {
    let mut s = sample();
    s.customer = Some(pb::Customer { document: String::new(), name: "Balcão".into() });
    s.payments[0].installments = 0;
    let s = Sale::check(&s, 0).unwrap();
    assert_eq!((s.customer, s.payments[0].installments), (None, 1));
    assert!(valid_document("11222333000181") && !valid_document("11111111111") && !valid_document("123"));
}
