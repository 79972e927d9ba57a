//! Ranking profiles: the weights, decay curves, priors and policies that ops
//! tune in `[profiles.NAME]`.
//!
//! A profile is plain data with defaults for every knob, deserialized straight
//! from the config file (unknown keys refused) and checked with
//! [`RankingProfile::validate`] before it is used.

use serde::{Deserialize, Serialize};

use crate::model::{FaultCategory, ServiceMode};

/// How many score factors there are: distance, rating, price, brand support,
/// downtime, repair warranty.
pub const FACTOR_COUNT: usize = 6;

/// Relative weight of each score factor. Weights are normalized to sum 1 when
/// the score is computed, so only their ratios matter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Closeness (decayed distance).
    pub distance: f64,
    /// Bayesian-averaged rating.
    pub rating: f64,
    /// Cheapness for this fault.
    pub price: f64,
    /// Authorized > lists the model > lists the brand.
    pub brand_support: f64,
    /// Time until the merchant takes payments again.
    pub downtime: f64,
    /// The center's own warranty on the repair (off unless a profile weighs it).
    pub repair_warranty: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self { distance: 0.30, rating: 0.25, price: 0.15, brand_support: 0.15, downtime: 0.15, repair_warranty: 0.0 }
    }
}

impl Weights {
    fn as_array(&self) -> [(&'static str, f64); FACTOR_COUNT] {
        [
            ("distance", self.distance),
            ("rating", self.rating),
            ("price", self.price),
            ("brand_support", self.brand_support),
            ("downtime", self.downtime),
            ("repair_warranty", self.repair_warranty),
        ]
    }

    /// The weights in breakdown order (`ranking::FACTORS`).
    pub fn as_factor_array(&self) -> [f64; FACTOR_COUNT] {
        [self.distance, self.rating, self.price, self.brand_support, self.downtime, self.repair_warranty]
    }

    /// The weights scaled to sum 1.
    pub fn normalized(&self) -> Weights {
        let total: f64 = self.as_array().iter().map(|(_, w)| w).sum();
        Weights {
            distance: self.distance / total,
            rating: self.rating / total,
            price: self.price / total,
            brand_support: self.brand_support / total,
            downtime: self.downtime / total,
            repair_warranty: self.repair_warranty / total,
        }
    }
}

/// The shape of the distance decay, as in search engines' function scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayFunction {
    /// Bell curve: gentle near, steep at the scale.
    Gauss,
    /// Exponential: steep near, long tail.
    Exp,
    /// Straight line down to zero.
    Linear,
}

/// Distance decay: at `offset_km + scale_km` the factor is `decay`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistanceDecay {
    /// Curve shape.
    pub function: DecayFunction,
    /// Distance past the offset at which the factor falls to `decay`, km.
    pub scale_km: f64,
    /// Distances up to this score 1, km.
    pub offset_km: f64,
    /// The factor's value at `offset_km + scale_km`, strictly between 0 and 1.
    pub decay: f64,
}

impl Default for DistanceDecay {
    fn default() -> Self {
        Self { function: DecayFunction::Gauss, scale_km: 10.0, offset_km: 1.0, decay: 0.5 }
    }
}

impl DistanceDecay {
    /// The factor for a distance, in 0..=1.
    pub fn apply(&self, distance_km: f64) -> f64 {
        self.curve().apply(distance_km)
    }

    /// The curve with what does not depend on the distance worked out, for
    /// a query that applies it to every eligible center (the logarithm was
    /// an eighth of a score).
    pub fn curve(&self) -> DecayCurve {
        let constant = match self.function {
            DecayFunction::Gauss => {
                let variance = -self.scale_km.powi(2) / (2.0 * self.decay.ln());
                2.0 * variance
            }
            DecayFunction::Exp => self.decay.ln() / self.scale_km,
            DecayFunction::Linear => self.scale_km / (1.0 - self.decay),
        };
        DecayCurve { function: self.function, offset_km: self.offset_km, constant }
    }
}

/// A [`DistanceDecay`] ready to apply: the same numbers, bit for bit, as the
/// operations are the same and in the same order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecayCurve {
    function: DecayFunction,
    offset_km: f64,
    /// Twice the Gaussian's variance, the exponential's rate, or the distance
    /// past the offset where the line reaches zero.
    constant: f64,
}

