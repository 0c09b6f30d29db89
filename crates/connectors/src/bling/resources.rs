//! Bling's resources as the flows use them: products (with variations), sales orders,
//! situações, formas de pagamento, depósitos, stock, sales channels and contacts. Only the
//! fields ponte reads or writes are typed; the rest of a product is kept as JSON where a
//! mapping may need any field.

use ponte_core::BlingId;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::json::{bling_id, bling_id_opt, decimal, decimal_opt};

/// A reference to another resource: `{"id": 123}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct IdRef {
    pub id: i64,
}

/// A product as `GET /produtos` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProdutoResumo {
    #[serde(with = "bling_id")]
    pub id: BlingId,
    /// Set when the item is a variation.
    #[serde(default, with = "bling_id_opt")]
    pub id_produto_pai: Option<BlingId>,
    #[serde(default)]
    pub nome: String,
    /// The SKU; may be empty.
    #[serde(default)]
    pub codigo: String,
    #[serde(default, with = "decimal_opt")]
    pub preco: Option<Decimal>,
    /// P produto, S serviço, N …
    #[serde(default)]
    pub tipo: String,
    /// A ativo, I inativo.
    #[serde(default)]
    pub situacao: String,
    /// S simples, V com variações, E com composição.
    #[serde(default)]
    pub formato: String,
}

/// A variation's place in its grid: `{"nome": "Tamanho:G;Cor:Verde", "produtoPai": {"id"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Variacao {
    #[serde(default)]
    pub nome: String,
    #[serde(default)]
    pub ordem: Option<i64>,
    #[serde(default)]
    pub produto_pai: Option<IdRef>,
}

impl Variacao {
    /// The attributes of a variation name: "Tamanho:G;Cor:Verde" → [("Tamanho","G"), ("Cor","Verde")].
    pub fn atributos(&self) -> Vec<(String, String)> {
        self.nome
            .split(';')
            .filter_map(|kv| kv.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .filter(|(k, _)| !k.is_empty())
            .collect()
    }
}

/// A product as `GET /produtos/{id}` returns it; the full JSON stays in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Produto {
    #[serde(with = "bling_id")]
    pub id: BlingId,
    #[serde(default)]
    pub nome: String,
    #[serde(default)]
    pub codigo: String,
    #[serde(default, with = "decimal_opt")]
    pub preco: Option<Decimal>,
    #[serde(default)]
    pub situacao: String,
    #[serde(default)]
    pub formato: String,
    #[serde(default)]
    pub tipo: String,
    #[serde(default)]
    pub unidade: String,
    #[serde(default)]
    pub gtin: String,
    #[serde(default)]
    pub variacoes: Vec<Produto>,
    #[serde(default)]
    pub variacao: Option<Variacao>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Top-level numeric fields of a Bling product (`ProdutosDadosDTO`, `ProdutosDadosBaseDTO`).
const PRODUTO_NUMBERS: &[&str] =
    &["id", "idProdutoPai", "preco", "precoCusto", "pesoLiquido", "pesoBruto", "volumes", "itensPorCaixa", "condicao"];

/// Makes the numeric fields of a product body numbers where they came as numeric text (values
/// read from systems that return every number as a string, such as Bitrix24).
pub fn produto_numbers(body: &mut serde_json::Map<String, serde_json::Value>) {
    for key in PRODUTO_NUMBERS {
        if let Some(serde_json::Value::String(s)) = body.get(*key)
            && let Ok(n) = s.trim().parse::<serde_json::Number>()
        {
            body.insert((*key).to_owned(), serde_json::Value::Number(n));
        }
    }
}

impl Produto {
    /// The parent's id when this product is a variation.
    pub fn parent_id(&self) -> Option<BlingId> {
        self.variacao.as_ref().and_then(|v| v.produto_pai).and_then(|p| BlingId::new(p.id))
    }
}

/// `POST|PUT|PATCH /produtos` answer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Saved {
    pub id: i64,
}

/// Contact on an order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContatoRef {
    pub id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nome: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tipo_pessoa: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub numero_documento: String,
}

