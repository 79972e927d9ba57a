//! The embedded catalog store: one redb file holding every center, brand and
//! bank as protobuf bytes, the catalog version, and a bounded history of
//! which records each version changed.
//!
//! Every batch is one ACID transaction, durable (fsynced) before it returns,
//! so an acknowledged write survives a crash and a reader never sees half of
//! one. Only one process can open the file at a time.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Utc;
use rayon::prelude::*;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use repairmatch_core::model::{Bank, Brand, RepairCenter, match_key};

use super::records::{
    CenterStamp, decode_all, decode_bank, decode_brand, decode_center, decode_center_stamp, decode_shared_center,
    encode_bank, encode_brand, encode_center,
};
use super::{
    AppliedBatch, BulkLoad, CatalogStore, CenterUpsert, ChangeSet, ChangedKeys, Changes, ItemStatus, MAX_LISTED_KEYS,
    StoreError, StoredCatalog, WriteBatch,
};
use crate::batches;

const CENTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("repair_centers");
const BRANDS: TableDefinition<&str, &[u8]> = TableDefinition::new("brands");
const BANKS: TableDefinition<&str, &[u8]> = TableDefinition::new("banks");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Catalog version → the keys that version changed (JSON of [`ChangedKeys`]).
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
const CATALOG_VERSION: &str = "catalog_version";

/// How many versions of history `changes_since` can answer from; a follower
/// further behind reloads everything.
const HISTORY_VERSIONS: u64 = 10_000;

/// redb's own page cache. The snapshot in memory answers every read, so the
/// file is read whole only at start and in pages by writes; redb's default
/// (1 GiB) kept the whole file resident after a start: 75 MiB of a 100k
/// catalog, a gigabyte of a million. What a start leaves in the cache is the
/// file's last pages, of no more use to later writes than any others; the
/// kernel's page cache holds what they touch. 8 MiB keeps the trees' branch
/// pages, and leaves half of it (redb's bound) for a write's dirty pages,
/// about the thousand leaves a 1,000-center write touches. Against 32 MiB it
/// saves 28 MiB of RSS; a 1,000-center write and a 100k import took the same
/// time with either, within the noise. A bulk import, one transaction,
/// spills dirty pages past this cache and writes them twice, which costs it
/// no measurable time, so imports use this bound too.
const PAGE_CACHE_BYTES: usize = 8 << 20;

/// A handle on the store file.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Database,
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory)
                .map_err(|source| StoreError::Directory { path: directory.display().to_string(), source })?;
        }
        let db = Database::builder().set_cache_size(PAGE_CACHE_BYTES).create(path)?;
        // Create the tables up front so readers never meet a missing one.
        let txn = db.begin_write()?;
        txn.open_table(CENTERS)?;
        txn.open_table(BRANDS)?;
        txn.open_table(BANKS)?;
        txn.open_table(META)?;
        txn.open_table(CHANGES)?;
        txn.commit()?;
        Ok(Self { db })
    }
}

fn corrupt(table: &'static str, key: &str) -> impl FnOnce(String) -> StoreError {
    move |why| StoreError::Corrupt { table, key: key.to_owned(), why }
}

