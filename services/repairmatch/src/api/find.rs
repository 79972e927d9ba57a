//! The tonic adapter for `RepairMatchService`: hand the request to the app,
//! hand back its answer.

use chrono::Utc;
use repairmatch_core::i18n::Language;
use repairmatch_proto::EncodedFindRepairCenterResponse;
use repairmatch_proto::encoded::repair_match_service_server::RepairMatchService;
use repairmatch_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::caller_of;
use super::framed::FramedAnswer;
use crate::app::App;
use crate::convert;
use crate::error::ServiceError;

/// `repairmatch.v1.RepairMatchService` over an [`App`].
#[derive(Debug, Clone)]
pub struct RepairMatchGrpc {
    app: App,
}

impl RepairMatchGrpc {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl RepairMatchService for RepairMatchGrpc {
    async fn find_repair_center(
        &self,
        request: Request<pb::FindRepairCenterRequest>,
    ) -> Result<Response<EncodedFindRepairCenterResponse>, Status> {
        let caller = caller_of(&request);
        // The language that the answer's text is in, its errors' too.
        let language = Language::negotiate(&request.get_ref().language_code);
        let answer =
            self.app.find(&caller, request.get_ref(), Utc::now()).await.map_err(|error| error.into_status(language))?;
        let mut response = Response::new(EncodedFindRepairCenterResponse::new(answer.encoded.clone()));
        // Sent as the frame it is, not copied by tonic: see `api::framed`.
        response.extensions_mut().insert(FramedAnswer(answer.frame.clone()));
        Ok(response)
    }

    async fn get_repair_center(
        &self,
        request: Request<pb::GetRepairCenterRequest>,
    ) -> Result<Response<pb::GetRepairCenterResponse>, Status> {
        let caller = caller_of(&request);
        let id = &request.get_ref().id;
        if id.is_empty() || id.len() > convert::MAX_ID_CHARS {
            return Err(
                ServiceError::invalid("id", format!("must be 1 to {} characters", convert::MAX_ID_CHARS)).into()
            );
        }
        let center = self.app.repair_center(&caller, id)?;
        Ok(Response::new(pb::GetRepairCenterResponse { repair_center: Some(convert::center_to_proto(&center)) }))
    }
}
