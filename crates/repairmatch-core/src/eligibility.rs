//! The eligibility rules, checked in the contract's order.
//!
//! One function decides both whether a center is matched and, when it is not,
//! the first rule it failed: the ranking and the explanations can never
//! disagree.

use crate::catalog::{BrandFacts, Candidate, Catalog, Slot};
use crate::country::{CountryCode, country_at};
use crate::geodesy::{ReducedPoint, within_km};
use crate::hours::{OpenState, open_state};
use crate::i18n::{Arg, Text};
use crate::model::{
    Brand, BrandSupport, CenterKind, CurrencyCode, FaultCategory, FaultSet, Money, ServiceMode, ServiceModeSet,
    match_key, price_for,
};
use crate::profile::RankingProfile;
use crate::query::{FindQuery, WarrantyStatus};

/// The rule an expected center failed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionRule {
    /// No center has that id.
    NotFound,
    /// Inactive.
    Inactive,
    /// Does not repair the brand.
    Brand,
    /// Does not repair the model.
    Model,
    /// Does not repair the fault.
    Fault,
    /// The merchant is outside its coverage.
    Coverage,
    /// Beyond the trip cap with only trip modes left.
    DistanceCap,
    /// None of the wanted modes.
    ServiceMode,
    /// Below the minimum rating, or unrated.
    Rating,
    /// Above the price cap, unpriced, or in another currency.
    Price,
    /// Its warranty on the repair is shorter than asked, or unpublished.
    Terms,
    /// Closed at the asked time.
    Closed,
    /// A profile policy rules it out.
    Policy,
}

/// Why one center is not matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Exclusion {
    /// The center asked about.
    pub center_id: String,
    /// The first rule it failed.
    pub rule: ExclusionRule,
    /// A short detail for people: rendered in the request's language.
    pub detail: Text,
}

/// How well a center supports the terminal's brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrandSupportLevel {
    /// Authorized by the maker.
    Authorized,
    /// Lists the requested model by name.
    ModelListed,
    /// Lists the brand.
    BrandListed,
}

/// Why a center was turned down: plain data, cheap to make for every
/// candidate. The words are built only when a caller asks for an explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rejection {
    /// Inactive.
    Inactive,
    /// Does not list the brand.
    Brand,
    /// Lists models, not this one.
    Model,
    /// Does not repair the fault.
    Fault,
    /// Outside the coverage.
    Coverage {
        /// How far the center is, km.
        distance_km: f64,
    },
    /// Beyond the trip cap with only trip modes left.
    DistanceCap {
        /// How far the center is, km.
        distance_km: f64,
    },
    /// None of the wanted modes.
    ServiceMode,
    /// No reviews and a minimum rating was asked.
    Unrated,
    /// Rated below the minimum.
    RatedBelow {
        /// Its published average.
        average: f64,
    },
    /// No price for the fault, and a price cap was asked.
    Unpriced,
    /// Prices in another currency than the cap's.
    OtherCurrency {
        /// Its currency.
        currency_code: CurrencyCode,
    },
    /// The low end of its price is above the cap.
    AbovePriceCap {
        /// That low end, in the cap's currency.
        lowest: Money,
    },
    /// Guarantees its repair for fewer days than asked (0: publishes none).
    ShortRepairWarranty {
        /// Its repair warranty, days.
        days: u32,
    },
    /// Closed at the asked time.
    Closed,
    /// A bank service point of other banks.
    OtherBanksOnly,
    /// Tamper policy leaves no usable mode.
    TamperPolicy,
    /// Only a remote session was usable, and it cannot fix the fault.
    RemoteCannotFix,
}

