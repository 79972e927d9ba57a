//! The tonic adapter for `CatalogService`: convert, delegate to the app on
//! the write's threads (writes fsync; see [`catalog_write`]), convert back.

use rayon::prelude::*;
use repairmatch_proto::EncodedUpsertRepairCentersRequest;
use repairmatch_proto::encoded::catalog_service_server::CatalogService;
use repairmatch_proto::v1 as pb;
use tonic::{Request, Response, Status, Streaming};

use super::{caller_of, catalog_write};
use crate::app::{App, CheckedItem, ItemOutcome, ListFilter};
use crate::auth::Caller;
use crate::convert::catalog::{item_result_to_proto, kind_filter, violations_to_proto};
use crate::convert::{self, Limits};
use crate::error::ServiceError;
use crate::list_token;

/// Largest batch of `UpsertRepairCenters`, and of an import's commits.
pub const MAX_BATCH: usize = 1_000;
/// An import publishes what it committed every this many items, and at the end.
const IMPORT_PUBLISH_EVERY: usize = 20_000;
/// Most refused items an import summary lists.
const MAX_IMPORT_PROBLEMS: usize = 1_000;

/// `repairmatch.v1.CatalogService` over an [`App`].
#[derive(Debug, Clone)]
pub struct CatalogGrpc {
    app: App,
}

impl CatalogGrpc {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

/// Converts and validates a batch on every core (on the write's threads: a
/// thousand centers is milliseconds of work).
fn check_items(centers: Vec<pb::RepairCenter>, first_position: usize, prefix: &str) -> Vec<CheckedItem> {
    centers
        .into_par_iter()
        .enumerate()
        .map(|(i, center)| {
            let path = format!("{prefix}[{}]", first_position + i);
            let id = center.id.clone();
            let checked = convert::center_from_proto(center, &path, Limits::Api);
            (path, id, checked)
        })
        .collect()
}

#[tonic::async_trait]
impl CatalogService for CatalogGrpc {
    async fn upsert_repair_centers(
        &self,
        request: Request<EncodedUpsertRepairCentersRequest>,
    ) -> Result<Response<pb::UpsertRepairCentersResponse>, Status> {
        let caller = caller_of(&request);
        let tenant = App::writing_tenant(&caller)?.clone();
        let encoded = request.into_inner();
        let app = self.app.clone();
        let written = catalog_write(move || {
            // Decoded here, on the write's threads (see `EncodedUpsertRepairCentersRequest`),
            // so a batch refused for its bytes or its size waits its turn like any write.
            let centers = match encoded.decode_message() {
                Ok(request) => request.centers,
                // As the stubs' codec answers bytes that are no request.
                Err(error) => return Ok(Err(Status::internal(error.to_string()))),
            };
            if centers.is_empty() || centers.len() > MAX_BATCH {
                return Err(ServiceError::invalid("centers", format!("send 1 to {MAX_BATCH} centers")));
            }
            app.upsert_centers(&tenant, check_items(centers, 0, "centers")).map(Ok)
        })
        .await?;
        let (results, catalog_version) = written?;
        let results = results.iter().map(item_result_to_proto).collect();
        Ok(Response::new(pb::UpsertRepairCentersResponse { results, catalog_version }))
    }

    async fn delete_repair_center(
        &self,
        request: Request<pb::DeleteRepairCenterRequest>,
    ) -> Result<Response<pb::DeleteRepairCenterResponse>, Status> {
        let caller = caller_of(&request);
        let tenant = App::writing_tenant(&caller)?.clone();
        let pb::DeleteRepairCenterRequest { id, etag } = request.into_inner();
        if id.is_empty() || id.len() > convert::MAX_ID_CHARS {
            return Err(
                ServiceError::invalid("id", format!("must be 1 to {} characters", convert::MAX_ID_CHARS)).into()
            );
        }
        let app = self.app.clone();
        let catalog_version = catalog_write(move || app.delete_center(&tenant, &id, &etag)).await?;
        Ok(Response::new(pb::DeleteRepairCenterResponse { catalog_version }))
    }

    async fn list_repair_centers(
        &self,
        request: Request<pb::ListRepairCentersRequest>,
    ) -> Result<Response<pb::ListRepairCentersResponse>, Status> {
        let caller = caller_of(&request);
        let Caller::Tenant(tenant) = caller else {
            return Err(ServiceError::Unauthenticated("listing the catalog needs an API key".into()).into());
        };
        let request = request.into_inner();
        let kind = kind_filter(request.kind)?;
        let filter = ListFilter {
            brand: Some(request.brand.clone()).filter(|b| !b.is_empty()),
            owner: Some(request.owner.clone()).filter(|o| !o.is_empty()),
            kind,
        };
        let limit = list_token::page_size(request.page_size, 50, 1_000)?;
        let scope = format!("centers|{}|{:?}|{:?}|{:?}", tenant.name, filter.brand, filter.owner, filter.kind);
        let after = list_token::resume_after(&request.page_token, &scope)?;
        let (page, more) = self.app.list_centers(&tenant, &filter, after.as_deref(), limit)?;
        let next_page_token = list_token::next(&scope, more, page.last().map(|last| last.id.as_str()));
        let repair_centers = page.iter().map(|c| convert::center_to_proto(c)).collect();
        Ok(Response::new(pb::ListRepairCentersResponse { repair_centers, next_page_token }))
    }

