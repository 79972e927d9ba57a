//! The weighted score and the total order of a ranking.
//!
//! score = Σ weightᵢ · factorᵢ with weights normalized to sum 1 and every
//! factor in 0..=1, so the score is in 0..=1 and the breakdown's contributions
//! add up to it exactly (the score is computed as that sum). Matches are
//! ordered by tier, then score (higher first), then distance, then id: a total
//! order, so rankings and pages are deterministic.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::eligibility::{BrandSupportLevel, Eligible};
use crate::profile::RankingProfile;

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

/// An eligible center with its score.
#[derive(Debug, Clone)]
pub struct Scored {
    /// What the rules found.
    pub eligible: Eligible,
    /// Weighted score, 0..=1.
    pub score: f64,
    /// One component per factor.
    pub breakdown: [ScoreComponent; 5],
    /// Best downtime over the usable modes, hours.
    pub downtime_hours: f64,
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

impl SortKey {
    fn borrowed(&self) -> KeyRef<'_> {
        KeyRef { tier: self.tier, score: self.score, distance_km: self.distance_km, center_id: &self.center_id }
    }
}

/// A sort key borrowed from a match, so ordering never allocates.
#[derive(Clone, Copy)]
struct KeyRef<'a> {
    tier: u32,
    score: f64,
    distance_km: f64,
    center_id: &'a str,
}

impl KeyRef<'_> {
    fn cmp(self, other: KeyRef<'_>) -> Ordering {
        self.tier
            .cmp(&other.tier)
            .then_with(|| other.score.total_cmp(&self.score))
            .then_with(|| self.distance_km.total_cmp(&other.distance_km))
            .then_with(|| self.center_id.cmp(other.center_id))
    }
}

impl Scored {
    /// This match's key.
    pub fn sort_key(&self) -> SortKey {
        SortKey {
            tier: self.eligible.tier,
            score: self.score,
            distance_km: self.eligible.distance_km,
            center_id: self.eligible.center.id.clone(),
        }
    }

    fn borrowed_key(&self) -> KeyRef<'_> {
        KeyRef {
            tier: self.eligible.tier,
            score: self.score,
            distance_km: self.eligible.distance_km,
            center_id: &self.eligible.center.id,
        }
    }

    /// Orders two matches.
    pub fn rank_cmp(&self, other: &Scored) -> Ordering {
        self.borrowed_key().cmp(other.borrowed_key())
    }

    /// Whether this match comes after `key` in the ranking.
    pub fn is_after(&self, key: &SortKey) -> bool {
        self.borrowed_key().cmp(key.borrowed()) == Ordering::Greater
    }
}

/// Scores every eligible center. Price is relative: the cheapest eligible quote
/// in a currency scores 1 and one twice as dear scores 0.5, so it needs the
/// whole eligible set.
pub fn score_all(eligible: Vec<Eligible>, profile: &RankingProfile) -> Vec<Scored> {
    let mut cheapest_by_currency: HashMap<&str, f64> = HashMap::new();
    for candidate in &eligible {
        if let Some((low, high)) = &candidate.price {
            let mid = midpoint(low.amount_minor_units, high.amount_minor_units);
            cheapest_by_currency
                .entry(low.currency_code.as_str())
                .and_modify(|cheapest| *cheapest = cheapest.min(mid))
                .or_insert(mid);
        }
    }
    let prices: Vec<Option<f64>> = eligible
        .iter()
        .map(|candidate| {
            candidate.price.as_ref().map(|(low, high)| {
                let mid = midpoint(low.amount_minor_units, high.amount_minor_units);
                let cheapest = cheapest_by_currency[low.currency_code.as_str()];
                if mid <= 0.0 { 1.0 } else { cheapest.max(0.0) / mid }
            })
        })
        .collect();
    eligible
        .into_iter()
        .zip(prices)
        .map(|(candidate, price_factor)| score_one(candidate, price_factor, profile))
        .collect()
}

fn midpoint(low: i64, high: i64) -> f64 {
    (low as f64 + high as f64) / 2.0
}

fn score_one(eligible: Eligible, relative_price: Option<f64>, profile: &RankingProfile) -> Scored {
    let weights = profile.weights.normalized();
    let center = &eligible.center;

    let distance = profile.distance_decay.apply(eligible.distance_km);

    let (rating_raw, rating) = match center.rating {
        Some(rating) if rating.count > 0 => {
            let bayesian = profile.rating_prior.bayesian_average(rating.average, rating.count);
            (bayesian, ((bayesian - 1.0) / 4.0).clamp(0.0, 1.0))
        }
        _ => (profile.rating_prior.mean, ((profile.rating_prior.mean - 1.0) / 4.0).clamp(0.0, 1.0)),
    };

    // Under warranty the merchant pays nothing at a center that honours it.
    let (price_raw, price) = match (&eligible.price, relative_price) {
        _ if eligible.warranty_covered => (0.0, 1.0),
        (Some((low, high)), Some(relative)) => (midpoint(low.amount_minor_units, high.amount_minor_units), relative),
        _ => (0.0, profile.unknown_price_score),
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
        .map(|mode| profile.downtime.hours(mode, eligible.distance_km, center.turnaround_hours_for(mode)))
        .fold(f64::INFINITY, f64::min);
    let downtime = profile.downtime.factor(downtime_hours);

    let component = |factor, raw_value, normalized_value: f64, weight: f64| ScoreComponent {
        factor,
        raw_value,
        normalized_value,
        weight,
        contribution: weight * normalized_value,
    };
    let breakdown = [
        component("distance", eligible.distance_km, distance, weights.distance),
        component("rating", rating_raw, rating, weights.rating),
        component("price", price_raw, price, weights.price),
        component("brand_support", brand_raw, brand, weights.brand_support),
        component("downtime", downtime_hours, downtime, weights.downtime),
    ];
    let score = breakdown.iter().map(|c| c.contribution).sum();
    Scored { eligible, score, breakdown, downtime_hours }
}