impl Rejection {
    /// The contract's rule.
    pub fn rule(self) -> ExclusionRule {
        match self {
            Rejection::Inactive => ExclusionRule::Inactive,
            Rejection::Brand => ExclusionRule::Brand,
            Rejection::Model => ExclusionRule::Model,
            Rejection::Fault => ExclusionRule::Fault,
            Rejection::Coverage { .. } => ExclusionRule::Coverage,
            Rejection::DistanceCap { .. } => ExclusionRule::DistanceCap,
            Rejection::ServiceMode => ExclusionRule::ServiceMode,
            Rejection::Unrated | Rejection::RatedBelow { .. } => ExclusionRule::Rating,
            Rejection::Unpriced | Rejection::OtherCurrency { .. } | Rejection::AbovePriceCap { .. } => {
                ExclusionRule::Price
            }
            Rejection::ShortRepairWarranty { .. } => ExclusionRule::Terms,
            Rejection::Closed => ExclusionRule::Closed,
            Rejection::OtherBanksOnly | Rejection::TamperPolicy | Rejection::RemoteCannotFix => ExclusionRule::Policy,
        }
    }

    /// A short detail for people, in no language yet.
    pub fn detail(self, context: &MatchContext<'_>) -> Text {
        let query = context.query;
        let brand = context.brand_name.as_str();
        match self {
            Rejection::Inactive => Text::new("exclusion-inactive"),
            Rejection::Brand => Text::new("exclusion-brand").with("brand", brand),
            Rejection::Model => Text::new("exclusion-model")
                .with("brand", brand)
                .with("model", context.model_name.as_deref().unwrap_or_default()),
            Rejection::Fault => Text::new("exclusion-fault").with("fault", FaultCategory::text_of(query.fault)),
            Rejection::Coverage { distance_km } => {
                Text::new("exclusion-coverage").with("distance_km", Arg::decimal(distance_km, 1))
            }
            Rejection::DistanceCap { distance_km } => Text::new("exclusion-distance-cap")
                .with("distance_km", Arg::decimal(distance_km, 1))
                .with("cap_km", Arg::decimal(context.distance_cap_km, 0)),
            Rejection::ServiceMode => Text::new("exclusion-service-mode"),
            Rejection::Unrated => Text::new("exclusion-unrated"),
            Rejection::RatedBelow { average } => Text::new("exclusion-rated-below")
                .with("average", Arg::decimal(average, 1))
                .with("min_rating", Arg::decimal(query.min_rating.unwrap_or_default(), 1)),
            Rejection::Unpriced => Text::new("exclusion-unpriced"),
            Rejection::OtherCurrency { currency_code } => Text::new("exclusion-other-currency")
                .with("currency", currency_code.as_str())
                .with("cap_currency", query.max_price.as_ref().map_or("", |cap| cap.currency_code.as_str())),
            Rejection::AbovePriceCap { lowest } => Text::new("exclusion-above-price-cap").with("lowest", lowest),
            Rejection::ShortRepairWarranty { days: 0 } => Text::new("exclusion-repair-warranty-unpublished"),
            Rejection::ShortRepairWarranty { days } => Text::new("exclusion-repair-warranty-short")
                .with("days", Arg::Count(u64::from(days)))
                .with("min_days", Arg::Count(u64::from(query.min_repair_warranty_days.unwrap_or_default()))),
            Rejection::Closed => Text::new("exclusion-closed"),
            Rejection::OtherBanksOnly => Text::new("exclusion-other-banks-only"),
            Rejection::TamperPolicy => Text::new("exclusion-tamper-policy"),
            Rejection::RemoteCannotFix => Text::new("exclusion-remote-cannot-fix"),
        }
    }
}

/// A center that passed every rule, with what the rules learned about it.
#[derive(Debug, Clone, Copy)]
pub struct Eligible {
    /// The center's slot in the snapshot.
    pub slot: Slot,
    /// Distance from the merchant, km ([`distance_km`]).
    pub distance_km: f64,
    /// Modes usable for this request.
    pub usable_modes: ServiceModeSet,
    /// Beyond the trip cap: usable only through non-trip modes.
    pub beyond_distance_cap: bool,
    /// `open_at` was asked and the center publishes no hours.
    pub hours_unknown: bool,
    /// Brand support.
    pub brand_support: BrandSupportLevel,
    /// Quote for this fault.
    pub price: Option<(Money, Money)>,
    /// The repair is covered by the warranty here.
    pub warranty_covered: bool,
    /// 0 ranks first.
    pub tier: u32,
}