/// Every record of a table, read in batches and decoded on every core.
fn read_all<T: Send>(
    txn: &redb::ReadTransaction,
    (definition, name): (TableDefinition<&str, &[u8]>, &'static str),
    decode: impl Fn(&[u8]) -> Result<T, String> + Sync,
) -> Result<Vec<T>, StoreError> {
    const BATCH: usize = 8_192;
    let table = txn.open_table(definition)?;
    let mut records = Vec::with_capacity(usize::try_from(table.len()?).unwrap_or(0));
    let mut entries = table.iter()?;
    let read_batch = || entries.by_ref().take(BATCH).collect::<Result<Vec<_>, _>>().map_err(StoreError::from);
    let decode_batch = |batch: &[(redb::AccessGuard<&str>, redb::AccessGuard<&[u8]>)]| {
        let stored: Vec<(&str, &[u8])> = batch.iter().map(|(key, value)| (key.value(), value.value())).collect();
        decode_all(&stored, &decode).map_err(|(key, why)| corrupt(name, key)(why))
    };
    batches::read_ahead(read_batch, decode_batch, |decoded| {
        records.extend(decoded?);
        Ok(())
    })?;
    Ok(records)
}

/// The version a write transaction makes, and what it stamps on the centers
/// it writes.
struct Stamp {
    /// The catalog version before the transaction.
    current: u64,
    etag: String,
    now: chrono::DateTime<Utc>,
}

impl Stamp {
    fn next(txn: &redb::WriteTransaction) -> Result<Self, StoreError> {
        let current = txn.open_table(META)?.get(CATALOG_VERSION)?.map_or(0, |v| v.value());
        Ok(Self { current, etag: format!("{:x}", current + 1), now: Utc::now() })
    }

    /// Records the new version and which keys it changed, and commits:
    /// durable when this returns.
    fn commit(&self, txn: redb::WriteTransaction, keys: &ChangedKeys) -> Result<u64, StoreError> {
        let version = self.current + 1;
        txn.open_table(META)?.insert(CATALOG_VERSION, version)?;
        {
            let mut history = txn.open_table(CHANGES)?;
            let keys = serde_json::to_vec(keys).expect("plain strings serialize");
            history.insert(version, keys.as_slice())?;
            if version > HISTORY_VERSIONS {
                history.retain_in(..=version - HISTORY_VERSIONS, |_, _| false)?;
            }
        }
        txn.commit()?;
        Ok(version)
    }
}

/// Where a write encodes the centers it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// On every core, the next chunk while this thread inserts the last: an
    /// API write has the pool to itself.
    OnEveryCore,
    /// On this thread: a bulk load adds a batch while the pool parses the
    /// next, and work handed to the pool from outside would wait behind the
    /// parsing (measured: a 100k import 0.96–1.07 s this way against
    /// 0.81–0.93 s on this thread).
    OnThisThread,
}

/// Writes `upserts` into the centers table of an open transaction, each
/// checked against the center stored before it (in the table, or written
/// earlier in this call), stamped, and reported in `applied`.
fn write_upserts(
    table: &mut redb::Table<&str, &[u8]>,
    upserts: Vec<CenterUpsert>,
    stamp: &Stamp,
    encoding: Encoding,
    applied: &mut AppliedBatch,
) -> Result<(), StoreError> {
    // Centers are encoded after the loop, so one written earlier in this
    // call is found here, not in the table.
    let mut written: foldhash::HashMap<String, usize> =
        foldhash::HashMap::with_capacity_and_hasher(upserts.len(), Default::default());
    let first = applied.changes.centers.len();
    applied.upserts.reserve(upserts.len());
    applied.changes.centers.reserve(upserts.len());
    for upsert in upserts {
        let mut center = upsert.center;
        let existing = match written.get(&center.id) {
            Some(&index) => Some(CenterStamp::of(&applied.changes.centers[index])),
            None => match table.get(center.id.as_str())? {
                Some(bytes) => Some(decode_center_stamp(bytes.value()).map_err(corrupt("repair_centers", &center.id))?),
                None => None,
            },
        };
        if let Err(refusal) = upsert.precondition.check(existing.as_ref().map(CenterStamp::borrowed)) {
            applied.upserts.push(refusal);
            continue;
        }
        if let Some(existing) = existing.filter(|e| !e.owner.is_empty()) {
            center.owner = existing.owner;
        }
        center.etag.clone_from(&stamp.etag);
        center.update_time = Some(stamp.now);
        applied.upserts.push(ItemStatus::Applied);
        written.insert(center.id.clone(), applied.changes.centers.len());
        applied.changes.centers.push(center);
    }
    if encoding == Encoding::OnThisThread {
        for center in &applied.changes.centers[first..] {
            table.insert(center.id.as_str(), encode_center(center).as_slice())?;
        }
        return Ok(());
    }
    // Encoding is most of a bulk write's work: on every core, a bounded
    // batch at a time, the next batch while this thread inserts the last.
    let encode = |centers: &[RepairCenter]| -> Vec<Vec<u8>> { centers.par_iter().map(encode_center).collect() };
    let mut chunks = applied.changes.centers[first..].chunks(8_192);
    let mut current = chunks.next().map(|centers| (centers, encode(centers)));
    while let Some((centers, encoded)) = current.take() {
        let mut inserted = Ok(());
        rayon::in_place_scope(|scope| {
            scope.spawn(|_| current = chunks.next().map(|centers| (centers, encode(centers))));
            inserted = centers
                .iter()
                .zip(&encoded)
                .try_for_each(|(center, bytes)| table.insert(center.id.as_str(), bytes.as_slice()).map(drop));
        });
        inserted?;
    }
    Ok(())
}

