//! Situações: which Bling situação each 360Envios shipping status moves an order to (and which
//! releases it to 360Envios), and the shipping cycle's set-up in Bling (shipping-status's
//! `SetUpShipping`).

use axum::extract::State;
use ponte_proto::v1::{
    CreateSituacaoMapRequest, DeleteSituacaoMapRequest, ListSituacaoMapsRequest, SetUpAction, SetUpShippingRequest,
    ShippingStatus, SituacaoMap,
};

use super::{Answer, Console, Ctx, Lang, Posted, Table, esc, forms::checked, short, when};

const STATUSES: [(&str, ShippingStatus); 7] = [
    ("UNSPECIFIED", ShippingStatus::Unspecified),
    ("RECEIVED", ShippingStatus::Received),
    ("IN_PACKING_LIST", ShippingStatus::InPackingList),
    ("AWAITING_SHIPMENT", ShippingStatus::AwaitingShipment),
    ("IN_TRANSIT", ShippingStatus::InTransit),
    ("DELIVERED", ShippingStatus::Delivered),
    ("CANCELLED", ShippingStatus::Cancelled),
];

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListSituacaoMapsRequest { tenant_id: ctx.tenant_id() };
    let maps = ctx.ok(c.clients.mapping.clone().list_situacao_maps(ctx.req(req)).await)?.maps;
    let mut table = Table::new(
        lang.pick("Situações do Bling e status de envio", "Bling situações and shipping statuses"),
        &[
            lang.pick("Situação Bling (id)", "Bling situação (id)"),
            lang.pick("Nome", "Name"),
            lang.pick("Status 360Envios", "360Envios status"),
            lang.pick("Libera para envio", "Releases to shipping"),
            lang.pick("Criado em", "Created"),
            lang.pick("Ação", "Action"),
        ],
    );
    for m in &maps {
        let status =
            short(ShippingStatus::try_from(m.shipping_status).ok().map(|s| s.as_str_name()), "SHIPPING_STATUS_");
        let label = lang.pick("Excluir", "Delete");
        let id = m.bling_situacao_id.to_string();
        let aria = format!("{label} {}", m.bling_situacao_name);
        table.row(&[
            &id,
            &esc(&m.bling_situacao_name),
            &esc(status),
            if m.releases_to_shipping { lang.pick("sim", "yes") } else { "" },
            &when(m.create_time.as_ref()),
            &ctx.button("situacoes/excluir", &[("bling_situacao_id", &id)], label, &aria),
        ]);
    }
    let mut body = table.finish(lang.pick("Nenhuma situação mapeada.", "No situação mapped."));
    let options: Vec<(&str, &str)> = STATUSES.iter().map(|(k, _)| (*k, *k)).collect();
    body.push_str(
        &ctx.form("situacoes", "situacao", lang.pick("Mapear uma situação", "Map a situação"))
            .number("bling_situacao_id", lang.pick("Id da situação no Bling", "Bling situação id"))
            .text(
                "bling_situacao_name",
                lang.pick("Nome no Bling (ex.: Em romaneio)", "Name in Bling (e.g. Em romaneio)"),
            )
            .select("shipping_status", lang.pick("Status 360Envios", "360Envios status"), &options)
            .checkbox(
                "releases_to_shipping",
                lang.pick("Libera o pedido para o 360Envios", "Releases the order to 360Envios"),
                false,
            )
            .submit(lang.pick("Salvar situação", "Save situação")),
    );
    body.push_str(
        &ctx.form("situacoes/envio", "envio", lang.pick("Configurar o ciclo de envio", "Set the shipping cycle up"))
            .text_value(
                "release_situacao_name",
                lang.pick("Situação que libera para envio", "The situação that releases to shipping"),
                "Em andamento",
            )
            .checkbox(
                "transitions",
                lang.pick("Criar também as transições no Bling", "Also create the transitions in Bling"),
                true,
            )
            .checkbox(
                "dry_run",
                lang.pick(
                    "Só mostrar o que seria feito (não altera o Bling)",
                    "Only show what would be done (Bling unchanged)",
                ),
                false,
            )
            .submit(lang.pick("Configurar envio", "Set shipping up")),
    );
    ctx.page("situacoes", lang.pick("Situações", "Situações"), &body)
}

