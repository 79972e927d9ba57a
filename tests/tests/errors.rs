//! Bad input gets INVALID_ARGUMENT with a BadRequest naming the field, and the
//! server keeps serving.

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn every_bad_field_is_named_and_the_server_keeps_serving() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut client = server.client().await;
    type Mutation = Box<dyn Fn(&mut pb::FindRepairCenterRequest)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("location", Box::new(|r| r.location = None)),
        ("location.latitude", Box::new(|r| r.location.as_mut().unwrap().latitude = 90.5)),
        ("location.latitude", Box::new(|r| r.location.as_mut().unwrap().latitude = f64::NAN)),
        ("location.longitude", Box::new(|r| r.location.as_mut().unwrap().longitude = f64::INFINITY)),
        ("terminal.brand", Box::new(|r| r.terminal = None)),
        ("terminal.brand", Box::new(|r| r.terminal.as_mut().unwrap().brand = "   ".into())),
        ("terminal.brand", Box::new(|r| r.terminal.as_mut().unwrap().brand = "x".repeat(10 * 1024 * 1024))),
        ("fault.description", Box::new(|r| r.fault.as_mut().unwrap().description = "é".repeat(2_001))),
        ("fault.category", Box::new(|r| r.fault.as_mut().unwrap().category = 99)),
        ("ownership", Box::new(|r| r.ownership = -3)),
        ("bank_id", Box::new(|r| r.ownership = pb::Ownership::BankDeployed as i32)),
        ("warranty.status", Box::new(|r| r.warranty = Some(pb::Warranty { status: 7, purchase_date: String::new() }))),
        (
            "warranty.purchase_date",
            Box::new(|r| r.warranty = Some(pb::Warranty { status: 0, purchase_date: "25/11/2026".into() })),
        ),
        (
            "warranty.purchase_date",
            Box::new(|r| r.warranty = Some(pb::Warranty { status: 0, purchase_date: "2999-01-01".into() })),
        ),
        ("service_modes[1]", Box::new(|r| r.service_modes = vec![1, 0])),
        ("max_distance_km", Box::new(|r| r.max_distance_km = -1.0)),
        ("max_distance_km", Box::new(|r| r.max_distance_km = f64::NAN)),
        (
            "max_price.currency_code",
            Box::new(|r| r.max_price = Some(pb::Money { currency_code: "cny".into(), amount_minor_units: 5 })),
        ),
        (
            "max_price.currency_code",
            Box::new(|r| r.max_price = Some(pb::Money { currency_code: "ZZZ".into(), amount_minor_units: 5 })),
        ),
        ("max_price.amount_minor_units", Box::new(|r| r.max_price = Some(cny(-5)))),
        ("min_rating", Box::new(|r| r.min_rating = 5.5)),
        ("min_rating", Box::new(|r| r.min_rating = 0.5)),
        ("open_at", Box::new(|r| r.open_at = Some(repairmatch_proto::Timestamp { seconds: 0, nanos: -1 }))),
        ("ranking_profile", Box::new(|r| r.ranking_profile = "no-such-profile".into())),
        ("page_size", Box::new(|r| r.page_size = -1)),
        ("explain_center_ids", Box::new(|r| r.explain_center_ids = vec!["a".into(); 101])),
        ("explain_center_ids[0]", Box::new(|r| r.explain_center_ids = vec![String::new()])),
    ];
    for (field, mutate) in cases {
        let mut request = find_request();
        mutate(&mut request);
        let status = client.find_repair_center(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let (fields, reason) = bad_request_fields(&status);
        assert!(fields.iter().any(|f| f == field), "{field} not in {fields:?}");
        assert_eq!(reason, "INVALID_ARGUMENT");
        assert!(status.message().len() < 2_000, "messages stay short even for 10 MB inputs");
    }
    let response = client.find_repair_center(find_request()).await.expect("still serving").into_inner();
    assert_eq!(match_ids(&response), ["a"]);
    server.stop().await;
}

#[tokio::test]
async fn money_must_be_in_an_iso_4217_currency() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let zzz = |amount_minor_units| pb::Money { currency_code: "ZZZ".into(), amount_minor_units };
    let mut request = find_request();
    request.max_price = Some(zzz(50_000));
    let status = server.client().await.find_repair_center(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status.get_error_details().bad_request().expect("a BadRequest").field_violations.clone();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "max_price.currency_code");
    assert!(violations[0].description.contains("ISO 4217 currency code"), "{violations:?}");

    // A center quoting in a made-up currency is refused as well.
    let mut made_up = center_east("made-up", 3.0);
    made_up.prices[0].min = Some(zzz(10_000));
    made_up.prices[0].max = Some(zzz(20_000));
    let request = pb::UpsertRepairCentersRequest { centers: vec![made_up] };
    let response = server.catalog("provider-fix").await.upsert_repair_centers(request).await.unwrap().into_inner();
    assert_eq!(response.results[0].outcome(), pb::ItemOutcome::InvalidArgument);
    let fields: Vec<&str> = response.results[0].field_violations.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"centers[0].prices[0].min.currency_code"), "{fields:?}");
    server.stop().await;
}

