//! CatalogService through a real server: every role allowed and refused where
//! it should be, etags, mixed batches, listing scopes, brands, bulk import,
//! and durability.

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;
use tonic::Code;

fn upsert(centers: Vec<pb::RepairCenter>) -> pb::UpsertRepairCentersRequest {
    pb::UpsertRepairCentersRequest { centers }
}

fn authorized_pax(id: &str, km: f64) -> pb::RepairCenter {
    let mut center = center_east(id, km);
    center.kind = pb::RepairCenterKind::Authorized as i32;
    center.brands[0].authorized = true;
    center
}

async fn get(server: &TestServer, id: &str) -> Option<pb::RepairCenter> {
    match server.client().await.get_repair_center(pb::GetRepairCenterRequest { id: id.into() }).await {
        Ok(response) => response.into_inner().repair_center,
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => panic!("{status:?}"),
    }
}

fn outcomes(response: &pb::UpsertRepairCentersResponse) -> Vec<pb::ItemOutcome> {
    response.results.iter().map(|r| r.outcome()).collect()
}

#[tokio::test]
async fn a_manufacturer_upserts_its_center_and_find_serves_it_at_once() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut center = authorized_pax("pax-shanghai", 2.0);
    center.owner = "mfr-verifone".into(); // forged: the service sets the owner
    let response =
        server.catalog("mfr-pax").await.upsert_repair_centers(upsert(vec![center])).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ItemOutcome::Ok]);
    assert!(!response.results[0].etag.is_empty());

    let found = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&found), ["pax-shanghai"], "served as soon as acknowledged");
    assert_eq!(found.catalog_version, response.catalog_version);
    let stored = get(&server, "pax-shanghai").await.unwrap();
    assert_eq!(stored.owner, "mfr-pax", "owner comes from the key, never the request");
    assert_eq!(stored.etag, response.results[0].etag);
    server.stop().await;
}

#[tokio::test]
async fn a_manufacturer_cannot_authorize_another_makers_brand() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut center = authorized_pax("claims-verifone", 2.0);
    center.brands[0].brand = "Verifone".into();
    let response =
        server.catalog("mfr-pax").await.upsert_repair_centers(upsert(vec![center])).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ItemOutcome::PermissionDenied]);
    assert_eq!(response.results[0].field_violations[0].field, "centers[0].brands[0].authorized");
    assert!(get(&server, "claims-verifone").await.is_none(), "nothing written");
    server.stop().await;
}

#[tokio::test]
async fn a_provider_writes_only_unauthorized_third_party_centers() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut catalog = server.catalog("provider-fix").await;
    let response = catalog
        .upsert_repair_centers(upsert(vec![authorized_pax("sneaky", 1.0), center_east("honest", 1.0)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&response), [pb::ItemOutcome::PermissionDenied, pb::ItemOutcome::Ok]);
    let fields: Vec<&str> = response.results[0].field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["centers[0].kind", "centers[0].brands[0].authorized"]);
    assert!(get(&server, "sneaky").await.is_none());
    assert_eq!(get(&server, "honest").await.unwrap().owner, "provider-fix");
    server.stop().await;
}

