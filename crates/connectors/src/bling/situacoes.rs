//! The transitions between situações of a module (`/situacoes/transicoes`): which moves the
//! module knows, listed, and created where setup wants one.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{
    SYSTEM,
    client::{BlingApi, Caller},
    resources::{IdRef, Saved},
};
use crate::error::ConnectorError;

/// A situação as a transition names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SituacaoRef {
    pub id: i64,
    #[serde(default)]
    pub nome: String,
}

/// `GET /situacoes/modulos/{id}/transicoes` item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Transicao {
    pub id: i64,
    #[serde(default)]
    pub ativo: Option<bool>,
    pub situacao_origem: SituacaoRef,
    pub situacao_destino: SituacaoRef,
}

/// `POST /situacoes/transicoes`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NovaTransicao {
    pub situacao_origem: IdRef,
    pub situacao_destino: IdRef,
    pub ativo: bool,
    /// Stock and accounting actions run on the move (none: a shipping step moves no stock).
    pub acoes: Vec<i64>,
}

impl BlingApi {
    /// The transitions of module `modulo`.
    pub async fn transicoes(&self, caller: Caller<'_>, modulo: i64) -> Result<Vec<Transicao>, ConnectorError> {
        self.get(caller, &format!("/situacoes/modulos/{modulo}/transicoes"), &[]).await
    }

    /// Creates a transition; its id.
    pub async fn create_transicao(&self, caller: Caller<'_>, nova: &NovaTransicao) -> Result<i64, ConnectorError> {
        let saved: Saved = self.json(caller, Method::POST, "/situacoes/transicoes", &[], Some(nova)).await?;
        if saved.id <= 0 {
            return Err(ConnectorError::Protocol {
                system: SYSTEM,
                message: format!("POST /situacoes/transicoes: id {}", saved.id),
            });
        }
        Ok(saved.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_reads_and_is_written_as_the_spec_shapes_it() {
        let t: Transicao = serde_json::from_value(serde_json::json!({"id": 9, "ativo": true, "acoes": [12, 15],
            "modulo": {"id": 98310}, "situacaoOrigem": {"id": 15, "nome": "Em andamento"}, "situacaoDestino": {"id": 501}}))
        .unwrap();
        assert_eq!((t.situacao_origem.id, t.situacao_destino.id, t.situacao_destino.nome.as_str()), (15, 501, ""));
        let nova = NovaTransicao {
            situacao_origem: IdRef { id: 15 },
            situacao_destino: IdRef { id: 501 },
            ativo: true,
            acoes: vec![],
        };
        assert_eq!(
            serde_json::to_value(nova).unwrap(),
            serde_json::json!({"situacaoOrigem": {"id": 15}, "situacaoDestino": {"id": 501}, "ativo": true, "acoes": []})
        );
    }
}
