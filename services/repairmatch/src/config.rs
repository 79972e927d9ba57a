//! Typed configuration: one TOML file plus `REPAIRMATCH_*` environment
//! overrides, read once and validated whole before anything starts.
//!
//! Environment variables name a key path with `__` between levels:
//! `REPAIRMATCH_SERVER__LISTEN=0.0.0.0:50051`,
//! `REPAIRMATCH_STORE__PATH=/var/lib/repairmatch/catalog.redb`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;
use figment::{Figment, Provider};
use repairmatch_core::RankingProfile;
use serde::{Deserialize, Serialize};

use crate::auth::Role;
pub use crate::cache::CacheConfig;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The gRPC listener.
    pub server: ServerConfig,
    /// The catalog store.
    pub store: StoreConfig,
    /// Find defaults.
    pub find: FindConfig,
    /// The Find result cache.
    pub cache: CacheConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// How per-tenant rate limits are enforced.
    pub limits: LimitsConfig,
    /// Tenants by name: the owners of what they write.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Ranking profiles by name.
    pub profiles: BTreeMap<String, RankingProfile>,
    /// Logging.
    pub log: LogConfig,
    /// Distributed tracing.
    pub tracing: TracingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            find: FindConfig::default(),
            cache: CacheConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            tenants: BTreeMap::new(),
            profiles: BTreeMap::from([("default".to_owned(), RankingProfile::default())]),
            log: LogConfig::default(),
            tracing: TracingConfig::default(),
        }
    }
}

/// The gRPC listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Requests one connection may have in flight; more are refused at once
    /// with RESOURCE_EXHAUSTED rather than queued without bound.
    pub max_concurrent_requests_per_connection: usize,
    /// Longest a call may run, ms: a caller's shorter deadline wins. Generous
    /// because a bulk import streams for a while.
    pub default_timeout_ms: u64,
    /// Largest request message, bytes.
    pub max_request_bytes: usize,
    /// Where to serve Prometheus metrics (`GET /metrics`); none = off.
    pub metrics_listen: Option<SocketAddr>,
    /// A second, plaintext port serving `grpc.health.v1` only, for probes
    /// that cannot speak TLS (the kubelet's gRPC probe) when the main port
    /// does; none = off.
    pub health_listen: Option<SocketAddr>,
    /// Calls the whole process may have in flight; past it a call is refused
    /// at once with RESOURCE_EXHAUSTED (shed, never queued). Health checks are
    /// exempt, so an overloaded replica is not also restarted.
    pub max_concurrent_requests: usize,
    /// A connection is asked to go away (GOAWAY) after about this long, ms,
    /// so long-lived client connections spread over replicas that came up
    /// after them; none = never.
    pub max_connection_age_ms: Option<u64>,
    /// After `max_connection_age_ms`, how long calls in flight on the aged
    /// connection may still run before it is closed, ms.
    pub max_connection_age_grace_ms: u64,
    /// How often an idle connection is pinged (HTTP/2 PING), ms; none = never.
    pub http2_keepalive_interval_ms: Option<u64>,
    /// How long a ping may go unanswered before the connection is closed, ms.
    pub http2_keepalive_timeout_ms: u64,
    /// After SIGTERM: how long the service goes on serving while its health
    /// says NOT_SERVING, ms, so load balancers stop sending before it stops
    /// accepting.
    pub shutdown_pause_ms: u64,
    /// Then: how long calls in flight may take to finish, ms, before the
    /// process exits regardless.
    pub drain_timeout_ms: u64,
    /// TLS for the gRPC port; none = plaintext.
    pub tls: Option<TlsConfig>,
}

/// Server TLS (and mTLS). The files are read again whenever they change
/// (cert-manager renews them in place); a change that does not load keeps
/// the previous certificate serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// When set, mutual TLS: a client must present a certificate signed by
    /// one of these CAs (PEM), or the handshake fails.
    pub client_ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Every file named, for watching.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert_file.as_path()), Some(self.key_file.as_path()), self.client_ca_file.as_deref()]
            .into_iter()
            .flatten()
    }
}

/// How the service logs. Read at start only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (for people) or `json` (one object a line, for collectors).
    pub format: LogFormat,
    /// One line per call (target `repairmatch::access`): request id, tenant,
    /// method, code and latency. The level filter is `RUST_LOG`.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, access: true }
    }
}