/// A request prepared for evaluating many centers.
#[derive(Debug)]
pub struct MatchContext<'a> {
    /// The request.
    pub query: &'a FindQuery,
    /// The profile ranking it.
    pub profile: &'a RankingProfile,
    /// The lower-cased brand.
    pub brand_key: String,
    /// The brand as the catalog spells it, for words meant for people.
    pub brand_name: String,
    model_key: Option<String>,
    /// The model as the catalog spells it, for words meant for people.
    pub model_name: Option<String>,
    wanted_modes: ServiceModeSet,
    /// The trip cap in force, km.
    pub distance_cap_km: f64,
    /// The warranty status acted on.
    pub warranty: WarrantyStatus,
    remote_faults: FaultSet,
    merchant: ReducedPoint,
    /// The merchant's country: as the caller said, else where it is.
    pub merchant_country: Option<CountryCode>,
}

impl<'a> MatchContext<'a> {
    /// Prepares a request; `warranty` is the decided status. Brand and model
    /// are named as asked until [`MatchContext::spell_as`] knows better.
    pub fn new(query: &'a FindQuery, profile: &'a RankingProfile, warranty: WarrantyStatus) -> Self {
        Self {
            query,
            profile,
            brand_key: query.brand_key(),
            brand_name: query.brand.trim().to_owned(),
            model_key: query.model.as_deref().map(match_key),
            model_name: query.model.as_deref().map(|model| model.trim().to_owned()),
            wanted_modes: if query.service_modes.is_empty() { ServiceModeSet::ALL } else { query.service_modes },
            distance_cap_km: query.max_distance_km.unwrap_or(profile.default_distance_cap_km),
            warranty,
            remote_faults: profile.policies.remote_fault_categories.iter().copied().collect(),
            merchant: ReducedPoint::new(query.location),
            merchant_country: query.country_code.or_else(|| country_at(query.location)),
        }
    }

    /// Names the brand and model as the brand's catalog record spells them
    /// (callers type "pax a920"; the answer should read "PAX A920"). A model
    /// the record does not list keeps the asker's spelling.
    pub fn spell_as(&mut self, brand: Option<&Brand>) {
        let Some(brand) = brand else { return };
        self.brand_name.clone_from(&brand.name);
        if let Some(model_key) = &self.model_key
            && let Some(model) = brand.models.iter().find(|model| match_key(model) == *model_key)
        {
            self.model_name = Some(model.clone());
        }
    }

    /// The model as `support` lists it, else as [`MatchContext::model_name`].
    pub fn model_name_in<'s>(&'s self, support: Option<&'s BrandSupport>) -> &'s str {
        let listed = self.model_key.as_deref().and_then(|model_key| support?.listed_model(model_key));
        listed.or(self.model_name.as_deref()).unwrap_or_default()
    }

    /// What the index may rule out before the rules run: only what
    /// [`MatchContext::evaluate`] would turn down too.
    pub fn candidate_filter(&self) -> CandidateFilter {
        CandidateFilter {
            merchant: self.query.location.unit_vector(),
            fault: self.query.fault,
            wanted_modes: self.wanted_modes,
            min_rating: self.query.min_rating,
            country: self.merchant_country,
        }
    }

    /// Checks every rule for a center the index found.
    pub fn evaluate(&self, catalog: &Catalog, candidate: Candidate) -> Result<Eligible, Rejection> {
        self.check(catalog, candidate.slot, Some(candidate.brand))
    }

    /// Checks every rule for any center (explanations, full scans).
    pub fn evaluate_slot(&self, catalog: &Catalog, slot: Slot) -> Result<Eligible, Rejection> {
        self.check(catalog, slot, BrandFacts::find(catalog.center_at(slot), &self.brand_key))
    }

