//! `FindRepairCenter` as a plain function over a catalog snapshot.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::{Candidate, Catalog, HintedCandidate, chord_angle};
use crate::diagnosis::diagnose;
use crate::eligibility::{BrandSupportLevel, Eligible, Exclusion, ExclusionRule, MatchContext};
use crate::geodesy::{DISTANCE_RELATIVE_ERROR, MIN_RADIUS_OF_CURVATURE_KM};
use crate::i18n::{Arg, ListStyle, Text};
use crate::model::CurrencyCode;
use crate::model::{BrandSupport, FaultCategory, RepairCenter, ServiceMode};
use crate::paging::{self, PageTokenError};
use crate::profile::{FACTOR_COUNT, MAX_PAGE_SIZE, RankingProfile};
use crate::query::{FindQuery, WarrantyStatus};
use crate::ranking::{CheapestQuotes, RankKey, ScoreComponent, Scored, Scoring, SortKey, score};

/// Who runs a remote support channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportProvider {
    /// The terminal's maker.
    Brand,
    /// The deploying bank.
    Bank,
}

/// A hotline, online support and e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportChannel {
    /// Who runs it.
    pub provider: SupportProvider,
    /// Brand or bank name.
    pub name: String,
    /// Hotline.
    pub hotline: String,
    /// Online support.
    pub online_support_url: String,
    /// E-mail.
    pub email: String,
}

/// A match with its place in the whole ranking.
#[derive(Debug, Clone)]
pub struct RankedMatch {
    /// The center.
    pub center: Arc<RepairCenter>,
    /// The scored match.
    pub scored: Scored,
    /// One component per factor; the contributions add up to the score.
    pub breakdown: [ScoreComponent; FACTOR_COUNT],
    /// 1-based rank across all pages.
    pub rank: u32,
    /// Short reasons, for people: rendered in the request's language.
    pub reasons: Vec<Text>,
}

/// The answer to a find.
#[derive(Debug, Clone)]
pub struct FindOutcome {
    /// This page.
    pub matches: Vec<RankedMatch>,
    /// Eligible centers in all: exact up to [`EXACT_TOTAL_LIMIT`], and
    /// beyond it exact unless `total_size_is_estimate`.
    pub total_size: usize,
    /// `total_size` was estimated from the candidates the ranking visited.
    pub total_size_is_estimate: bool,
    /// Token for the next page, when there is one.
    pub next_page_token: Option<String>,
    /// One per asked-about center not matched.
    pub exclusions: Vec<Exclusion>,
    /// The bank's channel first, then the brand's.
    pub remote_support: Vec<SupportChannel>,
    /// Next steps, for people: rendered in the request's language.
    pub guidance: Vec<Text>,
    /// The warranty status acted on.
    pub warranty: WarrantyStatus,
    /// The catalog version answered from.
    pub catalog_version: u64,
}

/// Up to this many eligible centers `total_size` is exact, as the contract
/// promises; past it a Find may stop visiting candidates once no unvisited
/// one can reach the page, and estimate the total.
pub const EXACT_TOTAL_LIMIT: usize = 1_000;

/// Finds, ranks and pages the centers for a request. `now` decides warranties.
pub fn find(
    catalog: &Catalog,
    query: &FindQuery,
    profile: &RankingProfile,
    now: DateTime<Utc>,
) -> Result<FindOutcome, PageTokenError> {
    find_with_exact_limit(catalog, query, profile, now, EXACT_TOTAL_LIMIT)
}

/// [`find`] with another limit than [`EXACT_TOTAL_LIMIT`] for exact totals:
/// small limits run the pruned ranking on small catalogs, for tests.
pub fn find_with_exact_limit(
    catalog: &Catalog,
    query: &FindQuery,
    profile: &RankingProfile,
    now: DateTime<Utc>,
    exact_total_limit: usize,
) -> Result<FindOutcome, PageTokenError> {
    let mut pages = find_pages(catalog, query, profile, now, 1, exact_total_limit)?;
    Ok(pages.swap_remove(0))
}

/// The asked page and up to `pages - 1` pages after it, from one ranking:
/// each as [`find`] would answer it when asked with the previous page's
/// token, on this snapshot. A service ranks pages ahead this way for a
/// caller who pages on, for the price of one ranking.
pub fn find_pages(
    catalog: &Catalog,
    query: &FindQuery,
    profile: &RankingProfile,
    now: DateTime<Utc>,
    pages: usize,
    exact_total_limit: usize,
) -> Result<Vec<FindOutcome>, PageTokenError> {
    // Hashing the query costs a few microseconds: only paging needs it.
    let fingerprint = std::cell::OnceCell::new();
    let fingerprint = || *fingerprint.get_or_init(|| query.fingerprint());
    let after = query.page_token.as_deref().map(|token| paging::decode(token, fingerprint())).transpose()?;
    let brand = catalog.brand(&query.brand);
    let warranty = query.warranty.decide(brand, now.date_naive());
    let mut context = MatchContext::new(query, profile, warranty);
    context.spell_as(brand);

    let filter = context.candidate_filter();
    let listing = catalog.listing(&context.brand_key, &filter);
    let page_size = query.page_size.unwrap_or(profile.default_page_size).clamp(1, MAX_PAGE_SIZE) as usize;
    let ranker = Ranker {
        catalog,
        context: &context,
        scoring: Scoring::of(profile),
        after: after.as_ref(),
        page_size: page_size * pages.max(1),
    };
    let ranking = if listing.len() <= exact_total_limit {
        ranker.rank_all(listing.candidates())
    } else {
        let candidates: Vec<HintedCandidate> = listing.hinted().collect();
        ranker.rank_nearest_first(&candidates, exact_total_limit)
    };

    let remote_support = remote_support(catalog, query);
    let guidance = guidance(catalog, &context, ranking.total_size, &remote_support);
    let exclusions = explain(catalog, &context);
    let mut matches: Vec<RankedMatch> = ranking
        .page
        .into_iter()
        .enumerate()
        .map(|(index, scored)| {
            let center = Arc::clone(catalog.center_at(scored.eligible.slot));
            let reasons = reasons(&context, &scored, &center);
            let breakdown = scored.breakdown(profile);
            RankedMatch {
                center,
                rank: u32::try_from(ranking.ranked_before + index + 1).unwrap_or(u32::MAX),
                reasons,
                breakdown,
                scored,
            }
        })
        .collect();
    let page_count = matches.len().div_ceil(page_size).clamp(1, pages.max(1));
    let mut outcomes = Vec::with_capacity(page_count);
    for page in 0..page_count {
        let rest = matches.split_off(page_size.min(matches.len()));
        let page_matches = std::mem::replace(&mut matches, rest);
        let last_page = page + 1 == page_count;
        let next_page_token = (!last_page || ranking.has_more)
            .then(|| page_matches.last().map(|last| paging::encode(fingerprint(), &last.scored.sort_key(catalog))))
            .flatten();
        outcomes.push(FindOutcome {
            matches: page_matches,
            total_size: ranking.total_size,
            total_size_is_estimate: ranking.total_size_is_estimate,
            next_page_token,
            exclusions: exclusions.clone(),
            guidance: guidance.clone(),
            remote_support: remote_support.clone(),
            warranty,
            catalog_version: catalog.version(),
        });
    }
    Ok(outcomes)
}

