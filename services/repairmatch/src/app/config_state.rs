//! The configuration in force: a versioned, immutable snapshot that every
//! request loads once and finishes on, and the live reload that replaces it.

use std::sync::Arc;

use super::App;
use crate::auth::Keyring;
use crate::config::Config;

/// The configuration in force, with the version answers report. A request
/// loads it once and finishes on it, whatever reloads happen meanwhile.
#[derive(Debug)]
pub struct LiveConfig {
    /// Starts at 1; every accepted reload adds one.
    pub version: u64,
    /// The configuration.
    pub config: Config,
    /// Its tenants by key hash.
    pub keyring: Keyring,
}

impl LiveConfig {
    /// Version `version` of `config`, with its keyring built.
    pub fn new(version: u64, config: Config) -> Self {
        Self { version, keyring: Keyring::new(&config), config }
    }
}

/// Whether the config file on disk is the one in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigStatus {
    /// The last load or reload was accepted.
    Current,
    /// The last reload was refused for these problems; the previous config serves.
    Refused(Vec<String>),
}

impl App {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<LiveConfig> {
        self.inner.config.load_full()
    }

    /// Reads, validates and swaps in the config files (layered as at start).
    /// `Ok(None)` when they say nothing new; `Err` lists every problem, and
    /// the old config stays. Settings read only at start (`server`, `store`,
    /// `cache`, `log`, `tracing`) take effect at restart.
    pub fn reload_from(&self, files: &[impl AsRef<std::path::Path>]) -> Result<Option<u64>, Vec<String>> {
        let current = self.config();
        let loaded = Config::load(files).map_err(|error| {
            let source = crate::config::describe_files(files);
            let problems: Vec<String> = error.problems().into_iter().map(|p| format!("{source}: {p}")).collect();
            self.inner.metrics.config_reloads_refused.inc();
            self.inner.config_status.send_replace(ConfigStatus::Refused(problems.clone()));
            problems
        })?;
        self.inner.config_status.send_replace(ConfigStatus::Current);
        let mut loaded = loaded;
        // [server] and [store] are read at start only: keep the running ones
        // (a --listen override included), so only live settings count as a change.
        let mut file_server = loaded.server.clone();
        file_server.listen = current.config.server.listen;
        if file_server != current.config.server
            || loaded.store != current.config.store
            || loaded.cache != current.config.cache
            || loaded.log != current.config.log
            || loaded.tracing != current.config.tracing
        {
            tracing::warn!(
                "configuration: [server], [store], [cache], [log] and [tracing] changes take effect at the next restart"
            );
        }
        loaded.server = current.config.server.clone();
        loaded.store = current.config.store.clone();
        loaded.cache = current.config.cache.clone();
        loaded.log = current.config.log.clone();
        loaded.tracing = current.config.tracing.clone();
        if loaded == current.config {
            return Ok(None);
        }
        let version = current.version + 1;
        self.inner.config.store(Arc::new(LiveConfig::new(version, loaded)));
        Ok(Some(version))
    }

    /// How many reloads were refused since start.
    pub fn config_reloads_refused(&self) -> u64 {
        self.inner.metrics.config_reloads_refused.get()
    }

    /// Follows whether the file on disk is the config in force.
    pub fn config_status(&self) -> tokio::sync::watch::Receiver<ConfigStatus> {
        self.inner.config_status.subscribe()
    }
}
