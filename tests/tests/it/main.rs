//! ponte's end-to-end tests, one binary: the mesh's services started in-process on ephemeral
//! ports against real PostgreSQL and Redis (a fresh database and Redis key prefix per test, so
//! tests run in parallel) and the sandboxes of the outside systems. One module per area.

mod auth_token;
mod bitrix24;
mod bitrix24_install;
mod bling_budget;
mod bling_connect;
mod bling_jitter;
mod catalog_backfill;
mod catalog_sync;
mod console;
mod cplug;
mod envios360;
mod foundation;
mod gateway;
mod gateway_catalog_sync;
mod gateway_dispatch;
mod gateway_notify;
mod gateway_trace;
mod help;
mod http_trace;
mod idempotency;
mod identity;
mod ignored_events;
mod ingest_crash;
mod long_input;
mod malformed;
mod mapping;
mod ops_gateway;
mod ops_migrations;
mod ratelimit;
mod record_history;
mod retention;
mod sales_cancel_race;
mod sales_faults;
mod sales_flow;
mod sales_parking;
mod sales_reversals;
mod sales_support;
mod shipping_changes;
mod shipping_crash;
mod shipping_cycle;
mod shipping_reports;
mod shipping_setup;
mod shipping_storms;
mod tenant_offboarding;
