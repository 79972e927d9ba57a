//! The embedded catalog store: a redb file holding every center, brand and
//! bank as protobuf bytes, plus the catalog version.
//!
//! Every write is one ACID transaction, durable (fsynced) before it returns,
//! so an acknowledged write survives a crash and a reader never sees half of
//! one. Records are stored as `repairmatch.v1` messages: the wire schema's
//! compatibility rules then also govern the file format.

use std::path::Path;

use chrono::Utc;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use repairmatch_core::model::{Bank, Brand, RepairCenter, match_key};
use repairmatch_proto::v1 as pb;

use crate::convert;

const CENTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("repair_centers");
const BRANDS: TableDefinition<&str, &[u8]> = TableDefinition::new("brands");
const BANKS: TableDefinition<&str, &[u8]> = TableDefinition::new("banks");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CATALOG_VERSION: &str = "catalog_version";

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("embedded database: {0}")]
    Database(#[from] redb::Error),
    /// A record no longer decodes or validates.
    #[error("stored record {key:?} in {table} is corrupt: {why}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The store's directory could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn db_error(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Database(error.into())
}

/// Everything the store holds.
#[derive(Debug, Default)]
pub struct StoredCatalog {
    /// Version of the last committed write.
    pub version: u64,
    /// Every center.
    pub centers: Vec<RepairCenter>,
    /// Every brand.
    pub brands: Vec<Brand>,
    /// Every bank.
    pub banks: Vec<Bank>,
}

/// Records to write in one transaction.
#[derive(Debug, Default)]
pub struct CatalogWrite {
    /// Centers to insert or replace, by id.
    pub centers: Vec<RepairCenter>,
    /// Brands to insert or replace, by name (case-insensitive).
    pub brands: Vec<Brand>,
    /// Banks to insert or replace, by id.
    pub banks: Vec<Bank>,
    /// Centers to delete, by id.
    pub deleted_center_ids: Vec<String>,
}

impl CatalogWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.centers.is_empty() && self.brands.is_empty() && self.banks.is_empty() && self.deleted_center_ids.is_empty()
    }
}

/// A handle on the store file.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory)
                .map_err(|source| StoreError::Directory { path: directory.display().to_string(), source })?;
        }
        let db = Database::create(path).map_err(db_error)?;
        // Create the tables up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(db_error)?;
        txn.open_table(CENTERS).map_err(db_error)?;
        txn.open_table(BRANDS).map_err(db_error)?;
        txn.open_table(BANKS).map_err(db_error)?;
        txn.open_table(META).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        Ok(Self { db })
    }

    /// Whether no center, brand or bank is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let centers = txn.open_table(CENTERS).map_err(db_error)?.len().map_err(db_error)?;
        let brands = txn.open_table(BRANDS).map_err(db_error)?.len().map_err(db_error)?;
        Ok(centers == 0 && brands == 0)
    }

    /// Reads everything, validating each record again.
    pub fn load(&self) -> Result<StoredCatalog, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let version =
            txn.open_table(META).map_err(db_error)?.get(CATALOG_VERSION).map_err(db_error)?.map_or(0, |v| v.value());
        let centers = read_all(&txn, CENTERS, "repair_centers", |bytes| {
            let message = pb::RepairCenter::decode(bytes).map_err(|e| e.to_string())?;
            convert::center_from_proto(&message, "").map_err(|v| format!("{v:?}"))
        })?;
        let brands = read_all(&txn, BRANDS, "brands", |bytes| {
            let message = pb::Brand::decode(bytes).map_err(|e| e.to_string())?;
            convert::brand_from_proto(&message, "").map_err(|v| format!("{v:?}"))
        })?;
        let banks = read_all(&txn, BANKS, "banks", |bytes| {
            let message = pb::Bank::decode(bytes).map_err(|e| e.to_string())?;
            convert::bank_from_proto(&message, "").map_err(|v| format!("{v:?}"))
        })?;
        Ok(StoredCatalog { version, centers, brands, banks })
    }

    /// Writes a batch in one durable transaction and returns the new catalog
    /// version. Each written center gets a fresh etag and update time.
    pub fn write(&self, write: CatalogWrite) -> Result<(u64, CatalogWrite), StoreError> {
        let mut write = write;
        let txn = self.db.begin_write().map_err(db_error)?;
        let version = {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            let version = meta.get(CATALOG_VERSION).map_err(db_error)?.map_or(0, |v| v.value()) + 1;
            meta.insert(CATALOG_VERSION, version).map_err(db_error)?;
            version
        };
        let now = Utc::now();
        {
            let mut table = txn.open_table(CENTERS).map_err(db_error)?;
            for id in &write.deleted_center_ids {
                table.remove(id.as_str()).map_err(db_error)?;
            }
            for center in &mut write.centers {
                center.etag = format!("{version:x}");
                center.update_time = Some(now);
                let bytes = convert::center_to_proto(center).encode_to_vec();
                table.insert(center.id.as_str(), bytes.as_slice()).map_err(db_error)?;
            }
        }
        {
            let mut table = txn.open_table(BRANDS).map_err(db_error)?;
            for brand in &write.brands {
                let bytes = convert::brand_to_proto(brand).encode_to_vec();
                table.insert(match_key(&brand.name).as_str(), bytes.as_slice()).map_err(db_error)?;
            }
        }
        {
            let mut table = txn.open_table(BANKS).map_err(db_error)?;
            for bank in &write.banks {
                let bytes = convert::bank_to_proto(bank).encode_to_vec();
                table.insert(bank.id.as_str(), bytes.as_slice()).map_err(db_error)?;
            }
        }
        txn.commit().map_err(db_error)?;
        Ok((version, write))
    }
}

fn read_all<T>(
    txn: &redb::ReadTransaction,
    definition: TableDefinition<&str, &[u8]>,
    table_name: &'static str,
    decode: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<Vec<T>, StoreError> {
    let table = txn.open_table(definition).map_err(db_error)?;
    let mut records = Vec::with_capacity(usize::try_from(table.len().map_err(db_error)?).unwrap_or(0));
    for entry in table.iter().map_err(db_error)? {
        let (key, value) = entry.map_err(db_error)?;
        let record = decode(value.value()).map_err(|why| StoreError::Corrupt {
            table: table_name,
            key: key.value().to_owned(),
            why,
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use repairmatch_datagen as datagen;

    use super::*;

    #[test]
    fn writes_survive_reopening_and_bump_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/catalog.redb");
        let sample = datagen::generate(50, 9);
        {
            let store = Store::open(&path).unwrap();
            assert!(store.is_empty().unwrap());
            let write = CatalogWrite {
                centers: sample.centers.clone(),
                brands: sample.brands.clone(),
                banks: sample.banks,
                ..CatalogWrite::default()
            };
            let (version, written) = store.write(write).unwrap();
            assert_eq!(version, 1);
            assert!(written.centers.iter().all(|c| c.etag == "1" && c.update_time.is_some()));
        }
        let store = Store::open(&path).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.version, 1);
        assert_eq!(loaded.centers.len(), 50);
        assert_eq!(loaded.brands.len(), sample.brands.len());
        let (version, _) = store.write(CatalogWrite { brands: sample.brands, ..CatalogWrite::default() }).unwrap();
        assert_eq!(version, 2);
    }
}
