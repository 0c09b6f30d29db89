//! The 360Envios order a Bling sales order becomes: `external_id` its Bling id, the customer
//! from its contact (name and CPF/CNPJ), the address from its delivery label (`transporte`),
//! one item per product line at its net unit price, the order's total and freight. What the
//! merchant must add before the hub can take it is said in the merchant's terms, naming the
//! field as Bling's order screen does.

use std::collections::HashMap;

use ponte_connectors::{
    bling::resources::PedidoVenda,
    envios360::types::{Address, Customer, OrderBody, OrderItem},
};
use ponte_core::BlingId;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::shipments::Line;

/// The Bling products of the order's lines, each once, in order; or why one line has none.
pub(crate) fn product_ids(order: &PedidoVenda) -> Result<Vec<BlingId>, String> {
    let mut ids = Vec::new();
    for item in &order.itens {
        let Some(id) = BlingId::new(item.produto.id) else {
            return Err(format!(
                "item '{}' is not a product registered in Bling; 360Envios ships registered products only",
                item_name(&item.descricao, &item.codigo)
            ));
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err("the order has no items".into());
    }
    Ok(ids)
}

fn item_name(descricao: &str, codigo: &str) -> String {
    if descricao.trim().is_empty() { codigo.trim().to_owned() } else { descricao.trim().to_owned() }
}

fn text(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The order's CEP as 8 digits, when it is one.
fn cep(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '-' | '.' | ' ')).collect();
    (digits.len() == 8 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// Who receives the parcel and where; or what the merchant must fill in first.
pub(crate) fn recipient(order: &PedidoVenda) -> Result<(Customer, Address), String> {
    let mut missing = Vec::new();
    let label = order.transporte().etiqueta.unwrap_or_default();
    let name = text(&label.nome).or_else(|| text(&order.contato.nome));
    if name.is_none() {
        missing.push("the customer's name (contato)".to_owned());
    }
    let document: String = order.contato.numero_documento.chars().filter(char::is_ascii_digit).collect();
    if !matches!(document.len(), 11 | 14) {
        missing.push("the customer's CPF/CNPJ (contato → CPF/CNPJ)".to_owned());
    }
    let mut address_missing = Vec::new();
    for (value, what) in [
        (&label.endereco, "endereço"),
        (&label.numero, "número"),
        (&label.bairro, "bairro"),
        (&label.municipio, "município"),
    ] {
        if value.trim().is_empty() {
            address_missing.push(what);
        }
    }
    let uf = label.uf.trim().to_uppercase();
    if !(uf.len() == 2 && uf.chars().all(|c| c.is_ascii_alphabetic())) {
        address_missing.push("UF");
    }
    let zip = cep(&label.cep);
    if zip.is_none() {
        address_missing.push("CEP");
    }
    if !address_missing.is_empty() {
        missing
            .push(format!("the delivery address (transporte → endereço de entrega: {})", address_missing.join(", ")));
    }
    if !missing.is_empty() {
        return Err(format!("fill in {} in Bling", missing.join("; ")));
    }
    let customer = Customer { name: name.unwrap_or_default(), document: Some(document), email: None, phone: None };
    let address = Address {
        street: label.endereco.trim().to_owned(),
        number: label.numero.trim().to_owned(),
        complement: text(&label.complemento),
        district: label.bairro.trim().to_owned(),
        city: label.municipio.trim().to_owned(),
        state: uf,
        zip: zip.unwrap_or_default(),
    };
    Ok((customer, address))
}

/// The order's product lines as the shipment lists them: SKU (the Bling product id when the
/// line has none: 360 requires one), name, quantity.
pub(crate) fn lines(order: &PedidoVenda) -> Vec<Line> {
    order
        .itens
        .iter()
        .filter_map(|item| {
            let product = BlingId::new(item.produto.id)?;
            let sku = text(&item.codigo).unwrap_or_else(|| product.to_string());
            let name = text(&item.descricao).unwrap_or_else(|| sku.clone());
            Some(Line { product, sku, name, quantity: item.quantidade })
        })
        .collect()
}

/// The 360 order for `order`, its products' 360 ids in `hub`; or what is missing.
pub(crate) fn build(order: &PedidoVenda, hub: &HashMap<BlingId, String>) -> Result<OrderBody, String> {
    product_ids(order)?;
    let (customer, address) = recipient(order)?;
    let mut items = Vec::with_capacity(order.itens.len());
    for (item, line) in order.itens.iter().zip(lines(order)) {
        let Some(product_id) = hub.get(&line.product) else {
            return Err(format!("item '{}' has no 360Envios product", line.name));
        };
        let discount = item.desconto.unwrap_or_default();
        items.push(OrderItem {
            product_id: product_id.clone(),
            external_product_id: line.product.to_string(),
            sku: line.sku,
            name: line.name,
            quantity: item.quantidade.normalize(),
            unit_price: (item.valor * (Decimal::ONE_HUNDRED - discount) / Decimal::ONE_HUNDRED).round_dp(2),
        });
    }
    Ok(OrderBody {
        external_id: order.id.to_string(),
        number: if order.numero > 0 { order.numero.to_string() } else { order.id.to_string() },
        store_ref: order.loja.filter(|l| l.id > 0).map(|l| l.id.to_string()),
        customer,
        address,
        items,
        total: order.total.unwrap_or_default().round_dp(2),
        shipping_cost: order.transporte().frete.filter(|f| *f > Decimal::ZERO),
    })
}

/// A digest of the body, to tell whether a Bling change touched what 360 holds.
pub(crate) fn digest(body: &OrderBody) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests;