/// Writes brands (keeping an existing brand's owner) and banks into an open
/// transaction, and lists them in `changes`.
fn write_brands_and_banks(
    txn: &redb::WriteTransaction,
    brands: Vec<Brand>,
    banks: Vec<Bank>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(BRANDS)?;
    for mut brand in brands {
        let key = match_key(&brand.name);
        if let Some(bytes) = table.get(key.as_str())? {
            let existing = decode_brand(bytes.value()).map_err(corrupt("brands", &key))?;
            if !existing.owner.is_empty() {
                brand.owner = existing.owner;
            }
        }
        table.insert(key.as_str(), encode_brand(&brand).as_slice())?;
        changes.brands.push(brand);
    }
    let mut table = txn.open_table(BANKS)?;
    for bank in banks {
        table.insert(bank.id.as_str(), encode_bank(&bank).as_slice())?;
        changes.banks.push(bank);
    }
    Ok(())
}

/// A bulk load into one write transaction: each batch of centers is written
/// as it is added, and nothing is visible or durable until `commit`;
/// dropping the load aborts the transaction.
struct EmbeddedBulkLoad {
    txn: redb::WriteTransaction,
    stamp: Stamp,
    /// An add failed part way: the transaction holds part of a batch, and
    /// must not be committed.
    failed: bool,
    /// The ids written, while few enough for the history to list; `None`
    /// once there are more.
    listed: Option<Vec<String>>,
}

impl BulkLoad for EmbeddedBulkLoad {
    fn add_centers(&mut self, centers: Vec<RepairCenter>) -> Result<(), StoreError> {
        let mut applied = AppliedBatch::default();
        let upserts = WriteBatch::load(centers, Vec::new(), Vec::new()).upserts;
        self.failed = true;
        let mut table = self.txn.open_table(CENTERS)?;
        write_upserts(&mut table, upserts, &self.stamp, Encoding::OnThisThread, &mut applied)?;
        drop(table);
        self.failed = false;
        if let Some(listed) = &mut self.listed {
            listed.extend(applied.changes.centers.iter().map(|center| center.id.clone()));
            if listed.len() > MAX_LISTED_KEYS {
                self.listed = None;
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>, brands: Vec<Brand>, banks: Vec<Bank>) -> Result<u64, StoreError> {
        if self.failed {
            self.txn.abort()?;
            return Err(StoreError::BulkLoadFailed);
        }
        let mut changes = ChangeSet::default();
        write_brands_and_banks(&self.txn, brands, banks, &mut changes)?;
        if self.listed.as_ref().is_some_and(Vec::is_empty) && changes.is_empty() {
            self.txn.abort()?;
            return Ok(self.stamp.current);
        }
        let keys = match self.listed {
            Some(centers) if centers.len() + changes.brands.len() + changes.banks.len() <= MAX_LISTED_KEYS => {
                ChangedKeys { centers, ..ChangedKeys::of(&changes) }
            }
            _ => ChangedKeys { everything: true, ..ChangedKeys::default() },
        };
        self.stamp.commit(self.txn, &keys)
    }
}

impl CatalogStore for EmbeddedStore {
    fn is_empty(&self) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(CENTERS)?.len()? == 0 && txn.open_table(BRANDS)?.len()? == 0)
    }

    fn load(&self) -> Result<StoredCatalog, StoreError> {
        let txn = self.db.begin_read()?;
        let version = txn.open_table(META)?.get(CATALOG_VERSION)?.map_or(0, |v| v.value());
        Ok(StoredCatalog {
            version,
            centers: read_all(&txn, (CENTERS, "repair_centers"), decode_shared_center)?,
            brands: read_all(&txn, (BRANDS, "brands"), decode_brand)?,
            banks: read_all(&txn, (BANKS, "banks"), decode_bank)?,
        })
    }

