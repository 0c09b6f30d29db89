//! What the sales tests share: a merchant whose Bling account (sandbox) and CPLUG point of sale
//! (sandbox, pushing signed webhooks to the gateway) are connected, the mesh that posts its
//! sales (auth-token, mapping, sales-ingest, the gateway), the store and payment maps, the
//! products the till sells, and a proxy that holds or drops Bling's answers to chosen calls.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ponte_core::config::Env;
use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, CreateStoreMapRequest, GetSaleRequest, PaymentMethodMap, SaleRecord, SaleState,
    StoreMap, mapping_service_client::MappingServiceClient, sales_ingest_service_client::SalesIngestServiceClient,
};
use ponte_sandbox::{
    bling::{CANAL_PDV, DEPOSITOS},
    cplug,
};
use ponte_tests::Channel;
use ponte_tests::{
    GatewayHttp, redis_url,
    webhooks::{BlingWorld, TENANT},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// How much faster than real time the Bling sandbox's limits (and ponte's budget) run.
pub const SCALE: &str = "20";
pub const DEPOSITO_CENTRO: i64 = DEPOSITOS[1].0;
pub const DEPOSITO_GERAL: i64 = DEPOSITOS[0].0;
pub const CREDITO: i64 = 11_010_300;
pub const PIX: i64 = 11_010_302;
/// A valid CPF.
pub const CPF: &str = "12345678909";

/// The sales-ingest settings of the tests: a fast scanner, parked sales re-checked each second.
pub fn sales_env() -> Env {
    Env::default()
        .with("PONTE_RATE_LIMIT_SCALE", SCALE)
        .with("PONTE_SALES_SCAN_MS", "50")
        .with("PONTE_SALES_RECHECK_SECONDS", "1")
        .with("PONTE_DISPATCH_POLL_MS", "50")
        .with("PONTE_DISPATCH_BACKOFF_MS", "50")
}

pub struct SalesWorld {
    pub world: BlingWorld,
    pub pos: cplug::Handle,
    pub gateway: Option<GatewayHttp>,
    /// The Bling product of each SKU the till sells.
    pub products: std::collections::HashMap<String, i64>,
}

impl SalesWorld {
    /// Everything with sales-ingest in the mesh.
    pub async fn start() -> Self {
        Self::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_sales_ingest::SPEC], sales_env()).await
    }

    /// `specs` started (auth-token and mapping at least), configured by `env`.
    pub async fn start_with(specs: &[&'static ponte_core::service::ServiceSpec], env: Env) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hook = format!("http://{}/webhooks/cplug/{TENANT}", listener.local_addr().expect("addr"));
        let pos = cplug::Cplug::new(cplug::Config { webhook_url: Some(hook), ..cplug::Config::for_tests() })
            .spawn(None)
            .await
            .expect("CPLUG sandbox");
        let bling = ponte_sandbox::bling::Config { time_scale: SCALE.parse().expect("scale"), ..Default::default() };
        let env = env.with("PONTE_CPLUG_API_URL", &pos.base_url);
        let world = BlingWorld::start_with_env(specs, bling, &redis_url(), env).await;
        BlingWorld::connect_cplug(&world.mesh, &pos).await;
        let gateway =
            world.mesh.start_gateway_http_with(world.mesh.env.clone(), world.mesh.peers.clone(), Some(listener)).await;
        let mut w = Self { world, pos, gateway: Some(gateway), products: Default::default() };
        w.map_store("loja-centro", DEPOSITO_CENTRO).await;
        w.map_payment("CREDITO", CREDITO).await;
        w.map_payment("DINHEIRO", 11_010_299).await;
        for (sku, nome, preco) in
            [("CAM-AZ-M", "Camiseta azul M", 59.9), ("QJ-1", "Queijo minas", 10.99), ("BON-1", "Boné", 35.0)]
        {
            let id = w.world.bling.bling.seed_product(json!({"nome": nome, "codigo": sku, "preco": preco}));
            w.products.insert(sku.to_owned(), id);
            for (d, _, _) in DEPOSITOS {
                w.world.bling.bling.set_stock(id, d, rust_decimal::Decimal::from(100));
            }
        }
        w
    }

    pub async fn sales(&self) -> SalesIngestServiceClient<Channel> {
        SalesIngestServiceClient::new(self.world.mesh.channel("sales-ingest").await)
    }

    pub async fn mapping(&self) -> MappingServiceClient<Channel> {
        MappingServiceClient::new(self.world.mesh.channel("mapping").await)
    }

    pub async fn map_store(&self, store: &str, deposito: i64) {
        let map = StoreMap {
            tenant_id: TENANT.into(),
            cplug_store_id: store.into(),
            bling_loja_id: CANAL_PDV,
            bling_deposito_id: deposito,
            create_time: None,
        };
        self.mapping()
            .await
            .create_store_map(CreateStoreMapRequest { map: Some(map), validate_only: false })
            .await
            .expect("store map");
    }

    pub async fn map_payment(&self, method: &str, forma: i64) {
        let map = PaymentMethodMap {
            tenant_id: TENANT.into(),
            cplug_method: method.into(),
            bling_forma_pagamento_id: forma,
            is_default: false,
            create_time: None,
        };
        self.mapping()
            .await
            .create_payment_method_map(CreatePaymentMethodMapRequest { map: Some(map), validate_only: false })
            .await
            .expect("payment map");
    }

    /// Rings a sale up at the till (its webhook goes to the gateway); the sale id.
    pub fn ring_up(&self, sale: Value) -> String {
        self.pos.ring_up(sale).expect("the till takes the sale").0.id
    }

    /// Pushes a sale webhook as the till signs it, straight to the gateway; its answer.
    pub async fn push(&self, event_id: &str, event: &str, sale: Value) -> reqwest::Response {
        let (headers, body) = self.pos.sale_webhook(event_id, event, sale);
        let url = self.gateway.as_ref().expect("a gateway").url(&format!("/webhooks/cplug/{TENANT}"));
        let mut req = reqwest::Client::new().post(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.expect("the gateway answers")
    }

    /// The Bling orders carrying `numero_loja`.
    pub fn orders_of(&self, numero_loja: &str) -> Vec<Value> {
        self.world.bling.bling.orders().into_iter().filter(|o| o["numeroLoja"] == numero_loja).collect()
    }

    /// The stock movements of Bling order `id`: (depósito, operação) per item.
    pub fn movements_of(&self, id: i64) -> Vec<(i64, String)> {
        self.world
            .bling
            .bling
            .movements()
            .into_iter()
            .filter(|m| m.pedido == Some(id))
            .map(|m| {
                (
                    m.deposito,
                    serde_json::to_value(m.operacao).expect("operação").as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub async fn sale(&self, sale_id: &str) -> Option<SaleRecord> {
        sale_in(&self.world.mesh, sale_id).await
    }

    /// Waits until sale `sale_id` is in `state`; the sale then.
    pub async fn wait_for(&self, sale_id: &str, state: SaleState) -> SaleRecord {
        self.wait_for_in(&self.world.mesh, sale_id, state).await
    }

    /// As [`SalesWorld::wait_for`], asking the sales-ingest of `mesh`.
    pub async fn wait_for_in(&self, mesh: &ponte_tests::Mesh, sale_id: &str, state: SaleState) -> SaleRecord {
        let reached = poll(Duration::from_secs(60), || async {
            sale_in(mesh, sale_id)
                .await
                .filter(|r| r.state() == state && (state != SaleState::Posted || r.stock_written_off))
        })
        .await;
        match reached {
            Some(r) => r,
            None => panic!("sale {sale_id} never reached {state:?}: {:?}", sale_in(mesh, sale_id).await),
        }
    }
}

/// Polls `f` every 50 ms until it returns something, for at most `within`.
pub async fn poll<T, F, Fut>(within: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(t) = f().await {
            return Some(t);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn sale_in(mesh: &ponte_tests::Mesh, sale_id: &str) -> Option<SaleRecord> {
    let req = GetSaleRequest { tenant_id: TENANT.into(), sale_id: sale_id.into() };
    let mut c = SalesIngestServiceClient::new(mesh.channel("sales-ingest").await);
    c.get_sale(req).await.ok().and_then(|r| r.into_inner().record)
}

/// A sale for the till: two camisetas on credit in three installments, by Maria (CPF).
pub fn camisetas(id: &str) -> Value {
    json!({"id": id, "store_id": "loja-centro", "customer": {"document": CPF, "name": "Maria"},
           "items": [{"sku": "CAM-AZ-M", "quantity": 2, "unit_price": 59.90}],
           "payments": [{"method": "CREDITO", "method_name": "Cartão de crédito", "amount": 119.80, "installments": 3}]})
}

/// What [`AnswerProxy`] does with the answer to a request whose text contains its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The connection is closed instead (the request was processed; its answer is lost).
    Drop,
    /// The answer is held and the connection left hanging (a process killed mid-call never
    /// sees it either).
    Hold,
    /// The request itself is held this long before it reaches the server (a call that hangs on
    /// its way); a caller that gives up meanwhile closes the connection and takes the request
    /// with it, unprocessed.
    Late(Duration),
}

/// A TCP proxy in front of an HTTP server that forwards every request and swallows the answers
/// to (or holds back) the next `times` requests containing `pattern` (e.g.
/// `POST /Api/v3/pedidos/vendas `).
#[derive(Clone)]
pub struct AnswerProxy {
    pub addr: std::net::SocketAddr,
    rule: Arc<Mutex<Option<(String, Answer, usize)>>>,
    /// Answers swallowed so far.
    pub swallowed: Arc<AtomicUsize>,
}

impl AnswerProxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let p = Self { addr: listener.local_addr().expect("addr"), rule: Arc::default(), swallowed: Arc::default() };
        let proxy = p.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else { continue };
                tokio::spawn(proxy.clone().relay(inbound, outbound));
            }
        });
        p
    }

    pub fn swallow(&self, pattern: &str, answer: Answer, times: usize) {
        *self.rule.lock().expect("rule") = Some((pattern.to_owned(), answer, times));
    }

    async fn relay(self, inbound: TcpStream, outbound: TcpStream) {
        let (mut cr, mut cw) = inbound.into_split();
        let (mut sr, mut sw) = outbound.into_split();
        let marked = Arc::new(Mutex::new(None::<Answer>));
        let mark = marked.clone();
        let rule = self.rule.clone();
        let held = self.swallowed.clone();
        let up = tokio::spawn(async move {
            let mut buf = vec![0_u8; 64 * 1024];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut late = None;
                if let Some((pattern, answer, times)) = rule.lock().expect("rule").as_mut()
                    && *times > 0
                    && text.contains(pattern.as_str())
                {
                    *times -= 1;
                    match *answer {
                        Answer::Late(d) => late = Some(d),
                        other => *mark.lock().expect("mark") = Some(other),
                    }
                }
                let mut pending = buf[..n].to_vec();
                if let Some(d) = late {
                    held.fetch_add(1, Ordering::SeqCst);
                    // Whatever else the caller sends waits too; a caller that closes the
                    // connection meanwhile takes the request with it.
                    let until = tokio::time::Instant::now() + d;
                    let mut more = vec![0_u8; 64 * 1024];
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep_until(until) => break,
                            r = cr.read(&mut more) => match r {
                                Ok(0) | Err(_) => return,
                                Ok(m) => pending.extend_from_slice(&more[..m]),
                            },
                        }
                    }
                }
                if sw.write_all(&pending).await.is_err() {
                    return;
                }
            }
        });
        let mut buf = vec![0_u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let swallow = marked.lock().expect("mark").take();
            match swallow {
                Some(Answer::Drop) => {
                    self.swallowed.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Some(Answer::Hold) => {
                    self.swallowed.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                Some(Answer::Late(_)) | None => {}
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        up.abort();
    }
}
