//! Following a shared store: a replica applies what other replicas wrote,
//! read from the store's change feed, and reloads the whole catalog when it
//! fell further behind than the feed reaches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use repairmatch_core::Catalog;

use super::{App, WeakApp};
use crate::store::{CatalogStore, Changes};

/// The longest pause between attempts while the store is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where a replica stands on the feed.
#[derive(Debug)]
pub struct FeedState {
    /// The last catalog version this replica applied from the feed (its own
    /// writes may be served sooner).
    pub applied_version: u64,
    /// When the feed last confirmed there was nothing newer.
    pub current_at: Instant,
    /// Whether the last attempt to read the feed failed.
    pub failing: bool,
}

impl App {
    /// Starts following the store's feed from `version` on a thread of its
    /// own, which ends once the app is dropped.
    pub(super) fn follow(&self, version: u64) -> std::io::Result<()> {
        let weak = self.downgrade();
        let store = Arc::clone(&self.inner.store);
        std::thread::Builder::new().name("catalog-feed".into()).spawn(move || follow(&weak, &*store, version))?;
        Ok(())
    }
}

fn follow(app: &WeakApp, store: &dyn CatalogStore, mut version: u64) {
    let mut backoff = Duration::from_millis(50);
    loop {
        // Waits up to the feed block: holds no reference to the app meanwhile.
        let outcome = store.wait_for_changes(version);
        let Some(app) = app.upgrade() else { return };
        let result = match outcome {
            Ok(Changes::Since(changes)) => {
                let lag = changes.version.saturating_sub(version);
                app.metrics().feed_lag_versions.set(i64::try_from(lag).unwrap_or(i64::MAX));
                version = changes.version;
                if !changes.is_empty() {
                    app.apply_feed(changes);
                    tracing::debug!(version, lag, "applied changes from the feed");
                }
                Ok(())
            }
            Ok(Changes::ReloadAll) => super::in_rebuild_pool(|| store.load()).map(|stored| {
                let started = Instant::now();
                let catalog = super::in_rebuild_pool(|| {
                    Catalog::from_shared(stored.version, stored.centers, stored.brands, stored.banks)
                });
                tracing::warn!(
                    from = version,
                    to = stored.version,
                    build_ms = started.elapsed().as_millis() as u64,
                    "fell behind the change feed: reloaded the whole catalog"
                );
                version = stored.version;
                app.replace_catalog(catalog);
                super::return_freed_pages_on_every_pool();
                app.metrics().feed_reloads.inc();
            }),
            Err(error) => Err(error),
        };
        let mut state = app.inner.feed.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(50);
                *state = FeedState { applied_version: version, current_at: Instant::now(), failing: false };
            }
            Err(error) => {
                if !state.failing {
                    tracing::warn!(%error, "cannot read the change feed; serving the catalog as it is");
                }
                state.failing = true;
                app.metrics().store_errors.inc();
                drop(state);
                drop(app);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