    async fn import_repair_centers(
        &self,
        request: Request<Streaming<pb::ImportRepairCentersRequest>>,
    ) -> Result<Response<pb::ImportRepairCentersResponse>, Status> {
        let caller = caller_of(&request);
        let tenant = App::writing_tenant(&caller)?.clone();
        let mut stream = request.into_inner();
        let mut summary = pb::ImportRepairCentersResponse::default();
        let mut batch: Vec<pb::RepairCenter> = Vec::with_capacity(MAX_BATCH);
        let mut since_publish = 0;
        loop {
            let next = match stream.message().await {
                Ok(next) => next,
                Err(status) => {
                    // What was committed stays committed: publish it before
                    // reporting the broken stream, so reads match the store.
                    let app = self.app.clone();
                    catalog_write(move || Ok(app.finish_import())).await?;
                    return Err(status);
                }
            };
            let done = next.is_none();
            if let Some(item) = next {
                batch.push(item.repair_center.unwrap_or_default());
                summary.received += 1;
            }
            if batch.len() == MAX_BATCH || (done && !batch.is_empty()) {
                let first_position = summary.received as usize - batch.len();
                let centers = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
                since_publish += centers.len();
                let publish = since_publish >= IMPORT_PUBLISH_EVERY;
                if publish {
                    since_publish = 0;
                }
                let (app, tenant) = (self.app.clone(), tenant.clone());
                let (results, version) = catalog_write(move || {
                    app.import_batch(&tenant, check_items(centers, first_position, "items"), publish)
                })
                .await?;
                summary.catalog_version = version;
                for (offset, result) in results.iter().enumerate() {
                    if result.outcome == ItemOutcome::Ok {
                        summary.imported += 1;
                        continue;
                    }
                    summary.rejected += 1;
                    if summary.problems.len() < MAX_IMPORT_PROBLEMS {
                        summary.problems.push(pb::ImportProblem {
                            position: (first_position + offset) as i64,
                            id: result.id.clone(),
                            outcome: result.outcome.to_proto(),
                            field_violations: violations_to_proto(&result.violations),
                            message: result.message.clone(),
                        });
                    }
                }
            }
            if done {
                break;
            }
        }
        let app = self.app.clone();
        summary.catalog_version = catalog_write(move || Ok(app.finish_import())).await?;
        Ok(Response::new(summary))
    }

    async fn upsert_brand(
        &self,
        request: Request<pb::UpsertBrandRequest>,
    ) -> Result<Response<pb::UpsertBrandResponse>, Status> {
        let caller = caller_of(&request);
        let tenant = App::writing_tenant(&caller)?.clone();
        let Some(brand) = request.into_inner().brand else {
            return Err(ServiceError::invalid("brand", "is required").into());
        };
        let brand = convert::brand_from_proto(&brand, "brand", Limits::Api).map_err(ServiceError::invalid_fields)?;
        let app = self.app.clone();
        let brand = catalog_write(move || app.upsert_brand(&tenant, brand)).await?;
        Ok(Response::new(pb::UpsertBrandResponse { brand: Some(convert::brand_to_proto(&brand)) }))
    }

    async fn get_brand(&self, request: Request<pb::GetBrandRequest>) -> Result<Response<pb::GetBrandResponse>, Status> {
        let caller = caller_of(&request);
        let name = &request.get_ref().name;
        if name.trim().is_empty() || name.chars().count() > convert::MAX_NAME_KEY_CHARS {
            return Err(ServiceError::invalid("name", "must be 1 to 64 characters").into());
        }
        let brand = self.app.brand(&caller, name)?;
        Ok(Response::new(pb::GetBrandResponse { brand: Some(convert::brand_to_proto(&brand)) }))
    }

    async fn list_brands(
        &self,
        request: Request<pb::ListBrandsRequest>,
    ) -> Result<Response<pb::ListBrandsResponse>, Status> {
        let caller = caller_of(&request);
        let request = request.into_inner();
        let limit = list_token::page_size(request.page_size, 50, 1_000)?;
        let after = list_token::resume_after(&request.page_token, "brands")?;
        let (brands, more) = self.app.brands(&caller, after.as_deref(), limit)?;
        let last = brands.last().map(|last| repairmatch_core::model::match_key(&last.name));
        let next_page_token = list_token::next("brands", more, last.as_deref());
        Ok(Response::new(pb::ListBrandsResponse {
            brands: brands.iter().map(convert::brand_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_banks(
        &self,
        request: Request<pb::ListBanksRequest>,
    ) -> Result<Response<pb::ListBanksResponse>, Status> {
        let caller = caller_of(&request);
        let request = request.into_inner();
        let limit = list_token::page_size(request.page_size, 50, 1_000)?;
        let after = list_token::resume_after(&request.page_token, "banks")?;
        let (banks, more) = self.app.banks(&caller, after.as_deref(), limit)?;
        let next_page_token = list_token::next("banks", more, banks.last().map(|last| last.id.as_str()));
        Ok(Response::new(pb::ListBanksResponse {
            banks: banks.iter().map(convert::bank_to_proto).collect(),
            next_page_token,
        }))
    }
}
