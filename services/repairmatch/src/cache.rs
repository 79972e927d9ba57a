//! The Find result cache, in two tiers: in-process (`moka`, bounded by
//! bytes) and, on a shared Redis store, Redis itself, so a replica can serve
//! what another computed.
//!
//! An answer is cached under a key made of the request as sent (its
//! `language_code` named one way per language, as the answer's text is in
//! it), everything else that shapes the answer (the profile it resolved to,
//! the UTC date that warranty decisions use) and the catalog and config
//! versions it was computed at. A write or a config reload changes a version, so a stale
//! answer is never looked up again; it simply ages out. Concurrent identical
//! misses in one process compute once (moka's single-flight `try_get_with`).
//!
//! The Redis tier is an optimization only: every call has a timeout, a
//! failure opens a circuit breaker for a while, and a Find then goes on
//! without it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use prost::Message;
use prost::bytes::Bytes;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use repairmatch_core::model::RepairCenter;
use repairmatch_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::framed::{FRAME_HEADER_LEN, frame_header};
use crate::config::{StoreConfig, StoreKind};
use crate::convert;
use crate::convert::find::FindResponseParts;
use crate::error::ServiceError;
use crate::metrics::Metrics;
use crate::store::redis::Breaker;

/// The result cache's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Turns every tier off (`REPAIRMATCH_CACHE__ENABLED=false`).
    pub enabled: bool,
    /// Most memory the in-process tier holds, bytes of encoded answers.
    pub local_max_bytes: u64,
    /// How long an answer lives, ms, before jitter.
    pub ttl_ms: u64,
    /// Each entry's lifetime is spread by up to this fraction either way, so
    /// entries made together do not expire together.
    pub ttl_jitter: f64,
    /// Use Redis as a shared second tier when the store is Redis.
    pub redis: bool,
    /// Longest a Redis cache call may take, ms: past it the Find computes.
    pub redis_timeout_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            local_max_bytes: 64 * 1024 * 1024,
            ttl_ms: 60_000,
            ttl_jitter: 0.1,
            redis: true,
            redis_timeout_ms: 50,
        }
    }
}

impl CacheConfig {
    /// Problems with the values, by key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.ttl_ms == 0 {
            problems.push(("cache.ttl_ms".to_owned(), "must be at least 1".to_owned()));
        }
        if !(self.ttl_jitter.is_finite() && (0.0..1.0).contains(&self.ttl_jitter)) {
            problems.push(("cache.ttl_jitter".to_owned(), "must be a fraction from 0 to below 1".to_owned()));
        }
        if self.redis_timeout_ms == 0 {
            problems.push(("cache.redis_timeout_ms".to_owned(), "must be at least 1".to_owned()));
        }
        problems
    }
}

/// A Find answer in its wire form, encoded once and sent as often as asked,
/// with the one field the service reads back (to rank the next pages ahead).
#[derive(Debug, Clone, PartialEq)]
pub struct FindAnswer {
    /// The encoded `FindRepairCenterResponse`: `frame` past its header.
    pub encoded: Bytes,
    /// The gRPC message frame that is sent: a 5-byte header, then `encoded`
    /// (see [`crate::api::framed`]).
    pub frame: Bytes,
    /// Its `next_page_token`.
    pub next_page_token: String,
}

/// Centers in their wire form, each encoded once for the Find answers it
/// is in (see [`FindResponseParts`]), bounded by bytes.
///
/// Keyed by the address of the snapshot's shared record. The entry holds a
/// weak reference to it, which keeps the record's allocation, so while the
/// entry lives no other record can have that address; a changed center is a
/// new record, so a new key. A replaced center's fields are freed with it:
/// only its fixed-size block waits for the entry's eviction, and counts
/// against the bound.
pub struct CenterEncodings(moka::sync::Cache<usize, (Weak<RepairCenter>, Bytes)>);

impl CenterEncodings {
    /// At most `max_bytes` of encodings (each about 1 KB) and what their
    /// entries keep.
    pub fn new(max_bytes: u64) -> Self {
        let weigh = |_: &usize, (_, encoded): &(Weak<RepairCenter>, Bytes)| {
            let kept = std::mem::size_of::<RepairCenter>() + std::mem::size_of::<(usize, Weak<RepairCenter>, Bytes)>();
            u32::try_from(encoded.len() + kept).unwrap_or(u32::MAX)
        };
        Self(moka::sync::Cache::builder().max_capacity(max_bytes).weigher(weigh).build())
    }

