//! The running service's state: the store, the config and the live catalog
//! snapshot, behind a cheap-to-clone handle.
//!
//! Reads take the current snapshot (an `ArcSwap` load: no lock, no wait) and
//! rank against it. Writes go one at a time through the writer: checked
//! against the latest committed state, committed to the store (durable), then
//! published as a whole new snapshot that shares every unchanged center, so a
//! reader sees a write entirely or not at all, and sees it before the writer
//! is answered.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use chrono::Utc;
use repairmatch_core::find::FindOutcome;
use repairmatch_core::model::{Brand, RepairCenter, match_key};
use repairmatch_core::{Catalog, FindQuery, RankingProfile, find};
use repairmatch_datagen as datagen;
use tonic_types::FieldViolation;

use crate::auth::{self, Caller, Keyring, Role, Tenant};
use crate::config::Config;
use crate::error::ServiceError;
use crate::metrics::Metrics;
use crate::store::{CatalogWrite, Store, StoreError};

/// The service's shared state.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    config: ArcSwap<LiveConfig>,
    config_status: tokio::sync::watch::Sender<ConfigStatus>,
    metrics: Metrics,
    store: Store,
    live: Arc<LiveCatalog>,
}

/// The served snapshot and the writer that replaces it. Kept apart from the
/// store so a background compaction holds these, never the store's file lock.
struct LiveCatalog {
    catalog: ArcSwap<Catalog>,
    writer: Mutex<Writer>,
}

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
    fn new(version: u64, config: Config) -> Self {
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

/// Committed writes not yet in the published snapshot (only ever during a
/// bulk import, which publishes now and then rather than per batch).
#[derive(Default)]
struct Writer {
    version: u64,
    centers: HashMap<String, Option<RepairCenter>>,
    brands: Vec<Brand>,
    /// While a background compaction runs: the ids published since it started,
    /// to re-apply on top of the compacted base.
    compacting: Option<HashSet<String>>,
}

impl Writer {
    /// A center as last committed: a write not yet published wins over the
    /// served snapshot (`None` inside: committed as deleted).
    fn latest(&self, snapshot: &Catalog, id: &str) -> Option<RepairCenter> {
        match self.centers.get(id) {
            Some(pending) => pending.clone(),
            None => snapshot.center(id).map(|c| RepairCenter::clone(c)),
        }
    }
}

impl LiveCatalog {
    /// Publishes committed writes as a new snapshot (only its delta layer is
    /// rebuilt), and starts a background compaction once the delta is large.
    fn publish(live: &Arc<Self>, writer: &mut Writer) {
        if writer.centers.is_empty() && writer.brands.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for (id, center) in writer.centers.drain() {
            if let Some(changed) = &mut writer.compacting {
                changed.insert(id.clone());
            }
            match center {
                Some(center) => upserts.push(Arc::new(center)),
                None => deletes.push(id),
            }
        }
        let brands = std::mem::take(&mut writer.brands);
        let snapshot = Arc::new(live.catalog.load().apply(writer.version, upserts, &deletes, brands, vec![]));
        live.catalog.store(Arc::clone(&snapshot));
        tracing::debug!(
            version = writer.version,
            publish_ms = started.elapsed().as_millis() as u64,
            "snapshot published"
        );
        if snapshot.needs_compaction() && writer.compacting.is_none() {
            writer.compacting = Some(HashSet::new());
            let live = Arc::clone(live);
            let spawned = std::thread::Builder::new().name("compaction".into()).spawn(move || live.compact(&snapshot));
            if let Err(error) = spawned {
                writer.compacting = None;
                tracing::error!(%error, "cannot start a compaction; the delta keeps growing");
            }
        }
    }

    /// Builds a single-layer snapshot from `from` off the write path, then
    /// swaps it in with the writes published meanwhile re-applied on top.
    fn compact(&self, from: &Catalog) {
        let started = std::time::Instant::now();
        let compacted = from.compacted();
        let build_ms = started.elapsed().as_millis() as u64;
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = writer.compacting.take().unwrap_or_default();
        let current = self.catalog.load();
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for id in changed {
            match current.center(&id) {
                Some(center) => upserts.push(Arc::clone(center)),
                None => deletes.push(id),
            }
        }
        let reapplied = upserts.len() + deletes.len();
        let brands = current.brands().cloned().collect();
        let banks = current.banks().cloned().collect();
        let next = Arc::new(compacted.apply(current.version(), upserts, &deletes, brands, banks));
        self.catalog.store(Arc::clone(&next));
        tracing::info!(build_ms, reapplied, centers = current.len(), "catalog compacted in the background");
        // Writes during a long build can leave a large delta again: go on
        // rather than wait for the next write.
        if next.needs_compaction() {
            writer.compacting = Some(HashSet::new());
            drop(writer);
            self.compact(&next);
        }
    }
}

/// What happened to one item of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written.
    Ok,
    /// Bad fields.
    InvalidArgument,
    /// Not the caller's to write.
    PermissionDenied,
    /// Stale etag.
    Aborted,
}

