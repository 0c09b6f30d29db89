//! 360Envios's order statuses as ponte's [`ShippingStatus`] and back (the same forward-only
//! life cycle, named once in the proto for every service), and a Bling product as the product
//! 360 is sent for approval, its images within the contract's limits.

use ponte_proto::v1::ShippingStatus;
use rust_decimal::Decimal;

use super::types::{Dimensions, Image, MAX_IMAGE_URL, MAX_IMAGES, NewProduct, OrderStatus};
use crate::bling::resources::Produto;

impl From<OrderStatus> for ShippingStatus {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Received => Self::Received,
            OrderStatus::InPackingList => Self::InPackingList,
            OrderStatus::AwaitingShipment => Self::AwaitingShipment,
            OrderStatus::InTransit => Self::InTransit,
            OrderStatus::Delivered => Self::Delivered,
            OrderStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// `SHIPPING_STATUS_UNSPECIFIED` names no status of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an unspecified shipping status is no 360Envios order status")]
pub struct Unspecified;

impl TryFrom<ShippingStatus> for OrderStatus {
    type Error = Unspecified;

    fn try_from(s: ShippingStatus) -> Result<Self, Self::Error> {
        Ok(match s {
            ShippingStatus::Unspecified => return Err(Unspecified),
            ShippingStatus::Received => Self::Received,
            ShippingStatus::InPackingList => Self::InPackingList,
            ShippingStatus::AwaitingShipment => Self::AwaitingShipment,
            ShippingStatus::InTransit => Self::InTransit,
            ShippingStatus::Delivered => Self::Delivered,
            ShippingStatus::Cancelled => Self::Cancelled,
        })
    }
}

/// The first [`MAX_IMAGES`] of `links` the hub takes: absolute http(s) URLs of at most
/// [`MAX_IMAGE_URL`] characters, each once. The others are left out rather than have the whole
/// product refused for one bad link.
pub fn images<'a>(links: impl IntoIterator<Item = &'a str>) -> Vec<Image> {
    let mut out: Vec<Image> = Vec::new();
    for link in links {
        let fits = link.len() <= MAX_IMAGE_URL
            && url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if fits && !out.iter().any(|i| i.url == link) {
            out.push(Image { url: link.to_owned() });
        }
        if out.len() == MAX_IMAGES {
            break;
        }
    }
    out
}

/// Bling product `p` as 360 receives it for approval: `external_id` its Bling id, its SKU (the
/// Bling id when the product has none: Bling allows an empty `codigo`, 360 does not), price,
/// GTIN, weight, dimensions and images.
pub fn new_product(p: &Produto) -> NewProduct {
    let sku = if p.codigo.trim().is_empty() { p.id.to_string() } else { p.codigo.trim().to_owned() };
    let name = if p.nome.trim().is_empty() { sku.clone() } else { p.nome.trim().to_owned() };
    let links = p.image_links();
    NewProduct {
        external_id: p.id.to_string(),
        sku,
        name,
        price: p.preco.unwrap_or(Decimal::ZERO).max(Decimal::ZERO),
        gtin: Some(p.gtin.trim().to_owned()).filter(|g| !g.is_empty()),
        weight_kg: p.peso_kg(),
        dimensions_cm: p.dimensoes().centimetres().map(|(width, height, depth)| Dimensions { width, height, depth }),
        images: images(links.iter().map(String::as_str)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bling_product_is_sent_with_its_first_ten_usable_images() {
        let mut internas: Vec<serde_json::Value> =
            (0..12).map(|i| serde_json::json!({"link": format!("https://s3.example/{i}.jpg")})).collect();
        internas.insert(1, serde_json::json!({"link": "ftp://old.example/x.jpg"}));
        internas.insert(2, serde_json::json!({"link": format!("https://x.example/{}", "a".repeat(2100))}));
        internas.insert(3, serde_json::json!({"link": "https://s3.example/0.jpg"}));
        let p: Produto = serde_json::from_value(serde_json::json!({"id": 16059781281_i64, "nome": " Camiseta azul M ",
            "codigo": "", "preco": 59.9, "gtin": "7891234567895", "pesoBruto": 0.3,
            "midia": {"imagens": {"internas": internas}}}))
        .unwrap();
        let n = new_product(&p);
        assert_eq!(
            (n.external_id.as_str(), n.sku.as_str(), n.name.as_str()),
            ("16059781281", "16059781281", "Camiseta azul M")
        );
        assert_eq!(
            (n.price, n.gtin.as_deref(), n.weight_kg),
            (Decimal::new(599, 1), Some("7891234567895"), Some(Decimal::new(3, 1)))
        );
        let urls: Vec<&str> = n.images.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(urls.len(), MAX_IMAGES);
        assert_eq!(urls[..2], ["https://s3.example/0.jpg", "https://s3.example/1.jpg"]);
        assert_eq!(urls[9], "https://s3.example/9.jpg");
        let body = serde_json::to_value(&n).unwrap();
        assert_eq!(body["images"][0], serde_json::json!({"url": "https://s3.example/0.jpg"}));
        let bare: Produto =
            serde_json::from_value(serde_json::json!({"id": 5, "nome": "Copo", "codigo": "C-1"})).unwrap();
        assert!(serde_json::to_value(new_product(&bare)).unwrap().get("images").is_none(), "no images: none sent");
    }
    use crate::envios360::types::StatusWebhook;

    #[test]
    fn the_hubs_statuses_are_ponte_shipping_statuses_both_ways() {
        // The contract's status webhook.
        let body = r#"{"event_id":"5f0c1c3e-1","event":"order.status_changed","occurred_at":"2026-03-02T14:05:11Z",
          "order":{"id":"o_81723","external_id":"12345678","status":"in_transit","previous_status":"awaiting_shipment"}}"#;
        let order = serde_json::from_str::<StatusWebhook>(body).unwrap().order.unwrap();
        assert_eq!(ShippingStatus::from(order.status), ShippingStatus::InTransit);
        assert_eq!(order.previous_status.map(ShippingStatus::from), Some(ShippingStatus::AwaitingShipment));
        use OrderStatus::*;
        for s in [Received, InPackingList, AwaitingShipment, InTransit, Delivered, Cancelled] {
            assert_eq!(OrderStatus::try_from(ShippingStatus::from(s)), Ok(s));
        }
        assert_eq!(OrderStatus::try_from(ShippingStatus::Unspecified), Err(Unspecified));
        // The hub's order is ponte's: a later status is a later shipping status.
        assert!(ShippingStatus::from(InTransit) as i32 > ShippingStatus::from(AwaitingShipment) as i32);
    }
}
