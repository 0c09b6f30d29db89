//! Configuration read from the environment (`PONTE_*`, `DATABASE_URL`, `REDIS_URL`, `OTEL_*`),
//! validated at start. Every problem is reported as one [`ConfigError`] naming the variable.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::bearer::BearerToken;
pub use crate::config_error::ConfigError;

/// How a variable a process read at start is needed: what a deployment must set, derived from
/// the reads themselves (see [`Env::recording`]) rather than from a list kept by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Read with a default: setting it is a choice.
    Defaulted,
    /// Read without a default: unset, a feature is off or the process refuses to start.
    Wanted,
}

/// A view of the environment. Tests build one from pairs instead of mutating the process's.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    /// Every variable looked up, when recording.
    reads: Option<Arc<Mutex<BTreeMap<String, Need>>>>,
}

impl Env {
    /// The current process environment.
    pub fn from_process() -> Self {
        Self { vars: std::env::vars().collect(), reads: None }
    }

    /// An environment made of the given pairs only.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), reads: None }
    }

    /// The same environment, remembering every variable read through it (and its clones) from
    /// now on: what a process needs set is what its start reads ([`Env::reads`]).
    pub fn recording(mut self) -> Self {
        self.reads = Some(Arc::default());
        self
    }

    /// The variables read since [`Env::recording`], each with the strongest need seen.
    pub fn reads(&self) -> BTreeMap<String, Need> {
        self.reads.as_ref().and_then(|r| r.lock().ok().map(|m| m.clone())).unwrap_or_default()
    }

    /// The variables set (and not blank).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, _)| k.as_str())
    }

    fn lookup(&self, var: &str, need: Need) -> Option<&str> {
        if let Some(reads) = &self.reads
            && let Ok(mut m) = reads.lock()
        {
            let seen = m.entry(var.to_owned()).or_insert(need);
            *seen = (*seen).max(need);
        }
        self.vars.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The same environment with `var` set to `value`.
    pub fn with(mut self, var: &str, value: &str) -> Self {
        self.vars.insert(var.to_owned(), value.to_owned());
        self
    }

    /// The raw value; an empty or blank value counts as unset.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.lookup(var, Need::Wanted)
    }

    /// The raw value, or `default` when unset.
    pub fn get_or<'a>(&'a self, var: &str, default: &'a str) -> &'a str {
        self.lookup(var, Need::Defaulted).unwrap_or(default)
    }

    /// A value that must be present.
    pub fn required(&self, var: &str, expected: &str) -> Result<String, ConfigError> {
        self.get(var)
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::new(var, format!("is not set (expected {expected})")))
    }

    /// A value parsed with `FromStr`, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, var: &str, default: T, expected: &str) -> Result<T, ConfigError> {
        Ok(self.parse_as(var, Need::Defaulted, expected)?.unwrap_or(default))
    }

    /// A value parsed with `FromStr`, or `None` when unset.
    pub fn parse_opt<T: FromStr>(&self, var: &str, expected: &str) -> Result<Option<T>, ConfigError> {
        self.parse_as(var, Need::Wanted, expected)
    }

    fn parse_as<T: FromStr>(&self, var: &str, need: Need, expected: &str) -> Result<Option<T>, ConfigError> {
        match self.lookup(var, need) {
            None => Ok(None),
            Some(raw) => raw.parse().map(Some).map_err(|_| ConfigError::new(var, format!("'{raw}' is not {expected}"))),
        }
    }

    /// A boolean (`true/false`, `1/0`, `yes/no`, `on/off`).
    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.lookup(var, Need::Defaulted).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(var, format!("'{other}' is not a boolean (expected true or false)"))),
        }
    }

    /// A socket address such as `0.0.0.0:50051`.
    pub fn addr_or(&self, var: &str, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
        self.parse_or(var, default, "a socket address such as 0.0.0.0:50051")
    }

    /// A whole number of seconds, at least `min`.
    pub fn seconds_or(&self, var: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        let secs: u64 = self.parse_or(var, default, "a whole number of seconds")?;
        if secs < min {
            return Err(ConfigError::new(var, format!("{secs} is below the minimum of {min} seconds")));
        }
        Ok(Duration::from_secs(secs))
    }

    /// An absolute `http://` or `https://` URL.
    pub fn http_url_or(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        let raw = self.get_or(var, default);
        check_url(var, raw, &["http", "https"])?;
        Ok(raw.trim_end_matches('/').to_owned())
    }
}

