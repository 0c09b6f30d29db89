//! A huge tenant id (or other string) is a caller's mistake in every service: INVALID_ARGUMENT
//! naming the field, a short message quoting at most a prefix, never a retryable answer.

use ponte_proto::v1::*;
use ponte_tests::Mesh;
use tonic::Code;

const SPECS: &[&ponte_core::service::ServiceSpec] = &[
    &ponte_auth_token::SPEC,
    &ponte_mapping::SPEC,
    &ponte_catalog_sync::SPEC,
    &ponte_sales_ingest::SPEC,
    &ponte_shipping_status::SPEC,
    &ponte_gateway::SPEC,
];

/// The answer is a permanent, short INVALID_ARGUMENT naming a field (`field` when the request
/// has no other mistake checked first), quoting at most a short prefix of the value.
fn assert_refused<T: std::fmt::Debug>(rpc: &str, field: &str, answer: Result<tonic::Response<T>, tonic::Status>) {
    let status = answer.expect_err(rpc);
    assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {:?} {}", status.code(), status.message());
    let message = status.message();
    assert!(message.chars().count() < 300, "{rpc}: a message of {} chars", message.chars().count());
    let named = message.split(": ").next().unwrap_or_default();
    assert!(
        !named.is_empty() && named.bytes().all(|b| b.is_ascii_lowercase() || b"_.[]0123456789".contains(&b)),
        "{rpc}: names no field: {message}"
    );
    assert!(!message.contains(&"a".repeat(40)), "{rpc}: quotes too much: {message}");
    if message.contains(field) {
        assert!(!message.contains(&format!("{field}: {field}")), "{rpc}: {message}");
    }
    assert!(ponte_core::error::retry_after(&status).is_none(), "{rpc}: asks for a retry");
}

macro_rules! refuse_tenant {
    ($client:expr, $huge:expr, $($method:ident: $req:ident),+ $(,)?) => {
        $(
            let answer = $client.$method($req { tenant_id: $huge.clone(), ..Default::default() }).await;
            assert_refused(stringify!($method), "tenant_id", answer);
        )+
    };
}

#[tokio::test]
// The macro fills every request alike; some have no field besides the tenant id.
#[allow(clippy::needless_update)]
async fn a_huge_tenant_id_is_refused_briefly_and_for_good_by_every_service() {
    let mesh = Mesh::start(SPECS).await;
    let huge: String = "a".repeat(16_000);

    let mut auth_token = auth_token_service_client::AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    refuse_tenant!(auth_token, huge,
        create_tenant: CreateTenantRequest,
        get_tenant: GetTenantRequest,
        start_authorization: StartAuthorizationRequest,
        set_api_credentials: SetApiCredentialsRequest,
        revoke_connection: RevokeConnectionRequest,
        get_connection: GetConnectionRequest,
        list_connections: ListConnectionsRequest,
        get_access_token: GetAccessTokenRequest,
        get_webhook_secret: GetWebhookSecretRequest,
    );
    let mut catalog_sync =
        catalog_sync_service_client::CatalogSyncServiceClient::new(mesh.channel("catalog-sync").await);
    refuse_tenant!(catalog_sync, huge,
        start_backfill: StartBackfillRequest,
        get_sync_status: GetSyncStatusRequest,
        get_sync_settings: GetSyncSettingsRequest,
    );
    let mut mapping = mapping_service_client::MappingServiceClient::new(mesh.channel("mapping").await);
    refuse_tenant!(mapping, huge,
        list_payment_method_maps: ListPaymentMethodMapsRequest,
        delete_payment_method_map: DeletePaymentMethodMapRequest,
        list_store_maps: ListStoreMapsRequest,
        delete_store_map: DeleteStoreMapRequest,
        list_situacao_maps: ListSituacaoMapsRequest,
        delete_situacao_map: DeleteSituacaoMapRequest,
        list_field_mappings: ListFieldMappingsRequest,
        delete_field_mapping: DeleteFieldMappingRequest,
        translate_product: TranslateProductRequest,
        translate_payment_method: TranslatePaymentMethodRequest,
        translate_situacao: TranslateSituacaoRequest,
        resolve_store: ResolveStoreRequest,
        resolve: ResolveRequest,
        batch_resolve: BatchResolveRequest,
        list_audit_entries: ListAuditEntriesRequest,
    );
    let mut sales_ingest =
        sales_ingest_service_client::SalesIngestServiceClient::new(mesh.channel("sales-ingest").await);
    refuse_tenant!(sales_ingest, huge,
        ingest_sale: IngestSaleRequest,
        cancel_sale: CancelSaleRequest,
        get_sale: GetSaleRequest,
        list_parked_sales: ListParkedSalesRequest,
        replay_parked: ReplayParkedRequest,
        move_sale: MoveSaleRequest,
        list_sales: ListSalesRequest,
        get_sales_settings: GetSalesSettingsRequest,
        get_sync_status: SalesIngestServiceGetSyncStatusRequest,
    );
    let mut shipping_status =
        shipping_status_service_client::ShippingStatusServiceClient::new(mesh.channel("shipping-status").await);
    refuse_tenant!(shipping_status, huge,
        get_shipment: GetShipmentRequest,
        list_shipments: ListShipmentsRequest,
        get_sync_status: ShippingStatusServiceGetSyncStatusRequest,
        set_up_shipping: SetUpShippingRequest,
    );

    // Tenant ids inside a message.
    let mut inbox = inbox_service_client::InboxServiceClient::new(mesh.channel("gateway").await);
    let filter = DeadLetterFilter { tenant_id: huge.clone(), ..Default::default() };
    let answer = inbox.list_dead_letters(ListDeadLettersRequest { filter: Some(filter), ..Default::default() }).await;
    assert_refused("list_dead_letters", "tenant_id", answer);
    let filter = DeadLetterFilter { tenant_id: "Not A Tenant".into(), ..Default::default() };
    let answer = inbox.list_dead_letters(ListDeadLettersRequest { filter: Some(filter), ..Default::default() }).await;
    assert_refused("list_dead_letters", "tenant_id", answer);
    let map = PaymentMethodMap { tenant_id: huge.clone(), cplug_method: "pix".into(), ..Default::default() };
    let answer =
        mapping.create_payment_method_map(CreatePaymentMethodMapRequest { map: Some(map), ..Default::default() }).await;
    assert_refused("create_payment_method_map", "tenant_id", answer);
    let settings = SyncSettings { tenant_id: huge.clone(), ..Default::default() };
    let answer = catalog_sync.update_sync_settings(UpdateSyncSettingsRequest { settings: Some(settings) }).await;
    assert_refused("update_sync_settings", "tenant_id", answer);
}
