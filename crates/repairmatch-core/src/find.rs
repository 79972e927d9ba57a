//! `FindRepairCenter` as a plain function over a catalog snapshot.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::eligibility::{BrandSupportLevel, Exclusion, ExclusionRule, MatchContext};
use crate::model::{FaultCategory, Money, RepairCenter};
use crate::paging::{self, PageTokenError};
use crate::profile::{MAX_PAGE_SIZE, RankingProfile};
use crate::query::{FindQuery, WarrantyStatus};
use crate::ranking::{Scored, score_all};

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
    /// The scored match.
    pub scored: Scored,
    /// 1-based rank across all pages.
    pub rank: u32,
    /// Short human-readable reasons.
    pub reasons: Vec<String>,
}

/// The answer to a find.
#[derive(Debug, Clone)]
pub struct FindOutcome {
    /// This page.
    pub matches: Vec<RankedMatch>,
    /// Eligible centers in all (exact).
    pub total_size: usize,
    /// Token for the next page, when there is one.
    pub next_page_token: Option<String>,
    /// One per asked-about center not matched.
    pub exclusions: Vec<Exclusion>,
    /// The bank's channel first, then the brand's.
    pub remote_support: Vec<SupportChannel>,
    /// Next steps.
    pub guidance: Vec<String>,
    /// The warranty status acted on.
    pub warranty: WarrantyStatus,
    /// The catalog version answered from.
    pub catalog_version: u64,
}

/// Finds, ranks and pages the centers for a request. `now` decides warranties.
pub fn find(
    catalog: &Catalog,
    query: &FindQuery,
    profile: &RankingProfile,
    now: DateTime<Utc>,
) -> Result<FindOutcome, PageTokenError> {
    let fingerprint = query.fingerprint();
    let after = query.page_token.as_deref().map(|token| paging::decode(token, fingerprint)).transpose()?;
    let warranty = query.warranty.decide(catalog.brand(&query.brand), now.date_naive());
    let context = MatchContext::new(query, profile, warranty);

    let eligible: Vec<_> = catalog
        .candidates(&context.brand_key, query.location)
        .filter_map(|center| context.evaluate(center).ok())
        .collect();
    let scored = score_all(eligible, profile);
    let total_size = scored.len();

    let exclusions = explain(catalog, &context, &scored);

    let mut remaining: Vec<Scored> = match &after {
        Some(key) => scored.into_iter().filter(|m| m.is_after(key)).collect(),
        None => scored,
    };
    let ranked_before = total_size - remaining.len();
    let page_size = query.page_size.unwrap_or(profile.default_page_size).clamp(1, MAX_PAGE_SIZE) as usize;
    let has_more = remaining.len() > page_size;
    if has_more {
        remaining.select_nth_unstable_by(page_size, Scored::rank_cmp);
        remaining.truncate(page_size);
    }
    remaining.sort_unstable_by(Scored::rank_cmp);
    let next_page_token = has_more.then(|| paging::encode(fingerprint, &remaining[page_size - 1].sort_key()));

    let matches = remaining
        .into_iter()
        .enumerate()
        .map(|(index, scored)| {
            let reasons = reasons(&context, &scored);
            RankedMatch { rank: u32::try_from(ranked_before + index + 1).unwrap_or(u32::MAX), reasons, scored }
        })
        .collect();

    Ok(FindOutcome {
        matches,
        total_size,
        next_page_token,
        exclusions,
        remote_support: remote_support(catalog, query),
        guidance: guidance(catalog, &context, total_size),
        warranty,
        catalog_version: catalog.version(),
    })
}

