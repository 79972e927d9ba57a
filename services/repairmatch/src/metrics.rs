//! Prometheus metrics on their own HTTP listener (`server.metrics_listen`),
//! apart from the gRPC port: config and catalog versions, whether the config
//! file on disk is the one in force, how often the file was read for a reload
//! and how many reloads were refused; calls refused by rate limits, and limit
//! checks that fell back to this replica's own share.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;

use crate::App;
use crate::app::ConfigStatus;

/// The service's metrics, in a registry of its own (no globals, so several
/// servers can live in one process). A shared handle: the layers around
/// every call clone it, and cloning the metrics themselves (some thirty
/// handles, each an atomic count) was 4% of a cached Find's CPU.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<MetricSet>);

impl std::ops::Deref for Metrics {
    type Target = MetricSet;

    fn deref(&self) -> &MetricSet {
        &self.0
    }
}

/// The metrics a [`Metrics`] handle shares.
#[derive(Debug)]
pub struct MetricSet {
    registry: Registry,
    /// Reloads refused since start.
    pub config_reloads_refused: IntCounter,
    /// Times the config file was read for a reload (a change in its directory
    /// or SIGHUP), whether or not it had changed: flat while nothing happens,
    /// so a reload loop shows up here.
    pub config_reload_attempts: IntCounter,
    /// Find answers served from a cache tier (`tier` = local | redis).
    pub cache_hits: IntCounterVec,
    /// Find lookups a cache tier could not answer.
    pub cache_misses: IntCounterVec,
    /// Find answers computed (not served from a cache).
    pub find_computed: IntCounter,
    /// Pages ranked with a computed answer, after it, and cached.
    pub find_pages_ahead: IntCounter,
    /// Store calls that failed (Redis unreachable or erroring).
    pub store_errors: IntCounter,
    /// Whole-catalog reloads by the feed follower.
    pub feed_reloads: IntCounter,
    /// Calls refused for being over their tenant's rate limit, by tenant.
    pub rate_limited: IntCounterVec,
    /// Rate-limit checks this replica decided alone, on its share of the
    /// limit, because the shared limiter (Redis) was down, slow or failing.
    pub rate_limit_fallbacks: IntCounter,
    /// Calls refused at once because the process had
    /// `server.max_concurrent_requests` calls in flight.
    pub requests_shed: IntCounter,
    /// Calls in flight now (health checks not counted).
    pub requests_in_flight: IntGauge,
    /// Changed TLS files that did not load (the previous certificate kept
    /// serving).
    pub tls_reloads_refused: IntCounter,
    grpc_handled: IntCounterVec,
    grpc_handling_seconds: HistogramVec,
    feed_applied_version: IntGauge,
    /// How many versions behind the feed's head this replica was at its last
    /// read (0 when current).
    pub feed_lag_versions: IntGauge,
    feed_seconds_since_current: IntGauge,
    config_version: IntGauge,
    config_in_force: IntGauge,
    catalog_version: IntGauge,
    catalog_centers: IntGauge,
    catalog_delta: IntGauge,
}

