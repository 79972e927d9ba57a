//! What every call on the gRPC port leaves behind: per-method counts and
//! handling times under the names Prometheus' gRPC instrumentation made
//! common (`grpc_server_handled_total`, `grpc_server_handling_seconds`), so
//! existing dashboards and the alert rules work on them unchanged; a request
//! id (the caller's `x-request-id`, or a fresh one), echoed in the answer; a
//! `grpc` span carrying it, the method and the tenant (never the key), the
//! parent of an OTLP trace when the caller sent a W3C `traceparent`; and,
//! with `log.access`, one access line per call with its code and latency.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::Metrics;

/// The header a call's id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a caller; a longer one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Wraps a service in [`Observe`].
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Metrics,
    access_log: bool,
    trace_parents: bool,
}

impl ObserveLayer {
    /// Records into `metrics`; logs a line per call when `access_log`; takes
    /// callers' `traceparent` as the span's parent when `trace_parents`
    /// (spans are exported).
    pub fn new(metrics: Metrics, access_log: bool, trace_parents: bool) -> Self {
        Self { metrics, access_log, trace_parents }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, layer: self.clone() }
    }
}

/// Times each call from its arrival until its handler answered, counts it by
/// status code, and gives it an id and a span.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

/// The caller's request id when it is one we can log and echo safely
/// (visible ASCII, not too long), else a fresh random one.
fn request_id_of(headers: &http::HeaderMap) -> http::HeaderValue {
    headers
        .get(REQUEST_ID_HEADER)
        .filter(|id| !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.as_bytes().iter().all(u8::is_ascii_graphic))
        .cloned()
        .unwrap_or_else(fresh_request_id)
}

/// 128 random bits in 32 lowercase hex digits, written without the
/// formatting machinery (every call without an id of its own makes one).
fn fresh_request_id() -> http::HeaderValue {
    let random = fastrand::u128(..);
    let digits: [u8; 32] = std::array::from_fn(|i| b"0123456789abcdef"[(random >> (124 - 4 * i)) as usize & 0xf]);
    http::HeaderValue::from_bytes(&digits).expect("hex digits are a valid header value")
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The service and method of a gRPC path (`/package.Service/Method`).
fn service_and_method(path: &str) -> (&str, &str) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// The code an answer's headers carry: errors from unary handlers come as
/// trailers-only responses, whose status is in the headers; an answer with a
/// body carries it in the trailers, and unary answers with a body are OK.
fn code_of<B>(response: &http::Response<B>) -> tonic::Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

impl<S, B, R> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        // A shared handle on the request's path bytes, not a copy.
        let path = request.uri().path_and_query().cloned();
        let request_id = request_id_of(request.headers());
        let method = path.as_ref().map_or("", |path| path.path());
        let span = tracing::info_span!(
            target: "repairmatch::access",
            "grpc",
            request_id = request_id.to_str().unwrap_or_default(),
            method,
            // Filled in by authentication: the tenant's name, never its key.
            tenant = tracing::field::Empty,
            // Filled in below when spans are exported, and only then: the
            // log formats every field of every call's span, read or not.
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
        );
        if self.layer.trace_parents {
            // The exported span's name and kind, as OpenTelemetry's RPC
            // conventions have them: `package.Service/Method`, server side.
            span.record("otel.name", method.trim_start_matches('/'));
            span.record("otel.kind", "server");
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&HeaderExtractor(request.headers()))
            });
            let _ = span.set_parent(parent);
        }
        let layer = self.layer.clone();
        // Entered while the inner services take the request, so what they
        // record (the tenant) lands on this call's span.
        let answer = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut response = answer.await?;
                let code = code_of(&response);
                let took = started.elapsed();
                // A path nobody serves is answered UNIMPLEMENTED: label it as
                // one series, so callers cannot mint new ones at will.
                let (service, method) = match &path {
                    Some(path) if code != tonic::Code::Unimplemented => service_and_method(path.path()),
                    _ => ("unknown", "unknown"),
                };
                layer.metrics.record_call(service, method, code, took);
                if layer.access_log {
                    tracing::info!(
                        target: "repairmatch::access",
                        code = crate::metrics::code_name(code),
                        latency_ms = took.as_secs_f64() * 1e3,
                        "call"
                    );
                }
                response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            service_and_method("/repairmatch.v1.RepairMatchService/FindRepairCenter"),
            ("repairmatch.v1.RepairMatchService", "FindRepairCenter")
        );
        assert_eq!(service_and_method("/"), ("", ""));
    }

    #[test]
    fn a_callers_request_id_is_kept_when_safe_and_replaced_otherwise() {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, http::HeaderValue::from_static("bank-app-7f3a"));
        assert_eq!(request_id_of(&headers), "bank-app-7f3a");
        for unsafe_id in ["", "has space", &"x".repeat(MAX_REQUEST_ID_LEN + 1)] {
            headers.insert(REQUEST_ID_HEADER, http::HeaderValue::from_str(unsafe_id).unwrap());
            let replaced = request_id_of(&headers);
            assert_ne!(replaced, unsafe_id);
            assert_eq!(replaced.len(), 32, "a fresh 128-bit id in hex");
        }
        headers.remove(REQUEST_ID_HEADER);
        assert_ne!(request_id_of(&headers), request_id_of(&headers), "fresh ids differ");
    }

    #[test]
    fn a_fresh_request_id_is_its_128_random_bits_in_hex() {
        for seed in [0, 7, u64::MAX] {
            fastrand::seed(seed);
            let expected = format!("{:032x}", fastrand::u128(..));
            fastrand::seed(seed);
            assert_eq!(fresh_request_id(), expected.as_str());
        }
    }

    #[test]
    fn the_code_is_read_from_trailers_only_answers_and_ok_otherwise() {
        let refused = http::Response::builder().header("grpc-status", "8").body(()).unwrap();
        assert_eq!(code_of(&refused), tonic::Code::ResourceExhausted);
        assert_eq!(code_of(&http::Response::new(())), tonic::Code::Ok);
    }
}