#[tokio::test]
async fn nobody_edits_or_deletes_another_tenants_center() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    server.catalog("provider-fix").await.upsert_repair_centers(upsert(vec![center_east("mine", 1.0)])).await.unwrap();
    let before = get(&server, "mine").await.unwrap();

    let mut hijack = center_east("mine", 1.0);
    hijack.name = "Hijacked".into();
    let response =
        server.catalog("provider-other").await.upsert_repair_centers(upsert(vec![hijack])).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ItemOutcome::PermissionDenied]);
    let status = server
        .catalog("provider-other")
        .await
        .delete_repair_center(pb::DeleteRepairCenterRequest { id: "mine".into(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(get(&server, "mine").await.unwrap(), before, "unchanged");

    // Ops may; the owner stays the provider.
    let mut fixed = center_east("mine", 1.0);
    fixed.name = "Fixed by ops".into();
    let response = server.catalog("ops").await.upsert_repair_centers(upsert(vec![fixed])).await.unwrap().into_inner();
    assert_eq!(outcomes(&response), [pb::ItemOutcome::Ok]);
    let after = get(&server, "mine").await.unwrap();
    assert_eq!((after.name.as_str(), after.owner.as_str()), ("Fixed by ops", "provider-fix"));
    server.stop().await;
}

#[tokio::test]
async fn banks_cannot_write_and_keys_are_required_and_checked() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 1.0)])).await;
    let status =
        server.catalog("icbc").await.upsert_repair_centers(upsert(vec![center_east("b", 1.0)])).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status =
        server.catalog_as(None).await.upsert_repair_centers(upsert(vec![center_east("b", 1.0)])).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = server
        .catalog_as(Some(REVOKED_KEY.into()))
        .await
        .upsert_repair_centers(upsert(vec![center_east("b", 1.0)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains(REVOKED_KEY), "keys are never echoed");
    // A revoked key is refused even where no key is needed.
    let status = server.client_as(Some(REVOKED_KEY.into())).await.find_repair_center(find_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(get(&server, "b").await.is_none());
    // The bank may find, with the profiles it is allowed.
    let mut bank = server.client_as(Some(key_of("icbc"))).await;
    assert!(bank.find_repair_center(find_request()).await.is_ok());
    let mut request = find_request();
    request.ranking_profile = "nearest".into();
    assert_eq!(bank.find_repair_center(request).await.unwrap_err().code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn stale_etags_abort_and_change_nothing() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut catalog = server.catalog("mfr-pax").await;
    let first = catalog.upsert_repair_centers(upsert(vec![authorized_pax("c", 1.0)])).await.unwrap().into_inner();
    let etag_1 = first.results[0].etag.clone();

    let mut update = authorized_pax("c", 1.0);
    update.name = "v2".into();
    update.etag = etag_1.clone();
    let second = catalog.upsert_repair_centers(upsert(vec![update.clone()])).await.unwrap().into_inner();
    assert_eq!(outcomes(&second), [pb::ItemOutcome::Ok]);
    let etag_2 = second.results[0].etag.clone();
    assert_ne!(etag_1, etag_2);

    update.name = "v3 from a stale read".into();
    let stale = catalog.upsert_repair_centers(upsert(vec![update])).await.unwrap().into_inner();
    assert_eq!(outcomes(&stale), [pb::ItemOutcome::Aborted]);
    assert_eq!(get(&server, "c").await.unwrap().name, "v2");

    let status =
        catalog.delete_repair_center(pb::DeleteRepairCenterRequest { id: "c".into(), etag: etag_1 }).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert!(get(&server, "c").await.is_some());
    catalog.delete_repair_center(pb::DeleteRepairCenterRequest { id: "c".into(), etag: etag_2 }).await.unwrap();
    assert!(get(&server, "c").await.is_none());
    let found = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert!(found.matches.is_empty(), "deletes are served at once too");
    let status = catalog
        .delete_repair_center(pb::DeleteRepairCenterRequest { id: "c".into(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn a_mixed_batch_writes_the_good_items_and_names_the_bad_fields() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut bad_radius = center_east("bad-radius", 1.0);
    bad_radius.coverage = Some(pb::Coverage { radius_km: 900.0, polygon: None, country_codes: vec![] });
    let mut bad_hours = center_east("bad-hours", 1.0);
    bad_hours.opening_hours =
        Some(pb::OpeningHours { time_zone: "Mars/Olympus_Mons".into(), periods: vec![], exceptions: vec![] });
    let batch =
        vec![center_east("good-1", 1.0), bad_radius, center_east("good-2", 2.0), bad_hours, center_east("good-1", 3.0)];
    let response =
        server.catalog("provider-fix").await.upsert_repair_centers(upsert(batch)).await.unwrap().into_inner();
    use pb::ItemOutcome::{InvalidArgument, Ok};
    assert_eq!(outcomes(&response), [Ok, InvalidArgument, Ok, InvalidArgument, InvalidArgument]);
    assert_eq!(response.results[1].field_violations[0].field, "centers[1].coverage.radius_km");
    assert_eq!(response.results[3].field_violations[0].field, "centers[3].opening_hours.time_zone");
    assert_eq!(response.results[4].field_violations[0].field, "centers[4].id", "a repeated id");
    let found = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&found), ["good-1", "good-2"]);

    let status = server.catalog("provider-fix").await.upsert_repair_centers(upsert(vec![])).await.unwrap_err();
    assert_eq!(bad_request_fields(&status).0, ["centers"]);
    let too_many = (0..1_001).map(|i| center_east(&format!("c{i}"), 1.0)).collect();
    let status = server.catalog("provider-fix").await.upsert_repair_centers(upsert(too_many)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn listings_are_scoped_to_the_caller_except_for_ops() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let pax_centers = (0..7).map(|i| authorized_pax(&format!("pax-{i}"), 1.0)).collect();
    server.catalog("mfr-pax").await.upsert_repair_centers(upsert(pax_centers)).await.unwrap();
    server.catalog("provider-fix").await.upsert_repair_centers(upsert(vec![center_east("fix-0", 1.0)])).await.unwrap();

    let list = |owner: &str, page_size, page_token: String| pb::ListRepairCentersRequest {
        owner: owner.into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let mut pax = server.catalog("mfr-pax").await;
    let (mut ids, mut token) = (Vec::new(), String::new());
    loop {
        let page = pax.list_repair_centers(list("", 3, token)).await.unwrap().into_inner();
        ids.extend(page.repair_centers.iter().map(|c| c.id.clone()));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(ids, (0..7).map(|i| format!("pax-{i}")).collect::<Vec<_>>(), "own centers only, in id order");
    assert_eq!(
        pax.list_repair_centers(list("provider-fix", 0, String::new())).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let mut ops = server.catalog("ops").await;
    let all = ops.list_repair_centers(list("", 0, String::new())).await.unwrap().into_inner();
    assert_eq!(all.repair_centers.len(), 8);
    let theirs = ops.list_repair_centers(list("provider-fix", 0, String::new())).await.unwrap().into_inner();
    assert_eq!(theirs.repair_centers.len(), 1);
    let by_kind = pb::ListRepairCentersRequest { kind: pb::RepairCenterKind::ThirdParty as i32, ..Default::default() };
    assert_eq!(ops.list_repair_centers(by_kind).await.unwrap().into_inner().repair_centers.len(), 1);
    let by_brand = pb::ListRepairCentersRequest { brand: "verifone".into(), ..Default::default() };
    assert!(ops.list_repair_centers(by_brand).await.unwrap().into_inner().repair_centers.is_empty());

    let first = ops.list_repair_centers(list("", 2, String::new())).await.unwrap().into_inner();
    let status = ops.list_repair_centers(list("provider-fix", 2, first.next_page_token)).await.unwrap_err();
    assert_eq!(bad_request_fields(&status).0, ["page_token"], "a token is bound to its filters");
    server.stop().await;
}

#[tokio::test]
async fn manufacturers_keep_their_own_brands_support_channels() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 1.0)])).await;
    let mut brand = pax_brand();
    brand.hotline = "+86 400 000 1111".into();
    brand.warranty_months = 18;
    brand.owner = "someone-else".into();
    let stored = server
        .catalog("mfr-pax")
        .await
        .upsert_brand(pb::UpsertBrandRequest { brand: Some(brand.clone()) })
        .await
        .unwrap()
        .into_inner()
        .brand
        .unwrap();
    assert_eq!(stored.hotline, "+86 400 000 1111");
    assert_ne!(stored.owner, "someone-else");

    let status = server
        .catalog("mfr-verifone")
        .await
        .upsert_brand(pb::UpsertBrandRequest { brand: Some(brand.clone()) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = server
        .catalog("provider-fix")
        .await
        .upsert_brand(pb::UpsertBrandRequest { brand: Some(brand) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let mut reader = server.catalog("icbc").await;
    let got = reader.get_brand(pb::GetBrandRequest { name: "pax".into() }).await.unwrap().into_inner().brand.unwrap();
    assert_eq!(got.warranty_months, 18);
    assert_eq!(reader.get_brand(pb::GetBrandRequest { name: "Nope".into() }).await.unwrap_err().code(), Code::NotFound);
    let listed = reader.list_brands(pb::ListBrandsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.brands.len(), 1);

    let found = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(found.remote_support.unwrap().channels[0].hotline, "+86 400 000 1111", "Find uses the new channels");
    server.stop().await;
}

#[tokio::test]
async fn writes_survive_a_restart() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let response = server
        .catalog("mfr-pax")
        .await
        .upsert_repair_centers(upsert(vec![authorized_pax("durable", 1.0)]))
        .await
        .unwrap();
    let etag = response.into_inner().results[0].etag.clone();
    let store = server.stop().await;
    let server = TestServer::start_on(store).await;
    let center = get(&server, "durable").await.expect("still there");
    assert_eq!((center.owner.as_str(), center.etag.as_str()), ("mfr-pax", etag.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn importing_100k_datagen_centers_lands_what_is_valid_and_find_serves_it() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let sample = repairmatch_datagen::generate(100_000, 77);
    let mut items: Vec<pb::ImportRepairCentersRequest> = sample
        .centers
        .iter()
        .map(|c| pb::ImportRepairCentersRequest { repair_center: Some(repairmatch::convert::center_to_proto(c)) })
        .collect();
    items[5].repair_center.as_mut().unwrap().location = Some(pb::LatLng { latitude: 91.0, longitude: 0.0 });
    let bad_id = items[5].repair_center.as_ref().unwrap().id.clone();
    let summary =
        server.catalog("ops").await.import_repair_centers(tokio_stream::iter(items)).await.unwrap().into_inner();
    assert_eq!((summary.received, summary.imported, summary.rejected), (100_000, 99_999, 1));
    assert_eq!(summary.problems[0].position, 5);
    assert_eq!(summary.problems[0].field_violations[0].field, "items[5].location.latitude");

    let mut client = server.client().await;
    let mut request = find_request();
    request.terminal.as_mut().unwrap().brand = "Newland".into();
    let found = client.find_repair_center(request).await.unwrap().into_inner();
    assert!(found.total_size > 10, "imported centers are served: {}", found.total_size);
    assert_eq!(found.catalog_version, summary.catalog_version);
    let status = client.get_repair_center(pb::GetRepairCenterRequest { id: bad_id }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "the bad item was skipped");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_threshold_compact_in_the_background_and_lose_nothing() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut ops = server.catalog("ops").await;
    let batch = |from: usize| -> Vec<pb::RepairCenter> {
        (from..from + 1_000).map(|i| center_east(&format!("bulk-{i:05}"), 0.5 + (i % 25) as f64)).collect()
    };
    // The third batch pushes the delta past the threshold (1,000 for a small base):
    // the write returns at once and a compaction starts in the background.
    for from in [0, 1_000, 2_000] {
        let response = ops.upsert_repair_centers(upsert(batch(from))).await.unwrap().into_inner();
        assert!(response.results.iter().all(|r| r.outcome() == pb::ItemOutcome::Ok));
    }
    // Writes while it may be running: more centers, a delete, an update.
    ops.upsert_repair_centers(upsert(batch(3_000))).await.unwrap();
    ops.delete_repair_center(pb::DeleteRepairCenterRequest { id: "bulk-00007".into(), etag: String::new() })
        .await
        .unwrap();
    let mut renamed = center_east("bulk-00008", 0.5);
    renamed.name = "renamed during compaction".into();
    ops.upsert_repair_centers(upsert(vec![renamed])).await.unwrap();

    let started = std::time::Instant::now();
    while server.app.catalog().delta_len() >= 1_000 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "no compaction within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let catalog = server.app.catalog();
    assert_eq!(catalog.len(), 3_999, "4,000 written, one deleted");
    assert!(get(&server, "bulk-00007").await.is_none());
    assert_eq!(get(&server, "bulk-00008").await.unwrap().name, "renamed during compaction");
    assert!(get(&server, "bulk-03999").await.is_some());
    let found = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(found.total_size, 3_999, "every center covers the merchant");
    server.stop().await;
}

#[tokio::test]
async fn a_bank_app_discovers_the_banks_and_brands_it_may_name_in_pages() {
    let bank = |id: &str| pb::Bank { id: id.into(), name: format!("Bank {id}"), ..icbc_bank() };
    let fixture = Fixture { banks: vec![icbc_bank(), bank("abc"), bank("ccb"), bank("boc")], ..Fixture::default() };
    let fixture =
        Fixture { brands: vec![pax_brand(), pb::Brand { name: "Verifone".into(), ..pax_brand() }], ..fixture };
    let server = TestServer::start(&fixture).await;
    let mut bank_app = server.catalog("icbc").await;

    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = bank_app.list_banks(pb::ListBanksRequest { page_size: 3, page_token }).await.unwrap().into_inner();
        assert!(page.banks.len() <= 3);
        ids.extend(page.banks.iter().map(|b| b.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(ids, ["abc", "boc", "ccb", "icbc"], "every bank once, by id, over two pages");
    let listed = bank_app.list_banks(pb::ListBanksRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.banks.iter().find(|b| b.id == "icbc").unwrap().hotline, "+86 95588");
    let brands = bank_app.list_brands(pb::ListBrandsRequest::default()).await.unwrap().into_inner().brands;
    assert_eq!(brands.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["PAX", "Verifone"]);

    // Where anonymous Find is allowed (the demo), so is discovery.
    let mut anonymous = server.catalog_as(None).await;
    assert_eq!(anonymous.list_banks(pb::ListBanksRequest::default()).await.unwrap().into_inner().banks.len(), 4);
    let refused = anonymous.list_banks(pb::ListBanksRequest { page_size: -1, ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    server.stop().await;

    let server = TestServer::start_adjusted(&fixture, |config| config.auth.allow_anonymous_find = false).await;
    let status = server.catalog_as(None).await.list_banks(pb::ListBanksRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "without the demo setting, a key is needed");
    let status = server.catalog_as(None).await.list_brands(pb::ListBrandsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    server.stop().await;
}
