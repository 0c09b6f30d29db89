//! Sales that cannot be posted yet: parked with the reason a person acts on, in the merchant's
//! words, and posted by themselves once it is fixed (a mapping created, a product added in
//! Bling), or by hand with `ReplayParked`.

use ponte_proto::v1::{ListParkedSalesRequest, ParkReason, ReplayParkedRequest, SaleState};
use ponte_tests::webhooks::TENANT;
use serde_json::json;

use crate::sales_support::{DEPOSITO_GERAL, PIX, SalesWorld, camisetas};

#[tokio::test]
async fn an_unmapped_payment_method_parks_the_sale_and_mapping_it_posts_it() {
    let w = SalesWorld::start().await;
    let mut sale = camisetas("V-1");
    sale["payments"] = json!([{"method": "PIX", "amount": 119.80}]);
    let id = w.ring_up(sale);
    let parked = w.wait_for(&id, SaleState::Parked).await;
    assert_eq!(parked.park_reason(), ParkReason::UnmappedPaymentMethod);
    assert_eq!(parked.parked_reason, "forma de pagamento 'PIX' da loja 'loja-centro' não tem mapeamento no Bling");
    let listed = w
        .sales()
        .await
        .list_parked_sales(ListParkedSalesRequest {
            tenant_id: TENANT.into(),
            park_reason: ParkReason::UnmappedPaymentMethod as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(listed.len(), 1);
    assert!(w.orders_of(&id).is_empty(), "nothing reached Bling");

    // Mapping PIX is all it takes.
    w.map_payment("PIX", PIX).await;
    let posted = w.wait_for(&id, SaleState::Posted).await;
    assert_eq!(w.orders_of(&id).len(), 1);
    assert_eq!(w.orders_of(&id)[0]["parcelas"][0]["formaPagamento"]["id"], PIX);
    assert!(posted.parked_reason.is_empty());
}

#[tokio::test]
async fn an_unknown_sku_and_an_unmapped_store_park_and_go_once_fixed() {
    let w = SalesWorld::start().await;
    let mut novo = camisetas("V-2");
    novo["items"] = json!([{"sku": "NOVO-1", "quantity": 1, "unit_price": 10.00}]);
    novo["payments"] = json!([{"method": "DINHEIRO", "amount": 10.00}]);
    let sku_sale = w.ring_up(novo);
    let mut shopping = camisetas("V-3");
    shopping["store_id"] = json!("loja-shopping");
    let store_sale = w.ring_up(shopping);

    let parked = w.wait_for(&sku_sale, SaleState::Parked).await;
    assert_eq!(
        (parked.park_reason(), parked.parked_reason.as_str()),
        (ParkReason::UnknownSku, "o SKU 'NOVO-1' não existe no Bling")
    );
    let parked = w.wait_for(&store_sale, SaleState::Parked).await;
    assert_eq!(parked.park_reason(), ParkReason::UnmappedStore);
    assert_eq!(parked.parked_reason, "a loja 'loja-shopping' não tem mapeamento no Bling (loja e depósito)");

    // The merchant adds the product in Bling: the sale goes on its next re-check.
    w.world.bling.bling.seed_product(json!({"nome": "Produto novo", "codigo": "NOVO-1", "preco": 10.0}));
    w.wait_for(&sku_sale, SaleState::Posted).await;
    // The store is mapped: the mapping change wakes its sales.
    w.map_store("loja-shopping", DEPOSITO_GERAL).await;
    let posted = w.wait_for(&store_sale, SaleState::Posted).await;
    assert_eq!(w.movements_of(posted.bling_order_id), [(DEPOSITO_GERAL, "S".to_owned())]);
}

#[tokio::test]
async fn replay_parked_tries_again_at_once() {
    let w = SalesWorld::start_with(
        &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_sales_ingest::SPEC],
        // Parked sales wait an hour before they are tried again by themselves.
        crate::sales_support::sales_env().with("PONTE_SALES_RECHECK_SECONDS", "3600"),
    )
    .await;
    let mut novo = camisetas("V-4");
    novo["items"] = json!([{"sku": "NOVO-2", "quantity": 1, "unit_price": 119.80}]);
    let id = w.ring_up(novo);
    w.wait_for(&id, SaleState::Parked).await;
    w.world.bling.bling.seed_product(json!({"nome": "Outro", "codigo": "NOVO-2", "preco": 119.8}));
    let replayed = w
        .sales()
        .await
        .replay_parked(ReplayParkedRequest { tenant_id: TENANT.into(), sale_ids: vec![id.clone()] })
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(replayed.len(), 1);
    w.wait_for(&id, SaleState::Posted).await;
    let history = w.sale(&id).await.unwrap().history;
    assert!(history.iter().any(|h| h.action == "replay"), "{history:?}");
}
