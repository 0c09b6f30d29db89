//! The sandbox's integration tests, one binary: each module exercises one system's fake over
//! real HTTP (its contract, limits, faults and webhooks); `support` holds what they share.

mod bitrix24_auth;
mod bitrix24_batch;
mod bitrix24_crm;
mod bitrix24_events;
mod bitrix24_limits;
mod bling_access;
mod bling_contacts;
mod bling_contract;
mod bling_openapi;
mod bling_orders;
mod bling_situacoes;
mod bling_stock;
mod bling_ui;
mod bling_webhooks;
mod cplug_api;
mod cplug_sales;
mod envios360_api;
mod envios360_webhooks;
mod faults;
mod support;
