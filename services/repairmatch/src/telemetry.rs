//! Where logs and traces go: `tracing` events to stderr as text or JSON
//! (`[log]`), and, when `tracing.otlp_endpoint` is set, a span per call
//! exported over OTLP/gRPC with W3C trace-context propagation (`[tracing]`).
//! `RUST_LOG` filters both (default `info`).

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::config::{LogConfig, LogFormat, TracingConfig};

/// Keeps trace export running; dropping it flushes the spans not yet sent.
#[derive(Debug)]
#[must_use = "dropping it stops trace export"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (and callers' `traceparent` followed).
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("repairmatch: flushing traces: {error}");
        }
    }
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Text logs to stderr: for the one-shot commands (`import`, `explain`, …).
pub fn init_text() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Logs (to `stderr`, from [`queued_stderr`]) and traces for `serve`, as
/// configured. Call inside the Tokio runtime: the OTLP exporter's channel
/// lives on it.
pub fn init(log: &LogConfig, traces: &TracingConfig, stderr: NonBlocking) -> anyhow::Result<Telemetry> {
    let format = match log.format {
        LogFormat::Text => fmt::layer().with_writer(stderr).with_ansi(std::io::stderr().is_terminal()).boxed(),
        // One object a line: the event's fields at the top level, with the
        // call's span (request id, method, tenant) beside them.
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(stderr)
            .boxed(),
    };
    let provider = match &traces.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint, traces)?),
        None => None,
    };
    let export =
        provider.as_ref().map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("repairmatch")));
    tracing_subscriber::registry().with(filter()).with(format).with(export).try_init()?;
    if let Some(endpoint) = &traces.otlp_endpoint {
        tracing::info!(%endpoint, sample_ratio = traces.sample_ratio, "exporting traces over OTLP");
    }
    Ok(Telemetry { traces: provider })
}

/// Stderr written by a thread of its own, a batch of lines per `write(2)`:
/// a 1,000-center write logs an audit line per center, and a system call for
/// each on the writing thread was a third of the write. Not lossy: with the
/// queue full, a thread that logs waits for it. What is still queued when
/// the process is killed is lost (about a second of a bulk import's audit
/// lines at most), so keep the guard until nothing else can log: dropping it
/// writes the queue out.
pub fn queued_stderr() -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(16_384)
        .thread_name("repairmatch-log")
        .finish(std::io::BufWriter::new(std::io::stderr()))
}

fn tracer_provider(endpoint: &str, traces: &TracingConfig) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // A caller that sampled its trace gets ours in it; new traces are
        // sampled at the configured ratio.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(traces.sample_ratio))))
        .with_resource(Resource::builder().with_service_name(traces.service_name.clone()).build())
        .build())
}
