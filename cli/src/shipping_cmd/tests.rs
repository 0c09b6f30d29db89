use ponte_proto::v1::{ShipmentHistoryEntry, ShipmentProduct};

use super::*;

fn shipment() -> Shipment {
    Shipment {
        bling_order_id: 12345678,
        bling_numero: "71".into(),
        envios360_order_id: "o_81723".into(),
        status: ShippingStatus::InTransit as i32,
        tracking_code: "AA123456789BR".into(),
        attention: "changed in Bling after dispatch, not forwarded (360Envios: in transit)".into(),
        update_time: Some(ponte_core::time::to_timestamp(1_772_460_311_000)),
        products: vec![ShipmentProduct {
            bling_product_id: 16059781281,
            sku: "CAM-AZ-M".into(),
            quantity: "2".into(),
            approval: ProductApproval::Rejected as i32,
            rejection_reason: "Foto fora do padrão".into(),
            ..Default::default()
        }],
        history: vec![ShipmentHistoryEntry {
            trigger: "360Envios order.status_changed".into(),
            action: "SHIPPING_STATUS_IN_TRANSIT: moved the Bling order to 'Em rota de entrega' (503)".into(),
            outcome: ponte_proto::v1::EventOutcome::Applied as i32,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn shipments_print_as_an_aligned_table_with_what_to_look_at() {
    let waiting = Shipment { bling_order_id: 9, waiting_reason: "fill in the CEP".into(), ..Default::default() };
    let text = shipments_table(&[shipment(), waiting]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("ORDER     NUMBER  STATUS      360 ORDER  TRACKING"), "{text}");
    assert!(
        lines[1].starts_with("12345678  71      in transit  o_81723    AA123456789BR  2026-03-02 14:05:11"),
        "{text}"
    );
    assert!(lines[1].ends_with("changed in Bling after dispatch, not forwarded (360Envios: in transit)"), "{text}");
    assert!(lines[2].starts_with("9                 waiting") && lines[2].ends_with("fill in the CEP"), "{text}");
}

#[test]
fn a_shipment_shows_its_products_and_history_as_text_and_json() {
    let text = shipment_text(&shipment());
    assert!(text.contains("status      in transit\n"), "{text}");
    assert!(text.contains("16059781281  CAM-AZ-M  2                 rejected  Foto fora do padrão"), "{text}");
    assert!(text.contains("360Envios order.status_changed  applied  SHIPPING_STATUS_IN_TRANSIT"), "{text}");
    let v = shipment_json(&shipment());
    assert_eq!((v["status"].as_str(), v["products"][0]["approval"].as_str()), (Some("in transit"), Some("rejected")));
    assert_eq!(v["history"][0]["outcome"], "applied");
}

#[test]
fn setup_steps_say_what_was_done() {
    let steps = [
        SetUpStep {
            subject: "situação 'Em romaneio'".into(),
            action: SetUpAction::Created as i32,
            bling_situacao_id: 501,
            detail: "created".into(),
        },
        SetUpStep { subject: "map X".into(), action: SetUpAction::WouldCreate as i32, ..Default::default() },
    ];
    let text = steps_table(&steps);
    assert!(text.contains("created       situação 'Em romaneio'  501       created"), "{text}");
    assert!(text.contains("would create  map X                   -"), "{text}");
}
