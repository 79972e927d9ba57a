//! The application: the running service's state behind a cheap-to-clone
//! handle, and everything it does with it, with no gRPC in sight.
//!
//! - [`config_state`]: the config in force, its version and live reloads.
//! - [`queries`]: reads: the one owner of a Find, lookups and listings.
//! - [`writer`]: catalog writes through the store, and publishing them as
//!   new snapshots (with background compaction).
//! - [`follower`]: on a shared store, applying what other replicas wrote.
//! - [`page_token`]: page tokens that remember the ranking they page through.
//!
//! Reads take the current snapshot (an `ArcSwap` load: no lock, no wait) and
//! rank against it. Writes go one at a time through the writer: checked,
//! applied atomically by the [`CatalogStore`] (durable), then published as a
//! whole new snapshot that shares every unchanged center, so a reader sees a
//! write entirely or not at all, and sees it before the writer is answered.

pub mod config_state;
pub mod follower;
pub mod page_token;
pub mod queries;
pub mod writer;

use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::ArcSwap;
use repairmatch_core::Catalog;
use repairmatch_datagen as datagen;

pub use config_state::{ConfigStatus, LiveConfig};
pub use queries::ListFilter;
pub use writer::{CheckedItem, ItemOutcome, ItemResult};

use crate::cache::{CenterEncodings, FindCache};

/// Room for the encodings of some 10,000 centers: the ones near the merchants
/// who ask, whatever the catalog's size.
const CENTER_ENCODINGS_BYTES: u64 = 16 << 20;
use crate::config::{Config, StoreKind};
use crate::metrics::Metrics;
use crate::store::{CatalogStore, StoreError, WriteBatch};
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
    feed: Mutex<follower::FeedState>,
    cache: Option<FindCache>,
    /// Centers encoded for Find answers, cache or no cache.
    center_encodings: CenterEncodings,
    /// A snapshot version that does not yet hold every write numbered up to
    /// it (see `App::advance`), or 0. Answers from it are not cached.
    inexact_version: std::sync::atomic::AtomicU64,
}

/// An [`App`] handle for background tasks that must not keep it alive.
#[derive(Clone)]
pub struct WeakApp(std::sync::Weak<AppInner>);

