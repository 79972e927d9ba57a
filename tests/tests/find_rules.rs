//! Every eligibility rule, tier and the score breakdown, through a real server.

use repairmatch_core::geodesy::{LatLng, geodesic_distance_km};
use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;

/// Asks about `center` alone and returns the rule it failed (None = matched).
async fn rule_for(center: pb::RepairCenter, mut request: pb::FindRepairCenterRequest) -> Option<pb::ExclusionRule> {
    let id = center.id.clone();
    let server = TestServer::start(&Fixture::with_centers(vec![center])).await;
    request.explain_center_ids = vec![id.clone()];
    let response = server.client().await.find_repair_center(request).await.expect("find").into_inner();
    server.stop().await;
    match response.exclusions.as_slice() {
        [] => {
            assert_eq!(match_ids(&response), [id], "neither matched nor explained");
            None
        }
        [exclusion] => {
            assert!(response.matches.is_empty(), "matched and excluded at once");
            assert_eq!(exclusion.center_id, id);
            assert!(!exclusion.detail.is_empty());
            Some(exclusion.rule())
        }
        more => panic!("{more:?}"),
    }
}

#[tokio::test]
async fn a_center_in_reach_is_matched() {
    assert_eq!(rule_for(center_east("a", 3.0), find_request()).await, None);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut request = find_request();
    request.explain_center_ids = vec!["nobody".into(), "a".into()];
    let response = server.client().await.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(response.exclusions.len(), 1, "a matched center needs no explanation");
    assert_eq!(response.exclusions[0].rule(), pb::ExclusionRule::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn inactive() {
    let mut center = center_east("a", 3.0);
    center.active = false;
    assert_eq!(rule_for(center, find_request()).await, Some(pb::ExclusionRule::Inactive));
}

#[tokio::test]
async fn brand_case_insensitive_and_other_brands_excluded() {
    let mut request = find_request();
    request.terminal.as_mut().unwrap().brand = "pax".into();
    assert_eq!(rule_for(center_east("a", 3.0), request.clone()).await, None);
    request.terminal.as_mut().unwrap().brand = "Ingenico".into();
    assert_eq!(rule_for(center_east("a", 3.0), request).await, Some(pb::ExclusionRule::Brand));
}

#[tokio::test]
async fn model() {
    let mut center = center_east("a", 3.0);
    center.brands[0].models = vec!["A920".into()];
    let mut request = find_request();
    request.terminal.as_mut().unwrap().model = "A80".into();
    assert_eq!(rule_for(center.clone(), request.clone()).await, Some(pb::ExclusionRule::Model));
    request.terminal.as_mut().unwrap().model = "a920".into();
    assert_eq!(rule_for(center, request).await, None);
}

#[tokio::test]
async fn a_model_asked_in_lower_case_is_named_as_the_catalog_spells_it() {
    let mut lists_a920 = center_east("lists-a920", 3.0);
    lists_a920.brands[0].models = vec!["A920".into()];
    let mut lists_a80 = center_east("lists-a80", 4.0);
    lists_a80.brands[0].models = vec!["A80".into()];
    let server = TestServer::start(&Fixture::with_centers(vec![lists_a920, lists_a80])).await;
    let mut request = find_request();
    request.terminal = Some(pb::Terminal { brand: "pax".into(), model: "a920".into(), serial_number: String::new() });
    request.explain_center_ids = vec!["lists-a80".into()];
    let response = server.client().await.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["lists-a920"]);
    let reasons = &response.matches[0].reasons;
    assert!(reasons.iter().any(|r| r == "repairs the A920"), "{reasons:?}");
    assert!(reasons.iter().all(|r| !r.contains("a920")), "{reasons:?}");
    assert_eq!(response.exclusions[0].detail, "repairs PAX but not the A920");
    server.stop().await;
}

#[tokio::test]
async fn fault() {
    let mut center = center_east("a", 3.0);
    center.fault_categories = vec![pb::FaultCategory::Printer as i32];
    assert_eq!(rule_for(center, find_request()).await, Some(pb::ExclusionRule::Fault));
}

#[tokio::test]
async fn coverage_radius_exact_boundary() {
    let (latitude, longitude) = east_of_shanghai(17.0);
    let distance_km = geodesic_distance_km(LatLng::new(SHANGHAI.0, SHANGHAI.1), LatLng::new(latitude, longitude));
    let mut on_the_edge = center("edge", latitude, longitude);
    on_the_edge.coverage = Some(pb::Coverage { radius_km: distance_km, polygon: None, country_codes: vec![] });
    assert_eq!(rule_for(on_the_edge.clone(), find_request()).await, None);
    on_the_edge.coverage = Some(pb::Coverage { radius_km: distance_km - 1e-9, polygon: None, country_codes: vec![] });
    assert_eq!(rule_for(on_the_edge, find_request()).await, Some(pb::ExclusionRule::Coverage));
}

fn ring(points: &[(f64, f64)]) -> pb::LinearRing {
    pb::LinearRing { points: points.iter().map(|&(latitude, longitude)| pb::LatLng { latitude, longitude }).collect() }
}

#[tokio::test]
async fn coverage_polygon() {
    let (lat, lon) = SHANGHAI;
    let square = |half: f64| {
        ring(&[
            (lat - half, lon - half),
            (lat - half, lon + half),
            (lat + half, lon + half),
            (lat + half, lon - half),
            (lat - half, lon - half),
        ])
    };
    let mut polygon = center_east("poly", 3.0);
    polygon.coverage = Some(pb::Coverage {
        radius_km: 0.0,
        polygon: Some(pb::Polygon { exterior: Some(square(0.2)), holes: vec![] }),
        country_codes: vec![],
    });
    assert_eq!(rule_for(polygon.clone(), find_request()).await, None);
    polygon.coverage = Some(pb::Coverage {
        radius_km: 0.0,
        polygon: Some(pb::Polygon { exterior: Some(square(0.2)), holes: vec![square(0.05)] }),
        country_codes: vec![],
    });
    assert_eq!(rule_for(polygon, find_request()).await, Some(pb::ExclusionRule::Coverage), "merchant in a hole");
}

#[tokio::test]
async fn coverage_across_the_antimeridian() {
    // A Fiji depot east of the antimeridian, a merchant just west of it.
    let mut depot = center("fiji", -17.8, -179.9);
    depot.service_modes = vec![pb::ServiceMode::MailIn as i32];
    depot.coverage = Some(pb::Coverage { radius_km: 100.0, polygon: None, country_codes: vec![] });
    let mut request = find_request();
    request.location = Some(pb::LatLng { latitude: -17.8, longitude: 179.8 });
    assert_eq!(rule_for(depot.clone(), request.clone()).await, None);
    request.location = Some(pb::LatLng { latitude: -17.8, longitude: 178.0 });
    assert_eq!(rule_for(depot, request).await, Some(pb::ExclusionRule::Coverage));
}

#[tokio::test]
async fn distance_cap_binds_walk_in_and_onsite_only() {
    let mut request = find_request();
    request.max_distance_km = 5.0;
    assert_eq!(rule_for(center_east("walk-in", 8.0), request.clone()).await, Some(pb::ExclusionRule::DistanceCap));

    let mut depot = center_east("depot", 8.0);
    depot.service_modes = vec![pb::ServiceMode::WalkIn as i32, pb::ServiceMode::MailIn as i32];
    let server = TestServer::start(&Fixture::with_centers(vec![depot])).await;
    let response = server.client().await.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(response.matches[0].service_modes, [pb::ServiceMode::MailIn as i32], "walk-in is beyond the cap");
    server.stop().await;
}

#[tokio::test]
async fn service_mode() {
    let mut request = find_request();
    request.service_modes = vec![pb::ServiceMode::Onsite as i32];
    assert_eq!(rule_for(center_east("a", 3.0), request).await, Some(pb::ExclusionRule::ServiceMode));
}

#[tokio::test]
async fn rating() {
    let mut request = find_request();
    request.min_rating = 4.6;
    assert_eq!(rule_for(center_east("a", 3.0), request.clone()).await, Some(pb::ExclusionRule::Rating));
    request.min_rating = 4.5;
    assert_eq!(rule_for(center_east("a", 3.0), request.clone()).await, None);
    let mut unrated = center_east("b", 3.0);
    unrated.rating = None;
    request.min_rating = 1.0;
    assert_eq!(rule_for(unrated, request).await, Some(pb::ExclusionRule::Rating), "no reviews = not met");
}

#[tokio::test]
async fn price() {
    let mut request = find_request();
    request.max_price = Some(cny(9_999));
    assert_eq!(rule_for(center_east("a", 3.0), request.clone()).await, Some(pb::ExclusionRule::Price));
    request.max_price = Some(cny(10_000));
    assert_eq!(rule_for(center_east("a", 3.0), request.clone()).await, None);
    request.max_price = Some(pb::Money { currency_code: "EUR".into(), amount_minor_units: 1_000_000 });
    assert_eq!(rule_for(center_east("a", 3.0), request).await, Some(pb::ExclusionRule::Price), "other currency");
}

#[tokio::test]
async fn closed_at_open_at_in_local_time_and_unknown_hours_stay() {
    let mut shop = center_east("shop", 3.0);
    shop.opening_hours = Some(pb::OpeningHours {
        time_zone: "Asia/Shanghai".into(),
        periods: vec![pb::WeeklyPeriod {
            day: pb::DayOfWeek::Wednesday as i32,
            open_minute_of_day: 540,
            close_minute_of_day: 1080,
        }],
        exceptions: vec![pb::DatedException { date: "2026-12-02".into(), closed: true, periods: vec![] }],
    });
    let mut request = find_request();
    // Wednesday 2026-11-25 09:30 UTC = 17:30 in Shanghai: open.
    request.open_at = Some(repairmatch_proto::Timestamp { seconds: 1_795_599_000, nanos: 0 });
    assert_eq!(rule_for(shop.clone(), request.clone()).await, None);
    // 10:00 UTC = 18:00 in Shanghai: closed.
    request.open_at = Some(repairmatch_proto::Timestamp { seconds: 1_795_600_800, nanos: 0 });
    assert_eq!(rule_for(shop.clone(), request.clone()).await, Some(pb::ExclusionRule::Closed));
    // A week later, same time of day, is a dated closure.
    request.open_at = Some(repairmatch_proto::Timestamp { seconds: 1_795_599_000 + 7 * 86_400, nanos: 0 });
    assert_eq!(rule_for(shop, request.clone()).await, Some(pb::ExclusionRule::Closed));

    let server = TestServer::start(&Fixture::with_centers(vec![center_east("no-hours", 3.0)])).await;
    let response = server.client().await.find_repair_center(request).await.unwrap().into_inner();
    assert!(response.matches[0].reasons.iter().any(|r| r == "hours unknown"));
    server.stop().await;
}

#[tokio::test]
async fn tamper_policy() {
    let mut request = find_request();
    request.fault.as_mut().unwrap().category = pb::FaultCategory::Tamper as i32;
    assert_eq!(rule_for(center_east("independent", 3.0), request.clone()).await, Some(pb::ExclusionRule::Policy));
    let mut authorized = center_east("authorized", 3.0);
    authorized.kind = pb::RepairCenterKind::Authorized as i32;
    authorized.brands[0].authorized = true;
    authorized.key_injection = true;
    assert_eq!(rule_for(authorized, request).await, None);
}

#[tokio::test]
async fn tiers_put_the_banks_service_point_then_warranty_centers_first() {
    let mut bank_point = center_east("bank-point", 20.0);
    bank_point.kind = pb::RepairCenterKind::BankService as i32;
    bank_point.bank_ids = vec!["icbc".into()];
    bank_point.rating = Some(pb::Rating { average: 3.1, count: 12 });
    let mut authorized = center_east("authorized", 15.0);
    authorized.kind = pb::RepairCenterKind::Authorized as i32;
    authorized.brands[0].authorized = true;
    let close = center_east("close", 1.0);
    let server = TestServer::start(&Fixture::with_centers(vec![close, authorized, bank_point])).await;
    let mut client = server.client().await;

    let mut request = find_request();
    request.ownership = pb::Ownership::BankDeployed as i32;
    request.bank_id = "icbc".into();
    request.warranty =
        Some(pb::Warranty { status: pb::WarrantyStatus::InWarranty as i32, purchase_date: String::new() });
    let response = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["bank-point", "authorized", "close"]);
    let tiers: Vec<u32> = response.matches.iter().map(|m| m.tier).collect();
    assert_eq!(tiers, [1, 2, 3], "the bank's point is not authorized, so it sits below a bank+warranty match");
    assert!(response.matches[1].warranty_covered);
    assert_eq!(response.remote_support.as_ref().unwrap().channels[0].provider_type, "bank");
    assert_eq!(response.remote_support.as_ref().unwrap().channels[1].provider_type, "brand");

    // Merchant-owned, warranty decided from the purchase date (PAX: 12 months).
    request.ownership = pb::Ownership::MerchantOwned as i32;
    request.bank_id.clear();
    request.warranty =
        Some(pb::Warranty { status: pb::WarrantyStatus::Unknown as i32, purchase_date: "2026-06-01".into() });
    let response = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!(response.warranty_status(), pb::WarrantyStatus::InWarranty);
    assert_eq!(match_ids(&response), ["authorized", "close"], "a bank point serves only its banks' terminals");
    request.warranty =
        Some(pb::Warranty { status: pb::WarrantyStatus::Unknown as i32, purchase_date: "2024-06-01".into() });
    let response = client.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(response.warranty_status(), pb::WarrantyStatus::OutOfWarranty);
    assert_eq!(match_ids(&response)[0], "close");
    server.stop().await;
}