    /// `center` as `convert::center_to_proto` encodes it.
    pub fn get(&self, center: &Arc<RepairCenter>) -> Bytes {
        let key = Arc::as_ptr(center) as usize;
        if let Some((_, encoded)) = self.0.get(&key) {
            return encoded;
        }
        let encoded = Bytes::from(convert::center_to_proto(center).encode_to_vec());
        self.0.insert(key, (Arc::downgrade(center), encoded.clone()));
        encoded
    }
}

impl std::fmt::Debug for CenterEncodings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CenterEncodings").field("entries", &self.0.entry_count()).finish()
    }
}

/// Only `next_page_token` of a `FindRepairCenterResponse`: decoding the
/// answer into this skips every other field.
#[derive(Clone, PartialEq, prost::Message)]
struct NextPageTokenOnly {
    #[prost(string, tag = "7")]
    next_page_token: String,
}

impl FindAnswer {
    /// Encodes an answer, its centers from `encodings`.
    pub fn from_parts(parts: FindResponseParts, encodings: &CenterEncodings) -> Self {
        let next_page_token = parts.message.next_page_token.clone();
        Self::framing(next_page_token, |frame| parts.encode_into(|center| encodings.get(center), frame))
    }

    /// An answer as another replica cached it.
    fn from_encoded(encoded: Bytes) -> Result<Self, prost::DecodeError> {
        let NextPageTokenOnly { next_page_token } = NextPageTokenOnly::decode(encoded.clone())?;
        Ok(Self::framing(next_page_token, |frame| frame.extend_from_slice(&encoded)))
    }

    /// The message `write` appends, behind its frame header, in one buffer
    /// both share (room for the header is left first, so nothing moves).
    fn framing(next_page_token: String, write: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut frame = vec![0; FRAME_HEADER_LEN];
        write(&mut frame);
        let header = frame_header(frame.len() - FRAME_HEADER_LEN);
        frame[..FRAME_HEADER_LEN].copy_from_slice(&header);
        let frame = Bytes::from(frame);
        Self { encoded: frame.slice(FRAME_HEADER_LEN..), frame, next_page_token }
    }
}

/// What an answer is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of `request` answered with `profile` on `date`, at catalog
    /// version `catalog` and config version `config`.
    pub fn new(
        request: &pb::FindRepairCenterRequest,
        profile: &str,
        date: chrono::NaiveDate,
        catalog: u64,
        config: u64,
    ) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"find/v1\0");
        hash.update(catalog.to_be_bytes());
        hash.update(config.to_be_bytes());
        hash.update(chrono::Datelike::num_days_from_ce(&date).to_be_bytes());
        hash.update(profile.as_bytes());
        hash.update(b"\0");
        // prost encodes a message the same way every time.
        hash.update(request.encode_to_vec());
        Self(hash.finalize().into())
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Per-entry lifetimes with jitter.
struct Jittered {
    ttl: Duration,
    jitter: f64,
}

impl moka::Expiry<CacheKey, Arc<FindAnswer>> for Jittered {
    fn expire_after_create(&self, _: &CacheKey, _: &Arc<FindAnswer>, _: Instant) -> Option<Duration> {
        Some(jittered(self.ttl, self.jitter))
    }
}

fn jittered(ttl: Duration, jitter: f64) -> Duration {
    ttl.mul_f64(1.0 + jitter * (fastrand::f64() * 2.0 - 1.0))
}

/// The Redis tier: one multiplexed connection, made lazily, dropped on error.
struct SharedTier {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// Skips calls for a second after a failure: no doubling, a cache is
    /// worth probing again soon.
    breaker: Breaker,
    /// Counts failed calls (the service's Redis error count).
    errors: prometheus::IntCounter,
}

impl SharedTier {
    fn new(store: &StoreConfig, timeout: Duration, errors: prometheus::IntCounter) -> Result<Self, String> {
        Ok(Self {
            errors,
            client: crate::store::redis::client(store).map_err(|e| e.to_string())?,
            prefix: format!("{}:cache:", store.key_prefix),
            timeout,
            connection: tokio::sync::Mutex::new(None),
            breaker: Breaker::new(Duration::from_secs(1), Duration::from_secs(1)),
        })
    }

    fn failed(&self) {
        self.errors.inc();
        self.breaker.failed();
    }

