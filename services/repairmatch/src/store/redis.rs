//! The shared catalog store: Redis, for many replicas. Records are
//! `repairmatch.v1` protobuf bytes; every batch is one `MULTI`/`EXEC` under
//! `WATCH`, numbered with the next catalog version and recorded in a stream
//! whose entry ids *are* those versions (`{version}-0`), so a replica asks for
//! "everything after version v" directly and sees a gap when the stream was
//! trimmed past it.
//!
//! Keys, under `key_prefix` (`P`):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:version` | string | the catalog version of the last batch |
//! | `P:centers:00` … `P:centers:63` | hash | id → center bytes, by [`shard_of`] |
//! | `P:center-etags`, `P:center-owners` | hash | id → etag, id → owner: the preconditions, readable without decoding |
//! | `P:brands`, `P:banks` | hash | brand key / bank id → bytes |
//! | `P:changes` | stream | one entry per version: the keys it changed |
//!
//! Every command runs under a timeout; a connection that failed is dropped and
//! made again on the next call, and after a failure calls fail fast for a
//! moment (a circuit breaker) instead of piling onto a dead server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{Commands, Connection, RedisResult};
use repairmatch_core::model::match_key;

use super::records::{
    decode_all, decode_bank, decode_brand, decode_center, decode_shared_center, encode_bank, encode_brand,
    encode_center,
};
use super::{
    AppliedBatch, CatalogStore, ChangeSet, ChangedKeys, Changes, ItemStatus, StoreError, StoredCatalog, StoredStamp,
    WriteBatch,
};
use crate::config::StoreConfig;

/// How many hashes the centers are spread over: loads fetch them in parallel
/// and no single hash grows huge. Part of the stored layout: changing it
/// needs a migration.
pub const CENTER_SHARDS: u64 = 64;

/// The shard of a center id: FNV-1a, stable across releases and platforms.
pub fn shard_of(id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % CENTER_SHARDS
}

/// How long store calls fail fast after Redis failed, at first and at most.
const BREAKER_FIRST: Duration = Duration::from_millis(250);
const BREAKER_MAX: Duration = Duration::from_secs(5);

/// Fails calls fast while Redis is known to be down, probing it again after
/// a pause that doubles with every failed probe, up to a most. The store,
/// the rate limiter and the cache tier each keep one, with their own pauses.
#[derive(Debug)]
pub(crate) struct Breaker {
    first: Duration,
    max: Duration,
    state: Mutex<Option<(Instant, Duration)>>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(BREAKER_FIRST, BREAKER_MAX)
    }
}

impl Breaker {
    /// Pauses `first` after a failure, doubling up to `max` while probes fail.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self { first, max, state: Mutex::new(None) }
    }

    /// Whether calls should fail fast now.
    pub(crate) fn is_open(&self) -> bool {
        matches!(*self.state.lock().unwrap_or_else(|p| p.into_inner()), Some((until, _)) if Instant::now() < until)
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.is_open() {
            return Err(StoreError::Unavailable("redis failed a moment ago; not retrying yet".into()));
        }
        Ok(())
    }

    pub(crate) fn failed(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let pause = state.map_or(self.first, |(_, pause)| (pause * 2).min(self.max));
        *state = Some((Instant::now() + pause, pause));
    }

    pub(crate) fn succeeded(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
struct Keys {
    version: String,
    centers: Vec<String>,
    etags: String,
    owners: String,
    brands: String,
    banks: String,
    changes: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            version: format!("{prefix}:version"),
            centers: (0..CENTER_SHARDS).map(|shard| format!("{prefix}:centers:{shard:02}")).collect(),
            etags: format!("{prefix}:center-etags"),
            owners: format!("{prefix}:center-owners"),
            brands: format!("{prefix}:brands"),
            banks: format!("{prefix}:banks"),
            changes: format!("{prefix}:changes"),
        }
    }

    fn center(&self, id: &str) -> &str {
        &self.centers[shard_of(id) as usize]
    }
}

