//! The eligibility rules, checked in the contract's order.
//!
//! One function decides both whether a center is matched and, when it is not,
//! the first rule it failed: the ranking and the explanations can never
//! disagree.

use std::sync::Arc;

use crate::geodesy::{LatLng, geodesic_distance_km};
use crate::hours::{OpenState, open_state};
use crate::model::{CenterKind, FaultCategory, FaultSet, Money, RepairCenter, ServiceMode, ServiceModeSet, match_key};
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
    /// Closed at the asked time.
    Closed,
    /// A profile policy rules it out.
    Policy,
}

/// Why one center is not matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The center asked about.
    pub center_id: String,
    /// The first rule it failed.
    pub rule: ExclusionRule,
    /// A human-readable detail.
    pub detail: String,
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

/// A center that passed every rule, with what the rules learned about it.
#[derive(Debug, Clone)]
pub struct Eligible {
    /// The center.
    pub center: Arc<RepairCenter>,
    /// Geodesic distance from the merchant, km.
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
    model_key: Option<String>,
    wanted_modes: ServiceModeSet,
    /// The trip cap in force, km.
    pub distance_cap_km: f64,
    /// The warranty status acted on.
    pub warranty: WarrantyStatus,
    remote_faults: FaultSet,
}

impl<'a> MatchContext<'a> {
    /// Prepares a request; `warranty` is the decided status.
    pub fn new(query: &'a FindQuery, profile: &'a RankingProfile, warranty: WarrantyStatus) -> Self {
        Self {
            query,
            profile,
            brand_key: query.brand_key(),
            model_key: query.model.as_deref().map(match_key),
            wanted_modes: if query.service_modes.is_empty() { ServiceModeSet::ALL } else { query.service_modes },
            distance_cap_km: query.max_distance_km.unwrap_or(profile.default_distance_cap_km),
            warranty,
            remote_faults: profile.policies.remote_fault_categories.iter().copied().collect(),
        }
    }

    /// The merchant's location.
    pub fn location(&self) -> LatLng {
        self.query.location
    }