/// A log line's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Distributed tracing. Read at start only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// An OTLP/gRPC collector (`http://collector:4317`) to export a span per
    /// call to; none = off. A caller's W3C `traceparent` becomes the parent.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of new traces sampled, 0 to 1; a caller's sampling decision
    /// in `traceparent` is followed.
    pub sample_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, service_name: "repairmatch".to_owned(), sample_ratio: 1.0 }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_concurrent_requests_per_connection: 1024,
            default_timeout_ms: 120_000,
            max_request_bytes: 16 * 1024 * 1024,
            metrics_listen: None,
            health_listen: None,
            max_concurrent_requests: 512,
            max_connection_age_ms: Some(300_000),
            max_connection_age_grace_ms: 30_000,
            http2_keepalive_interval_ms: Some(30_000),
            http2_keepalive_timeout_ms: 10_000,
            shutdown_pause_ms: 5_000,
            drain_timeout_ms: 20_000,
            tls: None,
        }
    }
}

/// Where the catalog lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A redb file that one process opens: the single-process default.
    Embedded,
    /// A Redis server that every replica shares, with a change feed.
    Redis,
}

/// The catalog store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (one process, a redb file) or `redis` (replicas share it).
    pub kind: StoreKind,
    /// The redb database file (kind = "embedded"); its directory is created
    /// when missing.
    pub path: PathBuf,
    /// The Redis server (kind = "redis"): `redis://host:port/db`, or
    /// `rediss://…` for TLS. Keep passwords out of it: see `password_env`.
    pub url: String,
    /// The environment variable holding the Redis password, if any: read at
    /// connect time, never stored in the config or logged.
    pub password_env: String,
    /// For `rediss://`: the CA certificate (PEM) that signed the server's;
    /// none = the system's trusted roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Prefix of every Redis key, so several deployments can share a server.
    pub key_prefix: String,
    /// Longest a Redis command may take before it counts as failed, ms.
    pub command_timeout_ms: u64,
    /// How long a replica's feed read waits for new changes, ms.
    pub feed_block_ms: u64,
    /// About how many catalog versions the change feed keeps (`XADD MAXLEN ~`);
    /// a replica further behind reloads the whole catalog.
    pub feed_max_len: u64,
    /// Load the bundled sample catalog when the store is empty at start: a
    /// demo setting, off by default so that a production instance whose
    /// store is empty or lost serves nothing rather than invented centers.
    pub load_sample_when_empty: bool,
    /// How many centers the bundled sample has.
    pub sample_centers: usize,
    /// The bundled sample's seed.
    pub sample_seed: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Embedded,
            path: PathBuf::from("data/repairmatch.redb"),
            url: "redis://127.0.0.1:6379/0".to_owned(),
            password_env: "REPAIRMATCH_REDIS_PASSWORD".to_owned(),
            tls_ca_file: None,
            key_prefix: "repairmatch".to_owned(),
            command_timeout_ms: 1_000,
            feed_block_ms: 2_000,
            feed_max_len: 100_000,
            load_sample_when_empty: false,
            sample_centers: 5_000,
            sample_seed: 1,
        }
    }
}

/// Find defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FindConfig {
    /// The profile used when a request names none.
    pub default_profile: String,
}

impl Default for FindConfig {
    fn default() -> Self {
        Self { default_profile: "default".to_owned() }
    }
}

/// Authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Let callers without a key use FindRepairCenter and GetRepairCenter: for
    /// a local demo only. Writes always need a key.
    pub allow_anonymous_find: bool,
}

/// How per-tenant rate limits (`tenants.NAME.rate_limit`) are enforced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// How many replicas share the Redis store. While Redis cannot be
    /// reached, each replica enforces this share of every limit on its own
    /// (`per_second / replicas_assumed`), so the whole fleet stays near the
    /// limit instead of allowing it once per replica. Must be 1 with the
    /// embedded store: one process holds the whole limit.
    pub replicas_assumed: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { replicas_assumed: 1 }
    }
}

/// A tenant's rate limit (GCRA): `burst` calls at once from idle, then
/// `per_second` calls a second on average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The steady rate, calls a second (fractions allowed: 0.5 = one call
    /// every two seconds).
    pub per_second: f64,
    /// Calls allowed at once after a quiet spell.
    pub burst: u32,
}

/// One tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// What it may do.
    pub role: Role,
    /// SHA-256 (hex) of each valid key; several so keys can be rotated.
    /// `repairmatch key new --tenant NAME` makes one.
    #[serde(default)]
    pub key_sha256: Vec<String>,
    /// Brands a manufacturer owns.
    #[serde(default)]
    pub brands: Vec<String>,
    /// Profiles a bank may ask for; empty = any.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// The profile used when its requests name none.
    #[serde(default)]
    pub default_profile: Option<String>,
    /// Its rate limit, shared by every replica; none = no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            role: Role::Bank,
            key_sha256: Vec::new(),
            brands: Vec::new(),
            profiles: Vec::new(),
            default_profile: None,
            rate_limit: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read, or is not TOML: nothing more can be said
    /// about it until that is fixed.
    #[error("{0}")]
    Parse(#[from] Box<figment::Error>),
    /// Every problem found, each as (key path, why): unknown keys, wrong
    /// types and values that make no sense.
    #[error("invalid configuration:\n{}", .0.iter().map(|(key, why)| format!("  {key}: {why}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<(String, String)>),
}

