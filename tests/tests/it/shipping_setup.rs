//! Setup against an account the merchant has already worked on: a situação of the cycle the
//! merchant made (under another spelling) is adopted, not duplicated; a status the tenant maps
//! to its own situação is kept; a release situação the account lacks is refused naming the field;
//! the cycle's transitions are created once when asked for (the account's own one is found).

use ponte_proto::v1::{
    CreateSituacaoMapRequest, SetUpAction, SetUpShippingRequest, ShippingStatus, SituacaoMap,
    mapping_service_client::MappingServiceClient,
};
use ponte_sandbox::bling::MODULO_VENDAS;
use ponte_tests::webhooks::TENANT;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

use tonic::Code;

use ponte_tests::shipping::{ATENDIDO, EM_ANDAMENTO, ShippingWorld};

#[tokio::test]
async fn the_merchants_own_situacoes_are_adopted_and_its_own_map_kept() {
    let world = ShippingWorld::start().await;
    let create = |nome: &str, herdado: i64| {
        let body = json!({"idModuloSistema": MODULO_VENDAS, "nome": nome, "idHerdado": herdado, "cor": "#112233"});
        world.bling_api(Method::POST, "/situacoes", Some(body))
    };
    let own_romaneio = create("em ROMANEIO", EM_ANDAMENTO).await["data"]["id"].as_i64().unwrap();
    let entregue = create("Entregue", ATENDIDO).await["data"]["id"].as_i64().unwrap();
    let own_map = CreateSituacaoMapRequest {
        map: Some(SituacaoMap {
            tenant_id: TENANT.into(),
            bling_situacao_id: entregue,
            bling_situacao_name: "Entregue".into(),
            shipping_status: ShippingStatus::Delivered as i32,
            ..Default::default()
        }),
        validate_only: false,
    };
    let mut mapping = MappingServiceClient::new(world.w.mesh.channel("mapping").await);
    // The test's own Bling calls share the account's budget with mapping's check: wait out a 429.
    for attempt in 0.. {
        match mapping.create_situacao_map(own_map.clone()).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable && attempt < 10 => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(s) => panic!("{s:?}"),
        }
    }

    let r = world.set_up(false).await;
    let step =
        |subject: &str| r.steps.iter().find(|s| s.subject == subject).unwrap_or_else(|| panic!("{subject}: {r:?}"));
    let romaneio = step("situação 'Em romaneio'");
    assert_eq!((romaneio.action(), romaneio.bling_situacao_id), (SetUpAction::Found, own_romaneio));
    let delivered = step("map SHIPPING_STATUS_DELIVERED → 'Atendido'");
    assert_eq!(delivered.action(), SetUpAction::Kept);
    assert_eq!(
        delivered.detail,
        format!("the tenant maps SHIPPING_STATUS_DELIVERED to situação {entregue} 'Entregue'; left as it is")
    );
    assert_eq!(step("map SHIPPING_STATUS_IN_PACKING_LIST → 'Em romaneio'").action(), SetUpAction::Created);
    let list = world.bling_api(Method::GET, &format!("/situacoes/modulos/{MODULO_VENDAS}"), None).await;
    let names: Vec<String> =
        list["data"].as_array().unwrap().iter().map(|s| s["nome"].as_str().unwrap().to_lowercase()).collect();
    for name in ["em romaneio", "aguardando coleta", "em rota de entrega"] {
        assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name} once: {names:?}");
    }
    assert_eq!(world.situacao("em ROMANEIO").await, own_romaneio);

    let bad = SetUpShippingRequest {
        tenant_id: TENANT.into(),
        release_situacao_name: "Liberado p/ envio".into(),
        ..Default::default()
    };
    let err = world.try_set_up(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "release_situacao_name: Bling's Vendas module of tenant 'loja' has no situação 'Liberado p/ envio'"
    );
    let unknown = SetUpShippingRequest { tenant_id: "outra-loja".into(), ..Default::default() };
    let err = world.try_set_up(unknown).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "tenant 'outra-loja' does not exist"));
}

#[tokio::test]
async fn the_cycles_transitions_are_created_once_when_asked_for() {
    let world = ShippingWorld::start().await;
    let with_transitions =
        |dry_run| SetUpShippingRequest { tenant_id: TENANT.into(), dry_run, transitions: true, ..Default::default() };
    let transitions = |r: &ponte_proto::v1::SetUpShippingResponse, action: SetUpAction| {
        r.steps.iter().filter(|s| s.subject.starts_with("transição") && s.action() == action).count()
    };
    let dry = world.try_set_up(with_transitions(true)).await.unwrap();
    // Em andamento → Cancelado is one of the account's defaults already.
    assert_eq!((transitions(&dry, SetUpAction::WouldCreate), transitions(&dry, SetUpAction::Found)), (6, 1), "{dry:?}");
    let first = world.try_set_up(with_transitions(false)).await.unwrap();
    assert_eq!(
        (transitions(&first, SetUpAction::Created), transitions(&first, SetUpAction::Found)),
        (6, 1),
        "{first:?}"
    );
    let again = world.try_set_up(with_transitions(false)).await.unwrap();
    assert_eq!(transitions(&again, SetUpAction::Found), 7, "{again:?}");
    let (romaneio, rota) = (world.situacao("Em romaneio").await, world.situacao("Em rota de entrega").await);
    let list = world.bling_api(Method::GET, &format!("/situacoes/modulos/{MODULO_VENDAS}/transicoes"), None).await;
    let pairs: Vec<(i64, i64)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["situacaoOrigem"]["id"].as_i64().unwrap(), t["situacaoDestino"]["id"].as_i64().unwrap()))
        .collect();
    assert!(pairs.contains(&(EM_ANDAMENTO, romaneio)) && pairs.contains(&(rota, ATENDIDO)), "{pairs:?}");
    assert_eq!(pairs.iter().filter(|p| **p == (EM_ANDAMENTO, romaneio)).count(), 1);
}
