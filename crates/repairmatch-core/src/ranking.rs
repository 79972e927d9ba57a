//! The weighted score and the total order of a ranking.
//!
//! score = Σ weightᵢ · factorᵢ with weights normalized to sum 1 and every
//! factor in 0..=1, so the score is in 0..=1 and the breakdown's contributions
//! add up to it exactly (the score is computed as that sum). Matches are
//! ordered by tier, then score (higher first), then distance, then id: a total
//! order, so rankings and pages are deterministic.

use std::cmp::Ordering;

use crate::catalog::{Catalog, MatchFacts};
use crate::eligibility::{BrandSupportLevel, Eligible};
use crate::model::CurrencyCode;
use crate::profile::{DecayCurve, FACTOR_COUNT, RankingProfile};

/// One factor's part in a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreComponent {
    /// Factor name.
    pub factor: &'static str,
    /// Input in the factor's own unit.
    pub raw_value: f64,
    /// Input mapped to 0..=1.
    pub normalized_value: f64,
    /// Normalized weight.
    pub weight: f64,
    /// weight · normalized value.
    pub contribution: f64,
}

/// The factors in breakdown order.
pub const FACTORS: [&str; FACTOR_COUNT] =
    ["distance", "rating", "price", "brand_support", "downtime", "repair_warranty"];
const PRICE: usize = 2;
const DOWNTIME: usize = 4;

/// An eligible center with its score. Kept small: a query scores every
/// eligible center but builds breakdowns only for the page it returns.
#[derive(Debug, Clone)]
pub struct Scored {
    /// What the rules found.
    pub eligible: Eligible,
    /// Weighted score, 0..=1: the sum of the breakdown's contributions.
    pub score: f64,
    /// Each factor's input in its own unit, in [`FACTORS`] order.
    pub raw: [f64; FACTOR_COUNT],
    /// Each factor mapped to 0..=1, in [`FACTORS`] order.
    pub normalized: [f64; FACTOR_COUNT],
}

impl Scored {
    /// Best downtime over the usable modes, hours.
    pub fn downtime_hours(&self) -> f64 {
        self.raw[DOWNTIME]
    }

    /// One component per factor, under the profile that scored it.
    pub fn breakdown(&self, profile: &RankingProfile) -> [ScoreComponent; FACTOR_COUNT] {
        let weights = profile.weights.normalized().as_factor_array();
        std::array::from_fn(|i| ScoreComponent {
            factor: FACTORS[i],
            raw_value: self.raw[i],
            normalized_value: self.normalized[i],
            weight: weights[i],
            contribution: weights[i] * self.normalized[i],
        })
    }
}

/// The position of a match in the total order, as carried by page tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// Tier, ascending.
    pub tier: u32,
    /// Score, descending.
    pub score: f64,
    /// Distance, ascending.
    pub distance_km: f64,
    /// Id, ascending.
    pub center_id: String,
}

/// Tier ascending, then score descending, then distance ascending.
fn order(tier_a: u32, score_a: f64, distance_a: f64, tier_b: u32, score_b: f64, distance_b: f64) -> Ordering {
    tier_a.cmp(&tier_b).then_with(|| score_b.total_cmp(&score_a)).then_with(|| distance_a.total_cmp(&distance_b))
}

/// A match's place in the order without the match itself: what a query sorts
/// so that only the returned page is carried around whole.
#[derive(Debug, Clone, Copy)]
pub struct RankKey {
    /// Tier, ascending.
    pub tier: u32,
    /// Score, descending.
    pub score: f64,
    /// Distance, ascending.
    pub distance_km: f64,
    /// Where the match is in the query's own list.
    pub index: u32,
}

impl RankKey {
    /// The order up to the id, which breaks exact ties.
    pub fn cmp_without_id(&self, other: &RankKey) -> Ordering {
        order(self.tier, self.score, self.distance_km, other.tier, other.score, other.distance_km)
    }

    /// Whether this match, whose center's id is `id`, comes after `key`.
    pub fn is_after(&self, key: &SortKey, id: &str) -> bool {
        order(self.tier, self.score, self.distance_km, key.tier, key.score, key.distance_km)
            .then_with(|| id.cmp(&key.center_id))
            == Ordering::Greater
    }
}

impl Scored {
    /// This match's key.
    pub fn sort_key(&self, catalog: &Catalog) -> SortKey {
        SortKey {
            tier: self.eligible.tier,
            score: self.score,
            distance_km: self.eligible.distance_km,
            center_id: catalog.center_at(self.eligible.slot).id.clone(),
        }
    }

    /// Orders two matches; ids (read from the catalog) break only exact ties.
    pub fn rank_cmp(&self, other: &Scored, catalog: &Catalog) -> Ordering {
        let (a, b) = (&self.eligible, &other.eligible);
        order(a.tier, self.score, a.distance_km, b.tier, other.score, b.distance_km)
            .then_with(|| catalog.center_at(a.slot).id.cmp(&catalog.center_at(b.slot).id))
    }
}

/// The cheapest eligible quote midpoint per currency: the price factor's
/// reference. Warranty-covered repairs cost the merchant nothing and are left
/// out, as are centers without a quote.
#[derive(Debug, Default, Clone)]
pub struct CheapestQuotes(Vec<(CurrencyCode, f64)>);