impl ConfigError {
    /// Every problem, one line each: the key (and file) and why.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Parse(error) => error.as_ref().clone().into_iter().map(|e| e.to_string()).collect(),
            ConfigError::Invalid(problems) => problems.iter().map(|(key, why)| format!("{key}: {why}")).collect(),
        }
    }
}

/// The files of a layered config, for messages: `a.toml + b.toml`.
pub fn describe_files(files: &[impl AsRef<Path>]) -> String {
    files.iter().map(|file| file.as_ref().display().to_string()).collect::<Vec<_>>().join(" + ")
}

/// Environment variables that override the file, `__` between key levels.
const ENV_PREFIX: &str = "REPAIRMATCH_";

fn environment() -> Env {
    Env::prefixed(ENV_PREFIX).split("__")
}

/// A value that deserialized but cannot be used.
struct ValueProblem {
    key: String,
    why: String,
    /// Another key the problem is about (the profile a tenant names): when
    /// that key was dropped for a shape problem, this one only follows from it.
    refers_to: Option<String>,
}

impl ValueProblem {
    fn new(key: String, why: impl Into<String>) -> Self {
        Self { key, why: why.into(), refers_to: None }
    }
}

impl Config {
    /// Reads defaults, then each file in turn (a later one overrides an
    /// earlier one key by key: the tenants' keys can come from a Secret apart
    /// from the rest), then the environment, and validates the result. A bad
    /// config is refused with every problem in it, not only the first.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        for file in files {
            figment = figment.merge(Toml::file_exact(file.as_ref()));
        }
        let figment = figment.merge(environment());
        let tree = figment.find_value("").map_err(Box::new)?;
        ProblemCollector::new(&figment).extract(tree).map_err(ConfigError::Invalid)
    }

    /// Every problem, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems: Vec<(String, String)> =
            self.value_problems().into_iter().map(|problem| (problem.key, problem.why)).collect();
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }

    fn value_problems(&self) -> Vec<ValueProblem> {
        let mut problems = Vec::new();
        let undefined = |profile: &str| format!("names profile {profile:?}, which is not defined");
        if !self.profiles.contains_key(&self.find.default_profile) {
            problems.push(ValueProblem {
                refers_to: Some(format!("profiles.{}", self.find.default_profile)),
                ..ValueProblem::new("find.default_profile".to_owned(), undefined(&self.find.default_profile))
            });
        }
        for (name, profile) in &self.profiles {
            for (key, why) in profile.validate() {
                problems.push(ValueProblem::new(format!("profiles.{name}.{key}"), why));
            }
        }
        for (name, tenant) in &self.tenants {
            for (i, hash) in tenant.key_sha256.iter().enumerate() {
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    problems.push(ValueProblem::new(
                        format!("tenants.{name}.key_sha256[{i}]"),
                        "must be 64 lower-case hex digits (the SHA-256 of a key, from `repairmatch key new`)",
                    ));
                }
            }
            let listed = tenant.profiles.iter().enumerate().map(|(i, profile)| (format!("profiles[{i}]"), profile));
            let default = tenant.default_profile.iter().map(|profile| ("default_profile".to_owned(), profile));
            for (key, profile) in listed.chain(default) {
                if !self.profiles.contains_key(profile) {
                    problems.push(ValueProblem {
                        refers_to: Some(format!("profiles.{profile}")),
                        ..ValueProblem::new(format!("tenants.{name}.{key}"), undefined(profile))
                    });
                }
            }
            if let Some(default) = &tenant.default_profile
                && !tenant.profiles.is_empty()
                && !tenant.profiles.contains(default)
            {
                problems.push(ValueProblem::new(
                    format!("tenants.{name}.default_profile"),
                    format!("{default:?} is not among the tenant's profiles"),
                ));
            }
            if let Some(limit) = &tenant.rate_limit {
                if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
                    problems.push(ValueProblem::new(
                        format!("tenants.{name}.rate_limit.per_second"),
                        "must be a finite number > 0",
                    ));
                }
                if limit.burst == 0 {
                    problems.push(ValueProblem::new(format!("tenants.{name}.rate_limit.burst"), "must be at least 1"));
                }
            }
        }
        let mut check = |ok: bool, key: &str, why: &str| {
            if !ok {
                problems.push(ValueProblem::new(key.to_owned(), why));
            }
        };
        check(
            self.server.max_concurrent_requests_per_connection > 0,
            "server.max_concurrent_requests_per_connection",
            "must be at least 1",
        );
        check(self.server.default_timeout_ms > 0, "server.default_timeout_ms", "must be at least 1");
        check(self.server.max_concurrent_requests > 0, "server.max_concurrent_requests", "must be at least 1");
        check(self.server.max_connection_age_ms != Some(0), "server.max_connection_age_ms", "must be at least 1");
        check(
            self.server.http2_keepalive_interval_ms != Some(0),
            "server.http2_keepalive_interval_ms",
            "must be at least 1",
        );
        check(self.server.http2_keepalive_timeout_ms > 0, "server.http2_keepalive_timeout_ms", "must be at least 1");
        check((0.0..=1.0).contains(&self.tracing.sample_ratio), "tracing.sample_ratio", "must be between 0 and 1");
        check(self.server.max_request_bytes >= 4096, "server.max_request_bytes", "must be at least 4096");
        check(self.store.command_timeout_ms > 0, "store.command_timeout_ms", "must be at least 1");
        check(self.store.feed_block_ms > 0, "store.feed_block_ms", "must be at least 1");
        check(self.store.feed_max_len > 0, "store.feed_max_len", "must be at least 1");
        check(self.limits.replicas_assumed > 0, "limits.replicas_assumed", "must be at least 1");
        check(
            self.limits.replicas_assumed <= 1 || self.store.kind == StoreKind::Redis,
            "limits.replicas_assumed",
            "must be 1 with store.kind = \"embedded\": one process holds the whole limit",
        );
        let tls = self.server.tls.iter().flat_map(|tls| {
            [
                ("cert_file", Some(&tls.cert_file)),
                ("key_file", Some(&tls.key_file)),
                ("client_ca_file", tls.client_ca_file.as_ref()),
            ]
            .map(|(key, path)| (format!("server.tls.{key}"), path))
        });
        let files = std::iter::once(("store.tls_ca_file".to_owned(), self.store.tls_ca_file.as_ref())).chain(tls);
        for (key, path) in files {
            if let Some(path) = path
                && !path.is_file()
            {
                problems.push(ValueProblem::new(key, format!("{} is not a readable file", path.display())));
            }
        }
        if let Some(endpoint) = &self.tracing.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push(ValueProblem::new(
                "tracing.otlp_endpoint".to_owned(),
                "must be an http:// or https:// URL of an OTLP/gRPC collector",
            ));
        }
        if self.store.kind == StoreKind::Redis
            && let Err(error) = redis::IntoConnectionInfo::into_connection_info(self.store.url.as_str())
        {
            // The URL is not echoed: it may hold a password.
            problems
                .push(ValueProblem::new("store.url".to_owned(), format!("is not a Redis URL: {}", error.category())));
        }
        for (key, why) in self.cache.problems() {
            problems.push(ValueProblem::new(key, why));
        }
        problems
    }
}