    fn apply(&self, batch: WriteBatch) -> Result<AppliedBatch, StoreError> {
        let txn = self.db.begin_write()?;
        let stamp = Stamp::next(&txn)?;
        let mut applied = AppliedBatch::default();
        {
            let mut table = txn.open_table(CENTERS)?;
            write_upserts(&mut table, batch.upserts, &stamp, Encoding::OnEveryCore, &mut applied)?;
            for delete in batch.deletes {
                let existing = match table.get(delete.id.as_str())? {
                    Some(bytes) => decode_center_stamp(bytes.value()).map_err(corrupt("repair_centers", &delete.id))?,
                    None => {
                        applied.deletes.push(ItemStatus::NotFound);
                        continue;
                    }
                };
                if let Err(refusal) = delete.precondition.check(Some(existing.borrowed())) {
                    applied.deletes.push(refusal);
                    continue;
                }
                table.remove(delete.id.as_str())?;
                applied.deletes.push(ItemStatus::Applied);
                applied.changes.deleted_center_ids.push(delete.id);
            }
        }
        write_brands_and_banks(&txn, batch.brands, batch.banks, &mut applied.changes)?;
        applied.version = if applied.changes.is_empty() {
            // Nothing passed its precondition: no new version.
            txn.abort()?;
            stamp.current
        } else {
            stamp.commit(txn, &ChangedKeys::of(&applied.changes))?
        };
        applied.changes.version = applied.version;
        Ok(applied)
    }

    fn bulk_load(&self) -> Result<Box<dyn BulkLoad + '_>, StoreError> {
        let txn = self.db.begin_write()?;
        let stamp = Stamp::next(&txn)?;
        Ok(Box::new(EmbeddedBulkLoad { txn, stamp, failed: false, listed: Some(Vec::new()) }))
    }

    fn changes_since(&self, since: u64) -> Result<Changes, StoreError> {
        let txn = self.db.begin_read()?;
        let current = txn.open_table(META)?.get(CATALOG_VERSION)?.map_or(0, |v| v.value());
        if since >= current {
            return Ok(Changes::Since(ChangeSet { version: current, ..ChangeSet::default() }));
        }
        let history = txn.open_table(CHANGES)?;
        let oldest = history.first()?.map(|(version, _)| version.value());
        if oldest.is_none_or(|oldest| oldest > since + 1) {
            return Ok(Changes::ReloadAll);
        }
        let (mut centers, mut brands, mut banks) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for entry in history.range(since + 1..=current)? {
            let (version, keys) = entry?;
            let keys: ChangedKeys = serde_json::from_slice(keys.value()).map_err(|e| StoreError::Corrupt {
                table: "changes",
                key: version.value().to_string(),
                why: e.to_string(),
            })?;
            if keys.everything {
                return Ok(Changes::ReloadAll);
            }
            centers.extend(keys.centers);
            brands.extend(keys.brands);
            banks.extend(keys.banks);
        }
        // Each key's state now is its latest: later versions win by construction.
        let mut changes = ChangeSet { version: current, ..ChangeSet::default() };
        let table = txn.open_table(CENTERS)?;
        for id in centers {
            match table.get(id.as_str())? {
                Some(bytes) => {
                    changes.centers.push(decode_center(bytes.value()).map_err(corrupt("repair_centers", &id))?)
                }
                None => changes.deleted_center_ids.push(id),
            }
        }
        let table = txn.open_table(BRANDS)?;
        for key in brands {
            if let Some(bytes) = table.get(key.as_str())? {
                changes.brands.push(decode_brand(bytes.value()).map_err(corrupt("brands", &key))?);
            }
        }
        let table = txn.open_table(BANKS)?;
        for id in banks {
            if let Some(bytes) = table.get(id.as_str())? {
                changes.banks.push(decode_bank(bytes.value()).map_err(corrupt("banks", &id))?);
            }
        }
        Ok(Changes::Since(changes))
    }
}

// The promises every store keeps (preconditions, changes since a version,
// bulk loads) are checked on this store and on Redis alike in
// tests/store_conformance.rs; these are this store's own.
#[cfg(test)]
mod tests {
    use repairmatch_datagen as datagen;