/// One page of a ranking and where it stands in the whole.
struct Ranking {
    /// The page, in order, scored with breakdowns.
    page: Vec<Scored>,
    /// Eligible centers ranked before the page.
    ranked_before: usize,
    total_size: usize,
    total_size_is_estimate: bool,
    /// More matches follow the page.
    has_more: bool,
}

/// Ranks one request's candidates into a page.
struct Ranker<'a> {
    catalog: &'a Catalog,
    context: &'a MatchContext<'a>,
    /// The profile's weights and distance curve.
    scoring: Scoring,
    after: Option<&'a SortKey>,
    page_size: usize,
}

impl Ranker<'_> {
    /// The id of the center of `eligible[index]`.
    fn id<'e>(&'e self, eligible: &'e [Eligible], index: u32) -> &'e str {
        self.catalog.center_at(eligible[index as usize].slot).id.as_str()
    }

    /// The place in the order of `eligible[index]`, or `None` when it comes
    /// at or before the page token's key.
    fn key_after_token(&self, eligible: &[Eligible], index: usize, cheapest: &CheapestQuotes) -> Option<RankKey> {
        let found = eligible[index];
        let key = RankKey {
            tier: found.tier,
            score: score(found, self.context.profile, &self.scoring, cheapest, self.catalog).score,
            distance_km: found.distance_km,
            index: index as u32,
        };
        self.after.is_none_or(|after| key.is_after(after, self.id(eligible, key.index))).then_some(key)
    }

    /// Runs the rules on every candidate: an exact total.
    fn rank_all(&self, candidates: impl ExactSizeIterator<Item = Candidate>) -> Ranking {
        let mut eligible: Vec<Eligible> = Vec::with_capacity(candidates.len());
        eligible.extend(candidates.filter_map(|candidate| self.context.evaluate(self.catalog, candidate).ok()));
        let cheapest = CheapestQuotes::of(&eligible);
        let mut keys: Vec<RankKey> = Vec::with_capacity(eligible.len());
        keys.extend((0..eligible.len()).filter_map(|index| self.key_after_token(&eligible, index, &cheapest)));
        let ranked_before = eligible.len() - keys.len();
        self.page(&eligible, keys, &cheapest, ranked_before, eligible.len(), false)
    }

    /// Runs the rules nearest candidate first, and stops once more than
    /// `exact_total_limit` are eligible and no candidate left could reach the
    /// page: every factor but distance at its best, distance at least as far
    /// as the last visited (a lower bound from the angle), and the best tier
    /// any of them could have. The page is exact; the total is estimated.
    ///
    /// The price factor compares each quote with the cheapest eligible one,
    /// which may be far: so first the candidates are run cheapest quote first
    /// until each currency's cheapest eligible quote is known.
    fn rank_nearest_first(&self, candidates: &[HintedCandidate], exact_total_limit: usize) -> Ranking {
        let (catalog, context) = (self.catalog, self.context);
        let in_warranty = context.warranty == WarrantyStatus::InWarranty;
        let authorized = |hinted: &HintedCandidate| hinted.authorized_kind && hinted.candidate.brand.authorized;
        // The best tier the rules could give each candidate: any bank service
        // point might serve the deploying bank.
        let tier_at_least = |hinted: &HintedCandidate| context.tier(authorized(hinted), hinted.bank_service) as usize;
        let mut visits = Visits {
            tiers: candidates.iter().map(tier_at_least).collect(),
            unvisited_by_tier: [0; 4],
            visited: vec![false; candidates.len()],
            // A walk that stops visits a little more than the limit; room
            // for twice that saves copying the vector as it grows.
            eligible: Vec::with_capacity(candidates.len().min(2 * exact_total_limit)),
        };
        for &tier in &visits.tiers {
            visits.unvisited_by_tier[tier] += 1;
        }
        let visit = |visits: &mut Visits, index: usize| -> Option<Eligible> {
            if !visits.mark(index) {
                return None;
            }
            let found = context.evaluate(catalog, candidates[index].candidate).ok()?;
            visits.eligible.push(found);
            Some(found)
        };

        // Each currency's cheapest eligible quote. Quotes are ordered by
        // their f32 midpoints, which round monotonically: a quote cheaper
        // than the cheapest eligible one found has a midpoint no higher, so
        // it has been run too.
        let mut by_price: Vec<u64> = Vec::new();
        let mut currencies: Vec<CurrencyCode> = Vec::new();
        for (index, hinted) in candidates.iter().enumerate() {
            if hinted.quote_midpoint.is_nan() || (in_warranty && authorized(hinted)) {
                continue;
            }
            match hinted.quote_currency {
                Some(currency) => {
                    by_price.push(walk_item(hinted.quote_midpoint, index));
                    if !currencies.contains(&currency) {
                        currencies.push(currency);
                    }
                }
                // Quotes in several currencies: the rules name the one that counts.
                None => {
                    visit(&mut visits, index);
                }
            }
        }
        // The walk by price stops once each currency's first eligible quote
        // is known.
        run_cheapest_first(
            ascending(by_price, 64),
            currencies.len(),
            |index| candidates[index].quote_currency.expect("filtered above"),
            |index| visit(&mut visits, index).is_some_and(|found| found.price.is_some() && !found.warranty_covered),
        );
        let cheapest = CheapestQuotes::of(&visits.eligible);

        let mut keys: Vec<RankKey> = Vec::with_capacity(visits.eligible.capacity());
        let mut ranked_before = 0;
        // The page's best (tier, score) so far, best first, at most a page.
        let mut best: Vec<(u32, f64)> = Vec::with_capacity(self.page_size + 1);
        let mut rank = |index: usize, eligible: &[Eligible], keys: &mut Vec<RankKey>, best: &mut Vec<(u32, f64)>| {
            let Some(key) = self.key_after_token(eligible, index, &cheapest) else {
                ranked_before += 1;
                return;
            };
            keys.push(key);
            let position = best.partition_point(|&(tier, score)| (tier, -score) <= (key.tier, -key.score));
            if position < self.page_size {
                best.insert(position, (key.tier, key.score));
                best.truncate(self.page_size);
            }
        };
        for index in 0..visits.eligible.len() {
            rank(index, &visits.eligible, &mut keys, &mut best);
        }

        // The candidate taken has a chord no candidate left is below, and as
        // the chords are rounded down, no distance left is shorter than its.
        let nearest: Vec<u64> = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| !visits.visited[*i])
            .map(|(i, c)| walk_item(c.chord_squared_at_least, i))
            .collect();
        let distance_weight = self.scoring.weights[0];
        let mut stopped = false;
        // The walk cannot stop before more than the limit are eligible, and
        // most candidates are: room for half as many again as it needs.
        let needed = (exact_total_limit + 1).saturating_sub(visits.eligible.len());
        for (chord_squared_at_least, index) in ascending(nearest, needed + needed / 2) {
            if visits.eligible.len() > exact_total_limit && keys.len() > self.page_size {
                let nearest_km = chord_angle(f64::from(chord_squared_at_least))
                    * MIN_RADIUS_OF_CURVATURE_KM
                    * (1.0 - 2.0 * DISTANCE_RELATIVE_ERROR);
                let reachable = (1.0 - distance_weight) + distance_weight * self.scoring.distance.apply(nearest_km);
                let best_tier_left = visits.best_tier_left();
                let (last_tier, last_score) = best[self.page_size - 1];
                if best_tier_left > last_tier || (best_tier_left == last_tier && reachable < last_score - 1e-9) {
                    stopped = true;
                    break;
                }
            }
            if visit(&mut visits, index).is_some() {
                rank(visits.eligible.len() - 1, &visits.eligible, &mut keys, &mut best);
            }
        }

        let eligible = visits.eligible;
        let visited_count = visits.visited.iter().filter(|v| **v).count();
        let (total_size, estimate) = if stopped {
            let rate = eligible.len() as f64 / visited_count as f64;
            (eligible.len() + ((candidates.len() - visited_count) as f64 * rate).round() as usize, true)
        } else {
            (eligible.len(), false)
        };
        self.page(&eligible, keys, &cheapest, ranked_before, total_size, estimate)
    }

    /// The first page of `keys` (the matches after the page token), scored.
    fn page(
        &self,
        eligible: &[Eligible],
        mut keys: Vec<RankKey>,
        cheapest: &CheapestQuotes,
        ranked_before: usize,
        total_size: usize,
        total_size_is_estimate: bool,
    ) -> Ranking {
        let has_more = keys.len() > self.page_size;
        let rank_cmp = |a: &RankKey, b: &RankKey| {
            a.cmp_without_id(b).then_with(|| self.id(eligible, a.index).cmp(self.id(eligible, b.index)))
        };
        if has_more {
            keys.select_nth_unstable_by(self.page_size, rank_cmp);
            keys.truncate(self.page_size);
        }
        keys.sort_unstable_by(rank_cmp);
        let page = keys
            .iter()
            .map(|key| score(eligible[key.index as usize], self.context.profile, &self.scoring, cheapest, self.catalog))
            .collect();
        Ranking { page, ranked_before, total_size, total_size_is_estimate, has_more }
    }
}

