//! Why an answer is empty, in words that tell the merchant what to change.
//!
//! With no eligible center, "nobody covers you" is often untrue: centers of
//! the brand do serve the merchant's location, and a filter of the request (a
//! price cap in a currency nobody there quotes, a minimum rating, a model, an
//! opening time…) turned each of them down. Or the brand itself is unknown.
//! [`diagnose`] tells these apart.
//!
//! It restates no rule: it runs the eligibility rules twice per candidate.
//! Once for the request reduced to what the merchant cannot change (where, which
//! brand, who owns the terminal): a center that passes serves this brand here
//! (active, covering the merchant, allowed by the profile's policies). Then as
//! asked: its first failed rule is the filter that turned it down. It runs
//! only when nothing matched, over at most [`MAX_DIAGNOSED_CANDIDATES`]
//! candidates of the index.

use crate::catalog::Catalog;
use crate::eligibility::{MatchContext, Rejection};
use crate::i18n::{Arg, ListStyle, Text};
use crate::model::{CurrencyCode, FaultCategory, Money, ServiceMode};
use crate::query::FindQuery;

/// The most index candidates one diagnosis evaluates; past it the counts are
/// lower bounds (and said to be).
pub const MAX_DIAGNOSED_CANDIDATES: usize = 1_000;

/// Longer than any trip on Earth (half the equator is 20,038 km): a cap this
/// long lifts the distance cap.
const NO_DISTANCE_CAP_KM: f64 = 40_075.0;

/// A filter of the request that turned down centers serving the merchant.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// They list models of the brand, not this one.
    Model,
    /// They do not repair the fault.
    Fault,
    /// Beyond the trip cap, with only walk-in or onsite visits to offer.
    DistanceCap,
    /// They offer none of the wanted service modes.
    ServiceMode,
    /// Below the minimum rating, or unreviewed.
    Rating {
        /// The best published average among them, when any has reviews.
        best_average: Option<f64>,
    },
    /// They quote in other currencies than the cap's.
    PriceCurrency {
        /// Their currencies, sorted.
        quoted: Vec<CurrencyCode>,
    },
    /// Their lowest quote for the fault is above the cap.
    AbovePriceCap {
        /// The lowest of those quotes.
        lowest: Money,
    },
    /// They publish no price for the fault, so none is within the cap.
    Unpriced,
    /// Their warranty on the repair is shorter than asked.
    ShortRepairWarranty {
        /// The longest they give, days (0: none publishes one).
        longest_days: u32,
    },
    /// Closed at the asked time.
    Closed,
    /// A tampered terminal needs an authorized key-injection center or an exchange.
    TamperPolicy,
    /// Only a remote session was left, and it cannot fix the fault.
    RemoteCannotFix,
}

impl Cause {
    fn of(rejection: Rejection) -> Option<Self> {
        Some(match rejection {
            // A center failing these does not serve the merchant at all; the
            // reduced request already set it aside.
            Rejection::Inactive | Rejection::Brand | Rejection::Coverage { .. } | Rejection::OtherBanksOnly => {
                return None;
            }
            Rejection::Model => Cause::Model,
            Rejection::Fault => Cause::Fault,
            Rejection::DistanceCap { .. } => Cause::DistanceCap,
            Rejection::ServiceMode => Cause::ServiceMode,
            Rejection::Unrated => Cause::Rating { best_average: None },
            Rejection::RatedBelow { average } => Cause::Rating { best_average: Some(average) },
            Rejection::OtherCurrency { currency_code } => Cause::PriceCurrency { quoted: vec![currency_code] },
            Rejection::AbovePriceCap { lowest } => Cause::AbovePriceCap { lowest },
            Rejection::Unpriced => Cause::Unpriced,
            Rejection::ShortRepairWarranty { days } => Cause::ShortRepairWarranty { longest_days: days },
            Rejection::Closed => Cause::Closed,
            Rejection::TamperPolicy => Cause::TamperPolicy,
            Rejection::RemoteCannotFix => Cause::RemoteCannotFix,
        })
    }

