//! Per-tenant rate limits (`tenants.NAME.rate_limit`), shared by every
//! replica.
//!
//! The algorithm is GCRA (the generic cell rate algorithm): a tenant's whole
//! state is one number, its *theoretical arrival time* (TAT), the time at
//! which it would be back to idle had every allowed call been spaced exactly
//! `1 / per_second` apart. A call is allowed when, counted in, the TAT would
//! run no further ahead of now than the *burst window* (`burst / per_second`);
//! a refused call changes nothing, so a caller retrying too early does not
//! push its own next slot further away. [`Gcra`] is that arithmetic, pure.
//!
//! Where the TAT lives:
//!
//! - with the Redis store, in Redis (`P:ratelimit:TENANT` under the store's
//!   `key_prefix`, in ms, expiring after the burst window), read and written
//!   by one Lua script ([`GCRA_SCRIPT`]) that takes "now" from Redis's own
//!   `TIME`, so replicas share one limit and their clocks do not matter;
//! - with the embedded store (one process), or while Redis is down, slow or
//!   failing, in this process ([`LocalLimiter`]). A replica on its own
//!   enforces its share of the limit, `per_second / limits.replicas_assumed`
//!   (the burst likewise), so an outage never turns limits off and the fleet
//!   as a whole stays near the limit.
//!
//! The check runs before the request body is read. Redis is called through
//! the blocking client on the blocking pool, at most [`SHARED_CONNECTIONS`]
//! calls at a time, each bounded by `store.command_timeout_ms`; past that the
//! local share decides. A circuit breaker skips Redis for a moment after it
//! failed, so an outage costs one timeout, not one per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Connection;

use crate::config::{Config, RateLimitConfig, StoreConfig, StoreKind};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::redis::{Breaker, client, unavailable};

/// Slack for floating-point sums, ms: `burst` calls at one instant add
/// `interval_ms` up `burst` times, which may land a hair past the window.
const EPSILON_MS: f64 = 1e-6;

/// How many limit checks one replica may have in flight on Redis at once.
/// Each holds a blocking-pool thread and a connection; more wait (within the
/// timeout) rather than pile threads onto a slow server.
pub const SHARED_CONNECTIONS: usize = 4;

/// A limit as GCRA parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gcra {
    /// Time between calls at the steady rate, ms: `1000 / per_second`.
    pub interval_ms: f64,
    /// How far the TAT may run ahead of now, ms: `burst × interval_ms`. Also
    /// how long after its last call a tenant's state still matters.
    pub window_ms: f64,
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The call may go ahead (and was counted).
    Allowed,
    /// Over the limit; the next call would be allowed this much later.
    Refused {
        /// From now until the next call would be allowed, rounded up to a
        /// whole ms.
        retry_after: Duration,
    },
}

impl Gcra {
    /// The GCRA parameters of `limit` (valid: positive rate, burst ≥ 1).
    pub fn new(limit: &RateLimitConfig) -> Self {
        let interval_ms = 1_000.0 / limit.per_second;
        Self { interval_ms, window_ms: interval_ms * f64::from(limit.burst) }
    }

    /// One of `replicas` equal shares: `per_second / replicas` and
    /// `burst / replicas`, at least one call. The window stays the same,
    /// so the shares add up to the whole limit.
    pub fn share(self, replicas: u32) -> Self {
        let interval_ms = self.interval_ms * f64::from(replicas.max(1));
        Self { interval_ms, window_ms: self.window_ms.max(interval_ms) }
    }

    /// Decides a call at `now_ms` for a tenant whose TAT is `tat_ms` (none:
    /// no call within the window). Returns the verdict and the TAT to keep:
    /// advanced when allowed, unchanged when refused. [`GCRA_SCRIPT`] is
    /// the same arithmetic in Lua.
    pub fn decide(&self, tat_ms: Option<f64>, now_ms: f64) -> (Verdict, Option<f64>) {
        let tat = tat_ms.map_or(now_ms, |tat| tat.max(now_ms));
        let ahead = tat + self.interval_ms - now_ms;
        if ahead > self.window_ms + EPSILON_MS {
            // The tolerance that admits a call also shortens the wait, or a
            // TAT a hair past the window would ask for one ms too many.
            let retry_after = Duration::from_millis((ahead - self.window_ms - EPSILON_MS).ceil() as u64);
            return (Verdict::Refused { retry_after }, tat_ms);
        }
        (Verdict::Allowed, Some(tat + self.interval_ms))
    }
}

