//! Pure conversions between Bling's records and ponte's values: a product's `situacao`
//! (A/I/E) as a [`ProductState`], the default situações of the sales module, whether a
//! product already holds a tenant's mapped fields, and the product bodies ponte writes
//! (Bling's PUT replaces a whole product).

use serde_json::{Map, Value};

use super::resources::{Produto, ProdutoResumo, produto_numbers};
use crate::json::{same_text, scalar_text};

/// A product's state, as Bling's `situacao` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductState {
    /// `A`.
    Active,
    /// `I`.
    Inactive,
    /// `E` (excluído): kept by Bling, listed only when asked for.
    Deleted,
}

/// Why a `situacao` is not one ponte knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a Bling product situação (A, I or E)")]
pub struct UnknownSituacao(String);

impl TryFrom<&str> for ProductState {
    type Error = UnknownSituacao;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        match s.trim() {
            "A" => Ok(Self::Active),
            "I" => Ok(Self::Inactive),
            "E" => Ok(Self::Deleted),
            other => Err(UnknownSituacao(ponte_core::error::quote(other))),
        }
    }
}

impl From<ProductState> for &'static str {
    fn from(s: ProductState) -> Self {
        match s {
            ProductState::Active => "A",
            ProductState::Inactive => "I",
            ProductState::Deleted => "E",
        }
    }
}

impl Produto {
    /// The product's state; `None` when Bling sent none ponte knows.
    pub fn state(&self) -> Option<ProductState> {
        ProductState::try_from(self.situacao.as_str()).ok()
    }

    /// Whether the product already holds every one of `fields` (a tenant's mapped fields, in
    /// Bling's names): the same text, or the same number however written.
    pub fn holds(&self, fields: &Map<String, Value>) -> bool {
        let current = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => return false,
        };
        fields.iter().all(|(k, wanted)| same_value(wanted, current.get(k).unwrap_or(&Value::Null)))
    }

    /// The body of a PUT that writes `fields` over the product as Bling has it.
    pub fn with_fields(&self, fields: Map<String, Value>) -> Map<String, Value> {
        let mut merged = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        merged.extend(fields);
        merged
    }
}

impl ProdutoResumo {
    /// The item's state; `None` when Bling sent none ponte knows.
    pub fn state(&self) -> Option<ProductState> {
        ProductState::try_from(self.situacao.as_str()).ok()
    }
}

/// The body of a POST that creates a product from a tenant's mapped fields: numbers as
/// numbers, and a simple product (`tipo` P, `formato` S) unless the fields say otherwise.
pub fn new_produto(mut fields: Map<String, Value>) -> Map<String, Value> {
    produto_numbers(&mut fields);
    fields.entry("tipo").or_insert(Value::String("P".into()));
    fields.entry("formato").or_insert(Value::String("S".into()));
    fields
}

/// `null` and absent are the same; scalars compare by text (and as numbers); the rest exactly.
fn same_value(wanted: &Value, held: &Value) -> bool {
    let text = |v: &Value| if v.is_null() { Some(String::new()) } else { scalar_text(v) };
    match (text(wanted), text(held)) {
        (Some(a), Some(b)) => same_text(&a, &b),
        _ => wanted == held,
    }
}

/// The situações every account's sales module (Vendas) starts with, by their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SituacaoVenda {
    /// 6.
    EmAberto,
    /// 15.
    EmAndamento,
    /// 9.
    Atendido,
    /// 12.
    Cancelado,
}

impl TryFrom<i64> for SituacaoVenda {
    /// A situação the merchant created (or another module's).
    type Error = i64;

    fn try_from(id: i64) -> Result<Self, Self::Error> {
        match id {
            6 => Ok(Self::EmAberto),
            15 => Ok(Self::EmAndamento),
            9 => Ok(Self::Atendido),
            12 => Ok(Self::Cancelado),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `GET /produtos/{id}` as the examples of Bling's OpenAPI reference (`ProdutosDadosDTO`)
    /// compose it.
    fn produto() -> Produto {
        let body: crate::bling::types::Data<Produto> =
            serde_json::from_str(include_str!("../../fixtures/bling-produto.json")).unwrap();
        body.data
    }

    #[test]
    fn situacoes_are_states() {
        assert_eq!(produto().state(), Some(ProductState::Active));
        for (s, state) in [("A", ProductState::Active), ("I", ProductState::Inactive), ("E", ProductState::Deleted)] {
            assert_eq!(ProductState::try_from(s), Ok(state));
            assert_eq!(<&str>::from(state), s);
        }
        assert!(ProductState::try_from("X").is_err() && ProductState::try_from("").is_err());
        assert_eq!([6, 15, 9, 12].map(|id| SituacaoVenda::try_from(id).is_ok()), [true; 4]);
        assert_eq!(SituacaoVenda::try_from(24), Err(24));
    }

    #[test]
    fn a_product_holds_fields_written_as_bitrix24_returns_them() {
        let p = produto();
        assert_eq!((p.id.get(), p.variacoes.len(), p.parent_id()), (123456789, 1, None));
        let fields = |v: Value| v.as_object().unwrap().clone();
        // What the builtin mapping reads back from a Bitrix24 product: text for every number.
        assert!(p.holds(&fields(json!({"nome": "Produto 1", "codigo": "CODE_123", "preco": "1.00", "situacao": "A",
                                        "itensPorCaixa": 1, "categoria": {"id": 123456789}, "naoExiste": null}))));
        assert!(!p.holds(&fields(json!({"preco": "1.01"}))));
        assert!(!p.holds(&fields(json!({"categoria": {"id": 1}}))));
        assert!(!p.holds(&fields(json!({"marca": "Outra"}))));
        // PUT replaces the whole product: what the mapping does not name goes back as it was.
        let put = p.with_fields(fields(json!({"nome": "Produto 2"})));
        assert_eq!(
            (put["nome"].clone(), put["codigo"].clone(), put["id"].clone()),
            (json!("Produto 2"), json!("CODE_123"), json!(123456789))
        );
        assert_eq!(put["tributacao"]["origem"], 0);
        assert_eq!(put["estoque"]["localizacao"], "14A");
        let post = new_produto(fields(json!({"nome": "Copo", "preco": "4.99", "formato": "E"})));
        assert_eq!(Value::Object(post), json!({"nome": "Copo", "preco": 4.99, "formato": "E", "tipo": "P"}));
    }
}
