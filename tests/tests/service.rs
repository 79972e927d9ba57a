//! The server as operators see it: health, reflection, persistence across
//! restarts, and all-or-nothing imports.

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_reports_serving() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "repairmatch.v1.RepairMatchService"] {
        let request = tonic_health::pb::HealthCheckRequest { service: service.into() };
        let response = health.check(request).await.unwrap().into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_and_describes_the_api() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("repairmatch.v1.FindRepairCenterRequest".into()),
    ]
    .map(|message_request| ServerReflectionRequest { host: String::new(), message_request: Some(message_request) });
    let mut responses = reflection.server_reflection_info(tokio_stream::iter(requests)).await.unwrap().into_inner();

    let Some(MessageResponse::ListServicesResponse(list)) = responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["repairmatch.v1.RepairMatchService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected file descriptors");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_catalog_survives_a_restart() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0), center_east("b", 5.0)])).await;
    let before = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    let store = server.stop().await;

    let server = TestServer::start_on(store).await;
    let after = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&after), ["a", "b"]);
    assert_eq!(after.catalog_version, before.catalog_version);
    assert_eq!(after.matches, before.matches, "same centers, same etags, same ranking");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_line_applies_nothing_of_its_file() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let store = server.stop().await;

    let mut broken = center_east("broken", 4.0);
    broken.location = Some(pb::LatLng { latitude: 123.0, longitude: 0.0 });
    let attempt = Fixture { centers: vec![center_east("good", 2.0), broken], brands: vec![], banks: vec![] };
    let error = import_fixture(store.path(), &attempt).unwrap_err().to_string();
    assert!(error.contains(":2: location.latitude"), "line number and field in: {error}");
    assert!(error.contains("nothing was imported"), "{error}");

    let server = TestServer::start_on(store).await;
    let response = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["a"], "the good line of the bad file was not applied");
    server.stop().await;
}

#[tokio::test]
async fn a_sample_catalog_from_datagen_imports_and_answers() {
    let sample = repairmatch_datagen::generate(2_000, 42);
    let fixture = Fixture {
        centers: sample.centers.iter().map(repairmatch::convert::center_to_proto).collect(),
        brands: sample.brands.iter().map(repairmatch::convert::brand_to_proto).collect(),
        banks: sample.banks.iter().map(repairmatch::convert::bank_to_proto).collect(),
    };
    let server = TestServer::start(&fixture).await;
    let mut request = find_request();
    request.terminal.as_mut().unwrap().brand = "Newland".into();
    let response = server.client().await.find_repair_center(request).await.unwrap().into_inner();
    assert!(response.total_size > 5, "Shanghai has Newland repairers: {}", response.total_size);
    assert!(response.matches.iter().all(|m| m.center.as_ref().unwrap().brands.iter().any(|b| b.brand == "Newland")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_asks_a_running_server() {
    use clap::Parser;
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let url = format!("http://{}", server.addr);
    let args = ["repairmatch", "explain", "--server", &url, "--lat", "31.2304", "--lon", "121.4737", "--brand", "PAX"];
    let cli = repairmatch::cli::Cli::parse_from(args);
    tokio::task::spawn_blocking(move || repairmatch::cli::run(cli)).await.unwrap().expect("explain against the server");
    let bad = repairmatch::cli::Cli::parse_from([
        "repairmatch",
        "explain",
        "--server",
        &url,
        "--lat",
        "95",
        "--lon",
        "0",
        "--brand",
        "PAX",
    ]);
    let error = tokio::task::spawn_blocking(move || repairmatch::cli::run(bad)).await.unwrap().unwrap_err();
    assert!(error.to_string().contains("location.latitude"), "{error}");
    server.stop().await;
}
