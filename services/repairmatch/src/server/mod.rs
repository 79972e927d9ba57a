//! The gRPC server: [`serve`] assembles the match and catalog services behind
//! authentication and rate limits, health checking, server reflection,
//! deadlines and load shedding on a listener the caller binds (tests bind
//! `127.0.0.1:0`); [`run`] is `repairmatch serve`: runtime, store, listeners,
//! live reload, signals.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use repairmatch_proto::encoded::repair_match_service_server::RepairMatchServiceServer;
use repairmatch_proto::v1::catalog_service_server::CatalogServiceServer;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::api::Authenticate;
use crate::api::catalog::CatalogGrpc;
use crate::api::find::RepairMatchGrpc;
use crate::api::observe::ObserveLayer;
use crate::app::{App, ConfigStatus};
use crate::config::Config;
use crate::limits::Limiter;
use crate::{metrics, reload};

/// The health service name that reports whether the config file is in force.
pub const CONFIG_HEALTH_SERVICE: &str = "repairmatch.config";

/// How often an idle connection is probed, so a peer that vanished without a
/// FIN (a dead pod, a NAT that forgot us) does not hold a connection forever.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server_config = app.config().config.server.clone();
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

    // Readiness of the match service follows the change feed on a shared
    // store: see `ready`.
    if app.follows_a_feed() {
        let feed_health = health_reporter.clone();
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
                if last != Some(status) {
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
        CatalogServiceServer::new(CatalogGrpc::new(app)).max_decoding_message_size(server_config.max_request_bytes),
    );

    tracing::info!(listen = %listener.local_addr()?, "serving gRPC");
    tonic::transport::Server::builder()
        // A caller's grpc-timeout wins when shorter; this bounds the rest.
        .timeout(Duration::from_millis(server_config.default_timeout_ms))
        .concurrency_limit_per_connection(server_config.max_concurrent_requests_per_connection)
        .load_shed(true)
        .layer(ObserveLayer::new(metrics))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(repair_match)
        .add_service(catalog)
        .serve_with_incoming_shutdown(connections(listener), shutdown)
        .await?;
    Ok(())
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

/// The connections `listener` accepts, each set up for RPCs. The server's
/// own `tcp_nodelay` setting applies only to listeners it binds itself; without
/// TCP_NODELAY the tail of each answer waits ~40 ms for the client's delayed
/// ACK (Nagle), on every call of a caller with one call in flight.
fn connections(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE))
}

/// `repairmatch serve`: opens the store, binds the listeners, watches the
/// config file (when there is one) and serves until SIGINT or SIGTERM.
pub fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listen = config.server.listen;
        let store_path = config.store.path.clone();
        let app = tokio::task::spawn_blocking(move || App::open(config))
            .await?
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let _watcher = match &config_path {
            Some(path) => {
                let watcher = reload::watch(app.clone(), path.clone()).context("cannot watch the config file")?;
                #[cfg(unix)]
                watcher.reload_on_sighup()?;
                Some(watcher)
            }
            None => None,
        };
        let stopping = shutdown_signal()?;
        if let Some(metrics_listen) = app.config().config.server.metrics_listen {
            let metrics_listener = TcpListener::bind(metrics_listen)
                .await
                .with_context(|| format!("cannot serve metrics on {metrics_listen}"))?;
            tracing::info!(listen = %metrics_listen, "serving metrics");
            tokio::spawn(metrics::serve_metrics(metrics_listener, app.clone(), stopped(stopping.clone())));
        }
        serve(listener, app, stopped(stopping)).await
    })
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
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stop.send(true);
    });
    Ok(stopping)
}

async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[test]
    fn readiness_follows_the_feed_but_survives_a_store_outage() {
        let second = Duration::from_secs(1);
        assert!(ready(false, second * 3600, false), "the embedded store has no feed to fall behind");
        assert!(ready(true, second, false), "current");
        assert!(!ready(true, MAX_FEED_SILENCE + second, false), "reachable store, replica behind: not ready");
        assert!(ready(true, MAX_FEED_SILENCE + second, true), "store unreachable: everyone is behind; keep serving");
    }

    #[tokio::test]
    async fn accepted_connections_skip_nagle_and_are_kept_alive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = connections(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY on the accepted socket");
        assert!(socket2::SockRef::from(&accepted).keepalive().unwrap(), "SO_KEEPALIVE on the accepted socket");
    }
}