#[tokio::test]
async fn breakdown_contributions_sum_to_the_score() {
    let centers = (0..20).map(|i| center_east(&format!("c{i}"), 0.5 + f64::from(i))).collect();
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let response = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(response.matches.len(), 20);
    for m in &response.matches {
        let factors: Vec<&str> = m.score_breakdown.iter().map(|c| c.factor.as_str()).collect();
        assert_eq!(factors, ["distance", "rating", "price", "brand_support", "downtime", "repair_warranty"]);
        let sum: f64 = m.score_breakdown.iter().map(|c| c.contribution).sum();
        assert!((sum - m.score).abs() < 1e-12, "{sum} vs {}", m.score);
        assert!(m.estimated_price.is_some());
        assert!(!m.reasons.is_empty());
    }
    let scores: Vec<f64> = response.matches.iter().map(|m| m.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "one tier: ordered by score");
    server.stop().await;
}

#[tokio::test]
async fn nobody_covering_still_gets_remote_support_and_guidance() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut request = find_request();
    request.location = Some(pb::LatLng { latitude: -33.87, longitude: 151.21 });
    let response = server.client().await.find_repair_center(request).await.unwrap().into_inner();
    assert!(response.matches.is_empty());
    assert_eq!(response.total_size, 0);
    let channels = &response.remote_support.as_ref().unwrap().channels;
    assert_eq!(channels[0].hotline, "+86 400 888 6600");
    assert!(response.guidance.iter().any(|g| g.contains("No repair center covers")));
    server.stop().await;
}

