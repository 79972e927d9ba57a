//! The running service's state: the store, the config and the live catalog
//! snapshot, behind a cheap-to-clone handle.
//!
//! Reads take the current snapshot (an `ArcSwap` load: no lock, no wait) and
//! rank against it; writes commit to the store first, then swap in a whole new
//! snapshot, so a reader sees a write entirely or not at all.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;
use repairmatch_core::find::FindOutcome;
use repairmatch_core::model::RepairCenter;
use repairmatch_core::{Catalog, FindQuery, RankingProfile, datagen, find};

use crate::config::Config;
use crate::error::ServiceError;
use crate::store::{CatalogWrite, Store, StoreError};

/// The service's shared state.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    config: Config,
    /// Held for the process's life: redb locks the file, so an `import` cannot
    /// write behind a running server's back.
    _store: Store,
    catalog: ArcSwap<Catalog>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("catalog_version", &self.catalog().version()).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the store, loads the bundled sample when the store is empty and
    /// the config asks for it, and builds the first snapshot.
    pub fn open(config: Config) -> Result<Self, StoreError> {
        let store = Store::open(&config.store.path)?;
        if config.store.load_sample_when_empty && store.is_empty()? {
            let sample = datagen::generate(config.store.sample_centers, config.store.sample_seed);
            tracing::info!(
                centers = sample.centers.len(),
                seed = config.store.sample_seed,
                "store empty: loading the bundled sample catalog"
            );
            store.write(CatalogWrite { centers: sample.centers, brands: sample.brands, banks: sample.banks })?;
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
        Ok(Self { inner: Arc::new(AppInner { config, _store: store, catalog: ArcSwap::from_pointee(catalog) }) })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.load_full()
    }

    /// A profile by name.
    pub fn profile(&self, name: &str) -> Option<&RankingProfile> {
        self.inner.config.profiles.get(name)
    }

    /// The profile used when a request names none.
    pub fn default_profile_name(&self) -> &str {
        &self.inner.config.find.default_profile
    }

    /// Ranks the centers for a validated query.
    pub fn find(&self, query: &FindQuery) -> Result<FindOutcome, ServiceError> {
        let profile = self.profile(&query.profile_name).ok_or_else(|| {
            ServiceError::invalid("ranking_profile", format!("unknown ranking profile {:?}", query.profile_name))
        })?;
        let catalog = self.inner.catalog.load();
        find(&catalog, query, profile, Utc::now())
            .map_err(|error| ServiceError::invalid("page_token", error.to_string()))
    }

    /// One center by id.
    pub fn repair_center(&self, id: &str) -> Result<Arc<RepairCenter>, ServiceError> {
        self.inner.catalog.load().center(id).cloned().ok_or_else(|| ServiceError::RepairCenterNotFound(id.to_owned()))
    }
}
