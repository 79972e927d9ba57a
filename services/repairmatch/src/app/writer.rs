//! Catalog writes: who may write what, one batch at a time through the
//! store, and publishing what was committed as a new snapshot.
//!
//! The writer mutex serializes writes within this process, so the view a
//! permission check reads (the latest committed state) cannot change under
//! it; the store still re-checks each item's etag and owner inside its atomic
//! step, which is what keeps writers in other processes honest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use repairmatch_core::Catalog;
use repairmatch_core::model::{Bank, Brand, RepairCenter};
use tonic_types::FieldViolation;

use super::App;
use crate::auth::{self, Caller, Role, Tenant};
use crate::error::ServiceError;
use crate::store::{CenterDelete, CenterUpsert, ItemStatus, Precondition, WriteBatch};

/// The served snapshot and the writer that replaces it. Kept apart from the
/// store so a background compaction holds these, never the store.
pub(super) struct LiveCatalog {
    pub(super) catalog: ArcSwap<Catalog>,
    pub(super) writer: Mutex<Writer>,
}

/// Committed writes not yet in the published snapshot (only ever during a
/// bulk import, which publishes now and then rather than per batch).
#[derive(Default)]
pub(super) struct Writer {
    pub(super) version: u64,
    centers: HashMap<String, Option<RepairCenter>>,
    brands: Vec<Brand>,
    banks: Vec<Bank>,
    /// Bumped when the whole catalog is replaced (a feed reload), so a
    /// compaction of the replaced one is thrown away rather than swapped in.
    generation: u64,
    /// While a background compaction runs: the ids published since it started,
    /// to re-apply on top of the compacted base.
    compacting: Option<HashSet<String>>,
}

impl Writer {
    pub(super) fn new(version: u64) -> Self {
        Self { version, ..Self::default() }
    }

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
        if writer.centers.is_empty() && writer.brands.is_empty() && writer.banks.is_empty() {
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
        let banks = std::mem::take(&mut writer.banks);
        let snapshot = Arc::new(live.catalog.load().apply(writer.version, upserts, &deletes, brands, banks));
        live.catalog.store(Arc::clone(&snapshot));
        tracing::debug!(
            version = writer.version,
            publish_ms = started.elapsed().as_millis() as u64,
            "snapshot published"
        );
        if snapshot.needs_compaction() && writer.compacting.is_none() {
            writer.compacting = Some(HashSet::new());
            let live = Arc::clone(live);
            let generation = writer.generation;
            let spawned = std::thread::Builder::new().name("compaction".into()).spawn(move || {
                live.compact(&snapshot, generation);
                drop(snapshot);
                super::return_freed_pages_on_every_pool();
            });
            if let Err(error) = spawned {
                writer.compacting = None;
                tracing::error!(%error, "cannot start a compaction; the delta keeps growing");
            }
        }
    }

    /// Builds a single-layer snapshot from `from` off the write path, then
    /// swaps it in with the writes published meanwhile re-applied on top.
    fn compact(&self, from: &Catalog, generation: u64) {
        let started = std::time::Instant::now();
        let compacted = super::in_rebuild_pool(|| from.compacted());
        let build_ms = started.elapsed().as_millis() as u64;
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if writer.generation != generation {
            tracing::info!(build_ms, "compaction dropped: the catalog was reloaded meanwhile");
            return;
        }
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
            self.compact(&next, generation);
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

impl ItemOutcome {
    /// A stable lower-case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Ok => "ok",
            ItemOutcome::InvalidArgument => "invalid_argument",
            ItemOutcome::PermissionDenied => "permission_denied",
            ItemOutcome::Aborted => "aborted",
        }
    }
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
    /// The result `outcome` for the item `id`, with no etag yet.
    fn new(id: &str, outcome: ItemOutcome, violations: Vec<FieldViolation>, message: &str) -> Self {
        Self { id: id.to_owned(), outcome, etag: String::new(), violations, message: message.to_owned() }
    }

    fn not_owner(id: &str, path: &str) -> Self {
        let violation = FieldViolation::new(format!("{path}.id"), "belongs to another tenant");
        Self::new(id, ItemOutcome::PermissionDenied, vec![violation], "permission denied")
    }

    fn stale(id: &str) -> Self {
        let message = "the etag is not the current one: read the center again and retry";
        Self::new(id, ItemOutcome::Aborted, vec![], message)
    }
}

/// One item of a batch as the adapter validated it: its path in the request
/// (`centers[3]`), its id as sent, and the center or its bad fields.
pub type CheckedItem = (String, String, Result<RepairCenter, Vec<FieldViolation>>);