    use super::*;
    use crate::store::{CenterUpsert, Precondition};

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("nested/catalog.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn writes_survive_reopening_and_bump_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/catalog.redb");
        let sample = datagen::generate(50, 9);
        {
            let store = EmbeddedStore::open(&path).unwrap();
            assert!(store.is_empty().unwrap());
            let applied = store
                .apply(WriteBatch::load(sample.centers.clone(), sample.brands.clone(), sample.banks.clone()))
                .unwrap();
            assert_eq!(applied.version, 1);
            assert!(applied.changes.centers.iter().all(|c| c.etag == "1" && c.update_time.is_some()));
        }
        let store = EmbeddedStore::open(&path).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!((loaded.version, loaded.centers.len()), (1, 50));
        assert_eq!(loaded.brands.len(), sample.brands.len());
        let applied = store.apply(WriteBatch::load(vec![], sample.brands, vec![])).unwrap();
        assert_eq!(applied.version, 2);
    }

    #[test]
    fn a_follower_behind_a_bulk_load_or_the_trimmed_history_reloads() {
        let (_dir, store) = store();
        let bulk = datagen::generate(crate::store::MAX_LISTED_KEYS + 1, 2);
        store.apply(WriteBatch::load(bulk.centers, vec![], vec![])).unwrap();
        assert!(matches!(store.changes_since(0).unwrap(), Changes::ReloadAll), "the bulk load is not listed");
        let center = datagen::generate(1, 3).centers.remove(0);
        store.apply(WriteBatch::load(vec![center], vec![], vec![])).unwrap();
        assert!(matches!(store.changes_since(1).unwrap(), Changes::Since(c) if c.centers.len() == 1));

        let txn = store.db.begin_write().unwrap();
        txn.open_table(CHANGES).unwrap().retain_in(..=2, |_, _| false).unwrap();
        txn.commit().unwrap();
        assert!(matches!(store.changes_since(1).unwrap(), Changes::ReloadAll), "history trimmed past version 1");

        // The same through a bulk load, whose batches are each below the limit.
        let mut load = store.bulk_load().unwrap();
        let more = datagen::generate(crate::store::MAX_LISTED_KEYS + 1, 5).centers;
        for batch in more.chunks(4_096) {
            load.add_centers(batch.to_vec()).unwrap();
        }
        let version = load.commit(vec![], vec![]).unwrap();
        assert!(matches!(store.changes_since(version - 1).unwrap(), Changes::ReloadAll), "a bulk load is not listed");
    }

    #[test]
    fn a_bulk_load_whose_write_failed_cannot_be_committed() {
        let (_dir, store) = store();
        let centers = datagen::generate(2, 8).centers;
        let txn = store.db.begin_write().unwrap();
        txn.open_table(CENTERS).unwrap().insert(centers[1].id.as_str(), &b"\xff\xff"[..]).unwrap();
        txn.commit().unwrap();

        let mut load = store.bulk_load().unwrap();
        let error = load.add_centers(centers.clone()).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
        assert!(matches!(load.commit(vec![], vec![]), Err(StoreError::BulkLoadFailed)));
        let txn = store.db.begin_read().unwrap();
        assert!(txn.open_table(META).unwrap().get(CATALOG_VERSION).unwrap().is_none(), "no version was made");
        assert!(txn.open_table(CENTERS).unwrap().get(centers[0].id.as_str()).unwrap().is_none());
    }

    #[test]
    fn an_id_written_twice_in_one_batch_is_checked_against_its_first_write() {
        let (_dir, store) = store();
        let mut center = datagen::generate(1, 4).centers.remove(0);
        center.owner = "provider-a".into();
        let mut renamed = center.clone();
        renamed.name = "Renamed".into();
        let upserts = vec![
            CenterUpsert { center: center.clone(), precondition: Precondition::default() },
            CenterUpsert {
                center: renamed,
                precondition: Precondition { etag: Some("1".into()), owner: Some("provider-b".into()) },
            },
            CenterUpsert {
                center: center.clone(),
                precondition: Precondition { etag: Some("1".into()), owner: Some("provider-a".into()) },
            },
        ];
        let applied = store.apply(WriteBatch { upserts, ..WriteBatch::default() }).unwrap();
        assert_eq!(applied.upserts, [ItemStatus::Applied, ItemStatus::NotOwner, ItemStatus::Applied]);
        let loaded = store.load().unwrap();
        assert_eq!(loaded.centers.len(), 1);
        assert_eq!((loaded.centers[0].name.as_str(), loaded.centers[0].etag.as_str()), (center.name.as_str(), "1"));
    }
}
