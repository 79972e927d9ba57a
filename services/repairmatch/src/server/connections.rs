//! The gRPC port's connections: accepted, TLS-wrapped when configured, served
//! over HTTP/2, aged out, and drained on shutdown.
//!
//! The loop is ours rather than tonic's `Server` for three things gRPC
//! deployments rely on and tonic's loop does not give together:
//!
//! - **max connection age with a grace period**: after about
//!   `max_connection_age_ms` (±10 %, so connections made together do not all
//!   leave together) a connection gets GOAWAY, its calls in flight finish,
//!   and only if they outlast `max_connection_age_grace_ms` is it closed.
//!   Clients reconnect, and a replica that came up later gets its share;
//! - **TLS whose certificate reloads** for the next handshake;
//! - **a bounded drain**: on shutdown every connection gets GOAWAY at once,
//!   calls in flight get `drain_timeout_ms` to finish, and what is left after
//!   that is closed, so a stuck call cannot hold a rollout.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::body::Body;
use tonic::codegen::http;
use tower::Service;

use super::tls::ReloadingTls;
use crate::config::ServerConfig;

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle connection is probed at the TCP level, so a peer that
/// vanished without a FIN (a dead pod, a NAT that forgot us) does not hold a
/// connection forever.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The HTTP/2 and lifetime settings every connection is served with.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// HTTP/2 PING interval on idle connections; none = off.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered.
    pub keepalive_timeout: Duration,
    /// Streams one connection may have open (more are refused by HTTP/2
    /// itself, which clients retry elsewhere).
    pub max_concurrent_streams: u32,
    /// GOAWAY after about this long; none = never.
    pub max_age: Option<Duration>,
    /// Calls in flight on an aged connection get this long.
    pub age_grace: Duration,
    /// Calls in flight at shutdown get this long.
    pub drain_timeout: Duration,
}

impl ConnectionSettings {
    /// The settings of `[server]`.
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            keepalive_interval: server.http2_keepalive_interval_ms.map(Duration::from_millis),
            keepalive_timeout: Duration::from_millis(server.http2_keepalive_timeout_ms),
            max_concurrent_streams: u32::try_from(server.max_concurrent_requests_per_connection).unwrap_or(u32::MAX),
            max_age: server.max_connection_age_ms.map(Duration::from_millis),
            age_grace: Duration::from_millis(server.max_connection_age_grace_ms),
            drain_timeout: Duration::from_millis(server.drain_timeout_ms),
        }
    }
}

/// Serves `service` on every connection `listener` accepts until `stop`
/// completes; then closes the listener (new connections are refused by the
/// kernel), asks every connection to go away and waits, at most
/// `drain_timeout`, for their calls in flight.
pub async fn serve_connections<S>(
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    service: S,
    settings: ConnectionSettings,
    stop: impl Future<Output = ()>,
) where
    S: Service<http::Request<hyper::body::Incoming>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let settings = Arc::new(settings);
    let (draining, drain_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    set_socket_options(&stream);
                    let service = service.clone();
                    let settings = Arc::clone(&settings);
                    let drain_signal = drain_signal.clone();
                    let tls = tls.as_ref().map(|tls| tls.acceptor());
                    connections.spawn(async move {
                        match tls {
                            None => serve_one(stream, service, &settings, drain_signal).await,
                            Some(acceptor) => {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => serve_one(stream, service, &settings, drain_signal).await,
                                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                            }
                        }
                    });
                }
                // Out of file descriptors and the like: the listener itself
                // is fine, so pause rather than spin, and go on.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reaps finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = draining.send(true);
    let open = connections.len();
    let drained =
        tokio::time::timeout(settings.drain_timeout, async { while connections.join_next().await.is_some() {} }).await;
    match drained {
        Ok(()) => tracing::info!(connections = open, "drained"),
        Err(_) => {
            tracing::warn!(
                still_open = connections.len(),
                drain_timeout_ms = settings.drain_timeout.as_millis() as u64,
                "calls still in flight after the drain timeout are cut"
            );
            connections.shutdown().await;
        }
    }
}

fn set_socket_options(stream: &TcpStream) {
    // Without TCP_NODELAY the tail of each answer waits ~40 ms for the
    // client's delayed ACK (Nagle), on every call of a caller with one call
    // in flight.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY");
    }
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "SO_KEEPALIVE");
    }
}

/// Serves one connection until the client closes it, it has aged out, or
/// the server drains.
async fn serve_one<I, S>(io: I, service: S, settings: &ConnectionSettings, mut drain_signal: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<hyper::body::Incoming>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.keepalive_interval)
        .keep_alive_timeout(settings.keepalive_timeout)
        .max_concurrent_streams(settings.max_concurrent_streams);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let aged = async {
        match settings.max_age {
            Some(age) => tokio::time::sleep(jittered(age)).await,
            None => std::future::pending().await,
        }
    };
    let mut aged = std::pin::pin!(aged);
    // Armed once the connection has been asked to go away for its age.
    let mut grace_over = std::pin::pin!(tokio::time::sleep(Duration::MAX));
    let mut going_away = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = &mut aged, if !going_away => {
                going_away = true;
                connection.as_mut().graceful_shutdown();
                grace_over.as_mut().reset(tokio::time::Instant::now() + settings.age_grace);
            }
            () = &mut grace_over, if going_away => {
                tracing::debug!("closing an aged connection whose calls outlasted the grace period");
                return;
            }
            _ = drain_signal.changed() => {
                connection.as_mut().graceful_shutdown();
                // The drain bounds what is left: the accept loop cuts this
                // task at `drain_timeout`.
                let _ = connection.as_mut().await;
                return;
            }
        }
    }
}

/// `age` ± 10 %, so connections made together do not all go away together.
fn jittered(age: Duration) -> Duration {
    age.mul_f64(fastrand::f64().mul_add(0.2, 0.9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ages_spread_within_ten_percent() {
        let age = Duration::from_secs(300);
        let ages: Vec<Duration> = (0..1000).map(|_| jittered(age)).collect();
        assert!(ages.iter().all(|a| *a >= age.mul_f64(0.9) && *a <= age.mul_f64(1.1)));
        let (min, max) = (ages.iter().min().unwrap(), ages.iter().max().unwrap());
        assert!(*max - *min > age.mul_f64(0.1), "ages spread, not one value: {min:?}..{max:?}");
    }

    #[tokio::test]
    async fn accepted_connections_skip_nagle_and_are_kept_alive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        set_socket_options(&accepted);
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY on the accepted socket");
        assert!(socket2::SockRef::from(&accepted).keepalive().unwrap(), "SO_KEEPALIVE on the accepted socket");
    }
}
