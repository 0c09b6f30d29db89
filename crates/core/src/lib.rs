//! Shared foundations of every ponte service: configuration from the environment,
//! telemetry (logs and OpenTelemetry traces), storage, idempotency keys, the error type
//! every service answers with, and the gRPC server scaffolding (health, reflection,
//! trace propagation, graceful shutdown).

pub mod access;
pub mod background;
pub mod bearer;
pub mod config;
pub mod config_error;
pub mod crypto;
pub mod db;
pub mod erasure;
pub mod error;
pub mod expiring;
pub mod grpc;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod lock;
pub mod metrics;
pub mod ratelimit;
pub mod retention;
pub mod retry;
pub mod service;
pub mod sql;
pub mod structs;
pub mod telemetry;
pub mod tenants;
pub mod time;

pub use config::{ConfigError, Env};
pub use error::ServiceError;
pub use ids::{BlingId, TenantId};