// === Every problem in one pass ===
//
// serde stops at the first error. To report them all, the merged config is
// taken as a value tree and deserialized again and again: each error is
// noted with its key path, the offending entry is taken out of the tree (so
// its default applies, or, for a missing required key, its whole table goes),
// and the next attempt gets further. What finally deserializes is then
// checked for values that make no sense.

/// Enough for any real file; a bound all the same, as each round takes out
/// one entry.
const MAX_SHAPE_PROBLEMS: usize = 100;

struct ProblemCollector<'a> {
    figment: &'a Figment,
    /// How figment names the environment provider, to tell its values apart.
    environment_name: String,
    problems: Vec<(String, String)>,
    /// Keys taken out of the tree. A problem at or under one of them, or
    /// about one of them, follows from one already reported.
    dropped: Vec<String>,
    /// Arrays that lost elements, with the original index of each, so later
    /// problems in them are still reported by the index the file has.
    shortened: Vec<(String, Vec<usize>)>,
}

impl<'a> ProblemCollector<'a> {
    fn new(figment: &'a Figment) -> Self {
        let environment_name = environment().metadata().name.into_owned();
        Self { figment, environment_name, problems: Vec::new(), dropped: Vec::new(), shortened: Vec::new() }
    }

    fn extract(mut self, mut tree: Value) -> Result<Config, Vec<(String, String)>> {
        for _ in 0..MAX_SHAPE_PROBLEMS {
            let error = match tree.deserialize::<Config>() {
                Ok(config) => return self.check_values(&tree, config),
                Err(error) => error,
            };
            let (reported, dropped) = locate(&tree, &error);
            let key = self.key_in_file(key_path(&tree, &reported));
            if !self.follows_from_dropped(&key) {
                let why = format!("{}{}", describe(&error.kind), self.origin(&tree, &dropped));
                self.problems.push((key, why));
            }
            let dropped_key = self.key_in_file(key_path(&tree, &dropped));
            if let Some((array, index)) = dropped.split_last().and_then(|(last, array)| {
                matches!(value_at(&tree, array), Some(Value::Array(..))).then(|| (array, last.parse::<usize>()))
            }) {
                let array_key = key_path(&tree, array);
                let original = self.original_index(&array_key, index.unwrap_or_default());
                match self.shortened.iter_mut().find(|(key, _)| *key == array_key) {
                    Some((_, removed)) => removed.push(original),
                    None => self.shortened.push((array_key, vec![original])),
                }
            }
            self.dropped.push(dropped_key);
            if !remove(&mut tree, &dropped) {
                // Nothing to take out, so no way further: report what was found.
                return Err(self.problems);
            }
        }
        self.problems.push((
            "(more)".to_owned(),
            format!("stopped after {MAX_SHAPE_PROBLEMS} problems; fix these and check again"),
        ));
        Err(self.problems)
    }

