//! The mapping service as shipping-status calls it: the tenant's situação ⇄ shipping status map
//! (kept briefly per tenant: every order event reads it), the point-of-sale stores' Bling lojas
//! (whose orders are never shipped), and the link registry's Bling ⇄ 360Envios product links.
//! The registry and the tables are ponte's own: when mapping cannot answer, the work waits.

use std::{collections::HashMap, sync::Arc, time::Duration};

use moka::future::Cache;
use ponte_core::{BlingId, TenantId, error::ServiceError, grpc::TracedChannel};
use ponte_proto::v1::{
    BatchResolveRequest, CreateSituacaoMapRequest, EntityKind, EntityLink, LinkRequest, ListSituacaoMapsRequest,
    ListStoreMapsRequest, Provider, ShippingStatus, SituacaoMap, mapping_service_client::MappingServiceClient,
};
use tonic::{Code, Request, Status};

/// How long a tenant's situação map and stores are trusted; setup forgets its tenant's at once.
const KEPT_FOR: Duration = Duration::from_secs(30);
/// Tenants kept at most.
const CAPACITY: u64 = 100_000;

fn mapping_down(s: Status) -> ServiceError {
    ServiceError::unavailable(format!("mapping: {}", s.message()), None)
}

/// A tenant's situação ⇄ shipping status map.
#[derive(Debug, Clone, Default)]
pub(crate) struct Situacoes {
    maps: Vec<SituacaoMap>,
}

impl Situacoes {
    pub fn new(maps: Vec<SituacaoMap>) -> Self {
        Self { maps }
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    fn of(&self, situacao: i64) -> Option<&SituacaoMap> {
        self.maps.iter().find(|m| m.bling_situacao_id == situacao)
    }

    /// Whether an order reaching `situacao` is released to 360Envios.
    pub fn releases(&self, situacao: i64) -> bool {
        self.of(situacao).is_some_and(|m| m.releases_to_shipping)
    }

    /// The shipping status `situacao` stands for.
    pub fn status_of(&self, situacao: i64) -> Option<ShippingStatus> {
        self.of(situacao).and_then(|m| ShippingStatus::try_from(m.shipping_status).ok())
    }

    /// The situação that stands for `status`.
    pub fn for_status(&self, status: ShippingStatus) -> Option<&SituacaoMap> {
        self.maps.iter().find(|m| m.shipping_status == status as i32)
    }

    /// The release situação's name, as messages say it.
    pub fn release_name(&self) -> String {
        self.maps.iter().find(|m| m.releases_to_shipping).map(|m| m.bling_situacao_name.clone()).unwrap_or_default()
    }

    /// `situacao` as messages name it: `'Em andamento' (15)`, or its id alone when unmapped.
    pub fn name(&self, situacao: i64) -> String {
        match self.of(situacao) {
            Some(m) => format!("'{}' ({situacao})", m.bling_situacao_name),
            None => situacao.to_string(),
        }
    }
}

fn kept<V: Clone + Send + Sync + 'static>() -> Cache<TenantId, V> {
    Cache::builder().max_capacity(CAPACITY).time_to_live(KEPT_FOR).build()
}

#[derive(Clone)]
pub(crate) struct Mapping {
    client: MappingServiceClient<TracedChannel>,
    situacoes: Cache<TenantId, Arc<Situacoes>>,
    lojas: Cache<TenantId, Arc<Vec<i64>>>,
}

impl Mapping {
    pub fn new(client: MappingServiceClient<TracedChannel>) -> Self {
        Self { client, situacoes: kept(), lojas: kept() }
    }

    /// The tenant's map as mapping holds it now.
    pub async fn situacao_maps(&self, tenant: &TenantId) -> Result<Vec<SituacaoMap>, ServiceError> {
        let req = ListSituacaoMapsRequest { tenant_id: tenant.to_string() };
        Ok(self.client.clone().list_situacao_maps(req).await.map_err(mapping_down)?.into_inner().maps)
    }

    /// The tenant's map, kept for a while (one read for a burst of events).
    pub async fn situacoes(&self, tenant: &TenantId) -> Result<Arc<Situacoes>, ServiceError> {
        let load = async { Ok::<_, ServiceError>(Arc::new(Situacoes::new(self.situacao_maps(tenant).await?))) };
        self.situacoes.try_get_with(tenant.clone(), load).await.map_err(|e: Arc<ServiceError>| e.cloned())
    }

    /// Drops what is kept of the tenant's map (setup changed it).
    pub async fn forget(&self, tenant: &TenantId) {
        self.situacoes.invalidate(tenant).await;
    }

    /// Writes one map entry, as `actor`; ALREADY_EXISTS and INVALID_ARGUMENT come back as they are.
    pub async fn create_situacao_map(&self, map: SituacaoMap, actor: &str) -> Result<SituacaoMap, Status> {
        let mut req = Request::new(CreateSituacaoMapRequest { map: Some(map), validate_only: false });
        if let Ok(v) = actor.parse() {
            req.metadata_mut().insert("x-ponte-actor", v);
        }
        Ok(self.client.clone().create_situacao_map(req).await?.into_inner().map.unwrap_or_default())
    }

    /// The Bling lojas (sales channels) the tenant's point-of-sale stores post their sales to.
    pub async fn pos_lojas(&self, tenant: &TenantId) -> Result<Arc<Vec<i64>>, ServiceError> {
        let load = async {
            let req = ListStoreMapsRequest { tenant_id: tenant.to_string() };
            let maps = self.client.clone().list_store_maps(req).await.map_err(mapping_down)?.into_inner().maps;
            Ok::<_, ServiceError>(Arc::new(maps.into_iter().map(|m| m.bling_loja_id).collect()))
        };
        self.lojas.try_get_with(tenant.clone(), load).await.map_err(|e: Arc<ServiceError>| e.cloned())
    }

    /// The 360Envios products linked to Bling products `ids`, in one look-up.
    pub async fn hub_products(
        &self,
        tenant: &TenantId,
        ids: &[BlingId],
    ) -> Result<HashMap<BlingId, String>, ServiceError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let req = BatchResolveRequest {
            tenant_id: tenant.to_string(),
            kind: EntityKind::Product as i32,
            from_system: Provider::Bling as i32,
            from_ids: ids.iter().map(BlingId::to_string).collect(),
            to_system: Provider::Envios360 as i32,
        };
        let found = self.client.clone().batch_resolve(req).await.map_err(mapping_down)?.into_inner().ids;
        Ok(found.into_iter().filter_map(|(bling, hub)| Some((BlingId::parse(&bling).ok()?, hub))).collect())
    }

    /// Records that Bling product `bling` is 360Envios product `hub`. A link the registry holds
    /// already for either side is left as it is (the hub's answer is the one kept for the order).
    pub async fn link_product(&self, tenant: &TenantId, bling: BlingId, hub: &str) -> Result<(), ServiceError> {
        let link = EntityLink {
            tenant_id: tenant.to_string(),
            kind: EntityKind::Product as i32,
            system_a: Provider::Bling as i32,
            id_a: bling.to_string(),
            system_b: Provider::Envios360 as i32,
            id_b: hub.to_owned(),
            create_time: None,
        };
        match self.client.clone().link(LinkRequest { link: Some(link) }).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                tracing::warn!(product = %bling, hub, reason = s.message(), "product link kept as the registry has it");
                Ok(())
            }
            Err(s) => Err(mapping_down(s)),
        }
    }
}