/// Runs the rules on quotes in `walk`'s order (ascending `f32` midpoints,
/// each with its candidate's index) until each of the `currencies` has its
/// cheapest eligible quote run: `run` runs the rules on a candidate and says
/// whether it is eligible with a quote that counts. A quote dearer than its
/// currency's cheapest found is passed over. A quote whose midpoint rounds
/// to the same `f32` as a cheapest found may be cheaper in truth, so it is
/// run; and the walk ends only at a quote dearer than every currency's
/// cheapest, since one tying another currency's would have been passed over.
fn run_cheapest_first(
    walk: impl Iterator<Item = (f32, usize)>,
    currencies: usize,
    currency_of: impl Fn(usize) -> CurrencyCode,
    mut run: impl FnMut(usize) -> bool,
) {
    let mut cheapest_found: Vec<(CurrencyCode, f32)> = Vec::new();
    for (midpoint, index) in walk {
        let currency = currency_of(index);
        match cheapest_found.iter().find(|(found, _)| *found == currency) {
            Some((_, cheapest)) if midpoint > *cheapest => {
                if cheapest_found.len() == currencies && cheapest_found.iter().all(|(_, cheapest)| midpoint > *cheapest)
                {
                    break;
                }
            }
            found => {
                let first_of_its_currency = found.is_none();
                if run(index) && first_of_its_currency {
                    cheapest_found.push((currency, midpoint));
                }
            }
        }
    }
}

/// Which candidates a nearest-first ranking has run the rules on.
struct Visits {
    /// The best tier each candidate could get.
    tiers: Vec<usize>,
    unvisited_by_tier: [usize; 4],
    visited: Vec<bool>,
    /// What passed, in visiting order.
    eligible: Vec<Eligible>,
}

impl Visits {
    /// Marks a candidate visited; false when it already was.
    fn mark(&mut self, index: usize) -> bool {
        if std::mem::replace(&mut self.visited[index], true) {
            return false;
        }
        self.unvisited_by_tier[self.tiers[index]] -= 1;
        true
    }

