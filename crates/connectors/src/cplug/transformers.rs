//! A Bling product as the product ponte serves to CPLUG: the tenant's mapped fields (`name`,
//! `sku`, `price`, `unit`, in CPLUG's names) over what Bling says, and a variation placed in
//! its parent's grid or, for a store without the grid module, made a product of its own whose
//! name carries its attributes, as the contract says.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::types::{Product, Variation};
use crate::bling::{resources::Produto, transformers::ProductState};

/// CPLUG's product for Bling's `p`, with the tenant's mapped fields `mapped` over the
/// defaults; `grid`: the store uses CPLUG's grid module.
///
/// ```
/// # use ponte_connectors::cplug::transformers::from_bling;
/// let p: ponte_connectors::bling::resources::Produto = serde_json::from_value(serde_json::json!({
///     "id": 7, "nome": "Camiseta", "codigo": "CAM", "preco": 59.9, "situacao": "A",
///     "variacao": {"nome": "Cor:Azul;Tamanho:M", "produtoPai": {"id": 6}}})).unwrap();
/// let alone = from_bling(&p, &Default::default(), false);
/// assert_eq!((alone.name.as_str(), alone.unit.as_str()), ("Camiseta (Azul, M)", "UN"));
/// let in_grid = from_bling(&p, &Default::default(), true);
/// assert_eq!(in_grid.parent_external_id.as_deref(), Some("6"));
/// assert_eq!(in_grid.variation.unwrap().attributes["cor"], "Azul");
/// ```
pub fn from_bling(p: &Produto, mapped: &Map<String, Value>, grid: bool) -> Product {
    let text = |k: &str, default: &str| mapped.get(k).and_then(Value::as_str).unwrap_or(default).to_owned();
    let price = match mapped.get("price") {
        Some(Value::Number(n)) => n.to_string().parse().ok(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .or(p.preco)
    .unwrap_or(Decimal::ZERO)
    .round_dp(2);
    let mut product = Product {
        external_id: p.id.to_string(),
        sku: text("sku", &p.codigo),
        name: text("name", &p.nome),
        price,
        active: p.state() == Some(ProductState::Active),
        // CPLUG requires a unit; a Bling product without one (a variation often has none of
        // its own) is sold by the unit, Bling's own default.
        unit: Some(text("unit", &p.unidade)).filter(|u| !u.trim().is_empty()).unwrap_or_else(|| "UN".into()),
        parent_external_id: None,
        variation: None,
    };
    if let Some(v) = p.variacao.as_ref().filter(|v| v.produto_pai.is_some()) {
        // CPLUG keys attributes in lower case and keeps only those with a value.
        let attributes: BTreeMap<String, String> = v
            .atributos()
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect();
        if grid {
            product.parent_external_id = p.parent_id().map(|pai| pai.to_string());
            product.variation = Some(Variation { name: v.nome.clone(), attributes });
        } else if !attributes.is_empty() && !mapped.contains_key("name") {
            let label: Vec<String> = attributes.into_values().collect();
            product.name = format!("{} ({})", product.name, label.join(", "));
        }
    }
    product
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mapped_fields_go_over_blings_and_a_grid_variation_names_its_parent() {
        // A variation as `GET /produtos/{id}` returns it.
        let p: Produto = serde_json::from_value(json!({"id": 16059781281_i64, "nome": "Camiseta Verde G",
            "codigo": "CAM-VD-G", "preco": 59.9, "situacao": "I", "formato": "S", "tipo": "P", "unidade": "",
            "variacao": {"nome": "Tamanho:G;Cor:Verde;Gola:", "ordem": 1, "produtoPai": {"id": 16059781200_i64}}}))
        .unwrap();
        let mapped = json!({"name": "Camiseta", "price": "49.999", "unit": "PC"});
        let in_grid = from_bling(&p, mapped.as_object().unwrap(), true);
        assert_eq!(
            (in_grid.name.as_str(), in_grid.sku.as_str(), in_grid.unit.as_str()),
            ("Camiseta", "CAM-VD-G", "PC")
        );
        assert_eq!((in_grid.price, in_grid.active), (Decimal::new(5000, 2), false));
        assert_eq!(in_grid.parent_external_id.as_deref(), Some("16059781200"));
        let v = in_grid.variation.unwrap();
        assert_eq!(
            v.attributes.into_iter().collect::<Vec<_>>(),
            [("cor".into(), "Verde".into()), ("tamanho".into(), "G".into())]
        );
        let alone = from_bling(&p, &Map::new(), false);
        assert_eq!((alone.name.as_str(), alone.unit.as_str()), ("Camiseta Verde G (Verde, G)", "UN"));
        assert!(alone.parent_external_id.is_none() && alone.variation.is_none());
    }
}
