//! The tonic adapter: convert the request, call the app, convert the answer.
//! No rule lives here.

use chrono::Utc;
use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::repair_match_service_server::RepairMatchService;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::catalog_grpc::caller_of;
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
    ) -> Result<Response<pb::FindRepairCenterResponse>, Status> {
        let caller = caller_of(&request);
        self.app.authorize_read(&caller)?;
        // One config for the whole request, whatever reloads happen meanwhile.
        let live = self.app.config();
        let query = convert::find_query_from_proto(
            request.get_ref(),
            App::default_profile_name(&live.config, &caller),
            |name| live.config.profiles.contains_key(name),
            Utc::now().date_naive(),
        )
        .map_err(ServiceError::InvalidArgument)?;
        let outcome = self.app.find(&live, &caller, &query)?;
        let mut response = convert::find_response_to_proto(&outcome, &query.profile_name);
        response.config_version = live.version;
        Ok(Response::new(response))
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
