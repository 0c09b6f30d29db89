//! Every program this package ships answers `--help` with its usage and exits 0, and refuses an
//! unknown argument with a one-line error and exit 2 instead of a backtrace.

use std::process::Command;

const PROGRAMS: &[(&str, &str)] = &[
    ("backfill-bench", env!("CARGO_BIN_EXE_backfill-bench")),
    ("bling-budget", env!("CARGO_BIN_EXE_bling-budget")),
    ("chaos", env!("CARGO_BIN_EXE_chaos")),
    ("gateway-bench", env!("CARGO_BIN_EXE_gateway-bench")),
    ("mapping-bench", env!("CARGO_BIN_EXE_mapping-bench")),
    ("otlp-sink", env!("CARGO_BIN_EXE_otlp-sink")),
    ("sales-bench", env!("CARGO_BIN_EXE_sales-bench")),
    ("shipping-bench", env!("CARGO_BIN_EXE_shipping-bench")),
    ("sync-latency-bench", env!("CARGO_BIN_EXE_sync-latency-bench")),
];

#[test]
fn every_benchmark_answers_help_and_refuses_unknown_arguments() {
    for (name, exe) in PROGRAMS {
        let out = Command::new(exe).arg("--help").env("RUST_BACKTRACE", "1").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.lines().any(|l| l.starts_with(&format!("Usage: {name}"))), "{name} --help: {stdout}");

        let out = Command::new(exe).arg("--no-such-flag").env("RUST_BACKTRACE", "1").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} --no-such-flag: {stderr}");
        assert!(stderr.starts_with("error: ") && !stderr.contains("backtrace"), "{name}: {stderr}");
    }
}