    /// The rules, in the contract's order; the first failure is the answer.
    /// Reads the flat facts, and the full center only for what only it holds
    /// (model lists, polygons, hours, bank ids), so most checks stay in cache.
    fn check(&self, catalog: &Catalog, slot: Slot, brand: Option<BrandFacts>) -> Result<Eligible, Rejection> {
        let query = self.query;
        let facts = catalog.facts(slot);
        let center = || catalog.center_at(slot);
        if !facts.active {
            return Err(Rejection::Inactive);
        }
        let brand = brand.ok_or(Rejection::Brand)?;
        let lists_model = |model_key: &str| center().brands[usize::from(brand.index)].lists_model(model_key);
        if let Some(model_key) = &self.model_key
            && !brand.all_models
            && !lists_model(model_key)
        {
            return Err(Rejection::Model);
        }
        if let Some(fault) = query.fault
            && !facts.fault_categories.contains(fault)
        {
            return Err(Rejection::Fault);
        }
        let distance_km = self.merchant.distance_km(&facts.reduced, query.location, facts.location);
        let inside_radius = || {
            facts.radius_km.is_none_or(|radius_km| within_km(query.location, facts.location, distance_km, radius_km))
        };
        let inside_area =
            || !facts.has_area || center().coverage.area.as_ref().is_some_and(|a| a.contains(query.location));
        let in_area = (facts.radius_km.is_some() || facts.has_area) && inside_radius() && inside_area();
        let in_country = facts.national && center().coverage.serves_country(self.merchant_country);
        if !in_area && !in_country {
            return Err(Rejection::Coverage { distance_km });
        }
        let mut usable_modes = facts.service_modes.intersection(self.wanted_modes);
        if !in_area {
            // Nationwide coverage reaches the merchant by post, exchange or a
            // remote session; a visit needs the radius or the polygon.
            usable_modes = usable_modes.without_trips();
            if usable_modes.is_empty() {
                return Err(Rejection::Coverage { distance_km });
            }
        }
        let beyond_distance_cap = !within_km(query.location, facts.location, distance_km, self.distance_cap_km);
        if beyond_distance_cap && !usable_modes.is_empty() {
            if usable_modes.all_trips() {
                return Err(Rejection::DistanceCap { distance_km });
            }
            usable_modes = usable_modes.without_trips();
        }
        if usable_modes.is_empty() {
            return Err(Rejection::ServiceMode);
        }
        if let Some(min_rating) = query.min_rating {
            match facts.rating {
                Some(rating) if rating.count > 0 && rating.average >= min_rating => {}
                Some(rating) if rating.count > 0 => return Err(Rejection::RatedBelow { average: rating.average }),
                _ => return Err(Rejection::Unrated),
            }
        }
        let price = price_for(catalog.prices(slot), query.fault);
        if let Some(cap) = &query.max_price {
            match &price {
                None => return Err(Rejection::Unpriced),
                Some((low, _)) if low.currency_code != cap.currency_code => {
                    return Err(Rejection::OtherCurrency { currency_code: low.currency_code });
                }
                Some((low, _)) if low.amount_minor_units > cap.amount_minor_units => {
                    return Err(Rejection::AbovePriceCap { lowest: *low });
                }
                Some(_) => {}
            }
        }
        if let Some(min_days) = query.min_repair_warranty_days
            && u32::from(facts.repair_warranty_days) < min_days
        {
            return Err(Rejection::ShortRepairWarranty { days: u32::from(facts.repair_warranty_days) });
        }
        let mut hours_unknown = false;
        if let Some(open_at) = query.open_at {
            match open_state(center().opening_hours.as_ref(), open_at) {
                OpenState::Open => {}
                OpenState::Closed => return Err(Rejection::Closed),
                OpenState::Unknown => hours_unknown = true,
            }
        }
        let policies = &self.profile.policies;
        let deploying_bank = query.ownership.deploying_bank();
        let bank_service = facts.kind == CenterKind::BankService;
        let serves_deploying_bank = bank_service && deploying_bank.is_some_and(|bank| center().serves_bank(bank));
        if policies.bank_service_only_for_own_banks && bank_service && !serves_deploying_bank {
            return Err(Rejection::OtherBanksOnly);
        }
        if query.fault.is_some_and(|fault| !self.remote_faults.contains(fault)) {
            usable_modes.remove(ServiceMode::Remote);
        }
        let authorized = facts.kind == CenterKind::Authorized && brand.authorized;
        let tamper = query.fault == Some(FaultCategory::Tamper);
        if tamper && policies.tamper_requires_key_injection_or_exchange && !(authorized && facts.key_injection) {
            usable_modes = usable_modes.intersection([ServiceMode::Exchange].into_iter().collect());
        }
        if usable_modes.is_empty() {
            return Err(if tamper { Rejection::TamperPolicy } else { Rejection::RemoteCannotFix });
        }

        let brand_support = if authorized {
            BrandSupportLevel::Authorized
        } else if self.model_key.as_deref().is_some_and(|model| !brand.all_models && lists_model(model)) {
            BrandSupportLevel::ModelListed
        } else {
            BrandSupportLevel::BrandListed
        };
        let in_warranty = self.warranty == WarrantyStatus::InWarranty;
        Ok(Eligible {
            slot,
            distance_km,
            usable_modes,
            beyond_distance_cap,
            hours_unknown,
            brand_support,
            price,
            warranty_covered: in_warranty && authorized,
            tier: self.tier(authorized, serves_deploying_bank),
        })
    }

