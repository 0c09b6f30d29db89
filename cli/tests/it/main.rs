//! Black-box tests of the `ponte` binary: its commands, and its services running as separate
//! processes (`ponte serve`) against real PostgreSQL and Redis. One module per area.

mod backfill;
mod chaos;
mod cli;
mod console_browser;
mod demo;
mod dlq;
mod help;
mod ops_alerts;
mod ops_manifests;
mod ops_mesh;
mod ops_rolling;
mod ops_shutdown;
mod ops_telemetry;
mod refresh;
mod sales;
mod shipping;
mod support;
mod tenants;
mod trace;