impl DecayCurve {
    /// The factor for a distance, in 0..=1.
    pub fn apply(&self, distance_km: f64) -> f64 {
        let beyond = (distance_km - self.offset_km).max(0.0);
        match self.function {
            DecayFunction::Gauss => (-beyond.powi(2) / self.constant).exp(),
            DecayFunction::Exp => (self.constant * beyond).exp(),
            DecayFunction::Linear => ((self.constant - beyond) / self.constant).max(0.0),
        }
    }
}

/// The prior of the Bayesian rating: a center starts with `weight` imaginary
/// reviews of `mean` stars, so a handful of real ones moves it only a little.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RatingPrior {
    /// Prior mean, 1..=5 stars.
    pub mean: f64,
    /// Prior weight, in reviews.
    pub weight: f64,
}

impl Default for RatingPrior {
    fn default() -> Self {
        Self { mean: 3.5, weight: 20.0 }
    }
}

impl RatingPrior {
    /// The Bayesian average of a published rating.
    pub fn bayesian_average(&self, average: f64, count: u32) -> f64 {
        let count = f64::from(count);
        (self.weight * self.mean + average * count) / (self.weight + count)
    }
}

/// Default hours per service mode, used where a center publishes none, and the
/// travel model behind the downtime factor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DowntimeModel {
    /// Bench time for a walk-in repair.
    pub walk_in_turnaround_hours: f64,
    /// Time to book a technician and repair on site.
    pub onsite_turnaround_hours: f64,
    /// Depot repair time, once the terminal arrives.
    pub mail_in_turnaround_hours: f64,
    /// Time to ship a replacement unit.
    pub exchange_turnaround_hours: f64,
    /// A remote session.
    pub remote_turnaround_hours: f64,
    /// One-way parcel shipping.
    pub shipping_hours: f64,
    /// Average road speed for trips, km/h.
    pub travel_speed_kmh: f64,
    /// The downtime at which the factor halves.
    pub half_life_hours: f64,
}

impl Default for DowntimeModel {
    fn default() -> Self {
        Self {
            walk_in_turnaround_hours: 4.0,
            onsite_turnaround_hours: 24.0,
            mail_in_turnaround_hours: 120.0,
            exchange_turnaround_hours: 0.0,
            remote_turnaround_hours: 1.0,
            shipping_hours: 24.0,
            travel_speed_kmh: 30.0,
            half_life_hours: 24.0,
        }
    }
}

impl DowntimeModel {
    /// Hours until the merchant takes payments again through one mode.
    pub fn hours(&self, mode: ServiceMode, distance_km: f64, center_turnaround_hours: Option<u32>) -> f64 {
        let travel = distance_km / self.travel_speed_kmh;
        let turnaround = |default: f64| center_turnaround_hours.map_or(default, f64::from);
        match mode {
            // There and back twice: drop off, then collect.
            ServiceMode::WalkIn => 4.0 * travel + turnaround(self.walk_in_turnaround_hours),
            ServiceMode::Onsite => travel + turnaround(self.onsite_turnaround_hours),
            ServiceMode::MailIn => 2.0 * self.shipping_hours + turnaround(self.mail_in_turnaround_hours),
            // The replacement ships first; the broken unit's return costs no downtime.
            ServiceMode::Exchange => self.shipping_hours + turnaround(self.exchange_turnaround_hours),
            ServiceMode::Remote => turnaround(self.remote_turnaround_hours),
        }
    }

    /// The factor for a downtime, in 0..=1.
    pub fn factor(&self, hours: f64) -> f64 {
        0.5_f64.powf(hours / self.half_life_hours)
    }
}

/// The brand-support factor's levels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandSupportLevels {
    /// Authorized by the maker.
    pub authorized: f64,
    /// Lists the requested model by name.
    pub model_listed: f64,
    /// Lists the brand (all models).
    pub brand_listed: f64,
}

impl Default for BrandSupportLevels {
    fn default() -> Self {
        Self { authorized: 1.0, model_listed: 0.6, brand_listed: 0.3 }
    }
}

