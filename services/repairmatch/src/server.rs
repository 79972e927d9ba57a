//! Assembles the gRPC server: the match and catalog services behind the API
//! key interceptor, health checking, server reflection, deadlines and load
//! shedding, on a listener the caller binds.

use std::future::Future;
use std::time::Duration;

use repairmatch_proto::v1::catalog_service_server::CatalogServiceServer;
use repairmatch_proto::v1::repair_match_service_server::RepairMatchServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;

use crate::app::{App, ConfigStatus};
use crate::catalog_grpc::CatalogGrpc;
use crate::grpc::RepairMatchGrpc;

/// The health service name that reports whether the config file is in force.
pub const CONFIG_HEALTH_SERVICE: &str = "repairmatch.config";

/// Serves `app` on `listener` until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server_config = app.config().config.server.clone();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<RepairMatchServiceServer<RepairMatchGrpc>>().await;
    health_reporter.set_serving::<CatalogServiceServer<CatalogGrpc>>().await;
    // "repairmatch.config" is NOT_SERVING while the file on disk was refused
    // (the previous config keeps serving): the health detail of a bad reload.
    let mut config_status = app.config_status();
    let health_of = |status: &ConfigStatus| match status {
        ConfigStatus::Current => ServingStatus::Serving,
        ConfigStatus::Refused(_) => ServingStatus::NotServing,
    };
    let initial = health_of(&config_status.borrow_and_update());
    health_reporter.set_service_status(CONFIG_HEALTH_SERVICE, initial).await;
    let config_health = health_reporter.clone();
    tokio::spawn(async move {
        while config_status.changed().await.is_ok() {
            let status = health_of(&config_status.borrow_and_update());
            config_health.set_service_status(CONFIG_HEALTH_SERVICE, status).await;
        }
    });

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(repairmatch_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(repairmatch_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let authenticate = {
        let app = app.clone();
        move |mut request: tonic::Request<()>| {
            let header = match request.metadata().get("authorization") {
                None => None,
                Some(value) => Some(
                    value
                        .to_str()
                        .map_err(|_| Status::unauthenticated("the authorization header must be 'Bearer <key>'"))?,
                ),
            };
            let caller =
                app.config().keyring.authenticate(header).map_err(|e| Status::unauthenticated(e.to_string()))?;
            request.extensions_mut().insert(caller);
            Ok(request)
        }
    };
    let repair_match = InterceptedService::new(
        RepairMatchServiceServer::new(RepairMatchGrpc::new(app.clone()))
            .max_decoding_message_size(server_config.max_request_bytes),
        authenticate.clone(),
    );
    let catalog = InterceptedService::new(
        CatalogServiceServer::new(CatalogGrpc::new(app)).max_decoding_message_size(server_config.max_request_bytes),
        authenticate,
    );

    tracing::info!(listen = %listener.local_addr()?, "serving gRPC");
    tonic::transport::Server::builder()
        // A caller's grpc-timeout wins when shorter; this bounds the rest.
        .timeout(Duration::from_millis(server_config.default_timeout_ms))
        .concurrency_limit_per_connection(server_config.max_concurrent_requests_per_connection)
        .load_shed(true)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(repair_match)
        .add_service(catalog)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
