//! Typed configuration: one TOML file plus `REPAIRMATCH_*` environment
//! overrides, read once and validated whole before anything starts.
//!
//! Environment variables name a key path with `__` between levels:
//! `REPAIRMATCH_SERVER__LISTEN=0.0.0.0:50051`,
//! `REPAIRMATCH_STORE__PATH=/var/lib/repairmatch/catalog.redb`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use repairmatch_core::RankingProfile;
use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The gRPC listener.
    pub server: ServerConfig,
    /// The embedded catalog store.
    pub store: StoreConfig,
    /// Find defaults.
    pub find: FindConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Tenants by name: the owners of what they write.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Ranking profiles by name.
    pub profiles: BTreeMap<String, RankingProfile>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            find: FindConfig::default(),
            auth: AuthConfig::default(),
            tenants: BTreeMap::new(),
            profiles: BTreeMap::from([("default".to_owned(), RankingProfile::default())]),
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_concurrent_requests_per_connection: 1024,
            default_timeout_ms: 120_000,
            max_request_bytes: 16 * 1024 * 1024,
            metrics_listen: None,
        }
    }
}

/// The embedded catalog store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The redb database file; its directory is created when missing.
    pub path: PathBuf,
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
            path: PathBuf::from("data/repairmatch.redb"),
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
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            role: Role::Bank,
            key_sha256: Vec::new(),
            brands: Vec::new(),
            profiles: Vec::new(),
            default_profile: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read into the typed config.
    #[error("{0}")]
    Parse(#[from] Box<figment::Error>),
    /// Values that parse but make no sense, each with its key.
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

impl Config {
    /// Reads defaults, then the file (when given), then the environment, and
    /// validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment.merge(Env::prefixed("REPAIRMATCH_").split("__")).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Every problem, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !self.profiles.contains_key(&self.find.default_profile) {
            problems.push((
                "find.default_profile".to_owned(),
                format!("names profile {:?}, which is not defined", self.find.default_profile),
            ));
        }
        for (name, profile) in &self.profiles {
            for (key, why) in profile.validate() {
                problems.push((format!("profiles.{name}.{key}"), why));
            }
        }
        for (name, tenant) in &self.tenants {
            for (i, hash) in tenant.key_sha256.iter().enumerate() {
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    problems.push((
                        format!("tenants.{name}.key_sha256[{i}]"),
                        "must be 64 lower-case hex digits (the SHA-256 of a key, from `repairmatch key new`)"
                            .to_owned(),
                    ));
                }
            }
            for profile in tenant.profiles.iter().chain(&tenant.default_profile) {
                if !self.profiles.contains_key(profile) {
                    problems
                        .push((format!("tenants.{name}"), format!("names profile {profile:?}, which is not defined")));
                }
            }
            if let Some(default) = &tenant.default_profile
                && !tenant.profiles.is_empty()
                && !tenant.profiles.contains(default)
            {
                problems.push((
                    format!("tenants.{name}.default_profile"),
                    format!("{default:?} is not among the tenant's profiles"),
                ));
            }
        }
        if self.server.max_concurrent_requests_per_connection == 0 {
            problems
                .push(("server.max_concurrent_requests_per_connection".to_owned(), "must be at least 1".to_owned()));
        }
        if self.server.default_timeout_ms == 0 {
            problems.push(("server.default_timeout_ms".to_owned(), "must be at least 1".to_owned()));
        }
        if self.server.max_request_bytes < 4096 {
            problems.push(("server.max_request_bytes".to_owned(), "must be at least 4096".to_owned()));
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
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
        let config = Config::load(Some(&path)).unwrap();
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
        assert!(!Config::load(Some(file.path())).unwrap().store.load_sample_when_empty);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/repairmatch.toml");
        assert!(Config::load(Some(&shipped)).unwrap().store.load_sample_when_empty, "the demo config asks for it");
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let file = write(
            "[profiles.default]\ndistance_decay = { decay = 2.0 }\ndefault_page_size = 0\n[profiles.other.weights]\nrating = -1\n",
        );
        let problems = Config::load(Some(file.path())).unwrap_err().problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("profiles.default.distance_decay.decay:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("profiles.default.default_page_size:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("profiles.other.weights.rating:")), "{problems:?}");
        let file = write("[server]\nlisten = 42\n");
        let problems = Config::load(Some(file.path())).unwrap_err().problems();
        assert!(problems[0].contains("server.listen"), "{problems:?}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let file = write("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("lisen"), "{error}");
    }

    #[test]
    fn tenants_are_checked() {
        let file = write(
            "[tenants.icbc]\nrole = \"bank\"\nkey_sha256 = [\"XYZ\"]\nprofiles = [\"default\", \"ghost\"]\n\n[tenants.who]\nrole = \"king\"\n",
        );
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("king"), "{error}");
        let file =
            write("[tenants.icbc]\nrole = \"bank\"\nkey_sha256 = [\"XYZ\"]\nprofiles = [\"default\", \"ghost\"]\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("tenants.icbc.key_sha256[0]"), "{error}");
        assert!(error.contains("\"ghost\""), "{error}");
    }

    #[test]
    fn bad_profiles_are_refused_with_their_key() {
        let file =
            write("[profiles.default.weights]\ndistance = 0\nrating = 0\nprice = 0\nbrand_support = 0\ndowntime = 0\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("profiles.default.weights"), "{error}");
        let file = write("[find]\ndefault_profile = \"nope\"\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("find.default_profile"), "{error}");
    }
}