impl WeakApp {
    /// The app, while anything else still holds it.
    pub fn upgrade(&self) -> Option<App> {
        self.0.upgrade().map(|inner| App { inner })
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("catalog_version", &self.catalog().version()).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the store the config names and serves from it; on a shared
    /// store, follows what other replicas write.
    pub fn open(config: Config) -> Result<Self, StoreError> {
        let store = crate::store::open(&config.store)?;
        let follows_a_feed = config.store.kind == StoreKind::Redis;
        let app = Self::with_store(config, store)?;
        if follows_a_feed {
            app.follow(app.catalog().version())
                .map_err(|e| StoreError::Config(format!("cannot start the feed thread: {e}")))?;
        }
        Ok(app)
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
        let catalog = Catalog::from_shared(stored.version, stored.centers, stored.brands, stored.banks);
        tracing::info!(
            centers = catalog.len(),
            version = catalog.version(),
            index_build_ms = started.elapsed().as_millis() as u64,
            "catalog loaded"
        );
        crate::memory::return_freed_pages();
        repairmatch_core::country::load_boundaries();
        if config.auth.allow_anonymous_find {
            tracing::warn!("anonymous FindRepairCenter is allowed: fine for a demo, not for production");
        }
        let writer = Writer::new(catalog.version());
        let metrics = Metrics::default();
        let cache = FindCache::new(&config.cache, &config.store, &metrics.store_errors);
        Ok(Self {
            inner: Arc::new(AppInner {
                config: ArcSwap::from_pointee(LiveConfig::new(1, config)),
                config_status: tokio::sync::watch::Sender::new(ConfigStatus::Current),
                metrics,
                store,
                feed: Mutex::new(follower::FeedState {
                    applied_version: catalog.version(),
                    current_at: std::time::Instant::now(),
                    failing: false,
                }),
                cache,
                center_encodings: CenterEncodings::new(CENTER_ENCODINGS_BYTES),
                inexact_version: std::sync::atomic::AtomicU64::new(0),
                live: Arc::new(LiveCatalog { catalog: ArcSwap::from_pointee(catalog), writer: Mutex::new(writer) }),
            }),
        })
    }

    /// A handle that does not keep the app alive.
    pub fn downgrade(&self) -> WeakApp {
        WeakApp(Arc::downgrade(&self.inner))
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether this replica follows a shared store's change feed (the store
    /// is read at start only, so this never changes).
    pub fn follows_a_feed(&self) -> bool {
        self.config().config.store.kind == StoreKind::Redis
    }

    /// Where this replica stands on the store's change feed.
    pub fn feed_state(&self) -> (u64, std::time::Duration, bool) {
        let state = self.inner.feed.lock().unwrap_or_else(|p| p.into_inner());
        (state.applied_version, state.current_at.elapsed(), state.failing)
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.live.catalog.load_full()
    }
}

/// Runs a rebuild of the whole snapshot off the request path (a compaction, a
/// follower's reload) on a rayon pool of its own with half the cores: a write
/// (on the pool of [`in_write_pool`]) never queues behind a rebuild's parallel
/// steps, which take seconds, and a rebuild never has every core. A start,
/// with nothing to serve yet, uses the global pool and every core. Its
/// threads yield to Finds (see [`MAINTENANCE_NICE`]).
pub(crate) fn in_rebuild_pool<T: Send>(rebuild: impl FnOnce() -> T + Send) -> T {
    match &*REBUILD_POOL {
        Some(pool) => pool.install(rebuild),
        None => rebuild(),
    }
}

static REBUILD_POOL: LazyLock<Option<rayon::ThreadPool>> =
    LazyLock::new(|| maintenance_pool("rebuild", |cores| (cores / 2).max(1)));
static WRITE_POOL: LazyLock<Option<rayon::ThreadPool>> = LazyLock::new(|| maintenance_pool("write", |cores| cores));

/// Makes the pools of [`in_write_pool`] and [`in_rebuild_pool`] now, from a
/// thread at the process's priority. Made later, from a thread that is itself
/// one of theirs (a compaction is started by a write), their threads would
/// start from that thread's lowered priority.
pub fn start_maintenance_pools() {
    LazyLock::force(&WRITE_POOL);
    LazyLock::force(&REBUILD_POOL);
}

/// Gives back the pages freed on the threads of every pool that builds
/// snapshots (the global pool a start builds on, the rebuild and write
/// pools) once a snapshot has been replaced. Its memory was allocated on
/// those threads and is freed by whichever thread drops it last, so its pages
/// wait for their own threads to allocate again: after a compaction at 100k,
/// some 80 MiB of the start's snapshot stayed resident. Call it from outside
/// any pool and without the writer's lock (the write pool takes writes one
/// at a time, and a write takes that lock).
pub(crate) fn return_freed_pages_on_every_pool() {
    crate::memory::return_freed_pages();
    in_rebuild_pool(crate::memory::return_freed_pages);
    in_write_pool(crate::memory::return_freed_pages);
}

/// Runs a catalog write (decoding its request, converting it, the store's
/// work and the publish) on a rayon pool of every core whose threads yield
/// to Finds: a large write then takes the CPU that reads leave, rather than
/// stalling the reads in flight for as long as it runs (see
/// [`MAINTENANCE_NICE`]).
/// Call it from outside the pool (a blocking thread), never from within.
pub(crate) fn in_write_pool<T: Send>(write: impl FnOnce() -> T + Send) -> T {
    // One write in the pool at a time (they take the writer's lock anyway): a
    // pool thread that waits for its own parallel work runs other jobs in
    // the meantime, and a second write taken up there would wait for the
    // writer's lock on the very thread that holds it.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    match &*WRITE_POOL {
        Some(pool) => {
            let _entered = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.install(write)
        }
        None => write(),
    }
}

/// How much nicer than the process the threads that maintain the catalog
/// run. With every core busy, Linux's scheduler then gives such a thread
/// about a third of what a thread serving Finds gets: a write still finishes
/// under any read load, and the merchants' reads come first. 5, measured
/// against 10 (docs/benchmarks.md): at 10 a write under half a core of reads
/// took twice as long for no fewer stalled reads.
pub(crate) const MAINTENANCE_NICE: i32 = 5;

/// A pool of `threads(cores)` threads named `{name}-N`, each at
/// [`MAINTENANCE_NICE`] more than the process; `None` if it can't be made.
fn maintenance_pool(name: &'static str, threads: fn(usize) -> usize) -> Option<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads(cores))
        .thread_name(move |i| format!("{name}-{i}"))
        .start_handler(|_| lower_this_threads_priority())
        .build()
        .inspect_err(|error| tracing::error!(%error, pool = name, "no pool of its own: the global one is used"))
        .ok()
}

/// Sets the calling thread's nice value to [`MAINTENANCE_NICE`] more than the
/// process's main thread (19 at most), unless it is that nice already. On
/// Linux the nice value belongs to each thread, and `setpriority` of process
/// id 0 sets the calling thread's alone; raising it takes no privilege,
/// lowering it would. A failure leaves the thread as it was.
fn lower_this_threads_priority() {
    use rustix::process::{getpid, getpriority_process, setpriority_process};
    let lowered = getpriority_process(Some(getpid())).and_then(|process| {
        let maintenance = (process + MAINTENANCE_NICE).min(19);
        if getpriority_process(None)? < maintenance { setpriority_process(None, maintenance) } else { Ok(()) }
    });
    if let Err(error) = lowered {
        tracing::warn!(%error, "a catalog maintenance thread keeps the priority of Finds");
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;

    #[test]
    fn writes_and_rebuilds_run_nicer_than_the_process_and_leave_their_caller_as_it_was() {
        let nice = || rustix::process::getpriority_process(None).unwrap();
        let process = rustix::process::getpriority_process(Some(rustix::process::getpid())).unwrap();
        let caller = nice();
        let maintenance = (process + MAINTENANCE_NICE).min(19);
        assert_eq!(in_write_pool(nice), maintenance);
        assert_eq!(in_rebuild_pool(nice), maintenance);
        // Parallel work inside runs on the same pool, at the same priority.
        let nested: Vec<i32> = in_write_pool(|| (0..64).into_par_iter().map(|_| nice()).collect());
        assert!(nested.iter().all(|&n| n == maintenance), "{nested:?}");
        assert_eq!(nice(), caller);
    }
}
