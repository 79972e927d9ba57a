//! The gRPC server: [`serve`] assembles the match and catalog services behind
//! authentication and rate limits, health checking and server reflection,
//! then serves them through admission (load shedding, deadlines) on the
//! connection loop of [`connections`] (TLS, connection age, drain), on a
//! listener the caller binds (tests bind `127.0.0.1:0`). [`run`] is
//! `repairmatch serve`: runtime, telemetry, store, listeners, live reload,
//! signals.
//!
//! Shutdown, on SIGTERM or SIGINT (or the future a test passes): health
//! turns NOT_SERVING for every service, so probes and client-side balancers
//! stop sending; the server goes on serving for `server.shutdown_pause_ms`
//! while they notice; then it closes the listener, asks every connection to
//! go away, waits up to `server.drain_timeout_ms` for calls in flight, and
//! the process exits 0.

pub mod admission;
pub mod connections;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use repairmatch_proto::encoded::catalog_service_server::CatalogServiceServer;
use repairmatch_proto::encoded::repair_match_service_server::RepairMatchServiceServer;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tower::Layer;
use tower::util::MapResponseLayer;

use self::admission::AdmissionLayer;
use self::connections::{ConnectionSettings, serve_connections};
use self::tls::ReloadingTls;
use crate::api::Authenticate;
use crate::api::catalog::CatalogGrpc;
use crate::api::find::RepairMatchGrpc;
use crate::api::framed::send_framed_answer;
use crate::api::observe::ObserveLayer;
use crate::app::{App, ConfigStatus};
use crate::config::{Config, StoreKind};
use crate::limits::Limiter;
use crate::store::StoreError;
use crate::{metrics, reload, telemetry};

/// The health service name that reports whether the config file is in force.
pub const CONFIG_HEALTH_SERVICE: &str = "repairmatch.config";

