//! `ponte sandbox bling|bitrix24|cplug|envios360 <action>`: acts on a running sandbox through
//! the admin routes it serves, as a person in the outside system's own UI would (so the same
//! webhooks follow): a product added or changed in Bling, a sale rung up at the CPLUG till, a
//! shipment moved along by 360Envios; and what each holds, to watch a sync land.
//!
//! Where each sandbox is: `--url`, else `$PONTE_DATA_DIR/sandboxes.json` (written by `ponte dev
//! --sandbox`), else its default port on 127.0.0.1.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::output::{Output, table};

/// The file `ponte dev --sandbox` writes in its data directory: each sandbox's base URL.
pub const SANDBOXES_FILE: &str = "sandboxes.json";

/// Which sandbox and where.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The sandbox's base URL, e.g. http://127.0.0.1:9101 for Bling (default: from the data
    /// directory of a running `ponte dev --sandbox`, else the sandbox's default port).
    #[arg(long)]
    url: Option<String>,
    /// A table, or JSON.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Subcommand, Debug)]
pub enum BlingAction {
    /// Products, as a merchant manages them in Bling's UI.
    Product {
        #[command(subcommand)]
        action: BlingProduct,
    },
    /// Lists the account's products with their stock (all depósitos).
    Products(Target),
    /// Lists the account's sales orders: situação, total, and whether their stock is written off.
    Orders(Target),
}

