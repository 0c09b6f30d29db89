//! Mapeamento de produtos: the field mapping of Bling products to Bitrix24 and CPLUG (the fixed
//! set and the tenant's own, which may be deleted) and catalog-sync's switches.

use axum::extract::State;
use ponte_proto::v1::{
    CreateFieldMappingRequest, DeleteFieldMappingRequest, FieldMapping, GetSyncSettingsRequest,
    ListFieldMappingsRequest, MappingDirection, MappingTarget, SyncSettings, UpdateSyncSettingsRequest,
};

use super::{Answer, Console, Ctx, Lang, Posted, Table, esc, forms::checked, short, when};

const TARGETS: [(&str, MappingTarget); 2] = [("BITRIX24", MappingTarget::Bitrix24), ("CPLUG", MappingTarget::Cplug)];
const DIRECTIONS: [(&str, MappingDirection); 2] =
    [("ONE_WAY", MappingDirection::OneWay), ("TWO_WAY", MappingDirection::TwoWay)];

/// The switches, in the order [`flags`] gives them: (form field, pt, en).
const SWITCHES: [(&str, &str, &str); 6] = [
    (
        "bling_create_creates_in_bitrix24",
        "Criação no Bling cria produto no Bitrix24",
        "A product created in Bling is created in Bitrix24",
    ),
    ("bling_update_updates_bitrix24", "Alterações no Bling atualizam o Bitrix24", "Changes in Bling update Bitrix24"),
    ("bitrix24_export_to_bling", "Alterações no Bitrix24 vão para o Bling", "Bitrix24 changes go to Bling"),
    (
        "orders_to_bitrix24",
        "Pedidos e vendas do Bling viram negócios no Bitrix24",
        "Bling orders and sales become Bitrix24 deals",
    ),
    ("catalog_to_cplug", "Catálogo do Bling vai para o CPLUG", "The Bling catalog goes to CPLUG"),
    ("cplug_grid_enabled", "CPLUG com módulo de grade (variações)", "CPLUG has the grid module (variations)"),
];

fn flags(s: &mut SyncSettings) -> [&mut bool; 6] {
    [
        &mut s.bling_create_creates_in_bitrix24,
        &mut s.bling_update_updates_bitrix24,
        &mut s.bitrix24_export_to_bling,
        &mut s.orders_to_bitrix24,
        &mut s.catalog_to_cplug,
        &mut s.cplug_grid_enabled,
    ]
}

async fn settings(c: &Console, ctx: &Ctx) -> Result<SyncSettings, super::Page> {
    let req = GetSyncSettingsRequest { tenant_id: ctx.tenant_id() };
    Ok(ctx.ok(c.clients.catalog.clone().get_sync_settings(ctx.req(req)).await)?.settings.unwrap_or_default())
}

fn direction_name(lang: Lang, d: i32) -> &'static str {
    match MappingDirection::try_from(d) {
        Ok(MappingDirection::TwoWay) => lang.pick("nos dois sentidos", "both ways"),
        _ => lang.pick("Bling → destino", "Bling → target"),
    }
}

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListFieldMappingsRequest { tenant_id: ctx.tenant_id(), target: 0 };
    let maps = ctx.ok(c.clients.mapping.clone().list_field_mappings(ctx.req(req)).await)?.mappings;
    let mut settings = settings(&c, &ctx).await?;
    let mut table = Table::new(
        lang.pick("Mapeamento de campos", "Field mapping"),
        &[
            lang.pick("Destino", "Target"),
            lang.pick("Campo Bling", "Bling field"),
            lang.pick("Campo no destino", "Target field"),
            lang.pick("Sentido", "Direction"),
            lang.pick("Criado em", "Created"),
            lang.pick("Ação", "Action"),
        ],
    );
    for m in &maps {
        let target = short(MappingTarget::try_from(m.target).ok().map(|t| t.as_str_name()), "MAPPING_TARGET_");
        let action = if m.builtin {
            lang.pick("fixo", "built in").to_owned()
        } else {
            let label = lang.pick("Excluir", "Delete");
            let aria = format!("{label} {} → {}", m.bling_field, m.target_field);
            ctx.button("produtos/excluir", &[("mapping_id", &m.mapping_id)], label, &aria)
        };
        table.row(&[
            &esc(target),
            &format!("<code>{}</code>", esc(&m.bling_field)),
            &format!("<code>{}</code>", esc(&m.target_field)),
            direction_name(lang, m.direction),
            &when(m.create_time.as_ref()),
            &action,
        ]);
    }
    let mut body = table.finish(lang.pick("Nenhum mapeamento.", "No mapping."));
    body.push_str(
        &ctx.form("produtos", "campo", lang.pick("Mapear um campo", "Map a field"))
            .select("target", lang.pick("Destino", "Target"), &[("BITRIX24", "Bitrix24"), ("CPLUG", "CPLUG")])
            .text("bling_field", lang.pick("Campo Bling (ex.: estoque.minimo)", "Bling field (e.g. estoque.minimo)"))
            .text("target_field", lang.pick("Campo no destino (ex.: PROPERTY_104)", "Target field (e.g. PROPERTY_104)"))
            .select(
                "direction",
                lang.pick("Sentido", "Direction"),
                &[("ONE_WAY", direction_name(lang, 1)), ("TWO_WAY", direction_name(lang, 2))],
            )
            .submit(lang.pick("Salvar mapeamento", "Save mapping")),
    );
    let mut form = ctx.form("produtos/sincronizacao", "sync", lang.pick("Sincronização do catálogo", "Catalog sync"));
    for ((name, pt, en), on) in SWITCHES.into_iter().zip(flags(&mut settings)) {
        form = form.checkbox(name, lang.pick(pt, en), *on);
    }
    body.push_str(&form.submit(lang.pick("Salvar opções", "Save switches")));
    ctx.page("produtos", lang.pick("Mapeamento de produtos", "Product mapping"), &body)
}

/// Adds a field mapping.
pub(super) async fn create(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let mapping = FieldMapping {
        tenant_id: ctx.tenant_id(),
        target: ctx.choice(&p.form, "target", &TARGETS)? as i32,
        bling_field: p.field("bling_field")?.to_owned(),
        target_field: p.field("target_field")?.to_owned(),
        direction: ctx.choice(&p.form, "direction", &DIRECTIONS)? as i32,
        ..Default::default()
    };
    let req = CreateFieldMappingRequest { mapping: Some(mapping) };
    ctx.ok(c.clients.mapping.clone().create_field_mapping(ctx.req(req)).await)?;
    ctx.back("produtos", "saved")
}

/// Deletes one of the tenant's field mappings.
pub(super) async fn delete(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let req = DeleteFieldMappingRequest { tenant_id: ctx.tenant_id(), mapping_id: p.field("mapping_id")?.to_owned() };
    ctx.ok(c.clients.mapping.clone().delete_field_mapping(ctx.req(req)).await)?;
    ctx.back("produtos", "deleted")
}

/// Sets catalog-sync's switches (an unchecked box is off); the deal stages stay as they are.
pub(super) async fn switches(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let mut s = settings(&c, ctx).await?;
    s.tenant_id = ctx.tenant_id();
    for ((name, _, _), on) in SWITCHES.into_iter().zip(flags(&mut s)) {
        *on = checked(&p.form, name);
    }
    let req = UpdateSyncSettingsRequest { settings: Some(s) };
    ctx.ok(c.clients.catalog.clone().update_sync_settings(ctx.req(req)).await)?;
    ctx.back("produtos", "saved")
}
