//! Per-tenant rate limits against real processes: a tenant calling far over
//! its quota through two replicas gets its quota across both (one limit in
//! Redis), a tenant within its quota is never refused, Redis dying leaves
//! each replica enforcing its share (never no limit), and the embedded store
//! limits in its one process. Loads are paced, bounded in time and count, and
//! loopback only; the assertions count calls, they do not time them.

mod support;

use std::time::{Duration, Instant};

use repairmatch::config::{RateLimitConfig, StoreConfig};
use repairmatch::limits::{Gcra, RedisLimiter, Verdict};
use repairmatch_proto::v1::repair_match_service_client::RepairMatchServiceClient;
use support::*;
use tokio::time::MissedTickBehavior;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Tenant "a"'s limit, which the tests call at about ten times.
const A_PER_SECOND: f64 = 20.0;
const A_BURST: u32 = 10;
/// Tenant "b"'s limit, which the tests stay well within.
const B_PER_SECOND: f64 = 20.0;
const B_BURST: u32 = 10;
/// How long each load runs.
const LOAD_FOR: Duration = Duration::from_millis(3_500);

fn tenants() -> String {
    limited_bank("a", A_PER_SECOND, A_BURST) + &limited_bank("b", B_PER_SECOND, B_BURST)
}

/// What a tenant's calls got.
#[derive(Debug, Default)]
struct Tally {
    attempted: usize,
    ok: usize,
    /// RESOURCE_EXHAUSTED with ErrorInfo RATE_LIMITED and a RetryInfo.
    limited: usize,
    /// The longest RetryInfo delay seen.
    longest_retry: Duration,
    /// Anything else: each should not happen.
    unexpected: Vec<String>,
    /// From the first call sent to the last answer.
    elapsed: Duration,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.attempted += other.attempted;
        self.ok += other.ok;
        self.limited += other.limited;
        self.longest_retry = self.longest_retry.max(other.longest_retry);
        self.unexpected.extend(other.unexpected);
    }

    /// OKs relative to what a limit allows over the load: rate × elapsed +
    /// burst, as a signed fraction (+0.05 = 5% over).
    fn deviation(&self, per_second: f64, burst: f64) -> f64 {
        let expected = per_second * self.elapsed.as_secs_f64() + burst;
        self.ok as f64 / expected - 1.0
    }
}

/// Calls Find as `tenant` through each of `finders`, each paced at
/// `per_second_each`, for `LOAD_FOR` (and at most twice the calls that pace
/// allows): what came back.
async fn load(tenant: &str, finders: Vec<RepairMatchServiceClient<Channel>>, per_second_each: f64) -> Tally {
    let started = Instant::now();
    let max_calls = (per_second_each * LOAD_FOR.as_secs_f64() * 2.0) as usize;
    let tasks: Vec<_> = finders
        .into_iter()
        .map(|mut finder| {
            let tenant = tenant.to_owned();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second_each));
                // After a stall, carry on at the pace: no catch-up burst.
                pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
                while started.elapsed() < LOAD_FOR && tally.attempted < max_calls {
                    pace.tick().await;
                    tally.attempted += 1;
                    match finder.find_repair_center(as_tenant(&tenant, find(1))).await {
                        Ok(_) => tally.ok += 1,
                        Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                            let reason = status.get_details_error_info().map(|info| info.reason);
                            let retry = status.get_details_retry_info().and_then(|info| info.retry_delay);
                            match (reason.as_deref(), retry) {
                                (Some("RATE_LIMITED"), Some(delay)) if delay > Duration::ZERO => {
                                    tally.limited += 1;
                                    tally.longest_retry = tally.longest_retry.max(delay);
                                }
                                _ => tally.unexpected.push(format!("{status:?}")),
                            }
                        }
                        Err(status) => tally.unexpected.push(format!("{status:?}")),
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        total.add(task.await.unwrap());
    }
    total.elapsed = started.elapsed();
    total
}

