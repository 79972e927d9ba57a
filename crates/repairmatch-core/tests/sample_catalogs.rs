//! The core over realistic `repairmatch-datagen` catalogs: properties that
//! only mean something over thousands of centers spread across the world.
//! (Integration tests, because unit tests inside the core cannot share types
//! with the generator that depends on it.)

use std::collections::HashSet;
use std::sync::Arc;

use repairmatch_core::eligibility::MatchContext;
use repairmatch_core::find::find_with_exact_limit;
use repairmatch_core::geodesy::LatLng;
use repairmatch_core::model::{
    BrandSupport, CenterKind, CenterTexts, Coverage, FaultCategory, FaultSet, Rating, RepairCenter, ServiceMode,
};
use repairmatch_core::profile::Weights;
use repairmatch_core::query::{Ownership, WarrantyClaim, WarrantyStatus};
use repairmatch_core::ranking::score_all;
use repairmatch_core::{Catalog, FindOutcome, FindQuery, RankingProfile};

/// An independent PAX mail-in depot at `location` covering `radius_km`.
fn depot(id: &str, location: LatLng, radius_km: f64) -> RepairCenter {
    RepairCenter {
        id: id.into(),
        name: format!("Depot {id}"),
        kind: CenterKind::ThirdParty,
        owner: "provider-test".into(),
        location,
        texts: CenterTexts::default(),
        country_code: None,
        coverage: Coverage { radius_km: Some(radius_km), area: None, country_codes: Vec::new() },
        service_modes: [ServiceMode::MailIn].into_iter().collect(),
        brands: vec![BrandSupport::new("PAX", false, &[])],
        fault_categories: FaultSet::ALL,
        rating: Some(Rating { average: 4.5, count: 100 }),
        prices: Box::default(),
        opening_hours: None,
        bank_ids: Box::default(),
        turnaround_hours: Box::default(),
        key_injection: false,
        repair_warranty_days: 0,
        active: true,
        etag: String::new(),
        update_time: None,
    }
}

