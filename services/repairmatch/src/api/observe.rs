//! Per-method call counts and handling times for every gRPC service on the
//! port, under the names Prometheus' gRPC instrumentation made common
//! (`grpc_server_handled_total`, `grpc_server_handling_seconds`), so existing
//! dashboards and the alert rules work on them unchanged.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// Wraps a service in [`Observe`].
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Metrics,
}

impl ObserveLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, metrics: self.metrics.clone() }
    }
}

/// Times each call from its arrival until its handler answered, and counts
/// it by status code.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Metrics,
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
        let metrics = self.metrics.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let code = code_of(&response);
            // A path nobody serves is answered UNIMPLEMENTED: label it as one
            // series, so callers cannot mint new ones at will.
            let (service, method) = match &path {
                Some(path) if code != tonic::Code::Unimplemented => service_and_method(path.path()),
                _ => ("unknown", "unknown"),
            };
            metrics.record_call(service, method, code, started.elapsed());
            Ok(response)
        })
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
    fn the_code_is_read_from_trailers_only_answers_and_ok_otherwise() {
        let refused = http::Response::builder().header("grpc-status", "8").body(()).unwrap();
        assert_eq!(code_of(&refused), tonic::Code::ResourceExhausted);
        assert_eq!(code_of(&http::Response::new(())), tonic::Code::Ok);
    }
}
