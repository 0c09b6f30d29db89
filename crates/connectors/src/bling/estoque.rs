//! A sales order's stock written off a depósito exactly once. Bling refuses a second write-off
//! of the same order (a 400 on the `estoque` element), which is also what an account that posts
//! stock itself on the order's situação answers: either way the stock is out, and a retry after
//! an answer lost on the way learns it from that refusal instead of writing it off twice.

use ponte_core::BlingId;

use super::client::{BlingApi, Caller};
use crate::error::ConnectorError;

/// What a write-off call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lancamento {
    /// Written off now.
    Lancado,
    /// Bling already had the order's stock written off.
    JaLancado,
}

/// Whether Bling refused a write-off because the order's stock is already out.
pub fn already_written_off(e: &ConnectorError) -> bool {
    matches!(e, ConnectorError::Rejected { status: 400, fields, .. } if fields.iter().any(|f| f.starts_with("estoque:")))
}

impl BlingApi {
    /// Writes order `pedido`'s stock off `deposito`, once.
    pub async fn lancar_estoque_uma_vez(
        &self,
        caller: Caller<'_>,
        pedido: BlingId,
        deposito: BlingId,
    ) -> Result<Lancamento, ConnectorError> {
        match self.lancar_estoque(caller, pedido.get(), Some(deposito.get())).await {
            Ok(()) => Ok(Lancamento::Lancado),
            Err(e) if already_written_off(&e) => Ok(Lancamento::JaLancado),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;
    use crate::bling::client::error_from;

    #[test]
    fn a_second_write_off_reads_as_done_and_other_refusals_do_not() {
        let twice = r#"{"error":{"type":"VALIDATION_ERROR","message":"Não foi possível salvar o registro","description":"x","fields":[{"code":60,"msg":"O estoque desta venda já foi lançado","element":"estoque","namespace":"VENDAS"}]}}"#;
        assert!(already_written_off(&error_from(StatusCode::BAD_REQUEST, twice.as_bytes())));
        let other = r#"{"error":{"type":"VALIDATION_ERROR","message":"m","description":"d","fields":[{"code":4,"msg":"O depósito não foi encontrado","element":"deposito"}]}}"#;
        assert!(!already_written_off(&error_from(StatusCode::BAD_REQUEST, other.as_bytes())));
        assert!(!already_written_off(&error_from(StatusCode::INTERNAL_SERVER_ERROR, b"")));
    }
}
