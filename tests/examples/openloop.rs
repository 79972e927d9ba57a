//! Open-loop latency of a running server on loopback, for `scripts/bench`:
//! requests leave at a fixed arrival rate whatever the server does, and each
//! latency is measured from the request's *scheduled* send time. A closed loop
//! (send, wait, send) slows down with the server and so hides its queueing
//! (coordinated omission); here a stalled server shows up as the latency of
//! every request that should have left meanwhile.
//!
//! `cargo run --release -p repairmatch-tests --example openloop -- --server http://127.0.0.1:50051 --rate 1000 --duration-s 10`
//!
//! By default every request is a different Find: merchant locations from
//! `repairmatch_datagen::sample_locations` (or, with `--layout tile`, from the
//! original tile of a `datagen --layout tiled` catalog), brands and faults
//! cycling, page size 10. `--body FILE` replays one gRPC body file instead
//! (the bytes `h2load -d FILE` sends), which is how the script checks, with one
//! request, that a body h2load counts as a success is really answered OK.
//! `--wait-serving-s S` only waits until the health check says the match
//! service is SERVING.
//!
//! With `--write-batch N --write-key KEY`, one `UpsertRepairCenters` of N new
//! centers (an ops tenant's key) is sent at `--write-at-s` into the run: the
//! output adds how long the write took to be acknowledged (durable and
//! served: the snapshot swapped) and the readers' latency while it ran.
//!
//! With `--in-flight N` the loop is closed instead: N calls outstanding, each
//! reply sending the next, as fast as the server answers. That measures the
//! peak rate of this very mix of queries, which `scripts/bench` halves for the
//! open-loop run (the five cities h2load replays cost less than the mix).
//!
//! Every reply's gRPC status is checked; non-OK replies (and calls past their
//! deadline) are errors, not latencies. The last line of output is JSON:
//! target and achieved rate, how late the client itself sent, p50 / p90 /
//! p99 / p99.9 / max in ms, errors by code. Bounded: `--requests` or
//! rate × duration requests, each with a deadline; loopback addresses only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use prost::Message;
use repairmatch_datagen as datagen;
use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::catalog_service_client::CatalogServiceClient;
use serde_json::json;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The service whose readiness `--wait-serving-s` waits for: the match
/// service, not the server-wide "" entry, which is SERVING as soon as the
/// health service exists.
const MATCH_SERVICE: &str = "repairmatch.v1.RepairMatchService";

const BRANDS: [&str; 6] = ["PAX", "Verifone", "Ingenico", "Newland", "Sunmi", "LANDI"];
const FAULTS: [pb::FaultCategory; 4] =
    [pb::FaultCategory::Screen, pb::FaultCategory::Printer, pb::FaultCategory::Software, pb::FaultCategory::CardReader];

/// The numbers of the calls `0..count`, each with its send time, as each
/// falls due, `interval` apart from `started`, from a thread of its own that
/// sleeps until each is due.
/// tokio's timer has millisecond slots, and a millisecond of the client's own
/// lateness would be half the 2 ms p99 being measured; the thread's sleep
/// wakes within tens of microseconds (its timer slack is set to 1 ns).
/// Spinning on the runtime's thread instead, as this did first, kept the
/// client's core busy all the time and now and then held its replies up for
/// tens of milliseconds: six runs of each, alternating, 2,400 Finds/s at 100k
/// centers, the server's p99 at most 0.75 ms throughout, the client's p99
/// read 3.9-100 ms (median 24) spinning and 2.1-6.9 ms (median 3.5) paced.
/// The price is the wake-up: a no-op's median 0.11-0.16 ms spinning,
/// 0.22-0.23 ms paced.
fn pace(started: Instant, interval: Duration, count: usize) -> tokio::sync::mpsc::UnboundedReceiver<(usize, Instant)> {
    let (due, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || {
            // A failure leaves the default slack (50 µs): later, not wrong.
            #[cfg(target_os = "linux")]
            let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
            for index in 0..count {
                let scheduled = started + interval.mul_f64(index as f64);
                if let Some(early) = scheduled.checked_duration_since(Instant::now()) {
                    std::thread::sleep(early);
                }
                if due.send((index, scheduled)).is_err() {
                    return;
                }
            }
        })
        .expect("a thread to pace the calls");
    receiver
}