    async fn connection(&self) -> Option<MultiplexedConnection> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let connecting = self.client.get_multiplexed_async_connection();
            match tokio::time::timeout(self.timeout * 4, connecting).await {
                Ok(Ok(connection)) => *slot = Some(connection),
                _ => {
                    self.failed();
                    return None;
                }
            }
        }
        slot.clone()
    }

    /// Runs `call` under the timeout; `None` (and the breaker opened) when
    /// Redis did not answer well in time.
    async fn call<T>(&self, call: impl AsyncFnOnce(MultiplexedConnection) -> redis::RedisResult<T>) -> Option<T> {
        if self.breaker.is_open() {
            return None;
        }
        let connection = self.connection().await?;
        match tokio::time::timeout(self.timeout, call(connection)).await {
            Ok(Ok(value)) => {
                self.breaker.succeeded();
                Some(value)
            }
            _ => {
                *self.connection.lock().await = None;
                self.failed();
                None
            }
        }
    }

    async fn get(&self, key: &CacheKey) -> Option<FindAnswer> {
        let name = format!("{}{}", self.prefix, key.hex());
        let bytes: Option<Vec<u8>> = self.call(async |mut c| c.get(name).await).await.flatten();
        bytes.and_then(|bytes| FindAnswer::from_encoded(bytes.into()).ok())
    }

    async fn set(&self, key: &CacheKey, answer: &FindAnswer, ttl: Duration) {
        let name = format!("{}{}", self.prefix, key.hex());
        let bytes = answer.encoded.as_ref();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: Option<()> = self.call(async |mut c| c.pset_ex(name, bytes, ttl_ms).await).await;
    }
}

/// The result cache.
pub struct FindCache {
    local: moka::future::Cache<CacheKey, Arc<FindAnswer>>,
    shared: Option<SharedTier>,
    ttl: Duration,
    jitter: f64,
}

impl std::fmt::Debug for FindCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindCache").field("shared", &self.shared.is_some()).finish_non_exhaustive()
    }
}