/// A Redis catalog store.
pub struct RedisStore {
    client: redis::Client,
    keys: Keys,
    command_timeout: Duration,
    feed_block: Duration,
    feed_max_len: u64,
    /// For loads and writes.
    connection: Mutex<Option<Connection>>,
    /// For the blocking feed read, which must not hold up writes.
    feed_connection: Mutex<Option<Connection>>,
    breaker: Breaker,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("keys", &self.keys.version).finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_timeout() || error.is_connection_dropped() || error.is_connection_refusal()
}

/// A client for the Redis server `config` names, with the password from
/// `password_env` when that is set, over TLS for a `rediss://` URL (trusting
/// `tls_ca_file` when given, else the system's roots). Connects lazily.
pub(crate) fn client(config: &StoreConfig) -> Result<redis::Client, StoreError> {
    let mut info = redis::IntoConnectionInfo::into_connection_info(config.url.as_str())
        .map_err(|e| StoreError::Config(format!("store.url: {e}")))?;
    if let Ok(password) = std::env::var(&config.password_env)
        && !password.is_empty()
    {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    if config.url.starts_with("rediss://") {
        // rustls needs one crypto provider for the process; a second
        // install (another client) is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let built = match &config.tls_ca_file {
        Some(path) => {
            let root_cert = std::fs::read(path)
                .map_err(|e| StoreError::Config(format!("store.tls_ca_file: cannot read {}: {e}", path.display())))?;
            redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) })
        }
        None => redis::Client::open(info),
    };
    built.map_err(|e| StoreError::Config(format!("store.url: {e}")))
}

impl RedisStore {
    /// A store on the Redis server `config` names. Connects lazily: a replica
    /// starts (and fails its first load clearly) even when Redis is down.
    pub fn new(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(Self {
            client: client(config)?,
            keys: Keys::new(&config.key_prefix),
            command_timeout: Duration::from_millis(config.command_timeout_ms),
            feed_block: Duration::from_millis(config.feed_block_ms),
            feed_max_len: config.feed_max_len,
            connection: Mutex::new(None),
            feed_connection: Mutex::new(None),
            breaker: Breaker::default(),
        })
    }

    /// Runs `work` on the connection in `slot` (made when missing), with
    /// `timeout` on each socket read and write. A connection that failed is
    /// dropped.
    fn with<T>(
        &self,
        slot: &Mutex<Option<Connection>>,
        read_timeout: Duration,
        work: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        self.breaker.check()?;
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = (|| {
            let connection = match slot.as_mut() {
                Some(connection) => connection,
                None => {
                    let connection = self.client.get_connection_with_timeout(self.command_timeout)?;
                    slot.insert(connection)
                }
            };
            connection.set_read_timeout(Some(read_timeout))?;
            connection.set_write_timeout(Some(read_timeout))?;
            work(connection)
        })();
        match outcome {
            Ok(value) => {
                self.breaker.succeeded();
                Ok(value)
            }
            Err(error) => {
                *slot = None;
                if unavailable(&error) {
                    self.breaker.failed();
                    Err(StoreError::Unavailable(error.to_string()))
                } else {
                    Err(StoreError::Redis(error))
                }
            }
        }
    }

    fn version(connection: &mut Connection, keys: &Keys) -> RedisResult<u64> {
        Ok(connection.get::<_, Option<u64>>(&keys.version)?.unwrap_or(0))
    }

