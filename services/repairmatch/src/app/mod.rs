//! The application: the running service's state behind a cheap-to-clone
//! handle, and everything it does with it, with no gRPC in sight.
//!
//! - [`config_state`]: the config in force, its version and live reloads.
//! - [`queries`]: reads: the one owner of a Find, lookups and listings.
//! - [`writer`]: catalog writes through the store, and publishing them as
//!   new snapshots (with background compaction).
//!
//! Reads take the current snapshot (an `ArcSwap` load: no lock, no wait) and
//! rank against it. Writes go one at a time through the writer: checked,
//! applied atomically by the [`CatalogStore`] (durable), then published as a
//! whole new snapshot that shares every unchanged center, so a reader sees a
//! write entirely or not at all, and sees it before the writer is answered.

pub mod config_state;
pub mod queries;
pub mod writer;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use repairmatch_core::Catalog;
use repairmatch_datagen as datagen;

pub use config_state::{ConfigStatus, LiveConfig};
pub use queries::ListFilter;
pub use writer::{CheckedItem, ItemOutcome, ItemResult};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{CatalogStore, EmbeddedStore, StoreError, WriteBatch};
use writer::{LiveCatalog, Writer};

/// The service's shared state.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    config: ArcSwap<LiveConfig>,
    config_status: tokio::sync::watch::Sender<ConfigStatus>,
    metrics: Metrics,
    store: Arc<dyn CatalogStore>,
    live: Arc<LiveCatalog>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("catalog_version", &self.catalog().version()).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the embedded store the config names and serves from it.
    pub fn open(config: Config) -> Result<Self, StoreError> {
        let store = EmbeddedStore::open(&config.store.path)?;
        Self::with_store(config, Arc::new(store))
    }

    /// Serves from `store`: loads the bundled sample into it first when it is
    /// empty and the config asks for that, then builds the first snapshot.
    pub fn with_store(config: Config, store: Arc<dyn CatalogStore>) -> Result<Self, StoreError> {
        if config.store.load_sample_when_empty && store.is_empty()? {
            let sample = datagen::generate(config.store.sample_centers, config.store.sample_seed);
            tracing::warn!(
                centers = sample.centers.len(),
                seed = config.store.sample_seed,
                "store empty and store.load_sample_when_empty is on: loading the bundled SAMPLE catalog of \
                 invented repair centers; never do this in production"
            );
            store.apply(WriteBatch::load(sample.centers, sample.brands, sample.banks))?;
        }
        let stored = store.load()?;
        let started = std::time::Instant::now();
        let catalog = Catalog::build(stored.version, stored.centers, stored.brands, stored.banks);
        tracing::info!(
            centers = catalog.len(),
            version = catalog.version(),
            index_build_ms = started.elapsed().as_millis() as u64,
            "catalog loaded"
        );
        if config.auth.allow_anonymous_find {
            tracing::warn!("anonymous FindRepairCenter is allowed: fine for a demo, not for production");
        }
        let writer = Writer::new(catalog.version());
        Ok(Self {
            inner: Arc::new(AppInner {
                config: ArcSwap::from_pointee(LiveConfig::new(1, config)),
                config_status: tokio::sync::watch::Sender::new(ConfigStatus::Current),
                metrics: Metrics::default(),
                store,
                live: Arc::new(LiveCatalog { catalog: ArcSwap::from_pointee(catalog), writer: Mutex::new(writer) }),
            }),
        })
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.live.catalog.load_full()
    }
}