/// The index is a pre-filter: it must never drop a center the rules accept.
#[test]
fn index_finds_exactly_what_a_full_scan_finds() {
    let sample = repairmatch_datagen::generate(10_000, 5);
    let centers = sample.centers;
    // Awkward places: across the antimeridian, at the poles, on the equator.
    let edges =
        [(-17.8, 179.95, 60.0), (-17.8, -179.95, 60.0), (89.9, 0.0, 300.0), (-89.9, 120.0, 300.0), (0.0, 0.0, 50.0)]
            .into_iter()
            .enumerate()
            .map(|(i, (lat, lon, radius_km))| depot(&format!("edge-{i}"), LatLng::new(lat, lon), radius_km));
    // A layered snapshot: a base, then writes that move, delete and add
    // centers (the awkward ones arrive as writes), held in the delta.
    let base = Catalog::build(1, centers.clone(), sample.brands, sample.banks);
    let mut moved: Vec<_> = centers.iter().step_by(37).cloned().collect();
    for center in &mut moved {
        center.location.latitude = (center.location.latitude + 0.05).min(89.0);
    }
    let moved_ids: HashSet<String> = moved.iter().map(|c| c.id.clone()).collect();
    let deleted: Vec<String> = centers
        .iter()
        .skip(11)
        .step_by(41)
        .map(|c| c.id.clone())
        .filter(|id| !moved_ids.contains(id.as_str()))
        .collect();
    moved.extend(edges);
    let catalog = base.apply(2, moved.into_iter().map(Arc::new).collect(), &deleted, vec![], vec![]);
    assert!(!catalog.needs_compaction() && catalog.delta_len() > 0, "the writes stay in the delta layer");
    assert_eq!(catalog.len(), centers.len() - deleted.len() + 5);
    assert!(catalog.center(&deleted[0]).is_none());
    let profile = RankingProfile::default();
    let brands = ["PAX", "Verifone", "Ingenico", "Newland", "Sunmi"];
    let mut queries: Vec<(LatLng, &str)> = repairmatch_datagen::sample_locations(400, 9)
        .into_iter()
        .enumerate()
        .map(|(i, at)| (at, brands[i % 5]))
        .collect();
    let awkward = [
        (LatLng::new(-17.8, -179.99), 2),
        (LatLng::new(-17.8, 179.99), 2),
        (LatLng::new(90.0, 0.0), 1),
        (LatLng::new(89.5, -170.0), 1),
        (LatLng::new(-90.0, 0.0), 1),
        (LatLng::new(0.0, 0.3), 1),
    ];
    queries.extend(awkward.iter().map(|(at, _)| (*at, "PAX")));
    let mut checked = 0;
    for (i, (location, brand)) in queries.into_iter().enumerate() {
        // Vary what the index prefilter checks: fault, wanted modes, rating.
        let mut query = FindQuery::new(location, brand);
        query.fault =
            [None, Some(FaultCategory::Screen), Some(FaultCategory::Tamper), Some(FaultCategory::Software)][i % 4];
        query.service_modes = [&[][..], &[ServiceMode::WalkIn], &[ServiceMode::MailIn, ServiceMode::Exchange]][i % 3]
            .iter()
            .copied()
            .collect();
        query.min_rating = [None, Some(4.2)][(i / 2) % 2];
        if awkward.iter().any(|(at, _)| *at == location) {
            query = FindQuery::new(location, brand);
        }
        let context = MatchContext::new(&query, &profile, WarrantyStatus::Unknown);
        let filter = context.candidate_filter();
        let by_index: HashSet<&str> = catalog
            .candidates(&context.brand_key, &filter)
            .filter(|candidate| context.evaluate(&catalog, *candidate).is_ok())
            .map(|candidate| catalog.center_at(candidate.slot).id.as_str())
            .collect();
        let by_scan: HashSet<&str> = catalog
            .slots()
            .filter(|slot| context.evaluate_slot(&catalog, *slot).is_ok())
            .map(|slot| catalog.center_at(slot).id.as_str())
            .collect();
        assert_eq!(by_index, by_scan, "at {location:?} for {brand}");
        if let Some((_, edge_centers)) = awkward.iter().find(|(at, _)| *at == location) {
            let found = by_scan.iter().filter(|id| id.starts_with("edge-")).count();
            assert_eq!(found, *edge_centers, "awkward place {location:?}: {by_scan:?}");
        }
        checked += by_scan.len();
    }
    assert!(checked > 1_000, "the check saw too few matches to mean much: {checked}");
}

/// The whole ranking by brute force: the rules on every center, every match
/// scored, sorted by the total order.
fn brute_force_ranking(
    catalog: &Catalog,
    query: &FindQuery,
    profile: &RankingProfile,
    warranty: WarrantyStatus,
) -> Vec<String> {
    let context = MatchContext::new(query, profile, warranty);
    let eligible = catalog.slots().filter_map(|slot| context.evaluate_slot(catalog, slot).ok());
    let mut scored = score_all(eligible, profile, catalog);
    scored.sort_by(|a, b| a.rank_cmp(b, catalog));
    scored.iter().map(|m| catalog.center_at(m.eligible.slot).id.clone()).collect()
}