#[derive(Subcommand, Debug)]
pub enum BlingProduct {
    /// Adds a product (Bling sends `product.created`).
    Create {
        /// The product's name.
        #[arg(long)]
        name: String,
        /// The product's code (SKU), unique in the account.
        #[arg(long)]
        sku: String,
        /// The price, e.g. 14.90.
        #[arg(long)]
        price: String,
        /// The stock on the Depósito Geral.
        #[arg(long)]
        stock: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Adds a catalog the account held before ponte was connected: `count` active products
    /// (codes `<prefix>-00001`…), without webhooks, for `ponte backfill start` to copy.
    Import {
        /// How many products (1 to 50,000).
        #[arg(long)]
        count: u64,
        /// The start of their codes.
        #[arg(long, default_value = "IMP")]
        prefix: String,
        #[command(flatten)]
        target: Target,
    },
    /// Changes a product found by its SKU or id (Bling sends `product.updated`).
    Update {
        /// The product's SKU.
        #[arg(long, required_unless_present = "id", conflicts_with = "id")]
        sku: Option<String>,
        /// The product's Bling id.
        #[arg(long)]
        id: Option<i64>,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new price, e.g. 14.90.
        #[arg(long)]
        price: Option<String>,
        /// The stock on the Depósito Geral.
        #[arg(long)]
        stock: Option<String>,
        /// Active (true) or inactive (false).
        #[arg(long)]
        active: Option<bool>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
pub enum Bitrix24Action {
    /// Lists the CRM's products.
    Products(Target),
}

#[derive(Subcommand, Debug)]
pub enum CplugAction {
    /// Rings up a sale at the till, at the catalog's price (CPLUG sends `sale.completed`).
    Sale {
        /// The product's SKU, as the till's catalog has it.
        #[arg(long)]
        sku: String,
        /// How many units.
        #[arg(long, default_value = "1")]
        quantity: String,
        /// The payment method: DINHEIRO, CREDITO, DEBITO, PIX.
        #[arg(long, default_value = "DINHEIRO")]
        payment: String,
        /// The unit price (default: the till's catalog price of the SKU).
        #[arg(long)]
        price: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Lists the till's catalog (what ponte sent it).
    Products(Target),
}

#[derive(Subcommand, Debug)]
pub enum Envios360Action {
    /// Moves a shipment to its next status (360Envios sends `order.status_changed`).
    Advance {
        /// The Bling order id (the 360 order's external id), or the 360 order id (o_…).
        #[arg(long)]
        order: String,
        #[command(flatten)]
        target: Target,
    },
    /// Lists the hub's orders and their status.
    Orders(Target),
}

/// One sandbox: its name in messages and in `sandboxes.json`, its default port.
#[derive(Clone, Copy)]
struct Sandbox {
    key: &'static str,
    name: &'static str,
    port: u16,
}

const BLING: Sandbox = Sandbox { key: "bling", name: "Bling", port: 9101 };
const BITRIX24: Sandbox = Sandbox { key: "bitrix24", name: "Bitrix24", port: 9102 };
const ENVIOS360: Sandbox = Sandbox { key: "envios360", name: "360Envios", port: 9103 };
const CPLUG: Sandbox = Sandbox { key: "cplug", name: "CPLUG", port: 9104 };

/// Writes `sandboxes.json` in `data_dir`: each running sandbox's base URL.
pub fn write_addresses(data_dir: &std::path::Path, addrs: &[(&str, String)]) -> anyhow::Result<()> {
    let map: Map<String, Value> = addrs.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let path = data_dir.join(SANDBOXES_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(map))?)
        .with_context(|| format!("writing {}", path.display()))
}

/// An HTTP client on one sandbox.
struct Client {
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(sandbox: Sandbox, target: &Target) -> anyhow::Result<Self> {
        let base = match &target.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let dir = std::env::var("PONTE_DATA_DIR").unwrap_or_else(|_| ".ponte".into());
                let file = std::path::Path::new(&dir).join(SANDBOXES_FILE);
                std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v[sandbox.key].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("http://127.0.0.1:{}", sandbox.port))
            }
        };
        let url = reqwest::Url::parse(&base)
            .map_err(|_| anyhow::anyhow!("--url '{base}' is not a URL such as http://127.0.0.1:{}", sandbox.port))?;
        anyhow::ensure!(
            matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
            "--url '{base}': the sandboxes' admin routes are reached on 127.0.0.1 only"
        );
        let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
        Ok(Self { sandbox, base, http })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|_| {
            anyhow::anyhow!(
                "cannot reach the {} sandbox at {}: start `ponte dev --sandbox` (or `ponte sandbox {}`), or give --url",
                self.sandbox.name,
                self.base,
                self.sandbox.key
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            anyhow::bail!("the {} sandbox refused ({}): {}", self.sandbox.name, status.as_u16(), reason(&value));
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }
}

/// One line from a sandbox's refusal: the fields at fault with their messages, else its message.
fn reason(v: &Value) -> String {
    // Bling: {"error": {"description", "fields": [{"element", "msg"}]}}
    if let Some(fields) = v["error"]["fields"].as_array().filter(|f| !f.is_empty()) {
        return fields
            .iter()
            .map(|f| format!("{}: {}", f["element"].as_str().unwrap_or("?"), f["msg"].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join("; ");
    }
    // CPLUG: {"message", "errors": {field: [messages]}}
    if let Some(errors) = v["errors"].as_object().filter(|e| !e.is_empty()) {
        return errors
            .iter()
            .map(|(k, m)| {
                let msgs: Vec<&str> = m.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                format!("{k}: {}", msgs.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    for candidate in [&v["error"]["description"], &v["error"]["message"], &v["error_description"], &v["message"]] {
        if let Some(s) = candidate.as_str().filter(|s| !s.is_empty()) {
            return s.to_owned();
        }
    }
    match v {
        Value::String(s) if !s.is_empty() => s.lines().next().unwrap_or_default().to_owned(),
        other => other.to_string(),
    }
}

fn print(output: Output, value: &Value, headers: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => print!("{}", table(headers, &rows)),
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A decimal number given on the command line, checked here so the error names the flag.
fn number(flag: &str, s: &str) -> anyhow::Result<Value> {
    let ok = s.trim().parse::<f64>().is_ok_and(|n| n.is_finite() && n >= 0.0);
    anyhow::ensure!(ok, "{flag}: '{s}' is not a number ≥ 0 such as 14.90");
    Ok(json!(s.trim()))
}

/// The Bling products with their stock summed over the depósitos.
fn bling_products(state: &Value) -> Vec<Value> {
    let mut stock: std::collections::BTreeMap<i64, f64> = Default::default();
    for s in state["stock"].as_array().into_iter().flatten() {
        let saldo = s["saldo"].as_str().and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
        *stock.entry(s["produto"].as_i64().unwrap_or(0)).or_default() += saldo;
    }
    state["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["situacao"] != "E")
        .map(|p| {
            let mut p = p.clone();
            let id = p["id"].as_i64().unwrap_or(0);
            p["estoque"] = json!(stock.get(&id).copied().unwrap_or(0.0));
            p
        })
        .collect()
}

/// The columns of a Bling sandbox product in a table.
const PRODUCT_COLUMNS: [&str; 6] = ["ID", "SKU", "NAME", "PRICE", "STOCK", "SITUACAO"];

/// A Bling sandbox product as a table row, under [`PRODUCT_COLUMNS`].
fn product_row(p: &Value) -> Vec<String> {
    ["id", "codigo", "nome", "preco", "estoque", "situacao"].iter().map(|k| text(&p[*k])).collect()
}

pub async fn bling(action: BlingAction) -> anyhow::Result<()> {
    match action {
        BlingAction::Product { action: BlingProduct::Create { name, sku, price, stock, target } } => {
            let c = Client::new(BLING, &target)?;
            let mut body = json!({"nome": name, "codigo": sku, "preco": number("--price", &price)?});
            if let Some(s) = stock {
                body["estoque"] = number("--stock", &s)?;
            }
            let made = c.send(reqwest::Method::POST, "/__admin/products", Some(body)).await?;
            let p = &made["data"];
            print(target.output, p, &PRODUCT_COLUMNS, vec![product_row(p)])
        }
        BlingAction::Product { action: BlingProduct::Import { count, prefix, target } } => {
            let c = Client::new(BLING, &target)?;
            let made = c
                .send(
                    reqwest::Method::POST,
                    "/__admin/products/import",
                    Some(json!({"count": count, "prefix": prefix})),
                )
                .await?;
            let d = &made["data"];
            print(
                target.output,
                d,
                &["IMPORTED", "FIRST ID", "LAST ID"],
                vec![vec![d["importados"].to_string(), d["primeiroId"].to_string(), d["ultimoId"].to_string()]],
            )
        }
        BlingAction::Product { action: BlingProduct::Update { sku, id, name, price, stock, active, target } } => {
            let c = Client::new(BLING, &target)?;
            let id = match (id, sku) {
                (Some(id), _) => id,
                (None, Some(sku)) => {
                    let state = c.get("/__admin/state").await?;
                    bling_products(&state)
                        .iter()
                        .find(|p| p["codigo"] == sku.as_str())
                        .and_then(|p| p["id"].as_i64())
                        .with_context(|| format!("--sku: no product '{sku}' in the Bling sandbox"))?
                }
                (None, None) => anyhow::bail!("give --sku or --id"),
            };
            let mut body = json!({});
            if let Some(n) = name {
                body["nome"] = json!(n);
            }
            if let Some(p) = price {
                body["preco"] = number("--price", &p)?;
            }
            if let Some(s) = stock {
                body["estoque"] = number("--stock", &s)?;
            }
            if let Some(a) = active {
                body["situacao"] = json!(if a { "A" } else { "I" });
            }
            anyhow::ensure!(
                body.as_object().is_some_and(|b| !b.is_empty()),
                "nothing to change: give --name, --price, --stock or --active"
            );
            let changed = c.send(reqwest::Method::PATCH, &format!("/__admin/products/{id}"), Some(body)).await?;
            let p = &changed["data"];
            print(target.output, p, &PRODUCT_COLUMNS, vec![product_row(p)])
        }
        BlingAction::Products(target) => {
            let state = Client::new(BLING, &target)?.get("/__admin/state").await?;
            let products = bling_products(&state);
            let rows = products.iter().map(product_row).collect();
            print(target.output, &json!(products), &PRODUCT_COLUMNS, rows)
        }
        BlingAction::Orders(target) => {
            let state = Client::new(BLING, &target)?.get("/__admin/state").await?;
            let names: std::collections::HashMap<i64, String> = state["situacoes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s["id"].as_i64()?, s["nome"].as_str()?.to_owned())))
                .collect();
            let posted: std::collections::HashMap<i64, bool> = state["postings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p["pedido"].as_i64()?, p["estoqueLancado"].as_bool()?)))
                .collect();
            let orders: Vec<Value> = state["orders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    let id = o["id"].as_i64().unwrap_or(0);
                    let situacao = o["situacao"]["id"].as_i64().unwrap_or(0);
                    let itens: Vec<String> = o["itens"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|i| format!("{}×{}", text(&i["quantidade"]), text(&i["codigo"])))
                        .collect();
                    json!({"id": id, "numero": o["numero"], "numeroLoja": o["numeroLoja"], "total": o["total"],
                           "situacao": {"id": situacao, "nome": names.get(&situacao)},
                           "estoqueLancado": posted.get(&id).copied().unwrap_or(false), "itens": itens.join(", ")})
                })
                .collect();
            let rows = orders
                .iter()
                .map(|o| {
                    vec![
                        text(&o["id"]),
                        text(&o["numero"]),
                        text(&o["numeroLoja"]).replace('"', ""),
                        text(&o["situacao"]["nome"]),
                        text(&o["total"]),
                        if o["estoqueLancado"] == true { "yes".into() } else { "no".into() },
                        text(&o["itens"]),
                    ]
                })
                .collect();
            print(
                target.output,
                &json!(orders),
                &["ID", "NUMERO", "NUMERO_LOJA", "SITUACAO", "TOTAL", "STOCK_WRITTEN_OFF", "ITEMS"],
                rows,
            )
        }
    }
}

pub async fn bitrix24(action: Bitrix24Action) -> anyhow::Result<()> {
    let Bitrix24Action::Products(target) = action;
    let state = Client::new(BITRIX24, &target)?.get("/__admin/state").await?;
    let products = state["products"].as_array().cloned().unwrap_or_default();
    let rows = products
        .iter()
        .map(|p| vec![text(&p["ID"]), text(&p["NAME"]), text(&p["PRICE"]), text(&p["ACTIVE"])])
        .collect();
    print(target.output, &json!(products), &["ID", "NAME", "PRICE", "ACTIVE"], rows)
}

/// The first account of the till (the one `ponte dev` connects).
fn till_account(state: &Value) -> Value {
    state["accounts"].as_array().and_then(|a| a.first()).cloned().unwrap_or(Value::Null)
}

pub async fn cplug(action: CplugAction) -> anyhow::Result<()> {
    match action {
        CplugAction::Sale { sku, quantity, payment, price, target } => {
            let c = Client::new(CPLUG, &target)?;
            let quantity = number("--quantity", &quantity)?;
            anyhow::ensure!(
                quantity.as_str().and_then(|q| q.parse::<f64>().ok()).is_some_and(|q| q > 0.0),
                "--quantity: must be greater than 0"
            );
            let unit_price = match price {
                Some(p) => number("--price", &p)?,
                None => {
                    let account = till_account(&c.get("/__admin/state").await?);
                    let product =
                        account["products"].as_array().into_iter().flatten().find(|p| p["sku"] == sku.as_str());
                    match product {
                        Some(p) => p["price"].clone(),
                        None => anyhow::bail!(
                            "--sku: '{sku}' is not in the CPLUG till's catalog (yet): `ponte sandbox cplug products` lists it, or give --price"
                        ),
                    }
                }
            };
            let mut sale = Map::new();
            sale.insert("items".into(), json!([{"sku": sku, "quantity": quantity, "unit_price": unit_price}]));
            // One payment of the whole, as the till takes it.
            let total = line_total(&sale);
            sale.insert(
                "payments".into(),
                json!([{"method": payment.to_ascii_uppercase(), "amount": total, "installments": 1}]),
            );
            let rung = c.send(reqwest::Method::POST, "/__admin/sales", Some(Value::Object(sale))).await?;
            let s = &rung["sale"];
            print(
                target.output,
                &rung,
                &["SALE", "STORE", "TOTAL", "EVENT"],
                vec![vec![text(&s["id"]), text(&s["store_id"]), text(&s["total"]), text(&rung["event_id"])]],
            )
        }
        CplugAction::Products(target) => {
            let account = till_account(&Client::new(CPLUG, &target)?.get("/__admin/state").await?);
            let products = account["products"].as_array().cloned().unwrap_or_default();
            let rows = products
                .iter()
                .map(|p| {
                    vec![text(&p["id"]), text(&p["sku"]), text(&p["name"]), text(&p["price"]), text(&p["external_id"])]
                })
                .collect();
            print(target.output, &json!(products), &["ID", "SKU", "NAME", "PRICE", "BLING_ID"], rows)
        }
    }
}

/// quantity × unit price of the one line, rounded to the cent half away from zero as a till
/// rounds, as a JSON string.
fn line_total(sale: &Map<String, Value>) -> Value {
    use rust_decimal::{Decimal, RoundingStrategy};
    let item = &sale["items"][0];
    let d = |v: &Value| text(v).parse::<Decimal>().unwrap_or_default();
    let total = d(&item["quantity"])
        .checked_mul(d(&item["unit_price"]))
        .unwrap_or_default()
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    json!(format!("{total:.2}"))
}

/// Every merchant's orders at the 360Envios sandbox.
async fn hub_orders(c: &Client) -> anyhow::Result<Vec<Value>> {
    let state = c.get("/__admin/state").await?;
    Ok(state["merchants"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["orders"].as_array().cloned().unwrap_or_default())
        .collect())
}

pub async fn envios360(action: Envios360Action) -> anyhow::Result<()> {
    match action {
        Envios360Action::Advance { order, target } => {
            let c = Client::new(ENVIOS360, &target)?;
            let orders = hub_orders(&c).await?;
            let id = orders
                .iter()
                .find(|o| o["external_id"] == order.as_str() || o["id"] == order.as_str())
                .and_then(|o| o["id"].as_str())
                .with_context(|| {
                    format!("--order: 360Envios has no order '{order}' (a Bling order reaches it once released: `ponte sandbox envios360 orders`)")
                })?
                .to_owned();
            let moved = c.send(reqwest::Method::POST, &format!("/__admin/orders/{id}/advance"), None).await?;
            print(
                target.output,
                &moved,
                &["ORDER", "STATUS", "EVENT"],
                vec![vec![text(&moved["id"]), text(&moved["status"]), text(&moved["event_id"])]],
            )
        }
        Envios360Action::Orders(target) => {
            let orders = hub_orders(&Client::new(ENVIOS360, &target)?).await?;
            let rows = orders
                .iter()
                .map(|o| vec![text(&o["id"]), text(&o["external_id"]), text(&o["status"]), text(&o["tracking_code"])])
                .collect();
            print(target.output, &json!(orders), &["ORDER", "BLING_ORDER", "STATUS", "TRACKING"], rows)
        }
    }
}
