//! The service's error type and its one mapping to gRPC statuses.
//!
//! Every status carries an `ErrorInfo` with a stable reason in the
//! `repairmatch.v1` domain; validation failures also carry a `BadRequest`
//! naming each bad field (AIP-193); a call over its tenant's rate limit also
//! carries a `RetryInfo` saying when the next one would be allowed.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::store::StoreError;

/// The error domain of every `ErrorInfo`.
pub const ERROR_DOMAIN: &str = "repairmatch.v1";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// One or more fields are bad.
    #[error("invalid argument: {}", summarize(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No repair center has the id.
    #[error("repair center {0:?} not found")]
    RepairCenterNotFound(String),
    /// No brand has the name.
    #[error("brand {0:?} not found")]
    BrandNotFound(String),
    /// No key, or a bad one.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A stale etag.
    #[error("{0}")]
    Aborted(String),
    /// The tenant is over its rate limit.
    #[error("tenant {tenant:?} is over its rate limit; retry in {} ms", .retry_after.as_millis())]
    RateLimited {
        /// The tenant.
        tenant: String,
        /// When its next call would be allowed, from now.
        retry_after: Duration,
    },
    /// The store failed.
    #[error("storage failure")]
    Storage(#[from] StoreError),
    /// A bug: a task panicked, an invariant broke.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summarize(violations: &[FieldViolation]) -> String {
    let fields: Vec<String> = violations.iter().map(|v| format!("{}: {}", v.field, v.description)).take(5).collect();
    let more = violations.len().saturating_sub(5);
    if more > 0 { format!("{} (and {more} more)", fields.join("; ")) } else { fields.join("; ") }
}

impl ServiceError {
    /// A single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// An equivalent error, for each caller that waited on one failed
    /// computation (a store error itself cannot be cloned).
    pub fn duplicate(&self) -> Self {
        match self {
            ServiceError::InvalidArgument(violations) => ServiceError::InvalidArgument(violations.clone()),
            ServiceError::RepairCenterNotFound(id) => ServiceError::RepairCenterNotFound(id.clone()),
            ServiceError::BrandNotFound(name) => ServiceError::BrandNotFound(name.clone()),
            ServiceError::Unauthenticated(why) => ServiceError::Unauthenticated(why.clone()),
            ServiceError::PermissionDenied(why) => ServiceError::PermissionDenied(why.clone()),
            ServiceError::Aborted(why) => ServiceError::Aborted(why.clone()),
            ServiceError::RateLimited { tenant, retry_after } => {
                ServiceError::RateLimited { tenant: tenant.clone(), retry_after: *retry_after }
            }
            ServiceError::Storage(store) if store.is_unavailable() => {
                ServiceError::Storage(StoreError::Unavailable(Chain(store).to_string()))
            }
            ServiceError::Storage(store) => ServiceError::Internal(Chain(store).to_string()),
            ServiceError::Internal(why) => ServiceError::Internal(why.clone()),
        }
    }

    /// The stable `ErrorInfo` reason.
    pub fn reason(&self) -> &'static str {
        self.code_and_reason().1
    }

    fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            ServiceError::InvalidArgument(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            ServiceError::RepairCenterNotFound(_) => (Code::NotFound, "REPAIR_CENTER_NOT_FOUND"),
            ServiceError::BrandNotFound(_) => (Code::NotFound, "BRAND_NOT_FOUND"),
            ServiceError::Unauthenticated(_) => (Code::Unauthenticated, "UNAUTHENTICATED"),
            ServiceError::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
            ServiceError::Aborted(_) => (Code::Aborted, "STALE_ETAG"),
            ServiceError::RateLimited { .. } => (Code::ResourceExhausted, "RATE_LIMITED"),
            ServiceError::Storage(error) if error.is_unavailable() => (Code::Unavailable, "STORE_UNAVAILABLE"),
            ServiceError::Storage(_) => (Code::Internal, "STORAGE_FAILURE"),
            ServiceError::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let (code, reason) = error.code_and_reason();
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::new();
        match &error {
            ServiceError::InvalidArgument(violations) => {
                details.set_bad_request(violations.clone());
            }
            ServiceError::RepairCenterNotFound(id) => {
                metadata.insert("id".to_owned(), id.clone());
            }
            ServiceError::BrandNotFound(name) => {
                metadata.insert("name".to_owned(), name.clone());
            }
            ServiceError::RateLimited { tenant, retry_after } => {
                metadata.insert("tenant".to_owned(), tenant.clone());
                details.set_retry_info(Some(*retry_after));
            }
            ServiceError::Unauthenticated(_)
            | ServiceError::PermissionDenied(_)
            | ServiceError::Aborted(_)
            | ServiceError::Storage(_)
            | ServiceError::Internal(_) => {}
        }
        details.set_error_info(reason, ERROR_DOMAIN, metadata);
        let message = match &error {
            // Internal details stay in the logs, not on the wire.
            ServiceError::Storage(store) if store.is_unavailable() => {
                tracing::warn!(error = %Chain(&error), "request failed");
                "the catalog store is unavailable: nothing was written; retry later".to_owned()
            }
            ServiceError::Storage(_) => {
                tracing::error!(error = %Chain(&error), "request failed");
                "internal storage failure".to_owned()
            }
            ServiceError::Internal(_) => {
                tracing::error!(error = %Chain(&error), "request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        Status::with_error_details(code, message, details)
    }
}

/// An error and each of its sources, joined with ": ", for the logs.
struct Chain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn a_rate_limited_call_is_resource_exhausted_with_when_to_retry() {
        let error = ServiceError::RateLimited { tenant: "icbc".into(), retry_after: Duration::from_millis(40) };
        let status = Status::from(error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().expect("an ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("RATE_LIMITED", ERROR_DOMAIN));
        assert_eq!(info.metadata.get("tenant").map(String::as_str), Some("icbc"));
        let retry = status.get_details_retry_info().expect("a RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(40)));
        assert!(status.message().contains("retry in 40 ms"), "{}", status.message());
    }
}