/// A ranking that stops visiting candidates once none left can reach the
/// page must page exactly like one that runs the rules on all of them, and
/// like a brute-force scan, under profiles that weigh distance, price or
/// rating or the repair warranty first, with tiers (bank-deployed, in warranty)
/// and filters (the minimum repair warranty among them).
#[test]
fn a_pruned_ranking_pages_exactly_like_a_full_one() {
    let sample = repairmatch_datagen::generate(10_000, 11);
    let catalog = Catalog::build(1, sample.centers, sample.brands, sample.banks);
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let weights = |distance, rating, price, brand_support, downtime, repair_warranty| Weights {
        distance,
        rating,
        price,
        brand_support,
        downtime,
        repair_warranty,
    };
    let profiles = [
        RankingProfile::default(),
        RankingProfile { weights: weights(0.9, 0.025, 0.025, 0.025, 0.025, 0.0), ..RankingProfile::default() },
        RankingProfile { weights: weights(0.1, 0.1, 0.7, 0.05, 0.05, 0.0), ..RankingProfile::default() },
        RankingProfile { weights: weights(0.05, 0.8, 0.05, 0.05, 0.05, 0.0), ..RankingProfile::default() },
        RankingProfile { weights: weights(0.2, 0.1, 0.1, 0.1, 0.1, 0.4), ..RankingProfile::default() },
    ];
    let brands = ["PAX", "Verifone", "Ingenico", "Newland"];
    let (mut pruned_pages, mut estimated) = (0, 0);
    for (i, location) in repairmatch_datagen::sample_locations(200, 12).into_iter().enumerate() {
        let profile = &profiles[i % profiles.len()];
        let mut query = FindQuery::new(location, brands[i % brands.len()]);
        query.fault = [None, Some(FaultCategory::Screen), Some(FaultCategory::Printer)][i % 3];
        query.page_size = Some([10, 3, 25][i % 3]);
        match i % 5 {
            1 => query.ownership = Ownership::BankDeployed { bank_id: "icbc".into() },
            2 => query.warranty = WarrantyClaim { status: WarrantyStatus::InWarranty, purchase_date: None },
            3 => query.min_rating = Some(4.0),
            4 => query.service_modes = [ServiceMode::WalkIn, ServiceMode::Onsite].into_iter().collect(),
            _ => {}
        }
        if i % 7 == 6 {
            query.min_repair_warranty_days = Some(60);
        }
        let warranty = query.warranty.decide(catalog.brand(&query.brand), now.date_naive());
        let everything = brute_force_ranking(&catalog, &query, profile, warranty);
        for limit in [0, 20] {
            // Walk three pages both ways, each with its own tokens.
            let (mut pruned_query, mut exact_query) = (query.clone(), query.clone());
            let mut position = 0;
            for _ in 0..3 {
                let pruned = find_with_exact_limit(&catalog, &pruned_query, profile, now, limit).unwrap();
                let exact = find_with_exact_limit(&catalog, &exact_query, profile, now, usize::MAX).unwrap();
                let ids = |outcome: &FindOutcome| -> Vec<String> {
                    outcome.matches.iter().map(|m| m.center.id.clone()).collect()
                };
                let at = format!("query {i} at {location:?}, limit {limit}, from rank {}", position + 1);
                assert_eq!(ids(&pruned), ids(&exact), "{at}");
                let expected_page =
                    &everything[position.min(everything.len())..(position + ids(&exact).len()).min(everything.len())];
                assert_eq!(ids(&exact), expected_page, "{at}: the full ranking against brute force");
                let ranks = |outcome: &FindOutcome| -> Vec<u32> { outcome.matches.iter().map(|m| m.rank).collect() };
                assert_eq!(ranks(&pruned), ranks(&exact), "{at}");
                let scores =
                    |outcome: &FindOutcome| -> Vec<f64> { outcome.matches.iter().map(|m| m.scored.score).collect() };
                assert_eq!(scores(&pruned), scores(&exact), "{at}");
                assert_eq!(exact.total_size, everything.len(), "{at}");
                assert!(!exact.total_size_is_estimate);
                if pruned.total_size_is_estimate {
                    estimated += 1;
                    assert!(everything.len() > limit, "{at}: estimated only above the limit");
                } else {
                    assert_eq!(pruned.total_size, everything.len(), "{at}");
                }
                assert_eq!(pruned.next_page_token.is_some(), exact.next_page_token.is_some(), "{at}");
                pruned_pages += usize::from(limit == 0);
                position += exact.matches.len();
                match (pruned.next_page_token, exact.next_page_token) {
                    (Some(pruned_token), Some(exact_token)) => {
                        pruned_query.page_token = Some(pruned_token);
                        exact_query.page_token = Some(exact_token);
                    }
                    _ => break,
                }
            }
        }
    }
    println!("{pruned_pages} pages ranked with the limit at 0, {estimated} stopped early");
    assert!(pruned_pages > 250, "the pruned ranking ran on too few pages: {pruned_pages}");
    assert!(estimated > 25, "too few totals were estimated to test the pruning: {estimated}");
}

