//! Small hand-built catalogs for unit tests: one merchant in Shanghai and
//! centers placed at known distances from it.

use chrono::{DateTime, TimeZone, Utc};

use crate::catalog::Catalog;
use crate::eligibility::ExclusionRule;
use crate::find::{FindOutcome, find};
use crate::geodesy::LatLng;
use crate::i18n::Text;
use crate::model::{
    Bank, Brand, BrandSupport, CenterKind, Coverage, CurrencyCode, FaultCategory, FaultSet, Money, PriceRange, Rating,
    RepairCenter, ServiceMode, ServiceModeSet, Texts,
};
use crate::profile::RankingProfile;
use crate::query::FindQuery;

/// The merchant.
pub const MERCHANT: LatLng = LatLng::new(31.2304, 121.4737);

/// A point `km` east of the merchant (along the parallel, close enough for tests
/// that only need an ordering; exact-boundary tests measure instead).
pub fn east_of_merchant(km: f64) -> LatLng {
    LatLng::new(MERCHANT.latitude, MERCHANT.longitude + km / (111.32 * MERCHANT.latitude.to_radians().cos()))
}

/// "Now" for every test: Wednesday 2026-11-25, 10:00 UTC (18:00 in Shanghai).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

pub fn cny(amount_minor_units: i64) -> Money {
    Money { currency_code: CurrencyCode::parse("CNY").unwrap(), amount_minor_units }
}

/// A screen repair quoted from `min` to `max` CNY minor units.
pub fn screen_quote(min: i64, max: i64) -> PriceRange {
    PriceRange::new(FaultCategory::Screen, cny(min), cny(max)).unwrap()
}

/// An independent walk-in PAX repairer `km` east of the merchant, covering 30 km,
/// repairing every fault, rated 4.5 from 100 reviews, screens at 100–200 CNY.
pub fn center(id: &str, km: f64) -> RepairCenter {
    RepairCenter {
        id: id.into(),
        name: format!("Center {id}"),
        kind: CenterKind::ThirdParty,
        owner: "provider-test".into(),
        location: east_of_merchant(km),
        texts: Texts { city: "Shanghai", ..Texts::default() }.into(),
        country_code: Some("CN".parse().unwrap()),
        coverage: Coverage { radius_km: Some(30.0), area: None, country_codes: Vec::new() },
        service_modes: [ServiceMode::WalkIn].into_iter().collect(),
        brands: vec![BrandSupport::new("PAX", false, &[])],
        fault_categories: FaultSet::ALL,
        rating: Some(Rating { average: 4.5, count: 100 }),
        prices: Box::new([screen_quote(10_000, 20_000)]),
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

pub fn modes(list: &[ServiceMode]) -> ServiceModeSet {
    list.iter().copied().collect()
}

pub fn authorized(mut center: RepairCenter) -> RepairCenter {
    center.kind = CenterKind::Authorized;
    center.brands = vec![BrandSupport::new("PAX", true, &[])];
    center
}

pub fn catalog(centers: Vec<RepairCenter>) -> Catalog {
    let brand = Brand {
        name: "PAX".into(),
        warranty_months: 12,
        hotline: "+86 400 888 6600".into(),
        online_support_url: "https://support.pax.example".into(),
        support_email: "support@pax.example".into(),
        models: vec!["A920".into()],
        owner: "mfr-pax".into(),
    };
    let bank = Bank {
        id: "icbc".into(),
        name: "ICBC".into(),
        hotline: "95588".into(),
        online_support_url: String::new(),
        support_email: String::new(),
    };
    Catalog::build(7, centers, vec![brand], vec![bank])
}

/// A PAX screen repair for the merchant.
pub fn query() -> FindQuery {
    let mut query = FindQuery::new(MERCHANT, "PAX");
    query.fault = Some(FaultCategory::Screen);
    query.page_size = Some(100);
    query
}

pub fn run(centers: Vec<RepairCenter>, query: &FindQuery) -> FindOutcome {
    run_with(centers, query, &RankingProfile::default())
}

pub fn run_with(centers: Vec<RepairCenter>, query: &FindQuery, profile: &RankingProfile) -> FindOutcome {
    find(&catalog(centers), query, profile, now()).expect("no page token")
}

pub fn ids(outcome: &FindOutcome) -> Vec<&str> {
    outcome.matches.iter().map(|m| m.center.id.as_str()).collect()
}

/// The first rule `center` fails for `query`, or `None` when it is matched.
pub fn first_failed_rule(center: RepairCenter, query: &FindQuery) -> Option<ExclusionRule> {
    let mut query = query.clone();
    query.explain_center_ids = vec![center.id.clone()];
    let outcome = run(vec![center], &query);
    match outcome.exclusions.as_slice() {
        [] => {
            assert_eq!(outcome.total_size, 1, "neither matched nor excluded");
            None
        }
        [exclusion] => {
            assert_eq!(outcome.total_size, 0, "both matched and excluded");
            Some(exclusion.rule)
        }
        more => panic!("one center, several exclusions: {more:?}"),
    }
}

/// Texts as an English answer says them.
pub fn english(texts: &[Text]) -> Vec<String> {
    texts.iter().map(Text::english).collect()
}