/// Checks that `raw` is an absolute URL with one of `schemes`; the error never echoes a password.
pub fn check_url(var: &str, raw: &str, schemes: &[&str]) -> Result<url::Url, ConfigError> {
    let url =
        url::Url::parse(raw).map_err(|e| ConfigError::new(var, format!("'{}' is not a URL ({e})", redact_url(raw))))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::new(
            var,
            format!("scheme '{}' is not supported (expected {})", url.scheme(), schemes.join(" or ")),
        ));
    }
    Ok(url)
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "<unparseable>".to_owned(),
    }
}

/// Where the other ponte services are, for the gRPC clients a service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    pub auth_token: String,
    pub mapping: String,
    pub catalog_sync: String,
    pub sales_ingest: String,
    pub shipping_status: String,
    /// The gateway's gRPC side (the inbox).
    pub gateway: String,
    /// `PONTE_API_TOKEN`: what this process presents when it calls them.
    pub token: BearerToken,
}

impl Peers {
    /// `PONTE_<SERVICE>_URL`, defaulting to the Kubernetes service names of `k8s/`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            auth_token: env.http_url_or("PONTE_AUTH_TOKEN_URL", "http://ponte-auth-token:50051")?,
            mapping: env.http_url_or("PONTE_MAPPING_URL", "http://ponte-mapping:50051")?,
            catalog_sync: env.http_url_or("PONTE_CATALOG_SYNC_URL", "http://ponte-catalog-sync:50051")?,
            sales_ingest: env.http_url_or("PONTE_SALES_INGEST_URL", "http://ponte-sales-ingest:50051")?,
            shipping_status: env.http_url_or("PONTE_SHIPPING_STATUS_URL", "http://ponte-shipping-status:50051")?,
            gateway: env.http_url_or("PONTE_GATEWAY_URL", "http://ponte-gateway:50051")?,
            token: BearerToken::new(ENV_TOKEN, env.get(ENV_TOKEN).unwrap_or_default())?,
        })
    }

    /// Every service on 127.0.0.1, on consecutive ports from `base` (the `ponte dev` layout).
    pub fn local(base: u16) -> Self {
        Self::on(std::net::Ipv4Addr::LOCALHOST.into(), base)
    }

    /// Every service on `host`, on consecutive ports from `base`.
    pub fn on(host: std::net::IpAddr, base: u16) -> Self {
        let at = |i: u16| format!("http://{}", SocketAddr::new(host, base + i));
        Self {
            auth_token: at(0),
            mapping: at(1),
            catalog_sync: at(2),
            sales_ingest: at(3),
            shipping_status: at(4),
            gateway: at(5),
            token: BearerToken::none(),
        }
    }
}

/// What every `ponte serve` process needs, whichever service it runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `PONTE_GRPC_ADDR`: where the gRPC server listens.
    pub grpc_addr: SocketAddr,
    /// `PONTE_HTTP_ADDR`: where the gateway's HTTP server listens.
    pub http_addr: SocketAddr,
    /// `DATABASE_URL`: `postgres://…` (production) or `sqlite:…`.
    pub database_url: String,
    /// `PONTE_METRICS_ADDR`: where a service other than the gateway serves `/metrics`.
    pub metrics_addr: SocketAddr,
    /// `PONTE_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `REDIS_URL`: `redis://…` or `rediss://…`.
    pub redis_url: String,
    /// `PONTE_REDIS_PREFIX`: prepended to every Redis key, so several deployments can share a server.
    pub redis_prefix: String,
    /// `PONTE_MIGRATE_ON_START`: apply the service's migrations before serving.
    pub migrate_on_start: bool,
    /// `PONTE_STARTUP_TIMEOUT_SECONDS`: how long to wait for the database and Redis at start.
    pub startup_timeout: Duration,
    /// `PONTE_SHUTDOWN_GRACE_SECONDS`: how long in-flight calls may finish after SIGTERM.
    pub shutdown_grace: Duration,
    pub peers: Peers,
    /// `PONTE_API_TOKENS_FILE`: the tokens callers may present; `None` when `PONTE_API_AUTH=disabled`.
    pub api_tokens_file: Option<std::path::PathBuf>,
}