/// Nationwide depots among a realistic catalog match a merchant exactly when
/// the reverse geocoder puts the merchant in one of their countries, at
/// population-weighted points, points near borders, and at sea; and
/// radius-covered centers that also serve a country are found once.
#[test]
fn country_coverage_agrees_with_the_reverse_geocoder() {
    use repairmatch_core::country::{CountryCode, country_at};
    let countries = |codes: &[&str]| -> Vec<CountryCode> {
        let mut codes: Vec<CountryCode> = codes.iter().map(|c| c.parse().unwrap()).collect();
        codes.sort_unstable();
        codes
    };
    let nationwide = |id: &str, codes: &[&str], radius_km: Option<f64>| RepairCenter {
        id: id.to_owned(),
        coverage: Coverage { radius_km, area: None, country_codes: countries(codes) },
        ..depot(id, LatLng::new(0.0, 0.0), 1.0)
    };
    let depots = vec![
        nationwide("nat-cn", &["CN"], None),
        nationwide("nat-in", &["IN"], None),
        nationwide("nat-dach", &["DE", "AT", "CH"], None),
        nationwide("nat-br-ar", &["BR", "AR"], None),
        nationwide("nat-us", &["US"], Some(300.0)),
        // In Shanghai, for visits within 100 km, and by post all over China:
        // Shanghai merchants find it through both.
        RepairCenter {
            location: LatLng::new(31.2304, 121.4737),
            ..nationwide("nat-cn-shanghai", &["CN"], Some(100.0))
        },
    ];
    let depot_countries: Vec<(String, Vec<CountryCode>)> =
        depots.iter().map(|d| (d.id.clone(), d.coverage.country_codes.clone())).collect();
    let mut centers = repairmatch_datagen::generate(5_000, 21).centers;
    centers.extend(depots);
    let catalog = Catalog::build(1, centers, vec![], vec![]);

    let mut points = repairmatch_datagen::sample_locations(300, 22);
    // Both sides of borders: Basel/Weil am Rhein, Büsingen (DE inside CH),
    // Shenzhen/Hong Kong, Tijuana/San Diego, Foz do Iguaçu/Puerto Iguazú;
    // and the open sea.
    points.extend(
        [
            (47.5596, 7.5886),
            (47.5930, 7.6200),
            (47.6973, 8.6910),
            (22.5431, 114.0579),
            (22.2793, 114.1628),
            (32.5149, -117.0382),
            (32.7157, -117.1611),
            (-25.5163, -54.5854),
            (-25.5972, -54.5786),
            (0.0, -140.0),
            (31.2304, 121.4737),
            (31.3, 121.5),
        ]
        .map(|(latitude, longitude)| LatLng::new(latitude, longitude)),
    );
    let mut served = 0;
    for location in points {
        let mut query = FindQuery::new(location, "PAX");
        query.service_modes = [ServiceMode::MailIn].into_iter().collect();
        query.page_size = Some(100);
        query.explain_center_ids = depot_countries.iter().map(|(id, _)| id.clone()).collect();
        let now = chrono::Utc::now();
        let outcome = find_with_exact_limit(&catalog, &query, &RankingProfile::default(), now, usize::MAX).unwrap();
        let here = country_at(location);
        for (id, codes) in &depot_countries {
            let expected = here.is_some_and(|country| codes.contains(&country));
            // Eligible = not explained away (it may rank past the first page).
            let eligible = !outcome.exclusions.iter().any(|e| &e.center_id == id);
            // nat-us also reaches 300 km around (0, 0), in the Gulf of Guinea: no merchant there.
            assert_eq!(eligible, expected, "{id} at {location:?} in {here:?}");
            served += usize::from(eligible);
        }
        let ids: HashSet<&str> = outcome.matches.iter().map(|m| m.center.id.as_str()).collect();
        assert_eq!(ids.len(), outcome.matches.len(), "a center found both ways is ranked once");
    }
    assert!(served > 50, "the check saw too few nationwide matches to mean much: {served}");
}
