//! The Bling sandbox answers as Bling's official OpenAPI spec says: every implemented path's
//! responses, successes and refusals, validate against the spec's response schemas (`$ref`s
//! resolved, OpenAPI's `nullable` honoured), and a refusal the spec has no schema for (a bad
//! body, path, method or header) still comes in Bling's `ErrorResponse`.

use std::time::Duration;

use ponte_sandbox::bling::{CANAL_PDV, CONSUMIDOR_FINAL, Config, DEPOSITO_GERAL, DEPOSITOS, FORMAS, MODULO_VENDAS};
use serde_json::{Map, Value, json};

use crate::support::BlingClient;

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

/// The response schema the spec gives `method path` for `status`; for an error status the spec
/// leaves out (a 400 of a list, a 405), Bling's `ErrorResponse`.
fn schema_for(spec: &Value, path: &str, method: &str, status: u16) -> Value {
    let s = &spec["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    if s.is_null() && status >= 400 {
        return resolve(spec, &spec["components"]["schemas"]["ErrorResponse"], 0);
    }
    assert!(!s.is_null(), "the spec has no schema for {method} {path} {status}");
    resolve(spec, s, 0)
}

fn load_spec() -> Value {
    serde_json::from_str(&std::fs::read_to_string(SPEC).expect("shared/contracts beside the repo")).unwrap()
}

/// One call and the answer the spec expects: (spec path, method, URL under the API base,
/// body, status).
type Case = (&'static str, &'static str, String, Option<Value>, u16);

/// Whether `got` matches `schema`: the mismatches, none when it does.
fn mismatches(schema: &Value, got: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{e}"));
    validator.iter_errors(got).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}

/// Makes each call and checks the status and, where the spec has one, the body against its
/// schema; answers how many were checked. A 204 must come without a body.
async fn check(spec: &Value, base: &str, token: &str, cases: Vec<Case>) -> usize {
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, method, url, body, status) in cases {
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = http.request(m, format!("{base}{url}")).bearer_auth(token).timeout(Duration::from_secs(5));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {url}");
        if status == 204 {
            assert!(resp.bytes().await.unwrap().is_empty(), "{method} {url}: a 204 has no body");
            checked += 1;
            continue;
        }
        let got: Value = resp.json().await.unwrap();
        let errors = mismatches(&schema_for(spec, path, method, status), &got);
        assert!(errors.is_empty(), "{method} {url} ({status}) does not match the spec:\n{}\n{got}", errors.join("\n"));
        checked += 1;
    }
    checked
}

/// A sandbox with lenient limits and a connected app's token.
async fn connected() -> (ponte_sandbox::bling::Handle, String) {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    (h, token)
}