    /// What "the feed had nothing after `since`" means when the version is
    /// `current`: nothing new, unless versions after `since` exist whose
    /// entries are gone. A write landing between the two reads is not that:
    /// its entry is there on a second look.
    fn nothing_after(&self, connection: &mut Connection, since: u64, current: u64) -> RedisResult<Changes> {
        if current <= since {
            return Ok(Changes::Since(ChangeSet { version: since, ..ChangeSet::default() }));
        }
        let again: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.keys.changes)
            .arg(format!("({since}-0"))
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(connection)?;
        Ok(if again.ids.is_empty() {
            Changes::ReloadAll
        } else {
            Changes::Since(ChangeSet { version: since, ..ChangeSet::default() })
        })
    }

    /// The latest state of the keys the feed `entries` list, when they follow
    /// `since` without a gap.
    fn changes_from(&self, connection: &mut Connection, since: u64, entries: &[StreamId]) -> RedisResult<Changes> {
        let (mut centers, mut brands, mut banks) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut expected = since + 1;
        for entry in entries {
            let version = entry_version(entry);
            if version != Some(expected) {
                // Trimmed past `since`, or an entry we cannot read: start over.
                return Ok(Changes::ReloadAll);
            }
            let keys: Option<ChangedKeys> =
                entry.get::<Vec<u8>>("keys").and_then(|bytes| serde_json::from_slice(&bytes).ok());
            let Some(keys) = keys.filter(|keys| !keys.everything) else {
                return Ok(Changes::ReloadAll);
            };
            centers.extend(keys.centers);
            brands.extend(keys.brands);
            banks.extend(keys.banks);
            expected += 1;
        }
        let version = expected - 1;
        let mut changes = ChangeSet { version, ..ChangeSet::default() };
        let mut by_shard: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for id in &centers {
            by_shard.entry(self.keys.center(id)).or_default().push(id);
        }
        for (shard, ids) in by_shard {
            let stored: Vec<Option<Vec<u8>>> = redis::cmd("HMGET").arg(shard).arg(&ids).query(connection)?;
            for (id, bytes) in ids.into_iter().zip(stored) {
                match bytes {
                    Some(bytes) => changes.centers.push(decode_center(&bytes).map_err(|why| corrupt(shard, id, why))?),
                    None => changes.deleted_center_ids.push(id.to_owned()),
                }
            }
        }
        if !brands.is_empty() {
            let stored: Vec<Option<Vec<u8>>> =
                redis::cmd("HMGET").arg(&self.keys.brands).arg(&brands).query(connection)?;
            for (key, bytes) in brands.iter().zip(stored) {
                if let Some(bytes) = bytes {
                    changes.brands.push(decode_brand(&bytes).map_err(|why| corrupt(&self.keys.brands, key, why))?);
                }
            }
        }
        if !banks.is_empty() {
            let stored: Vec<Option<Vec<u8>>> =
                redis::cmd("HMGET").arg(&self.keys.banks).arg(&banks).query(connection)?;
            for (id, bytes) in banks.iter().zip(stored) {
                if let Some(bytes) = bytes {
                    changes.banks.push(decode_bank(&bytes).map_err(|why| corrupt(&self.keys.banks, id, why))?);
                }
            }
        }
        Ok(Changes::Since(changes))
    }
}

/// A record that no longer decodes, as an error that travels through `with`.
fn corrupt(key: &str, field: &str, why: String) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Parse, "corrupt record", format!("{key} {field:?}: {why}")))
}

fn entry_version(entry: &StreamId) -> Option<u64> {
    entry.id.strip_suffix("-0")?.parse().ok()
}

impl CatalogStore for RedisStore {
    fn is_empty(&self) -> Result<bool, StoreError> {
        self.with(&self.connection, self.command_timeout, |connection| {
            let mut pipe = redis::pipe();
            for shard in &self.keys.centers {
                pipe.hlen(shard);
            }
            pipe.hlen(&self.keys.brands);
            let lengths: Vec<u64> = pipe.query(connection)?;
            Ok(lengths.iter().all(|&n| n == 0))
        })
    }

    fn load(&self) -> Result<StoredCatalog, StoreError> {
        // Large replies take longer than one command should.
        let read_timeout = self.command_timeout * 30;
        self.with(&self.connection, read_timeout, |connection| {
            // The version read first: changes made while the shards are read
            // are after it, so following the feed from it misses nothing.
            let version = Self::version(connection, &self.keys)?;
            let mut stored = StoredCatalog { version, ..StoredCatalog::default() };
            for shards in self.keys.centers.chunks(8) {
                let mut pipe = redis::pipe();
                for shard in shards {
                    pipe.hgetall(shard);
                }
                let replies: Vec<Vec<(String, Vec<u8>)>> = pipe.query(connection)?;
                for (shard, entries) in shards.iter().zip(replies) {
                    let centers =
                        decode_all(&entries, decode_shared_center).map_err(|(id, why)| corrupt(shard, id, why))?;
                    stored.centers.extend(centers);
                }
            }
            let brands: Vec<(String, Vec<u8>)> = connection.hgetall(&self.keys.brands)?;
            for (key, bytes) in brands {
                stored.brands.push(decode_brand(&bytes).map_err(|why| corrupt(&self.keys.brands, &key, why))?);
            }
            let banks: Vec<(String, Vec<u8>)> = connection.hgetall(&self.keys.banks)?;
            for (id, bytes) in banks {
                stored.banks.push(decode_bank(&bytes).map_err(|why| corrupt(&self.keys.banks, &id, why))?);
            }
            Ok(stored)
        })
    }

