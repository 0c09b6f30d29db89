//! The secret scan of the whole test suite (`scripts/secret-scan.sh --suite`). Under
//! `PONTE_SCAN_DIR`, each test process logs everything at `trace` to `<dir>/logs-<pid>.txt` and
//! exports every span (name, attributes and events, as an OTLP exporter would send them) to
//! `<dir>/spans-<pid>.txt`; the `ponte serve` processes the tests start log at `trace` into
//! `<dir>/proc-*.txt` and export their spans over OTLP to the scan's receiver
//! (`PONTE_SCAN_OTLP`) unless a test reads them itself. The secrets the tests use are listed
//! by the sandboxes ([`ponte_sandbox::common::scan`]) and here (sealing keys, API tokens).
//! Without the variable, nothing of this happens.

use std::{
    fs::File,
    io::Write,
    sync::{Mutex, Once},
};

use opentelemetry::{Value, trace::TracerProvider as _};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use tracing_subscriber::{Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

pub use ponte_sandbox::common::scan::{dir, record};

/// Writes each finished span as one line: name, attributes, then each event with its attributes.
#[derive(Debug)]
struct FileExporter(Mutex<File>);

fn text(v: &Value) -> String {
    v.as_str().into_owned()
}

impl SpanExporter for FileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for s in batch {
            let attrs: Vec<String> = s.attributes.iter().map(|kv| format!("{}={}", kv.key, text(&kv.value))).collect();
            let events: Vec<String> = s
                .events
                .iter()
                .map(|e| {
                    let a: Vec<String> =
                        e.attributes.iter().map(|kv| format!("{}={}", kv.key, text(&kv.value))).collect();
                    format!("[{} {}]", e.name, a.join(" "))
                })
                .collect();
            let _ = writeln!(f, "{} {} {}", s.name, attrs.join(" "), events.join(" "));
        }
        Ok(())
    }
}

/// Installs the scan's logging and span export in this process, once (a no-op without
/// `PONTE_SCAN_DIR`, or when a test installed its own subscriber first).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(dir) = dir() else { return };
        let pid = std::process::id();
        let (Ok(logs), Ok(spans)) =
            (File::create(format!("{dir}/logs-{pid}.txt")), File::create(format!("{dir}/spans-{pid}.txt")))
        else {
            return;
        };
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().with_simple_exporter(FileExporter(Mutex::new(spans))).build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("ponte")).with_level(true);
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Mutex::new(logs))
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE);
        let _ = tracing_subscriber::registry().with(otel).with(fmt).try_init();
    });
}

/// The settings a `ponte serve` process gets under the scan: everything logged at `trace`, and
/// its spans sent to the scan's receiver unless `env` already names a receiver.
pub fn process_env(env: &mut Vec<(String, String)>) {
    if dir().is_none() {
        return;
    }
    env.retain(|(k, _)| k != "PONTE_LOG");
    env.push(("PONTE_LOG".into(), "trace".into()));
    if let Ok(otlp) = std::env::var("PONTE_SCAN_OTLP")
        && !env.iter().any(|(k, _)| k == "OTEL_EXPORTER_OTLP_ENDPOINT")
    {
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otlp));
    }
    record(env.iter().filter(|(k, _)| is_secret(k)).map(|(_, v)| v.as_str()));
}

/// Where a `ponte serve` process's log lines go under the scan (a new file), else `None`.
pub fn process_log(name: &str) -> Option<File> {
    let dir = dir()?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    File::create(format!("{dir}/proc-{}-{n}-{name}.txt", std::process::id())).ok()
}

/// Whether a setting holds a credential (its value is looked for by the scan).
pub fn is_secret(key: &str) -> bool {
    (key.contains("SECRET") || key.contains("KEYS") || key.contains("PASSWORD") || key.contains("TOKEN"))
        && !key.ends_with("_URL")
        && !key.ends_with("_FILE")
}

/// Records the credentials among a service's settings: each secret setting's value, and a
/// sealing key without its id.
pub fn record_settings<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) {
    if dir().is_none() {
        return;
    }
    for (k, v) in settings {
        if !is_secret(k) {
            continue;
        }
        record([v]);
        // `PONTE_SEALING_KEYS=id=key,id2=key2` and token files' `name:scope:token` lines.
        record(v.split([',', '\n']).filter_map(|e| e.split_once('=').map(|(_, key)| key)));
    }
}