/// `situacao` of an order: the account's situação id and Bling's normalized value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct SituacaoRef {
    pub id: i64,
    #[serde(default)]
    pub valor: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemPedido {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub codigo: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unidade: String,
    #[serde(with = "decimal")]
    pub quantidade: Decimal,
    /// Percent.
    #[serde(default, with = "decimal_opt", skip_serializing_if = "Option::is_none")]
    pub desconto: Option<Decimal>,
    /// Unit price.
    #[serde(with = "decimal")]
    pub valor: Decimal,
    #[serde(default)]
    pub descricao: String,
    pub produto: IdRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Parcela {
    /// YYYY-MM-DD.
    pub data_vencimento: String,
    #[serde(with = "decimal")]
    pub valor: Decimal,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observacoes: String,
    pub forma_pagamento: IdRef,
}

/// A sales order's discount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Desconto {
    #[serde(with = "decimal")]
    pub valor: Decimal,
    /// REAL or PERCENTUAL.
    pub unidade: String,
}

/// `POST /pedidos/vendas` body (also the PUT body: PUT replaces the whole order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NovoPedidoVenda {
    pub contato: IdRef,
    /// YYYY-MM-DD.
    pub data: String,
    pub data_saida: String,
    pub data_prevista: String,
    /// ponte's idempotency marker: the point of sale's sale id.
    pub numero_loja: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loja: Option<IdRef>,
    /// The situação the order is created in (Bling's default, Em aberto, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub situacao: Option<IdRef>,
    pub itens: Vec<ItemPedido>,
    pub parcelas: Vec<Parcela>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desconto: Option<Desconto>,
    #[serde(default, with = "decimal_opt", skip_serializing_if = "Option::is_none")]
    pub outras_despesas: Option<Decimal>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observacoes: String,
}

/// Bling answers `null` for some empty fields (an order's `numeroLoja`, say): read as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A sales order as read back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PedidoVenda {
    #[serde(with = "bling_id")]
    pub id: BlingId,
    #[serde(default)]
    pub numero: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub numero_loja: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: String,
    #[serde(default, with = "decimal_opt")]
    pub total: Option<Decimal>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub contato: ContatoRef,
    #[serde(default, deserialize_with = "null_as_default")]
    pub situacao: SituacaoRef,
    #[serde(default)]
    pub loja: Option<IdRef>,
    #[serde(default)]
    pub itens: Vec<ItemPedido>,
    #[serde(default)]
    pub parcelas: Vec<Parcela>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A module of situações (`GET /situacoes/modulos`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Modulo {
    pub id: i64,
    #[serde(default)]
    pub nome: String,
    #[serde(default)]
    pub descricao: String,
    #[serde(default)]
    pub criar_situacoes: Option<bool>,
}

/// A situação of a module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Situacao {
    pub id: i64,
    #[serde(default)]
    pub nome: String,
    #[serde(default)]
    pub id_herdado: Option<i64>,
    #[serde(default)]
    pub cor: String,
}

/// `POST /situacoes`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NovaSituacao {
    pub id_modulo_sistema: i64,
    pub nome: String,
    pub id_herdado: i64,
    pub cor: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FormaPagamento {
    pub id: i64,
    #[serde(default)]
    pub descricao: String,
    #[serde(default)]
    pub tipo_pagamento: Option<i64>,
    /// 1 active, 0 inactive.
    #[serde(default)]
    pub situacao: Option<i64>,
    #[serde(default)]
    pub padrao: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Deposito {
    pub id: i64,
    #[serde(default)]
    pub descricao: String,
    #[serde(default)]
    pub situacao: Option<i64>,
    #[serde(default)]
    pub padrao: Option<bool>,
    #[serde(default)]
    pub desconsiderar_saldo: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SaldoDeposito {
    pub id: i64,
    #[serde(default, with = "decimal_opt")]
    pub saldo_fisico: Option<Decimal>,
    #[serde(default, with = "decimal_opt")]
    pub saldo_virtual: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProdutoCodigo {
    pub id: i64,
    #[serde(default)]
    pub codigo: String,
}

/// `GET /estoques/saldos` item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Saldo {
    pub produto: ProdutoCodigo,
    #[serde(default, with = "decimal_opt")]
    pub saldo_fisico_total: Option<Decimal>,
    #[serde(default, with = "decimal_opt")]
    pub saldo_virtual_total: Option<Decimal>,
    #[serde(default)]
    pub depositos: Vec<SaldoDeposito>,
}

/// `POST /estoques`: B balanço, E entrada, S saída.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MovimentoEstoque {
    pub produto: IdRef,
    pub deposito: IdRef,
    pub operacao: String,
    #[serde(with = "decimal")]
    pub quantidade: Decimal,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observacoes: String,
}

/// A sales channel ("loja").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CanalVenda {
    pub id: i64,
    #[serde(default)]
    pub descricao: String,
    #[serde(default)]
    pub tipo: String,
    #[serde(default)]
    pub situacao: Option<i64>,
}

