//! Where the catalog lives: the [`CatalogStore`] seam the application writes
//! through, and its implementations.
//!
//! - [`embedded`]: a redb file, for one process (the default).
//! - [`redis`]: Redis, shared by replicas, with a change feed.
//! - [`records`]: how domain records are kept as `repairmatch.v1` bytes, with
//!   no request validation in the way.
//!
//! A store knows nothing of tenants or API limits. It keeps records, applies
//! a batch atomically (each item's precondition checked inside that one
//! atomic step), numbers every batch with the next catalog version, and can
//! say what changed since a version so another process can follow it.

pub mod embedded;
pub mod records;
pub mod redis;

use std::sync::Arc;

use repairmatch_core::model::{Bank, Brand, RepairCenter, match_key};
use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedStore;
pub use redis::RedisStore;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("embedded database failed")]
    Database(#[from] redb::Error),
    /// A record no longer decodes.
    #[error("stored record {key:?} in {table} is corrupt: {why}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// Redis answered with an error.
    #[error("redis failed")]
    Redis(#[from] ::redis::RedisError),
    /// Redis could not be reached in time (down, paused, or the network).
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    /// The store's settings are unusable.
    #[error("{0}")]
    Config(String),
    /// A bulk load was committed after one of its writes failed.
    #[error("a bulk load whose write failed cannot be committed")]
    BulkLoadFailed,
    /// The store's directory could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

// redb reports each kind of failure as its own type; all of them are a
// database failure to the service.
macro_rules! redb_errors_are_database_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                StoreError::Database(error.into())
            }
        }
    )*};
}
redb_errors_are_database_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl StoreError {
    /// Whether the store could not be reached: worth retrying later, unlike a
    /// corrupt record.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// A batch touching more keys than this (a bulk import) is recorded as
/// "everything may have changed": listing a million ids helps no follower.
pub const MAX_LISTED_KEYS: usize = 10_000;

/// The keys one version changed, as a store's history records them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ChangedKeys {
    /// Too many to list: a follower reloads.
    #[serde(default)]
    pub(crate) everything: bool,
    #[serde(default)]
    pub(crate) centers: Vec<String>,
    #[serde(default)]
    pub(crate) brands: Vec<String>,
    #[serde(default)]
    pub(crate) banks: Vec<String>,
}

impl ChangedKeys {
    pub(crate) fn of(changes: &ChangeSet) -> Self {
        let listed =
            changes.centers.len() + changes.deleted_center_ids.len() + changes.brands.len() + changes.banks.len();
        if listed > MAX_LISTED_KEYS {
            return Self { everything: true, ..Self::default() };
        }
        Self {
            everything: false,
            centers: changes
                .centers
                .iter()
                .map(|c| c.id.clone())
                .chain(changes.deleted_center_ids.iter().cloned())
                .collect(),
            brands: changes.brands.iter().map(|b| match_key(&b.name)).collect(),
            banks: changes.banks.iter().map(|b| b.id.clone()).collect(),
        }
    }
}

/// The store `config` names: the embedded file, or the shared Redis.
pub fn open(config: &crate::config::StoreConfig) -> Result<Arc<dyn CatalogStore>, StoreError> {
    Ok(match config.kind {
        crate::config::StoreKind::Embedded => Arc::new(EmbeddedStore::open(&config.path)?),
        crate::config::StoreKind::Redis => Arc::new(RedisStore::new(config)?),
    })
}

/// Everything a store holds.
#[derive(Debug, Default)]
pub struct StoredCatalog {
    /// Version of the last committed batch.
    pub version: u64,
    /// Every center, shared: the snapshot built from them holds these.
    pub centers: Vec<Arc<RepairCenter>>,
    /// Every brand.
    pub brands: Vec<Brand>,
    /// Every bank.
    pub banks: Vec<Bank>,
}

/// What must hold of the stored center for an item to be written. Checked
/// inside the batch's atomic step, so two writers racing on one center cannot
/// both win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Precondition {
    /// The stored center must exist with exactly this etag.
    pub etag: Option<String>,
    /// If the center exists, this tenant must own it.
    pub owner: Option<String>,
}

/// What a [`Precondition`] is checked against: a stored center's etag and
/// owner (named, so the two strings cannot be swapped unnoticed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredStamp<'a> {
    /// The stored center's etag.
    pub etag: &'a str,
    /// The tenant that owns it; empty when none does.
    pub owner: &'a str,
}

impl Precondition {
    /// Whether this holds of a stored center, or of no center; the refusal
    /// if not. Ownership is checked first: another tenant learns nothing of
    /// the etag.
    pub(crate) fn check(&self, stored: Option<StoredStamp<'_>>) -> Result<(), ItemStatus> {
        if let (Some(owner), Some(stored)) = (&self.owner, stored)
            && stored.owner != owner
        {
            return Err(ItemStatus::NotOwner);
        }
        match (&self.etag, stored) {
            (None, _) => Ok(()),
            (Some(etag), Some(stored)) if stored.etag == etag => Ok(()),
            (Some(_), stored) => Err(ItemStatus::StaleEtag(stored.map(|s| s.etag.to_owned()).unwrap_or_default())),
        }
    }
}

/// A center to insert or replace. A center's owner is fixed when it is
/// created: replacing it keeps the stored owner, whatever the item says.
#[derive(Debug, Clone)]
pub struct CenterUpsert {
    /// The center; its etag and update time are the store's to set.
    pub center: RepairCenter,
    /// What must hold first.
    pub precondition: Precondition,
}

/// A center to delete.
#[derive(Debug, Clone)]
pub struct CenterDelete {
    /// Its id.
    pub id: String,
    /// What must hold first.
    pub precondition: Precondition,
}