    fn check_values(mut self, tree: &Value, config: Config) -> Result<Config, Vec<(String, String)>> {
        for problem in config.value_problems() {
            let key = self.key_in_file(problem.key);
            let follows = self.follows_from_dropped(&key)
                || problem.refers_to.as_deref().is_some_and(|other| self.follows_from_dropped(other));
            if !follows {
                let segments: Vec<String> =
                    key.split('[').next().unwrap_or_default().split('.').map(str::to_owned).collect();
                let why = format!("{}{}", problem.why, self.origin(tree, &segments));
                self.problems.push((key, why));
            }
        }
        if self.problems.is_empty() {
            return Ok(config);
        }
        // Grouped by section, whatever order they were found in.
        self.problems.sort_by(|a, b| a.0.cmp(&b.0));
        Err(self.problems)
    }

    fn follows_from_dropped(&self, key: &str) -> bool {
        self.dropped.iter().any(|dropped| {
            key.strip_prefix(dropped.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// The index an element had in the file, given its index in an array
    /// that has lost some (their original indexes are in `shortened`).
    fn original_index(&self, array_key: &str, index: usize) -> usize {
        let Some((_, removed)) = self.shortened.iter().find(|(key, _)| key == array_key) else { return index };
        let mut removed = removed.clone();
        removed.sort_unstable();
        removed.iter().fold(index, |original, &gone| if gone <= original { original + 1 } else { original })
    }

    /// A key path as the file has it: an index into a shortened array is put
    /// back to what it was before elements were taken out.
    fn key_in_file(&self, key: String) -> String {
        for (array_key, _) in &self.shortened {
            let Some(rest) = key.strip_prefix(array_key.as_str()).and_then(|rest| rest.strip_prefix('[')) else {
                continue;
            };
            let Some((index, after)) = rest.split_once(']') else { continue };
            let Ok(index) = index.parse::<usize>() else { continue };
            return format!("{array_key}[{}]{after}", self.original_index(array_key, index));
        }
        key
    }

    /// Names the environment variable a value came from, if it did: the key
    /// alone would send its reader looking in the file.
    fn origin(&self, tree: &Value, segments: &[String]) -> String {
        // An array comes whole from one variable.
        let variable: Vec<&String> = segments.iter().take_while(|segment| segment.parse::<usize>().is_err()).collect();
        let from_environment = value_at(tree, segments)
            .and_then(|value| self.figment.get_metadata(value.tag()))
            .is_some_and(|metadata| metadata.name == self.environment_name);
        if from_environment {
            let name: Vec<&str> = variable.iter().map(|segment| segment.as_str()).collect();
            format!(" (from environment variable {ENV_PREFIX}{})", name.join("__").to_uppercase())
        } else {
            String::new()
        }
    }
}

/// Where a deserialization error sits in the tree: the key path to report,
/// and the entry to take out so the next attempt gets past it.
fn locate(tree: &Value, error: &figment::Error) -> (Vec<String>, Vec<String>) {
    let path = error.path.clone();
    if let Kind::MissingField(field) = &error.kind {
        // The error sits on the table that lacks the key; with no default for
        // it, the table cannot stay.
        let mut reported = path.clone();
        reported.push(field.to_string());
        return (reported, path);
    }
    // Inside an array, the element goes: an array has no defaults to fall
    // back on key by key.
    let mut node = tree;
    for (depth, segment) in path.iter().enumerate() {
        node = match node {
            Value::Dict(_, entries) => match entries.get(segment) {
                Some(child) => child,
                None => break,
            },
            Value::Array(..) => return (path.clone(), path[..=depth].to_vec()),
            _ => break,
        };
    }
    (path.clone(), path)
}

/// `a.b[2].c`, as the file would spell it: indexes in brackets.
fn key_path(tree: &Value, segments: &[String]) -> String {
    let mut key = String::new();
    let mut node = Some(tree);
    for segment in segments {
        if let Some(Value::Array(_, items)) = node {
            key.push_str(&format!("[{segment}]"));
            node = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            continue;
        }
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(segment);
        node = match node {
            Some(Value::Dict(_, entries)) => entries.get(segment),
            _ => None,
        };
    }
    key
}

fn value_at<'v>(tree: &'v Value, segments: &[String]) -> Option<&'v Value> {
    segments.iter().try_fold(tree, |node, segment| match node {
        Value::Dict(_, entries) => entries.get(segment),
        Value::Array(_, items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Takes an entry (a table's key or an array's element) out of the tree;
/// false when there is none, or the path is empty (the root stays).
fn remove(tree: &mut Value, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut node = tree;
    for segment in parents {
        node = match node {
            Value::Dict(_, entries) => match entries.get_mut(segment) {
                Some(child) => child,
                None => return false,
            },
            Value::Array(_, items) => match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Dict(_, entries) => entries.remove(last).is_some(),
        Value::Array(_, items) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => {
                items.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Why serde refused a value, in the file's terms (tables, arrays, integers)
/// rather than Rust's.
fn describe(kind: &Kind) -> String {
    let one_of = |names: &[&str]| names.join(", ");
    match kind {
        Kind::UnknownField(_, []) => "unknown key: this table takes none".to_owned(),
        Kind::UnknownField(_, known) => format!("unknown key; known keys here: {}", one_of(known)),
        Kind::MissingField(_) => "required key is missing".to_owned(),
        Kind::InvalidType(found, expected) => {
            format!("invalid type: found {}, expected {}", describe_found(found), describe_expected(expected))
        }
        Kind::InvalidValue(found, expected) => {
            format!("invalid value: found {}, expected {}", describe_found(found), describe_expected(expected))
        }
        Kind::UnknownVariant(found, known) => format!("unknown value {found:?}; expected one of {}", one_of(known)),
        other => other.to_string(),
    }
}

fn describe_found(found: &Actual) -> String {
    match found {
        Actual::Bool(value) => format!("boolean {value}"),
        Actual::Unsigned(value) => format!("integer {value}"),
        Actual::Signed(value) => format!("integer {value}"),
        Actual::Float(value) => format!("float {value}"),
        Actual::Str(value) => format!("string {value:?}"),
        Actual::Seq => "an array".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => other.to_string(),
    }
}

fn describe_expected(expected: &str) -> String {
    match expected {
        "a sequence" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number >= 0".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        _ if expected.starts_with("struct ") => "a table".to_owned(),
        _ if expected.starts_with("enum ") => "a string".to_owned(),
        _ if expected.starts_with("a ") || expected.starts_with("an ") => expected.to_owned(),
        _ if expected.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {expected}"),
        _ => format!("a {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file
    }

    #[test]
    fn shipped_config_is_valid_and_ships_the_documented_profiles() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/repairmatch.toml");
        let config = Config::load(&[&path]).unwrap();
        let names: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        assert_eq!(names, ["best_rated", "cheapest", "default", "fastest_fix", "nearest"]);
        let weights = |name: &str| config.profiles[name].weights;
        assert!(weights("nearest").distance > 0.5 && weights("best_rated").rating > 0.5);
        assert!(weights("cheapest").price > 0.5 && weights("fastest_fix").downtime > 0.5);
    }

    #[test]
    fn the_sample_catalog_is_only_loaded_when_asked_for() {
        assert!(!Config::default().store.load_sample_when_empty);
        let file = write("[store]\npath = \"data/other.redb\"\n");
        assert!(!Config::load(&[file.path()]).unwrap().store.load_sample_when_empty);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/repairmatch.toml");
        assert!(Config::load(&[&shipped]).unwrap().store.load_sample_when_empty, "the demo config asks for it");
    }

    /// Seven problems of every kind, two of them in one table.
    const SEVEN_PROBLEMS: &str = include_str!("../tests/fixtures/seven-problems.toml");

    #[test]
    fn every_problem_is_reported_in_one_pass_with_its_full_key() {
        let file = write(SEVEN_PROBLEMS);
        let error = Config::load(&[file.path()]).unwrap_err();
        let problems = error.problems();
        let expected = [
            ("profiles.nearest.distance_decay.decay: ", "must be strictly between 0 and 1"),
            ("profiles.nearest.weights.distance: ", "must be a finite number >= 0"),
            ("server.lisen: ", "unknown key; known keys here: listen, "),
            ("server.listen: ", "invalid type: found integer 42, expected a socket address"),
            ("store.pth: ", "unknown key; known keys here: kind, path, "),
            ("tenants.icbc.key_sha256[0]: ", "must be 64 lower-case hex digits"),
            ("tenants.who.role: ", "unknown value \"king\"; expected one of bank, manufacturer, provider, ops"),
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for ((key, why), problem) in expected.iter().zip(&problems) {
            assert!(problem.starts_with(key) && problem.contains(why), "{problem:?} is not {key}{why}");
        }
        assert!(!problems.iter().any(|p| p.starts_with("default.")), "{problems:#?}");
        let message = error.to_string();
        assert_eq!(message.lines().count(), 1 + expected.len(), "{message}");
    }

    #[test]
    fn problems_that_follow_from_a_reported_one_are_not_reported_again() {
        // Without the profile, the two names of it would be undefined; without
        // its role, the tenant would lack one.
        let file = write(
            "[profiles]\nfast = 3\n[find]\ndefault_profile = \"fast\"\n\n\
             [tenants.icbc]\nrole = \"bank\"\nprofiles = [\"fast\"]\n\n\
             [tenants.who]\nrole = \"king\"\n",
        );
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].starts_with("profiles.fast: invalid type: found integer 3, expected a table"));
        assert!(problems[1].starts_with("tenants.who.role: unknown value"));
    }

    #[test]
    fn a_missing_required_key_is_reported_once_with_its_path() {
        let file = write("[tenants.x]\nbrands = [\"PAX\"]\n");
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(problems, ["tenants.x.role: required key is missing"]);
    }

    #[test]
    fn problems_in_an_array_keep_the_index_the_file_has() {
        let file = write("[tenants.ops]\nrole = \"ops\"\nkey_sha256 = [1, \"a\", 2, \"b\"]\n");
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        let keys: Vec<&str> = problems.iter().map(|p| p.split(": ").next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "tenants.ops.key_sha256[0]",
                "tenants.ops.key_sha256[1]",
                "tenants.ops.key_sha256[2]",
                "tenants.ops.key_sha256[3]"
            ]
        );
        assert!(problems[0].contains("found integer 1, expected a string"), "{problems:#?}");
        assert!(problems[1].contains("64 lower-case hex digits"), "{problems:#?}");
    }

    #[test]
    fn a_file_with_endless_problems_is_cut_short() {
        let keys: String = (0..150).map(|i| format!("unknown_{i} = 1\n")).collect();
        let file = write(&format!("[server]\n{keys}"));
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(problems.len(), MAX_SHAPE_PROBLEMS + 1);
        assert!(problems.last().unwrap().contains("stopped after 100 problems"), "{problems:?}");
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let file = write(
            "[profiles.default]\ndistance_decay = { decay = 2.0 }\ndefault_page_size = 0\n[profiles.other.weights]\nrating = -1\n",
        );
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("profiles.default.distance_decay.decay:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("profiles.default.default_page_size:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("profiles.other.weights.rating:")), "{problems:?}");
        let file = write("[server]\nlisten = 42\n");
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert!(problems[0].contains("server.listen"), "{problems:?}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let file = write("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
        let error = Config::load(&[file.path()]).unwrap_err().to_string();
        assert!(error.contains("lisen"), "{error}");
    }

    #[test]
    fn tenants_are_checked() {
        let file = write(
            "[tenants.icbc]\nrole = \"bank\"\nkey_sha256 = [\"XYZ\"]\nprofiles = [\"default\", \"ghost\"]\n\n[tenants.who]\nrole = \"king\"\n",
        );
        let error = Config::load(&[file.path()]).unwrap_err().to_string();
        assert!(error.contains("king"), "{error}");
        let file =
            write("[tenants.icbc]\nrole = \"bank\"\nkey_sha256 = [\"XYZ\"]\nprofiles = [\"default\", \"ghost\"]\n");
        let error = Config::load(&[file.path()]).unwrap_err().to_string();
        assert!(error.contains("tenants.icbc.key_sha256[0]"), "{error}");
        assert!(error.contains("\"ghost\""), "{error}");
    }

    #[test]
    fn rate_limits_are_checked_with_their_key() {
        let file = write(
            "[tenants.icbc]\nrole = \"bank\"\nrate_limit = { per_second = 0, burst = 0 }\n\n\
             [tenants.boc]\nrole = \"bank\"\nrate_limit = { per_second = 5 }\n\n\
             [tenants.nan]\nrole = \"bank\"\nrate_limit = { per_second = nan, burst = 1 }\n\n\
             [tenants.inf]\nrole = \"bank\"\nrate_limit = { per_second = inf, burst = 1 }\n\n\
             [tenants.ok]\nrole = \"bank\"\nrate_limit = { per_second = 50, burst = 100 }\n",
        );
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(
            problems,
            [
                "tenants.boc.rate_limit.burst: required key is missing",
                "tenants.icbc.rate_limit.burst: must be at least 1",
                "tenants.icbc.rate_limit.per_second: must be a finite number > 0",
                "tenants.inf.rate_limit.per_second: must be a finite number > 0",
                "tenants.nan.rate_limit.per_second: must be a finite number > 0",
            ]
        );
        let file = write("[tenants.ok]\nrole = \"bank\"\nrate_limit = { per_second = 50, burst = 100 }\n");
        let config = Config::load(&[file.path()]).unwrap();
        assert_eq!(config.tenants["ok"].rate_limit, Some(RateLimitConfig { per_second: 50.0, burst: 100 }));
        assert_eq!(config.limits.replicas_assumed, 1);
    }

    #[test]
    fn the_replica_count_is_checked_against_the_store() {
        let file = write("[limits]\nreplicas_assumed = 3\n");
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("limits.replicas_assumed: must be 1 with store.kind = \"embedded\""));
        let file = write("[store]\nkind = \"redis\"\n\n[limits]\nreplicas_assumed = 0\n");
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        assert_eq!(problems, ["limits.replicas_assumed: must be at least 1"]);
        let file = write("[store]\nkind = \"redis\"\n\n[limits]\nreplicas_assumed = 3\n");
        assert_eq!(Config::load(&[file.path()]).unwrap().limits.replicas_assumed, 3);
    }

    #[test]
    fn bad_profiles_are_refused_with_their_key() {
        let file =
            write("[profiles.default.weights]\ndistance = 0\nrating = 0\nprice = 0\nbrand_support = 0\ndowntime = 0\n");
        let error = Config::load(&[file.path()]).unwrap_err().to_string();
        assert!(error.contains("profiles.default.weights"), "{error}");
        let file = write("[find]\ndefault_profile = \"nope\"\n");
        let error = Config::load(&[file.path()]).unwrap_err().to_string();
        assert!(error.contains("find.default_profile"), "{error}");
    }

    #[test]
    fn a_later_file_overrides_an_earlier_one_key_by_key() {
        let base = write(
            "[server]\nlisten = \"0.0.0.0:50051\"\nshutdown_pause_ms = 7000\n\n[auth]\nallow_anonymous_find = true\n",
        );
        let hash = "a".repeat(64);
        let secret = write(&format!(
            "[tenants.icbc]\nrole = \"bank\"\nkey_sha256 = [\"{hash}\"]\n\n[server]\nshutdown_pause_ms = 1\n"
        ));
        let config = Config::load(&[base.path(), secret.path()]).unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:50051".parse().unwrap(), "kept from the first file");
        assert_eq!(config.server.shutdown_pause_ms, 1, "the later file wins");
        assert!(config.auth.allow_anonymous_find);
        assert_eq!(config.tenants["icbc"].key_sha256, [hash]);
        let problems = Config::load(&[base.path(), Path::new("/nonexistent/tenants.toml")]).unwrap_err().problems();
        assert!(problems[0].contains("/nonexistent/tenants.toml"), "{problems:?}");
    }

    #[test]
    fn production_settings_are_checked_with_their_key() {
        let file = write(
            "[server]\nmax_concurrent_requests = 0\nmax_connection_age_ms = 0\n\n\
             [server.tls]\ncert_file = \"/nonexistent/tls.crt\"\nkey_file = \"/nonexistent/tls.key\"\n\n\
             [log]\nformat = \"xml\"\n\n[tracing]\notlp_endpoint = \"collector:4317\"\nsample_ratio = 1.5\n",
        );
        let problems = Config::load(&[file.path()]).unwrap_err().problems();
        for expected in [
            "log.format: ",
            "server.max_concurrent_requests: must be at least 1",
            "server.max_connection_age_ms: must be at least 1",
            "tracing.sample_ratio: must be between 0 and 1",
            "server.tls.cert_file: /nonexistent/tls.crt is not a readable file",
            "server.tls.key_file: /nonexistent/tls.key is not a readable file",
            "tracing.otlp_endpoint: must be an http:// or https:// URL",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected:?} in {problems:#?}");
        }
    }
}