/// Maps a Bling situação (mapping checks its id against the tenant's Bling list).
pub(super) async fn create(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let map = SituacaoMap {
        tenant_id: ctx.tenant_id(),
        bling_situacao_id: ctx.id_field(&p.form, "bling_situacao_id")?,
        bling_situacao_name: p.field("bling_situacao_name")?.to_owned(),
        shipping_status: ctx.choice(&p.form, "shipping_status", &STATUSES)? as i32,
        releases_to_shipping: checked(&p.form, "releases_to_shipping"),
        create_time: None,
    };
    let req = CreateSituacaoMapRequest { map: Some(map), validate_only: false };
    ctx.ok(c.clients.mapping.clone().create_situacao_map(ctx.req(req)).await)?;
    ctx.back("situacoes", "saved")
}

pub(super) async fn delete(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let req = DeleteSituacaoMapRequest {
        tenant_id: ctx.tenant_id(),
        bling_situacao_id: ctx.id_field(&p.form, "bling_situacao_id")?,
    };
    ctx.ok(c.clients.mapping.clone().delete_situacao_map(ctx.req(req)).await)?;
    ctx.back("situacoes", "deleted")
}

/// Finds or creates the cycle's situações, maps and (if asked) transitions in Bling, or with
/// `dry_run` only shows what it would do; the answer lists each step.
pub(super) async fn set_up_shipping(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let lang = ctx.lang;
    let dry_run = checked(&p.form, "dry_run");
    let req = SetUpShippingRequest {
        tenant_id: ctx.tenant_id(),
        dry_run,
        release_situacao_name: p.field("release_situacao_name")?.to_owned(),
        transitions: checked(&p.form, "transitions"),
    };
    let steps = ctx.ok(c.clients.shipping.clone().set_up_shipping(ctx.req(req)).await)?.steps;
    let caption = if dry_run {
        lang.pick(
            "O que a configuração do envio faria (nada foi alterado)",
            "What setting shipping up would do (nothing changed)",
        )
    } else {
        lang.pick("O que a configuração do envio fez", "What setting shipping up did")
    };
    let mut table = Table::new(
        caption,
        &[
            lang.pick("Item", "Item"),
            lang.pick("Resultado", "Outcome"),
            lang.pick("Situação Bling (id)", "Bling situação (id)"),
            lang.pick("Detalhe", "Detail"),
        ],
    );
    for step in &steps {
        let id = if step.bling_situacao_id > 0 { step.bling_situacao_id.to_string() } else { String::new() };
        table.row(&[&esc(&step.subject), action(lang, step.action()), &id, &esc(&step.detail)]);
    }
    let mut body = table.finish(lang.pick("Nada a fazer.", "Nothing to do."));
    body.push_str(&format!(
        "<p><a href=\"{}\">{}</a></p>",
        ctx.href("situacoes"),
        lang.pick("Voltar às situações", "Back to situações")
    ));
    ctx.page("situacoes", lang.pick("Configurar envio", "Set shipping up"), &body)
}

/// A set-up step's outcome in words.
fn action(lang: Lang, action: SetUpAction) -> &'static str {
    match action {
        SetUpAction::Created => lang.pick("criado agora", "created now"),
        SetUpAction::Found => lang.pick("já existia", "already there"),
        SetUpAction::WouldCreate => lang.pick("seria criado", "would be created"),
        SetUpAction::Kept => lang.pick("mantido como o lojista mapeou", "kept as the merchant mapped it"),
        SetUpAction::Unspecified => "",
    }
}