#[tokio::test]
async fn several_bad_fields_are_all_named_at_once() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut request = find_request();
    request.location.as_mut().unwrap().latitude = -91.0;
    request.terminal.as_mut().unwrap().brand.clear();
    request.page_size = -5;
    let status = server.client().await.find_repair_center(request).await.unwrap_err();
    let (fields, _) = bad_request_fields(&status);
    assert_eq!(fields, ["location.latitude", "terminal.brand", "page_size"]);
    server.stop().await;
}

#[tokio::test]
async fn get_repair_center_found_not_found_and_invalid() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("known", 3.0)])).await;
    let mut client = server.client().await;
    let found = client.get_repair_center(pb::GetRepairCenterRequest { id: "known".into() }).await.unwrap().into_inner();
    let center = found.repair_center.unwrap();
    assert_eq!(center.id, "known");
    assert!(!center.etag.is_empty() && center.update_time.is_some(), "the store stamps etag and update time");

    let status = client.get_repair_center(pb::GetRepairCenterRequest { id: "unknown".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(bad_request_fields(&status).1, "REPAIR_CENTER_NOT_FOUND");

    let status = client.get_repair_center(pb::GetRepairCenterRequest { id: String::new() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_request_fields(&status).0, ["id"]);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_bank_is_refused_naming_bank_id() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut client = server.client().await;
    for ownership in [pb::Ownership::BankDeployed, pb::Ownership::Leased] {
        let mut request = find_request();
        request.ownership = ownership as i32;
        request.bank_id = "no-such-bank".into();
        let status = client.find_repair_center(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{ownership:?}");
        let violations = bad_request_violations(&status);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].0, "bank_id");
        assert!(violations[0].1.contains("\"no-such-bank\" is not a bank in the catalog"), "{violations:?}");
    }
    let mut known = find_request();
    known.ownership = pb::Ownership::BankDeployed as i32;
    known.bank_id = "icbc".into();
    let response = client.find_repair_center(known).await.expect("a known bank is fine").into_inner();
    assert_eq!(response.remote_support.unwrap().channels[0].provider_type, "bank");
    server.stop().await;
}

#[tokio::test]
async fn a_violation_does_not_repeat_its_field_name() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0), center_east("b", 4.0)])).await;
    let mut client = server.client().await;
    let mut first = find_request();
    first.page_size = 1;
    let token = client.find_repair_center(first).await.unwrap().into_inner().next_page_token;
    let mut replayed = find_request();
    replayed.page_size = 1;
    replayed.page_token = token;
    replayed.terminal.as_mut().unwrap().model = "A920".into();
    let mut garbled = find_request();
    garbled.page_token = "%%%".into();
    for request in [replayed, garbled] {
        let status = client.find_repair_center(request).await.unwrap_err();
        let violations = bad_request_violations(&status);
        assert_eq!(violations[0].0, "page_token");
        assert!(!violations[0].1.contains("page_token"), "{violations:?}");
        assert!(!status.message().contains("page_token: page_token"), "{}", status.message());
    }
    let mut catalog = server.catalog("ops").await;
    let listing = pb::ListRepairCentersRequest { page_token: "%%%".into(), ..Default::default() };
    let status = catalog.list_repair_centers(listing).await.unwrap_err();
    assert_eq!(bad_request_violations(&status), [("page_token".to_owned(), "is malformed".to_owned())]);
    server.stop().await;
}

#[tokio::test]
async fn refused_keys_carry_error_info_like_every_other_status() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut catalog = server.catalog_as(Some(REVOKED_KEY.into())).await;
    let status = catalog.list_brands(pb::ListBrandsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(bad_request_fields(&status).1, "UNAUTHENTICATED");
    let mut anonymous = server.catalog_as(None).await;
    let status = anonymous.list_repair_centers(pb::ListRepairCentersRequest::default()).await.unwrap_err();
    assert_eq!((status.code(), bad_request_fields(&status).1.as_str()), (Code::Unauthenticated, "UNAUTHENTICATED"));
    server.stop().await;
}