/// Tenant "a" at `a_per_second` and "b" at `b_per_second` (in all), at
/// once, through the same replicas.
async fn a_and_b(replicas: &[&Replica], a_per_second: f64, b_per_second: f64) -> (Tally, Tally) {
    let (mut a_finders, mut b_finders) = (Vec::new(), Vec::new());
    for replica in replicas {
        // Two callers per replica for "a", one for "b".
        a_finders.push(replica.finder().await);
        a_finders.push(replica.finder().await);
        b_finders.push(replica.finder().await);
    }
    let a_each = a_per_second / a_finders.len() as f64;
    let b_each = b_per_second / b_finders.len() as f64;
    tokio::join!(load("a", a_finders, a_each), load("b", b_finders, b_each))
}

/// The value of `name`'s series with these labels, in whatever order the
/// exposition writes them.
fn labelled(scraped: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scraped
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|rest| rest.split_once("} "))
        .find(|(pairs, _)| {
            let pairs: Vec<&str> = pairs.split(',').collect();
            pairs.len() == labels.len()
                && labels.iter().all(|(label, value)| pairs.contains(&format!("{label}=\"{value}\"").as_str()))
        })
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0.0)
}

fn series(metric: &str, tenant: &str) -> String {
    format!("{metric}{{tenant=\"{tenant}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_quota_through_two_replicas_gets_its_quota_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), false);
    let metrics_ports = [free_port(), free_port()];
    let replicas: Vec<Replica> = ["r1", "r2"]
        .iter()
        .zip(metrics_ports)
        .map(|(name, port)| {
            let store = redis_store(&redis.url(), "limits", "");
            // replicas_assumed stays 1: were the replicas limiting on their
            // own, "a" would get twice its quota.
            Replica::start(&config_file_with_metrics(dir.path(), name, &store, &tenants(), Some(port)))
        })
        .collect();

    // "a" at ten times its quota, "b" at half of its own.
    let (a, b) = a_and_b(&replicas.iter().collect::<Vec<_>>(), A_PER_SECOND * 10.0, B_PER_SECOND * 0.5).await;
    let deviation = a.deviation(A_PER_SECOND, f64::from(A_BURST));
    println!(
        "tenant a through 2 replicas: {} OK and {} RESOURCE_EXHAUSTED of {} calls ({:.0}/s) in {:.2} s; \
         quota × elapsed + burst = {:.1}; OK deviation {:+.1}%; longest RetryInfo {:?}",
        a.ok,
        a.limited,
        a.attempted,
        a.attempted as f64 / a.elapsed.as_secs_f64(),
        a.elapsed.as_secs_f64(),
        A_PER_SECOND * a.elapsed.as_secs_f64() + f64::from(A_BURST),
        deviation * 100.0,
        a.longest_retry,
    );
    println!("tenant b: {} OK, {} refused of {} calls", b.ok, b.limited, b.attempted);

    assert!(a.unexpected.is_empty(), "{:#?}", a.unexpected);
    assert!(b.unexpected.is_empty(), "{:#?}", b.unexpected);
    assert!(a.attempted as f64 > 4.0 * a.ok as f64, "the load really was far over the quota: {a:?}");
    assert!(deviation.abs() <= 0.10, "a's OKs within 10% of its quota across both replicas: {a:?}");
    assert_eq!(a.ok + a.limited, a.attempted);
    // Steady state, the next slot is at most one interval away.
    assert!(a.longest_retry <= Duration::from_secs_f64(1.0 / A_PER_SECOND), "{a:?}");
    assert_eq!(b.limited, 0, "b stayed within its quota: {b:?}");
    assert_eq!(b.ok, b.attempted);

    let scraped: Vec<String> = metrics_ports.iter().map(|port| scrape(([127, 0, 0, 1], *port).into())).collect();
    let counted: f64 = scraped.iter().map(|text| metric(text, &series("repairmatch_rate_limited_total", "a"))).sum();
    assert_eq!(counted as usize, a.limited, "every refusal counted, on the replica that made it");
    for text in &scraped {
        assert_eq!(metric(text, &series("repairmatch_rate_limited_total", "b")), 0.0);
        assert_eq!(metric(text, "repairmatch_rate_limit_fallbacks_total"), 0.0, "Redis answered every check");
    }
    // The per-method metrics saw every call, with its code, and timed each.
    let find = [("grpc_service", "repairmatch.v1.RepairMatchService"), ("grpc_method", "FindRepairCenter")];
    let calls = |code: &str| -> f64 {
        let labels = [find[0], find[1], ("grpc_code", code)];
        scraped.iter().map(|text| labelled(text, "grpc_server_handled_total", &labels)).sum()
    };
    assert_eq!(calls("OK") as usize, a.ok + b.ok);
    assert_eq!(calls("RESOURCE_EXHAUSTED") as usize, a.limited);
    let timed: f64 = scraped.iter().map(|text| labelled(text, "grpc_server_handling_seconds_count", &find)).sum();
    assert_eq!(timed as usize, a.attempted + b.attempted);
    // One key per limited tenant under the store's prefix.
    let mut connection = redis.connection().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("limits:ratelimit:*").query(&mut connection).unwrap();
    keys.sort();
    assert_eq!(keys, ["limits:ratelimit:a", "limits:ratelimit:b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_each_replica_enforces_its_share_never_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(dir.path(), false);
    let metrics_ports = [free_port(), free_port()];
    let replicas: Vec<Replica> = ["r1", "r2"]
        .iter()
        .zip(metrics_ports)
        .map(|(name, port)| {
            let store = redis_store(&redis.url(), "outage", "");
            let tables = format!("[limits]\nreplicas_assumed = 2\n\n{}", tenants());
            Replica::start(&config_file_with_metrics(dir.path(), name, &store, &tables, Some(port)))
        })
        .collect();
    // Both limits start in Redis: one call each, through each replica.
    for replica in &replicas {
        let mut finder = replica.finder().await;
        for tenant in ["a", "b"] {
            finder.find_repair_center(as_tenant(tenant, find(1))).await.unwrap();
        }
    }

    redis.kill();
    // Each replica loaded on its own, so its own share shows: "a" at ten
    // times its share, "b" at half of its share.
    let (share_per_second, share_burst) = (A_PER_SECOND / 2.0, f64::from(A_BURST) / 2.0);
    let (a_load, b_load) = (share_per_second * 10.0, B_PER_SECOND / 2.0 * 0.5);
    let (first, second) = ([&replicas[0]], [&replicas[1]]);
    let (r1, r2) = tokio::join!(a_and_b(&first, a_load, b_load), a_and_b(&second, a_load, b_load));
    for (name, (a, b)) in [("r1", &r1), ("r2", &r2)] {
        let deviation = a.deviation(share_per_second, share_burst);
        println!(
            "Redis down, tenant a through {name} alone: {} OK and {} RESOURCE_EXHAUSTED of {} calls in {:.2} s; \
             share × elapsed + share of burst = {:.1}; OK deviation {:+.1}%; tenant b: {} OK, {} refused",
            a.ok,
            a.limited,
            a.attempted,
            a.elapsed.as_secs_f64(),
            share_per_second * a.elapsed.as_secs_f64() + share_burst,
            deviation * 100.0,
            b.ok,
            b.limited,
        );
        assert!(a.unexpected.is_empty(), "{:#?}", a.unexpected);
        assert!(b.unexpected.is_empty(), "{:#?}", b.unexpected);
        assert!(a.attempted as f64 > 4.0 * a.ok as f64, "the load really was far over the share: {a:?}");
        assert!(deviation.abs() <= 0.15, "a's OKs through {name} near its share, not unlimited: {a:?}");
        assert!(a.longest_retry <= Duration::from_secs_f64(1.0 / share_per_second), "{a:?}");
        assert_eq!(b.limited, 0, "b within its share through {name}: {b:?}");
    }
    let together = r1.0.ok + r2.0.ok;
    let elapsed = r1.0.elapsed.max(r2.0.elapsed).as_secs_f64();
    println!(
        "Redis down, both replicas together: {together} OK; the whole quota × elapsed + burst = {:.1}",
        A_PER_SECOND * elapsed + f64::from(A_BURST)
    );

    for port in metrics_ports {
        let text = scrape(([127, 0, 0, 1], port).into());
        let fallbacks = metric(&text, "repairmatch_rate_limit_fallbacks_total");
        assert!(fallbacks > 0.0, "checks fell back to the local share: {fallbacks}");
        assert!(metric(&text, &series("repairmatch_rate_limited_total", "a")) > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_limits_in_its_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let config =
        config_file_with_metrics(dir.path(), "solo", &embedded_store(dir.path()), &tenants(), Some(metrics_port));
    let replica = Replica::start(&config);

    let (a, b) = a_and_b(&[&replica], A_PER_SECOND * 10.0, B_PER_SECOND * 0.5).await;
    let deviation = a.deviation(A_PER_SECOND, f64::from(A_BURST));
    println!(
        "embedded store, tenant a: {} OK and {} RESOURCE_EXHAUSTED of {} calls in {:.2} s; \
         quota × elapsed + burst = {:.1}; OK deviation {:+.1}%; tenant b: {} OK, {} refused",
        a.ok,
        a.limited,
        a.attempted,
        a.elapsed.as_secs_f64(),
        A_PER_SECOND * a.elapsed.as_secs_f64() + f64::from(A_BURST),
        deviation * 100.0,
        b.ok,
        b.limited,
    );
    assert!(a.unexpected.is_empty(), "{:#?}", a.unexpected);
    assert!(b.unexpected.is_empty(), "{:#?}", b.unexpected);
    assert!(a.attempted as f64 > 4.0 * a.ok as f64, "the load really was far over the quota: {a:?}");
    assert!(deviation.abs() <= 0.10, "a's OKs within 10% of its quota: {a:?}");
    assert_eq!(b.limited, 0, "{b:?}");

    let text = scrape(([127, 0, 0, 1], metrics_port).into());
    assert_eq!(metric(&text, &series("repairmatch_rate_limited_total", "a")) as usize, a.limited);
    assert_eq!(metric(&text, "repairmatch_rate_limit_fallbacks_total"), 0.0, "in-process is no fallback here");
}

#[test]
fn the_shared_limit_is_one_key_per_tenant_under_the_prefix_and_survives_a_script_flush() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), false);
    let store = StoreConfig { url: redis.url(), key_prefix: "P".into(), ..StoreConfig::default() };
    let limiter = RedisLimiter::new(&store).unwrap();
    // One call every 100 s: nothing the test does can earn another.
    let gcra = Gcra::new(&RateLimitConfig { per_second: 0.01, burst: 3 });
    let verdicts: Vec<Verdict> = (0..4).map(|_| limiter.check_blocking("icbc", gcra).unwrap()).collect();
    assert_eq!(&verdicts[..3], [Verdict::Allowed; 3]);
    let Verdict::Refused { retry_after } = verdicts[3] else { panic!("{verdicts:?}") };
    assert!(retry_after > Duration::from_secs(90) && retry_after <= Duration::from_secs(100), "{retry_after:?}");

    let mut connection = redis.connection().unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL").arg("P:ratelimit:icbc").query(&mut connection).unwrap();
    assert!(ttl_ms > 0 && ttl_ms <= 300_000, "expires within the burst window (300 s): {ttl_ms}");
    let tat_ms: f64 = redis::cmd("GET").arg("P:ratelimit:icbc").query(&mut connection).unwrap();
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(&mut connection).unwrap();
    let now_ms = seconds as f64 * 1_000.0 + micros as f64 / 1_000.0;
    assert!(tat_ms > now_ms + 290_000.0 && tat_ms <= now_ms + 300_000.0, "three intervals ahead of Redis's now");

    // A restarted Redis has no scripts: the next check loads it again.
    redis::cmd("SCRIPT").arg("FLUSH").exec(&mut connection).unwrap();
    assert!(matches!(limiter.check_blocking("icbc", gcra).unwrap(), Verdict::Refused { .. }));
    assert_eq!(limiter.check_blocking("other", gcra).unwrap(), Verdict::Allowed, "each tenant its own key");
}
