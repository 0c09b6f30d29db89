use serde_json::json;

use super::*;

fn order(transporte: serde_json::Value, documento: &str) -> PedidoVenda {
    serde_json::from_value(json!({"id": 12345678, "numero": 71, "total": 129.8, "loja": {"id": 0},
        "contato": {"id": 5, "nome": "Maria Souza", "numeroDocumento": documento},
        "situacao": {"id": 15, "valor": 3},
        "itens": [
            {"codigo": "CAM-AZ-M", "quantidade": 2, "valor": 59.9, "desconto": 0, "descricao": "Camiseta azul M", "produto": {"id": 16059781281_i64}},
            {"codigo": "", "quantidade": 1, "valor": 12.5, "desconto": 20, "descricao": "Meia", "produto": {"id": 16059781282_i64}}
        ],
        "transporte": transporte}))
    .unwrap()
}

fn address() -> serde_json::Value {
    json!({"frete": 10, "etiqueta": {"nome": "Maria S.", "endereco": "Rua A", "numero": "10", "complemento": "",
        "municipio": "São Paulo", "uf": "sp", "cep": "01001-000", "bairro": "Centro"}})
}

fn hub() -> HashMap<BlingId, String> {
    [(16059781281_i64, "pr_1"), (16059781282, "pr_2")]
        .into_iter()
        .map(|(b, h)| (BlingId::new(b).unwrap(), h.into()))
        .collect()
}

#[test]
fn a_complete_order_becomes_the_hubs_order_with_net_unit_prices() {
    let o = order(address(), "123.456.789-09");
    let body = build(&o, &hub()).unwrap();
    assert_eq!((body.external_id.as_str(), body.number.as_str(), &body.store_ref), ("12345678", "71", &None));
    assert_eq!((body.customer.name.as_str(), body.customer.document.as_deref()), ("Maria S.", Some("12345678909")));
    assert_eq!(
        (body.address.state.as_str(), body.address.zip.as_str(), &body.address.complement),
        ("SP", "01001000", &None)
    );
    assert_eq!(body.items.len(), 2);
    assert_eq!((body.items[1].product_id.as_str(), body.items[1].sku.as_str()), ("pr_2", "16059781282"));
    assert_eq!(body.items[1].unit_price, Decimal::new(1000, 2), "20% off 12.50");
    assert_eq!((body.total, body.shipping_cost), (Decimal::new(1298, 1), Some(Decimal::from(10))));
    let lines = lines(&o);
    assert_eq!(
        (lines[0].quantity, lines[1].sku.as_str(), lines[1].name.as_str()),
        (Decimal::from(2), "16059781282", "Meia")
    );
    assert_eq!(digest(&body), digest(&body.clone()));
    let mut edited = body.clone();
    edited.items[0].quantity = Decimal::from(3);
    assert_ne!(digest(&edited), digest(&body), "a quantity change is a change 360 must get");
}

#[test]
fn what_the_merchant_must_fill_in_is_named_as_bling_names_it() {
    let no_address =
        json!({"etiqueta": {"nome": "", "endereco": "Rua A", "numero": "", "uf": "São Paulo", "cep": "123"}});
    let why = recipient(&order(no_address, "")).unwrap_err();
    assert_eq!(
        why,
        "fill in the customer's CPF/CNPJ (contato → CPF/CNPJ); the delivery address (transporte → endereço de entrega: \
         número, bairro, município, UF, CEP) in Bling"
    );
    assert!(build(&order(json!(null), "12345678909"), &hub()).unwrap_err().contains("endereço, número"));
    let mut linked = hub();
    linked.remove(&BlingId::new(16059781282).unwrap());
    assert_eq!(build(&order(address(), "12345678909"), &linked).unwrap_err(), "item 'Meia' has no 360Envios product");
}

#[test]
fn every_line_must_name_a_bling_product() {
    let mut o = order(address(), "12345678909");
    assert_eq!(product_ids(&o).unwrap().len(), 2);
    o.itens[1].produto.id = 0;
    assert_eq!(
        product_ids(&o).unwrap_err(),
        "item 'Meia' is not a product registered in Bling; 360Envios ships registered products only"
    );
}