impl CheapestQuotes {
    /// The cheapest quotes among `eligible`.
    pub fn of<'a>(eligible: impl IntoIterator<Item = &'a Eligible>) -> Self {
        let mut cheapest: Vec<(CurrencyCode, f64)> = Vec::new();
        for candidate in eligible {
            if let (Some((low, high)), false) = (&candidate.price, candidate.warranty_covered) {
                let mid = midpoint(low.amount_minor_units, high.amount_minor_units);
                match cheapest.iter_mut().find(|(currency, _)| *currency == low.currency_code) {
                    Some((_, price)) => *price = price.min(mid),
                    None => cheapest.push((low.currency_code, mid)),
                }
            }
        }
        Self(cheapest)
    }

    fn floor(&self, currency_code: CurrencyCode) -> Option<f64> {
        self.0.iter().find(|(currency, _)| *currency == currency_code).map(|(_, price)| *price)
    }
}

/// What a query works out once from its profile for every score it computes.
#[derive(Debug, Clone, Copy)]
pub struct Scoring {
    /// The profile's weights, normalized, in [`FACTORS`] order.
    pub weights: [f64; FACTOR_COUNT],
    /// The profile's distance decay.
    pub distance: DecayCurve,
}

impl Scoring {
    /// The scoring of `profile`.
    pub fn of(profile: &RankingProfile) -> Self {
        Self { weights: profile.weights.normalized().as_factor_array(), distance: profile.distance_decay.curve() }
    }
}

/// Scores every eligible center. Price is relative: the cheapest eligible quote
/// in a currency scores 1 and one twice as dear scores 0.5, so every quote is
/// known before the first score.
pub fn score_all(eligible: impl Iterator<Item = Eligible>, profile: &RankingProfile, catalog: &Catalog) -> Vec<Scored> {
    let eligible: Vec<Eligible> = eligible.collect();
    let cheapest = CheapestQuotes::of(&eligible);
    let scoring = Scoring::of(profile);
    eligible.into_iter().map(|candidate| score(candidate, profile, &scoring, &cheapest, catalog)).collect()
}

/// One eligible center's score under `profile`, whose [`Scoring`] is
/// `scoring`, against the `cheapest` quotes of everything eligible.
pub fn score(
    eligible: Eligible,
    profile: &RankingProfile,
    scoring: &Scoring,
    cheapest: &CheapestQuotes,
    catalog: &Catalog,
) -> Scored {
    let weights = &scoring.weights;
    let mut scored = score_one(eligible, profile, &scoring.distance, catalog.facts(eligible.slot));
    if let (Some((low, _)), false) = (&scored.eligible.price, scored.eligible.warranty_covered) {
        let mid = scored.raw[PRICE];
        let floor = cheapest.floor(low.currency_code).unwrap_or(mid);
        scored.normalized[PRICE] = if mid <= 0.0 { 1.0 } else { floor.max(0.0) / mid };
    }
    // Summed in breakdown order, so the contributions add up to exactly this.
    scored.score = (0..FACTOR_COUNT).map(|i| weights[i] * scored.normalized[i]).sum();
    scored
}

fn midpoint(low: i64, high: i64) -> f64 {
    (low as f64 + high as f64) / 2.0
}

/// Every factor but the relative price, which [`score_all`] settles.
fn score_one(eligible: Eligible, profile: &RankingProfile, decay: &DecayCurve, facts: &MatchFacts) -> Scored {
    let distance_km = eligible.distance_km;
    let distance = decay.apply(distance_km);

    let (rating_raw, rating) = match facts.rating {
        Some(rating) if rating.count > 0 => {
            let bayesian = profile.rating_prior.bayesian_average(rating.average, rating.count);
            (bayesian, ((bayesian - 1.0) / 4.0).clamp(0.0, 1.0))
        }
        _ => (profile.rating_prior.mean, ((profile.rating_prior.mean - 1.0) / 4.0).clamp(0.0, 1.0)),
    };

    // Under warranty the merchant pays nothing at a center that honours it.
    let (price_raw, price) = match &eligible.price {
        _ if eligible.warranty_covered => (0.0, 1.0),
        Some((low, high)) => (midpoint(low.amount_minor_units, high.amount_minor_units), 1.0),
        None => (0.0, profile.unknown_price_score),
    };

    let levels = &profile.brand_support;
    let (brand_raw, brand) = match eligible.brand_support {
        BrandSupportLevel::Authorized => (2.0, levels.authorized),
        BrandSupportLevel::ModelListed => (1.0, levels.model_listed),
        BrandSupportLevel::BrandListed => (0.0, levels.brand_listed),
    };

    let downtime_hours = eligible
        .usable_modes
        .iter()
        .map(|mode| profile.downtime.hours(mode, eligible.distance_km, facts.turnaround_hours_for(mode)))
        .fold(f64::INFINITY, f64::min);
    let downtime = profile.downtime.factor(downtime_hours);

    // A longer guarantee on the repair is better, up to the profile's "full"
    // length; none published scores nothing.
    let warranty_days = f64::from(facts.repair_warranty_days);
    let repair_warranty = (warranty_days / profile.repair_warranty_full_days).min(1.0);

    Scored {
        eligible,
        score: 0.0,
        raw: [distance_km, rating_raw, price_raw, brand_raw, downtime_hours, warranty_days],
        normalized: [distance, rating, price, brand, downtime, repair_warranty],
    }
}
