//! How many `TranslateProduct` calls per second the mapping service answers over gRPC, beside an
//! empty call (`grpc.health.v1.Health/Check`) to the same server in the same run.
//!
//! `mapping-bench [--seconds S] [--rounds R] [--concurrency N] [--connections C]` starts
//! auth-token and mapping in-process (real gRPC over TCP on 127.0.0.1, a fresh PostgreSQL
//! database, Redis), gives a tenant the builtin Bitrix24 set plus three mappings of its own, then
//! for each round runs N callers over C connections for S seconds on the empty call and S seconds
//! on `TranslateProduct` (a 16-field Bling product → Bitrix24). Prints one line per round and a JSON
//! summary. Bounded: about R × 2 × S seconds plus a 2 s warm-up.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ponte_core::structs::{from_struct, to_struct};
use ponte_proto::v1::{
    ConcatenateTransform, CreateFieldMappingRequest, CreateTenantRequest, FieldMapping, MappingDirection,
    MappingTarget, NumberFormatTransform, Transform, TranslateDirection, TranslateProductRequest, TruncateTransform,
    ValueMapTransform, auth_token_service_client::AuthTokenServiceClient, mapping_service_client::MappingServiceClient,
    transform::Kind,
};
use ponte_tests::Channel;
use ponte_tests::Mesh;
use serde_json::json;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// `TranslateProduct` calls per second beside an empty call to the same server.
#[derive(clap::Parser, Debug)]
#[command(name = "mapping-bench")]
struct Args {
    /// Seconds per measurement, in (0, 60].
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds of the empty call and TranslateProduct.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// gRPC connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

#[derive(Clone, Copy, Debug)]
enum Call {
    Empty,
    Translate,
}

/// Calls answered per second by `concurrency` callers spread over `channels` for `seconds`.
async fn measure(
    call: Call,
    channels: &[Channel],
    concurrency: usize,
    seconds: f64,
    request: &TranslateProductRequest,
) -> anyhow::Result<f64> {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            let (ok, failed, request) = (ok.clone(), failed.clone(), request.clone());
            tokio::spawn(async move {
                let mut health = HealthClient::new(channel.clone());
                let mut mapping = MappingServiceClient::new(channel);
                while Instant::now() < deadline {
                    let answered = match call {
                        Call::Empty => health.check(HealthCheckRequest { service: String::new() }).await.map(drop),
                        Call::Translate => mapping.translate_product(request.clone()).await.map(drop),
                    };
                    match answered {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} {call:?} calls failed");
    Ok(ok.load(Ordering::Relaxed) as f64 / elapsed)
}

fn mapping(bling: &str, field: &str, direction: MappingDirection, transforms: Vec<Kind>) -> CreateFieldMappingRequest {
    CreateFieldMappingRequest {
        mapping: Some(FieldMapping {
            tenant_id: "bench".into(),
            target: MappingTarget::Bitrix24 as i32,
            bling_field: bling.into(),
            target_field: field.into(),
            direction: direction as i32,
            transforms: transforms.into_iter().map(|k| Transform { kind: Some(k) }).collect(),
            ..Default::default()
        }),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { seconds, rounds, concurrency, connections } = clap::Parser::parse();
    anyhow::ensure!(seconds > 0.0 && seconds <= 60.0, "--seconds must be in (0, 60]");
    anyhow::ensure!((1..=10).contains(&rounds), "--rounds must be 1..=10");
    anyhow::ensure!(
        (1..=1024).contains(&concurrency) && (1..=64).contains(&connections),
        "bad --concurrency/--connections"
    );

    let mesh = Mesh::start(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC]).await;
    AuthTokenServiceClient::new(mesh.channel("auth-token").await)
        .create_tenant(CreateTenantRequest { tenant_id: "bench".into(), display_name: "Bench".into() })
        .await?;
    let mut client = MappingServiceClient::new(mesh.channel("mapping").await);
    use MappingDirection::{OneWay, TwoWay};
    let number = |d, s: &str| Kind::NumberFormat(NumberFormatTransform { decimals: d, decimal_separator: s.into() });
    client.create_field_mapping(mapping("fornecedor.precoCusto", "PROPERTY_120", TwoWay, vec![number(2, ",")])).await?;
    client
        .create_field_mapping(mapping(
            "formato",
            "PROPERTY_121",
            TwoWay,
            vec![Kind::ValueMap(ValueMapTransform {
                values: [
                    ("S".into(), "simples".into()),
                    ("V".into(), "com variações".into()),
                    ("E".into(), "com composição".into()),
                ]
                .into(),
                pass_unmapped: false,
            })],
        ))
        .await?;
    client
        .create_field_mapping(mapping(
            "nome",
            "PROPERTY_122",
            OneWay,
            vec![
                Kind::Concatenate(ConcatenateTransform {
                    source_fields: vec!["codigo".into()],
                    separator: " / ".into(),
                }),
                Kind::Truncate(TruncateTransform { max_chars: 40 }),
            ],
        ))
        .await?;

    let product = json!({"id": 16059781281_i64, "nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9,
        "situacao": "A", "formato": "V", "tipo": "P", "unidade": "UN", "gtin": "7891234567895", "pesoLiquido": 0.2,
        "pesoBruto": 0.25, "descricaoCurta": "Camiseta de algodão", "estoque": {"minimo": 2, "maximo": 50},
        "fornecedor": {"precoCusto": 31.5, "codigo": "F-1"}, "marca": "Hering", "volumes": 1});
    let request = TranslateProductRequest {
        tenant_id: "bench".into(),
        direction: TranslateDirection::BlingToBitrix24 as i32,
        fields: Some(to_struct(&product)),
    };
    let answer = client.translate_product(request.clone()).await?.into_inner();
    let translated = from_struct(&answer.fields.unwrap_or_default());
    let expected = json!({"PROPERTY_BLING_ID": 16059781281_i64, "NAME": "Camiseta azul M", "XML_ID": "CAM-AZ-M",
        "PRICE": 59.9, "ACTIVE": "Y", "PROPERTY_120": "31,50", "PROPERTY_121": "com variações",
        "PROPERTY_122": "Camiseta azul M / CAM-AZ-M"});
    anyhow::ensure!(translated == expected, "unexpected translation: {translated}");

    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(mesh.channel("mapping").await);
    }
    // Warm-up: connections, the tenant check and the compiled mappings are cached after this.
    measure(Call::Empty, &channels, concurrency, 1.0, &request).await?;
    measure(Call::Translate, &channels, concurrency, 1.0, &request).await?;

    let (mut empty, mut translate) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let e = measure(Call::Empty, &channels, concurrency, seconds, &request).await?;
        let t = measure(Call::Translate, &channels, concurrency, seconds, &request).await?;
        println!("round {round}: empty call {e:.0}/s, TranslateProduct {t:.0}/s, ratio {:.3}", t / e);
        empty.push(e.round());
        translate.push(t.round());
    }
    let (e, t) = (median(empty.clone()), median(translate.clone()));
    println!(
        "{}",
        json!({"seconds": seconds, "rounds": rounds, "concurrency": concurrency, "connections": connections,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "empty_per_s": empty, "translate_per_s": translate, "median_empty_per_s": e.round(),
            "median_translate_per_s": t.round(), "ratio": (t / e * 1000.0).round() / 1000.0})
    );
    mesh.shutdown().await;
    Ok(())
}
