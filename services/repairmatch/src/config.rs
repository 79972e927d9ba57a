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
    /// Ranking profiles by name.
    pub profiles: BTreeMap<String, RankingProfile>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            find: FindConfig::default(),
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
    /// Longest a request may run when the caller sets no deadline, ms.
    pub default_timeout_ms: u64,
    /// Largest request message, bytes.
    pub max_request_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_concurrent_requests_per_connection: 1024,
            default_timeout_ms: 10_000,
            max_request_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The embedded catalog store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The redb database file; its directory is created when missing.
    pub path: PathBuf,
    /// Load the bundled sample catalog when the store is empty at start.
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
            load_sample_when_empty: true,
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
    fn shipped_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/repairmatch.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert!(config.profiles.contains_key("default"));
        assert!(config.profiles.len() >= 2);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let file = write("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
        let error = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(error.contains("lisen"), "{error}");
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
