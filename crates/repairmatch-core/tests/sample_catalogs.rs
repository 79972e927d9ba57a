//! The core over realistic `repairmatch-datagen` catalogs: properties that
//! only mean something over thousands of centers spread across the world.
//! (Integration tests, because unit tests inside the core cannot share types
//! with the generator that depends on it.)

use std::collections::HashSet;
use std::sync::Arc;

use repairmatch_core::eligibility::MatchContext;
use repairmatch_core::geodesy::LatLng;
use repairmatch_core::model::{
    BrandSupport, CenterKind, Contact, Coverage, FaultCategory, FaultSet, Rating, RepairCenter, ServiceMode,
};
use repairmatch_core::query::WarrantyStatus;
use repairmatch_core::{Catalog, FindQuery, RankingProfile};

/// An independent PAX mail-in depot at `location` covering `radius_km`.
fn depot(id: &str, location: LatLng, radius_km: f64) -> RepairCenter {
    RepairCenter {
        id: id.into(),
        name: format!("Depot {id}"),
        kind: CenterKind::ThirdParty,
        owner: "provider-test".into(),
        location,
        address: String::new(),
        city: String::new(),
        country_code: String::new(),
        coverage: Coverage { radius_km: Some(radius_km), area: None },
        service_modes: [ServiceMode::MailIn].into_iter().collect(),
        brands: vec![BrandSupport::new("PAX", false, vec![])],
        fault_categories: FaultSet::ALL,
        rating: Some(Rating { average: 4.5, count: 100 }),
        prices: vec![],
        opening_hours: None,
        contact: Contact::default(),
        bank_ids: vec![],
        turnaround_hours: vec![],
        key_injection: false,
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