    /// The contract's rule order, for ties.
    fn order(&self) -> u8 {
        match self {
            Cause::Model => 0,
            Cause::Fault => 1,
            Cause::DistanceCap => 2,
            Cause::ServiceMode => 3,
            Cause::Rating { .. } => 4,
            Cause::PriceCurrency { .. } => 5,
            Cause::AbovePriceCap { .. } => 6,
            Cause::Unpriced => 7,
            Cause::ShortRepairWarranty { .. } => 8,
            Cause::Closed => 9,
            Cause::TamperPolicy => 10,
            Cause::RemoteCannotFix => 11,
        }
    }

    /// Folds another center's instance of the same cause into this one.
    fn absorb(&mut self, other: Cause) {
        match (self, other) {
            (Cause::Rating { best_average }, Cause::Rating { best_average: other }) => {
                *best_average = match (*best_average, other) {
                    (Some(best), Some(other)) => Some(best.max(other)),
                    (best, other) => best.or(other),
                };
            }
            (Cause::PriceCurrency { quoted }, Cause::PriceCurrency { quoted: other }) => {
                quoted.extend(other);
                quoted.sort_unstable();
                quoted.dedup();
            }
            (Cause::ShortRepairWarranty { longest_days }, Cause::ShortRepairWarranty { longest_days: other }) => {
                *longest_days = (*longest_days).max(other);
            }
            (Cause::AbovePriceCap { lowest }, Cause::AbovePriceCap { lowest: other })
                if other.amount_minor_units < lowest.amount_minor_units =>
            {
                *lowest = other;
            }
            _ => {}
        }
    }

    /// "the filter: what is true of them", for one guidance line.
    fn describe(&self, context: &MatchContext<'_>) -> Text {
        let query = context.query;
        let fault = || FaultCategory::text_of(query.fault);
        let brand = context.brand_name.as_str();
        match self {
            Cause::Model => Text::new("cause-model")
                .with("model", context.model_name.as_deref().unwrap_or_default())
                .with("brand", brand),
            Cause::Fault => Text::new("cause-fault").with("fault", fault()),
            Cause::DistanceCap => {
                Text::new("cause-distance-cap").with("cap_km", Arg::decimal(context.distance_cap_km, 0))
            }
            Cause::ServiceMode => Text::new("cause-service-mode")
                .with("modes", Arg::list(query.service_modes.iter().map(ServiceMode::text), ListStyle::Or)),
            Cause::Rating { best_average } => {
                let min_rating = Arg::decimal(query.min_rating.unwrap_or_default(), 1);
                match best_average {
                    Some(best) => Text::new("cause-rating-best")
                        .with("min_rating", min_rating)
                        .with("best", Arg::decimal(*best, 1)),
                    None => Text::new("cause-rating-unrated").with("min_rating", min_rating),
                }
            }
            Cause::PriceCurrency { quoted } => {
                let quoted = quoted.iter().map(|code| Arg::from(code.as_str())).collect();
                Text::new("cause-price-currency")
                    .with("cap_currency", query.max_price.as_ref().map_or("", |cap| cap.currency_code.as_str()))
                    .with("quoted", Arg::List(quoted, ListStyle::Or))
            }
            Cause::AbovePriceCap { lowest } => Text::new("cause-above-price-cap")
                .with("cap", query.max_price.map_or_else(|| Arg::from(""), Arg::Money))
                .with("fault", fault())
                .with("lowest", *lowest),
            Cause::Unpriced => Text::new("cause-unpriced").with("fault", fault()),
            Cause::ShortRepairWarranty { longest_days } => {
                let min_days = Arg::Count(u64::from(query.min_repair_warranty_days.unwrap_or_default()));
                match longest_days {
                    0 => Text::new("cause-repair-warranty-unpublished").with("min_days", min_days),
                    days => Text::new("cause-repair-warranty-short")
                        .with("min_days", min_days)
                        .with("days", Arg::Count(u64::from(*days))),
                }
            }
            Cause::Closed => Text::new("cause-closed"),
            Cause::TamperPolicy => Text::new("cause-tamper-policy").with("brand", brand),
            Cause::RemoteCannotFix => Text::new("cause-remote-cannot-fix").with("fault", fault()),
        }
    }
}

