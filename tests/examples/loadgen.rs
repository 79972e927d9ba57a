//! A bounded load generator on loopback: starts a real server in-process on
//! 127.0.0.1:0 over a temporary store, then measures, in one run,
//!
//! 1. ImportRepairCenters throughput (centers/s) of a `datagen` catalog
//!    (`scripts/bench` reports this figure);
//! 2. FindRepairCenter and a no-op RPC (health Check) at the same
//!    concurrency: a smoke check that both work under concurrent load. Client
//!    and server share the process and the cores, and this client is itself
//!    near its limit on the no-op, so these rates and their quotient say
//!    little about the server: `scripts/bench` measures throughput (h2load,
//!    pinned cores) and latency (the open-loop example);
//! 3. sequential Finds on one connection (one call in flight, as a bank
//!    app's backend usually calls): the latency a single caller sees;
//! 4. single-center UpsertRepairCenters latency (write + publish).
//!
//! `cargo run --release -p repairmatch-tests --example loadgen -- CENTERS FINDS UPSERTS CONCURRENCY`
//! (defaults 100000 20000 200 8). Every loop is bounded by its count and by a
//! 120 s time limit; nothing leaves the machine.

use std::time::{Duration, Instant};

use repairmatch_datagen as datagen;
use repairmatch_proto::v1 as pb;
use repairmatch_tests::{Fixture, TestServer, find_request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const TIME_LIMIT: Duration = Duration::from_secs(120);

// The server in this process runs on the allocator `repairmatch serve` ships
// with: under glibc's malloc an import spent a fifth of its time allocating.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(position: usize, default: usize) -> usize {
    std::env::args().nth(position).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) -> f64 {
    latencies.sort();
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{name:<28} {:>7} calls  {:>9.0} calls/s  p50 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
        latencies.len(),
        per_second,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    per_second
}

/// Runs `count` calls of `call` over `concurrency` tasks; returns latencies and wall time.
async fn drive<F, Fut>(count: usize, concurrency: usize, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = task;
                while i < count && started.elapsed() < TIME_LIMIT {
                    let t = Instant::now();
                    call(i).await;
                    latencies.push(t.elapsed());
                    i += concurrency;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    (all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let (centers, finds, upserts, concurrency) = (arg(1, 100_000), arg(2, 20_000), arg(3, 200), arg(4, 8));
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    println!("server on {} (release: {})", server.addr, !cfg!(debug_assertions));

    // 1. Import.
    let sample = datagen::generate(centers, 2026);
    let items: Vec<pb::ImportRepairCentersRequest> = sample
        .centers
        .iter()
        .map(|c| pb::ImportRepairCentersRequest { repair_center: Some(repairmatch::convert::center_to_proto(c)) })
        .collect();
    let mut ops = server.catalog("ops").await;
    let started = Instant::now();
    let summary = ops.import_repair_centers(tokio_stream::iter(items)).await.expect("import").into_inner();
    let elapsed = started.elapsed();
    println!(
        "import                       {} centers in {:.2?}: {:.0} centers/s ({} rejected)",
        summary.imported,
        elapsed,
        summary.imported as f64 / elapsed.as_secs_f64(),
        summary.rejected
    );

    // 2. Find vs a no-op RPC on the same server, same concurrency.
    let locations = datagen::sample_locations(1_000, 2027);
    let brands = ["PAX", "Verifone", "Ingenico", "Newland", "Sunmi", "LANDI"];
    let client = server.client().await;
    let (latencies, elapsed) = drive(finds, concurrency, move |i| {
        let mut client = client.clone();
        let mut request = find_request();
        let location = locations[i % locations.len()];
        request.location = Some(pb::LatLng { latitude: location.latitude, longitude: location.longitude });
        request.terminal.as_mut().unwrap().brand = brands[i % brands.len()].into();
        request.page_size = 10;
        async move {
            client.find_repair_center(request).await.expect("find");
        }
    })
    .await;
    let find_rate = report("FindRepairCenter", latencies, elapsed);
    let health = HealthClient::new(server.channel().await);
    let (latencies, elapsed) = drive(finds, concurrency, move |_| {
        let mut health = health.clone();
        async move {
            health.check(HealthCheckRequest { service: String::new() }).await.expect("health");
        }
    })
    .await;
    let noop_rate = report("no-op (health Check)", latencies, elapsed);
    // Not a server figure (this client is the bottleneck): scripts/bench has those.
    println!("Find / no-op, as this in-process client drives them: {:.2}", find_rate / noop_rate);

    // 3. Sequential Finds on one connection: every answer's last segment
    // would wait for the client's delayed ACK if the server left Nagle on.
    let sequential_locations = datagen::sample_locations(1_000, 2028);
    let one_connection = server.client().await;
    let (latencies, elapsed) = drive(finds.min(2_000), 1, move |i| {
        let mut client = one_connection.clone();
        let mut request = find_request();
        let location = sequential_locations[i % sequential_locations.len()];
        request.location = Some(pb::LatLng { latitude: location.latitude, longitude: location.longitude });
        request.page_size = 10;
        async move {
            client.find_repair_center(request).await.expect("find");
        }
    })
    .await;
    report("Find, sequential, 1 conn", latencies, elapsed);

    // 4. Upsert latency, one center per call, sequential.
    let mut pax = server.catalog("mfr-pax").await;
    let mut latencies = Vec::new();
    let started = Instant::now();
    for i in 0..upserts {
        if started.elapsed() > TIME_LIMIT {
            break;
        }
        let mut center = repairmatch_tests::center_east(&format!("loadgen-{i}"), 1.0 + (i % 20) as f64);
        center.brands[0].brand = "PAX".into();
        let t = Instant::now();
        let response =
            pax.upsert_repair_centers(pb::UpsertRepairCentersRequest { centers: vec![center] }).await.unwrap();
        latencies.push(t.elapsed());
        assert_eq!(response.into_inner().results[0].outcome(), pb::ItemOutcome::Ok);
    }
    report(&format!("Upsert (catalog {centers})"), latencies, started.elapsed());
    let threshold = repairmatch_core::Catalog::compaction_threshold(centers);
    println!(
        "delta after the upserts: {} changes (compaction threshold {threshold}: below it means a compaction ran)",
        server.app.catalog().delta_len()
    );
    server.stop().await;
}