#[tokio::test]
async fn every_implemented_path_answers_as_the_official_spec_says() {
    let spec = load_spec();
    let (h, token) = connected().await;
    let http = reqwest::Client::new();
    let parent = h
        .bling
        .seed_product(json!({"nome": "Camiseta", "codigo": "CAM", "preco": 59.9, "formato": "V", "unidade": "UN"}));
    let variation = h.bling.seed_product(json!({"nome": "Camiseta Azul M", "codigo": "CAM-AZ-M", "preco": 59.9,
        "variacao": {"nome": "Cor:Azul;Tamanho:M", "ordem": 1, "produtoPai": {"id": parent}}}));
    h.bling.set_stock(variation, DEPOSITO_GERAL, 7.into());

    let order = json!({"contato": {"id": CONSUMIDOR_FINAL}, "data": "2026-03-02", "dataSaida": "2026-03-02", "dataPrevista": "2026-03-02",
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

    let cases: Vec<Case> = vec![
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
    let checked = check(&spec, &h.base_url, &token, cases).await;
    assert_eq!(checked, 22);
}

#[tokio::test]
async fn contacts_orders_stock_and_situacoes_answer_as_the_spec_says() {
    let spec = load_spec();
    let (h, token) = connected().await;
    let produto = h.bling.seed_product(json!({"nome": "Caneca", "codigo": "CAN-1", "preco": 30}));
    h.bling.set_stock(produto, DEPOSITO_GERAL, 10.into());
    let http = reqwest::Client::new();
    let post =
        |path: &str, body: Value| http.post(format!("{}{path}", h.base_url)).bearer_auth(&token).json(&body).send();
    let maria = json!({"nome": "Maria Silva", "tipo": "F", "situacao": "A", "numeroDocumento": "123.456.789-09",
        "email": "maria@example.com", "celular": "(11) 99999-0000",
        "endereco": {"geral": {"endereco": "Rua Direita", "numero": "10", "bairro": "Sé", "municipio": "São Paulo",
                                "uf": "SP", "cep": "01001-000"}}});
    let contato: Value = post("/contatos", maria).await.unwrap().json().await.unwrap();
    let contato = contato["data"]["id"].as_i64().unwrap();
    let order = |numero_loja: &str| {
        json!({"contato": {"id": contato}, "data": "2026-03-02", "dataSaida": "2026-03-02", "dataPrevista": "2026-03-05",
            "numeroLoja": numero_loja, "loja": {"id": CANAL_PDV},
            "itens": [{"produto": {"id": produto}, "codigo": "CAN-1", "quantidade": 2, "valor": 30, "descricao": "Caneca"}],
            "transporte": {"fretePorConta": 0, "frete": 15,
                "etiqueta": {"nome": "Maria Silva", "endereco": "Rua Direita", "numero": "10", "complemento": "ap 1",
                             "municipio": "São Paulo", "uf": "SP", "cep": "01001-000", "bairro": "Sé"}},
            "parcelas": [{"dataVencimento": "2026-03-02", "valor": 75, "formaPagamento": {"id": FORMAS[0].0}}]})
    };
    let created: Value = post("/pedidos/vendas", order("V-1")).await.unwrap().json().await.unwrap();
    let id = created["data"]["id"].as_i64().unwrap();
    let got: Value = http
        .get(format!("{}/pedidos/vendas/{id}", h.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut edited = got["data"].clone();
    edited["observacoes"] = json!("Entregar à tarde");
    let deposito = DEPOSITOS[1].0;
    let cases: Vec<Case> = vec![
        ("/contatos", "post", "/contatos".into(), Some(json!({"nome": "Sem tipo", "situacao": "A"})), 400),
        (
            "/contatos",
            "post",
            "/contatos".into(),
            Some(json!({"nome": "CPF errado", "tipo": "F", "situacao": "A", "numeroDocumento": "12345678900"})),
            400,
        ),
        ("/contatos", "get", "/contatos?numeroDocumento=12345678909".into(), None, 200),
        ("/contatos", "get", "/contatos?idsContatos[]=maria".into(), None, 400),
        ("/contatos/{idContato}", "get", format!("/contatos/{contato}"), None, 200),
        ("/contatos/{idContato}", "get", "/contatos/1".into(), None, 404),
        ("/produtos", "get", "/produtos?criterio=5&codigos[]=CAN-1".into(), None, 200),
        ("/produtos", "get", "/produtos?idsProdutos[]=abc".into(), None, 400),
        ("/pedidos/vendas", "post", "/pedidos/vendas".into(), Some(order("V-2")), 201),
        (
            "/pedidos/vendas",
            "post",
            "/pedidos/vendas".into(),
            Some(
                json!({"contato": {"id": contato}, "itens": [{"produto": {"id": produto}, "quantidade": 1, "valor": 30}]}),
            ),
            400,
        ),
        (
            "/pedidos/vendas",
            "get",
            "/pedidos/vendas?numerosLojas[]=V-1&idContato=".to_owned() + &contato.to_string(),
            None,
            200,
        ),
        ("/pedidos/vendas/{idPedidoVenda}", "get", format!("/pedidos/vendas/{id}"), None, 200),
        ("/pedidos/vendas/{idPedidoVenda}", "put", format!("/pedidos/vendas/{id}"), Some(edited.clone()), 200),
        ("/pedidos/vendas/{idPedidoVenda}", "put", format!("/pedidos/vendas/{id}"), Some(edited), 400),
        ("/pedidos/vendas/{idPedidoVenda}", "put", "/pedidos/vendas/1".into(), Some(order("V-1")), 404),
        (
            "/pedidos/vendas/{idPedidoVenda}/situacoes/{idSituacao}",
            "patch",
            format!("/pedidos/vendas/{id}/situacoes/15"),
            None,
            204,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/situacoes/{idSituacao}",
            "patch",
            format!("/pedidos/vendas/{id}/situacoes/28"),
            None,
            400,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/situacoes/{idSituacao}",
            "patch",
            format!("/pedidos/vendas/{id}/situacoes/999"),
            None,
            404,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/lancar-estoque/{idDeposito}",
            "post",
            format!("/pedidos/vendas/{id}/lancar-estoque/{deposito}"),
            None,
            204,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/lancar-estoque/{idDeposito}",
            "post",
            format!("/pedidos/vendas/{id}/lancar-estoque/{deposito}"),
            None,
            400,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/lancar-estoque/{idDeposito}",
            "post",
            format!("/pedidos/vendas/{id}/lancar-estoque/1"),
            None,
            404,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/estornar-estoque",
            "post",
            format!("/pedidos/vendas/{id}/estornar-estoque"),
            None,
            204,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/estornar-estoque",
            "post",
            "/pedidos/vendas/1/estornar-estoque".into(),
            None,
            404,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/lancar-estoque",
            "post",
            format!("/pedidos/vendas/{id}/lancar-estoque"),
            None,
            204,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/lancar-contas",
            "post",
            format!("/pedidos/vendas/{id}/lancar-contas"),
            None,
            204,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/lancar-contas",
            "post",
            format!("/pedidos/vendas/{id}/lancar-contas"),
            None,
            400,
        ),
        ("/pedidos/vendas/{idPedidoVenda}", "delete", format!("/pedidos/vendas/{id}"), None, 400),
        (
            "/pedidos/vendas/{idPedidoVenda}/estornar-contas",
            "post",
            format!("/pedidos/vendas/{id}/estornar-contas"),
            None,
            204,
        ),
        (
            "/pedidos/vendas/{idPedidoVenda}/estornar-contas",
            "post",
            format!("/pedidos/vendas/{id}/estornar-contas"),
            None,
            400,
        ),
        ("/pedidos/vendas/{idPedidoVenda}/lancar-contas", "post", "/pedidos/vendas/1/lancar-contas".into(), None, 404),
        ("/pedidos/vendas/{idPedidoVenda}", "delete", format!("/pedidos/vendas/{id}"), None, 204),
        ("/pedidos/vendas/{idPedidoVenda}", "delete", format!("/pedidos/vendas/{id}"), None, 404),
        (
            "/estoques",
            "post",
            "/estoques".into(),
            Some(json!({"produto": {"id": produto}, "deposito": {"id": deposito}, "operacao": "E", "quantidade": 5,
                        "preco": 30, "custo": 12.5, "observacoes": "Compra"})),
            201,
        ),
        ("/estoques", "post", "/estoques".into(), Some(json!({"produto": {"id": produto}, "operacao": "X"})), 400),
        (
            "/estoques/saldos/{idDeposito}",
            "get",
            format!("/estoques/saldos/{deposito}?idsProdutos[]={produto}"),
            None,
            200,
        ),
        ("/estoques/saldos/{idDeposito}", "get", format!("/estoques/saldos/1?idsProdutos[]={produto}"), None, 404),
        ("/situacoes/{idSituacao}", "get", "/situacoes/15".into(), None, 200),
        ("/situacoes/{idSituacao}", "get", "/situacoes/999".into(), None, 404),
        (
            "/situacoes",
            "post",
            "/situacoes".into(),
            Some(json!({"idModuloSistema": MODULO_VENDAS, "nome": "em andamento", "idHerdado": 15})),
            400,
        ),
        (
            "/situacoes/modulos/{idModuloSistema}/transicoes",
            "get",
            format!("/situacoes/modulos/{MODULO_VENDAS}/transicoes"),
            None,
            200,
        ),
        ("/situacoes/modulos/{idModuloSistema}/transicoes", "get", "/situacoes/modulos/1/transicoes".into(), None, 404),
        (
            "/situacoes/modulos/{idModuloSistema}/acoes",
            "get",
            format!("/situacoes/modulos/{MODULO_VENDAS}/acoes"),
            None,
            200,
        ),
    ];
    let n = cases.len();
    assert_eq!(check(&spec, &h.base_url, &token, cases).await, n);
}

#[tokio::test]
async fn refusals_outside_the_handlers_use_blings_error_envelope() {
    let spec = load_spec();
    let error_response = resolve(&spec, &spec["components"]["schemas"]["ErrorResponse"], 0);
    let (h, token) = connected().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", h.base_url);
    let answers = [
        // A body that is not JSON.
        http.post(url("/pedidos/vendas"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json"),
        // An empty body.
        http.post(url("/contatos")).bearer_auth(&token).header("content-type", "application/json"),
        // A path id that is not a number.
        http.get(url("/pedidos/vendas/abc")).bearer_auth(&token),
        // A method the path does not take (Bling has no PATCH on an order).
        http.patch(url("/pedidos/vendas/1")).bearer_auth(&token),
        // A path Bling does not serve.
        http.get(url("/no-such-resource")).bearer_auth(&token),
    ];
    let mut seen = Vec::new();
    for req in answers {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("a JSON body, never plain text");
        let errors = mismatches(&error_response, &body);
        assert!(errors.is_empty(), "{status} {body}: {}", errors.join("\n"));
        seen.push((status, body["error"]["type"].as_str().unwrap().to_owned()));
    }
    let expected = [
        (400, "INVALID_REQUEST_BODY"),
        (400, "MISSING_REQUIRED_FIELD_ERROR"),
        (404, "RESOURCE_NOT_FOUND"),
        (405, "METHOD_NOT_ALLOWED"),
        (404, "RESOURCE_NOT_FOUND"),
    ];
    assert_eq!(seen, expected.map(|(s, t)| (s, t.to_owned())));

    // Without an Authorization header: the OAuth-style type the notes document (outside the
    // spec's enum), in the same envelope.
    let r = http.get(url("/pedidos/vendas")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"type": "invalid_request", "message": "invalid_request", "description": "Malformed auth header"}})
    );
}