    fn apply(&self, batch: WriteBatch) -> Result<AppliedBatch, StoreError> {
        let keys = &self.keys;
        let ids: Vec<&str> = batch
            .upserts
            .iter()
            .map(|upsert| upsert.center.id.as_str())
            .chain(batch.deletes.iter().map(|delete| delete.id.as_str()))
            .collect();
        let brand_keys: Vec<String> = batch.brands.iter().map(|brand| match_key(&brand.name)).collect();
        let watched = [keys.version.as_str(), keys.etags.as_str()];
        // A bulk load sends hundreds of megabytes in one transaction: allow a
        // second per 20 MB on top of the command timeout.
        let bytes: usize = batch.upserts.iter().map(|u| u.center.name.len() + 1_000).sum();
        let timeout = self.command_timeout + Duration::from_secs((bytes / 20_000_000) as u64);
        self.with(&self.connection, timeout, |connection| {
            redis::transaction(connection, &watched, |connection, pipe| {
                let current = Self::version(connection, keys)?;
                let version = current + 1;
                let etag = format!("{version:x}");
                let now = Utc::now();
                let (etags, owners): (Vec<Option<String>>, Vec<Option<String>>) = if ids.is_empty() {
                    (Vec::new(), Vec::new())
                } else {
                    (
                        redis::cmd("HMGET").arg(&keys.etags).arg(&ids).query(connection)?,
                        redis::cmd("HMGET").arg(&keys.owners).arg(&ids).query(connection)?,
                    )
                };
                let stored_owners: Vec<Option<String>> = if brand_keys.is_empty() {
                    Vec::new()
                } else {
                    let stored: Vec<Option<Vec<u8>>> =
                        redis::cmd("HMGET").arg(&keys.brands).arg(&brand_keys).query(connection)?;
                    stored
                        .into_iter()
                        .map(|bytes| bytes.and_then(|b| decode_brand(&b).ok()).map(|brand| brand.owner))
                        .collect()
                };
                let mut applied = AppliedBatch::default();
                let mut shards: BTreeMap<&str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
                let (mut new_etags, mut new_owners, mut gone) = (Vec::new(), Vec::new(), Vec::new());
                for (index, upsert) in batch.upserts.iter().enumerate() {
                    let existing = etags[index]
                        .as_ref()
                        .map(|etag| StoredStamp { etag, owner: owners[index].as_deref().unwrap_or("") });
                    if let Err(refusal) = upsert.precondition.check(existing) {
                        applied.upserts.push(refusal);
                        continue;
                    }
                    let mut center = upsert.center.clone();
                    if let Some(existing) = existing.filter(|existing| !existing.owner.is_empty()) {
                        existing.owner.clone_into(&mut center.owner);
                    }
                    center.etag.clone_from(&etag);
                    center.update_time = Some(now);
                    shards
                        .entry(keys.center(&center.id))
                        .or_default()
                        .push((center.id.clone(), encode_center(&center)));
                    new_etags.push((center.id.clone(), etag.clone()));
                    new_owners.push((center.id.clone(), center.owner.clone()));
                    applied.upserts.push(ItemStatus::Applied);
                    applied.changes.centers.push(center);
                }
                for (offset, delete) in batch.deletes.iter().enumerate() {
                    let index = batch.upserts.len() + offset;
                    let Some(stored_etag) = etags[index].as_deref() else {
                        applied.deletes.push(ItemStatus::NotFound);
                        continue;
                    };
                    let existing =
                        Some(StoredStamp { etag: stored_etag, owner: owners[index].as_deref().unwrap_or("") });
                    if let Err(refusal) = delete.precondition.check(existing) {
                        applied.deletes.push(refusal);
                        continue;
                    }
                    gone.push(delete.id.clone());
                    applied.deletes.push(ItemStatus::Applied);
                    applied.changes.deleted_center_ids.push(delete.id.clone());
                }
                let mut brands = Vec::new();
                for (mut brand, stored_owner) in batch.brands.iter().cloned().zip(stored_owners) {
                    if let Some(owner) = stored_owner.filter(|owner| !owner.is_empty()) {
                        brand.owner = owner;
                    }
                    brands.push((match_key(&brand.name), encode_brand(&brand)));
                    applied.changes.brands.push(brand);
                }
                let banks: Vec<(String, Vec<u8>)> =
                    batch.banks.iter().map(|bank| (bank.id.clone(), encode_bank(bank))).collect();
                applied.changes.banks.extend(batch.banks.iter().cloned());
                if applied.changes.is_empty() {
                    applied.version = current;
                    applied.changes.version = current;
                    return Ok(Some(applied));
                }
                for (shard, records) in &shards {
                    pipe.hset_multiple(*shard, records).ignore();
                }
                if !new_etags.is_empty() {
                    pipe.hset_multiple(&keys.etags, &new_etags).ignore();
                    pipe.hset_multiple(&keys.owners, &new_owners).ignore();
                }
                for id in &gone {
                    pipe.hdel(keys.center(id), id).ignore();
                    pipe.hdel(&keys.etags, id).ignore();
                    pipe.hdel(&keys.owners, id).ignore();
                }
                if !brands.is_empty() {
                    pipe.hset_multiple(&keys.brands, &brands).ignore();
                }
                if !banks.is_empty() {
                    pipe.hset_multiple(&keys.banks, &banks).ignore();
                }
                pipe.set(&keys.version, version).ignore();
                let changed = serde_json::to_vec(&ChangedKeys::of(&applied.changes)).expect("plain strings serialize");
                pipe.cmd("XADD")
                    .arg(&keys.changes)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(self.feed_max_len)
                    .arg(format!("{version}-0"))
                    .arg("keys")
                    .arg(changed)
                    .ignore();
                pipe.get(&keys.version);
                let committed: Option<(u64,)> = pipe.query(connection)?;
                Ok(committed.map(|_| {
                    applied.version = version;
                    applied.changes.version = version;
                    applied
                }))
            })
        })
    }