/// The limit a tenant's calls are checked against: the whole of it, shared
/// through Redis, and this replica's share for when it decides alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// The tenant's whole limit.
    pub whole: Gcra,
    /// This replica's share (the whole limit on the embedded store).
    pub share: Gcra,
}

impl Quota {
    /// The quota of tenant `name` under `config`; none when it has no
    /// limit. Anonymous callers (a demo setting) have none either: limit
    /// them at the ingress if a demo is ever exposed.
    pub fn of(config: &Config, name: &str) -> Option<Self> {
        let limit = config.tenants.get(name)?.rate_limit?;
        let whole = Gcra::new(&limit);
        // One process holds the whole limit on the embedded store
        // (validation keeps replicas_assumed at 1 there).
        let replicas = match config.store.kind {
            StoreKind::Embedded => 1,
            StoreKind::Redis => config.limits.replicas_assumed,
        };
        Some(Self { whole, share: whole.share(replicas) })
    }
}

/// The GCRA step, atomic in Redis. KEYS[1]: the tenant's key; ARGV[1]: the
/// interval, ARGV[2]: the window, both ms. Returns `{1, 0}` when allowed,
/// `{0, retry_after_ms}` when refused.
pub const GCRA_SCRIPT: &str = r"
-- Before Redis 5 a script that writes after TIME must say it replicates
-- its effects; since then that is the only way and this is a no-op.
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = now
local stored = tonumber(redis.call('GET', KEYS[1]) or '')
if stored and stored > now then tat = stored end
local ahead = tat + interval - now
if ahead > window + 1e-6 then
  return {0, math.ceil(ahead - window - 1e-6)}
end
-- %.17g keeps every bit of the double, as the Rust side computes.
redis.call('SET', KEYS[1], string.format('%.17g', tat + interval), 'PX', math.ceil(window))
return {1, 0}
";

/// This process's own limiter: each tenant's TAT in memory, on a monotonic
/// clock. Holds one entry per limited tenant that called (tenants come from
/// the config, so this stays small).
#[derive(Debug)]
pub struct LocalLimiter {
    epoch: Instant,
    tats: Mutex<HashMap<String, f64>>,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self { epoch: Instant::now(), tats: Mutex::new(HashMap::new()) }
    }
}

impl LocalLimiter {
    /// Decides a call by `tenant` now under `gcra`.
    pub fn check(&self, tenant: &str, gcra: Gcra) -> Verdict {
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        // The clock is read under the lock: read before it, a call that
        // waited for the lock would be decided at a time earlier than a
        // call already counted, and be told to wait longer than it must.
        let now_ms = self.epoch.elapsed().as_secs_f64() * 1_000.0;
        let (verdict, tat) = gcra.decide(tats.get(tenant).copied(), now_ms);
        if let (Verdict::Allowed, Some(tat)) = (verdict, tat) {
            tats.insert(tenant.to_owned(), tat);
        }
        verdict
    }
}

/// The limiter every replica shares: [`GCRA_SCRIPT`] on the store's Redis,
/// on connections of its own (a slow catalog load never delays a check).
pub struct RedisLimiter {
    client: redis::Client,
    key_prefix: String,
    timeout: Duration,
    script: redis::Script,
    /// Connections between calls; at most [`SHARED_CONNECTIONS`] exist, as
    /// each is taken under a permit.
    idle: Mutex<Vec<Connection>>,
    permits: Arc<tokio::sync::Semaphore>,
    breaker: Breaker,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter on the Redis server `config` names (its `url`,
    /// `password_env`, `key_prefix` and `command_timeout_ms`). Connects lazily.
    pub fn new(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(Self {
            client: client(config)?,
            key_prefix: config.key_prefix.clone(),
            timeout: Duration::from_millis(config.command_timeout_ms),
            script: redis::Script::new(GCRA_SCRIPT),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(SHARED_CONNECTIONS)),
            breaker: Breaker::default(),
        })
    }

    /// The Redis key holding `tenant`'s TAT.
    pub fn key(&self, tenant: &str) -> String {
        format!("{}:ratelimit:{tenant}", self.key_prefix)
    }

