//! What every sandbox account starts with: its depósitos, canais de venda (lojas) and formas
//! de pagamento, the "consumidor final" contact, and the situações of its Vendas and Compras
//! modules (the Vendas defaults with Bling's ids and normalized `valor`).

use serde_json::{Value, json};

/// The account's general (default) depósito.
pub const DEPOSITO_GERAL: i64 = 14_886_873_196;
/// The account's depósitos: (id, descrição, padrão).
pub const DEPOSITOS: [(i64, &str, bool); 2] =
    [(DEPOSITO_GERAL, "Depósito Geral", true), (14_886_873_197, "Loja Centro", false)];

/// The point of sale's sales channel (loja).
pub const CANAL_PDV: i64 = 204_511_339;
/// The account's sales channels: (id, descrição, tipo).
pub const CANAIS: [(i64, &str, &str); 2] =
    [(CANAL_PDV, "PDV Loja Centro", "Api"), (204_511_340, "PDV Loja Shopping", "Api")];

/// The formas de pagamento every account starts with: (id, descrição, tipoPagamento).
pub const FORMAS: [(i64, &str, i64); 4] = [
    (11_010_299, "Dinheiro", 1),
    (11_010_300, "Cartão de crédito", 3),
    (11_010_301, "Cartão de débito", 4),
    (11_010_302, "Pix", 20),
];

/// The payment types of NF-e (`tPag`) Bling accepts as `tipoPagamento`.
pub const TIPOS_PAGAMENTO: [i64; 20] = [1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 90, 99];

/// The seeded formas, as the account stores them.
pub fn formas() -> Vec<Value> {
    FORMAS
        .iter()
        .map(|(id, descricao, tipo)| {
            json!({"id": id, "descricao": descricao, "tipoPagamento": tipo, "situacao": 1, "fixa": false,
                   "padrao": i64::from(*tipo == 1), "finalidade": 3})
        })
        .collect()
}

/// Whether `id` is one of the account's depósitos.
pub fn is_deposito(id: i64) -> bool {
    DEPOSITOS.iter().any(|d| d.0 == id)
}

/// Whether `id` is one of the account's canais de venda.
pub fn is_canal(id: i64) -> bool {
    CANAIS.iter().any(|c| c.0 == id)
}

/// The "consumidor final" contact: the customer of an anonymous sale.
pub const CONSUMIDOR_FINAL: i64 = 16_891_556_421;

/// The consumidor final as the account stores it.
pub fn consumidor_final_record() -> Value {
    json!({"id": CONSUMIDOR_FINAL, "nome": "Consumidor Final", "codigo": "", "situacao": "A", "numeroDocumento": "",
           "telefone": "", "celular": "", "tipo": "F", "indicadorIe": 9, "email": "",
           "_incluido": "2024-01-01T00:00:00Z"})
}

/// The Vendas (sales orders) module.
pub const MODULO_VENDAS: i64 = 98_310;
/// The Compras (purchase orders) module. Its ids are the sandbox's own: the notes give none.
pub const MODULO_COMPRAS: i64 = 98_311;

/// The Vendas module's default situações: (id, valor, nome).
pub const SITUACOES_VENDAS: [(i64, i64, &str); 7] = [
    (6, 0, "Em aberto"),
    (9, 1, "Atendido"),
    (12, 2, "Cancelado"),
    (15, 3, "Em andamento"),
    (18, 4, "Venda agenciada"),
    (21, 10, "Em digitação"),
    (24, 11, "Verificado"),
];

const SITUACOES_COMPRAS: [(i64, i64, &str); 4] =
    [(28, 0, "Em aberto"), (31, 1, "Atendido"), (34, 2, "Cancelado"), (37, 3, "Em andamento")];

/// The Vendas module's transitions every account starts with: (id, origem, destino). None
/// carries an action: changing a situação moves no stock.
pub const TRANSICOES: [(i64, i64, i64); 6] = [(1, 6, 15), (2, 6, 9), (3, 6, 12), (4, 15, 9), (5, 15, 12), (6, 9, 12)];

/// The colour Bling gives a situação by default.
pub const COR: &str = "#E9DC40";

/// A situação of a module, default or the merchant's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Situacao {
    pub id: i64,
    pub modulo: i64,
    pub nome: String,
    /// The default situação it behaves as (0 for the defaults themselves).
    pub id_herdado: i64,
    pub cor: String,
    /// Bling's normalized status, taken from the one it inherits.
    pub valor: i64,
}

impl Situacao {
    /// As `GET /situacoes/{id}` and the module's list show it.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "nome": self.nome, "idHerdado": self.id_herdado, "cor": self.cor})
    }
}

/// Every module's default situações.
pub fn situacoes() -> Vec<Situacao> {
    let of = |modulo: i64, list: &[(i64, i64, &str)]| -> Vec<Situacao> {
        list.iter()
            .map(|(id, valor, nome)| Situacao {
                id: *id,
                modulo,
                nome: (*nome).to_owned(),
                id_herdado: 0,
                cor: COR.into(),
                valor: *valor,
            })
            .collect()
    };
    let mut all = of(MODULO_VENDAS, &SITUACOES_VENDAS);
    all.extend(of(MODULO_COMPRAS, &SITUACOES_COMPRAS));
    all
}
