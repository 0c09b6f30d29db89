//! The calls on Bling's contacts a sale needs: the customer found by CPF/CNPJ (Bling compares
//! the digits only), or created when the account has none. The "consumidor final" contact of
//! anonymous sales is read in [`super::calls`].

use ponte_core::BlingId;
use reqwest::Method;

use super::{
    SYSTEM,
    client::{BlingApi, Caller},
    resources::{Contato, NovoContato, Saved},
};
use crate::error::ConnectorError;

impl BlingApi {
    /// The account's contacts with CPF/CNPJ `documento` (digits only), excluded ones left out.
    /// `criterio` 1 (all): Bling's default lists only the most recently added.
    pub async fn contatos_por_documento(
        &self,
        caller: Caller<'_>,
        documento: &str,
    ) -> Result<Vec<Contato>, ConnectorError> {
        let q = [("numeroDocumento", documento.to_owned()), ("criterio", "1".to_owned())];
        let found: Vec<Contato> = self.get(caller, "/contatos", &q).await?;
        Ok(found.into_iter().filter(|c| c.situacao != "E").collect())
    }

    /// Creates a contact; its id.
    pub async fn create_contato(&self, caller: Caller<'_>, contato: &NovoContato) -> Result<BlingId, ConnectorError> {
        let saved: Saved = self.json(caller, Method::POST, "/contatos", &[], Some(contato)).await?;
        BlingId::new(saved.id).ok_or_else(|| ConnectorError::Protocol {
            system: SYSTEM,
            message: format!("POST /contatos: id {}", saved.id),
        })
    }
}
