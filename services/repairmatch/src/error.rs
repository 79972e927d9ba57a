//! The service's error type and its one mapping to gRPC statuses.
//!
//! Every status carries an `ErrorInfo` with a stable reason in the
//! `repairmatch.v1` domain; validation failures also carry a `BadRequest`
//! naming each bad field (AIP-193); a call over its tenant's rate limit also
//! carries a `RetryInfo` saying when the next one would be allowed.
//!
//! `Status.message` is always English: clients match on it and logs keep it.
//! A request that asked for another language (a Find's `language_code`) also
//! gets a `LocalizedMessage` in that language, as Google APIs localize errors;
//! it says what is wrong, field by field, in words a bank app can show.

use std::collections::HashMap;
use std::time::Duration;

use repairmatch_core::i18n::{Arg, Language, ListStyle, Text};
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
    InvalidArgument(Vec<Violation>),
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
    /// The tenant may not rank with this profile.
    #[error("tenant {tenant} may not use ranking profile {profile:?}")]
    ProfileNotAllowed {
        /// The tenant.
        tenant: String,
        /// The profile it asked for.
        profile: String,
    },
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

/// A bad field: the English description the `BadRequest` carries and, for
/// what a Find's caller sent, the same in any language. (Catalog calls name
/// no language: their checks are English only.)
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The field's path (`location.latitude`).
    pub field: String,
    /// What is wrong, in English.
    pub description: String,
    /// What is wrong, in no language yet.
    pub text: Option<Text>,
}

impl Violation {
    /// A bad field and what is wrong with it.
    pub fn new(field: impl Into<String>, text: Text) -> Self {
        Self { field: field.into(), description: text.english(), text: Some(text) }
    }

    /// As a `BadRequest` lists it.
    pub fn to_field_violation(&self) -> FieldViolation {
        FieldViolation::new(self.field.clone(), self.description.clone())
    }

    /// "field: what is wrong", in no language yet.
    fn item(&self) -> Text {
        let description = match &self.text {
            Some(text) => Arg::from(text.clone()),
            None => Arg::from(self.description.as_str()),
        };
        Text::new("violation-item").with("field", self.field.as_str()).with("description", description)
    }
}

impl From<FieldViolation> for Violation {
    fn from(violation: FieldViolation) -> Self {
        Self { field: violation.field, description: violation.description, text: None }
    }
}

fn summarize(violations: &[Violation]) -> String {
    let fields: Vec<String> = violations.iter().map(|v| format!("{}: {}", v.field, v.description)).take(5).collect();
    let more = violations.len().saturating_sub(5);
    if more > 0 { format!("{} (and {more} more)", fields.join("; ")) } else { fields.join("; ") }
}

impl ServiceError {
    /// A single bad field, said in English only.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description).into()])
    }

    /// A single bad field of a request that may name its language.
    pub fn invalid_text(field: impl Into<String>, text: Text) -> Self {
        Self::InvalidArgument(vec![Violation::new(field, text)])
    }

    /// Bad fields of a catalog message (English only).
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations.into_iter().map(Violation::from).collect())
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
            ServiceError::ProfileNotAllowed { tenant, profile } => {
                ServiceError::ProfileNotAllowed { tenant: tenant.clone(), profile: profile.clone() }
            }
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
            ServiceError::PermissionDenied(_) | ServiceError::ProfileNotAllowed { .. } => {
                (Code::PermissionDenied, "PERMISSION_DENIED")
            }
            ServiceError::Aborted(_) => (Code::Aborted, "STALE_ETAG"),
            ServiceError::RateLimited { .. } => (Code::ResourceExhausted, "RATE_LIMITED"),
            ServiceError::Storage(error) if error.is_unavailable() => (Code::Unavailable, "STORE_UNAVAILABLE"),
            ServiceError::Storage(_) => (Code::Internal, "STORAGE_FAILURE"),
            ServiceError::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }

    /// What went wrong, for people, in no language yet: what the
    /// `LocalizedMessage` says. Internal details stay out, as they do of
    /// `Status.message`.
    pub fn text(&self) -> Text {
        match self {
            ServiceError::InvalidArgument(violations) => {
                // A catalog check has no translation (catalog calls name no
                // language): its English is still better than no word on it.
                let items = violations.iter().map(Violation::item);
                Text::new("error-invalid-argument").with("violations", Arg::list(items, ListStyle::Clauses))
            }
            ServiceError::RepairCenterNotFound(id) => {
                Text::new("error-repair-center-not-found").with("id", format!("{id:?}"))
            }
            ServiceError::BrandNotFound(name) => Text::new("error-brand-not-found").with("name", format!("{name:?}")),
            ServiceError::Unauthenticated(_) => Text::new("error-unauthenticated"),
            ServiceError::PermissionDenied(_) => Text::new("error-permission-denied"),
            ServiceError::ProfileNotAllowed { tenant, profile } => Text::new("error-profile-not-allowed")
                .with("tenant", tenant.as_str())
                .with("profile", format!("{profile:?}")),
            ServiceError::Aborted(_) => Text::new("error-stale-etag"),
            ServiceError::RateLimited { tenant, retry_after } => Text::new("error-rate-limited")
                .with("tenant", format!("{tenant:?}"))
                .with("retry_ms", Arg::Count(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX))),
            ServiceError::Storage(store) if store.is_unavailable() => Text::new("error-store-unavailable"),
            ServiceError::Storage(_) => Text::new("error-storage"),
            ServiceError::Internal(_) => Text::new("error-internal"),
        }
    }

    /// The status for a caller who reads `language`: English throughout,
    /// and a `LocalizedMessage` when that is another language.
    pub fn into_status(self, language: Language) -> Status {
        let error = self;
        let (code, reason) = error.code_and_reason();
        let mut details = ErrorDetails::new();
        if language != Language::English {
            details.set_localized_message(language.tag(), error.text().render(language));
        }
        let mut metadata = HashMap::new();
        match &error {
            ServiceError::InvalidArgument(violations) => {
                details.set_bad_request(violations.iter().map(Violation::to_field_violation).collect::<Vec<_>>());
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
            | ServiceError::ProfileNotAllowed { .. }
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

/// The status for a call that names no language: English only.
impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        error.into_status(Language::English)
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