/// Rules that order or rule out centers regardless of score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policies {
    /// A bank-deployed terminal's own bank service points rank first.
    pub bank_service_first: bool,
    /// In warranty, centers that honour the warranty rank first.
    pub warranty_first: bool,
    /// Bank service points take only terminals their banks deployed.
    pub bank_service_only_for_own_banks: bool,
    /// TAMPER needs a center authorized for the brand with key injection, or an exchange.
    pub tamper_requires_key_injection_or_exchange: bool,
    /// Faults a remote session can fix; REMOTE is unusable for the others.
    pub remote_fault_categories: Vec<FaultCategory>,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            bank_service_first: true,
            warranty_first: true,
            bank_service_only_for_own_banks: true,
            tamper_requires_key_injection_or_exchange: true,
            remote_fault_categories: vec![FaultCategory::Software, FaultCategory::Connectivity],
        }
    }
}

/// A named set of ranking weights and policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankingProfile {
    /// Factor weights.
    pub weights: Weights,
    /// Distance decay.
    pub distance_decay: DistanceDecay,
    /// Bayesian rating prior.
    pub rating_prior: RatingPrior,
    /// Downtime model.
    pub downtime: DowntimeModel,
    /// Brand-support levels.
    pub brand_support: BrandSupportLevels,
    /// Price factor for a center with no price for the fault, 0..=1.
    pub unknown_price_score: f64,
    /// A warranty on the repair this long or longer scores the full repair
    /// warranty factor; shorter ones score their share of it, days.
    pub repair_warranty_full_days: f64,
    /// Trip distance cap when the request sets none, km.
    pub default_distance_cap_km: f64,
    /// Page size when the request sets none.
    pub default_page_size: u32,
    /// Tier and eligibility policies.
    pub policies: Policies,
}

impl Default for RankingProfile {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            distance_decay: DistanceDecay::default(),
            rating_prior: RatingPrior::default(),
            downtime: DowntimeModel::default(),
            brand_support: BrandSupportLevels::default(),
            unknown_price_score: 0.3,
            repair_warranty_full_days: 180.0,
            default_distance_cap_km: 50.0,
            default_page_size: 10,
            policies: Policies::default(),
        }
    }
}

/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

