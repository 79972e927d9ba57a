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

/// The fields of a `google.protobuf.FileDescriptorProto` this test reads
/// (prost skips the rest).
#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    package: String,
    #[prost(message, repeated, tag = "4")]
    message_type: Vec<MessageDescriptor>,
}

/// The name of a `google.protobuf.DescriptorProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct MessageDescriptor {
    #[prost(string, tag = "1")]
    name: String,
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
    let described: Vec<FileDescriptor> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost::Message::decode(bytes.as_slice()).expect("a FileDescriptorProto"))
        .collect();
    let defining = described
        .iter()
        .find(|file| file.message_type.iter().any(|m| m.name == "FindRepairCenterRequest"))
        .unwrap_or_else(|| panic!("no served file defines FindRepairCenterRequest: {described:?}"));
    assert_eq!(defining.package, "repairmatch.v1");
    assert_eq!(defining.name, "repairmatch/v1/repair_match_service.proto");
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
async fn a_bad_file_where_there_was_no_store_leaves_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut broken = center_east("broken", 4.0);
    broken.location = Some(pb::LatLng { latitude: 123.0, longitude: 0.0 });
    let attempt = Fixture { centers: vec![center_east("good", 2.0), broken], brands: vec![], banks: vec![] };
    assert!(import_fixture(dir.path(), &attempt).is_err());
    assert!(!dir.path().join("catalog.redb").exists(), "opening the store for the import created its file");
}

#[tokio::test]
async fn a_bad_line_after_thousands_of_good_ones_applies_none_of_them() {
    // The import writes batches of good lines as it reads; a bad line in a
    // later batch must still leave the store as it was.
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let store = server.stop().await;

    let mut centers: Vec<pb::RepairCenter> =
        (0..5_000).map(|i| center_east(&format!("good-{i}"), 2.0 + f64::from(i) / 1_000.0)).collect();
    let mut broken = center_east("broken", 4.0);
    broken.location = Some(pb::LatLng { latitude: 123.0, longitude: 0.0 });
    centers.push(broken);
    let error =
        import_fixture(store.path(), &Fixture { centers, brands: vec![], banks: vec![] }).unwrap_err().to_string();
    assert!(error.contains(":5001: location.latitude"), "line number and field in: {error}");

    let server = TestServer::start_on(store).await;
    let response = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["a"], "none of the 5,000 good lines was applied");
    assert_eq!(response.total_size, 1);
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

fn explain_args(args: &[&str]) -> repairmatch::cli::ExplainArgs {
    use clap::Parser;
    let cli = repairmatch::cli::Cli::parse_from(["repairmatch", "explain"].iter().chain(args));
    match cli.command {
        repairmatch::cli::Command::Explain(args) => args,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_asks_a_running_server_and_compares_profiles_there() {
    let mut cheap_far = center_east("cheap-far", 25.0);
    cheap_far.prices[0].min = Some(cny(1_000));
    cheap_far.prices[0].max = Some(cny(2_000));
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("near", 2.0), cheap_far])).await;
    let url = format!("http://{}", server.addr);
    let base = ["--server", url.as_str(), "--lat", "31.2304", "--lon", "121.4737", "--brand", "PAX"];
    let args = explain_args(&base);
    let text = tokio::task::spawn_blocking(move || repairmatch::cli::explain::report(&args)).await.unwrap().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(&format!("{url}: profile \"default\", 2 eligible")), "{text}");
    assert!(lines[2].contains(" near ") && lines[3].contains(" cheap-far "), "ranked rows in order: {text}");
    assert!(lines[2].contains("2.00"), "the distance column: {text}");

    let compare: Vec<&str> = base.iter().copied().chain(["--compare-profile", "nearest"]).collect();
    let args = explain_args(&compare);
    let text = tokio::task::spawn_blocking(move || repairmatch::cli::explain::report(&args)).await.unwrap().unwrap();
    assert!(text.contains("profile \"nearest\""), "the second table ranks with the named profile: {text}");
    assert!(text.contains("B = ") && text.contains(" near "), "and the comparison follows: {text}");

    let bad = explain_args(&["--server", &url, "--lat", "95", "--lon", "0", "--brand", "PAX"]);
    let error =
        tokio::task::spawn_blocking(move || repairmatch::cli::explain::report(&bad)).await.unwrap().unwrap_err();
    assert!(error.to_string().contains("location.latitude"), "{error}");
    server.stop().await;
}