/// Why nothing matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The catalog has a record (warranty, support channels) for the brand.
    pub brand_on_file: bool,
    /// Some active center, anywhere, lists the brand.
    pub brand_listed: bool,
    /// Centers of the brand that serve the merchant's location.
    pub serving: usize,
    /// Every candidate was evaluated; otherwise the counts are lower bounds.
    pub complete: bool,
    /// Each filter and how many serving centers failed it first, most first.
    pub causes: Vec<(Cause, usize)>,
}

/// Why `context`'s request matched nothing in `catalog`.
pub fn diagnose(catalog: &Catalog, context: &MatchContext<'_>) -> Diagnosis {
    let query = context.query;
    let mut reduced = FindQuery::new(query.location, query.brand.clone());
    reduced.ownership = query.ownership.clone();
    // Where the merchant is does not change: reuse the country already found.
    reduced.country_code = context.merchant_country;
    reduced.max_distance_km = Some(NO_DISTANCE_CAP_KM);
    let serves_here = MatchContext::new(&reduced, context.profile, context.warranty);
    let filter = serves_here.candidate_filter();

    let mut serving = 0;
    let mut causes: Vec<(Cause, usize)> = Vec::new();
    let mut candidates = catalog.candidates(&context.brand_key, &filter);
    for candidate in candidates.by_ref().take(MAX_DIAGNOSED_CANDIDATES) {
        if serves_here.evaluate(catalog, candidate).is_err() {
            continue;
        }
        serving += 1;
        let Some(cause) = context.evaluate(catalog, candidate).err().and_then(Cause::of) else {
            continue;
        };
        match causes.iter_mut().find(|(known, _)| known.order() == cause.order()) {
            Some((known, count)) => {
                known.absorb(cause);
                *count += 1;
            }
            None => causes.push((cause, 1)),
        }
    }
    causes.sort_by(|(a, a_count), (b, b_count)| b_count.cmp(a_count).then(a.order().cmp(&b.order())));
    Diagnosis {
        brand_on_file: catalog.brand(&query.brand).is_some(),
        brand_listed: catalog.lists_brand(&context.brand_key),
        serving,
        complete: candidates.next().is_none(),
        causes,
    }
}

impl Diagnosis {
    /// The guidance line for an empty answer. `has_remote_support`: the
    /// answer carries at least one support channel (brand or bank).
    pub fn guidance(&self, context: &MatchContext<'_>, has_remote_support: bool) -> Text {
        let brand = context.brand_name.as_str();
        if !self.brand_on_file && !self.brand_listed {
            return Text::new("diagnosis-unknown-brand").with("brand", brand);
        }
        if self.serving == 0 {
            let id =
                if has_remote_support { "diagnosis-nobody-covers-with-support" } else { "diagnosis-nobody-covers" };
            return Text::new(id).with("brand", brand);
        }
        let causes = self.causes.iter().map(|(cause, count)| {
            Text::new("diagnosis-cause").with("cause", cause.describe(context)).with("count", Arg::Count(*count as u64))
        });
        Text::new("diagnosis-none-fits")
            .with("complete", Arg::Flag(self.complete))
            .with("count", Arg::Count(self.serving as u64))
            .with("brand", brand)
            .with("causes", Arg::list(causes, ListStyle::Clauses))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc, Weekday};

    use super::*;
    use crate::geodesy::LatLng;
    use crate::model::{FaultCategory, OpeningHours, Rating, ServiceMode, WeeklyPeriod};
    use crate::query::{Ownership, WarrantyStatus};
    use crate::test_fixtures::*;
    use crate::{RankingProfile, model::BrandSupport};

    /// The diagnosis and the guidance line for `query` over `centers`.
    fn why(centers: Vec<crate::model::RepairCenter>, query: &FindQuery) -> (Diagnosis, String) {
        let catalog = catalog(centers);
        let profile = RankingProfile::default();
        let mut context = MatchContext::new(query, &profile, WarrantyStatus::Unknown);
        context.spell_as(catalog.brand(&query.brand));
        let diagnosis = diagnose(&catalog, &context);
        let line = diagnosis.guidance(&context, true).english();
        (diagnosis, line)
    }