    /// The best tier an unvisited candidate could still get.
    fn best_tier_left(&self) -> u32 {
        self.unvisited_by_tier.iter().position(|count| *count > 0).unwrap_or(0) as u32
    }
}

/// An item of an ascending walk: an `f32` key's place in the IEEE 754 total
/// order (`f32::total_cmp`) above the item's index, in one integer. One
/// integer compares in one instruction without a branch, where a pair of
/// key and index took two and mispredicted often; ordering thousands of
/// them was a sixth of a dense-city Find.
fn walk_item(key: f32, index: usize) -> u64 {
    let bits = key.to_bits();
    let ordered = if bits >> 31 == 1 { !bits } else { bits | 1 << 31 };
    u64::from(ordered) << 32 | index as u64
}

/// The key of a [`walk_item`].
fn walk_key(item: u64) -> f32 {
    let ordered = (item >> 32) as u32;
    f32::from_bits(if ordered >> 31 == 1 { ordered & !(1 << 31) } else { !ordered })
}

/// [`walk_item`]s in ascending order, each as its key and index, ordered a
/// chunk at a time as the walk goes: `first_chunk` items, then each chunk
/// twice the last, so a walk that stops early never sorts the rest and one
/// that goes on still sorts in O(n log n). Each chunk partitions all the
/// rest once, so the first should hold about what the walk will take.
/// (A binary heap cost more: its sifts branch on every step.)
fn ascending(mut items: Vec<u64>, first_chunk: usize) -> impl Iterator<Item = (f32, usize)> {
    let mut sorted_to = 0;
    let mut next_chunk = first_chunk.max(1);
    let mut position = 0;
    std::iter::from_fn(move || {
        if position == sorted_to {
            if sorted_to == items.len() {
                return None;
            }
            let rest = &mut items[sorted_to..];
            let take = next_chunk.min(rest.len());
            next_chunk *= 2;
            if take < rest.len() {
                rest.select_nth_unstable(take);
            }
            rest[..take].sort_unstable();
            sorted_to += take;
        }
        let item = items[position];
        position += 1;
        Some((walk_key(item), (item & u64::from(u32::MAX)) as usize))
    })
}

/// The first failed rule of each asked-about center that is not matched.
fn explain(catalog: &Catalog, context: &MatchContext<'_>) -> Vec<Exclusion> {
    let mut seen = HashSet::new();
    context
        .query
        .explain_center_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .filter_map(|id| match catalog.slot(id) {
            None => Some(Exclusion {
                center_id: id.clone(),
                rule: ExclusionRule::NotFound,
                detail: Text::new("exclusion-not-found"),
            }),
            // The rules are the truth, whatever the ranking visited.
            Some(slot) => context.evaluate_slot(catalog, slot).err().map(|rejection| context.exclusion(id, rejection)),
        })
        .collect()
}

fn remote_support(catalog: &Catalog, query: &FindQuery) -> Vec<SupportChannel> {
    let bank = query.ownership.deploying_bank().and_then(|id| catalog.bank(id)).map(|bank| SupportChannel {
        provider: SupportProvider::Bank,
        name: bank.name.clone(),
        hotline: bank.hotline.clone(),
        online_support_url: bank.online_support_url.clone(),
        email: bank.support_email.clone(),
    });
    let brand = catalog.brand(&query.brand).map(|brand| SupportChannel {
        provider: SupportProvider::Brand,
        name: brand.name.clone(),
        hotline: brand.hotline.clone(),
        online_support_url: brand.online_support_url.clone(),
        email: brand.support_email.clone(),
    });
    bank.into_iter().chain(brand).collect()
}

fn guidance(
    catalog: &Catalog,
    context: &MatchContext<'_>,
    total_size: usize,
    remote_support: &[SupportChannel],
) -> Vec<Text> {
    let query = context.query;
    let brand_name = context.brand_name.as_str();
    let mut lines = Vec::new();
    if query.fault == Some(FaultCategory::Tamper) {
        lines.push(Text::new("guidance-tamper").with("brand", brand_name));
    }
    // Why nothing matched comes before the routine advice: it is what the
    // merchant must act on.
    if total_size == 0 {
        lines.push(diagnose(catalog, context).guidance(context, !remote_support.is_empty()));
    }
    if let Some(bank_id) = query.ownership.deploying_bank() {
        let bank_name = catalog.bank(bank_id).map_or(bank_id, |bank| bank.name.as_str());
        lines.push(Text::new("guidance-bank-deployed").with("bank", bank_name));
    }
    match context.warranty {
        WarrantyStatus::InWarranty => lines.push(Text::new("guidance-in-warranty")),
        WarrantyStatus::Unknown => {
            if let Some(brand) = catalog.brand(&query.brand) {
                lines.push(
                    Text::new("guidance-check-purchase-date")
                        .with("brand", brand.name.as_str())
                        .with("months", Arg::Count(u64::from(brand.warranty_months))),
                );
            }
        }
        WarrantyStatus::OutOfWarranty => lines.push(Text::new("guidance-out-of-warranty")),
    }
    // Bank first: a deployed terminal's first line is its bank. No channel on
    // file, no hotline to send the merchant to.
    if matches!(query.fault, Some(FaultCategory::Software | FaultCategory::Connectivity))
        && let Some(channel) = remote_support.first()
    {
        lines.push(Text::new("guidance-remote-first").with("channel", channel.name.as_str()));
    }
    if total_size > 0 {
        lines.push(Text::new("guidance-book-appointment"));
        lines.push(Text::new("guidance-check-repair-terms"));
    }
    lines.push(Text::new("guidance-do-not-open"));
    lines.push(Text::new("guidance-after-repair"));
    lines
}