impl ServeConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env.required("DATABASE_URL", "a postgres:// or sqlite: URL")?;
        check_database_url(&database_url)?;
        let redis_url = env.required("REDIS_URL", "a redis:// URL")?;
        check_url("REDIS_URL", &redis_url, &["redis", "rediss"])?;
        let db_max_connections: u32 = env.parse_or("PONTE_DB_MAX_CONNECTIONS", 10, "a whole number of connections")?;
        if db_max_connections == 0 {
            return Err(ConfigError::new("PONTE_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        let redis_prefix = env.get_or("PONTE_REDIS_PREFIX", "ponte:").to_owned();
        Ok(Self {
            grpc_addr: env.addr_or("PONTE_GRPC_ADDR", ([0, 0, 0, 0], 50051).into())?,
            http_addr: env.addr_or("PONTE_HTTP_ADDR", ([0, 0, 0, 0], 8080).into())?,
            metrics_addr: env.addr_or("PONTE_METRICS_ADDR", ([0, 0, 0, 0], 9090).into())?,
            database_url,
            db_max_connections,
            redis_url,
            redis_prefix,
            migrate_on_start: env.bool_or("PONTE_MIGRATE_ON_START", true)?,
            startup_timeout: env.seconds_or("PONTE_STARTUP_TIMEOUT_SECONDS", 10, 1)?,
            shutdown_grace: env.seconds_or("PONTE_SHUTDOWN_GRACE_SECONDS", 20, 0)?,
            peers: Peers::from_env(env)?,
            api_tokens_file: tokens_file(env)?,
        })
    }
}

/// `DATABASE_URL` must name PostgreSQL or SQLite.
pub fn check_database_url(raw: &str) -> Result<(), ConfigError> {
    if raw.starts_with("sqlite:") {
        return Ok(());
    }
    check_url("DATABASE_URL", raw, &["postgres", "postgresql"]).map(|_| ())
}

/// The file of the API's tokens (served side).
pub const ENV_TOKENS_FILE: &str = "PONTE_API_TOKENS_FILE";
/// `disabled` leaves the API open (a deliberate choice, never a default).
pub const ENV_AUTH: &str = "PONTE_API_AUTH";
/// The token a process presents when it calls the other services.
pub const ENV_TOKEN: &str = "PONTE_API_TOKEN";

/// Where the tokens file is, `None` when `PONTE_API_AUTH=disabled`; a missing setting is an
/// error naming the variable, so a deployment never serves an open API by omission.
pub fn tokens_file(env: &Env) -> Result<Option<std::path::PathBuf>, ConfigError> {
    match env.get_or(ENV_AUTH, "enabled") {
        "enabled" => {}
        "disabled" => return Ok(None),
        _ => return Err(ConfigError::new(ENV_AUTH, "must be 'enabled' or 'disabled'")),
    }
    match env.get(ENV_TOKENS_FILE) {
        Some(p) => Ok(Some(p.into())),
        None => Err(ConfigError::new(
            ENV_TOKENS_FILE,
            "is required: the file of the API's bearer tokens (PONTE_API_AUTH=disabled leaves the API open instead)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://u:secret@db:5432/ponte"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("PONTE_API_TOKENS_FILE", "/etc/ponte/api-tokens/tokens.yaml"),
        ]
    }

    #[test]
    fn the_api_tokens_are_required_unless_checks_are_disabled_explicitly() {
        let without: Vec<_> = base().into_iter().filter(|(k, _)| *k != ENV_TOKENS_FILE).collect();
        let err = ServeConfig::from_env(&Env::from_pairs(without.clone())).unwrap_err();
        assert_eq!(err.var, ENV_TOKENS_FILE);
        let open = Env::from_pairs(without).with(ENV_AUTH, "disabled");
        assert_eq!(ServeConfig::from_env(&open).unwrap().api_tokens_file, None);
        assert_eq!(ServeConfig::from_env(&open.with(ENV_AUTH, "off")).unwrap_err().var, ENV_AUTH);
        let cfg = ServeConfig::from_env(&Env::from_pairs(base()).with(ENV_TOKEN, "t0k")).unwrap();
        assert_eq!(cfg.api_tokens_file.as_deref(), Some(std::path::Path::new("/etc/ponte/api-tokens/tokens.yaml")));
        assert!(!format!("{:?}", cfg.peers).contains("t0k"), "the token is never printed");
    }

    #[test]
    fn defaults_apply_when_only_the_urls_are_set() {
        let cfg = ServeConfig::from_env(&Env::from_pairs(base())).unwrap();
        assert_eq!(cfg.grpc_addr.port(), 50051);
        assert_eq!(cfg.redis_prefix, "ponte:");
        assert!(cfg.migrate_on_start);
        assert_eq!(cfg.peers.mapping, "http://ponte-mapping:50051");
    }

    #[test]
    fn a_missing_database_url_names_the_variable() {
        let err = ServeConfig::from_env(&Env::from_pairs([("REDIS_URL", "redis://x")])).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(err.to_string().starts_with("DATABASE_URL: is not set"), "{err}");
    }

    #[test]
    fn malformed_values_name_the_variable_and_the_expectation() {
        for (var, value, expect) in [
            ("PONTE_GRPC_ADDR", "nope", "socket address"),
            ("PONTE_DB_MAX_CONNECTIONS", "-3", "whole number"),
            ("PONTE_MIGRATE_ON_START", "maybe", "boolean"),
            ("PONTE_MAPPING_URL", "ftp://x", "scheme 'ftp'"),
            ("REDIS_URL", "http://x", "scheme 'http'"),
            ("PONTE_STARTUP_TIMEOUT_SECONDS", "0", "minimum"),
        ] {
            let mut pairs = base();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let err = ServeConfig::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.problem.contains(expect), "{var}: {err}");
        }
    }

    #[test]
    fn database_errors_never_echo_the_password() {
        let err = check_url("DATABASE_URL", "mysql://u:hunter2@h/d", &["postgres"]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(redact_url("postgres://u:hunter2@h/d"), "postgres://u:***@h/d");
    }

    #[test]
    fn a_recording_environment_tells_what_was_read_and_whether_it_had_a_default() {
        let env = Env::from_pairs(base()).recording();
        ServeConfig::from_env(&env.clone()).unwrap();
        let _ = env.get("PONTE_BLING_CLIENT_ID");
        let _ = env.seconds_or("PONTE_BLING_CLIENT_ID", 1, 0);
        let reads = env.reads();
        assert_eq!(reads.get("DATABASE_URL"), Some(&Need::Wanted));
        assert_eq!(reads.get("PONTE_GRPC_ADDR"), Some(&Need::Defaulted));
        assert_eq!(reads.get("PONTE_REDIS_PREFIX"), Some(&Need::Defaulted));
        assert_eq!(reads.get("PONTE_BLING_CLIENT_ID"), Some(&Need::Wanted), "the strongest need is kept");
        assert!(Env::from_pairs(base()).reads().is_empty());
    }

    #[test]
    fn blank_values_count_as_unset() {
        let env = Env::from_pairs([("A", "  ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.parse_or("A", 7u32, "n").unwrap(), 7);
    }
}