/// The precondition a tenant's write carries: ops may write anyone's center.
fn precondition_for(tenant: &Tenant, etag: &str) -> Precondition {
    Precondition {
        etag: (!etag.is_empty()).then(|| etag.to_owned()),
        owner: (tenant.role != Role::Ops).then(|| tenant.name.clone()),
    }
}

fn audit(tenant: &Tenant, action: &'static str, id: &str, outcome: &str, version: u64) {
    tracing::info!(
        target: "audit",
        tenant = %tenant.name,
        role = tenant.role.as_str(),
        action,
        id,
        outcome,
        version,
        "catalog write"
    );
}

impl App {
    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic mid-write leaves nothing half-applied (the store is
        // transactional, snapshots are whole), so the state stays usable.
        self.inner.live.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes committed writes visible to readers: one new snapshot.
    fn publish(&self, writer: &mut Writer) {
        LiveCatalog::publish(&self.inner.live, writer);
    }

    /// Applies changes another process committed (read from the store's
    /// feed): each record in its latest state, published as one snapshot.
    pub(super) fn apply_feed(&self, changes: crate::store::ChangeSet) {
        let mut writer = self.writer();
        for center in changes.centers {
            writer.centers.insert(center.id.clone(), Some(center));
        }
        for id in changes.deleted_center_ids {
            writer.centers.insert(id, None);
        }
        writer.brands.extend(changes.brands);
        writer.banks.extend(changes.banks);
        let version = changes.version;
        writer.version = writer.version.max(version);
        self.publish(&mut writer);
        // In order from the feed, the snapshot now holds everything up to its version.
        let inexact = &self.inner.inexact_version;
        if inexact.load(std::sync::atomic::Ordering::SeqCst) <= version {
            inexact.store(0, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Moves the writer to `version`, the one the store gave this process's
    /// own write. On a shared store, versions in between may be other
    /// replicas' writes not applied here yet: the snapshot about to be
    /// published then holds version `version` without all it stands for,
    /// and must not be cached under that number until the feed fills the gap.
    fn advance(&self, writer: &mut Writer, version: u64) {
        if version > writer.version + 1 {
            self.inner.inexact_version.store(version, std::sync::atomic::Ordering::SeqCst);
        }
        writer.version = writer.version.max(version);
    }

    /// Replaces the whole catalog (a follower that fell behind the feed).
    pub(super) fn replace_catalog(&self, catalog: Catalog) {
        let mut writer = self.writer();
        writer.generation += 1;
        writer.compacting = None;
        writer.centers.clear();
        writer.brands.clear();
        writer.banks.clear();
        writer.version = writer.version.max(catalog.version());
        self.inner.live.catalog.store(Arc::new(catalog));
        self.inner.inexact_version.store(0, std::sync::atomic::Ordering::SeqCst);
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
    /// etag); the good ones are committed in one atomic step and published
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
        let mut upserts = Vec::new();
        // (index into results, path in the request) of each upsert sent to the store
        let mut sent: Vec<(usize, String)> = Vec::new();
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
            let precondition = precondition_for(tenant, &center.etag);
            // The writer owns what it creates; the store keeps an existing owner.
            center.owner.clone_from(&tenant.name);
            results.push(ItemResult::new(&id, ItemOutcome::Ok, vec![], "written"));
            sent.push((results.len() - 1, path));
            upserts.push(CenterUpsert { center, precondition });
        }
        if !upserts.is_empty() {
            let applied = self.inner.store.apply(WriteBatch { upserts, ..WriteBatch::default() })?;
            self.advance(writer, applied.version);
            let mut written = applied.changes.centers.into_iter();
            for ((position, path), status) in sent.into_iter().zip(applied.upserts) {
                let id = results[position].id.clone();
                match status {
                    ItemStatus::Applied => {
                        let center = written.next().expect("the store returns each applied upsert");
                        results[position].etag.clone_from(&center.etag);
                        writer.centers.insert(center.id.clone(), Some(center));
                    }
                    ItemStatus::NotOwner => results[position] = ItemResult::not_owner(&id, &path),
                    ItemStatus::StaleEtag(_) | ItemStatus::NotFound => results[position] = ItemResult::stale(&id),
                }
            }
        }
        for result in &results {
            audit(tenant, action, &result.id, result.outcome.as_str(), writer.version);
        }
        Ok(results)
    }

    /// Deletes one center. Blocking.
    pub fn delete_center(&self, tenant: &Tenant, id: &str, etag: &str) -> Result<u64, ServiceError> {
        let mut writer = self.writer();
        let snapshot = self.inner.live.catalog.load();
        let existing = writer.latest(&snapshot, id);
        let outcome = (|| {
            let not_found = || ServiceError::RepairCenterNotFound(id.to_owned());
            let not_owner =
                || ServiceError::PermissionDenied(format!("repair center {id:?} belongs to another tenant"));
            let stale = || ServiceError::Aborted("the etag is not the current one: read the center again".into());
            let existing = existing.ok_or_else(not_found)?;
            auth::may_delete_center(tenant, &existing).map_err(|_| not_owner())?;
            let delete = CenterDelete { id: id.to_owned(), precondition: precondition_for(tenant, etag) };
            let applied = self.inner.store.apply(WriteBatch { deletes: vec![delete], ..WriteBatch::default() })?;
            match applied.deletes.first() {
                Some(ItemStatus::Applied) => {}
                Some(ItemStatus::NotFound) => return Err(not_found()),
                Some(ItemStatus::NotOwner) => return Err(not_owner()),
                Some(ItemStatus::StaleEtag(_)) | None => return Err(stale()),
            }
            self.advance(&mut writer, applied.version);
            writer.centers.insert(id.to_owned(), None);
            Ok(applied.version)
        })();
        let label = outcome.as_ref().map_or_else(ServiceError::reason, |_| "ok");
        audit(tenant, "delete_repair_center", id, label, writer.version);
        self.publish(&mut writer);
        outcome
    }

    /// Creates or replaces a brand; an existing brand keeps its owner. Blocking.
    pub fn upsert_brand(&self, tenant: &Tenant, mut brand: Brand) -> Result<Brand, ServiceError> {
        let name = brand.name.clone();
        let mut writer = self.writer();
        if let Err(denial) = auth::may_write_brand(tenant, &name) {
            audit(tenant, "upsert_brand", &name, "permission_denied", writer.version);
            return Err(ServiceError::PermissionDenied(denial.violations[0].description.clone()));
        }
        brand.owner.clone_from(&tenant.name);
        let applied = self.inner.store.apply(WriteBatch { brands: vec![brand], ..WriteBatch::default() })?;
        audit(tenant, "upsert_brand", &name, "ok", applied.version);
        self.advance(&mut writer, applied.version);
        let written = applied.changes.brands.into_iter().next().expect("the store returns the brand it wrote");
        writer.brands.push(written.clone());
        self.publish(&mut writer);
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use repairmatch_datagen as datagen;

    use super::*;
    use crate::config::Config;
    use crate::store::EmbeddedStore;

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn provider(name: &str) -> Tenant {
        Tenant { name: name.into(), role: Role::Provider, brand_keys: vec![], profiles: vec![], default_profile: None }
    }

    #[test]
    fn audit_lines_name_outcomes_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("catalog.redb")).unwrap();
        let mut config = Config::default();
        config.store.load_sample_when_empty = false;
        let app = App::with_store(config, Arc::new(store)).unwrap();
        let mut center = datagen::generate(1, 5).centers.remove(0);
        center.kind = repairmatch_core::model::CenterKind::ThirdParty;
        for support in &mut center.brands {
            support.authorized = false;
        }
        let mut authorized = center.clone();
        authorized.id = "authorized-one".into();
        authorized.brands[0].authorized = true;

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || {
            let items = vec![
                ("centers[0]".to_owned(), center.id.clone(), Ok(center.clone())),
                ("centers[1]".to_owned(), authorized.id.clone(), Ok(authorized)),
            ];
            let (results, _) = app.upsert_centers(&provider("provider-a"), items).unwrap();
            assert_eq!(results[0].outcome, ItemOutcome::Ok);
            assert_eq!(results[1].outcome, ItemOutcome::PermissionDenied);
            let error = app.delete_center(&provider("provider-b"), &center.id, "").unwrap_err();
            assert!(matches!(error, ServiceError::PermissionDenied(_)), "{error:?}");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("catalog write")).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("outcome=\"ok\"") && lines[0].contains("role=\"provider\""), "{}", lines[0]);
        assert!(lines[1].contains("outcome=\"permission_denied\""), "{}", lines[1]);
        assert!(lines[2].contains("outcome=\"PERMISSION_DENIED\""), "{}", lines[2]);
        assert!(!text.contains("Err(") && !text.contains("Ok("), "no Rust debug in the audit: {text}");
    }
}