#[tokio::test]
async fn quotes_are_shown_in_each_currencys_minor_unit() {
    let money =
        |currency_code: &str, amount_minor_units| pb::Money { currency_code: currency_code.into(), amount_minor_units };
    let quoting = |id: &str, km: f64, currency_code: &str, low: i64, high: i64| {
        let mut center = center_east(id, km);
        center.prices[0].min = Some(money(currency_code, low));
        center.prices[0].max = Some(money(currency_code, high));
        center
    };
    let centers = vec![
        quoting("yen", 1.0, "JPY", 7_897, 12_500),
        quoting("dinar", 2.0, "BHD", 1_234, 2_005),
        quoting("yuan", 3.0, "CNY", 34_200, 68_300),
    ];
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let response = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    let quote_of = |id: &str| {
        let found = response.matches.iter().find(|m| m.center.as_ref().unwrap().id == id).expect(id);
        found.reasons.iter().find(|r| r.starts_with("quotes ")).cloned().unwrap_or_default()
    };
    assert_eq!(quote_of("yen"), "quotes 7897 JPY–12500 JPY", "the yen has no minor unit");
    assert_eq!(quote_of("dinar"), "quotes 1.234 BHD–2.005 BHD", "the Bahraini dinar has three decimals");
    assert_eq!(quote_of("yuan"), "quotes 342.00 CNY–683.00 CNY");
    server.stop().await;
}