    /// One GCRA step in Redis. Blocks for up to about twice the command
    /// timeout (connect, then the reply): call it off the async threads.
    pub fn check_blocking(&self, tenant: &str, gcra: Gcra) -> Result<Verdict, StoreError> {
        self.breaker.check()?;
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let outcome = (|| {
            let mut connection = match pooled {
                Some(connection) => connection,
                None => {
                    let connection = self.client.get_connection_with_timeout(self.timeout)?;
                    connection.set_write_timeout(Some(self.timeout))?;
                    connection.set_read_timeout(Some(self.timeout))?;
                    connection
                }
            };
            let (allowed, retry_after_ms): (i64, i64) =
                self.script.key(self.key(tenant)).arg(gcra.interval_ms).arg(gcra.window_ms).invoke(&mut connection)?;
            Ok((connection, allowed, retry_after_ms))
        })();
        match outcome {
            Ok((connection, allowed, retry_after_ms)) => {
                self.breaker.succeeded();
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
                Ok(if allowed == 1 {
                    Verdict::Allowed
                } else {
                    Verdict::Refused { retry_after: Duration::from_millis(retry_after_ms.max(1) as u64) }
                })
            }
            Err(error) => {
                // Whatever went wrong (down, slow, a script error), checks
                // go local for a moment rather than retry on every call; the
                // breaker also bounds this log to one line per pause.
                self.breaker.failed();
                tracing::warn!(error = %error, "rate limits: redis failed; each replica enforces its share for now");
                Err(if unavailable(&error) {
                    StoreError::Unavailable(error.to_string())
                } else {
                    StoreError::Redis(error)
                })
            }
        }
    }
}

/// The limiter a server checks calls with: shared through Redis when the
/// store is Redis, local otherwise, and local whenever Redis fails.
#[derive(Debug)]
pub struct Limiter {
    shared: Option<Arc<RedisLimiter>>,
    local: LocalLimiter,
    metrics: Metrics,
}

impl Limiter {
    /// The limiter `config`'s store calls for, counting into `metrics`.
    pub fn new(config: &Config, metrics: Metrics) -> Result<Self, StoreError> {
        let shared = match config.store.kind {
            StoreKind::Redis => Some(Arc::new(RedisLimiter::new(&config.store)?)),
            StoreKind::Embedded => None,
        };
        Ok(Self { shared, local: LocalLimiter::default(), metrics })
    }

    /// Decides a call by `tenant` under `quota`, and counts a refusal.
    /// Never fails: when Redis cannot answer in time, this replica's share
    /// decides (and counts as a fallback).
    pub async fn check(&self, tenant: &str, quota: Quota) -> Verdict {
        let verdict = match &self.shared {
            None => self.local.check(tenant, quota.share),
            Some(shared) => match self.check_shared(shared, tenant, quota.whole).await {
                Some(verdict) => verdict,
                None => {
                    self.metrics.rate_limit_fallbacks.inc();
                    self.local.check(tenant, quota.share)
                }
            },
        };
        if let Verdict::Refused { .. } = verdict {
            self.metrics.rate_limited.with_label_values(&[tenant]).inc();
        }
        verdict
    }