#[derive(Debug, Parser)]
struct Args {
    /// The server, e.g. http://127.0.0.1:50051 (loopback only).
    #[arg(long)]
    server: String,
    /// Arrival rate, requests per second.
    #[arg(long, default_value_t = 1_000.0)]
    rate: f64,
    /// How long to send for, when --requests is not given.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// How many requests; overrides --duration-s.
    #[arg(long)]
    requests: Option<usize>,
    /// HTTP/2 connections the requests are spread over, round robin.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Distinct merchant locations.
    #[arg(long, default_value_t = 10_000)]
    locations: usize,
    /// Seed of the merchant locations.
    #[arg(long, default_value_t = 2027)]
    seed: u64,
    /// Where the merchants are: the whole world, or the original tile of a
    /// `datagen --layout tiled` catalog.
    #[arg(long, value_enum, default_value = "world")]
    layout: Layout,
    /// Page size of each Find.
    #[arg(long, default_value_t = 10)]
    page_size: i32,
    /// Replay this gRPC body file (a 5-byte frame header and the message)
    /// in every request instead of distinct Finds.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Which RPC: Find, or the no-op health Check.
    #[arg(long, value_enum, default_value = "find")]
    rpc: Rpc,
    /// Closed loop: keep this many calls outstanding (no `--rate`: give
    /// `--requests`, or the default rate times `--duration-s` are sent) and
    /// report the rate the server sustained.
    #[arg(long, conflicts_with_all = ["write_batch", "rate"])]
    in_flight: Option<usize>,
    /// Each call's deadline.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Only wait, at most this long, until the match service is SERVING.
    #[arg(long)]
    wait_serving_s: Option<f64>,
    /// Upsert this many new centers in one call during the run.
    #[arg(long, requires = "write_key")]
    write_batch: Option<usize>,
    /// An ops tenant's API key for the write.
    #[arg(long)]
    write_key: Option<String>,
    /// When the write is sent, seconds into the run.
    #[arg(long, default_value_t = 2.0)]
    write_at_s: f64,
    /// The written centers' ids start with this: a run with another prefix
    /// adds new centers where one with the same prefix replaces its own.
    #[arg(long, default_value = "bench-write-")]
    write_id_prefix: String,
}

/// How one write went: when it ran and what came back.
#[derive(Debug)]
struct Write {
    started: Instant,
    took: Duration,
    applied: usize,
    refused: usize,
}

/// `count` new centers (datagen's, under ids of their own) to upsert in one
/// call: made before the run, so that making them does not hold up the
/// client's handling of the readers in flight when the write goes out.
fn write_request(count: usize, id_prefix: &str) -> pb::UpsertRepairCentersRequest {
    let centers = datagen::generate(count, 99)
        .centers
        .iter()
        .map(|center| pb::RepairCenter {
            id: format!("{id_prefix}{}", center.id),
            ..repairmatch::convert::center_to_proto(center)
        })
        .collect();
    pb::UpsertRepairCentersRequest { centers }
}

/// Sends the upsert.
async fn write(channel: Channel, upsert: pb::UpsertRepairCentersRequest, key: &str) -> anyhow::Result<Write> {
    let mut request = tonic::Request::new(upsert);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse()?);
    let started = Instant::now();
    let response = CatalogServiceClient::new(channel).upsert_repair_centers(request).await?.into_inner();
    let took = started.elapsed();
    let applied = response.results.iter().filter(|result| result.outcome() == pb::ItemOutcome::Ok).count();
    Ok(Write { started, took, applied, refused: response.results.len() - applied })
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Layout {
    World,
    Tile,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Rpc {
    Find,
    Health,
}

/// One request, ready to send.
#[derive(Debug, Clone)]
enum Call {
    Find(Box<pb::FindRepairCenterRequest>),
    Health(HealthCheckRequest),
}

const FIND_PATH: &str = "/repairmatch.v1.RepairMatchService/FindRepairCenter";

/// Of a Find's reply, what the load generator reports: how many matches and
/// the total. Read by skipping each match whole, not decoding it: the client
/// has one core for thousands of calls a second, and decoding every 12 KB
/// reply in full took it 100 µs of CPU a call where this takes 54 (closed
/// loop, 30,000 calls, 100k centers, `/usr/bin/time`).
#[derive(Clone, PartialEq, prost::Message)]
struct FindSummary {
    #[prost(message, repeated, tag = "1")]
    matches: Vec<Skipped>,
    #[prost(int32, tag = "5")]
    total_size: i32,
}

/// A message read only to be counted: every field skipped.
#[derive(Clone, PartialEq, prost::Message)]
struct Skipped {}

/// The Find request encoded as the generated client does, the reply read as
/// its size and a [`FindSummary`] (through the stubs' slice decoder).
#[derive(Debug, Clone, Copy, Default)]
struct SummaryCodec;

type StubCodec = repairmatch_proto::codec::ProstCodec<pb::FindRepairCenterRequest, FindSummary>;

impl tonic::codec::Codec for SummaryCodec {
    type Encode = pb::FindRepairCenterRequest;
    type Decode = (usize, FindSummary);
    type Encoder = <StubCodec as tonic::codec::Codec>::Encoder;
    type Decoder = SummaryCodec;

    fn encoder(&mut self) -> Self::Encoder {
        StubCodec::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SummaryCodec
    }
}

impl tonic::codec::Decoder for SummaryCodec {
    type Item = (usize, FindSummary);
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        use prost::bytes::Buf;
        use tonic::codec::Codec;
        let length = buf.remaining();
        let summary = StubCodec::default().decoder().decode(buf)?;
        Ok(summary.map(|summary| (length, summary)))
    }
}

