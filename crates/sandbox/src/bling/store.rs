//! The fake account and what it holds: [`Bling`] (its configuration, clock, faults and
//! webhook outbox, shared by every route) over its state: grants and rate windows, products,
//! contacts, sales orders (with whether their stock and contas are posted), stock per
//! (product, depósito) and every movement that changed it, situações and formas de pagamento,
//! and the ids Bling hands out.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::{
    errors,
    seed::{self, Situacao},
    tokens::Auth,
};
use crate::common::{Native, Runtime, Window, values::decimal};

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    /// The account every approved authorization belongs to (32 hex digits, like Bling's).
    pub company_id: String,
    pub company_name: String,
    /// Where the authorize endpoint redirects (Bling uses the app's registered URI).
    pub redirect_uri: String,
    pub code_ttl: Duration,
    pub access_ttl: Duration,
    /// Requests per second per account.
    pub per_second: usize,
    pub daily: u64,
    /// Token endpoint calls per minute per IP before the hour-long block.
    pub token_calls_per_minute: usize,
    /// Divides every rate window (1.0 = Bling's real limits).
    pub time_scale: f64,
    /// Where webhooks go (the app's configured server, e.g. the gateway's `/webhooks/bling`).
    pub webhook_url: Option<String>,
    /// Delivery attempts before a webhook is abandoned and its resource's hook switched off
    /// (Bling retries for three days; tests shorten it), and the first wait between attempts.
    pub webhook_attempts: u32,
    pub webhook_backoff: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_id: "ponte-sandbox-app".into(),
            client_secret: "ponte-sandbox-secret-0123456789".into(),
            company_id: "d4475854366a36c86a37e792f9634a51".into(),
            company_name: "Loja Sandbox LTDA".into(),
            redirect_uri: "http://127.0.0.1:8080/oauth/bling/callback".into(),
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(21_600),
            per_second: 3,
            daily: 120_000,
            token_calls_per_minute: 20,
            time_scale: 1.0,
            webhook_url: None,
            webhook_attempts: 10,
            webhook_backoff: Duration::from_secs(5),
        }
    }
}

/// What the fake has answered, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub api_requests: u64,
    pub rate_limited: u64,
    pub token_calls: u64,
    pub refreshes: u64,
    pub code_exchanges: u64,
    /// Calls to the revocation endpoint that revoked a live token.
    pub revocations: u64,
    /// Refresh tokens presented after they had been rotated out.
    pub stale_refresh_tokens: u64,
    /// Webhooks answered 2xx.
    pub webhooks_delivered: u64,
    /// Resources ("product", "order") whose hook was switched off after failed deliveries.
    pub hooks_disabled: Vec<String>,
}

/// A sales order moved to another situação, as [`Bling::situacao_moves`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SituacaoMove {
    pub pedido: i64,
    pub situacao: i64,
    /// When the move was applied (real time, not the sandbox clock).
    pub at: std::time::Instant,
}

/// The fake's state; clone freely.
#[derive(Clone)]
pub struct Bling {
    pub(super) config: Arc<Config>,
    pub(super) inner: Arc<Mutex<Inner>>,
    /// Faults, clock, webhook reordering and outbox.
    pub(super) rt: Runtime,
    pub(super) moves: tokio::sync::broadcast::Sender<SituacaoMove>,
}

impl Bling {
    pub fn new(config: Config) -> Self {
        let native = Native { server_error: errors::server_error, rate_limited: errors::rate_limited };
        // Bling's clock runs at real speed (`time_scale` shortens the rate windows instead).
        let rt = Runtime::new(native, 1.0);
        let moves = tokio::sync::broadcast::channel(4096).0;
        Self { config: Arc::new(config), inner: Arc::new(Mutex::new(Inner::new())), rt, moves }
    }

    /// Every order moved to another situação from now on, as it is applied: e.g. to time a
    /// status sync end to end. A receiver more than 4,096 moves behind loses the oldest.
    pub fn situacao_moves(&self) -> tokio::sync::broadcast::Receiver<SituacaoMove> {
        self.moves.subscribe()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    crate::common::runtime_accessors!();

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.rt.clock.now()
    }

    /// A rate window of Bling's (one second, one minute, one hour) shortened by `time_scale`.
    pub(super) fn window(&self, millis: f64) -> chrono::Duration {
        chrono::Duration::milliseconds((millis / self.config.time_scale) as i64)
    }

    /// Moves the fake's clock forward (access tokens and codes expire).
    pub fn advance(&self, by: Duration) {
        self.rt.clock.advance(by);
    }

    /// Ids from now on are greater than `first`: an account started again beside data kept from
    /// an earlier one hands out none of its ids.
    pub fn start_ids_at(&self, first: i64) {
        let mut inner = self.inner.lock();
        inner.next_id = inner.next_id.max(first);
    }