    /// Checks every rule in order; the first failure is the answer.
    pub fn evaluate(&self, center: &Arc<RepairCenter>) -> Result<Eligible, Exclusion> {
        let fail = |rule, detail: String| Err(Exclusion { center_id: center.id.clone(), rule, detail });
        let query = self.query;
        if !center.active {
            return fail(ExclusionRule::Inactive, "the center is inactive".into());
        }
        let Some(support) = center.brand_support(&self.brand_key) else {
            return fail(ExclusionRule::Brand, format!("does not repair {}", query.brand));
        };
        if let Some(model_key) = &self.model_key
            && !support.all_models()
            && !support.lists_model(model_key)
        {
            return fail(
                ExclusionRule::Model,
                format!("repairs {} but not the {}", support.brand, query.model.as_deref().unwrap_or_default()),
            );
        }
        if let Some(fault) = query.fault
            && !center.fault_categories.contains(fault)
        {
            return fail(ExclusionRule::Fault, format!("does not repair {fault} faults"));
        }
        let distance_km = geodesic_distance_km(query.location, center.location);
        if !covers(center, query.location, distance_km) {
            return fail(
                ExclusionRule::Coverage,
                format!("the merchant is outside its coverage ({distance_km:.1} km away)"),
            );
        }
        let mut usable_modes = center.service_modes.intersection(self.wanted_modes);
        let beyond_distance_cap = distance_km > self.distance_cap_km;
        if beyond_distance_cap && !usable_modes.is_empty() {
            if usable_modes.all_trips() {
                return fail(
                    ExclusionRule::DistanceCap,
                    format!("{distance_km:.1} km is beyond the {:.0} km trip cap", self.distance_cap_km),
                );
            }
            usable_modes = usable_modes.without_trips();
        }
        if usable_modes.is_empty() {
            return fail(ExclusionRule::ServiceMode, "offers none of the wanted service modes".into());
        }
        if let Some(min_rating) = query.min_rating {
            match center.rating {
                Some(rating) if rating.count > 0 && rating.average >= min_rating => {}
                Some(rating) if rating.count > 0 => {
                    return fail(ExclusionRule::Rating, format!("rated {:.1}, below {min_rating:.1}", rating.average));
                }
                _ => return fail(ExclusionRule::Rating, "has no reviews".into()),
            }
        }
        let price = center.price_for(query.fault);
        if let Some(cap) = &query.max_price {
            match &price {
                None => {
                    return fail(ExclusionRule::Price, "publishes no price for this fault".into());
                }
                Some((low, _)) if low.currency_code != cap.currency_code => {
                    return fail(
                        ExclusionRule::Price,
                        format!("prices in {}, not {}", low.currency_code, cap.currency_code),
                    );
                }
                Some((low, _)) if low.amount_minor_units > cap.amount_minor_units => {
                    return fail(ExclusionRule::Price, "its lowest price for this fault is above the cap".into());
                }
                Some(_) => {}
            }
        }
        let mut hours_unknown = false;
        if let Some(open_at) = query.open_at {
            match open_state(center.opening_hours.as_ref(), open_at) {
                OpenState::Open => {}
                OpenState::Closed => {
                    return fail(ExclusionRule::Closed, "closed at the requested time".into());
                }
                OpenState::Unknown => hours_unknown = true,
            }
        }
        let policies = &self.profile.policies;
        let deploying_bank = query.ownership.deploying_bank();
        if policies.bank_service_only_for_own_banks
            && center.kind == CenterKind::BankService
            && !deploying_bank.is_some_and(|bank| center.serves_bank(bank))
        {
            return fail(ExclusionRule::Policy, "a bank service point takes only terminals its banks deployed".into());
        }
        if query.fault.is_some_and(|fault| !self.remote_faults.contains(fault)) {
            usable_modes.remove(ServiceMode::Remote);
        }
        let authorized = center.is_authorized_for(&self.brand_key);
        if query.fault == Some(FaultCategory::Tamper)
            && policies.tamper_requires_key_injection_or_exchange
            && !(authorized && center.key_injection)
        {
            usable_modes = usable_modes.intersection([ServiceMode::Exchange].into_iter().collect());
        }
        if usable_modes.is_empty() {
            let detail = if query.fault == Some(FaultCategory::Tamper) {
                "a tampered terminal needs a center authorized for the brand with key injection, or an exchange"
            } else {
                "a remote session cannot fix this fault and no other wanted mode is usable"
            };
            return fail(ExclusionRule::Policy, detail.into());
        }

        let brand_support = if authorized {
            BrandSupportLevel::Authorized
        } else if self.model_key.as_deref().is_some_and(|model| support.lists_model(model)) {
            BrandSupportLevel::ModelListed
        } else {
            BrandSupportLevel::BrandListed
        };
        let in_warranty = self.warranty == WarrantyStatus::InWarranty;
        let bank_tier = policies.bank_service_first && deploying_bank.is_some_and(|bank| !center.serves_bank(bank));
        let warranty_tier = policies.warranty_first && in_warranty && !authorized;
        Ok(Eligible {
            center: Arc::clone(center),
            distance_km,
            usable_modes,
            beyond_distance_cap,
            hours_unknown,
            brand_support,
            price,
            warranty_covered: in_warranty && authorized,
            tier: u32::from(bank_tier) * 2 + u32::from(warranty_tier),
        })
    }
}

/// Whether the merchant is inside the center's coverage (boundary included).
pub fn covers(center: &RepairCenter, merchant: LatLng, distance_km: f64) -> bool {
    let coverage = &center.coverage;
    if coverage.radius_km.is_none() && coverage.area.is_none() {
        return false;
    }
    coverage.radius_km.is_none_or(|radius_km| distance_km <= radius_km)
        && coverage.area.as_ref().is_none_or(|area| area.contains(merchant))
}