/// A center guaranteeing its repair `days` days, publishing its terms when `terms`.
fn guaranteeing(id: &str, km: f64, days: u32, terms: bool) -> pb::RepairCenter {
    let mut center = center_east(id, km);
    center.repair_warranty_days = days;
    if terms {
        center.terms_url = format!("https://repairs.example/{id}/terms");
    }
    center
}

#[tokio::test]
async fn a_minimum_repair_warranty_filters_explains_and_shows_the_warranty_and_terms() {
    let centers = vec![
        guaranteeing("guaranteed", 3.0, 180, true),
        guaranteeing("short", 1.0, 30, false),
        guaranteeing("silent", 2.0, 0, false),
    ];
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let mut client = server.client().await;
    let request = pb::FindRepairCenterRequest {
        min_repair_warranty_days: 90,
        explain_center_ids: vec!["short".into(), "silent".into()],
        ..find_request()
    };
    let response = client.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["guaranteed"]);
    let found = &response.matches[0];
    let center = found.center.as_ref().unwrap();
    assert_eq!(
        (center.repair_warranty_days, center.terms_url.as_str()),
        (180, "https://repairs.example/guaranteed/terms")
    );
    assert!(found.reasons.iter().any(|r| r == "180-day warranty on the repair"), "{:?}", found.reasons);
    assert!(found.reasons.iter().any(|r| r == "service terms: https://repairs.example/guaranteed/terms"));
    assert!(response.guidance.iter().any(|g| g.contains("warranty on the repair and its service terms")));
    let rules: Vec<(&str, pb::ExclusionRule, &str)> =
        response.exclusions.iter().map(|e| (e.center_id.as_str(), e.rule(), e.detail.as_str())).collect();
    assert_eq!(
        rules,
        [
            ("short", pb::ExclusionRule::Terms, "guarantees its repairs for 30 days, fewer than the 90 asked"),
            ("silent", pb::ExclusionRule::Terms, "publishes no warranty on its repairs"),
        ]
    );

    // Nobody guarantees a year: the empty answer says so.
    let request = pb::FindRepairCenterRequest { min_repair_warranty_days: 365, ..find_request() };
    let response = client.find_repair_center(request).await.unwrap().into_inner();
    assert!(response.matches.is_empty());
    assert!(
        response.guidance[0]
            .contains("the 365-day minimum warranty on the repair, as the longest they give is 180 days"),
        "{:?}",
        response.guidance
    );
    server.stop().await;
}