    /// The next authorization is denied (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.inner.lock().auth.deny_next = true;
    }

    /// Revokes every grant (the merchant removed the app): refresh tokens stop working.
    pub fn revoke_all(&self) {
        self.inner.lock().auth.revoke_all();
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Every access, refresh and authorization code the account has issued (for checks that
    /// none of them leaks into logs or traces).
    pub fn issued_secrets(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let a = &inner.auth;
        a.access
            .keys()
            .chain(a.codes.keys())
            .chain(a.retired_refresh.keys())
            .cloned()
            .chain(a.grants.iter().map(|g| g.refresh_token.clone()))
            .collect()
    }
}

/// A stored record without its bookkeeping fields (`_…`), as the API shows it.
pub fn public(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.retain(|k, _| !k.starts_with('_'));
    }
    v
}

/// A sales order and what has been posted from it.
#[derive(Debug, Clone)]
pub struct Order {
    /// The order as `GET /pedidos/vendas/{id}` shows it.
    pub body: Value,
    /// The depósito its stock was written off, while it is.
    pub estoque: Option<i64>,
    /// Its contas a receber are posted.
    pub contas: bool,
}

/// `B` sets the balance, `E` adds to it, `S` takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operacao {
    #[serde(rename = "B")]
    Balanco,
    #[serde(rename = "E")]
    Entrada,
    #[serde(rename = "S")]
    Saida,
}

impl Operacao {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "B" => Some(Self::Balanco),
            "E" => Some(Self::Entrada),
            "S" => Some(Self::Saida),
            _ => None,
        }
    }
}

/// One change to a product's stock on a depósito: a `POST /estoques`, or an order's stock
/// written off (`S`) or returned (`E`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movement {
    pub id: i64,
    pub produto: i64,
    pub deposito: i64,
    pub operacao: Operacao,
    /// Written as a string (`"2"`), exactly.
    pub quantidade: Decimal,
    /// The sales order that moved it, if one did.
    pub pedido: Option<i64>,
}

pub struct Inner {
    pub auth: Auth,
    /// API requests of the last second, and the day's count (day number, requests).
    pub requests: Window,
    pub day: (i64, u64),
    pub stats: Stats,
    next_id: i64,
    next_numero: i64,
    pub products: BTreeMap<i64, Value>,
    pub contacts: BTreeMap<i64, Value>,
    pub orders: BTreeMap<i64, Order>,
    /// (product, depósito) → balance.
    pub stock: BTreeMap<(i64, i64), Decimal>,
    pub movements: Vec<Movement>,
    pub situacoes: Vec<Situacao>,
    /// The Vendas module's transitions: (id, origem, destino).
    pub transicoes: Vec<(i64, i64, i64)>,
    pub formas: Vec<Value>,
}

impl Order {
    /// The (product, quantity) of each item that names a product: what its stock moves.
    pub fn lines(&self) -> Vec<(i64, Decimal)> {
        self.body["itens"]
            .as_array()
            .map(|itens| {
                itens.iter().filter_map(|i| Some((i["produto"]["id"].as_i64()?, decimal(&i["quantidade"])?))).collect()
            })
            .unwrap_or_default()
    }
}

impl Inner {
    pub fn new() -> Self {
        let mut contacts = BTreeMap::new();
        contacts.insert(seed::CONSUMIDOR_FINAL, seed::consumidor_final_record());
        Self {
            auth: Auth::default(),
            requests: Window::default(),
            day: (0, 0),
            stats: Stats::default(),
            next_id: 16_000_000_000,
            next_numero: 0,
            products: BTreeMap::new(),
            contacts,
            orders: BTreeMap::new(),
            stock: BTreeMap::new(),
            movements: Vec::new(),
            situacoes: seed::situacoes(),
            transicoes: seed::TRANSICOES.to_vec(),
            formas: seed::formas(),
        }
    }

    /// A new id, as Bling's: large and increasing across resources.
    pub fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// The next order number of the account.
    pub fn numero(&mut self) -> i64 {
        self.next_numero += 1;
        self.next_numero
    }

    pub fn balance(&self, produto: i64, deposito: i64) -> Decimal {
        self.stock.get(&(produto, deposito)).copied().unwrap_or_default()
    }

    /// Applies one movement to the balance and records it; its id.
    pub fn move_stock(
        &mut self,
        produto: i64,
        deposito: i64,
        operacao: Operacao,
        quantidade: Decimal,
        pedido: Option<i64>,
    ) -> i64 {
        let balance = self.stock.entry((produto, deposito)).or_default();
        *balance = match operacao {
            Operacao::Balanco => quantidade,
            Operacao::Entrada => *balance + quantidade,
            Operacao::Saida => *balance - quantidade,
        };
        let id = self.id();
        self.movements.push(Movement { id, produto, deposito, operacao, quantidade, pedido });
        id
    }
}