impl RankingProfile {
    /// Every problem with the profile, as (key, message) pairs; empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                problems.push((key.to_owned(), message.to_owned()));
            }
        };
        let weights = self.weights.as_array();
        let mut every_weight_valid = true;
        for (name, weight) in weights {
            let valid = weight.is_finite() && weight >= 0.0;
            every_weight_valid &= valid;
            check(valid, &format!("weights.{name}"), "must be a finite number >= 0");
        }
        // All zero is its own mistake; a negative weight is already reported.
        if every_weight_valid {
            check(weights.iter().map(|(_, w)| w).sum::<f64>() > 0.0, "weights", "at least one weight must be above 0");
        }
        let decay = &self.distance_decay;
        check(decay.scale_km.is_finite() && decay.scale_km > 0.0, "distance_decay.scale_km", "must be > 0");
        check(decay.offset_km.is_finite() && decay.offset_km >= 0.0, "distance_decay.offset_km", "must be >= 0");
        check(decay.decay > 0.0 && decay.decay < 1.0, "distance_decay.decay", "must be strictly between 0 and 1");
        check((1.0..=5.0).contains(&self.rating_prior.mean), "rating_prior.mean", "must be between 1 and 5");
        check(
            self.rating_prior.weight.is_finite() && self.rating_prior.weight >= 0.0,
            "rating_prior.weight",
            "must be >= 0",
        );
        check(
            self.repair_warranty_full_days.is_finite() && self.repair_warranty_full_days > 0.0,
            "repair_warranty_full_days",
            "must be > 0",
        );
        let model = &self.downtime;
        for (key, hours) in [
            ("downtime.walk_in_turnaround_hours", model.walk_in_turnaround_hours),
            ("downtime.onsite_turnaround_hours", model.onsite_turnaround_hours),
            ("downtime.mail_in_turnaround_hours", model.mail_in_turnaround_hours),
            ("downtime.exchange_turnaround_hours", model.exchange_turnaround_hours),
            ("downtime.remote_turnaround_hours", model.remote_turnaround_hours),
            ("downtime.shipping_hours", model.shipping_hours),
        ] {
            check(hours.is_finite() && hours >= 0.0, key, "must be >= 0");
        }
        check(
            model.travel_speed_kmh.is_finite() && model.travel_speed_kmh > 0.0,
            "downtime.travel_speed_kmh",
            "must be > 0",
        );
        check(
            model.half_life_hours.is_finite() && model.half_life_hours > 0.0,
            "downtime.half_life_hours",
            "must be > 0",
        );
        let levels = &self.brand_support;
        for (key, level) in [
            ("brand_support.authorized", levels.authorized),
            ("brand_support.model_listed", levels.model_listed),
            ("brand_support.brand_listed", levels.brand_listed),
        ] {
            check((0.0..=1.0).contains(&level), key, "must be between 0 and 1");
        }
        check((0.0..=1.0).contains(&self.unknown_price_score), "unknown_price_score", "must be between 0 and 1");
        check(
            self.default_distance_cap_km.is_finite() && self.default_distance_cap_km > 0.0,
            "default_distance_cap_km",
            "must be > 0",
        );
        check(
            (1..=MAX_PAGE_SIZE).contains(&self.default_page_size),
            "default_page_size",
            &format!("must be between 1 and {MAX_PAGE_SIZE}"),
        );
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_curve_gives_the_formulas_numbers_bit_for_bit() {
        // The formulas as they were written before the curve was prepared
        // once per query: page tokens carry scores, so they must not move.
        let formula = |decay: &DistanceDecay, distance_km: f64| {
            let beyond = (distance_km - decay.offset_km).max(0.0);
            match decay.function {
                DecayFunction::Gauss => {
                    let variance = -decay.scale_km.powi(2) / (2.0 * decay.decay.ln());
                    (-beyond.powi(2) / (2.0 * variance)).exp()
                }
                DecayFunction::Exp => (decay.decay.ln() / decay.scale_km * beyond).exp(),
                DecayFunction::Linear => {
                    let zero_at = decay.scale_km / (1.0 - decay.decay);
                    ((zero_at - beyond) / zero_at).max(0.0)
                }
            }
        };
        for function in [DecayFunction::Gauss, DecayFunction::Exp, DecayFunction::Linear] {
            for (scale_km, offset_km, decay) in [(10.0, 1.0, 0.5), (3.7, 0.0, 0.01), (250.0, 12.5, 0.99)] {
                let decay = DistanceDecay { function, scale_km, offset_km, decay };
                let curve = decay.curve();
                for step in 0..5_000 {
                    let distance_km = f64::from(step) * 0.137;
                    assert_eq!(curve.apply(distance_km).to_bits(), formula(&decay, distance_km).to_bits());
                }
            }
        }
    }

    #[test]
    fn decay_curves_hit_decay_at_offset_plus_scale() {
        for function in [DecayFunction::Gauss, DecayFunction::Exp, DecayFunction::Linear] {
            let decay = DistanceDecay { function, scale_km: 10.0, offset_km: 2.0, decay: 0.5 };
            assert!((decay.apply(0.0) - 1.0).abs() < 1e-12, "{function:?}");
            assert!((decay.apply(2.0) - 1.0).abs() < 1e-12, "{function:?}");
            assert!((decay.apply(12.0) - 0.5).abs() < 1e-12, "{function:?}");
            assert!(decay.apply(30.0) < decay.apply(12.0), "{function:?}");
        }
        let linear = DistanceDecay { function: DecayFunction::Linear, scale_km: 10.0, offset_km: 0.0, decay: 0.5 };
        assert_eq!(linear.apply(25.0), 0.0);
    }

    #[test]
    fn bayesian_rating_prefers_many_good_reviews_over_two_perfect_ones() {
        let prior = RatingPrior::default();
        assert!(prior.bayesian_average(4.8, 2000) > prior.bayesian_average(5.0, 2));
        assert_eq!(prior.bayesian_average(1.0, 0), prior.mean);
    }

    #[test]
    fn weights_normalize_to_one() {
        let weights =
            Weights { distance: 2.0, rating: 1.0, price: 1.0, brand_support: 0.0, downtime: 0.0, repair_warranty: 0.0 }
                .normalized();
        assert!((weights.distance - 0.5).abs() < 1e-12);
        let sum: f64 = weights.as_array().iter().map(|(_, w)| w).sum();
        assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn downtime_prefers_exchange_over_depot_repair() {
        let model = DowntimeModel::default();
        assert!(model.hours(ServiceMode::Exchange, 800.0, None) < model.hours(ServiceMode::MailIn, 800.0, None));
        assert!(model.hours(ServiceMode::WalkIn, 2.0, None) < model.hours(ServiceMode::WalkIn, 20.0, None));
        assert_eq!(model.hours(ServiceMode::Remote, 0.0, Some(3)), 3.0);
        assert!(model.factor(0.0) == 1.0 && (model.factor(24.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn every_validation_rule_names_its_key_and_says_why() {
        type Breaks = fn(&mut RankingProfile);
        let cases: [(&str, &str, Breaks); 20] = [
            ("weights.distance", "finite number >= 0", |p| p.weights.distance = -0.1),
            ("weights.rating", "finite number >= 0", |p| p.weights.rating = f64::NAN),
            ("weights.price", "finite number >= 0", |p| p.weights.price = f64::INFINITY),
            ("weights.brand_support", "finite number >= 0", |p| p.weights.brand_support = -1.0),
            ("weights.downtime", "finite number >= 0", |p| p.weights.downtime = -1.0),
            ("distance_decay.scale_km", "must be > 0", |p| p.distance_decay.scale_km = 0.0),
            ("distance_decay.offset_km", "must be >= 0", |p| p.distance_decay.offset_km = -1.0),
            ("distance_decay.decay", "strictly between 0 and 1", |p| p.distance_decay.decay = 0.0),
            ("rating_prior.mean", "between 1 and 5", |p| p.rating_prior.mean = 5.5),
            ("rating_prior.weight", "must be >= 0", |p| p.rating_prior.weight = -3.0),
            ("downtime.walk_in_turnaround_hours", "must be >= 0", |p| p.downtime.walk_in_turnaround_hours = -1.0),
            ("downtime.shipping_hours", "must be >= 0", |p| p.downtime.shipping_hours = f64::NAN),
            ("downtime.travel_speed_kmh", "must be > 0", |p| p.downtime.travel_speed_kmh = 0.0),
            ("downtime.half_life_hours", "must be > 0", |p| p.downtime.half_life_hours = -2.0),
            ("brand_support.authorized", "between 0 and 1", |p| p.brand_support.authorized = 1.5),
            ("brand_support.model_listed", "between 0 and 1", |p| p.brand_support.model_listed = -0.5),
            ("brand_support.brand_listed", "between 0 and 1", |p| p.brand_support.brand_listed = 2.0),
            ("unknown_price_score", "between 0 and 1", |p| p.unknown_price_score = 1.1),
            ("default_distance_cap_km", "must be > 0", |p| p.default_distance_cap_km = 0.0),
            ("default_page_size", "between 1 and 100", |p| p.default_page_size = 101),
        ];
        for (key, why, breaks) in cases {
            let mut profile = RankingProfile::default();
            breaks(&mut profile);
            let problems = profile.validate();
            assert_eq!(problems.len(), 1, "{key}: {problems:?}");
            assert_eq!(problems[0].0, key);
            assert!(problems[0].1.contains(why), "{key}: {:?}", problems[0].1);
        }
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut profile = RankingProfile {
            weights: Weights {
                distance: 0.0,
                rating: 0.0,
                price: 0.0,
                brand_support: 0.0,
                downtime: 0.0,
                repair_warranty: 0.0,
            },
            ..Default::default()
        };
        profile.distance_decay.decay = 1.0;
        profile.default_page_size = 0;
        let keys: Vec<String> = profile.validate().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["weights", "distance_decay.decay", "default_page_size"]);
        profile.weights.rating = -1.0;
        assert!(profile.validate().iter().any(|(key, _)| key == "weights.rating"));
        assert!(RankingProfile::default().validate().is_empty());
    }
}