#[tokio::test]
async fn a_profile_may_weigh_the_repair_warranty_and_the_default_does_not() {
    let centers = vec![
        guaranteeing("month", 1.0, 30, false),
        guaranteeing("year", 1.0, 365, true),
        guaranteeing("none", 1.0, 0, false),
    ];
    let fixture = Fixture::with_centers(centers);
    let server = TestServer::start(&fixture).await;
    let response = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    for m in &response.matches {
        let warranty = m.score_breakdown.iter().find(|c| c.factor == "repair_warranty").unwrap();
        assert_eq!(warranty.weight, 0.0, "off in the default profile");
    }
    server.stop().await;

    let server = TestServer::start_adjusted(&fixture, |config| {
        let profile = config.profiles.get_mut("default").unwrap();
        profile.weights.repair_warranty = 1.0;
        profile.weights.distance = 0.0;
        profile.weights.rating = 0.0;
        profile.weights.price = 0.0;
        profile.weights.brand_support = 0.0;
        profile.weights.downtime = 0.0;
    })
    .await;
    let response = server.client().await.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["year", "month", "none"]);
    let year = response.matches[0].score_breakdown.iter().find(|c| c.factor == "repair_warranty").unwrap();
    assert_eq!((year.raw_value, year.normalized_value, year.weight), (365.0, 1.0, 1.0));
    server.stop().await;
}

#[tokio::test]
async fn impossible_warranty_and_terms_values_are_refused_naming_the_field() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("c", 1.0)])).await;
    let request = pb::FindRepairCenterRequest { min_repair_warranty_days: 4_000, ..find_request() };
    let status = server.client().await.find_repair_center(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        bad_request_violations(&status),
        [("min_repair_warranty_days".into(), "must be at most 3650 (ten years)".into())]
    );

    let mut bad = guaranteeing("bad", 1.0, 5_000, false);
    bad.terms_url = "http://repairs.example/terms".into();
    let request = pb::UpsertRepairCentersRequest { centers: vec![bad] };
    let response = server.catalog("provider-fix").await.upsert_repair_centers(request).await.unwrap().into_inner();
    let result = &response.results[0];
    assert_eq!(result.outcome(), pb::ItemOutcome::InvalidArgument);
    let fields: Vec<&str> = result.field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["centers[0].repair_warranty_days", "centers[0].terms_url"]);
    server.stop().await;
}