/// What one reply showed, when it was OK.
#[derive(Debug, Clone, Copy)]
struct Reply {
    encoded_bytes: usize,
    matches: usize,
    total_size: i64,
}

fn is_loopback(server: &str) -> bool {
    let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn decode_body(path: &PathBuf, rpc: Rpc) -> anyhow::Result<Call> {
    let framed = std::fs::read(path)?;
    anyhow::ensure!(framed.len() >= 5 && framed[0] == 0, "{}: not an uncompressed gRPC frame", path.display());
    let length = u32::from_be_bytes(framed[1..5].try_into()?) as usize;
    anyhow::ensure!(framed.len() == 5 + length, "{}: frame length {length} disagrees with the file", path.display());
    Ok(match rpc {
        Rpc::Find => Call::Find(Box::new(pb::FindRepairCenterRequest::decode(&framed[5..])?)),
        Rpc::Health => Call::Health(HealthCheckRequest::decode(&framed[5..])?),
    })
}

/// The request numbered `index` among many distinct ones.
fn distinct_find(index: usize, locations: &[repairmatch_core::geodesy::LatLng], page_size: i32) -> Call {
    let location = locations[index % locations.len()];
    Call::Find(Box::new(pb::FindRepairCenterRequest {
        location: Some(pb::LatLng { latitude: location.latitude, longitude: location.longitude }),
        terminal: Some(pb::Terminal {
            brand: BRANDS[index % BRANDS.len()].into(),
            model: String::new(),
            serial_number: String::new(),
        }),
        fault: Some(pb::Fault {
            category: FAULTS[(index / BRANDS.len()) % FAULTS.len()] as i32,
            description: String::new(),
        }),
        page_size,
        ..Default::default()
    }))
}

async fn send(channel: Channel, call: Call, deadline: Duration) -> Result<Reply, tonic::Code> {
    let outcome = tokio::time::timeout(deadline, async move {
        match call {
            Call::Find(message) => {
                let mut request = tonic::Request::new(*message);
                request.set_timeout(deadline);
                let mut grpc = tonic::client::Grpc::new(channel);
                // As the generated client reports a channel that is not ready.
                grpc.ready()
                    .await
                    .map_err(|error| tonic::Status::unknown(format!("Service was not ready: {error}")))?;
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(FIND_PATH);
                let (encoded_bytes, summary) = grpc.unary(request, path, SummaryCodec).await?.into_inner();
                Ok(Reply { encoded_bytes, matches: summary.matches.len(), total_size: i64::from(summary.total_size) })
            }
            Call::Health(message) => {
                let mut request = tonic::Request::new(message);
                request.set_timeout(deadline);
                let response: HealthCheckResponse = HealthClient::new(channel).check(request).await?.into_inner();
                if response.status() != ServingStatus::Serving {
                    return Err(tonic::Status::unavailable("not serving"));
                }
                Ok(Reply { encoded_bytes: response.encoded_len(), matches: 0, total_size: 0 })
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(status)) => Err(status.code()),
        Err(_elapsed) => Err(tonic::Code::DeadlineExceeded),
    }
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(server.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?)
}

/// Which request to send as the call numbered `index`.
type Requests = std::sync::Arc<dyn Fn(usize) -> Call + Send + Sync>;

/// Sends `count` calls keeping `in_flight` of them outstanding, spread round
/// robin over `channels`: each reply sends the next call, made when it is
/// sent. A call's latency is from its own send (a closed loop has no
/// schedule to be late for).
async fn closed_loop(
    channels: &[Channel],
    count: usize,
    request: Requests,
    in_flight: usize,
    deadline: Duration,
) -> Vec<(Instant, Duration, Result<Reply, tonic::Code>)> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..in_flight.max(1))
        .map(|_| {
            let (request, next, channels) = (request.clone(), next.clone(), channels.to_vec());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let sent = Instant::now();
                    let outcome = send(channels[index % channels.len()].clone(), request(index), deadline).await;
                    outcomes.push((sent, sent.elapsed(), outcome));
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(count);
    for sender in senders {
        outcomes.extend(sender.await.expect("a sender task does not panic"));
    }
    outcomes
}

/// Polls the health check until the match service is SERVING.
async fn wait_serving(server: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::from("never connected");
    while started.elapsed() < limit {
        match connect(server).await {
            Ok(channel) => {
                let request = HealthCheckRequest { service: MATCH_SERVICE.into() };
                match HealthClient::new(channel).check(request).await {
                    Ok(response) if response.get_ref().status() == ServingStatus::Serving => {
                        println!("{}", json!({"serving": true, "waited_s": started.elapsed().as_secs_f64()}));
                        return Ok(());
                    }
                    Ok(response) => last = format!("{:?}", response.get_ref().status()),
                    Err(status) => last = format!("{:?}", status.code()),
                }
            }
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("{}", json!({"serving": false, "last": last}));
    anyhow::bail!("{MATCH_SERVICE} not SERVING after {limit:?} (last: {last})")
}

fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // The nearest rank: the smallest value with at least q of the samples at or below it.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

// One thread: the script pins this client to one core, and a single-threaded
// scheduler keeps send times from depending on which worker woke up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(is_loopback(&args.server), "{}: loopback addresses only", args.server);
    if let Some(limit) = args.wait_serving_s {
        return wait_serving(&args.server, Duration::from_secs_f64(limit)).await;
    }
    anyhow::ensure!(args.rate > 0.0 && args.connections > 0, "--rate and --connections must be positive");
    let count = args.requests.unwrap_or((args.rate * args.duration_s).round() as usize).max(1);
    let deadline = Duration::from_millis(args.timeout_ms);

    let fixed = args.body.as_ref().map(|path| decode_body(path, args.rpc)).transpose()?;
    let locations = match (&fixed, args.rpc, args.layout) {
        (None, Rpc::Find, Layout::World) => datagen::sample_locations(args.locations, args.seed),
        (None, Rpc::Find, Layout::Tile) => datagen::tile_locations(args.locations, args.seed),
        _ => Vec::new(),
    };
    let (rpc, page_size) = (args.rpc, args.page_size);
    let request: Requests = std::sync::Arc::new(move |index| match (&fixed, rpc) {
        (Some(call), _) => call.clone(),
        (None, Rpc::Find) => distinct_find(index, &locations, page_size),
        (None, Rpc::Health) => Call::Health(HealthCheckRequest { service: String::new() }),
    });
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(connect(&args.server).await?);
    }

    let upsert = args.write_batch.map(|count| write_request(count, &args.write_id_prefix));
    let started = Instant::now() + Duration::from_millis(20);
    let mut send_lags = Vec::with_capacity(count);
    let mut last_send = started;
    let (writer, pending) = match args.in_flight {
        Some(in_flight) => {
            tokio::time::sleep_until(started.into()).await;
            (None, closed_loop(&channels, count, request.clone(), in_flight, deadline).await)
        }
        None => {
            let interval = Duration::from_secs_f64(1.0 / args.rate);
            // The write waits for its moment on its own connection, so it neither
            // delays nor shares a stream with the readers' sends.
            let writer = match (upsert, &args.write_key) {
                (Some(upsert), Some(key)) => {
                    let (channel, key) = (connect(&args.server).await?, key.clone());
                    let at = started + Duration::from_secs_f64(args.write_at_s);
                    Some(tokio::spawn(async move {
                        tokio::time::sleep_until(at.into()).await;
                        write(channel, upsert, &key).await
                    }))
                }
                _ => None,
            };
            let mut pending = Vec::with_capacity(count);
            let mut due = pace(started, interval, count);
            while let Some((index, scheduled)) = due.recv().await {
                last_send = Instant::now();
                send_lags.push(last_send - scheduled);
                let channel = channels[index % channels.len()].clone();
                let call = request(index);
                pending.push(tokio::spawn(async move {
                    let outcome = send(channel, call, deadline).await;
                    (scheduled, scheduled.elapsed(), outcome)
                }));
            }
            let mut outcomes = Vec::with_capacity(count);
            for task in pending {
                outcomes.push(task.await?);
            }
            (writer, outcomes)
        }
    };

    let write = match writer {
        Some(task) => Some(task.await??),
        None => None,
    };
    let mut during_write = Vec::new();
    let mut latencies = Vec::with_capacity(count);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_reply = None;
    let mut reply_bytes = 0_usize;
    for (scheduled, latency, outcome) in pending {
        match outcome {
            Ok(reply) => {
                latencies.push(latency);
                // Readers whose call was in flight while the write ran.
                if let Some(write) = &write
                    && scheduled + latency >= write.started
                    && scheduled <= write.started + write.took
                {
                    during_write.push(latency);
                }
                reply_bytes += reply.encoded_bytes;
                last_reply = Some(reply);
            }
            Err(code) => *errors.entry(format!("{code:?}")).or_default() += 1,
        }
    }
    let finished = started.elapsed();
    latencies.sort();
    send_lags.sort();
    during_write.sort();
    let write_json = write.as_ref().map(|write| {
        println!(
            "write of {} centers acknowledged in {:.1} ms ({} refused); {} readers in flight meanwhile: p99 {:.3} ms, max {:.3} ms",
            write.applied + write.refused,
            write.took.as_secs_f64() * 1e3,
            write.refused,
            during_write.len(),
            quantile_ms(&during_write, 0.99),
            quantile_ms(&during_write, 1.0),
        );
        json!({
            "centers": write.applied + write.refused,
            "applied": write.applied,
            "refused": write.refused,
            "took_ms": write.took.as_secs_f64() * 1e3,
            "readers_during": during_write.len(),
            "readers_during_p99_ms": quantile_ms(&during_write, 0.99),
            "readers_during_max_ms": quantile_ms(&during_write, 1.0),
        })
    });
    let (send_window, achieved_rate) = match args.in_flight {
        // Closed: the rate the server sustained, replies over the whole run.
        Some(_) => (finished, count as f64 / finished.as_secs_f64()),
        None => {
            let send_window = last_send.saturating_duration_since(started);
            // Over n sends there are n - 1 intervals; a single request has no rate.
            (send_window, if count > 1 { (count - 1) as f64 / send_window.as_secs_f64() } else { args.rate })
        }
    };
    let error_count: usize = errors.values().sum();
    let ok = latencies.len();
    let offered = match args.in_flight {
        Some(in_flight) => format!("{in_flight} in flight"),
        None => format!("{:.0}/s", args.rate),
    };
    println!(
        "{count} requests at {offered} (achieved {achieved_rate:.0}/s over {:.2} s): {ok} OK, {error_count} errors {errors:?}",
        send_window.as_secs_f64()
    );
    // A closed loop sends each call when the last one is answered: it has no
    // schedule, so its latency is from the send and it is never late.
    let measured_from = match args.in_flight {
        Some(_) => "send".to_owned(),
        None => format!("scheduled send (client sent late by p99 {:.3} ms)", quantile_ms(&send_lags, 0.99)),
    };
    println!(
        "latency from {measured_from}, ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        quantile_ms(&latencies, 0.5),
        quantile_ms(&latencies, 0.9),
        quantile_ms(&latencies, 0.99),
        quantile_ms(&latencies, 0.999),
        quantile_ms(&latencies, 1.0),
    );
    println!(
        "{}",
        json!({
            "rpc": format!("{:?}", args.rpc).to_lowercase(),
            "requests": count,
            "ok": ok,
            "errors": error_count,
            "errors_by_code": errors,
            "target_rate": if args.in_flight.is_some() { None } else { Some(args.rate) },
            "in_flight": args.in_flight,
            "achieved_rate": achieved_rate,
            "send_window_s": send_window.as_secs_f64(),
            "finished_s": finished.as_secs_f64(),
            "send_lag_p99_ms": quantile_ms(&send_lags, 0.99),
            "send_lag_max_ms": quantile_ms(&send_lags, 1.0),
            "p50_ms": quantile_ms(&latencies, 0.5),
            "p90_ms": quantile_ms(&latencies, 0.9),
            "p99_ms": quantile_ms(&latencies, 0.99),
            "p999_ms": quantile_ms(&latencies, 0.999),
            "max_ms": quantile_ms(&latencies, 1.0),
            "reply_bytes_avg": if ok > 0 { reply_bytes as f64 / ok as f64 } else { 0.0 },
            "last_reply_matches": last_reply.map(|r| r.matches),
            "last_reply_total_size": last_reply.map(|r| r.total_size),
            "write": write_json,
        })
    );
    Ok(())
}