impl FindCache {
    /// The tiers `config` asks for; `None` when caching is off.
    /// Failed Redis calls count into `errors`.
    pub fn new(config: &CacheConfig, store: &StoreConfig, errors: &prometheus::IntCounter) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let ttl = Duration::from_millis(config.ttl_ms);
        let local = moka::future::Cache::builder()
            .max_capacity(config.local_max_bytes)
            .weigher(|_, answer: &Arc<FindAnswer>| u32::try_from(answer.frame.len()).unwrap_or(u32::MAX))
            .expire_after(Jittered { ttl, jitter: config.ttl_jitter })
            .build();
        let shared = (config.redis && store.kind == StoreKind::Redis)
            .then(|| SharedTier::new(store, Duration::from_millis(config.redis_timeout_ms), errors.clone()))
            .and_then(|tier| tier.map_err(|error| tracing::warn!(%error, "no Redis cache tier")).ok());
        Some(Self { local, shared, ttl, jitter: config.ttl_jitter })
    }

    /// The answer cached under `key` in either tier, if any; computes nothing.
    pub async fn get(&self, key: &CacheKey, metrics: &Metrics) -> Option<Arc<FindAnswer>> {
        if let Some(hit) = self.local_hit(key, metrics).await {
            return Some(hit);
        }
        let shared = self.shared.as_ref()?;
        // Boxed: see `get_or_compute`.
        let hit = Arc::new(Box::pin(shared.get(key)).await?);
        metrics.cache_hits.with_label_values(&["redis"]).inc();
        self.local.insert(key.clone(), Arc::clone(&hit)).await;
        Some(hit)
    }

    /// The answer in the local tier under `key`, counted as a local hit.
    async fn local_hit(&self, key: &CacheKey, metrics: &Metrics) -> Option<Arc<FindAnswer>> {
        let hit = self.local.get(key).await?;
        metrics.cache_hits.with_label_values(&["local"]).inc();
        Some(hit)
    }

    /// Caches `answer` under `key` in every tier.
    pub async fn insert(&self, key: CacheKey, answer: Arc<FindAnswer>) {
        if let Some(shared) = &self.shared {
            shared.set(&key, &answer, jittered(self.ttl, self.jitter)).await;
        }
        self.local.insert(key, answer).await;
    }

    /// The cached answer for `key`, or `compute`'s, cached. Concurrent calls
    /// for one key wait for one computation.
    pub async fn get_or_compute(
        &self,
        key: CacheKey,
        metrics: &Metrics,
        compute: impl FnOnce() -> Result<FindAnswer, ServiceError>,
    ) -> Result<Arc<FindAnswer>, ServiceError> {
        if let Some(hit) = self.local_hit(&key, metrics).await {
            return Ok(hit);
        }
        // Boxed, so that only a miss pays for it: moka's single flight and
        // the Redis calls make a future of some 7 KB, which every caller's
        // future would otherwise hold and the gRPC stub copy into its box
        // (8% of a cached Find's instructions).
        Box::pin(self.compute_once(key, metrics, compute)).await
    }

    /// [`Self::get_or_compute`] past a miss in the local tier.
    async fn compute_once(
        &self,
        key: CacheKey,
        metrics: &Metrics,
        compute: impl FnOnce() -> Result<FindAnswer, ServiceError>,
    ) -> Result<Arc<FindAnswer>, ServiceError> {
        let mut missed = false;
        let outcome = self
            .local
            .try_get_with(key.clone(), async {
                missed = true;
                metrics.cache_misses.with_label_values(&["local"]).inc();
                if let Some(shared) = &self.shared {
                    if let Some(answer) = shared.get(&key).await {
                        metrics.cache_hits.with_label_values(&["redis"]).inc();
                        return Ok(Arc::new(answer));
                    }
                    metrics.cache_misses.with_label_values(&["redis"]).inc();
                }
                let answer = compute()?;
                metrics.find_computed.inc();
                if let Some(shared) = &self.shared {
                    shared.set(&key, &answer, jittered(self.ttl, self.jitter)).await;
                }
                Ok(Arc::new(answer))
            })
            .await;
        if !missed {
            metrics.cache_hits.with_label_values(&["local"]).inc();
        }
        // Errors are not cached; each waiter of a failed computation gets it.
        outcome.map_err(|error: Arc<ServiceError>| {
            Arc::try_unwrap(error).unwrap_or_else(|shared| shared.as_ref().duplicate())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_input_and_agree_otherwise() {
        let request = pb::FindRepairCenterRequest { page_size: 3, ..Default::default() };
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let key = CacheKey::new(&request, "default", date, 7, 1);
        assert_eq!(key, CacheKey::new(&request.clone(), "default", date, 7, 1));
        assert_ne!(key, CacheKey::new(&request, "default", date, 8, 1), "a write changes the key");
        assert_ne!(key, CacheKey::new(&request, "default", date, 7, 2), "a reload changes the key");
        assert_ne!(key, CacheKey::new(&request, "nearest", date, 7, 1));
        assert_ne!(key, CacheKey::new(&request, "default", date.succ_opt().unwrap(), 7, 1));
        let other = pb::FindRepairCenterRequest { page_size: 4, ..Default::default() };
        assert_ne!(key, CacheKey::new(&other, "default", date, 7, 1));
        // The answer's text is in the request's language (canonicalized by
        // the app first, so `zh` and `zh-CN` share an entry).
        let chinese = pb::FindRepairCenterRequest { language_code: "zh-Hans".into(), ..request.clone() };
        assert_ne!(key, CacheKey::new(&chinese, "default", date, 7, 1), "another language, another answer");
    }

    #[test]
    fn an_answer_read_back_keeps_its_bytes_and_next_page_token() {
        let response = pb::FindRepairCenterResponse {
            next_page_token: "page-2".into(),
            guidance: vec!["call the hotline".into()],
            total_size: 12,
            ..Default::default()
        };
        let answer = FindAnswer::from_encoded(response.encode_to_vec().into()).unwrap();
        let read_back = FindAnswer::from_encoded(answer.encoded.clone()).unwrap();
        assert_eq!(read_back, answer);
        assert_eq!(read_back.next_page_token, "page-2");
        assert_eq!(pb::FindRepairCenterResponse::decode(read_back.encoded.clone()).unwrap(), response);
        // The frame sent is the header, then those same bytes.
        assert_eq!(read_back.frame[..FRAME_HEADER_LEN], frame_header(read_back.encoded.len()));
        assert_eq!(read_back.frame.slice(FRAME_HEADER_LEN..), read_back.encoded);
    }

    #[test]
    fn a_center_is_encoded_once_and_a_changed_center_anew() {
        let encodings = CenterEncodings::new(1 << 20);
        let mut center = repairmatch_datagen::generate(1, 3).centers.remove(0);
        let first = Arc::new(center.clone());
        let encoded = encodings.get(&first);
        assert_eq!(encoded, convert::center_to_proto(&first).encode_to_vec());
        assert_eq!(encodings.get(&first).as_ptr(), encoded.as_ptr(), "the same bytes, not encoded again");
        center.name = "Renamed".into();
        let changed = Arc::new(center);
        assert_eq!(encodings.get(&changed), convert::center_to_proto(&changed).encode_to_vec());
        assert_eq!(encodings.get(&first), encoded, "the first version is still its own");
        // A dropped record's fields are freed; its entry keeps only the block.
        let weak = Arc::downgrade(&first);
        drop(first);
        assert_eq!(weak.strong_count(), 0);
    }

    #[test]
    fn lifetimes_spread_within_the_jitter() {
        let ttl = Duration::from_secs(60);
        for _ in 0..1_000 {
            let lifetime = jittered(ttl, 0.1);
            assert!(lifetime >= Duration::from_secs(54) && lifetime <= Duration::from_secs(66), "{lifetime:?}");
        }
    }
}