/// Serves `app` on `listener` until `shutdown` completes, then shuts down as
/// the module says: NOT_SERVING, the pause, the drain.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    crate::app::start_maintenance_pools();
    let config = app.config();
    let server_config = config.config.server.clone();
    let trace_parents = config.config.tracing.otlp_endpoint.is_some();
    drop(config);
    let tls = match server_config.tls.clone() {
        Some(tls) => {
            Some(Arc::new(ReloadingTls::start(tls, app.metrics().clone()).context("cannot serve TLS with server.tls")?))
        }
        None => None,
    };
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<RepairMatchServiceServer<RepairMatchGrpc>>().await;
    health_reporter.set_serving::<CatalogServiceServer<CatalogGrpc>>().await;
    // "repairmatch.config" is NOT_SERVING while the file on disk was refused
    // (the previous config keeps serving): the health detail of a bad reload.
    let mut config_status = app.config_status();
    let health_of = |status: &ConfigStatus| match status {
        ConfigStatus::Current => ServingStatus::Serving,
        ConfigStatus::Refused(_) => ServingStatus::NotServing,
    };
    let initial = health_of(&config_status.borrow_and_update());
    health_reporter.set_service_status(CONFIG_HEALTH_SERVICE, initial).await;
    let config_health = health_reporter.clone();
    tokio::spawn(async move {
        while config_status.changed().await.is_ok() {
            let status = health_of(&config_status.borrow_and_update());
            config_health.set_service_status(CONFIG_HEALTH_SERVICE, status).await;
        }
    });

    // Once set, nothing turns health back to SERVING.
    let shutting_down = Arc::new(AtomicBool::new(false));
    // Readiness of the match service follows the change feed on a shared
    // store: see `ready`.
    if app.follows_a_feed() {
        let feed_health = health_reporter.clone();
        let shutting_down = Arc::clone(&shutting_down);
        // Holds the app weakly, so a stopped server's app (and its store) goes.
        let weak = app.downgrade();
        tokio::spawn(async move {
            let mut last = None;
            while let Some(app) = weak.upgrade() {
                let (_, since_current, failing) = app.feed_state();
                drop(app);
                let status = if ready(true, since_current, failing) {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                if last != Some(status) && !shutting_down.load(Ordering::SeqCst) {
                    feed_health.set_service_status(RepairMatchServiceServer::<RepairMatchGrpc>::NAME, status).await;
                    last = Some(status);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(repairmatch_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(repairmatch_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // One limiter for both services: a tenant's limit counts all its calls.
    let limiter = Arc::new(Limiter::new(&app.config().config, app.metrics().clone())?);
    let metrics = app.metrics().clone();
    let repair_match = Authenticate::new(
        app.clone(),
        Arc::clone(&limiter),
        RepairMatchServiceServer::new(RepairMatchGrpc::new(app.clone()))
            .max_decoding_message_size(server_config.max_request_bytes),
    );
    let catalog = Authenticate::new(
        app.clone(),
        limiter,
        CatalogServiceServer::new(CatalogGrpc::new(app.clone()))
            .max_decoding_message_size(server_config.max_request_bytes),
    );
    // Probes that cannot speak TLS get health alone, in plaintext, on a port
    // of its own; it reports the same statuses and closes with the main one.
    let (closing, closed) = tokio::sync::watch::channel(false);
    let settings = ConnectionSettings::of(&server_config);
    if let Some(health_listen) = server_config.health_listen {
        let health_listener = TcpListener::bind(health_listen)
            .await
            .with_context(|| format!("cannot serve health checks on {health_listen}"))?;
        tracing::info!(listen = %health_listener.local_addr()?, "serving health checks");
        let health_only = tonic::service::Routes::new(health_service.clone()).prepare();
        tokio::spawn(serve_connections(
            health_listener,
            None,
            health_only,
            settings.clone(),
            closing_of(closed.clone()),
        ));
    }
    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(repair_match)
        .add_service(catalog)
        .prepare();
    let admission = AdmissionLayer::new(
        server_config.max_concurrent_requests,
        Duration::from_millis(server_config.default_timeout_ms),
        metrics.clone(),
    );
    let access_log = app.config().config.log.access;
    let routes = MapResponseLayer::new(send_framed_answer).layer(routes);
    let service = ObserveLayer::new(metrics, access_log, trace_parents).layer(admission.layer(routes));

    let pause = Duration::from_millis(server_config.shutdown_pause_ms);
    let stop_sequence = async move {
        shutdown.await;
        shutting_down.store(true, Ordering::SeqCst);
        tracing::info!(
            pause_ms = server_config.shutdown_pause_ms,
            drain_timeout_ms = server_config.drain_timeout_ms,
            "shutting down: health NOT_SERVING, serving on through the pause, then draining"
        );
        for service in
            ["", RepairMatchServiceServer::<RepairMatchGrpc>::NAME, CatalogServiceServer::<CatalogGrpc>::NAME]
        {
            health_reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
        tokio::time::sleep(pause).await;
        let _ = closing.send(true);
    };
    // `listen` last: tests and scripts read the address off the end of this line.
    tracing::info!(tls = tls.is_some(), listen = %listener.local_addr()?, "serving gRPC");
    tokio::join!(stop_sequence, serve_connections(listener, tls, service, settings, closing_of(closed)));
    Ok(())
}

/// Completes once the listeners are to close.
async fn closing_of(mut closed: tokio::sync::watch::Receiver<bool>) {
    let _ = closed.wait_for(|closing| *closing).await;
}

/// How long a replica may go without the feed confirming it is current
/// before it stops taking Finds: longer than a feed read blocks, shorter than
/// anyone should be served a stale catalog for.
const MAX_FEED_SILENCE: Duration = Duration::from_secs(10);

/// Whether the match service is ready for traffic. On the embedded store it
/// always is. On a shared store it is while the feed keeps confirming this
/// replica is current; a replica that is catching up (a full reload, a long
/// pause) is not. But while the store itself cannot be reached every replica
/// is equally behind, and taking them all out of service would turn a Redis
/// outage into a full one: they stay ready and serve the catalog they have.
fn ready(follows_a_feed: bool, since_current: Duration, feed_failing: bool) -> bool {
    !follows_a_feed || feed_failing || since_current < MAX_FEED_SILENCE
}

/// How long a start waits for a store it cannot reach before giving up.
const STORE_OPEN_PATIENCE: Duration = Duration::from_secs(30);

/// Opens the store and builds the app, waiting (with backoff, up to
/// [`STORE_OPEN_PATIENCE`]) while Redis cannot be reached: a replica that
/// starts beside its Redis, or during a Redis restart, or on a machine too
/// busy to finish a TLS handshake in one command timeout, serves once Redis
/// answers instead of exiting into a crash loop. Other errors end the start
/// at once.
async fn open_app(config: Config) -> anyhow::Result<App> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        let attempt = config.clone();
        match tokio::task::spawn_blocking(move || App::open(attempt)).await? {
            Err(StoreError::Unavailable(why)) if started.elapsed() < STORE_OPEN_PATIENCE => {
                let retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(%why, retry_in_ms, "the store cannot be reached yet; waiting for it");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            opened => return Ok(opened?),
        }
    }
}

/// How long the runtime waits, at exit, for blocking work still running (a
/// feed read blocked in Redis): the calls are drained by then.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// `repairmatch serve`: sets up logs and traces, opens the store, binds the
/// listeners, watches the config files (when there are any) and serves until
/// SIGINT or SIGTERM.
pub fn run(config: Config, config_files: Vec<PathBuf>) -> anyhow::Result<()> {
    // Dropped last, after the runtime: blocking work still finishing when the
    // runtime stops, and the compaction and feed threads, log to the end.
    let (log_writer, _log_queue) = telemetry::queued_stderr();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let served = runtime.block_on(async {
        let _telemetry = telemetry::init(&config.log, &config.tracing, log_writer)?;
        let listen = config.server.listen;
        let store = match config.store.kind {
            StoreKind::Embedded => format!("the store {}", config.store.path.display()),
            // Not the URL: it may carry a password.
            StoreKind::Redis => "the Redis store".to_owned(),
        };
        let app = open_app(config).await.with_context(|| format!("cannot open {store}"))?;
        let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let _watcher = if config_files.is_empty() {
            None
        } else {
            let watcher = reload::watch(app.clone(), config_files).context("cannot watch the config files")?;
            #[cfg(unix)]
            watcher.reload_on_sighup()?;
            Some(watcher)
        };
        let stopping = shutdown_signal()?;
        // Metrics stay up through the pause and the drain, for the scrape
        // that shows them, and go when the gRPC port is done.
        let (metrics_done, metrics_stop) = tokio::sync::oneshot::channel::<()>();
        if let Some(metrics_listen) = app.config().config.server.metrics_listen {
            let metrics_listener = TcpListener::bind(metrics_listen)
                .await
                .with_context(|| format!("cannot serve metrics on {metrics_listen}"))?;
            tracing::info!(listen = %metrics_listen, "serving metrics");
            tokio::spawn(metrics::serve_metrics(metrics_listener, app.clone(), async {
                let _ = metrics_stop.await;
            }));
        }
        serve(listener, app, stopped(stopping)).await?;
        let _ = metrics_done.send(());
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    served
}

/// Flips once, on the first SIGINT or SIGTERM; every listener waits on it.
fn shutdown_signal() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    Ok(stopping)
}

async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_feed_but_survives_a_store_outage() {
        let second = Duration::from_secs(1);
        assert!(ready(false, second * 3600, false), "the embedded store has no feed to fall behind");
        assert!(ready(true, second, false), "current");
        assert!(!ready(true, MAX_FEED_SILENCE + second, false), "reachable store, replica behind: not ready");
        assert!(ready(true, MAX_FEED_SILENCE + second, true), "store unreachable: everyone is behind; keep serving");
    }
}
