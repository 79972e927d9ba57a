//! Which calls the process takes on, and for how long: a call over
//! `server.max_concurrent_requests` is shed at once with RESOURCE_EXHAUSTED
//! (a queue in front of a saturated core only turns overload into timeouts
//! for everyone), and a call runs until its deadline, the caller's
//! `grpc-timeout` capped by `server.default_timeout_ms`, then ends with
//! DEADLINE_EXCEEDED.
//!
//! Health checks are neither counted nor shed: a replica that is merely busy
//! must not also fail its probes and be restarted, which would put its load
//! on the others.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// Paths of the health service, which is always admitted.
const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Wraps a service in [`Admission`].
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    slots: Arc<Semaphore>,
    limit: usize,
    max_deadline: Duration,
    metrics: Metrics,
}

impl AdmissionLayer {
    /// At most `limit` calls at once, none longer than `max_deadline`.
    pub fn new(limit: usize, max_deadline: Duration, metrics: Metrics) -> Self {
        Self { slots: Arc::new(Semaphore::new(limit)), limit, max_deadline, metrics }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission { inner, layer: self.clone() }
    }
}

/// Sheds calls past the limit and ends calls at their deadline.
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

/// A call's place among those in flight, given back when the call ends.
struct InFlight {
    _permit: OwnedSemaphorePermit,
    metrics: Metrics,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.requests_in_flight.dec();
    }
}

impl<S, B> Service<http::Request<B>> for Admission<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = deadline_of(request.headers(), self.layer.max_deadline);
        let in_flight = if request.uri().path().starts_with(HEALTH_PATH_PREFIX) {
            None
        } else {
            match Arc::clone(&self.layer.slots).try_acquire_owned() {
                Ok(permit) => {
                    self.layer.metrics.requests_in_flight.inc();
                    Some(InFlight { _permit: permit, metrics: self.layer.metrics.clone() })
                }
                Err(_) => {
                    self.layer.metrics.requests_shed.inc();
                    let status = tonic::Status::resource_exhausted(format!(
                        "this replica has {} calls in flight, its limit; retry with backoff",
                        self.layer.limit
                    ));
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let _in_flight = in_flight;
            match tokio::time::timeout(deadline, answer).await {
                Ok(answer) => answer,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call's deadline ({} ms) passed before it was answered",
                    deadline.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

/// The deadline a call runs under: the caller's `grpc-timeout` when it sent
/// a valid one shorter than `max`, else `max`.
fn deadline_of(headers: &http::HeaderMap, max: Duration) -> Duration {
    headers
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(max, |asked| asked.min(max))
}

/// A `grpc-timeout` value: at most 8 digits and a unit (gRPC over HTTP/2:
/// `H`ours, `M`inutes, `S`econds, `m`illis, `u`micros, `n`anos).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match value.as_bytes()[value.len() - 1] {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_refuse_the_malformed() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "100", "100x", "-5m", "123456789m", "1.5S", "５m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_callers_deadline_wins_only_when_shorter() {
        let max = Duration::from_secs(120);
        let mut headers = http::HeaderMap::new();
        assert_eq!(deadline_of(&headers, max), max, "no deadline sent");
        headers.insert("grpc-timeout", http::HeaderValue::from_static("250m"));
        assert_eq!(deadline_of(&headers, max), Duration::from_millis(250));
        headers.insert("grpc-timeout", http::HeaderValue::from_static("1H"));
        assert_eq!(deadline_of(&headers, max), max, "capped by the server");
        headers.insert("grpc-timeout", http::HeaderValue::from_static("soon"));
        assert_eq!(deadline_of(&headers, max), max, "malformed: the server's cap");
    }
}