/// `POST /contatos`: `nome`, `tipo` (F física, J jurídica, E estrangeira) and `situacao` are required.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NovoContato {
    pub nome: String,
    pub tipo: String,
    /// A ativo.
    pub situacao: String,
    /// CPF or CNPJ, digits only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub numero_documento: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Contato {
    pub id: i64,
    #[serde(default)]
    pub nome: String,
    #[serde(default)]
    pub codigo: String,
    #[serde(default)]
    pub situacao: String,
    #[serde(default)]
    pub numero_documento: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_variation_reads_its_parent_and_attributes() {
        let p: Produto = serde_json::from_value(serde_json::json!({
            "id": 16059781281_i64, "nome": "Camiseta Verde G", "codigo": "CAM-VD-G", "preco": 59.9,
            "situacao": "A", "formato": "S", "tipo": "P",
            "variacao": {"nome": "Tamanho:G;Cor:Verde", "ordem": 1, "produtoPai": {"id": 16059781200_i64}},
            "estoque": {"minimo": 1}
        }))
        .unwrap();
        assert_eq!(p.parent_id(), BlingId::new(16059781200));
        assert_eq!(
            p.variacao.unwrap().atributos(),
            [("Tamanho".to_owned(), "G".to_owned()), ("Cor".to_owned(), "Verde".to_owned())]
        );
        assert_eq!(p.extra["estoque"]["minimo"], 1);
        assert_eq!(p.preco, Some(Decimal::new(599, 1)));
    }

    #[test]
    fn an_order_listed_with_null_fields_reads_them_as_empty() {
        let listed: PedidoVenda = serde_json::from_value(json!({"id": 9, "numero": 3, "numeroLoja": null,
            "data": "2026-11-30", "contato": null, "situacao": {"id": 6, "valor": 0}, "loja": null}))
        .unwrap();
        assert_eq!((listed.id.get(), listed.numero_loja.as_str(), listed.situacao.id), (9, "", 6));
        assert!(serde_json::from_value::<PedidoVenda>(json!({"id": 9, "numeroLoja": 5})).is_err());
    }

    #[test]
    fn an_order_body_serializes_as_bling_expects() {
        let o = NovoPedidoVenda {
            contato: IdRef { id: 1 },
            data: "2026-03-02".into(),
            data_saida: "2026-03-02".into(),
            data_prevista: "2026-03-02".into(),
            numero_loja: "V-000123".into(),
            loja: Some(IdRef { id: 204 }),
            itens: vec![ItemPedido {
                codigo: "CAM-AZ-M".into(),
                unidade: String::new(),
                quantidade: Decimal::from(2),
                desconto: None,
                valor: Decimal::new(5990, 2),
                descricao: "Camiseta azul M".into(),
                produto: IdRef { id: 77 },
            }],
            parcelas: vec![Parcela {
                data_vencimento: "2026-03-02".into(),
                valor: Decimal::new(11980, 2),
                observacoes: String::new(),
                forma_pagamento: IdRef { id: 11010299 },
            }],
            desconto: None,
            outras_despesas: None,
            situacao: Some(IdRef { id: 9 }),
            observacoes: String::new(),
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["situacao"]["id"], 9);
        assert!(v.get("outrasDespesas").is_none());
        assert_eq!(v["numeroLoja"], "V-000123");
        assert_eq!(v["parcelas"][0]["formaPagamento"]["id"], 11010299);
        assert_eq!(v["itens"][0]["valor"], 59.9);
        assert!(v.get("desconto").is_none());
    }
}