/// Records to write in one atomic step.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Centers to insert or replace, by id.
    pub upserts: Vec<CenterUpsert>,
    /// Centers to delete, by id.
    pub deletes: Vec<CenterDelete>,
    /// Brands to insert or replace, by name (case-insensitive); an existing
    /// brand's owner is kept.
    pub brands: Vec<Brand>,
    /// Banks to insert or replace, by id.
    pub banks: Vec<Bank>,
}

impl WriteBatch {
    /// Unconditional upserts of whole records, as a bulk import writes them.
    pub fn load(centers: Vec<RepairCenter>, brands: Vec<Brand>, banks: Vec<Bank>) -> Self {
        let upserts =
            centers.into_iter().map(|center| CenterUpsert { center, precondition: Precondition::default() }).collect();
        Self { upserts, deletes: Vec::new(), brands, banks }
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.brands.is_empty() && self.banks.is_empty()
    }
}

/// What became of one upsert or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemStatus {
    /// Written (or deleted).
    Applied,
    /// The etag was not the stored one; nothing written. Holds the stored
    /// etag, empty when the center does not exist.
    StaleEtag(String),
    /// The center belongs to another tenant; nothing written.
    NotOwner,
    /// A delete of a center that does not exist.
    NotFound,
}

/// The outcome of a batch.
#[derive(Debug, Default)]
pub struct AppliedBatch {
    /// The catalog version after the batch: a new one when anything was
    /// written, the current one when nothing was.
    pub version: u64,
    /// One per upsert, in order.
    pub upserts: Vec<ItemStatus>,
    /// One per delete, in order.
    pub deletes: Vec<ItemStatus>,
    /// The changes as committed: centers with their new etag, update time
    /// and owner, brands with their owner.
    pub changes: ChangeSet,
}

/// Records changed after some version, each in its latest state.
#[derive(Debug, Default)]
pub struct ChangeSet {
    /// The version these changes bring a reader to.
    pub version: u64,
    /// Centers written, as stored now.
    pub centers: Vec<RepairCenter>,
    /// Centers deleted.
    pub deleted_center_ids: Vec<String>,
    /// Brands written.
    pub brands: Vec<Brand>,
    /// Banks written.
    pub banks: Vec<Bank>,
}

impl ChangeSet {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.centers.is_empty() && self.deleted_center_ids.is_empty() && self.brands.is_empty() && self.banks.is_empty()
    }
}

/// What a follower gets when it asks what changed since its version.
#[derive(Debug)]
pub enum Changes {
    /// The changes, coalesced to each record's latest state.
    Since(ChangeSet),
    /// The store's history no longer reaches back that far (trimmed, or a
    /// bulk load too large to list): load the whole catalog again.
    ReloadAll,
}

/// A catalog store. Methods block: call them from a blocking thread.
pub trait CatalogStore: Send + Sync + std::fmt::Debug + 'static {
    /// Whether no center and no brand is stored.
    fn is_empty(&self) -> Result<bool, StoreError>;

    /// Everything, for a first snapshot.
    fn load(&self) -> Result<StoredCatalog, StoreError>;

    /// Applies a batch in one atomic, durable step: items whose precondition
    /// fails are reported and skipped, the rest are committed together under
    /// one new catalog version before this returns.
    fn apply(&self, batch: WriteBatch) -> Result<AppliedBatch, StoreError>;

    /// A bulk load, as `repairmatch import` writes a file: unconditional
    /// upserts added batch by batch while the file is still being read,
    /// committed in one atomic, durable step, or not at all if the load is
    /// dropped. This default holds every batch and applies them at the
    /// commit; a store that can keep a transaction open writes each as it
    /// comes, so the writing overlaps the reading.
    fn bulk_load(&self) -> Result<Box<dyn BulkLoad + '_>, StoreError> {
        Ok(Box::new(BufferedBulkLoad { store: self, centers: Vec::new() }))
    }

    /// What changed after `version`.
    fn changes_since(&self, version: u64) -> Result<Changes, StoreError>;

    /// What changed after `version`, waiting a while (the store's feed block)
    /// for a first change when there is none yet. A store only this process
    /// writes has nothing to wait for and answers at once.
    fn wait_for_changes(&self, version: u64) -> Result<Changes, StoreError> {
        self.changes_since(version)
    }
}

/// A bulk load under way: see [`CatalogStore::bulk_load`].
pub trait BulkLoad {
    /// Adds centers, each an unconditional upsert (the store keeps the owner
    /// of a center it already holds). After an error the load can only be
    /// dropped: a commit refuses.
    fn add_centers(&mut self, centers: Vec<RepairCenter>) -> Result<(), StoreError>;

    /// Writes the brands and banks with everything added, in one atomic,
    /// durable step; the catalog version after it.
    fn commit(self: Box<Self>, brands: Vec<Brand>, banks: Vec<Bank>) -> Result<u64, StoreError>;
}

/// The default bulk load: one [`CatalogStore::apply`] at the commit.
struct BufferedBulkLoad<'a, S: ?Sized> {
    store: &'a S,
    centers: Vec<RepairCenter>,
}

impl<S: CatalogStore + ?Sized> BulkLoad for BufferedBulkLoad<'_, S> {
    fn add_centers(&mut self, centers: Vec<RepairCenter>) -> Result<(), StoreError> {
        self.centers.extend(centers);
        Ok(())
    }

    fn commit(self: Box<Self>, brands: Vec<Brand>, banks: Vec<Bank>) -> Result<u64, StoreError> {
        Ok(self.store.apply(WriteBatch::load(self.centers, brands, banks))?.version)
    }
}