fn reasons(context: &MatchContext<'_>, scored: &Scored, center: &RepairCenter) -> Vec<Text> {
    let eligible = &scored.eligible;
    let query = context.query;
    // Room for every reason below.
    let mut lines = Vec::with_capacity(12);
    if let Some(bank_id) = query.ownership.deploying_bank()
        && center.serves_bank(bank_id)
    {
        lines.push(Text::new("reason-deploying-bank-service-point"));
    }
    match eligible.brand_support {
        BrandSupportLevel::Authorized => {
            let brand = center.brand_support(&context.brand_key).map_or(query.brand.as_str(), BrandSupport::brand);
            lines.push(Text::new("reason-authorized").with("brand", brand));
        }
        BrandSupportLevel::ModelListed => {
            let support = center.brand_support(&context.brand_key);
            lines.push(Text::new("reason-model-listed").with("model", context.model_name_in(support)));
        }
        BrandSupportLevel::BrandListed => {}
    }
    if eligible.warranty_covered {
        lines.push(Text::new("reason-warranty-covered"));
    }
    lines.push(Text::new("reason-distance").with("distance_km", Arg::decimal(eligible.distance_km, 1)));
    if eligible.beyond_distance_cap {
        lines.push(Text::new("reason-beyond-trip-cap").with("cap_km", Arg::decimal(context.distance_cap_km, 0)));
    }
    match center.rating {
        Some(rating) if rating.count > 0 => lines.push(
            Text::new("reason-rated")
                .with("average", Arg::decimal(rating.average, 1))
                .with("count", Arg::Count(u64::from(rating.count))),
        ),
        _ => lines.push(Text::new("reason-no-reviews")),
    }
    match eligible.price {
        Some((low, high)) => lines.push(Text::new("reason-quote").with("low", low).with("high", high)),
        None => lines.push(Text::new("reason-no-price")),
    }
    if center.repair_warranty_days > 0 {
        lines
            .push(Text::new("reason-repair-warranty").with("days", Arg::Count(u64::from(center.repair_warranty_days))));
    }
    let terms_url = center.texts.parts().terms_url;
    if !terms_url.is_empty() {
        lines.push(Text::new("reason-service-terms").with("url", terms_url));
    }
    // Rounded up: never promise a working terminal sooner than the model expects.
    lines.push(
        Text::new("reason-back-in-service")
            .with("hours", Arg::decimal(scored.downtime_hours().ceil(), 0))
            .with("modes", Arg::list(eligible.usable_modes.iter().map(ServiceMode::text), ListStyle::And)),
    );
    if eligible.hours_unknown {
        lines.push(Text::new("reason-hours-unknown"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::NaiveDate;

    use super::*;
    use crate::geodesy::LatLng;
    use crate::model::{BrandSupport, CenterKind, FaultCategory, Rating, ServiceMode};
    use crate::profile::RankingProfile;
    use crate::profile::Weights;
    use crate::query::{Ownership, WarrantyClaim};
    use crate::test_fixtures::*;

    fn only(weight: &str) -> RankingProfile {
        let mut weights =
            Weights { distance: 0.0, rating: 0.0, price: 0.0, brand_support: 0.0, downtime: 0.0, repair_warranty: 0.0 };
        match weight {
            "distance" => weights.distance = 1.0,
            "rating" => weights.rating = 1.0,
            "price" => weights.price = 1.0,
            "brand_support" => weights.brand_support = 1.0,
            "downtime" => weights.downtime = 1.0,
            "repair_warranty" => weights.repair_warranty = 1.0,
            other => panic!("{other}"),
        }
        RankingProfile { weights, ..RankingProfile::default() }
    }

    #[test]
    fn an_ascending_walk_yields_keys_then_indices_in_order_and_may_stop_anywhere() {
        let mut random = fastrand::Rng::with_seed(9);
        for size in [0, 1, 2, 63, 64, 65, 1_000, 8_544] {
            // Few distinct keys, so ties are many and the index decides them.
            let keys: Vec<f32> = (0..size).map(|_| random.u8(0..50) as f32 / 7.0).collect();
            let items = keys.iter().enumerate().map(|(index, &key)| walk_item(key, index)).collect::<Vec<_>>();
            let mut expected: Vec<(f32, usize)> = keys.iter().copied().zip(0..).collect();
            expected.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            assert_eq!(ascending(items.clone(), 64).collect::<Vec<_>>(), expected, "{size} items");
            let stop = random.usize(0..=size);
            let first_chunk = random.usize(0..=size);
            let walked = ascending(items, first_chunk).take(stop).collect::<Vec<_>>();
            assert_eq!(walked, expected[..stop], "{stop} of {size}, the first chunk {first_chunk}");
        }
        let keys = [3.5, -0.0, 0.0, f32::INFINITY, 1e-40, -2.0, f32::MAX];
        let items = keys.iter().enumerate().map(|(index, &key)| walk_item(key, index)).collect();
        let walked: Vec<(f32, usize)> = ascending(items, 2).collect();
        assert_eq!(walked.iter().map(|&(_, index)| index).collect::<Vec<_>>(), [5, 1, 2, 4, 0, 6, 3]);
        for (key, index) in walked {
            assert_eq!(key.to_bits(), keys[index].to_bits(), "each key read back as it was, -0 and subnormals too");
        }
    }

    /// The quotes `run_cheapest_first` runs, of (midpoint, currency,
    /// eligible) in the walk's order.
    fn run_by_price(quotes: &[(f32, CurrencyCode, bool)], currencies: usize) -> Vec<usize> {
        let walk = quotes.iter().enumerate().map(|(index, (midpoint, _, _))| (*midpoint, index));
        let mut run = Vec::new();
        let eligible = |index: usize| {
            run.push(index);
            quotes[index].2
        };
        run_cheapest_first(walk, currencies, |index| quotes[index].1, eligible);
        run
    }

    #[test]
    fn the_walk_by_price_runs_every_quote_that_could_be_a_currencys_cheapest() {
        let (usd, idr) = (CurrencyCode::parse("USD").unwrap(), CurrencyCode::parse("IDR").unwrap());
        // Rp 200,000.00 and Rp 200,000.005 (a midpoint) round to the same
        // f32 number of minor units, as does a dear quote in dollars.
        let tie = 20_000_000.5_f64 as f32;
        assert_eq!(tie, 20_000_000.0);
        let quotes = [
            (100.0, usd, true),
            (tie, idr, true), // the first rupiah quote: counted as the cheapest
            (tie, usd, true), // dearer than the dollars' cheapest
            (tie, idr, true), // ties the rupiahs' cheapest: may be cheaper in truth
            (3e7, idr, true), // dearer than every cheapest: the walk ends here
            (3e7, usd, true),
        ];
        assert_eq!(run_by_price(&quotes, 2), [0, 1, 3]);
        // Until a currency has an eligible quote, its quotes are all run.
        let quotes = [(1.0, usd, false), (2.0, usd, true), (3.0, usd, true), (4.0, idr, false), (5.0, idr, false)];
        assert_eq!(run_by_price(&quotes, 2), [0, 1, 3, 4]);
    }

    #[test]
    fn a_profile_weighing_the_repair_warranty_ranks_longer_guarantees_first_up_to_the_full_length() {
        let with_days = |id: &str, days: u32| {
            let mut c = center(id, 3.0);
            c.repair_warranty_days = days;
            c
        };
        let centers = vec![with_days("none", 0), with_days("month", 30), with_days("year", 365), with_days("half", 90)];
        let outcome = run_with(centers.clone(), &query(), &only("repair_warranty"));
        assert_eq!(ids(&outcome), ["year", "half", "month", "none"]);
        let component = |m: &RankedMatch| m.breakdown.iter().find(|c| c.factor == "repair_warranty").copied().unwrap();
        let year = component(&outcome.matches[0]);
        assert_eq!((year.raw_value, year.normalized_value), (365.0, 1.0), "capped at the profile's full 180 days");
        assert_eq!(component(&outcome.matches[1]).normalized_value, 0.5, "90 of 180 days");
        assert_eq!(component(&outcome.matches[3]).normalized_value, 0.0, "none published");
        let default = run(centers, &query());
        assert_eq!(component(&default.matches[0]).weight, 0.0, "off in the default profile");
    }

    /// The default profile's breakdown for two centers, against numbers worked
    /// out by hand from the contract's formulas (not from the code's).
    #[test]
    fn the_breakdown_matches_numbers_worked_by_hand() {
        use geo::{Destination, Geodesic, Point};
        // 6 km due east on the ellipsoid, by Karney's direct solution.
        let six_km_east = Geodesic.destination(Point::new(MERCHANT.longitude, MERCHANT.latitude), 90.0, 6_000.0);
        let mut near = center("near", 0.0);
        near.location = LatLng::new(six_km_east.y(), six_km_east.x());
        // Same place, same rating, twice the price (screens 200–400 CNY).
        let mut dear = near.clone();
        dear.id = "dear".into();
        dear.prices[0] = screen_quote(20_000, 40_000);
        let outcome = run(vec![dear, near], &query());
        assert_eq!(ids(&outcome), ["near", "dear"]);

        // distance: gauss, offset 1 km, scale 10 km, decay 0.5: σ² = 10² / (2 ln 2),
        // so f = exp(-(6 - 1)² / 2σ²) = 0.5^(25 / 100).
        let distance = 0.5_f64.powf(0.25);
        // rating: 4.5 from 100 reviews with the prior 3.5 × 20:
        // (20 × 3.5 + 100 × 4.5) / 120 = 13/3 stars, (13/3 - 1) / 4 = 5/6.
        let rating = 5.0 / 6.0;
        // price: midpoints 150.00 and 300.00 CNY; the cheapest scores 1, twice as dear 0.5.
        // brand support: lists the brand, all models: 0.3.
        // downtime: walk-in, 4 trips of 6 km at 30 km/h + 4 h bench = 4.8 h; 0.5^(4.8 / 24).
        let downtime = 0.5_f64.powf(0.2);
        // repair warranty: none published, and weighed 0 by default.
        let weights = [0.30, 0.25, 0.15, 0.15, 0.15, 0.0];
        let expected = |price: f64| -> [(f64, f64); 6] {
            [(6.0, distance), (13.0 / 3.0, rating), (0.0, price), (0.0, 0.3), (4.8, downtime), (0.0, 0.0)]
        };
        for (m, price_raw, price) in [(&outcome.matches[0], 15_000.0, 1.0), (&outcome.matches[1], 30_000.0, 0.5)] {
            let mut wanted = expected(price);
            wanted[2].0 = price_raw;
            let mut score = 0.0;
            for ((component, (raw, normalized)), weight) in m.breakdown.iter().zip(wanted).zip(weights) {
                // The fast distance is within 1e-4 of the geodesic (contract: 0.5%).
                let tolerance = 1e-4 * raw.max(1.0);
                assert!((component.raw_value - raw).abs() < tolerance, "{component:?} raw {raw}");
                assert!((component.normalized_value - normalized).abs() < 1e-5, "{component:?} f {normalized}");
                assert!((component.weight - weight).abs() < 1e-12, "{component:?}");
                assert!((component.contribution - weight * normalized).abs() < 1e-5, "{component:?}");
                score += weight * normalized;
            }
            // 0.3 × 0.8409 + 0.25 × 0.8333 + 0.15 × price + 0.15 × 0.3 + 0.15 × 0.8706
            assert!((m.scored.score - score).abs() < 1e-5, "{} vs {score}", m.scored.score);
            let sum: f64 = m.breakdown.iter().map(|c| c.contribution).sum();
            assert_eq!(sum, m.scored.score, "the breakdown adds up to the score exactly");
        }
        assert!((outcome.matches[0].scored.score - 0.786_18).abs() < 1e-4, "{}", outcome.matches[0].scored.score);
    }

    #[test]
    fn distance_only_orders_by_distance() {
        let centers = vec![center("far", 9.0), center("near", 1.5), center("mid", 4.0)];
        assert_eq!(ids(&run_with(centers, &query(), &only("distance"))), ["near", "mid", "far"]);
    }

    #[test]
    fn rating_only_orders_by_bayesian_average_not_raw_stars() {
        let mut few_perfect = center("few-perfect", 3.0);
        few_perfect.rating = Some(Rating { average: 5.0, count: 2 });
        let mut many_good = center("many-good", 3.0);
        many_good.rating = Some(Rating { average: 4.8, count: 2_000 });
        let mut poor = center("poor", 3.0);
        poor.rating = Some(Rating { average: 2.0, count: 500 });
        let outcome = run_with(vec![few_perfect, poor, many_good], &query(), &only("rating"));
        assert_eq!(ids(&outcome), ["many-good", "few-perfect", "poor"]);
    }

    #[test]
    fn price_only_prefers_the_cheaper_quote_relative_to_the_cheapest() {
        let mut dear = center("dear", 3.0);
        dear.prices[0] = screen_quote(20_000, 40_000);
        let mut unpriced = center("unpriced", 3.0);
        unpriced.prices = Box::default();
        let outcome = run_with(vec![dear, center("cheap", 3.0), unpriced], &query(), &only("price"));
        assert_eq!(ids(&outcome), ["cheap", "dear", "unpriced"]);
        let factor = |i: usize| outcome.matches[i].breakdown[2].normalized_value;
        assert_eq!(factor(0), 1.0);
        assert_eq!(factor(1), 0.5, "twice the cheapest quote");
        assert_eq!(factor(2), RankingProfile::default().unknown_price_score);
    }

    #[test]
    fn brand_support_ranks_authorized_then_model_then_brand() {
        let mut model_listed = center("model", 3.0);
        model_listed.brands = vec![BrandSupport::new("PAX", false, &["A920".into()])];
        let mut q = query();
        q.model = Some("A920".into());
        let outcome = run_with(
            vec![center("brand", 3.0), model_listed, authorized(center("auth", 3.0))],
            &q,
            &only("brand_support"),
        );
        assert_eq!(ids(&outcome), ["auth", "model", "brand"]);
    }

    #[test]
    fn brand_and_model_are_named_as_the_catalog_spells_them() {
        let lists = |id: &str, model: &str| {
            let mut listing = center(id, 3.0);
            listing.brands = vec![BrandSupport::new("PAX", false, &[model.into()])];
            listing
        };
        let mut q = query();
        q.brand = "pax".into();
        q.model = Some("a920".into());
        q.explain_center_ids = vec!["lists-s920".into()];
        let outcome = run(vec![lists("lists-a920", "A920"), lists("lists-s920", "S920")], &q);
        assert_eq!(ids(&outcome), ["lists-a920"]);
        let reasons = english(&outcome.matches[0].reasons);
        assert!(reasons.iter().any(|r| r == "repairs the A920"), "{reasons:?}");
        assert!(reasons.iter().all(|r| !r.contains("a920")), "{reasons:?}");
        // Spelled as the brand's record lists it (the fixture PAX lists A920).
        assert_eq!(outcome.exclusions[0].detail.english(), "repairs PAX but not the A920");
        // A model the catalog does not know is named as asked.
        q.model = Some("x9".into());
        let outcome = run(vec![lists("lists-s920", "S920")], &q);
        assert_eq!(outcome.exclusions[0].detail.english(), "repairs PAX but not the x9");
    }

    #[test]
    fn downtime_only_prefers_an_exchange_over_a_far_walk_in() {
        let mut exchange = center("exchange", 25.0);
        exchange.service_modes = modes(&[ServiceMode::Exchange]);
        let mut depot = center("depot", 1.0);
        depot.service_modes = modes(&[ServiceMode::MailIn]);
        let outcome = run_with(vec![depot, center("walk-in", 20.0), exchange], &query(), &only("downtime"));
        // Walk-in 20 km: 4 trips of 40 min + 4 h bench ≈ 6.7 h; exchange: 24 h shipping; depot: 168 h.
        assert_eq!(ids(&outcome), ["walk-in", "exchange", "depot"]);
        assert!(outcome.matches[0].scored.downtime_hours() < outcome.matches[1].scored.downtime_hours());
    }

    #[test]
    fn downtime_in_reasons_is_rounded_up_to_a_whole_hour() {
        let back_in = |outcome: &FindOutcome| {
            let reasons = english(&outcome.matches[0].reasons);
            reasons.iter().find(|r| r.starts_with("back in service")).cloned().unwrap_or_default()
        };
        // Walk-in 10.4 km out: 4 trips at 30 km/h plus 4 h on the bench, about 5.39 h.
        let outcome = run(vec![center("walk-in", 10.4)], &query());
        let hours = outcome.matches[0].scored.downtime_hours();
        assert!(hours > 5.3 && hours < 5.5, "{hours}");
        assert_eq!(back_in(&outcome), "back in service in about 6 h (walk-in)");
        // A whole number of hours stays as it is.
        let mut next_door = center("next-door", 0.0);
        next_door.turnaround_hours = Box::new([(ServiceMode::WalkIn, 2)]);
        let outcome = run(vec![next_door], &query());
        assert_eq!(outcome.matches[0].scored.downtime_hours(), 2.0);
        assert_eq!(back_in(&outcome), "back in service in about 2 h (walk-in)");
    }

    #[test]
    fn bank_deployed_terminals_rank_their_banks_service_points_first() {
        let mut q = query();
        q.ownership = Ownership::BankDeployed { bank_id: "icbc".into() };
        let outcome = run(vec![center("close", 1.0), icbc_service_point()], &q);
        assert_eq!(ids(&outcome), ["bank-point", "close"]);
        assert_eq!(outcome.matches[0].scored.eligible.tier, 0);
        assert_eq!(outcome.remote_support[0].provider, SupportProvider::Bank, "the bank's channel first");
        let mut profile = RankingProfile::default();
        profile.policies.bank_service_first = false;
        assert_eq!(ids(&run_with(vec![center("close", 1.0), icbc_service_point()], &q, &profile))[0], "close");
    }

    /// A mediocre ICBC service point, 20 km out.
    fn icbc_service_point() -> crate::model::RepairCenter {
        let mut bank_point = center("bank-point", 20.0);
        bank_point.kind = CenterKind::BankService;
        bank_point.bank_ids = Box::new(["icbc".into()]);
        bank_point.rating = Some(Rating { average: 3.0, count: 10 });
        bank_point
    }

    #[test]
    fn in_warranty_the_warranty_honouring_centers_come_first() {
        let far_authorized = authorized(center("authorized", 25.0));
        let mut q = query();
        q.warranty = WarrantyClaim { status: WarrantyStatus::InWarranty, purchase_date: None };
        let outcome = run(vec![center("close", 1.0), far_authorized.clone()], &q);
        assert_eq!(ids(&outcome), ["authorized", "close"]);
        assert!(outcome.matches[0].scored.eligible.warranty_covered);
        assert!(!outcome.matches[1].scored.eligible.warranty_covered);
        assert_eq!(outcome.matches[1].scored.eligible.tier, 1);
        // Decided from the purchase date and PAX's 12 months.
        q.warranty =
            WarrantyClaim { status: WarrantyStatus::Unknown, purchase_date: NaiveDate::from_ymd_opt(2026, 3, 1) };
        let outcome = run(vec![center("close", 1.0), far_authorized.clone()], &q);
        assert_eq!(outcome.warranty, WarrantyStatus::InWarranty);
        assert_eq!(ids(&outcome)[0], "authorized");
        q.warranty.purchase_date = NaiveDate::from_ymd_opt(2025, 3, 1);
        let outcome = run(vec![center("close", 1.0), far_authorized], &q);
        assert_eq!(outcome.warranty, WarrantyStatus::OutOfWarranty);
        assert_eq!(ids(&outcome)[0], "close");
    }

    #[test]
    fn ties_break_by_distance_then_id() {
        let outcome = run_with(vec![center("b", 2.0), center("a", 2.0), center("c", 1.0)], &query(), &only("rating"));
        assert_eq!(ids(&outcome), ["c", "a", "b"]);
    }

    #[test]
    fn pages_concatenate_to_the_whole_ranking_without_duplicates() {
        let centers: Vec<_> = (0..57).map(|i| center(&format!("c{i:02}"), f64::from(i % 19) + 0.5)).collect();
        let catalog = catalog(centers);
        let profile = RankingProfile::default();
        let mut whole = query();
        whole.page_size = Some(100);
        let everything: Vec<String> =
            find(&catalog, &whole, &profile, now()).unwrap().matches.iter().map(|m| m.center.id.clone()).collect();
        assert_eq!(everything.len(), 57);
        let mut paged = Vec::new();
        let mut ranks = Vec::new();
        let mut q = query();
        q.page_size = Some(10);
        loop {
            let page = find(&catalog, &q, &profile, now()).unwrap();
            assert_eq!(page.total_size, 57);
            paged.extend(page.matches.iter().map(|m| m.center.id.clone()));
            ranks.extend(page.matches.iter().map(|m| m.rank));
            match page.next_page_token {
                Some(token) => q.page_token = Some(token),
                None => break,
            }
        }
        assert_eq!(paged, everything);
        assert_eq!(ranks, (1..=57).collect::<Vec<u32>>());
        assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 57);
    }

    #[test]
    fn pages_ranked_ahead_in_one_pass_are_the_pages_asked_one_by_one() {
        let centers: Vec<_> = (0..27).map(|i| center(&format!("c{i:02}"), f64::from(i % 13) + 0.5)).collect();
        let catalog = catalog(centers);
        let profile = RankingProfile::default();
        let mut q = query();
        q.page_size = Some(5);
        for limit in [EXACT_TOTAL_LIMIT, 0] {
            let ahead = find_pages(&catalog, &q, &profile, now(), 4, limit).unwrap();
            assert_eq!(ahead.len(), 4);
            let mut asked = q.clone();
            for page in &ahead {
                let one = find_with_exact_limit(&catalog, &asked, &profile, now(), limit).unwrap();
                assert_eq!(ids(page), ids(&one));
                assert_eq!(
                    page.matches.iter().map(|m| m.rank).collect::<Vec<_>>(),
                    one.matches.iter().map(|m| m.rank).collect::<Vec<_>>()
                );
                assert_eq!(page.next_page_token, one.next_page_token);
                asked.page_token = one.next_page_token.clone();
            }
            // 27 matches: pages of 5 up to 20, and seven more to come.
            assert_eq!(ahead[3].matches.last().unwrap().rank, 20);
            assert!(ahead[3].next_page_token.is_some());
        }
        // Fewer matches than pages asked: the last page has no token.
        let mut few = q.clone();
        few.page_size = Some(10);
        let ahead = find_pages(&catalog, &few, &profile, now(), 5, EXACT_TOTAL_LIMIT).unwrap();
        assert_eq!(ahead.iter().map(|page| page.matches.len()).collect::<Vec<_>>(), [10, 10, 7]);
        assert!(ahead[2].next_page_token.is_none() && ahead[1].next_page_token.is_some());
    }

    #[test]
    fn a_token_replayed_with_another_query_is_refused() {
        let centers: Vec<_> = (0..5).map(|i| center(&format!("c{i}"), f64::from(i) + 1.0)).collect();
        let catalog = catalog(centers);
        let mut q = query();
        q.page_size = Some(2);
        let token = find(&catalog, &q, &RankingProfile::default(), now()).unwrap().next_page_token.unwrap();
        q.page_token = Some(token.clone());
        q.page_size = Some(3);
        assert!(find(&catalog, &q, &RankingProfile::default(), now()).is_ok(), "page size may change");
        q.min_rating = Some(2.0);
        assert_eq!(find(&catalog, &q, &RankingProfile::default(), now()).unwrap_err(), PageTokenError::OtherQuery);
    }

    #[test]
    fn nobody_near_still_answers_with_remote_support_and_guidance() {
        let mut q = query();
        q.location = LatLng::new(64.1, -21.9);
        let outcome = run(vec![center("a", 3.0)], &q);
        assert_eq!(outcome.total_size, 0);
        assert_eq!(outcome.remote_support.len(), 1);
        assert_eq!(outcome.remote_support[0].hotline, "+86 400 888 6600");
        assert!(english(&outcome.guidance).iter().any(|g| g.contains("No repair center covers")));
    }

    #[test]
    fn tamper_guidance_warns_against_power_cycling() {
        let mut q = query();
        q.fault = Some(FaultCategory::Tamper);
        let outcome = run(vec![], &q);
        let guidance = english(&outcome.guidance);
        assert!(guidance[0].contains("do not power-cycle"), "{guidance:?}");
    }
}