/// A PAX mail-in depot far from everyone, serving `countries` nationwide.
fn national_depot(id: &str, countries: &[&str]) -> pb::RepairCenter {
    let mut depot = center_east(id, 1_200.0);
    depot.coverage = Some(pb::Coverage {
        radius_km: 0.0,
        polygon: None,
        country_codes: countries.iter().map(|c| (*c).to_owned()).collect(),
    });
    depot.service_modes = vec![pb::ServiceMode::MailIn as i32, pb::ServiceMode::Exchange as i32];
    depot
}

#[tokio::test]
async fn a_national_depot_covers_its_country_whatever_the_distance_and_stops_at_the_border() {
    let server = TestServer::start(&Fixture::with_centers(vec![national_depot("cn-depot", &["CN"])])).await;
    let mut client = server.client().await;
    let response = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["cn-depot"], "Shanghai is in China, 1,200 km is no matter");
    let modes: Vec<i32> = response.matches[0].service_modes.clone();
    assert_eq!(modes, [pb::ServiceMode::MailIn as i32, pb::ServiceMode::Exchange as i32]);

    // Across the border in Hong Kong (its own country code), outside coverage...
    let hong_kong = || pb::FindRepairCenterRequest {
        location: Some(pb::LatLng { latitude: 22.2793, longitude: 114.1628 }),
        explain_center_ids: vec!["cn-depot".into()],
        ..find_request()
    };
    let response = client.find_repair_center(hong_kong()).await.unwrap().into_inner();
    assert!(response.matches.is_empty());
    assert_eq!(response.exclusions[0].rule(), pb::ExclusionRule::Coverage);
    // ...unless the caller says the merchant is in China.
    let said = pb::FindRepairCenterRequest { country_code: "CN".into(), ..hong_kong() };
    let response = client.find_repair_center(said).await.unwrap().into_inner();
    assert_eq!(match_ids(&response), ["cn-depot"]);
    // A visit needs a radius or a polygon.
    let walk_in = pb::FindRepairCenterRequest {
        service_modes: vec![pb::ServiceMode::WalkIn as i32],
        explain_center_ids: vec!["cn-depot".into()],
        ..find_request()
    };
    let response = client.find_repair_center(walk_in).await.unwrap().into_inner();
    assert_eq!(response.exclusions[0].rule(), pb::ExclusionRule::Coverage);

    let bad = pb::FindRepairCenterRequest { country_code: "China".into(), ..find_request() };
    let status = client.find_repair_center(bad).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_request_violations(&status)[0].0, "country_code");
    server.stop().await;
}

#[tokio::test]
async fn country_coverage_is_checked_when_written() {
    let server = TestServer::start(&Fixture::with_centers(vec![])).await;
    let mut lower_case = national_depot("lower", &["cn", "CN"]);
    lower_case.id = "lower".into();
    let mut repeated = national_depot("repeated", &["CN", "CN"]);
    repeated.id = "repeated".into();
    let mut visits_only = national_depot("visits", &["CN"]);
    visits_only.service_modes = vec![pb::ServiceMode::WalkIn as i32];
    let request = pb::UpsertRepairCentersRequest { centers: vec![lower_case, repeated, visits_only] };
    let response = server.catalog("provider-fix").await.upsert_repair_centers(request).await.unwrap().into_inner();
    let fields = |i: usize| -> Vec<String> {
        response.results[i].field_violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect()
    };
    assert_eq!(
        fields(0),
        ["centers[0].coverage.country_codes[0]: must be an ISO 3166-1 alpha-2 code: two upper-case letters, like CN"]
    );
    assert_eq!(fields(1), ["centers[1].coverage.country_codes[1]: CN is listed twice"]);
    assert_eq!(fields(2).len(), 1);
    assert!(fields(2)[0].starts_with("centers[2].coverage: covering countries alone"), "{:?}", fields(2));
    server.stop().await;
}