/// A write the caller may not make is refused from its metadata alone: the
/// server does not read a big body first. With a 64 KiB message limit, a
/// body read first would fail on its size instead.
#[tokio::test]
async fn writes_are_refused_before_their_body_is_read() {
    let server = TestServer::start_adjusted(&Fixture::with_centers(vec![]), |config| {
        config.server.max_request_bytes = 64 * 1024;
    })
    .await;
    let mut huge = center_east("huge", 1.0);
    huge.address = "x".repeat(1024 * 1024);
    let write = || pb::UpsertRepairCentersRequest { centers: vec![huge.clone()] };
    for (key, code) in [
        (None, Code::Unauthenticated),
        (Some(REVOKED_KEY.to_owned()), Code::Unauthenticated),
        (Some(key_of("icbc")), Code::PermissionDenied),
    ] {
        let mut catalog = server.catalog_as(key.clone()).await;
        let status = catalog.upsert_repair_centers(write()).await.unwrap_err();
        assert_eq!(status.code(), code, "{key:?}: {status:?}");
        let items = tokio_stream::iter(vec![pb::ImportRepairCentersRequest { repair_center: Some(huge.clone()) }]);
        let status = catalog.import_repair_centers(items).await.unwrap_err();
        assert_eq!(status.code(), code, "import, {key:?}: {status:?}");
    }
    let status = server.catalog("ops").await.upsert_repair_centers(write()).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "a writer's oversized body meets the size limit: {status:?}");
    server.stop().await;
}

/// Sends `body` as the message of a unary call to `path`, with `tenant`'s key
/// when given, to put on the wire what no typed client would; the reply is
/// read as `R`.
async fn send_raw<R: prost::Message + Default + Send + 'static>(
    server: &TestServer,
    path: &'static str,
    tenant: Option<&str>,
    body: Vec<u8>,
) -> Result<R, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(body);
    if let Some(tenant) = tenant {
        request.metadata_mut().insert("authorization", format!("Bearer {}", key_of(tenant)).parse().unwrap());
    }
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(request, path, RawRequest(std::marker::PhantomData)).await.map(tonic::Response::into_inner)
}

/// A request body as raw bytes; replies read as `R`.
struct RawRequest<R>(std::marker::PhantomData<R>);

struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl<R: prost::Message + Default + Send + 'static> tonic::codec::Codec for RawRequest<R> {
    type Encode = Vec<u8>;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = repairmatch_proto::codec::SliceDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        let mut codec = repairmatch_proto::codec::ProstCodec::<pb::FindRepairCenterRequest, R>::default();
        tonic::codec::Codec::decoder(&mut codec)
    }
}

#[tokio::test]
async fn bytes_that_are_no_request_are_refused_and_the_server_keeps_serving() {
    use prost::Message;
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let send = async |body: Vec<u8>| {
        send_raw::<pb::FindRepairCenterResponse>(
            &server,
            "/repairmatch.v1.RepairMatchService/FindRepairCenter",
            None,
            body,
        )
        .await
    };

    // Field 1 (location), length-delimited, whose length is cut off.
    let status = send(vec![0x0a, 0xff]).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("failed to decode"), "{status:?}");

    let answer = send(find_request().encode_to_vec()).await.unwrap();
    assert_eq!(match_ids(&answer), ["a"], "the same bytes a typed client sends");
    server.stop().await;
}

#[tokio::test]
async fn an_upsert_whose_bytes_are_no_request_is_refused_and_changes_nothing() {
    use prost::Message;
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let send = async |body: Vec<u8>| {
        let path = "/repairmatch.v1.CatalogService/UpsertRepairCenters";
        send_raw::<pb::UpsertRepairCentersResponse>(&server, path, Some("ops"), body).await
    };
    let mut catalog = server.catalog("ops").await;
    let mut listed = async || -> Vec<String> {
        let listing = pb::ListRepairCentersRequest { page_size: 1_000, ..Default::default() };
        let page = catalog.list_repair_centers(listing).await.unwrap().into_inner();
        page.repair_centers.into_iter().map(|center| center.id).collect()
    };
    assert_eq!(listed().await, ["a"]);

    // A thousand centers and then bytes cut off: decoded where the write
    // runs, and refused as the stubs' codec refuses a message that does not
    // parse.
    let centers = (0..1_000).map(|i| center_east(&format!("new-{i}"), 4.0)).collect();
    let mut body = pb::UpsertRepairCentersRequest { centers }.encode_to_vec();
    body.extend_from_slice(&[0x0a, 0xff]);
    let status = send(body).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("failed to decode"), "{status:?}");
    assert_eq!(listed().await, ["a"], "nothing written");

    // The same path takes a well-formed request's bytes.
    let answer =
        send(pb::UpsertRepairCentersRequest { centers: vec![center_east("b", 4.0)] }.encode_to_vec()).await.unwrap();
    assert_eq!(answer.results.len(), 1);
    assert_eq!(answer.results[0].outcome(), pb::ItemOutcome::Ok, "{answer:?}");
    assert_eq!(listed().await, ["a", "b"]);
    server.stop().await;
}