/// The result for one item.
#[derive(Debug, Clone)]
pub struct ItemResult {
    /// The id as sent.
    pub id: String,
    /// What happened.
    pub outcome: ItemOutcome,
    /// The new etag when written.
    pub etag: String,
    /// Why not, field by field.
    pub violations: Vec<FieldViolation>,
    /// A summary.
    pub message: String,
}

impl ItemResult {
    fn new(id: &str, outcome: ItemOutcome, violations: Vec<FieldViolation>, message: &str) -> Self {
        Self { id: id.to_owned(), outcome, etag: String::new(), violations, message: message.to_owned() }
    }
}

/// One item of a batch as the adapter validated it.
pub type CheckedItem = (String, String, Result<RepairCenter, Vec<FieldViolation>>);

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
            store.write(CatalogWrite {
                centers: sample.centers,
                brands: sample.brands,
                banks: sample.banks,
                ..CatalogWrite::default()
            })?;
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
        let writer = Writer { version: catalog.version(), ..Writer::default() };
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

    /// The configuration in force now.
    pub fn config(&self) -> Arc<LiveConfig> {
        self.inner.config.load_full()
    }

    /// Reads, validates and swaps in the config file. `Ok(None)` when it says
    /// nothing new; `Err` lists every problem, and the old config stays.
    /// Settings read only at start (`server`, `store`) take effect at restart.
    pub fn reload_from(&self, path: &std::path::Path) -> Result<Option<u64>, Vec<String>> {
        let current = self.config();
        let loaded = Config::load(Some(path)).map_err(|error| {
            let problems: Vec<String> =
                error.problems().into_iter().map(|p| format!("{}: {p}", path.display())).collect();
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
        if file_server != current.config.server || loaded.store != current.config.store {
            tracing::warn!("configuration: [server] and [store] changes take effect at the next restart");
        }
        loaded.server = current.config.server.clone();
        loaded.store = current.config.store.clone();
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

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Follows whether the file on disk is the config in force.
    pub fn config_status(&self) -> tokio::sync::watch::Receiver<ConfigStatus> {
        self.inner.config_status.subscribe()
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.live.catalog.load_full()
    }

    /// The profile a caller gets when its request names none.
    pub fn default_profile_name<'a>(config: &'a Config, caller: &'a Caller) -> &'a str {
        match caller {
            Caller::Tenant(tenant) => tenant.default_profile.as_deref(),
            Caller::Anonymous => None,
        }
        .unwrap_or(&config.find.default_profile)
    }

    /// Who may read: any tenant, and anonymous callers when the config allows.
    pub fn authorize_read(&self, caller: &Caller) -> Result<(), ServiceError> {
        match caller {
            Caller::Tenant(_) => Ok(()),
            Caller::Anonymous if self.inner.config.load().config.auth.allow_anonymous_find => Ok(()),
            Caller::Anonymous => Err(ServiceError::Unauthenticated("an API key is required".into())),
        }
    }

    /// Ranks the centers for a validated query under `live`, the config the
    /// request started with.
    pub fn find(&self, live: &LiveConfig, caller: &Caller, query: &FindQuery) -> Result<FindOutcome, ServiceError> {
        self.authorize_read(caller)?;
        if let Caller::Tenant(tenant) = caller
            && !tenant.may_use_profile(&query.profile_name)
        {
            return Err(ServiceError::PermissionDenied(format!(
                "tenant {} may not use ranking profile {:?}",
                tenant.name, query.profile_name
            )));
        }
        let profile: &RankingProfile = live.config.profiles.get(&query.profile_name).ok_or_else(|| {
            ServiceError::invalid("ranking_profile", format!("unknown ranking profile {:?}", query.profile_name))
        })?;
        let catalog = self.inner.live.catalog.load();
        find(&catalog, query, profile, Utc::now())
            .map_err(|error| ServiceError::invalid("page_token", error.to_string()))
    }

    /// One center by id.
    pub fn repair_center(&self, caller: &Caller, id: &str) -> Result<Arc<RepairCenter>, ServiceError> {
        self.authorize_read(caller)?;
        self.inner
            .live
            .catalog
            .load()
            .center(id)
            .cloned()
            .ok_or_else(|| ServiceError::RepairCenterNotFound(id.to_owned()))
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic mid-write leaves nothing half-applied (the store is
        // transactional, snapshots are whole), so the state stays usable.
        self.inner.live.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A writing tenant, or the reason it cannot write at all.
    pub fn writing_tenant(caller: &Caller) -> Result<&Tenant, ServiceError> {
        match caller {
            Caller::Anonymous => Err(ServiceError::Unauthenticated("writes need an API key".into())),
            Caller::Tenant(tenant) if tenant.role == Role::Bank => {
                Err(ServiceError::PermissionDenied("bank keys cannot write the catalog".into()))
            }
            Caller::Tenant(tenant) => Ok(tenant),
        }
    }

    /// Upserts a batch: each item is checked on its own (fields, ownership,
    /// etag); the good ones are committed in one transaction and published
    /// before this returns. Blocking: call from a blocking thread.
    pub fn upsert_centers(
        &self,
        tenant: &Tenant,
        items: Vec<CheckedItem>,
    ) -> Result<(Vec<ItemResult>, u64), ServiceError> {
        let mut writer = self.writer();
        let results = self.write_batch(&mut writer, tenant, items, "upsert_repair_center")?;
        self.publish(&mut writer);
        Ok((results, writer.version))
    }

    /// Writes a batch without publishing (the caller publishes).
    fn write_batch(
        &self,
        writer: &mut Writer,
        tenant: &Tenant,
        items: Vec<CheckedItem>,
        action: &'static str,
    ) -> Result<Vec<ItemResult>, ServiceError> {
        let snapshot = self.inner.live.catalog.load();
        let mut results = Vec::with_capacity(items.len());
        let mut accepted: Vec<(usize, RepairCenter)> = Vec::new();
        let mut ids_in_batch: HashMap<String, usize> = HashMap::new();
        for (index, (path, id, checked)) in items.into_iter().enumerate() {
            let mut center = match checked {
                Ok(center) => center,
                Err(violations) => {
                    results.push(ItemResult::new(&id, ItemOutcome::InvalidArgument, violations, "invalid fields"));
                    continue;
                }
            };
            if let Some(first) = ids_in_batch.insert(id.clone(), index) {
                let violation = FieldViolation::new(format!("{path}.id"), format!("repeats the id of item {first}"));
                results.push(ItemResult::new(&id, ItemOutcome::InvalidArgument, vec![violation], "duplicate id"));
                continue;
            }
            let existing = writer.latest(&snapshot, &id);
            if let Err(denial) = auth::may_write_center(tenant, existing.as_ref(), &center, &path) {
                results.push(ItemResult::new(
                    &id,
                    ItemOutcome::PermissionDenied,
                    denial.violations,
                    "permission denied",
                ));
                continue;
            }
            if !center.etag.is_empty() && existing.as_ref().is_none_or(|e| e.etag != center.etag) {
                let message = "the etag is not the current one: read the center again and retry";
                results.push(ItemResult::new(&id, ItemOutcome::Aborted, vec![], message));
                continue;
            }
            // The owner is the service's to set: the existing one, or the writer.
            center.owner = existing.map_or_else(|| tenant.name.clone(), |e| e.owner);
            results.push(ItemResult::new(&id, ItemOutcome::Ok, vec![], "written"));
            accepted.push((results.len() - 1, center));
        }
        if !accepted.is_empty() {
            let (positions, centers): (Vec<usize>, Vec<RepairCenter>) = accepted.into_iter().unzip();
            let (version, written) = self
                .inner
                .store
                .write(CatalogWrite { centers, ..CatalogWrite::default() })
                .map_err(|e| ServiceError::Storage(e.to_string()))?;
            writer.version = version;
            for (position, center) in positions.into_iter().zip(written.centers) {
                results[position].etag = center.etag.clone();
                writer.centers.insert(center.id.clone(), Some(center));
            }
        }
        for result in &results {
            tracing::info!(
                target: "audit",
                tenant = %tenant.name,
                role = ?tenant.role,
                action,
                id = %result.id,
                outcome = ?result.outcome,
                version = writer.version,
                "catalog write"
            );
        }
        Ok(results)
    }

    /// Makes committed writes visible to readers: one new snapshot.
    fn publish(&self, writer: &mut Writer) {
        LiveCatalog::publish(&self.inner.live, writer);
    }

    /// Deletes one center. Blocking.
    pub fn delete_center(&self, tenant: &Tenant, id: &str, etag: &str) -> Result<u64, ServiceError> {
        let mut writer = self.writer();
        let snapshot = self.inner.live.catalog.load();
        let existing = writer.latest(&snapshot, id);
        let outcome = (|| {
            let existing = existing.ok_or_else(|| ServiceError::RepairCenterNotFound(id.to_owned()))?;
            auth::may_delete_center(tenant, &existing).map_err(|_| {
                ServiceError::PermissionDenied(format!("repair center {id:?} belongs to another tenant"))
            })?;
            if !etag.is_empty() && etag != existing.etag {
                return Err(ServiceError::Aborted("the etag is not the current one: read the center again".into()));
            }
            let write = CatalogWrite { deleted_center_ids: vec![id.to_owned()], ..CatalogWrite::default() };
            let (version, _) = self.inner.store.write(write).map_err(|e| ServiceError::Storage(e.to_string()))?;
            writer.version = version;
            writer.centers.insert(id.to_owned(), None);
            Ok(version)
        })();
        tracing::info!(target: "audit", tenant = %tenant.name, role = ?tenant.role, action = "delete_repair_center", id, outcome = ?outcome.as_ref().map(|_| "ok").map_err(ToString::to_string), "catalog write");
        self.publish(&mut writer);
        outcome
    }

    /// Commits one batch of an import; publishes it (and anything committed
    /// before) only when `publish` is set: the caller publishes now and then
    /// and at the end ([`App::finish_import`]). Blocking.
    pub fn import_batch(
        &self,
        tenant: &Tenant,
        items: Vec<CheckedItem>,
        publish: bool,
    ) -> Result<(Vec<ItemResult>, u64), ServiceError> {
        let mut writer = self.writer();
        let results = self.write_batch(&mut writer, tenant, items, "import_repair_center")?;
        if publish {
            self.publish(&mut writer);
        }
        Ok((results, writer.version))
    }

    /// Publishes whatever an import committed.
    pub fn finish_import(&self) -> u64 {
        let mut writer = self.writer();
        self.publish(&mut writer);
        writer.version
    }

    /// Creates or replaces a brand. Blocking.
    pub fn upsert_brand(&self, tenant: &Tenant, mut brand: Brand) -> Result<Brand, ServiceError> {
        let decision = auth::may_write_brand(tenant, &brand.name);
        tracing::info!(target: "audit", tenant = %tenant.name, role = ?tenant.role, action = "upsert_brand", brand = %brand.name, allowed = decision.is_ok(), "catalog write");
        decision.map_err(|denial| ServiceError::PermissionDenied(denial.violations[0].description.clone()))?;
        let mut writer = self.writer();
        let snapshot = self.inner.live.catalog.load();
        brand.owner = snapshot
            .brand(&brand.name)
            .filter(|existing| !existing.owner.is_empty())
            .map_or_else(|| tenant.name.clone(), |existing| existing.owner.clone());
        let write = CatalogWrite { brands: vec![brand.clone()], ..CatalogWrite::default() };
        let (version, _) = self.inner.store.write(write).map_err(|e| ServiceError::Storage(e.to_string()))?;
        writer.version = version;
        writer.brands.push(brand.clone());
        self.publish(&mut writer);
        Ok(brand)
    }

    /// One brand by name.
    pub fn brand(&self, caller: &Caller, name: &str) -> Result<Brand, ServiceError> {
        self.authorize_read(caller)?;
        self.inner.live.catalog.load().brand(name).cloned().ok_or_else(|| ServiceError::BrandNotFound(name.to_owned()))
    }

    /// Brands by lower-cased name, after `after` (exclusive).
    pub fn brands(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Brand>, bool), ServiceError> {
        self.authorize_read(caller)?;
        let catalog = self.inner.live.catalog.load();
        let mut brands: Vec<Brand> = catalog
            .brands()
            .filter(|b| after.is_none_or(|after| match_key(&b.name).as_str() > after))
            .cloned()
            .collect();
        brands.sort_by_key(|b| match_key(&b.name));
        let more = brands.len() > limit;
        brands.truncate(limit);
        Ok((brands, more))
    }

    /// Centers in id order for a listing: the caller's own, or any for ops.
    pub fn list_centers(
        &self,
        tenant: &Tenant,
        filter: &ListFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Arc<RepairCenter>>, bool), ServiceError> {
        let owner = match (&tenant.role, &filter.owner) {
            (Role::Ops, owner) => owner.clone(),
            (_, Some(owner)) if *owner != tenant.name => {
                return Err(ServiceError::PermissionDenied("only ops may list another tenant's centers".into()));
            }
            _ => Some(tenant.name.clone()),
        };
        let catalog = self.inner.live.catalog.load();
        let brand_key = filter.brand.as_deref().map(match_key);
        let mut page: Vec<Arc<RepairCenter>> = catalog
            .centers_by_id(after)
            .filter(|c| owner.as_ref().is_none_or(|owner| &c.owner == owner))
            .filter(|c| filter.kind.is_none_or(|kind| c.kind == kind))
            .filter(|c| brand_key.as_ref().is_none_or(|key| c.brand_support(key).is_some()))
            .take(limit + 1)
            .cloned()
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }
}

/// Filters of a catalog listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    /// Brand, case-insensitive.
    pub brand: Option<String>,
    /// Owner (ops only).
    pub owner: Option<String>,
    /// Kind.
    pub kind: Option<repairmatch_core::model::CenterKind>,
}
