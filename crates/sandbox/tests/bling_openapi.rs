//! The Bling sandbox answers as Bling's official OpenAPI spec says: every implemented path's
//! responses validate against the spec's response schemas (`$ref`s resolved, OpenAPI's
//! `nullable` honoured).

use std::time::Duration;

use ponte_sandbox::bling::{Bling, Config, DEPOSITO_GERAL};
use serde_json::{Map, Value, json};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/contracts/bling-openapi.json");

/// Inlines every `$ref` and turns OpenAPI 3.0's `nullable: true` into a JSON-schema null.
fn resolve(spec: &Value, v: &Value, depth: usize) -> Value {
    if depth > 40 {
        return json!({});
    }
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let target = r.trim_start_matches("#/").split('/').fold(spec, |v, k| &v[k]);
                return resolve(spec, target, depth + 1);
            }
            let mut out: Map<String, Value> = m.iter().map(|(k, v)| (k.clone(), resolve(spec, v, depth + 1))).collect();
            // The spec's ErrorResponse requires "error.type", "message" and "description" at the
            // top level, where they are not properties: they live inside `error` (as Bling sends
            // them and the contract notes say). Names that are not properties are dropped.
            let props: Vec<String> = out
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            if let Some(Value::Array(req)) = out.get_mut("required") {
                req.retain(|r| r.as_str().is_some_and(|s| props.iter().any(|p| p == s)));
            }
            if out.remove("nullable") == Some(Value::Bool(true)) {
                return json!({"anyOf": [Value::Object(out), {"type": "null"}]});
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(spec, x, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn schema_for(spec: &Value, path: &str, method: &str, status: u16) -> Value {
    let s = &spec["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(!s.is_null(), "the spec has no schema for {method} {path} {status}");
    resolve(spec, s, 0)
}

#[tokio::test]
async fn every_implemented_path_answers_as_the_official_spec_says() {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(SPEC).expect("shared/contracts beside the repo")).unwrap();
    let h = Bling::new(Config { per_second: 10_000, ..Config::default() }).spawn(None).await.unwrap();
    let cfg = h.bling.config().clone();
    let url = format!("{}/oauth/authorize?response_type=code&client_id={}&state=s", h.base_url, cfg.client_id);
    let (code, _) = h.authorize(&url).await.unwrap();
    let http = reqwest::Client::new();
    let tokens: Value = http
        .post(format!("{}/oauth/token", h.base_url))
        .basic_auth(&cfg.client_id, Some(&cfg.client_secret))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let parent = h
        .bling
        .seed_product(json!({"nome": "Camiseta", "codigo": "CAM", "preco": 59.9, "formato": "V", "unidade": "UN"}));
    let variation = h.bling.seed_product(json!({"nome": "Camiseta Azul M", "codigo": "CAM-AZ-M", "preco": 59.9,
        "variacao": {"nome": "Cor:Azul;Tamanho:M", "ordem": 1, "produtoPai": {"id": parent}}}));
    h.bling.set_stock(variation, DEPOSITO_GERAL, 7.into());

    let order = json!({"contato": {"id": 1}, "data": "2026-03-02", "dataSaida": "2026-03-02", "dataPrevista": "2026-03-02",
        "numeroLoja": "V-9", "itens": [{"produto": {"id": variation}, "quantidade": 1, "valor": 59.9, "descricao": "Camiseta"}],
        "parcelas": [{"dataVencimento": "2026-03-02", "valor": 59.9, "formaPagamento": {"id": 11010299}}]});
    let created: Value = http
        .post(format!("{}/pedidos/vendas", h.base_url))
        .bearer_auth(&token)
        .json(&order)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_id = created["data"]["id"].as_i64().unwrap();

    let cases: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        ("/empresas/me/dados-basicos", "get", "/empresas/me/dados-basicos".into(), None, 200),
        ("/produtos", "get", "/produtos?criterio=5".into(), None, 200),
        (
            "/produtos",
            "post",
            "/produtos".into(),
            Some(json!({"nome": "Copo", "codigo": "COPO", "preco": 4.99, "tipo": "P", "formato": "S"})),
            201,
        ),
        ("/produtos", "post", "/produtos".into(), Some(json!({"codigo": "SEM-NOME"})), 400),
        ("/produtos/{idProduto}", "get", format!("/produtos/{parent}"), None, 200),
        ("/produtos/{idProduto}", "get", "/produtos/1".into(), None, 404),
        (
            "/produtos/{idProduto}",
            "put",
            format!("/produtos/{variation}"),
            Some(json!({"nome": "Camiseta Azul M", "preco": 61.0})),
            200,
        ),
        ("/pedidos/vendas", "get", "/pedidos/vendas?numerosLojas[]=V-9".into(), None, 200),
        ("/pedidos/vendas", "post", "/pedidos/vendas".into(), Some(json!({"contato": {"id": 1}, "itens": []})), 400),
        ("/pedidos/vendas/{idPedidoVenda}", "get", format!("/pedidos/vendas/{order_id}"), None, 200),
        ("/pedidos/vendas/{idPedidoVenda}", "get", "/pedidos/vendas/1".into(), None, 404),
        (
            "/situacoes",
            "post",
            "/situacoes".into(),
            Some(json!({"idModuloSistema": 98310, "nome": "Em romaneio", "idHerdado": 15, "cor": "#1E90FF"})),
            201,
        ),
        ("/situacoes/modulos", "get", "/situacoes/modulos".into(), None, 200),
        ("/situacoes/modulos/{idModuloSistema}", "get", "/situacoes/modulos/98310".into(), None, 200),
        ("/formas-pagamentos", "get", "/formas-pagamentos".into(), None, 200),
        (
            "/formas-pagamentos",
            "post",
            "/formas-pagamentos".into(),
            Some(json!({"descricao": "Vale-Troca", "tipoPagamento": 21, "finalidade": 3, "destino": 1})),
            201,
        ),
        ("/formas-pagamentos", "post", "/formas-pagamentos".into(), Some(json!({"descricao": "Sem tipo"})), 400),
        ("/depositos", "get", "/depositos".into(), None, 200),
        ("/canais-venda", "get", "/canais-venda".into(), None, 200),
        ("/contatos/consumidor-final", "get", "/contatos/consumidor-final".into(), None, 200),
        ("/estoques/saldos", "get", format!("/estoques/saldos?idsProdutos[]={variation}"), None, 200),
        ("/estoques/saldos", "get", "/estoques/saldos".into(), None, 400),
    ];
    let mut checked = 0;
    for (path, method, url, body, status) in cases {
        let req = match method {
            "get" => http.get(format!("{}{url}", h.base_url)),
            "post" => http.post(format!("{}{url}", h.base_url)),
            _ => http.put(format!("{}{url}", h.base_url)),
        };
        let req = match &body {
            Some(b) => req.json(b),
            None => req,
        };
        let resp = req.bearer_auth(&token).timeout(Duration::from_secs(5)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {url}");
        let got: Value = resp.json().await.unwrap();
        let schema = schema_for(&spec, path, method, status);
        let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(&got).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{method} {url} ({status}) does not match the spec:\n{}\n{got}", errors.join("\n"));
        checked += 1;
    }
    assert_eq!(checked, 22);
}
