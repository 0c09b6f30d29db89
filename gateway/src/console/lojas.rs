//! Lojas e depósitos: which Bling loja (canal de venda) and depósito each CPLUG store's sales
//! are posted to and write stock off from.

use axum::extract::State;
use ponte_proto::v1::{CreateStoreMapRequest, DeleteStoreMapRequest, ListStoreMapsRequest, StoreMap};

use super::{Answer, Console, Ctx, Posted, Table, esc, when};

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListStoreMapsRequest { tenant_id: ctx.tenant_id() };
    let maps = ctx.ok(c.clients.mapping.clone().list_store_maps(ctx.req(req)).await)?.maps;
    let mut table = Table::new(
        lang.pick("Lojas do PDV e seus destinos no Bling", "Point-of-sale stores and their Bling targets"),
        &[
            lang.pick("Loja CPLUG", "CPLUG store"),
            lang.pick("Loja Bling (id)", "Bling loja (id)"),
            lang.pick("Depósito Bling (id)", "Bling depósito (id)"),
            lang.pick("Criado em", "Created"),
            lang.pick("Ação", "Action"),
        ],
    );
    for m in &maps {
        let label = lang.pick("Excluir", "Delete");
        let aria = format!("{label} {}", m.cplug_store_id);
        table.row(&[
            &esc(&m.cplug_store_id),
            &m.bling_loja_id.to_string(),
            &m.bling_deposito_id.to_string(),
            &when(m.create_time.as_ref()),
            &ctx.button("lojas/excluir", &[("cplug_store_id", &m.cplug_store_id)], label, &aria),
        ]);
    }
    let mut body = table.finish(lang.pick("Nenhuma loja mapeada.", "No store mapped."));
    body.push_str(
        &ctx.form("lojas", "loja", lang.pick("Mapear uma loja", "Map a store"))
            .text("cplug_store_id", lang.pick("Loja CPLUG (ex.: loja-centro)", "CPLUG store (e.g. loja-centro)"))
            .number("bling_loja_id", lang.pick("Id da loja (canal de venda) no Bling", "Bling loja (sales channel) id"))
            .number("bling_deposito_id", lang.pick("Id do depósito no Bling", "Bling depósito id"))
            .submit(lang.pick("Salvar loja", "Save store")),
    );
    ctx.page("lojas", lang.pick("Lojas e depósitos", "Stores and depósitos"), &body)
}

/// Maps a CPLUG store (mapping checks the ids against the tenant's Bling lists).
pub(super) async fn create(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let map = StoreMap {
        tenant_id: ctx.tenant_id(),
        cplug_store_id: p.field("cplug_store_id")?.to_owned(),
        bling_loja_id: ctx.id_field(&p.form, "bling_loja_id")?,
        bling_deposito_id: ctx.id_field(&p.form, "bling_deposito_id")?,
        create_time: None,
    };
    let req = CreateStoreMapRequest { map: Some(map), validate_only: false };
    ctx.ok(c.clients.mapping.clone().create_store_map(ctx.req(req)).await)?;
    ctx.back("lojas", "saved")
}

pub(super) async fn delete(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let req =
        DeleteStoreMapRequest { tenant_id: ctx.tenant_id(), cplug_store_id: p.field("cplug_store_id")?.to_owned() };
    ctx.ok(c.clients.mapping.clone().delete_store_map(ctx.req(req)).await)?;
    ctx.back("lojas", "deleted")
}