    fn usd(amount_minor_units: i64) -> Money {
        Money { currency_code: CurrencyCode::parse("USD").unwrap(), amount_minor_units }
    }

    #[test]
    fn an_unknown_brand_is_not_blamed_on_the_location() {
        let mut q = query();
        q.brand = "Pacs".into();
        let (diagnosis, line) = why(vec![center("a", 3.0)], &q);
        assert!(!diagnosis.brand_on_file && !diagnosis.brand_listed);
        assert!(line.starts_with("\"Pacs\" is not a brand in the catalog"), "{line}");
        assert!(line.contains("label"), "{line}");
    }

    #[test]
    fn a_brand_only_centers_list_is_known_without_a_record() {
        let mut listing = center("a", 3.0);
        listing.brands = vec![BrandSupport::new("Castles", false, &[])];
        let mut q = query();
        q.brand = "castles".into();
        q.location = LatLng::new(64.1, -21.9);
        let (diagnosis, _) = why(vec![listing], &q);
        assert!(!diagnosis.brand_on_file && diagnosis.brand_listed);
        let profile = RankingProfile::default();
        let context = MatchContext::new(&q, &profile, WarrantyStatus::Unknown);
        assert_eq!(
            diagnosis.guidance(&context, false).english(),
            "No repair center covers this location for castles terminals, and no support channel is on file for castles."
        );
    }

    #[test]
    fn nobody_near_is_said_plainly() {
        let mut q = query();
        q.location = LatLng::new(64.1, -21.9);
        let (diagnosis, line) = why(vec![center("a", 3.0)], &q);
        assert_eq!((diagnosis.serving, diagnosis.causes.len()), (0, 0));
        assert!(line.starts_with("No repair center covers this location for PAX terminals"), "{line}");
    }

    #[test]
    fn a_price_cap_in_another_currency_names_the_currencies_quoted() {
        let mut q = query();
        q.max_price = Some(usd(10_000));
        let mut far = center("far", 40.0);
        far.coverage.radius_km = Some(30.0);
        let (diagnosis, line) = why(vec![center("a", 3.0), center("b", 5.0), far], &q);
        assert_eq!(diagnosis.serving, 2, "the one 40 km out does not cover the merchant");
        assert!(diagnosis.complete);
        let quoted = vec![CurrencyCode::parse("CNY").unwrap()];
        assert_eq!(diagnosis.causes, [(Cause::PriceCurrency { quoted }, 2)]);
        assert_eq!(
            line,
            "2 repair centers for PAX cover this location, but none fits this request. What ruled them out: \
             the price cap in USD, as they quote in CNY (2 centers)."
        );
    }

    #[test]
    fn a_minimum_rating_names_the_best_rating_there_is() {
        let mut fair = center("fair", 4.0);
        fair.rating = Some(Rating { average: 3.9, count: 40 });
        let mut unrated = center("unrated", 5.0);
        unrated.rating = None;
        let mut q = query();
        q.min_rating = Some(4.6);
        let (diagnosis, line) = why(vec![center("good", 3.0), fair, unrated], &q);
        assert_eq!(diagnosis.causes, [(Cause::Rating { best_average: Some(4.5) }, 3)]);
        assert!(line.contains("the minimum rating 4.6, as the best of them is rated 4.5 (3 centers)"), "{line}");
    }