/// The first failed rule of each asked-about center that is not matched.
fn explain(catalog: &Catalog, context: &MatchContext<'_>, scored: &[Scored]) -> Vec<Exclusion> {
    let asked = &context.query.explain_center_ids;
    if asked.is_empty() {
        return Vec::new();
    }
    let matched: HashSet<&str> = scored.iter().map(|m| m.eligible.center.id.as_str()).collect();
    let mut seen = HashSet::new();
    asked
        .iter()
        .filter(|id| seen.insert(id.as_str()) && !matched.contains(id.as_str()))
        .filter_map(|id| match catalog.center(id) {
            None => Some(Exclusion {
                center_id: id.clone(),
                rule: ExclusionRule::NotFound,
                detail: "no repair center has this id".into(),
            }),
            // Eligible by the rules yet not a candidate would mean the index
            // lost it; the rules are the truth, so nothing to explain.
            Some(center) => context.evaluate(center).err(),
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

fn guidance(catalog: &Catalog, context: &MatchContext<'_>, total_size: usize) -> Vec<String> {
    let query = context.query;
    let brand_name = catalog.brand(&query.brand).map_or(query.brand.as_str(), |brand| brand.name.as_str());
    let mut lines = Vec::new();
    if query.fault == Some(FaultCategory::Tamper) {
        lines.push(format!(
            "Tamper alert: do not power-cycle or open the terminal. Only a center authorized for {brand_name} \
             with key-injection facilities can re-key it; otherwise ask for an exchange unit."
        ));
    }
    if let Some(bank_id) = query.ownership.deploying_bank() {
        let bank_name = catalog.bank(bank_id).map_or(bank_id, |bank| bank.name.as_str());
        lines.push(format!(
            "This terminal was deployed by {bank_name}: go through its service channel first; it may replace the unit."
        ));
    }
    match context.warranty {
        WarrantyStatus::InWarranty => lines.push(
            "In warranty: go to a center that honours the warranty and bring the warranty card and proof of purchase."
                .into(),
        ),
        WarrantyStatus::Unknown => {
            if let Some(brand) = catalog.brand(&query.brand) {
                lines.push(format!(
                    "Check the purchase date: {} terminals carry a {}-month warranty, repaired free at authorized centers.",
                    brand.name, brand.warranty_months
                ));
            }
        }
        WarrantyStatus::OutOfWarranty => lines.push(
            "Out of warranty: compare quotes; with an independent repairer agree scope, cost and delivery time in writing."
                .into(),
        ),
    }
    if matches!(query.fault, Some(FaultCategory::Software | FaultCategory::Connectivity)) {
        lines.push(format!(
            "Software and connectivity faults are often fixed remotely: try {brand_name}'s hotline before moving the terminal."
        ));
    }
    if total_size == 0 {
        lines.push(
            "No repair center covers this location for this case: use the remote support channels; \
             they can arrange mail-in repair or an exchange unit."
                .into(),
        );
    } else {
        lines.push("Book an appointment where you can, and bring any documents the center asks for.".into());
    }
    lines.push(
        "Do not open the terminal yourself: it is tamper-protected, and opening it erases its keys and voids the warranty."
            .into(),
    );
    lines.push(
        "After the repair, run a test transaction, update the firmware and re-bind the merchant account if asked."
            .into(),
    );
    lines
}

fn reasons(context: &MatchContext<'_>, scored: &Scored) -> Vec<String> {
    let eligible = &scored.eligible;
    let center: &RepairCenter = &eligible.center;
    let query = context.query;
    let mut lines = Vec::new();
    if let Some(bank_id) = query.ownership.deploying_bank()
        && center.serves_bank(bank_id)
    {
        lines.push("the deploying bank's designated service point".to_owned());
    }
    match eligible.brand_support {
        BrandSupportLevel::Authorized => {
            let brand = center.brand_support(&context.brand_key).map_or(query.brand.as_str(), |b| b.brand.as_str());
            lines.push(format!("authorized {brand} center"));
        }
        BrandSupportLevel::ModelListed => {
            lines.push(format!("repairs the {}", query.model.as_deref().unwrap_or_default()))
        }
        BrandSupportLevel::BrandListed => {}
    }
    if eligible.warranty_covered {
        lines.push("repair covered by the warranty".to_owned());
    }
    lines.push(format!("{:.1} km away", eligible.distance_km));
    if eligible.beyond_distance_cap {
        lines.push(format!("beyond the {:.0} km trip cap: no walk-in or onsite visit", context.distance_cap_km));
    }
    match center.rating {
        Some(rating) if rating.count > 0 => {
            lines.push(format!("rated {:.1} from {} reviews", rating.average, rating.count))
        }
        _ => lines.push("no reviews yet".to_owned()),
    }
    match &eligible.price {
        Some((low, high)) => lines.push(format!("quotes {}–{}", format_money(low), format_money(high))),
        None => lines.push("no published price for this fault".to_owned()),
    }
    let modes: Vec<String> = eligible.usable_modes.iter().map(|mode| mode.to_string()).collect();
    lines.push(format!("back in service in about {:.0} h ({})", scored.downtime_hours.ceil(), modes.join(", ")));
    if eligible.hours_unknown {
        lines.push("hours unknown".to_owned());
    }
    lines
}

fn format_money(money: &Money) -> String {
    let units = money.amount_minor_units / 100;
    let cents = (money.amount_minor_units % 100).abs();
    format!("{units}.{cents:02} {}", money.currency_code)
}