    /// The verdict of Redis, or none when it did not give one in time.
    async fn check_shared(&self, shared: &Arc<RedisLimiter>, tenant: &str, gcra: Gcra) -> Option<Verdict> {
        // While the breaker is open, do not even take a thread.
        shared.breaker.check().ok()?;
        let asked = async {
            let permit = Arc::clone(&shared.permits).acquire_owned().await.ok()?;
            let (shared, tenant) = (Arc::clone(shared), tenant.to_owned());
            // A check cut short by the timeout below runs on to its own
            // socket timeout, holding its permit: slow Redis cannot pile up
            // more than SHARED_CONNECTIONS blocked threads.
            let checked = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                shared.check_blocking(&tenant, gcra)
            });
            checked.await.ok()?.ok()
        };
        tokio::time::timeout(shared.timeout, asked).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: f64, burst: u32) -> Gcra {
        Gcra::new(&RateLimitConfig { per_second, burst })
    }

    /// Runs calls at the given times (ms) through `gcra`, keeping the TAT
    /// as a store would: the verdict of each.
    fn run(gcra: Gcra, times_ms: impl IntoIterator<Item = f64>) -> Vec<Verdict> {
        let mut tat = None;
        times_ms
            .into_iter()
            .map(|now| {
                let (verdict, kept) = gcra.decide(tat, now);
                tat = kept;
                verdict
            })
            .collect()
    }

    fn allowed(verdicts: &[Verdict]) -> usize {
        verdicts.iter().filter(|v| **v == Verdict::Allowed).count()
    }

    #[test]
    fn a_burst_is_allowed_at_once_and_no_more() {
        let gcra = limit(50.0, 100);
        let verdicts = run(gcra, std::iter::repeat_n(1_000.0, 101));
        assert_eq!(allowed(&verdicts[..100]), 100, "the whole burst at one instant");
        // The 101st waits for one interval (20 ms) to drain.
        assert_eq!(verdicts[100], Verdict::Refused { retry_after: Duration::from_millis(20) });
    }

    #[test]
    fn bursts_at_fractional_intervals_are_not_cut_short_by_rounding() {
        // 1000 / 3 ms does not add up exactly in binary.
        let gcra = limit(3.0, 7);
        assert_eq!(allowed(&run(gcra, std::iter::repeat_n(5.0, 7))), 7);
        assert_eq!(allowed(&run(gcra, std::iter::repeat_n(5.0, 8))), 7);
    }

    #[test]
    fn the_steady_rate_is_the_limit_whatever_the_demand() {
        // 10 calls a second with a burst of 5, called 100 times a second for
        // 10 s: the burst, then one call per 100 ms.
        let gcra = limit(10.0, 5);
        let verdicts = run(gcra, (0..1_000).map(|i| f64::from(i) * 10.0));
        assert_eq!(allowed(&verdicts), 5 + 99, "burst + rate × 9.99 s");
        // Called at exactly the rate, nothing is refused.
        assert_eq!(allowed(&run(gcra, (0..100).map(|i| f64::from(i) * 100.0))), 100);
    }

    #[test]
    fn the_retry_delay_is_when_the_next_call_would_be_allowed() {
        let gcra = limit(4.0, 2); // 250 ms apart, two at once
        let (first, tat) = gcra.decide(None, 0.0);
        let (second, tat) = gcra.decide(tat, 10.0);
        assert_eq!((first, second), (Verdict::Allowed, Verdict::Allowed));
        let (refused, unchanged) = gcra.decide(tat, 10.0);
        // TAT is 500; a third call would take it to 750, 250 past the window
        // of 500 ahead of now (10): allowed from 250.
        assert_eq!(refused, Verdict::Refused { retry_after: Duration::from_millis(240) });
        assert_eq!(unchanged, tat, "a refusal changes nothing");
        assert!(matches!(gcra.decide(tat, 249.0).0, Verdict::Refused { .. }), "a ms early");
        assert_eq!(gcra.decide(tat, 250.0).0, Verdict::Allowed, "on time");
    }

    #[test]
    fn a_tat_within_the_tolerance_past_the_window_waits_one_interval_not_a_ms_more() {
        let gcra = limit(10.0, 5); // 100 ms apart, a window of 500
        // A TAT just inside the tolerance is admitted...
        let (admitted, tat) = gcra.decide(Some(400.000_000_5), 0.0);
        assert_eq!(admitted, Verdict::Allowed);
        // ...and the next call waits exactly one interval, not 101 ms.
        assert_eq!(gcra.decide(tat, 0.0).0, Verdict::Refused { retry_after: Duration::from_millis(100) });
        assert_eq!(gcra.decide(tat, 100.0).0, Verdict::Allowed);
    }

    #[test]
    fn refused_retries_do_not_push_the_next_slot_away() {
        let gcra = limit(1.0, 1);
        let verdicts = run(gcra, (0..=1_000).map(f64::from));
        assert_eq!(allowed(&verdicts), 2, "at 0 and at 1000, however often refused between");
    }

    #[test]
    fn after_a_quiet_window_the_whole_burst_is_back() {
        let gcra = limit(10.0, 5);
        let times = std::iter::repeat_n(0.0, 5).chain(std::iter::repeat_n(gcra.window_ms, 5));
        assert_eq!(allowed(&run(gcra, times)), 10);
    }

    #[test]
    fn shares_add_up_to_the_whole_limit() {
        let whole = limit(20.0, 9);
        let share = whole.share(3);
        assert_eq!(share, Gcra { interval_ms: 150.0, window_ms: 450.0 });
        assert_eq!(allowed(&run(share, std::iter::repeat_n(0.0, 9))), 3, "a third of the burst");
        assert_eq!(whole.share(1), whole);
        assert_eq!(whole.share(0), whole, "no replica count is one replica");
        // A burst smaller than the replica count still lets one call through.
        let tiny = limit(1.0, 1).share(4);
        assert_eq!(allowed(&run(tiny, [0.0, 1.0])), 1);
        assert_eq!(tiny.window_ms, tiny.interval_ms);
    }

    #[test]
    fn the_local_limiter_keeps_each_tenant_apart() {
        let local = LocalLimiter::default();
        // One call a minute: the test's own pace cannot earn another.
        let gcra = limit(1.0 / 60.0, 3);
        let verdicts: Vec<Verdict> = (0..4).map(|_| local.check("a", gcra)).collect();
        assert_eq!(allowed(&verdicts), 3);
        assert!(matches!(verdicts[3], Verdict::Refused { retry_after } if retry_after > Duration::from_secs(50)));
        assert_eq!(local.check("b", gcra), Verdict::Allowed);
    }

    #[test]
    fn callers_racing_for_the_local_limiter_are_never_told_to_wait_past_the_next_slot() {
        // A thousand calls a second, one at a time: however the threads
        // interleave, the next slot is at most one interval (1 ms) away.
        let local = LocalLimiter::default();
        let gcra = limit(1_000.0, 1);
        let longest = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..20_000)
                            .filter_map(|_| match local.check("a", gcra) {
                                Verdict::Refused { retry_after } => Some(retry_after),
                                Verdict::Allowed => None,
                            })
                            .max()
                    })
                })
                .collect();
            racers.into_iter().filter_map(|racer| racer.join().unwrap()).max()
        });
        assert_eq!(longest, Some(Duration::from_millis(1)));
    }

    fn config_with_limit(kind: StoreKind, replicas: u32) -> Config {
        let mut config = Config::default();
        config.store.kind = kind;
        config.limits.replicas_assumed = replicas;
        config.tenants.insert(
            "icbc".into(),
            crate::config::TenantConfig {
                rate_limit: Some(RateLimitConfig { per_second: 1.0 / 60.0, burst: 4 }),
                ..Default::default()
            },
        );
        config.tenants.insert("free".into(), crate::config::TenantConfig::default());
        config
    }

    #[test]
    fn quotas_come_from_the_tenant_and_the_replica_count() {
        let config = config_with_limit(StoreKind::Redis, 2);
        let quota = Quota::of(&config, "icbc").unwrap();
        assert_eq!(quota.share, quota.whole.share(2));
        assert_eq!(Quota::of(&config, "free"), None, "no limit configured");
        assert_eq!(Quota::of(&config, "ghost"), None);
        let embedded = config_with_limit(StoreKind::Embedded, 2);
        let quota = Quota::of(&embedded, "icbc").unwrap();
        assert_eq!(quota.share, quota.whole, "one process holds the whole limit");
    }

    #[tokio::test]
    async fn the_embedded_store_limits_in_process_and_counts_refusals() {
        let config = config_with_limit(StoreKind::Embedded, 1);
        let metrics = Metrics::default();
        let limiter = Limiter::new(&config, metrics.clone()).unwrap();
        let quota = Quota::of(&config, "icbc").unwrap();
        let mut verdicts = Vec::new();
        for _ in 0..6 {
            verdicts.push(limiter.check("icbc", quota).await);
        }
        assert_eq!(allowed(&verdicts), 4);
        assert_eq!(metrics.rate_limited.with_label_values(&["icbc"]).get(), 2);
        assert_eq!(metrics.rate_limit_fallbacks.get(), 0, "local is no fallback here");
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_share_never_to_no_limit() {
        let mut config = config_with_limit(StoreKind::Redis, 2);
        // A port nobody listens on: connecting is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        config.store.url = format!("redis://127.0.0.1:{port}/0");
        config.store.command_timeout_ms = 200;
        let metrics = Metrics::default();
        let limiter = Limiter::new(&config, metrics.clone()).unwrap();
        let quota = Quota::of(&config, "icbc").unwrap();
        let mut verdicts = Vec::new();
        for _ in 0..6 {
            verdicts.push(limiter.check("icbc", quota).await);
        }
        assert_eq!(allowed(&verdicts), 2, "half the burst of 4, for one of two replicas");
        assert_eq!(metrics.rate_limit_fallbacks.get(), 6);
        assert_eq!(metrics.rate_limited.with_label_values(&["icbc"]).get(), 4);
    }
}
