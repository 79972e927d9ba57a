//! The gRPC adapters: thin tonic services that convert, delegate to the
//! [`App`], and map errors. No matching or permission rule lives here.
//!
//! - [`find`]: the `RepairMatchService` adapter.
//! - [`catalog`]: the `CatalogService` adapter.
//! - [`observe`]: per-method call counts and handling times, for every service.
//!
//! [`Authenticate`] wraps both: it finds the caller from the
//! `authorization` metadata and refuses a call its method does not allow,
//! or one over its tenant's rate limit, before the request body is read, so
//! an unauthenticated or throttled caller cannot make the server decode a
//! 16 MB message.

pub mod catalog;
pub mod find;
pub mod framed;
pub mod observe;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use crate::app::{App, LiveConfig, queries};
use crate::auth::Caller;
use crate::error::ServiceError;
use crate::limits::{Limiter, Quota, Verdict};

/// The caller [`Authenticate`] found.
pub fn caller_of<T>(request: &tonic::Request<T>) -> Caller {
    request.extensions().get::<Caller>().cloned().unwrap_or(Caller::Anonymous)
}

/// Runs a catalog write (store writes fsync) off the async threads, on the
/// threads that yield to Finds ([`crate::app::in_write_pool`]).
pub async fn catalog_write<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(|| crate::app::in_write_pool(work)).await {
        Ok(result) => result.map_err(Status::from),
        Err(join_error) => Err(ServiceError::Internal(format!("a catalog write failed: {join_error}")).into()),
    }
}

/// What a method needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Any tenant, or anyone when anonymous Find is allowed.
    Read,
    /// Any tenant.
    Tenant,
    /// A tenant that may write the catalog.
    Write,
}

fn access_of(path: &str) -> Access {
    match path.rsplit('/').next().unwrap_or_default() {
        "UpsertRepairCenters" | "DeleteRepairCenter" | "ImportRepairCenters" | "UpsertBrand" => Access::Write,
        "ListRepairCenters" => Access::Tenant,
        _ => Access::Read,
    }
}

/// Authenticates each call from its metadata alone and checks its tenant's
/// rate limit, then hands it on with the [`Caller`] in its extensions.
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    app: App,
    limiter: Arc<Limiter>,
}

impl<S> Authenticate<S> {
    /// Guards `inner` with the tenants of `app`'s config in force and their
    /// rate limits, checked by `limiter`.
    pub fn new(app: App, limiter: Arc<Limiter>, inner: S) -> Self {
        Self { inner, app, limiter }
    }

    fn caller(&self, live: &LiveConfig, request: &http::Request<Body>) -> Result<Caller, ServiceError> {
        let header = match request.headers().get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                ServiceError::Unauthenticated("the authorization header must be 'Bearer <key>'".into())
            })?),
        };
        let caller = live.keyring.authenticate(header).map_err(|e| ServiceError::Unauthenticated(e.to_string()))?;
        match access_of(request.uri().path()) {
            Access::Read => queries::authorize_read(live, &caller)?,
            Access::Tenant if matches!(caller, Caller::Anonymous) => {
                return Err(ServiceError::Unauthenticated("this call needs an API key".into()));
            }
            Access::Tenant => {}
            Access::Write => {
                App::writing_tenant(&caller)?;
            }
        }
        Ok(caller)
    }
}

impl<S: NamedService> NamedService for Authenticate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Authenticate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let live = self.app.config();
        let caller = match self.caller(&live, &request) {
            Ok(caller) => caller,
            Err(refusal) => return Box::pin(std::future::ready(Ok(Status::from(refusal).into_http()))),
        };
        // Anonymous callers (a demo setting) are not limited.
        let limited = match &caller {
            Caller::Tenant(tenant) => {
                // The call's span (see `observe`) names the tenant in logs
                // and traces; the key never leaves this layer.
                tracing::Span::current().record("tenant", tenant.name.as_str());
                Quota::of(&live.config, &tenant.name).map(|quota| (tenant.name.clone(), quota))
            }
            Caller::Anonymous => None,
        };
        request.extensions_mut().insert(caller);
        let Some((tenant, quota)) = limited else {
            return Box::pin(self.inner.call(request));
        };
        // `inner` was made ready for this call, which now waits on the
        // limiter: take it along, and leave a fresh clone for the next call.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let limiter = Arc::clone(&self.limiter);
        Box::pin(async move {
            match limiter.check(&tenant, quota).await {
                Verdict::Allowed => inner.call(request).await,
                Verdict::Refused { retry_after } => {
                    Ok(Status::from(ServiceError::RateLimited { tenant, retry_after }).into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_need_a_writer_listings_a_tenant_and_reads_follow_the_config() {
        assert_eq!(access_of("/repairmatch.v1.CatalogService/UpsertRepairCenters"), Access::Write);
        assert_eq!(access_of("/repairmatch.v1.CatalogService/ImportRepairCenters"), Access::Write);
        assert_eq!(access_of("/repairmatch.v1.CatalogService/DeleteRepairCenter"), Access::Write);
        assert_eq!(access_of("/repairmatch.v1.CatalogService/UpsertBrand"), Access::Write);
        assert_eq!(access_of("/repairmatch.v1.CatalogService/ListRepairCenters"), Access::Tenant);
        assert_eq!(access_of("/repairmatch.v1.RepairMatchService/FindRepairCenter"), Access::Read);
        assert_eq!(access_of("/repairmatch.v1.CatalogService/ListBrands"), Access::Read);
    }
}