    fn changes_since(&self, since: u64) -> Result<Changes, StoreError> {
        self.with(&self.connection, self.command_timeout * 10, |connection| {
            let reply: StreamRangeReply =
                redis::cmd("XRANGE").arg(&self.keys.changes).arg(format!("({since}-0")).arg("+").query(connection)?;
            let current = Self::version(connection, &self.keys)?;
            if current < since {
                return Ok(Changes::ReloadAll);
            }
            if reply.ids.is_empty() {
                return self.nothing_after(connection, since, current);
            }
            self.changes_from(connection, since, &reply.ids)
        })
    }

    fn wait_for_changes(&self, since: u64) -> Result<Changes, StoreError> {
        let block_ms = self.feed_block.as_millis() as u64;
        // The reply may take the whole block: the read timeout must outlast it.
        let read_timeout = self.feed_block + self.command_timeout;
        self.with(&self.feed_connection, read_timeout, |connection| {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(10_000)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(&self.keys.changes)
                .arg(format!("{since}-0"))
                .query(connection)?;
            let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
            let current = Self::version(connection, &self.keys)?;
            if current < since {
                // Redis lost what this replica saw (restarted without its
                // data): versions start again below ours, so start over.
                return Ok(Changes::ReloadAll);
            }
            if entries.is_empty() {
                return self.nothing_after(connection, since, current);
            }
            self.changes_from(connection, since, &entries)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("rc-0000001"), shard_of("rc-0000001"));
        let used: BTreeSet<u64> = (0..10_000).map(|i| shard_of(&format!("rc-{i:07}"))).collect();
        assert_eq!(used.len() as u64, CENTER_SHARDS, "ten thousand ids reach every shard");
        // Pinned: the layout in Redis depends on it.
        assert_eq!(shard_of(""), 0xcbf2_9ce4_8422_2325 % CENTER_SHARDS);
    }
}