    /// The tier the profile's policies give a match: 0 ranks first. A bank
    /// service point of the deploying bank goes before the rest, and within
    /// that, in warranty, a center authorized for the brand. Given what a
    /// center *could* be (a bank service point could serve the bank), this is
    /// the best tier it could get.
    pub fn tier(&self, authorized: bool, serves_deploying_bank: bool) -> u32 {
        let policies = &self.profile.policies;
        let bank_deployed = self.query.ownership.deploying_bank().is_some();
        let bank_tier = policies.bank_service_first && bank_deployed && !serves_deploying_bank;
        let warranty_tier = policies.warranty_first && self.warranty == WarrantyStatus::InWarranty && !authorized;
        u32::from(bank_tier) * 2 + u32::from(warranty_tier)
    }

    /// The explanation for a center that is not matched.
    pub fn exclusion(&self, center_id: &str, rejection: Rejection) -> Exclusion {
        Exclusion { center_id: center_id.to_owned(), rule: rejection.rule(), detail: rejection.detail(self) }
    }
}

/// The part of a request the index checks on its own copy of each center's
/// match facts, so most non-matches are dropped without touching the center.
#[derive(Debug, Clone, Copy)]
pub struct CandidateFilter {
    /// The merchant on the unit sphere.
    pub merchant: [f64; 3],
    /// The asked fault.
    pub fault: Option<FaultCategory>,
    /// Wanted modes (all when none asked).
    pub wanted_modes: ServiceModeSet,
    /// Minimum rating.
    pub min_rating: Option<f64>,
    /// The merchant's country, for nationwide coverage.
    pub country: Option<CountryCode>,
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Weekday};

    use super::ExclusionRule as Rule;
    use crate::geodesy::{LatLng, ServiceArea, geodesic_distance_km};
    use crate::model::{
        BrandSupport, CenterKind, Coverage, FaultCategory, Money, OpeningHours, Rating, ServiceMode, WeeklyPeriod,
    };
    use crate::query::Ownership;
    use crate::test_fixtures::*;

    #[test]
    fn a_plain_center_in_reach_is_eligible() {
        assert_eq!(first_failed_rule(center("a", 3.0), &query()), None);
    }

    #[test]
    fn a_minimum_repair_warranty_rules_out_shorter_and_unpublished_guarantees() {
        let mut q = query();
        q.min_repair_warranty_days = Some(90);
        let with_days = |days: u32| {
            let mut c = center("a", 3.0);
            c.repair_warranty_days = days;
            c
        };
        assert_eq!(first_failed_rule(with_days(30), &q), Some(Rule::Terms));
        assert_eq!(first_failed_rule(with_days(0), &q), Some(Rule::Terms), "none published");
        assert_eq!(first_failed_rule(with_days(90), &q), None, "exactly the minimum is enough");
        assert_eq!(first_failed_rule(with_days(0), &query()), None, "no minimum asked");
    }

    #[test]
    fn a_nationwide_depot_serves_its_countries_by_post_but_not_across_the_border_or_for_a_visit() {
        // A mail-in depot 1,000 km away with no radius, serving China: where it
        // stands does not matter.
        let mut depot = center("depot", 1_000.0);
        depot.coverage = Coverage { radius_km: None, area: None, country_codes: vec!["CN".parse().unwrap()] };
        depot.service_modes = [ServiceMode::MailIn, ServiceMode::WalkIn].into_iter().collect();
        assert_eq!(first_failed_rule(depot.clone(), &query()), None, "a Shanghai merchant is in China");
        let mut hong_kong = query();
        hong_kong.location = LatLng::new(22.2793, 114.1628);
        assert_eq!(first_failed_rule(depot.clone(), &hong_kong), Some(Rule::Coverage), "Hong Kong is not CN");
        hong_kong.country_code = Some("CN".parse().unwrap());
        assert_eq!(first_failed_rule(depot.clone(), &hong_kong), None, "the caller's country counts over the point's");
        let mut visit = query();
        visit.service_modes = [ServiceMode::WalkIn].into_iter().collect();
        assert_eq!(first_failed_rule(depot.clone(), &visit), Some(Rule::Coverage), "a visit needs a radius");
        let outcome = run(vec![depot], &query());
        let modes: Vec<ServiceMode> = outcome.matches[0].scored.eligible.usable_modes.iter().collect();
        assert_eq!(modes, [ServiceMode::MailIn], "by post only");
    }

    #[test]
    fn inactive_centers_are_out() {
        let mut inactive = center("a", 3.0);
        inactive.active = false;
        assert_eq!(first_failed_rule(inactive, &query()), Some(Rule::Inactive));
    }

    #[test]
    fn brand_matches_case_insensitively() {
        let mut q = query();
        q.brand = "pAx".into();
        assert_eq!(first_failed_rule(center("a", 3.0), &q), None);
        q.brand = "Verifone".into();
        assert_eq!(first_failed_rule(center("a", 3.0), &q), Some(Rule::Brand));
    }

    #[test]
    fn listed_models_bind_and_empty_lists_mean_all_models() {
        let mut listing = center("a", 3.0);
        listing.brands = vec![BrandSupport::new("PAX", false, &["A920".into(), "S920".into()])];
        let mut q = query();
        q.model = Some("a920".into());
        assert_eq!(first_failed_rule(listing.clone(), &q), None);
        q.model = Some("A80".into());
        assert_eq!(first_failed_rule(listing.clone(), &q), Some(Rule::Model));
        assert_eq!(first_failed_rule(center("b", 3.0), &q), None, "no models listed = every model");
        q.model = None;
        assert_eq!(first_failed_rule(listing, &q), None, "no model asked = any listing");
    }

    #[test]
    fn the_fault_must_be_repaired_and_unspecified_means_any() {
        let mut printers_only = center("a", 3.0);
        printers_only.fault_categories = [FaultCategory::Printer].into_iter().collect();
        assert_eq!(first_failed_rule(printers_only.clone(), &query()), Some(Rule::Fault));
        let mut any_fault = query();
        any_fault.fault = None;
        assert_eq!(first_failed_rule(printers_only, &any_fault), None);
    }

    #[test]
    fn coverage_radius_includes_its_exact_boundary() {
        let place = center("a", 12.0);
        let distance_km = geodesic_distance_km(MERCHANT, place.location);
        let mut on_the_edge = place.clone();
        on_the_edge.coverage.radius_km = Some(distance_km);
        assert_eq!(first_failed_rule(on_the_edge, &query()), None);
        let mut just_short = place;
        just_short.coverage.radius_km = Some(distance_km - 1e-9);
        assert_eq!(first_failed_rule(just_short, &query()), Some(Rule::Coverage));
    }

    #[test]
    fn coverage_polygon_with_a_hole() {
        let square = |half: f64| {
            let (lat, lon) = (MERCHANT.latitude, MERCHANT.longitude);
            vec![
                LatLng::new(lat - half, lon - half),
                LatLng::new(lat - half, lon + half),
                LatLng::new(lat + half, lon + half),
                LatLng::new(lat + half, lon - half),
                LatLng::new(lat - half, lon - half),
            ]
        };
        let mut polygon_only = center("a", 3.0);
        polygon_only.coverage.radius_km = None;
        polygon_only.coverage.area = Some(Box::new(ServiceArea::new(square(0.1), vec![]).unwrap()));
        assert_eq!(first_failed_rule(polygon_only.clone(), &query()), None);
        polygon_only.coverage.area = Some(Box::new(ServiceArea::new(square(0.1), vec![square(0.01)]).unwrap()));
        assert_eq!(first_failed_rule(polygon_only.clone(), &query()), Some(Rule::Coverage), "merchant in the hole");
        // With both, the merchant must be inside both.
        polygon_only.coverage.area = Some(Box::new(ServiceArea::new(square(0.1), vec![]).unwrap()));
        polygon_only.coverage.radius_km = Some(1.0);
        assert_eq!(first_failed_rule(polygon_only, &query()), Some(Rule::Coverage));
    }

    #[test]
    fn the_distance_cap_binds_trips_only() {
        let mut q = query();
        q.max_distance_km = Some(5.0);
        assert_eq!(first_failed_rule(center("walk-in", 8.0), &q), Some(Rule::DistanceCap));
        let mut depot = center("depot", 8.0);
        depot.service_modes = modes(&[ServiceMode::WalkIn, ServiceMode::MailIn]);
        let outcome = run(vec![depot], &q);
        let matched = &outcome.matches[0].scored.eligible;
        assert_eq!(matched.usable_modes, modes(&[ServiceMode::MailIn]), "walk-in dropped beyond the cap");
        assert!(matched.beyond_distance_cap);
        // The profile's cap applies when the request sets none.
        let profile = crate::RankingProfile { default_distance_cap_km: 5.0, ..Default::default() };
        assert_eq!(run_with(vec![center("far", 8.0)], &query(), &profile).total_size, 0);
    }

    #[test]
    fn wanted_service_modes_must_be_offered() {
        let mut q = query();
        q.service_modes = modes(&[ServiceMode::Onsite]);
        assert_eq!(first_failed_rule(center("a", 3.0), &q), Some(Rule::ServiceMode));
        q.service_modes = modes(&[ServiceMode::Onsite, ServiceMode::WalkIn]);
        assert_eq!(first_failed_rule(center("a", 3.0), &q), None);
    }

    #[test]
    fn min_rating_uses_the_published_average_and_no_reviews_fail() {
        let mut q = query();
        q.min_rating = Some(4.5);
        assert_eq!(first_failed_rule(center("a", 3.0), &q), None, "4.5 meets 4.5");
        q.min_rating = Some(4.6);
        assert_eq!(first_failed_rule(center("a", 3.0), &q), Some(Rule::Rating));
        let mut unrated = center("b", 3.0);
        unrated.rating = None;
        q.min_rating = Some(1.0);
        assert_eq!(first_failed_rule(unrated.clone(), &q), Some(Rule::Rating));
        unrated.rating = Some(Rating { average: 0.0, count: 0 });
        assert_eq!(first_failed_rule(unrated, &q), Some(Rule::Rating));
    }

    #[test]
    fn max_price_caps_the_low_end_in_the_same_currency() {
        let mut q = query();
        q.max_price = Some(cny(10_000));
        assert_eq!(first_failed_rule(center("a", 3.0), &q), None, "low end 100.00 within 100.00");
        q.max_price = Some(cny(9_999));
        assert_eq!(first_failed_rule(center("a", 3.0), &q), Some(Rule::Price));
        q.max_price = Some(Money {
            currency_code: crate::model::CurrencyCode::parse("USD").unwrap(),
            amount_minor_units: 1_000_000,
        });
        assert_eq!(first_failed_rule(center("a", 3.0), &q), Some(Rule::Price), "another currency");
        q.max_price = Some(cny(1_000_000));
        q.fault = Some(FaultCategory::Printer);
        assert_eq!(first_failed_rule(center("a", 3.0), &q), Some(Rule::Price), "no price for printers");
    }

    #[test]
    fn open_at_is_judged_in_the_centers_time_zone() {
        let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let mut shop = center("a", 3.0);
        shop.opening_hours = Some(OpeningHours {
            time_zone: shanghai,
            periods: Box::new([WeeklyPeriod {
                day: Weekday::Wed,
                open_minute_of_day: 9 * 60,
                close_minute_of_day: 18 * 60,
            }]),
            exceptions: Box::default(),
        });
        let mut q = query();
        // 09:30 UTC is 17:30 in Shanghai: open. 10:00 UTC is 18:00: closed.
        q.open_at = Some(chrono::Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap());
        assert_eq!(first_failed_rule(shop.clone(), &q), None);
        q.open_at = Some(chrono::Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap());
        assert_eq!(first_failed_rule(shop, &q), Some(Rule::Closed));
        // No published hours: stays in, marked.
        let outcome = run(vec![center("b", 3.0)], &q);
        assert!(outcome.matches[0].scored.eligible.hours_unknown);
        assert!(english(&outcome.matches[0].reasons).iter().any(|r| r == "hours unknown"));
    }

    #[test]
    fn tamper_needs_an_authorized_key_injection_center_or_an_exchange() {
        let mut q = query();
        q.fault = Some(FaultCategory::Tamper);
        q.max_price = None;
        assert_eq!(first_failed_rule(center("third-party", 3.0), &q), Some(Rule::Policy));
        let mut no_keys = authorized(center("authorized", 3.0));
        assert_eq!(first_failed_rule(no_keys.clone(), &q), Some(Rule::Policy), "authorized but no key injection");
        no_keys.key_injection = true;
        assert_eq!(first_failed_rule(no_keys, &q), None);
        let mut swapper = center("swapper", 3.0);
        swapper.service_modes = modes(&[ServiceMode::WalkIn, ServiceMode::Exchange]);
        let outcome = run(vec![swapper], &q);
        assert_eq!(outcome.matches[0].scored.eligible.usable_modes, modes(&[ServiceMode::Exchange]));
    }

    #[test]
    fn bank_service_points_take_only_their_banks_terminals() {
        let mut bank_point = center("bank", 3.0);
        bank_point.kind = CenterKind::BankService;
        bank_point.bank_ids = Box::new(["icbc".into()]);
        assert_eq!(first_failed_rule(bank_point.clone(), &query()), Some(Rule::Policy));
        let mut q = query();
        q.ownership = Ownership::BankDeployed { bank_id: "ccb".into() };
        assert_eq!(first_failed_rule(bank_point.clone(), &q), Some(Rule::Policy), "another bank");
        q.ownership = Ownership::BankDeployed { bank_id: "icbc".into() };
        assert_eq!(first_failed_rule(bank_point.clone(), &q), None);
        q.ownership = Ownership::Leased { bank_id: Some("icbc".into()) };
        assert_eq!(first_failed_rule(bank_point, &q), None, "the lessor bank counts");
    }

    #[test]
    fn remote_sessions_only_fix_remote_fixable_faults() {
        let mut remote_only = center("remote", 3.0);
        remote_only.service_modes = modes(&[ServiceMode::Remote]);
        assert_eq!(first_failed_rule(remote_only.clone(), &query()), Some(Rule::Policy), "a cracked screen");
        let mut q = query();
        q.fault = Some(FaultCategory::Software);
        assert_eq!(first_failed_rule(remote_only, &q), None);
    }

    #[test]
    fn the_first_failed_rule_is_reported_in_contract_order() {
        let mut everything_wrong = center("a", 80.0);
        everything_wrong.fault_categories = [FaultCategory::Printer].into_iter().collect();
        everything_wrong.rating = None;
        let mut q = query();
        q.min_rating = Some(4.0);
        assert_eq!(first_failed_rule(everything_wrong.clone(), &q), Some(Rule::Fault));
        everything_wrong.fault_categories = crate::model::FaultSet::ALL;
        assert_eq!(first_failed_rule(everything_wrong.clone(), &q), Some(Rule::Coverage));
        everything_wrong.coverage.radius_km = Some(100.0);
        assert_eq!(first_failed_rule(everything_wrong.clone(), &q), Some(Rule::DistanceCap));
        everything_wrong.location = east_of_merchant(3.0);
        assert_eq!(first_failed_rule(everything_wrong, &q), Some(Rule::Rating));
    }
}