impl Default for MetricSet {
    fn default() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let metric = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("registered once");
            metric
        };
        let config_reloads_refused =
            counter("repairmatch_config_reloads_refused_total", "Config reloads refused since start");
        let config_reload_attempts = counter(
            "repairmatch_config_reload_attempts_total",
            "Times the config file was read for a reload (file change or SIGHUP), changed or not",
        );
        let gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("registered once");
            metric
        };
        let store_errors = counter(
            "repairmatch_store_errors_total",
            "Store, feed and cache-tier calls that failed (Redis down, timing out or erroring)",
        );
        let feed_reloads =
            counter("repairmatch_feed_reloads_total", "Whole-catalog reloads after falling behind the change feed");
        let counter_vec = |name: &str, help: &str, label: &str| {
            let metric = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("registered once");
            metric
        };
        let find_computed =
            counter("repairmatch_find_computed_total", "Find answers computed rather than served from a cache");
        let find_pages_ahead = counter(
            "repairmatch_find_pages_ahead_total",
            "Pages ranked along with a computed Find answer, after it, and cached for callers who page on",
        );
        let rate_limited = IntCounterVec::new(
            Opts::new("repairmatch_rate_limited_total", "Calls refused for being over their tenant's rate limit"),
            &["tenant"],
        )
        .expect("valid metric");
        registry.register(Box::new(rate_limited.clone())).expect("registered once");
        let rate_limit_fallbacks = counter(
            "repairmatch_rate_limit_fallbacks_total",
            "Rate-limit checks decided on this replica's share of the limit because Redis was unavailable",
        );
        let requests_shed = counter(
            "repairmatch_requests_shed_total",
            "Calls refused with RESOURCE_EXHAUSTED because server.max_concurrent_requests were in flight",
        );
        let requests_in_flight =
            IntGauge::new("repairmatch_requests_in_flight", "gRPC calls in flight (health checks not counted)")
                .expect("valid metric");
        registry.register(Box::new(requests_in_flight.clone())).expect("registered once");
        let tls_reloads_refused = counter(
            "repairmatch_tls_reloads_refused_total",
            "Changed TLS files that did not load; the previous certificate kept serving",
        );
        let grpc_handled = IntCounterVec::new(
            Opts::new("grpc_server_handled_total", "gRPC calls answered, by service, method and status code"),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("valid metric");
        registry.register(Box::new(grpc_handled.clone())).expect("registered once");
        // Fine below a millisecond, where a Find lives, and on to the
        // default deadline.
        let buckets = vec![
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 5.0, 10.0,
        ];
        let grpc_handling_seconds = HistogramVec::new(
            HistogramOpts::new(
                "grpc_server_handling_seconds",
                "Time from a gRPC call's arrival until its handler answered, by service and method",
            )
            .buckets(buckets),
            &["grpc_service", "grpc_method"],
        )
        .expect("valid metric");
        registry.register(Box::new(grpc_handling_seconds.clone())).expect("registered once");
        Self {
            requests_shed,
            requests_in_flight,
            tls_reloads_refused,
            grpc_handled,
            grpc_handling_seconds,
            cache_hits: counter_vec("repairmatch_cache_hits_total", "Find answers served from a cache tier", "tier"),
            cache_misses: counter_vec(
                "repairmatch_cache_misses_total",
                "Find lookups a cache tier could not answer",
                "tier",
            ),
            find_computed,
            find_pages_ahead,
            config_reloads_refused,
            config_reload_attempts,
            store_errors,
            feed_reloads,
            rate_limited,
            rate_limit_fallbacks,
            feed_applied_version: gauge(
                "repairmatch_feed_applied_version",
                "Last catalog version applied from the shared store's change feed",
            ),
            feed_lag_versions: gauge(
                "repairmatch_feed_lag_versions",
                "Catalog versions this replica was behind the change feed at its last read (0 when current)",
            ),
            feed_seconds_since_current: gauge(
                "repairmatch_feed_lag_seconds",
                "Seconds since the change feed last confirmed this replica was current (0 on the embedded store)",
            ),
            config_version: gauge("repairmatch_config_version", "Version of the config in force"),
            config_in_force: gauge(
                "repairmatch_config_file_in_force",
                "1 when the config file on disk is the one in force, 0 when its last reload was refused",
            ),
            catalog_version: gauge("repairmatch_catalog_version", "Catalog version served"),
            catalog_centers: gauge("repairmatch_catalog_centers", "Repair centers in the served catalog"),
            catalog_delta: gauge(
                "repairmatch_catalog_delta_centers",
                "Changes held in the snapshot's delta layer since the last compaction",
            ),
            registry,
        }
    }
}

impl MetricSet {
    /// One answered gRPC call.
    pub fn record_call(&self, service: &str, method: &str, code: tonic::Code, took: std::time::Duration) {
        self.grpc_handled.with_label_values(&[service, method, code_name(code)]).inc();
        self.grpc_handling_seconds.with_label_values(&[service, method]).observe(took.as_secs_f64());
    }

    /// The text exposition, with gauges read from `app` now.
    pub fn render(&self, app: &App) -> String {
        self.config_version.set(app.config().version as i64);
        self.config_in_force.set(i64::from(*app.config_status().borrow() == ConfigStatus::Current));
        let (applied, since_current, _) = app.feed_state();
        self.feed_applied_version.set(applied as i64);
        self.feed_seconds_since_current.set(if app.follows_a_feed() { since_current.as_secs() as i64 } else { 0 });
        let catalog = app.catalog();
        self.catalog_version.set(catalog.version() as i64);
        self.catalog_centers.set(catalog.len() as i64);
        self.catalog_delta.set(catalog.delta_len() as i64);
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text).expect("text encoding");
        String::from_utf8(text).expect("utf-8 exposition")
    }
}

async fn scrape(State(app): State<App>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics().render(&app))
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().route("/metrics", get(scrape)).with_state(app);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// A status code as gRPC's own spelling (`OK`, `RESOURCE_EXHAUSTED`, …).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