    #[test]
    fn each_filter_names_itself_and_the_most_common_comes_first() {
        let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let mut listing_a80 = center("lists-a80", 3.0);
        listing_a80.brands = vec![BrandSupport::new("PAX", false, &["A80".into()])];
        let mut printers_only = center("printers", 3.0);
        printers_only.fault_categories = [FaultCategory::Printer].into_iter().collect();
        let mut onsite_only = center("onsite", 3.0);
        onsite_only.service_modes = modes(&[ServiceMode::Onsite]);
        let mut far_walk_in = center("far", 25.0);
        far_walk_in.coverage.radius_km = Some(30.0);
        let mut dear = center("dear", 3.0);
        dear.prices[0] = screen_quote(50_000, 90_000);
        let mut dearer = dear.clone();
        dearer.id = "dearer".into();
        dearer.prices[0] = screen_quote(70_000, 90_000);
        let mut unpriced = center("unpriced", 3.0);
        unpriced.prices = Box::default();
        let mut closed = center("closed", 3.0);
        closed.opening_hours = Some(OpeningHours {
            time_zone: shanghai,
            periods: Box::new([WeeklyPeriod { day: Weekday::Mon, open_minute_of_day: 540, close_minute_of_day: 1080 }]),
            exceptions: Box::default(),
        });

        let mut q = query();
        q.model = Some("a920".into());
        q.service_modes = modes(&[ServiceMode::WalkIn, ServiceMode::MailIn]);
        q.max_distance_km = Some(20.0);
        q.max_price = Some(cny(30_000));
        q.open_at = Some(Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap());
        let centers = vec![listing_a80, printers_only, onsite_only, far_walk_in, dear, dearer, unpriced, closed];
        let (diagnosis, line) = why(centers, &q);
        assert_eq!(diagnosis.serving, 8);
        let cny_500 = cny(50_000);
        assert_eq!(
            diagnosis.causes,
            [
                (Cause::AbovePriceCap { lowest: cny_500 }, 2),
                (Cause::Model, 1),
                (Cause::Fault, 1),
                (Cause::DistanceCap, 1),
                (Cause::ServiceMode, 1),
                (Cause::Unpriced, 1),
                (Cause::Closed, 1),
            ]
        );
        for words in [
            "8 repair centers for PAX cover this location",
            "the price cap of 300.00 CNY, as their lowest quote for screen faults is 500.00 CNY (2 centers)",
            "the model A920, which is not among the PAX models they list (1 center)",
            "the fault, as they do not repair screen faults",
            "the 20 km trip cap",
            "the service modes asked for, as they do not offer walk-in or mail-in",
            "the price cap, as they publish no price for screen faults",
            "the opening time asked for, as they are closed then",
        ] {
            assert!(line.contains(words), "{words:?} missing from {line}");
        }
    }

    #[test]
    fn tamper_and_remote_only_policies_are_named() {
        let mut q = query();
        q.fault = Some(FaultCategory::Tamper);
        let (diagnosis, line) = why(vec![center("independent", 3.0)], &q);
        assert_eq!(diagnosis.causes, [(Cause::TamperPolicy, 1)]);
        assert!(line.contains("authorized for PAX with key injection"), "{line}");

        let mut remote_only = center("remote", 3.0);
        remote_only.service_modes = modes(&[ServiceMode::Remote]);
        let (diagnosis, _) = why(vec![remote_only], &query());
        assert_eq!(diagnosis.causes, [(Cause::RemoteCannotFix, 1)]);
    }

    #[test]
    fn other_banks_service_points_do_not_count_as_serving() {
        let mut bank_point = center("bank", 3.0);
        bank_point.kind = crate::model::CenterKind::BankService;
        bank_point.bank_ids = Box::new(["icbc".into()]);
        let mut q = query();
        q.ownership = Ownership::BankDeployed { bank_id: "ccb".into() };
        let (diagnosis, line) = why(vec![bank_point], &q);
        assert_eq!(diagnosis.serving, 0);
        assert!(line.starts_with("No repair center covers"), "{line}");
    }

    #[test]
    fn the_work_is_bounded_and_the_counts_say_so() {
        let centers: Vec<_> = (0..MAX_DIAGNOSED_CANDIDATES + 5).map(|i| center(&format!("c{i:04}"), 3.0)).collect();
        let mut q = query();
        q.min_rating = Some(5.0);
        let (diagnosis, line) = why(centers, &q);
        assert!(!diagnosis.complete);
        assert_eq!(diagnosis.serving, MAX_DIAGNOSED_CANDIDATES);
        assert!(line.starts_with("1000 or more repair centers for PAX cover this location"), "{line}");
    }
}
