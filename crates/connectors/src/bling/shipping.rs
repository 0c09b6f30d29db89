//! What shipping reads of Bling's sales orders and products beyond the fields the other flows
//! type: an order's delivery data (`transporte`: freight and the delivery label's address) and a
//! product's gross weight, dimensions and image links (`midia.imagens`). Read from the records'
//! untyped remainder, leniently: a field that is absent or of another type reads as absent.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::resources::{PedidoVenda, Produto};
use crate::json::decimal_opt;

/// `transporte.etiqueta`: where the parcel goes. Every field is text in Bling; `null` reads as
/// empty, and a number (a CEP or house number sent as one) as its digits.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Etiqueta {
    #[serde(deserialize_with = "text")]
    pub nome: String,
    /// The street.
    #[serde(deserialize_with = "text")]
    pub endereco: String,
    #[serde(deserialize_with = "text")]
    pub numero: String,
    #[serde(deserialize_with = "text")]
    pub complemento: String,
    #[serde(deserialize_with = "text")]
    pub municipio: String,
    #[serde(deserialize_with = "text")]
    pub uf: String,
    #[serde(deserialize_with = "text")]
    pub cep: String,
    #[serde(deserialize_with = "text")]
    pub bairro: String,
}

fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(crate::json::scalar_text(&Value::deserialize(d)?).unwrap_or_default())
}

/// `transporte` of a sales order, as far as shipping reads it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Transporte {
    #[serde(with = "decimal_opt")]
    pub frete: Option<Decimal>,
    pub etiqueta: Option<Etiqueta>,
}

/// `dimensoes` of a product; `unidade_medida` 0 metres, 1 centimetres, 2 millimetres.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Dimensoes {
    #[serde(with = "decimal_opt")]
    pub largura: Option<Decimal>,
    #[serde(with = "decimal_opt")]
    pub altura: Option<Decimal>,
    #[serde(with = "decimal_opt")]
    pub profundidade: Option<Decimal>,
    pub unidade_medida: Option<i64>,
}

impl Dimensoes {
    /// Width, height and depth in centimetres, when all three are set and positive.
    pub fn centimetres(&self) -> Option<(Decimal, Decimal, Decimal)> {
        let factor = match self.unidade_medida.unwrap_or(1) {
            0 => Decimal::ONE_HUNDRED,
            1 => Decimal::ONE,
            2 => Decimal::new(1, 1),
            _ => return None,
        };
        let cm = |d: Option<Decimal>| d.filter(|d| *d > Decimal::ZERO).map(|d| (d * factor).normalize());
        Some((cm(self.largura)?, cm(self.altura)?, cm(self.profundidade)?))
    }
}

/// A field of a record's remainder as `T`, or its default when absent or of another shape.
fn lenient<T: for<'de> Deserialize<'de> + Default>(v: Option<&Value>) -> T {
    v.and_then(|v| T::deserialize(v).ok()).unwrap_or_default()
}

impl PedidoVenda {
    /// The order's delivery data.
    pub fn transporte(&self) -> Transporte {
        lenient(self.extra.get("transporte"))
    }
}

impl Produto {
    /// `pesoBruto` in kg, or `pesoLiquido` when the gross weight is not set.
    pub fn peso_kg(&self) -> Option<Decimal> {
        ["pesoBruto", "pesoLiquido"]
            .iter()
            .filter_map(|k| lenient::<Option<Number>>(self.extra.get(*k)).map(|n| n.0))
            .find(|p| *p > Decimal::ZERO)
    }

    pub fn dimensoes(&self) -> Dimensoes {
        lenient(self.extra.get("dimensoes"))
    }

    /// The links of the product's images, in the order Bling lists them: the images stored in
    /// Bling (`midia.imagens.internas`, signed links that expire) first, then external ones.
    pub fn image_links(&self) -> Vec<String> {
        let imagens = self.extra.get("midia").and_then(|m| m.get("imagens"));
        ["internas", "externas"]
            .iter()
            .filter_map(|k| imagens.and_then(|i| i.get(*k)).and_then(Value::as_array))
            .flatten()
            .filter_map(|i| i.get("link").and_then(Value::as_str))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A decimal written as a JSON number or numeric text.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct Number(#[serde(with = "crate::json::decimal")] Decimal);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_orders_delivery_label_and_freight_read_from_its_transporte() {
        let order: PedidoVenda = serde_json::from_value(json!({"id": 9, "transporte": {"frete": 12.5, "fretePorConta": 0,
            "etiqueta": {"nome": "Maria", "endereco": "Rua A", "numero": "10", "complemento": null, "municipio": "São Paulo",
                         "uf": "SP", "cep": "01001-000", "bairro": "Centro"}}}))
        .unwrap();
        let t = order.transporte();
        assert_eq!(t.frete, Some(Decimal::new(125, 1)));
        let e = t.etiqueta.unwrap();
        assert_eq!((e.endereco.as_str(), e.cep.as_str(), e.complemento.as_str()), ("Rua A", "01001-000", ""));
        let bare: PedidoVenda = serde_json::from_value(json!({"id": 9, "transporte": "?"})).unwrap();
        assert_eq!(bare.transporte(), Transporte::default());
    }

    #[test]
    fn a_products_weight_dimensions_and_images_read_from_its_remainder() {
        let p: Produto = serde_json::from_value(json!({"id": 7, "pesoBruto": 0, "pesoLiquido": "0.35",
            "dimensoes": {"largura": 0.2, "altura": 0.03, "profundidade": 0.3, "unidadeMedida": 0},
            "midia": {"imagens": {"externas": [{"link": "https://cdn.example/b.jpg"}],
                                  "internas": [{"link": "https://s3.example/a.jpg?sig=1", "linkMiniatura": "x"}, {"link": " "}]}}}))
        .unwrap();
        assert_eq!(p.peso_kg(), Some(Decimal::new(35, 2)));
        assert_eq!(p.dimensoes().centimetres(), Some((Decimal::from(20), Decimal::from(3), Decimal::from(30))));
        assert_eq!(p.image_links(), ["https://s3.example/a.jpg?sig=1", "https://cdn.example/b.jpg"]);
        let none: Produto = serde_json::from_value(json!({"id": 7, "midia": {"imagens": {"internas": null}}})).unwrap();
        assert!(none.image_links().is_empty() && none.peso_kg().is_none() && none.dimensoes().centimetres().is_none());
    }
}
